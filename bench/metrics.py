"""Benchmark detection mAP: cxrlab next to pycocotools and faster-coco-eval on the same seeded test set.

The set imitates the VinDr-CXR test set scored by the challenge: ``--images`` images (3,000) with 14 boxed
classes plus "No finding"; ``--normal`` of them (68 %) have only a "No finding" row, the others share about
``--boxes`` ground-truth boxes (15,000); ``--preds`` predictions per image (50, so 150,000): two jittered copies
of each ground-truth box, a "No finding" guess per image and random boxes of random classes, confidences with two
decimals (many ties).

Each tool starts from the same two DataFrames (ground truth in the seed layout, the ``image_id,PredictionString``
submission) and returns mAP. Columns:

- ``build``: turning the DataFrames into the tool's input (cxrlab: reading classes and parsing every
  PredictionString into arrays; the references: building the COCO dictionaries, with a Python loop as the
  community notebook does);
- ``evaluate``: the metric itself (cxrlab: ``score_detections``; the references: ``COCOeval.evaluate``,
  ``accumulate`` and ``summarize``);
- ``total``: both (cxrlab: ``score_submission``).

The references are the community notebook's setup (``kaggle``: ``[x_min, y_min, x_max, y_max]`` in the bbox
field, ids from 0, ``iouThrs=[0.4]``) and standard COCO (``coco``: mAP@[.50:.95]); see
``tests/support/coco_reference.py``. The script prints the times (best of ``--repeat``), the speed-up against
faster-coco-eval and whether the mAPs agree to 1e-9.

Usage: ``python bench/metrics.py [--repeat 3] [--metric kaggle|coco|both]``
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.support.coco_reference
if importlib.util.find_spec("cxrlab") is None:  # a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT / "src"))
from tests.support.coco_reference import backend, coco_datasets, per_class_ap, run_cocoeval  # noqa: E402

from cxrlab.evaluate import (  # noqa: E402
    CHALLENGE,
    parse_predictions,
    read_annotations,
    read_submission,
    score_detections,
    score_submission,
)

ANCHOR = "anchors measured before cxrlab (kaggle, same sizes): pycocotools 5.0 s, faster-coco-eval 2.8 s"


def make_set(
    n_images: int, preds_per_image: int, seed: int, *, boxes: int = 15000, normal: float = 0.68
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded ground truth (seed layout) and submission of the challenge's shape: a share *normal* of the
    images has only "No finding" (68.4 % of the VinDr-CXR test set, data descriptor Table 2), the others share
    about *boxes* boxes."""
    rng = np.random.default_rng(seed)
    ids = np.array([f"{i:032x}" for i in rng.integers(0, 2**62, n_images)])
    abnormal = rng.random(n_images) >= normal
    per_image = np.where(abnormal, rng.poisson(boxes / max(abnormal.sum(), 1), n_images), 0)
    img = np.repeat(np.arange(n_images), per_image)
    n = len(img)
    cls = rng.integers(0, 14, n)
    wh = rng.uniform(40, 900, (n, 2))
    xy = rng.uniform(0, 2500, (n, 2))
    gt = pd.DataFrame(
        {
            "image_id": ids[img],
            "rad_id": "",
            "class_name": np.array(CHALLENGE.names)[cls],
            "x_min": np.round(xy[:, 0], 1),
            "y_min": np.round(xy[:, 1], 1),
            "x_max": np.round(xy[:, 0] + wh[:, 0], 1),
            "y_max": np.round(xy[:, 1] + wh[:, 1], 1),
            "class_id": cls,
        }
    )
    empty = np.flatnonzero(per_image == 0)
    nf = pd.DataFrame({"image_id": ids[empty], "rad_id": "", "class_name": "No finding", "class_id": 14})
    gt = pd.concat([gt, nf], ignore_index=True).sample(frac=1.0, random_state=seed).reset_index(drop=True)

    # predictions: 2 jittered copies per gt box (class kept 80 %), one "No finding" guess, the rest random
    g = gt[gt["class_id"] != 14]
    copies = np.repeat(np.arange(len(g)), 2)
    jitter = rng.normal(0, 40, (len(copies), 4))
    boxes = g[["x_min", "y_min", "x_max", "y_max"]].to_numpy()[copies] + jitter
    keep_cls = rng.random(len(copies)) < 0.8
    p_cls = np.where(keep_cls, g["class_id"].to_numpy()[copies], rng.integers(0, 14, len(copies)))
    p_img = pd.Index(ids).get_indexer(g["image_id"].to_numpy()[copies])
    n_rand = max(n_images * preds_per_image - len(copies) - n_images, 0)
    r_img = rng.integers(0, n_images, n_rand)
    r_xy = rng.uniform(0, 2500, (n_rand, 2))
    r_wh = rng.uniform(40, 900, (n_rand, 2))
    r_boxes = np.column_stack([r_xy, r_xy + r_wh])
    all_img = np.concatenate([p_img, r_img, np.arange(n_images)])
    all_cls = np.concatenate([p_cls, rng.integers(0, 14, n_rand), np.full(n_images, 14)])
    all_box = np.vstack([np.clip(boxes, 0, None), r_boxes, np.tile([0.0, 0.0, 1.0, 1.0], (n_images, 1))])
    all_box[:, 2:] = np.maximum(all_box[:, 2:], all_box[:, :2] + 1)
    conf = np.round(rng.beta(2, 2, len(all_img)), 2)  # two decimals: many ties
    conf[: len(copies)] = np.round(np.minimum(conf[: len(copies)] + 0.3, 1.0), 2)
    order = np.argsort(all_img, kind="stable")
    text = pd.Series(
        [
            f"{c} {s:g} {a:.1f} {b:.1f} {x:.1f} {y:.1f}"
            for c, s, (a, b, x, y) in zip(all_cls[order], conf[order], all_box[order], strict=True)
        ]
    )
    strings = text.groupby(all_img[order]).agg(" ".join)
    sub = pd.DataFrame({"image_id": ids[strings.index.to_numpy()], "PredictionString": strings.to_numpy()})
    return gt, sub


