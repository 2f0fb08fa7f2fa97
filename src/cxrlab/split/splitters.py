"""Train/test splits: exact sizes or fractions, seeded.

- ``random``: a seeded permutation; the first *k* images are the test set.
- ``stratified``: multilabel iterative stratification (Sechidis, Tsoumakas & Vlahavas, "On the stratification
  of multi-label data", ECML PKDD 2011) through the ``iterative-stratification`` package
  (``MultilabelStratifiedShuffleSplit``), so every label keeps about the same prevalence on both sides
  (VinDr-PCXR: 7,728 train / 1,397 test with matching prevalences in Table 2).
- ``group``: whole patients move together, as NIH ChestX-ray14 did ("divided ... on the patient level. All
  studies from the same patient will only appear in either training/validation or testing set", README).
  With labels the patients are stratified on their aggregated labels; the image count of the test side is
  then as close to the target as whole patients allow. No patient is ever on both sides (checked).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import atomic_write_text

__all__ = ["SPLIT_METHODS", "split_images", "split_summary", "count_test_images", "write_split_lists"]

SPLIT_METHODS = ("random", "stratified", "group")
EXTRA_HINT = "pip install 'cxrlab[release]'"


def count_test_images(n: int, test_size: float) -> int:
    """Number of test images: *test_size* itself when >= 1 (an exact size), else round(n x fraction).

    Raises
    ------
    ValueError
        A fraction outside (0, 1), or a size that leaves no training image.
    """
    if test_size >= 1:
        if test_size != int(test_size):
            raise ValueError(f"test size {test_size} is neither a whole number of images nor a fraction")
        k = int(test_size)
    elif test_size > 0:
        k = int(round(n * test_size))
    else:
        raise ValueError(f"test size must be > 0, got {test_size}")
    if not 0 < k < n:
        raise ValueError(f"test size {k} leaves no image on one side ({n} images)")
    return k


def _stratifier(k: int, seed: int):  # noqa: ANN202
    try:
        from iterstrat.ml_stratifiers import MultilabelStratifiedShuffleSplit
    except ImportError:
        raise CxrlabError(f"stratified splits need the iterative-stratification package: {EXTRA_HINT}") from None
    return MultilabelStratifiedShuffleSplit(n_splits=1, test_size=k, random_state=seed)


def _label_matrix(labels: pd.DataFrame, ids: pd.Index) -> np.ndarray:
    cols = [c for c in labels.columns if c not in ("image_id", "rad_id", "split")]
    y = labels.set_index("image_id").reindex(ids)[cols].fillna(0).to_numpy(dtype=np.int64)
    informative = (y.sum(axis=0) > 0) & (y.sum(axis=0) < len(y))
    return y[:, informative]


def split_images(
    image_ids: list[str] | pd.Index,
    *,
    test_size: float,
    seed: int = 0,
    method: str = "stratified",
    labels: pd.DataFrame | None = None,
    groups: pd.Series | None = None,
) -> pd.Series:
    """Assign ``train`` / ``test`` to each image.

    Parameters
    ----------
    image_ids : list of str
        The images to split.
    test_size : float
        Exact number of test images (>= 1) or a fraction (< 1).
    seed : int
        Random seed: the same inputs and seed give the same split.
    method : {"random", "stratified", "group"}
        See the module docstring.
    labels : DataFrame, optional
        ``image_id`` + one 0/1 column per label (needed for ``stratified``; used by ``group`` when given).
    groups : Series, optional
        Patient per ``image_id`` (needed for ``group``; an image without a patient is its own group).

    Returns
    -------
    Series
        ``train``/``test`` indexed by image id, in the order of *image_ids*.

    Raises
    ------
    ValueError
        Unknown method, bad size, or a missing input for the method.
    CxrlabError
        ``iterative-stratification`` is not installed (the message names the extra).
    """
    if method not in SPLIT_METHODS:
        raise ValueError(f"method must be one of {', '.join(SPLIT_METHODS)}, got {method!r}")
    ids = pd.Index(list(dict.fromkeys(str(i) for i in image_ids)), name="image_id")
    n = len(ids)
    k = count_test_images(n, test_size)
    out = pd.Series("train", index=ids, name="split")
    if method == "random":
        test = np.random.default_rng(seed).permutation(n)[:k]
        out.iloc[test] = "test"
        return out
    if method == "stratified":
        if labels is None:
            raise ValueError("a stratified split needs labels")
        y = _label_matrix(labels, ids)
        if y.shape[1] == 0:
            test = np.random.default_rng(seed).permutation(n)[:k]
        else:
            _, test = next(_stratifier(k, seed).split(np.zeros((n, 1)), y))
        out.iloc[test] = "test"
        return out
    if groups is None:
        raise ValueError("a group split needs a patient per image")
    g = groups.copy()
    g.index = g.index.astype(str)
    g = g.reindex(ids)
    g = g.astype(object).where(g.notna(), pd.Series("\x00image:" + ids.to_series(), index=ids))
    codes, uniques = pd.factorize(g)
    n_groups = len(uniques)
    sizes = np.bincount(codes, minlength=n_groups)
    target_groups = min(max(1, int(round(n_groups * k / n))), n_groups - 1)
    if labels is not None:
        y = _label_matrix(labels, ids)
        gy = np.zeros((n_groups, y.shape[1]), dtype=np.int64)
        np.maximum.at(gy, codes, y) if y.shape[1] else None
        keep = (gy.sum(axis=0) > 0) & (gy.sum(axis=0) < n_groups)
        gy = gy[:, keep]
    else:
        gy = np.zeros((n_groups, 0), dtype=np.int64)
    if gy.shape[1]:
        _, test_groups = next(_stratifier(target_groups, seed).split(np.zeros((n_groups, 1)), gy))
    else:
        test_groups = np.random.default_rng(seed).permutation(n_groups)[:target_groups]
    test_groups = _adjust_to_size(test_groups, sizes, k, seed)
    is_test = np.zeros(n_groups, dtype=bool)
    is_test[test_groups] = True
    out[is_test[codes]] = "test"
    # No patient on both sides (the NIH rule); fails loudly rather than releasing a leaky split.
    both = pd.crosstab(codes, out.to_numpy()).gt(0).sum(axis=1).gt(1)
    if both.any():
        raise CxrlabError(f"internal error: {int(both.sum())} patient(s) on both sides of the split")
    return out


def _adjust_to_size(test_groups: np.ndarray, sizes: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Move whole groups (in a seeded order) so the test side's image count is as close to *k* as possible."""
    rng = np.random.default_rng(seed + 1)
    chosen = np.zeros(len(sizes), dtype=bool)
    chosen[test_groups] = True
    total = int(sizes[chosen].sum())
    for gi in rng.permutation(len(sizes)):
        if total == k:
            break
        if chosen[gi] and total > k and abs(total - sizes[gi] - k) < abs(total - k) and chosen.sum() > 1:
            chosen[gi] = False
            total -= int(sizes[gi])
        elif not chosen[gi] and total < k and abs(total + sizes[gi] - k) < abs(total - k) and (~chosen).sum() > 1:
            chosen[gi] = True
            total += int(sizes[gi])
    return np.flatnonzero(chosen)


