"""Inter-reader agreement: Fleiss' kappa per label and pairwise box agreement at an IoU threshold.

The web app's dashboard and ``cxrlab consensus --agreement`` call :func:`agreement_report`.

Fleiss' kappa (Fleiss, "Measuring nominal scale agreement among many raters", Psychological Bulletin 76(5),
1971) is computed per label on the 0/1 votes, in its form for a varying number of raters per subject (Fleiss,
Levin & Paik, "Statistical Methods for Rates and Proportions", 3rd ed., section 18.1): images read by fewer
than two readers are left out. It is written here with numpy (a dozen lines) because ``statsmodels``'
``fleiss_kappa`` would add a heavy dependency for one formula and needs the same number of raters on every
image; the tests check both agree when it applies.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cxrlab.schemas import BOX_COLUMNS, LabelSchema

__all__ = ["AgreementReport", "agreement_report", "box_agreement", "fleiss_kappa", "fleiss_kappa_counts"]


def fleiss_kappa_counts(counts: np.ndarray) -> float:
    """Fleiss' kappa of a subjects x categories table of rater counts (rows may have different totals).

    Returns NaN when fewer than one subject has two raters, or when every rating falls in one category
    (expected agreement 1: kappa undefined).
    """
    counts = np.asarray(counts, dtype=float)
    n = counts.sum(axis=1)
    keep = n >= 2
    counts, n = counts[keep], n[keep]
    if len(n) == 0:
        return float("nan")
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_j = counts.sum(axis=0) / n.sum()
    p_e = float((p_j**2).sum())
    if np.isclose(p_e, 1.0):
        return float("nan")
    return float((p_i.mean() - p_e) / (1.0 - p_e))


def fleiss_kappa(votes: pd.DataFrame, labels: list[str] | None = None) -> pd.Series:
    """Fleiss' kappa per label of an ``image_labels_train.csv``-style table.

    Parameters
    ----------
    votes : DataFrame
        ``image_id, rad_id`` and one 0/1 column per label, one row per reader per image.
    labels : list of str, optional
        Labels to score (default: every column but ``image_id``/``rad_id``).

    Returns
    -------
    Series
        Kappa per label (NaN when undefined: nobody or everybody marked it, or no image has two readers).
    """
    labels = labels or [c for c in votes.columns if c not in ("image_id", "rad_id")]
    if votes.empty:
        return pd.Series(np.nan, index=labels, dtype=float)
    grouped = votes.groupby("image_id")
    pos = grouped[labels].sum().to_numpy(dtype=float)
    n = grouped.size().to_numpy(dtype=float)[:, None]
    out = {}
    for j, name in enumerate(labels):
        out[name] = fleiss_kappa_counts(np.stack([pos[:, j], n[:, 0] - pos[:, j]], axis=1))
    return pd.Series(out, dtype=float)


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    xa = np.maximum(a[:, 0], b[:, 0])
    ya = np.maximum(a[:, 1], b[:, 1])
    xb = np.minimum(a[:, 2], b[:, 2])
    yb = np.minimum(a[:, 3], b[:, 3])
    inter = np.maximum(xb - xa, 0) * np.maximum(yb - ya, 0)
    union = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]) + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def box_agreement(boxes: pd.DataFrame, *, iou_thr: float = 0.4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Pairwise reader agreement on boxes.

    For every image, every pair of its readers and every class, the two readers' boxes are matched one to
    one, greedily by decreasing IoU, when IoU >= *iou_thr*. Agreement = 2 x matched / (boxes of A + boxes of
    B) (the Dice/F1 of two box sets; 1 = same boxes, 0 = none shared). A reader who drew no box of a class
    on an image still counts for that image (rows with empty coordinates, e.g. "No finding", say who read it).

    Parameters
    ----------
    boxes : DataFrame
        ``image_id, rad_id, class_name, x_min, y_min, x_max, y_max``.

    Returns
    -------
    per_class : DataFrame
        ``class_name, boxes, matched, agreement`` (``boxes`` = sum of n_A + n_B over pairs).
    per_pair : DataFrame
        ``rad_a, rad_b, images, boxes, matched, agreement``.
    """
    frame = boxes[["image_id", "rad_id", "class_name", *BOX_COLUMNS]].copy()
    frame["rad_id"] = frame["rad_id"].astype(str)
    readers = frame[["image_id", "rad_id"]].drop_duplicates()
    real = frame.dropna(subset=BOX_COLUMNS).reset_index(drop=True)
    real["box"] = np.arange(len(real))
    # Candidate pairs: same image and class, two different readers (a < b).
    cand = real.merge(real, on=["image_id", "class_name"], suffixes=("_a", "_b"))
    cand = cand.loc[cand["rad_id_a"] < cand["rad_id_b"]]
    a = cand[[f"{c}_a" for c in BOX_COLUMNS]].to_numpy(dtype=float)
    b = cand[[f"{c}_b" for c in BOX_COLUMNS]].to_numpy(dtype=float)
    cand = cand.assign(iou=_iou(a, b))
    cand = cand.loc[cand["iou"] >= iou_thr].sort_values("iou", ascending=False, kind="stable")
    used: set[tuple[int, str]] = set()  # (box, the other reader): a box is matched at most once per reader pair
    matched_rows = []
    # Greedy one-to-one matching within each reader pair: a short loop over the candidates above the threshold.
    for ba, bb, cls, ra, rb in zip(cand["box_a"], cand["box_b"], cand["class_name"], cand["rad_id_a"],
                                   cand["rad_id_b"], strict=True):
        if (ba, rb) in used or (bb, ra) in used:
            continue
        used.add((ba, rb))
        used.add((bb, ra))
        matched_rows.append((cls, ra, rb))
    matched = pd.DataFrame(matched_rows, columns=["class_name", "rad_a", "rad_b"])
    # Denominators: for each image, reader r's boxes of a class count once per other reader of the image.
    n_readers = readers.groupby("image_id").size().rename("n_readers")
    counts = real.groupby(["image_id", "rad_id", "class_name"]).size().rename("n").reset_index()
    counts = counts.merge(n_readers, on="image_id")
    counts["weight"] = counts["n"] * (counts["n_readers"] - 1)
    per_class = counts.groupby("class_name")["weight"].sum().rename("boxes").to_frame()
    per_class["matched"] = matched.groupby("class_name").size().reindex(per_class.index, fill_value=0)
    per_class["agreement"] = np.where(per_class["boxes"] > 0, 2 * per_class["matched"] / per_class["boxes"], np.nan)
    per_class = per_class.reset_index()
    # Per reader pair: images both read, their boxes on those images, matches.
    pairs = readers.merge(readers, on="image_id", suffixes=("_a", "_b"))
    pairs = pairs.loc[pairs["rad_id_a"] < pairs["rad_id_b"]]
    per_img = real.groupby(["image_id", "rad_id"]).size().rename("n")
    pa = per_img.reindex(pd.MultiIndex.from_frame(pairs[["image_id", "rad_id_a"]]), fill_value=0).to_numpy()
    pb = per_img.reindex(pd.MultiIndex.from_frame(pairs[["image_id", "rad_id_b"]]), fill_value=0).to_numpy()
    pairs = pairs.assign(boxes=pa + pb).rename(columns={"rad_id_a": "rad_a", "rad_id_b": "rad_b"})
    per_pair = pairs.groupby(["rad_a", "rad_b"]).agg(images=("image_id", "size"), boxes=("boxes", "sum"))
    per_pair["matched"] = matched.groupby(["rad_a", "rad_b"]).size().reindex(per_pair.index, fill_value=0)
    per_pair["agreement"] = np.where(per_pair["boxes"] > 0, 2 * per_pair["matched"] / per_pair["boxes"], np.nan)
    return per_class, per_pair.reset_index()


