"""NIH ChestX-ray8 localization: accuracy and average false positives at T(IoU) and T(IoBB) thresholds.

ChestX-ray8 (Wang et al., CVPR 2017; cited by the NIH ChestX-ray14 README), Sec. 5.2 and Table 4: a predicted
box localizes a ground-truth box of the same disease on the same image when their IoU, or the intersection over
the *detected* box's area (IoBB), is above the threshold T; Table 4 reports, per disease and threshold, the
accuracy (Acc.) and the average number of false positives (AFP), at T(IoU) = 0.1 ... 0.7 and
T(IoBB) = 0.1, 0.25, 0.5, 0.75, 0.9.

As computed here (the paper gives no formula; these are the usual readings, stated so scores can be compared):

- **Acc.** = ground-truth boxes of the disease with at least one predicted box of that disease on its image
  above T, over all ground-truth boxes of the disease;
- **AFP** = predicted boxes of the disease that localize no ground-truth box of it at T, over the number of
  images that have a ground-truth box of the disease. Predicted boxes of a disease on
  images without a ground-truth box of it are not scored (the benchmark localizes the disease it is told an
  image has) and are counted in ``notes``.

Files use the layout of NIH's ``BBox_List_2017.csv``: a header line, then ``Image Index, Finding Label, x, y,
w, h`` (read by position; further columns such as a score are ignored). Labels are matched case-insensitively,
"Infiltration" matching the box list's "Infiltrate".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.evaluate.boxes import iobb, iou_xyxy, pairs, segments
from cxrlab.evaluate.exceptions import EvaluationError
from cxrlab.evaluate.formats import line_of, numeric, read_csv

__all__ = ["IOBB_THRESHOLDS", "IOU_THRESHOLDS", "LocalizationResult", "read_nih_boxes", "score_localization"]

#: Thresholds of ChestX-ray8, Table 4.
IOU_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
IOBB_THRESHOLDS = (0.1, 0.25, 0.5, 0.75, 0.9)
ALIASES = {"infiltration": "infiltrate"}


@dataclass
class LocalizationResult:
    """Acc. and AFP per criterion (``iou``, ``iobb``), threshold and disease, and a ``mean`` over diseases.

    ``table[criterion][threshold][disease] = {"acc": float, "afp": float}``.
    """

    table: dict[str, dict[float, dict[str, dict[str, float]]]]
    diseases: list[str]
    gt_boxes: dict[str, int]
    images: dict[str, int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form (thresholds as strings)."""
        return {
            "table": {c: {str(t): v for t, v in rows.items()} for c, rows in self.table.items()},
            "gt_boxes": self.gt_boxes,
            "images": self.images,
            "notes": self.notes,
        }


def read_nih_boxes(source: str | Path | pd.DataFrame, *, what: str = "boxes") -> pd.DataFrame:
    """Read a ``BBox_List_2017.csv``-style table into ``image, label, x_min, y_min, x_max, y_max``.

    Raises
    ------
    EvaluationError
        Fewer than six columns, or a row whose x, y, w or h is not a number or whose w or h is negative
        (naming file and line).
    """
    frame, name = read_csv(source, what=what)
    if frame.shape[1] < 6:
        raise EvaluationError(f"{name}: need columns Image Index, Finding Label, x, y, w, h")
    xywh = np.column_stack([numeric(frame.iloc[:, i]) for i in range(2, 6)])
    bad = ~np.isfinite(xywh).all(axis=1) | (xywh[:, 2] < 0) | (xywh[:, 3] < 0)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise EvaluationError(f"{name}:{line_of(row)}: x, y, w, h must be numbers with w, h >= 0")
    return pd.DataFrame(
        {
            "image": frame.iloc[:, 0].astype(str).str.strip().to_numpy(),
            "label": frame.iloc[:, 1].astype(str).str.strip().to_numpy(),
            "x_min": xywh[:, 0],
            "y_min": xywh[:, 1],
            "x_max": xywh[:, 0] + xywh[:, 2],
            "y_max": xywh[:, 1] + xywh[:, 3],
        }
    )


