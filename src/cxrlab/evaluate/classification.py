"""Image-level classification: per-class AUC with a seeded bootstrap 95 % interval, mean AUC, and sensitivity,
specificity and F1 at a fixed or Youden threshold.

The seeds report classification by per-class AUC (VinDr-CXR and VinDr-PCXR data descriptors, "Technical
Validation"; ChestX-ray8 / NIH README [1], Table 3). AUC and the ROC curve come from scikit-learn (the ``[eval]``
extra). The bootstrap is written here because scikit-learn has none and ``scipy.stats.bootstrap`` would re-sort
every resample: a resample is a vector of counts over the images, and with the scores sorted once per class the
AUC of every resample is a weighted Mann-Whitney sum (ties count one half, as in ``roc_auc_score``), computed for
all resamples at once. Resamples are drawn once for all classes (paired over images) from
``numpy.random.default_rng(seed)``, so intervals are reproducible by seed; a resample without a positive or a
negative is skipped for that class; the interval is the percentile interval (``numpy.percentile``, linear).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.evaluate.exceptions import EvaluationError
from cxrlab.evaluate.formats import line_of, numeric, read_csv
from cxrlab.runtime.report import ProgressCallback

__all__ = ["ClassScore", "ClassificationResult", "bootstrap_auc", "resamples", "score_classification"]

ID_COLUMNS = ("image_id", "rad_id")


def _sklearn_metrics():  # noqa: ANN202 - the sklearn.metrics module
    try:
        from sklearn import metrics
    except ImportError:
        raise EvaluationError("classification metrics need scikit-learn: pip install 'cxrlab[eval]'") from None
    return metrics


@dataclass
class ClassScore:
    """Scores of one label (``auc`` and its interval are None when the label has no positive or no negative)."""

    name: str
    positives: int
    negatives: int
    auc: float | None
    ci_low: float | None
    ci_high: float | None
    threshold: float | None
    sensitivity: float | None
    specificity: float | None
    f1: float | None


@dataclass
class ClassificationResult:
    """Per-class scores, the mean AUC over labels with an AUC, and how they were computed."""

    per_class: list[ClassScore]
    mean_auc: float
    images: int
    n_boot: int
    seed: int
    ci: float
    threshold: str
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form (NaN becomes None)."""
        return {
            "mean_auc": None if not np.isfinite(self.mean_auc) else self.mean_auc,
            "per_class": {c.name: {k: v for k, v in asdict(c).items() if k != "name"} for c in self.per_class},
            "images": self.images,
            "n_boot": self.n_boot,
            "seed": self.seed,
            "ci": self.ci,
            "threshold": self.threshold,
            "notes": self.notes,
        }


BOOT_CHUNK = 50  # resamples drawn and scored together (fixed: the draws depend on it)


def resamples(n: int, *, n_boot: int, seed: int):  # noqa: ANN201 - iterator of int arrays
    """The bootstrap draws: chunks of at most ``BOOT_CHUNK`` rows of *n* image indices (with replacement)."""
    rng = np.random.default_rng(seed)
    for start in range(0, n_boot, BOOT_CHUNK):
        yield rng.integers(0, n, size=(min(BOOT_CHUNK, n_boot - start), n))


