"""The labeling tool's door to the consensus stage: box fusion and agreement statistics.

The web app is a shell and may call later stages (DESIGN.md). The consensus stage provides
``cxrlab.consensus.fuse_reader_boxes`` (weighted box fusion of readers' boxes) and the agreement statistics
(Fleiss' kappa per label, pairwise box agreement at IoU 0.4); they are imported lazily here, so the rest of the
app depends on these three small functions only.

FALLBACK — remove at merge: while those functions are not on this branch, :func:`_fallback_fuse`,
:func:`_fallback_kappa` and :func:`_fallback_box_agreement` below give minimal versions of them (greedy
clustering at IoU 0.4 with coordinate averaging; Fleiss' kappa from the textbook formula; greedy one-to-one
matching of two readers' boxes). They exist only so this branch runs and tests on its own.
"""

from __future__ import annotations

import itertools
import math

import pandas as pd

__all__ = ["box_agreement", "fleiss_kappa", "fuse_reader_boxes"]

IOU_THR = 0.4


def fuse_reader_boxes(boxes: pd.DataFrame, *, iou_thr: float = IOU_THR) -> pd.DataFrame:
    """Fuse readers' boxes per image and class.

    Parameters
    ----------
    boxes : DataFrame
        Columns ``image_id, rad_id, class_name, x_min, y_min, x_max, y_max``.

    Returns
    -------
    DataFrame
        Columns ``image_id, class_name, x_min, y_min, x_max, y_max, score, votes``.
    """
    try:
        from cxrlab.consensus import fuse_reader_boxes as fuse  # type: ignore[attr-defined]
    except ImportError:
        fuse = _fallback_fuse
    return fuse(boxes, iou_thr=iou_thr)


def fleiss_kappa(table: pd.DataFrame) -> float:
    """Fleiss' kappa of one label: *table* has one row per image and the columns ``neg``, ``pos`` (counts of
    readers); ``nan`` when undefined (no variation at all)."""
    try:
        from cxrlab.consensus import fleiss_kappa as kappa  # type: ignore[attr-defined]
    except ImportError:
        kappa = _fallback_kappa
    return float(kappa(table))


def box_agreement(a: pd.DataFrame, b: pd.DataFrame, *, iou_thr: float = IOU_THR) -> dict[str, float]:
    """Agreement of two readers' boxes over the images both read: same class and IoU >= *iou_thr* is a match.

    Returns ``{"matched", "boxes_a", "boxes_b", "f1"}`` (F1 = 2 matched / (boxes_a + boxes_b); ``nan``
    when neither drew a box).
    """
    try:
        from cxrlab.consensus import box_agreement as agree  # type: ignore[attr-defined]
    except ImportError:
        agree = _fallback_box_agreement
    return agree(a, b, iou_thr=iou_thr)


# --- FALLBACK (remove at merge) ------------------------------------------------------------------------------


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


_COORDS = ["x_min", "y_min", "x_max", "y_max"]


def _fallback_fuse(boxes: pd.DataFrame, *, iou_thr: float = IOU_THR) -> pd.DataFrame:
    readers = boxes.groupby("image_id")["rad_id"].nunique() if len(boxes) else pd.Series(dtype=int)
    rows = []
    for (image_id, cls), group in boxes.groupby(["image_id", "class_name"], sort=True):
        clusters: list[list[tuple[float, ...]]] = []
        for box in group[_COORDS].itertuples(index=False, name=None):
            best = max(clusters, key=lambda c: _iou(_mean(c), box), default=None)
            if best is not None and _iou(_mean(best), box) >= iou_thr:
                best.append(box)
            else:
                clusters.append([box])
        for cluster in clusters:
            x0, y0, x1, y1 = _mean(cluster)
            n = max(int(readers.get(image_id, 1)), 1)
            rows.append([image_id, cls, x0, y0, x1, y1, min(1.0, len(cluster) / n), len(cluster)])
    return pd.DataFrame(rows, columns=["image_id", "class_name", *_COORDS, "score", "votes"])


def _mean(cluster: list[tuple[float, ...]]) -> tuple[float, ...]:
    return tuple(sum(b[i] for b in cluster) / len(cluster) for i in range(4))


def _fallback_kappa(table: pd.DataFrame) -> float:
    counts = table[["neg", "pos"]].to_numpy(dtype=float)
    counts = counts[counts.sum(axis=1) >= 2]
    if not len(counts):
        return math.nan
    n = counts.sum(axis=1)
    p_i = ((counts**2).sum(axis=1) - n) / (n * (n - 1))
    p_bar = p_i.mean()
    p_j = counts.sum(axis=0) / n.sum()
    p_e = (p_j**2).sum()
    return math.nan if p_e >= 1 else float((p_bar - p_e) / (1 - p_e))


def _fallback_box_agreement(a: pd.DataFrame, b: pd.DataFrame, *, iou_thr: float = IOU_THR) -> dict[str, float]:
    matched = 0
    for (image_id, cls), ga in a.groupby(["image_id", "class_name"]):
        gb = b[(b["image_id"] == image_id) & (b["class_name"] == cls)]
        pairs = sorted(
            (
                (_iou(pa, pb), i, j)
                for (i, pa), (j, pb) in itertools.product(
                    enumerate(ga[_COORDS].itertuples(index=False, name=None)),
                    enumerate(gb[_COORDS].itertuples(index=False, name=None)),
                )
            ),
            reverse=True,
        )
        used_a: set[int] = set()
        used_b: set[int] = set()
        for iou, i, j in pairs:
            if iou >= iou_thr and i not in used_a and j not in used_b:
                used_a.add(i)
                used_b.add(j)
                matched += 1
    total = len(a) + len(b)
    return {"matched": matched, "boxes_a": len(a), "boxes_b": len(b), "f1": 2 * matched / total if total else math.nan}