def best(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """(best wall time in s over *repeat* calls, the last result)."""
    times, out = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def reference(gt: pd.DataFrame, sub: pd.DataFrame, metric: str, fast: bool) -> tuple[float, float, float]:
    """(seconds to build the COCO dictionaries, seconds to evaluate, mAP) of pycocotools or faster-coco-eval."""
    ref = gt.copy()
    ref.loc[ref["class_id"] == 14, ["x_min", "y_min", "x_max", "y_max"]] = [0.0, 0.0, 1.0, 1.0]
    for c in ("x_min", "y_min", "x_max", "y_max"):
        ref[c] = ref[c].astype(float)
    quirk = metric == "kaggle"
    categories = sorted(int(c) for c in pd.unique(ref["class_id"])) if quirk else list(range(15))
    t0 = time.perf_counter()
    dataset, dts = coco_datasets(ref, sub, quirk=quirk, categories=categories)
    t1 = time.perf_counter()
    coco, cocoeval = backend(fast)
    thrs = [0.4] if quirk else np.linspace(0.5, 0.95, 10)
    ev = run_cocoeval(coco, cocoeval, dataset, dts, thrs, load_res=not quirk)
    t2 = time.perf_counter()
    per_class_ap(ev, categories)
    return t1 - t0, t2 - t1, float(ev.stats[0])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=3000)
    ap.add_argument("--preds", type=int, default=50, help="predictions per image")
    ap.add_argument("--boxes", type=int, default=15000, help="ground-truth boxes (about)")
    ap.add_argument("--normal", type=float, default=0.68, help="share of images with only 'No finding'")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--metric", choices=["kaggle", "coco", "both"], default="both")
    ap.add_argument("--no-reference", action="store_true", help="time cxrlab only")
    args = ap.parse_args()

    gt, sub = make_set(args.images, args.preds, args.seed, boxes=args.boxes, normal=args.normal)
    n_gt = int((gt["class_id"] != 14).sum())
    n_pred = int(sub["PredictionString"].str.count(" ").add(1).sum() // 6)
    print(f"set: {args.images} images, {n_gt} boxes + {len(gt) - n_gt} 'No finding' rows, {n_pred} predictions")
    truth = read_annotations(gt)
    frame, _ = read_submission(sub)
    preds = parse_predictions(frame)
    ok = True
    for metric in ("kaggle", "coco") if args.metric == "both" else (args.metric,):
        t_metric, res = best(lambda m=metric: score_detections(truth, preds, metric=m), args.repeat)
        t_all, _ = best(lambda m=metric: score_submission(gt, sub, metric=m), args.repeat)
        print(f"\n[{metric}]")
        print(f"{'tool':<18}{'build s':>9}{'evaluate s':>12}{'total s':>9}{'mAP':>22}")
        print(f"{'cxrlab':<18}{t_all - t_metric:>9.3f}{t_metric:>12.3f}{t_all:>9.3f}{res.mAP:>22.17f}")
        if args.no_reference:
            continue
        ref_times = {}
        for name, fast in (("pycocotools", False), ("faster-coco-eval", True)):
            try:
                with warnings.catch_warnings():  # faster-coco-eval warns about the notebook's id 0
                    warnings.simplefilter("ignore", UserWarning)
                    runs = [reference(gt, sub, metric, fast) for _ in range(args.repeat)]
            except ModuleNotFoundError as exc:
                print(f"{name:<18} not installed ({exc.name}); pip install -e '.[bench]'")
                continue
            b, e, m = min(runs, key=lambda r: r[0] + r[1])
            ref_times[name] = (b + e, e)
            same = abs(m - res.mAP) <= 1e-9
            ok &= same
            print(f"{name:<18}{b:>9.3f}{e:>12.3f}{b + e:>9.3f}{m:>22.17f}   {'equal' if same else 'DIFFERENT'}")
        for name, (total, evaluate) in ref_times.items():
            print(
                f"cxrlab vs {name}: {total / t_all:.1f}x faster from the same DataFrames, "
                f"{evaluate / t_metric:.1f}x evaluate vs evaluate"
            )
    quirk = score_detections(truth, preds, metric="kaggle").mAP
    right = score_detections(truth, preds, metric="coco", iou=0.4).mAP
    voc = score_detections(truth, preds, metric="voc").mAP
    print(
        f"\nthe community quirks on this set: kaggle mAP@0.4 {quirk:.4f}; the same COCOeval with correct boxes and ids"
    )
    print(f"from 1 (coco --iou 0.4) {right:.4f}; voc (IoU > 0.4, all-point AP) {voc:.4f}")
    print(f"\n{ANCHOR}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
