"""Detection mAP: the community metric of the public challenge (``kaggle``), PASCAL VOC (``voc``) and COCO
(``coco``), vectorised with numpy.

Why not call pycocotools: its ``COCOeval`` matches boxes in a Python loop per detection and ground-truth box
(5 s for the 3,000-image test set, see ``bench/metrics.py``) and it must be fed dictionaries. This module
reimplements exactly what ``COCOeval.evaluateImg`` and ``COCOeval.accumulate`` compute for ``iouType="bbox"``,
area range "all" and ``maxDets=100`` with array operations: the greedy matching runs one step per detection
rank (at most 100 steps), each step matching the rank-*r* detection of every (image, class) at once.
The property tests in ``tests/unit/evaluate/test_detection.py`` compare it with pycocotools to 1e-9.

What ``COCOeval`` does, and so what this module does (pycocotools 2.0, ``cocoeval.py``):

- the scored classes are the ground truth's categories; a class without a ground-truth box gets precision -1
  and is left out of the mean; predictions of other classes are ignored;
- per (image, class) the detections are sorted by descending confidence with a stable sort (ties keep
  submission order) and cut to the first ``maxDets=100``; ground truth marked "ignore" (area outside the
  range; never crowd here) is sorted last;
- each detection in turn takes the not yet matched ground-truth box of the highest IoU that is ``>= t``
  (``t`` capped at ``1 - 1e-10``); among equal IoUs the later box wins; an ignored box is taken only when no
  regular box qualifies, and the detection is then ignored as well; an unmatched detection whose area is outside
  the range is ignored;
- per class, detections of all images are stably sorted by descending confidence (ties: image order, then
  rank in the image); precision is made monotone (running maximum from the right) and read at the 101 recall
  points ``0, 0.01, ..., 1`` with ``searchsorted(side="left")`` (0 beyond the last recall reached);
- AP of a class is the mean over recall points (and IoU thresholds); mAP the mean over classes with ground truth.

The ``kaggle`` metric is the notebook the challenge's participants scored themselves with (P. Pestov's
"competition metric mAP@0.4", later used by MLE-bench to grade the challenge): ``COCOeval`` with
``iouThrs=[0.4]``, categories on, default ``maxDets`` and area ranges, ``stats[0]`` (area "all",
``maxDets=100``). It builds the COCO dictionaries itself, and four of its choices change scores:

1. **The box quirk.** It stores ``[x_min, y_min, x_max, y_max]`` in COCO's ``[x, y, w, h]`` field, so COCO
   computes IoU on the box from ``(x_min, y_min)`` to ``(x_min + x_max, y_min + y_max)``: every box is
   stretched by its own offset from the image origin, boxes far from the origin become large and overlap more
   readily, and a prediction that is a little off can still pass IoU 0.4. On synthetic data this moved mAP from
   0.135 (correct boxes) to 0.220 (the design notes, "Known hazards"). The "No finding" box ``0 0 1 1`` is the same
   either way.
2. **Areas.** The ``area`` it stores (used only for the "all" range ``[0, 1e10]``) is the correct one,
   ``(x_max - x_min) * (y_max - y_min)``: a box with ``x_max < x_min`` has a negative area and is ignored.
3. **Ids from 0.** Image, ground-truth and prediction ids are numbered from 0 (images in order of first
   appearance in the ground truth, boxes in file order), and ``COCOeval`` treats a match id of 0 as "no
   match": a prediction matched to the first ground-truth box counts as a false positive (that box can never
   be found), and the ground-truth box matched by the very first prediction stays free for a second prediction.
   Both effects are reproduced here.
4. **Categories** are the class ids present in the ground truth (sorted); the challenge's 15 when scoring the
   full test set.

``coco`` is ``COCOeval`` as the COCO benchmark runs it (boxes converted to ``[x, y, w, h]``, ids from 1):
mAP@[.50:.95] with AP50 and AP75; given one IoU threshold it is ``COCOeval`` at that threshold with correct
boxes, so ``kaggle`` next to ``coco`` at 0.4 measures what the community notebook's quirks do to a submission.

``voc`` is PASCAL VOC 2010 all-point AP ("The challenge uses the standard PASCAL VOC 2010 mean Average Precision
(mAP) at IoU > 0.4", the challenge's evaluation page) with correct boxes: per class, detections of all images by
descending confidence (stable), each takes the ground-truth box of its image it overlaps most (first on ties) and
is a true positive when that IoU is ``> 0.4`` and the box is not taken yet; AP is the area under the monotone
precision envelope at every recall change (VOC devkit ``VOCap``); no ``maxDets`` cut; continuous coordinates
(no "+1" pixel).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.evaluate.boxes import iou_xywh, iou_xyxy, pairs, segments
from cxrlab.evaluate.classes import CHALLENGE, ClassList
from cxrlab.evaluate.exceptions import EvaluationError
from cxrlab.evaluate.formats import GroundTruth, Predictions, parse_predictions, read_annotations, read_submission

__all__ = [
    "COCO_IOUS",
    "DetectionResult",
    "Metric",
    "check_metric",
    "coco_precision",
    "score_detections",
    "score_submission",
    "voc_average_precision",
]

#: COCO's IoU thresholds 0.50:0.05:0.95 and recall points 0:0.01:1, built exactly as ``cocoeval.Params`` does.
COCO_IOUS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.00, int(np.round((1.00 - 0.0) / 0.01)) + 1, endpoint=True)
MAX_DETS = 100
AREA_ALL = (0.0**2, 1e5**2)
CHALLENGE_IOU = 0.4


class Metric(StrEnum):
    """Detection metrics."""

    KAGGLE = "kaggle"
    VOC = "voc"
    COCO = "coco"


@dataclass
class DetectionResult:
    """The score of one submission.

    Attributes
    ----------
    metric : str
        ``kaggle``, ``voc`` or ``coco``.
    mAP : float
        Mean AP over the classes with ground truth (NaN when none has).
    per_class : dict of str to float or None
        AP per class name of the class list; None for a class without ground truth (left out of the mean).
    iou : tuple of float
        IoU threshold(s).
    extra : dict of str to float
        ``AP50`` and ``AP75`` for ``coco``.
    images, gt_boxes, predictions : int
        Images scored, ground-truth boxes, predictions on those images.
    gt_per_class : dict of str to int
        Ground-truth boxes per class name.
    notes : list of str
        What was left out (ground-truth rows of other classes, predictions on other images).
    """

    metric: str
    mAP: float
    per_class: dict[str, float | None]
    iou: tuple[float, ...]
    extra: dict[str, float] = field(default_factory=dict)
    images: int = 0
    gt_boxes: int = 0
    predictions: int = 0
    gt_per_class: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-ready form (NaN becomes None)."""

        def clean(v: float | None) -> float | None:
            return None if v is None or not np.isfinite(v) else float(v)

        return {
            "metric": self.metric,
            "mAP": clean(self.mAP),
            **{k: clean(v) for k, v in self.extra.items()},
            "per_class": {k: clean(v) for k, v in self.per_class.items()},
            "iou": list(self.iou),
            "images": self.images,
            "gt_boxes": self.gt_boxes,
            "predictions": self.predictions,
            "gt_per_class": self.gt_per_class,
            "notes": self.notes,
        }