def bootstrap_auc(
    y: np.ndarray,
    scores: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    on_progress: ProgressCallback | None = None,
) -> np.ndarray:
    """AUC of every bootstrap resample of the images, per class.

    Parameters
    ----------
    y : ndarray of 0/1, shape (N, K)
    scores : ndarray of float, shape (N, K)
    n_boot : int
        Resamples (each draws N images with replacement, see :func:`resamples`).
    seed : int
        Seed of ``numpy.random.default_rng``.
    on_progress : callable, optional
        ``on_progress(done, n_boot)`` after each chunk of resamples.

    Returns
    -------
    ndarray, shape (n_boot, K)
        NaN where a resample has no positive or no negative of that class.
    """
    y = np.asarray(y, dtype=bool).reshape(len(y), -1)
    scores = np.asarray(scores, dtype=float).reshape(len(scores), -1)
    n, k = y.shape
    orders = [np.argsort(scores[:, j], kind="stable") for j in range(k)]
    blocks = [np.flatnonzero(np.r_[True, np.diff(scores[o, j]) != 0]) for j, o in enumerate(orders)]
    out = np.full((n_boot, k), np.nan)
    done = 0
    for draws in resamples(n, n_boot=n_boot, seed=seed):
        b = len(draws)
        counts = np.bincount((draws + n * np.arange(b)[:, None]).ravel(), minlength=b * n).reshape(b, n)
        for j in range(k):
            pos = y[orders[j], j]
            w = counts[:, orders[j]].astype(np.float64)
            w_pos = np.add.reduceat(np.where(pos, w, 0.0), blocks[j], axis=1)  # per block of tied scores
            w_neg = np.add.reduceat(w, blocks[j], axis=1) - w_pos
            below = np.cumsum(w_neg, axis=1) - w_neg
            total_pos, total_neg = w_pos.sum(axis=1), w_neg.sum(axis=1)
            ok = (total_pos > 0) & (total_neg > 0)
            num = np.sum(w_pos * (below + 0.5 * w_neg), axis=1)
            out[done : done + b, j][ok] = num[ok] / (total_pos[ok] * total_neg[ok])
        done += b
        if on_progress is not None:
            on_progress(done, n_boot)
    return out


def _read_table(source: str | Path | pd.DataFrame, what: str) -> tuple[pd.DataFrame, str]:
    frame, name = read_csv(source, what=what)
    if "image_id" not in frame.columns:
        raise EvaluationError(f"{name}: missing column image_id")
    frame = frame.copy()
    frame["image_id"] = frame["image_id"].astype(str).str.strip()
    dup = frame["image_id"].duplicated(keep="first").to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        hint = " (one row per image: the test file or a majority vote)" if what == "labels" else ""
        raise EvaluationError(f"{name}:{line_of(row)}: image id repeated ({dup.sum()} repeated row(s)){hint}")
    return frame, name


def _youden(metrics, y: np.ndarray, s: np.ndarray) -> float:  # noqa: ANN001
    fpr, tpr, thr = metrics.roc_curve(y, s)
    return float(thr[int(np.argmax(tpr - fpr))])


