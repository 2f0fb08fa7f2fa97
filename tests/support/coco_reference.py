"""Reference scorers the tests and ``bench/metrics.py`` compare cxrlab with.

- :func:`community_kaggle`: the challenge's community notebook ("competition metric mAP@0.4") rebuilt on
  pycocotools as it behaves: ids from 0, ``[x_min, y_min, x_max, y_max]`` in the bbox field, true areas,
  categories = ground-truth class ids, ``iouThrs=[0.4]``, ``stats[0]``.
- :func:`standard_coco`: ``COCOeval`` as the COCO benchmark runs it (``[x, y, w, h]`` boxes, ``loadRes``).
- :func:`reference_voc`: a plain loop version of PASCAL VOC 2010 all-point AP (``VOCevaldet.m`` / ``VOCap.m``).

Ground truth is a DataFrame ``image_id, class_id, x_min, y_min, x_max, y_max`` ("No finding" already given as
``0 0 1 1``); a submission is ``image_id, PredictionString``.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd

BOX = ["x_min", "y_min", "x_max", "y_max"]


def _groups(sub: pd.DataFrame) -> list[tuple[str, np.ndarray]]:
    out = []
    for image_id, text in zip(sub["image_id"], sub["PredictionString"], strict=True):
        values = np.array([float(t) for t in str(text).split()], dtype=float).reshape(-1, 6)
        out.append((image_id, values))
    return out


def coco_datasets(gt: pd.DataFrame, sub: pd.DataFrame, *, quirk: bool, categories: list[int]):
    image_ids = list(pd.unique(gt["image_id"]))
    number = {iid: i for i, iid in enumerate(image_ids)}
    first = 0 if quirk else 1
    anns, k = [], first
    for iid, rows in gt.groupby("image_id", sort=False):  # images in order of first appearance, rows in order
        for r in rows.itertuples(index=False):
            x1, y1, x2, y2 = (float(getattr(r, c)) for c in BOX)
            bbox = [x1, y1, x2, y2] if quirk else [x1, y1, x2 - x1, y2 - y1]
            anns.append(
                {
                    "id": k,
                    "image_id": number[iid],
                    "category_id": int(r.class_id),
                    "bbox": bbox,
                    "area": (x2 - x1) * (y2 - y1),
                    "iscrowd": 0,
                    "ignore": 0,
                    "segmentation": [],
                }
            )
            k += 1
    dts, k = [], first
    for iid, values in _groups(sub):
        for p in values:
            bbox = [p[2], p[3], p[4], p[5]] if quirk else [p[2], p[3], p[4] - p[2], p[5] - p[3]]
            dts.append(
                {
                    "id": k,
                    "image_id": number[iid],
                    "category_id": int(p[0]),
                    "bbox": bbox,
                    "area": (p[4] - p[2]) * (p[5] - p[3]),
                    "iscrowd": 0,
                    "score": float(p[1]),
                }
            )
            k += 1
    dataset = {
        "images": [{"id": i} for i in range(len(image_ids))],
        "categories": [{"id": int(c), "name": str(c)} for c in categories],
        "annotations": anns,
    }
    return dataset, dts


def run_cocoeval(coco_module, cocoeval_cls, dataset: dict, dts: list, iou_thrs, *, load_res: bool):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = coco_module()
        gt.dataset = dataset
        gt.createIndex()
        if load_res and dts:
            dt = gt.loadRes(dts)
        else:
            dt = coco_module()
            dt.dataset = {"images": dataset["images"], "categories": dataset["categories"], "annotations": dts}
            dt.createIndex()
        ev = cocoeval_cls(gt, dt, "bbox")
        ev.params.imgIds = sorted(gt.getImgIds())
        ev.params.iouThrs = np.asarray(iou_thrs, dtype=float)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def per_class_ap(ev, categories: list[int]) -> dict[int, float | None]:
    prec = ev.eval["precision"][:, :, :, 0, -1]  # area "all", maxDets 100
    out = {}
    for k, c in enumerate(categories):
        s = prec[:, :, k]
        s = s[s > -1]
        out[int(c)] = float(np.mean(s)) if s.size else None
    return out


def community_kaggle(gt: pd.DataFrame, sub: pd.DataFrame, *, iou: float = 0.4, fast: bool = False) -> dict:
    """mAP and per-class AP as the community notebook computes them (pycocotools or faster-coco-eval)."""
    categories = sorted(int(c) for c in pd.unique(gt["class_id"]))
    dataset, dts = coco_datasets(gt, sub, quirk=True, categories=categories)
    coco, cocoeval = backend(fast)
    ev = run_cocoeval(coco, cocoeval, dataset, dts, [iou], load_res=False)
    return {"mAP": float(ev.stats[0]), "per_class": per_class_ap(ev, categories)}


def standard_coco(
    gt: pd.DataFrame, sub: pd.DataFrame, *, n_classes: int = 15, fast: bool = False, iou: float | None = None
) -> dict:
    """mAP@[.50:.95], AP50, AP75 and per-class AP of standard ``COCOeval`` on correct boxes (at *iou* only when
    given: then AP50 and AP75 are -1)."""
    categories = list(range(n_classes))
    dataset, dts = coco_datasets(gt, sub, quirk=False, categories=categories)
    coco, cocoeval = backend(fast)
    thrs = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True) if iou is None else [iou]
    ev = run_cocoeval(coco, cocoeval, dataset, dts, thrs, load_res=True)
    return {
        "mAP": float(ev.stats[0]),
        "AP50": float(ev.stats[1]),
        "AP75": float(ev.stats[2]),
        "per_class": per_class_ap(ev, categories),
    }


def backend(fast: bool):
    if fast:
        from faster_coco_eval import COCO, COCOeval_faster

        return COCO, COCOeval_faster
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    return COCO, COCOeval


def reference_voc(gt: pd.DataFrame, sub: pd.DataFrame, *, iou: float = 0.4) -> dict:
    """PASCAL VOC 2010 all-point AP per class with loops, IoU strictly above *iou*."""
    truth: dict[tuple[str, int], list[tuple[float, ...]]] = {}
    for r in gt.itertuples(index=False):
        truth.setdefault((r.image_id, int(r.class_id)), []).append(tuple(float(getattr(r, c)) for c in BOX))
    images = set(gt["image_id"])
    dets = [(iid, int(p[0]), float(p[1]), tuple(p[2:6])) for iid, v in _groups(sub) if iid in images for p in v]
    per_class = {}
    for c in sorted({int(c) for c in gt["class_id"]}):
        npos = sum(len(v) for (_, cc), v in truth.items() if cc == c)
        mine = sorted((d for d in dets if d[1] == c), key=lambda d: -d[2])  # sorted() is stable
        taken: dict[tuple[str, int], list[bool]] = {}
        tp, fp = [], []
        for iid, _, _, (x1, y1, x2, y2) in mine:
            boxes = truth.get((iid, c), [])
            ovmax, jmax = -np.inf, -1
            for j, (gx1, gy1, gx2, gy2) in enumerate(boxes):
                iw = min(x2, gx2) - max(x1, gx1)
                ih = min(y2, gy2) - max(y1, gy1)
                if iw > 0 and ih > 0:
                    inter = iw * ih
                    ov = inter / ((x2 - x1) * (y2 - y1) + (gx2 - gx1) * (gy2 - gy1) - inter)
                    if ov > ovmax:
                        ovmax, jmax = ov, j
            flags = taken.setdefault((iid, c), [False] * len(boxes))
            if ovmax > iou and not flags[jmax]:
                flags[jmax] = True
                tp.append(1)
                fp.append(0)
            else:
                tp.append(0)
                fp.append(1)
        ctp = np.cumsum(tp)
        cfp = np.cumsum(fp)
        rec = [t / npos for t in ctp]
        prec = [t / (t + f) for t, f in zip(ctp, cfp, strict=True)]
        mrec = [0.0, *rec, 1.0]
        mpre = [0.0, *prec, 0.0]
        for i in range(len(mpre) - 2, -1, -1):
            mpre[i] = max(mpre[i], mpre[i + 1])
        per_class[c] = sum((mrec[i] - mrec[i - 1]) * mpre[i] for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])
    return {"mAP": float(np.mean(list(per_class.values()))) if per_class else None, "per_class": per_class}