# -- shared helpers ----------------------------------------------------------------------------------------------


def _pick_last_best(cand: np.ndarray, iou: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Per segment (one detection's pairs) and threshold row: the position of the last candidate with the
    highest IoU, or -1 — the outcome of ``evaluateImg``'s inner loop over ground-truth boxes."""
    n = cand.shape[1]
    key = np.where(cand, iou, -np.inf)
    best = np.maximum.reduceat(key, starts, axis=1)
    lengths = np.diff(np.append(starts, n))
    hit = cand & (key == np.repeat(best, lengths, axis=1))
    pos = np.where(hit, np.arange(n), -1)
    return np.maximum.reduceat(pos, starts, axis=1)


# -- COCOeval (kaggle and coco) ----------------------------------------------------------------------------------


def coco_precision(
    gt_image: np.ndarray,
    gt_cls: np.ndarray,
    gt_boxes: np.ndarray,
    dt_image: np.ndarray,
    dt_cls: np.ndarray,
    dt_score: np.ndarray,
    dt_boxes: np.ndarray,
    *,
    n_images: int,
    iou_thrs: np.ndarray,
    quirk: bool,
    max_dets: int = MAX_DETS,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``precision`` array of ``COCOeval.accumulate`` for area "all" and ``maxDets``.

    Parameters
    ----------
    gt_image, gt_cls, gt_boxes
        Ground truth in file order: image index (order of first appearance), class id, ``x_min, y_min, x_max,
        y_max``.
    dt_image, dt_cls, dt_score, dt_boxes
        Predictions in submission order (only images ``0..n_images-1``).
    n_images : int
    iou_thrs : ndarray
        IoU thresholds (``T``).
    quirk : bool
        Reproduce the community notebook (``kaggle``): boxes given to COCO as ``[x_min, y_min, x_max, y_max]``
        and ids counted from 0 (see the module docstring). False: correct ``[x, y, w, h]`` boxes, ids from 1.
    max_dets : int
        Detections kept per image and class.

    Returns
    -------
    precision : ndarray, shape (T, 101, K)
        -1 for a class whose ground truth is all ignored.
    classes : ndarray of int, shape (K,)
        The scored class ids (those in the ground truth), sorted.
    """
    iou_thrs = np.asarray(iou_thrs, dtype=float)
    n_t = len(iou_thrs)
    classes = np.unique(gt_cls)
    n_k = len(classes)
    precision = -np.ones((n_t, len(RECALL_POINTS), n_k))
    if n_k == 0:
        return precision, classes

    def coco_box(b: np.ndarray) -> np.ndarray:
        if quirk:
            return b
        return np.column_stack((b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]))

    # areas as stored in the annotations: (x_max - x_min) * (y_max - y_min) in both cases
    gt_area = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
    gt_ign = (gt_area < AREA_ALL[0]) | (gt_area > AREA_ALL[1])
    gt_is_zero_id = np.zeros(len(gt_cls), bool)
    if quirk and len(gt_cls):
        gt_is_zero_id[0] = True  # the first ground-truth row of the first image has id 0
    dt_is_zero_id = np.zeros(len(dt_cls), bool)
    if quirk and len(dt_cls):
        dt_is_zero_id[0] = True  # so has the first prediction of the submission

    # ground truth sorted by (image, class) group, ignored last, file order
    gk = np.searchsorted(classes, gt_cls)
    g_group = gt_image * n_k + gk
    g_order = np.lexsort((np.arange(len(gk)), gt_ign, g_group))
    g_group, g_box, g_ign, g_zero = (
        g_group[g_order],
        coco_box(gt_boxes)[g_order],
        gt_ign[g_order],
        gt_is_zero_id[g_order],
    )
    g_start, g_count = segments(g_group, n_images * n_k)
    npig = np.bincount(gk[~gt_ign], minlength=n_k)

    # detections of scored classes, sorted per group by confidence (stable), cut to max_dets
    dk = np.searchsorted(classes, dt_cls)
    known = (dk < n_k) & (classes[np.minimum(dk, n_k - 1)] == dt_cls)
    idx = np.flatnonzero(known)
    d_group = dt_image[idx] * n_k + dk[idx]
    order = np.lexsort((idx, -dt_score[idx], d_group))
    idx, d_group = idx[order], d_group[order]
    d_start, _ = segments(d_group, n_images * n_k)
    rank = np.arange(len(idx)) - d_start[d_group]
    keep = rank < max_dets
    idx, d_group, rank = idx[keep], d_group[keep], rank[keep]
    n_d = len(idx)
    d_area = (dt_boxes[idx, 2] - dt_boxes[idx, 0]) * (dt_boxes[idx, 3] - dt_boxes[idx, 1])
    d_out = (d_area < AREA_ALL[0]) | (d_area > AREA_ALL[1])
    d_zero = dt_is_zero_id[idx]

    # greedy matching, one detection rank at a time (every group's rank-r detection at once)
    matched = np.full((n_t, n_d), -1)  # sorted-gt position per threshold
    has_gt = np.flatnonzero(g_count[d_group] > 0)
    if len(has_gt):
        loop = has_gt[np.lexsort((d_group[has_gt], rank[has_gt]))]
        pair_det, pair_gt, offsets = pairs(d_group[loop], g_start, g_count)
        d_box = coco_box(dt_boxes[idx[loop]])
        pair_iou = iou_xywh(d_box[pair_det], g_box[pair_gt])
        pair_ign = g_ign[pair_gt]
        thr = np.minimum(iou_thrs, 1 - 1e-10)[:, None]
        taken = np.zeros((n_t, len(g_group)), bool)
        steps = np.searchsorted(rank[loop], np.arange(max_dets + 1))
        for r in range(max_dets):
            a, b = steps[r], steps[r + 1]
            if a == b:
                continue
            pa, pb = offsets[a], offsets[b]
            iou, gpos, ign = pair_iou[pa:pb], pair_gt[pa:pb], pair_ign[pa:pb]
            starts = offsets[a:b] - pa
            avail = ~taken[:, gpos] & (iou >= thr)
            choice = _pick_last_best(avail & ~ign, iou, starts)
            if ign.any():
                choice = np.where(choice >= 0, choice, _pick_last_best(avail & ign, iou, starts))
            t_i, d_i = np.nonzero(choice >= 0)
            g_hit = gpos[choice[t_i, d_i]]
            matched[t_i, loop[a + d_i]] = g_hit
            claims = ~d_zero[loop[a + d_i]]  # a match by prediction id 0 leaves the box free (quirk)
            taken[t_i[claims], g_hit[claims]] = True
    is_match = matched >= 0
    safe = np.maximum(matched, 0)
    dtm = is_match & ~g_zero[safe]  # a match to ground-truth id 0 reads as "no match" (quirk)
    dt_ig = (is_match & g_ign[safe]) | (~dtm & d_out[None, :])
    tps = dtm & ~dt_ig
    fps = ~dtm & ~dt_ig

    # accumulate: per class, all images' detections by confidence (stable: image order, then rank)
    d_img, d_k = d_group // n_k, d_group % n_k
    acc = np.lexsort((rank, d_img, -dt_score[idx], d_k))
    k_start, k_count = segments(d_k[acc], n_k)
    for k in range(n_k):
        if npig[k] == 0:
            continue
        sel = acc[k_start[k] : k_start[k] + k_count[k]]
        nd = len(sel)
        if nd == 0:
            precision[:, :, k] = 0.0
            continue
        tp = np.cumsum(tps[:, sel], axis=1).astype(float)
        fp = np.cumsum(fps[:, sel], axis=1).astype(float)
        rc = tp / npig[k]
        pr = tp / (fp + tp + np.spacing(1))
        pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
        for t in range(n_t):
            at = np.searchsorted(rc[t], RECALL_POINTS, side="left")
            q = np.zeros(len(RECALL_POINTS))
            inside = at < nd
            q[inside] = pr[t, at[inside]]
            precision[t, :, k] = q
    return precision, classes


def _mean_valid(s: np.ndarray) -> float:
    """``COCOeval.summarize``: the mean of the entries > -1, or -1 (here NaN) when there are none."""
    s = s[s > -1]
    return float(np.mean(s)) if s.size else float("nan")


# -- PASCAL VOC --------------------------------------------------------------------------------------------------


def voc_average_precision(
    gt_image: np.ndarray,
    gt_cls: np.ndarray,
    gt_boxes: np.ndarray,
    dt_image: np.ndarray,
    dt_cls: np.ndarray,
    dt_score: np.ndarray,
    dt_boxes: np.ndarray,
    *,
    n_images: int,
    iou: float = CHALLENGE_IOU,
) -> tuple[np.ndarray, np.ndarray]:
    """PASCAL VOC 2010 all-point AP per class (IoU strictly greater than *iou*, correct boxes).

    Parameters are those of :func:`coco_precision`.

    Returns
    -------
    ap : ndarray, shape (K,)
    classes : ndarray of int, shape (K,)
        The class ids of the ground truth, sorted.

    References
    ----------
    Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge", IJCV 2010, and the VOC2010 devkit
    (``VOCevaldet.m``, ``VOCap.m``).
    """
    classes = np.unique(gt_cls)
    n_k = len(classes)
    ap = np.zeros(n_k)
    if n_k == 0:
        return ap, classes
    gk = np.searchsorted(classes, gt_cls)
    g_group = gt_image * n_k + gk
    g_order = np.lexsort((np.arange(len(gk)), g_group))  # file order inside a group
    g_group, g_box = g_group[g_order], gt_boxes[g_order]
    g_start, g_count = segments(g_group, n_images * n_k)
    npos = np.bincount(gk, minlength=n_k)

    dk = np.searchsorted(classes, dt_cls)
    known = (dk < n_k) & (classes[np.minimum(dk, n_k - 1)] == dt_cls)
    idx = np.flatnonzero(known)
    dk = dk[idx]
    order = np.lexsort((idx, -dt_score[idx], dk))  # per class by confidence, stable
    idx, dk = idx[order], dk[order]
    d_group = dt_image[idx] * n_k + dk
    best_gt = np.full(len(idx), -1)
    has = np.flatnonzero(g_count[d_group] > 0)
    if len(has):
        pair_det, pair_gt, offsets = pairs(d_group[has], g_start, g_count)
        ov = iou_xyxy(dt_boxes[idx[has]][pair_det], g_box[pair_gt])
        starts = offsets[:-1]
        ovmax = np.maximum.reduceat(ov, starts)
        lengths = np.diff(offsets)
        first = np.where(ov == np.repeat(ovmax, lengths), np.arange(len(ov)), len(ov))
        jmax = pair_gt[np.minimum.reduceat(first, starts)]
        best_gt[has[ovmax > iou]] = jmax[ovmax > iou]
    # a box is found by the first detection (in confidence order) that picks it; later ones are duplicates
    tp = np.zeros(len(idx), bool)
    cand = np.flatnonzero(best_gt >= 0)
    _, first_pick = np.unique(best_gt[cand], return_index=True)
    tp[cand[first_pick]] = True
    k_start, k_count = segments(dk, n_k)
    for k in range(n_k):
        sl = slice(k_start[k], k_start[k] + k_count[k])
        t = np.cumsum(tp[sl]).astype(float)
        f = np.cumsum(~tp[sl]).astype(float)
        rec = t / npos[k]
        with np.errstate(invalid="ignore"):
            prec = t / (t + f)
        mrec = np.concatenate(([0.0], rec, [1.0]))
        mpre = np.concatenate(([0.0], prec, [0.0]))
        mpre = np.maximum.accumulate(mpre[::-1])[::-1]
        i = np.flatnonzero(mrec[1:] != mrec[:-1]) + 1
        ap[k] = np.sum((mrec[i] - mrec[i - 1]) * mpre[i])
    return ap, classes


# -- scoring a submission ----------------------------------------------------------------------------------------


def check_metric(metric: Metric | str, iou: float | None = None) -> Metric:
    """*metric* as a :class:`Metric`, after checking it and the IoU threshold.

    Raises
    ------
    EvaluationError
        Unknown metric, or an IoU outside (0, 1).
    """
    try:
        metric = Metric(metric)
    except ValueError:
        raise EvaluationError(f"unknown metric {metric!r} (kaggle, voc or coco)") from None
    if iou is not None and not 0.0 < iou < 1.0:
        raise EvaluationError(f"IoU threshold must be between 0 and 1, got {iou}")
    return metric


def score_detections(
    gt: GroundTruth,
    predictions: Predictions,
    *,
    metric: Metric | str = Metric.KAGGLE,
    iou: float | None = None,
    image_ids: Collection[str] | None = None,
) -> DetectionResult:
    """Score parsed predictions against parsed ground truth.

    Parameters
    ----------
    gt : GroundTruth
    predictions : Predictions
    metric : Metric or str
        ``kaggle`` (default), ``voc`` or ``coco``.
    iou : float, optional
        IoU threshold (default 0.4 for ``kaggle`` and ``voc``, 0.50:0.95 for ``coco``).
    image_ids : collection of str, optional
        Score these images only (the public or private part of a test set); by default every image of the
        ground truth. Predictions on other images are ignored and counted in ``notes``.

    Raises
    ------
    EvaluationError
        Unknown metric, an IoU outside (0, 1), image ids not in the ground truth.
    """
    metric = check_metric(metric, iou)
    thr = CHALLENGE_IOU if iou is None else float(iou)
    notes = [f"{n} ground-truth row(s) of class {c!r} not scored" for c, n in sorted(gt.dropped.items())]
    if image_ids is not None:
        gt = gt.subset(image_ids)
    n_images = len(gt.image_ids)
    row_image = pd.Index(gt.image_ids).get_indexer(predictions.image_id)
    dt_image = row_image[predictions.row] if len(predictions.row) else np.empty(0, np.int64)
    on = dt_image >= 0
    if (~on).any():
        notes.append(f"{int((~on).sum())} prediction(s) on images outside the scored set ignored")
    args = (
        gt.image,
        gt.cls,
        gt.boxes,
        dt_image[on],
        predictions.cls[on],
        predictions.score[on],
        predictions.boxes[on],
    )
    names = gt.classes.names
    extra: dict[str, float] = {}
    if metric is Metric.VOC:
        ap, classes = voc_average_precision(*args, n_images=n_images, iou=thr)
        per = dict(zip(classes.tolist(), ap.tolist(), strict=True))
        m_ap = float(np.mean(ap)) if len(ap) else float("nan")
        ious: tuple[float, ...] = (thr,)
    else:
        ious_arr = COCO_IOUS if metric is Metric.COCO and iou is None else np.array([thr])
        prec, classes = coco_precision(*args, n_images=n_images, iou_thrs=ious_arr, quirk=metric is Metric.KAGGLE)
        per = {int(c): _mean_valid(prec[:, :, k]) for k, c in enumerate(classes)}
        m_ap = _mean_valid(prec)
        if len(ious_arr) == len(COCO_IOUS):
            extra = {
                "AP50": _mean_valid(prec[np.flatnonzero(COCO_IOUS == 0.5)]),
                "AP75": _mean_valid(prec[np.flatnonzero(COCO_IOUS == 0.75)]),
            }
        ious = tuple(float(x) for x in ious_arr)
    per_class = {name: (None if not np.isfinite(per.get(i, np.nan)) else per[i]) for i, name in enumerate(names)}
    return DetectionResult(
        metric=metric.value,
        mAP=m_ap,
        per_class=per_class,
        iou=ious,
        extra=extra,
        images=n_images,
        gt_boxes=len(gt.cls),
        predictions=int(on.sum()),
        gt_per_class=dict(zip(names, np.bincount(gt.cls, minlength=len(names)).tolist(), strict=True)),
        notes=notes,
    )


def score_submission(
    gt: str | Path | pd.DataFrame | GroundTruth,
    submission: str | Path | pd.DataFrame | Predictions,
    *,
    metric: Metric | str = Metric.KAGGLE,
    iou: float | None = None,
    image_ids: Collection[str] | None = None,
    classes: ClassList = CHALLENGE,
) -> DetectionResult:
    """Score a Kaggle-style submission: the one call a benchmark (CLI, leaderboard) needs.

    Pure: reads the two tables, writes nothing. Validate first with :func:`cxrlab.evaluate.validate_submission`
    to report every problem with its line; this function stops at the first malformed row.

    Parameters
    ----------
    gt : path, DataFrame or GroundTruth
        Ground truth in the ``annotations_test.csv`` layout (see :func:`~cxrlab.evaluate.read_annotations`).
    submission : path, DataFrame or Predictions
        ``image_id,PredictionString`` (or already parsed, to score the public and private parts of a test set
        from one parse).
    metric, iou, image_ids
        See :func:`score_detections`; ``image_ids`` selects the public or private part of the test set.
    classes : ClassList
        The class ids of the submission (default: the challenge's 15).

    Returns
    -------
    DetectionResult

    Examples
    --------
    >>> result = score_submission("annotations_test.csv", "submission.csv", metric="kaggle")  # doctest: +SKIP
    >>> round(result.mAP, 3)  # doctest: +SKIP
    0.22
    """
    truth = gt if isinstance(gt, GroundTruth) else read_annotations(gt, classes=classes)
    if isinstance(submission, Predictions):
        predictions = submission
    else:
        frame, name = read_submission(submission)
        predictions = parse_predictions(frame, name=name)
    return score_detections(truth, predictions, metric=metric, iou=iou, image_ids=image_ids)