@dataclass
class AgreementReport:
    """Agreement between readers.

    Attributes
    ----------
    labels : DataFrame
        ``label, kind, kappa, images, positive_share`` (share of reads marking the label).
    boxes : DataFrame
        Per class: ``class_name, boxes, matched, agreement`` at ``iou_thr``.
    pairs : DataFrame
        Per reader pair: ``rad_a, rad_b, images, boxes, matched, agreement``.
    iou_thr : float
        IoU threshold of the box matching.
    """

    labels: pd.DataFrame
    boxes: pd.DataFrame
    pairs: pd.DataFrame
    iou_thr: float

    def to_dict(self) -> dict:
        """JSON-ready dict (NaN becomes None)."""

        def recs(df: pd.DataFrame) -> list[dict]:
            return [{k: (None if isinstance(v, float) and np.isnan(v) else v) for k, v in r.items()}
                    for r in df.to_dict("records")]

        return {"iou_thr": self.iou_thr, "labels": recs(self.labels), "boxes": recs(self.boxes),
                "pairs": recs(self.pairs)}


def agreement_report(
    labels_df: pd.DataFrame | None = None,
    boxes_df: pd.DataFrame | None = None,
    *,
    schema: LabelSchema | None = None,
    iou_thr: float = 0.4,
) -> AgreementReport:
    """Inter-reader agreement for a dashboard: Fleiss' kappa per label and box agreement at *iou_thr*.

    Parameters
    ----------
    labels_df : DataFrame, optional
        ``image_id, rad_id`` and one 0/1 column per label (``image_labels_train.csv`` layout).
    boxes_df : DataFrame, optional
        ``image_id, rad_id, class_name, x_min, y_min, x_max, y_max`` (``annotations_train.csv`` layout).
    schema : LabelSchema, optional
        Gives the label order and kinds (``local``/``global``); default: the label columns as found.
    iou_thr : float
        IoU threshold of the box matching (0.4: the VinDr-CXR challenge's mAP@0.4).
    """
    label_rows = []
    if labels_df is not None and len(labels_df):
        names = [c for c in labels_df.columns if c not in ("image_id", "rad_id")]
        if schema is not None:
            names = [n for n in schema.names if n in labels_df.columns]
        kinds = {lb.name: lb.kind for lb in schema.labels} if schema is not None else {}
        kappa = fleiss_kappa(labels_df, names)
        images = labels_df.groupby("image_id").size()
        multi = int((images >= 2).sum())
        for name in names:
            label_rows.append({"label": name, "kind": kinds.get(name, ""), "kappa": kappa[name], "images": multi,
                               "positive_share": float(labels_df[name].mean())})
    labels = pd.DataFrame(label_rows, columns=["label", "kind", "kappa", "images", "positive_share"])
    if boxes_df is not None and len(boxes_df):
        per_class, per_pair = box_agreement(boxes_df, iou_thr=iou_thr)
    else:
        per_class = pd.DataFrame(columns=["class_name", "boxes", "matched", "agreement"])
        per_pair = pd.DataFrame(columns=["rad_a", "rad_b", "images", "boxes", "matched", "agreement"])
    return AgreementReport(labels=labels, boxes=per_class, pairs=per_pair, iou_thr=iou_thr)