def _key(label: str) -> str:
    k = label.casefold()
    return ALIASES.get(k, k)


def score_localization(
    gt: str | Path | pd.DataFrame,
    pred: str | Path | pd.DataFrame,
    *,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    iobb_thresholds: Sequence[float] = IOBB_THRESHOLDS,
) -> LocalizationResult:
    """Score predicted boxes against NIH ground-truth boxes as in ChestX-ray8, Table 4.

    Parameters
    ----------
    gt, pred : path or DataFrame
        ``BBox_List_2017.csv`` layout (see :func:`read_nih_boxes`).
    iou_thresholds, iobb_thresholds : sequence of float
        T(IoU) and T(IoBB); a box passes when the ratio is strictly above T.

    Returns
    -------
    LocalizationResult
    """
    truth = read_nih_boxes(gt, what="ground truth")
    guess = read_nih_boxes(pred, what="predictions")
    if truth.empty:
        raise EvaluationError("the ground truth has no box")
    names = {_key(v): v for v in pd.unique(truth["label"])}
    diseases = sorted(names.values())
    keys = list(names)
    # one group per (image, disease) of the ground truth: image code * diseases + disease code
    img_code, images_ = pd.factorize(truth["image"])
    g_dis = pd.Index(keys).get_indexer(truth["label"].map(_key))
    g_key = img_code * len(keys) + g_dis
    order = np.argsort(g_key, kind="stable")
    g_key, g_dis = g_key[order], g_dis[order]
    g_box = truth[["x_min", "y_min", "x_max", "y_max"]].to_numpy()[order]
    start, count = segments(g_key, len(images_) * len(keys))
    p_img = pd.Index(images_).get_indexer(guess["image"])
    p_dis = pd.Index(keys).get_indexer(guess["label"].map(_key))
    p_key = np.where((p_img >= 0) & (p_dis >= 0), p_img * len(keys) + p_dis, -1)
    p_idx = np.flatnonzero(p_key >= 0)
    p_idx = p_idx[count[p_key[p_idx]] > 0]
    notes = []
    if len(p_idx) < len(guess):
        notes.append(
            f"{len(guess) - len(p_idx)} predicted box(es) on images without a ground-truth box of their disease "
            "not scored"
        )
    item, box, _ = pairs(p_key[p_idx], start, count)
    d = guess[["x_min", "y_min", "x_max", "y_max"]].to_numpy()[p_idx][item]
    g = g_box[box]
    ratios = {"iou": iou_xyxy(d, g), "iobb": iobb(d, g)}
    thresholds = {"iou": tuple(iou_thresholds), "iobb": tuple(iobb_thresholds)}
    groups_with_gt = np.flatnonzero(count > 0)
    gt_boxes = {names[k]: int((g_dis == i).sum()) for i, k in enumerate(keys)}
    images = {names[k]: int((groups_with_gt % len(keys) == i).sum()) for i, k in enumerate(keys)}
    p_dis_scored = p_dis[p_idx]
    table: dict[str, dict[float, dict[str, dict[str, float]]]] = {}
    for criterion, ratio in ratios.items():
        table[criterion] = {}
        for t in thresholds[criterion]:
            hit = ratio > t
            found = np.zeros(len(g_key), bool)
            found[box[hit]] = True
            pred_hits = np.zeros(len(p_idx), bool)
            pred_hits[item[hit]] = True
            fp_disease = p_dis_scored[~pred_hits]
            row = {}
            for i, k in enumerate(keys):
                name = names[k]
                row[name] = {
                    "acc": float(found[g_dis == i].mean()),
                    "afp": float((fp_disease == i).sum() / images[name]),
                }
            row = {n: row[n] for n in diseases}
            row["mean"] = {m: float(np.mean([row[n][m] for n in diseases])) for m in ("acc", "afp")}
            table[criterion][t] = row
    return LocalizationResult(table, diseases, gt_boxes, images, notes)