def split_summary(labels: pd.DataFrame, split: pd.Series) -> pd.DataFrame:
    """Per label: positives and prevalence (%) on each side, and the difference in percentage points."""
    cols = [c for c in labels.columns if c not in ("image_id", "rad_id", "split")]
    frame = labels.set_index("image_id").reindex(split.index)[cols].fillna(0)
    rows = []
    for c in cols:
        tr = frame.loc[split == "train", c]
        te = frame.loc[split == "test", c]
        p_tr = 100 * tr.mean() if len(tr) else float("nan")
        p_te = 100 * te.mean() if len(te) else float("nan")
        rows.append({"label": c, "positives": int(frame[c].sum()), "train_pct": p_tr, "test_pct": p_te,
                     "diff_pp": abs(p_tr - p_te)})
    return pd.DataFrame(rows)


def write_split_lists(split: pd.Series, out: str | Path, *, suffix: str = "") -> dict[str, int]:
    """Write the NIH-style list files ``train_val_list.txt`` and ``test_list.txt`` (one image name per line,
    sorted) and ``split.csv`` (``image_id,split``) into *out*.

    Parameters
    ----------
    suffix : str
        Appended to each id in the list files (``.png`` for NIH names given without it).
    """
    out = Path(out)
    counts = {}
    for side, name in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        ids = sorted(split.index[split == side])
        atomic_write_text(out / name, "".join(f"{i}{'' if i.endswith(suffix) else suffix}\n" for i in ids))
        counts[side] = len(ids)
    frame = split.rename("split").rename_axis("image_id").reset_index().sort_values("image_id")
    atomic_write_text(out / "split.csv", frame.to_csv(index=False, lineterminator="\n"))
    return counts