def score_classification(
    gt: str | Path | pd.DataFrame,
    probs: str | Path | pd.DataFrame,
    *,
    labels: Sequence[str] | None = None,
    threshold: float | str = "youden",
    n_boot: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    image_ids: Collection[str] | None = None,
    on_progress: ProgressCallback | None = None,
) -> ClassificationResult:
    """Score per-image probabilities against image-level labels.

    Parameters
    ----------
    gt : path or DataFrame
        ``image_labels_test.csv`` layout: ``image_id`` (``rad_id`` ignored) and one 0/1 column per label, one
        row per image.
    probs : path or DataFrame
        ``image_id`` and one probability (any real score) column per label.
    labels : sequence of str, optional
        Labels to score; default: every label column present in both tables.
    threshold : float or "youden"
        Decision threshold for sensitivity, specificity and F1 (positive when ``score >= threshold``):
        one number for every label, or per label the point of the ROC curve maximising Youden's
        J = sensitivity + specificity - 1.
    n_boot, seed, ci
        Bootstrap resamples, seed and interval level.
    image_ids : collection of str, optional
        Score these images only.
    on_progress : callable, optional
        ``on_progress(done, n_boot)`` while resampling.

    Raises
    ------
    EvaluationError
        Missing or repeated images, prediction columns that are not labels of the ground truth, labels that are
        not 0/1, scores that are not finite numbers (naming file and line), scikit-learn missing.
    """
    if isinstance(threshold, str) and threshold != "youden":
        raise EvaluationError(f"threshold must be a number or 'youden', got {threshold!r}")
    if not 0.0 < ci < 1.0 or n_boot < 0:
        raise EvaluationError("ci must be between 0 and 1 and n_boot >= 0")
    metrics = _sklearn_metrics()
    truth, gname = _read_table(gt, "labels")
    pred, pname = _read_table(probs, "probabilities")
    known = [c for c in truth.columns if c not in ID_COLUMNS]
    given = [c for c in pred.columns if c not in ID_COLUMNS]
    unknown = [c for c in given if c not in known]
    if unknown:
        raise EvaluationError(f"{pname}:1: column(s) not among the labels of {gname}: {', '.join(unknown)}")
    if labels is None:
        labels = [c for c in known if c in given]
    missing = [c for c in labels if c not in given or c not in known]
    if missing:
        raise EvaluationError(f"label(s) not in both files: {', '.join(missing)}")
    if not labels:
        raise EvaluationError(f"{pname}: no label column to score")
    notes = []
    unscored = [c for c in known if c not in labels]
    if unscored:
        notes.append(f"not scored (no predictions): {', '.join(unscored)}")
    if image_ids is not None:
        wanted = set(image_ids)
        truth = truth[truth["image_id"].isin(wanted)].reset_index(drop=True)
    pos = pd.Index(pred["image_id"]).get_indexer(truth["image_id"])
    if (pos < 0).any():
        first = int(np.flatnonzero(pos < 0)[0])
        raise EvaluationError(
            f"{pname}: {(pos < 0).sum()} image(s) of {gname} have no prediction (first: line {line_of(first)} "
            f"of {gname})"
        )
    extra = len(pred) - len(np.unique(pos))
    if extra:
        notes.append(f"{extra} predicted image(s) not in the scored ground truth ignored")
    y = np.column_stack([numeric(truth[c]) for c in labels])
    bad = ~np.isin(y, (0.0, 1.0))
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        raise EvaluationError(f"{gname}:{line_of(row)}: label {labels[col]!r} is not 0 or 1")
    raw = np.column_stack([numeric(pred[c]) for c in labels])
    bad_rows = ~np.isfinite(raw).all(axis=1)
    if bad_rows.any():
        row = int(np.flatnonzero(bad_rows)[0])
        raise EvaluationError(f"{pname}:{line_of(row)}: probability is empty, not a number or infinite")
    s = raw[pos]
    boot = bootstrap_auc(y, s, n_boot=n_boot, seed=seed, on_progress=on_progress)
    lo_q, hi_q = 100 * (1 - ci) / 2, 100 * (1 + ci) / 2
    rows = []
    for j, name in enumerate(labels):
        yj, sj = y[:, j].astype(bool), s[:, j]
        n_pos, n_neg = int(yj.sum()), int((~yj).sum())
        auc = lo = hi = thr = sens = spec = f1 = None
        if n_pos and n_neg:
            auc = float(metrics.roc_auc_score(yj, sj))
            valid = boot[:, j][np.isfinite(boot[:, j])]
            if valid.size:
                lo, hi = (float(v) for v in np.percentile(valid, [lo_q, hi_q]))
            thr = _youden(metrics, yj, sj) if threshold == "youden" else float(threshold)
        elif threshold != "youden":
            thr = float(threshold)
        if thr is not None:
            hit = sj >= thr
            tp, fp = int((hit & yj).sum()), int((hit & ~yj).sum())
            fn, tn = n_pos - tp, n_neg - fp
            sens = tp / n_pos if n_pos else None
            spec = tn / n_neg if n_neg else None
            f1 = 2 * tp / (2 * tp + fp + fn) if (tp + fp + fn) else None
        rows.append(ClassScore(name, n_pos, n_neg, auc, lo, hi, thr, sens, spec, f1))
    aucs = [r.auc for r in rows if r.auc is not None]
    return ClassificationResult(
        per_class=rows,
        mean_auc=float(np.mean(aucs)) if aucs else float("nan"),
        images=len(truth),
        n_boot=n_boot,
        seed=seed,
        ci=ci,
        threshold=str(threshold),
        notes=notes,
    )
