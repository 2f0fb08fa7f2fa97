"""Release benchmark: parse + majority vote + box fusion + export + Table 2 on a VinDr-CXR-sized synthetic set,
with ensemble-boxes' weighted_boxes_fusion timed on the same boxes in the same run, and Table 2 on 112,120
NIH Data_Entry rows.

    python bench/release.py                      # 15,000 images x 3 readers, best of 3
    python bench/release.py --images 3000 --repeat 1

Targets (issue 5): vote + fusion <= 1 s on 2 cores (ensemble-boxes alone measured 0.5 s for the fusion);
Table 2 on 112,120 NIH rows <= 2 s. Timings are wall clock, best of --repeat runs; the machine may be shared.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.consensus import fuse_reader_boxes, majority_vote
from cxrlab.export import write_release
from cxrlab.ingest import read_nih, read_vindr
from cxrlab.schemas import BOX_COLUMNS, get_schema
from cxrlab.schemas.synthetic import synthetic_release
from cxrlab.stats import render_table2, table2_from_tables


def best(fn, repeat: int):  # noqa: ANN001, ANN201
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def ensemble_inputs(boxes: pd.DataFrame, images: pd.DataFrame, readers: pd.Series) -> list:
    """Per image: (boxes per reader normalised by the image size, scores, labels, width, height, classes)."""
    size = images.set_index("image_id")[["columns", "rows"]]
    out = []
    for iid, g in boxes.groupby("image_id", sort=True):
        w, h = (float(v) for v in size.loc[iid])
        classes = sorted(g["class_name"].unique())
        rads = sorted(set(g["rad_id"]) | set(readers.get(iid, [])))
        bl, sl, ll = [], [], []
        for r in rads:
            gg = g[g["rad_id"] == r]
            bl.append((gg[BOX_COLUMNS].to_numpy() / [w, h, w, h]).tolist())
            sl.append([1.0] * len(gg))
            ll.append([classes.index(c) for c in gg["class_name"]])
        out.append((iid, bl, sl, ll, w, h, classes))
    return out


def run_ensemble(inputs: list, iou: float) -> pd.DataFrame:
    from ensemble_boxes import weighted_boxes_fusion

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for iid, bl, sl, ll, w, h, classes in inputs:
            b, s, lab = weighted_boxes_fusion(bl, sl, ll, iou_thr=iou, skip_box_thr=0.0)
            for bb, ss, cl in zip(b, s, lab, strict=True):
                rows.append((iid, classes[int(cl)], bb[0] * w, bb[1] * h, bb[2] * w, bb[3] * h, ss))
    return pd.DataFrame(rows, columns=["image_id", "class_name", *BOX_COLUMNS, "score"])


def nih_entries(path: Path, n: int) -> None:
    rng = np.random.default_rng(1)
    names = np.array(get_schema("nih14").names)
    y = rng.random((n, 14)) < np.geomspace(0.18, 0.002, 14)
    labels = ["|".join(names[row]) or "No Finding" for row in y]
    header = ("Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
              "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y],\n")
    body = "".join(f"{k:08d}_{k % 7:03d}.png,{lab},{k % 7},{k // 7},{20 + k % 70:03d}Y,{'MF'[k % 2]},PA,2500,2048,"
                   f"0.143,0.143,\n" for k, lab in enumerate(labels))
    path.write_text(header + body)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=15_000)
    ap.add_argument("--readers", type=int, default=3)
    ap.add_argument("--nih-rows", type=int, default=112_120)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--iou", type=float, default=0.4)
    ap.add_argument("--no-ensemble", action="store_true", help="Skip the ensemble-boxes comparison.")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = synthetic_release(args.images, readers=args.readers, seed=0)
        write_release(src, tmp / "src", copy_images=False)
        ann, lab = tmp / "src" / "annotations_train.csv", tmp / "src" / "image_labels_train.csv"
        n_rows = len(ann.read_text().splitlines()) - 1
        print(f"synthetic set: {args.images:,} images x {args.readers} readers, {n_rows:,} annotation rows, "
              f"{len(src.reader_boxes):,} boxes, {len(src.reader_labels):,} label rows")
        steps: list[tuple[str, float, str]] = []
        t, tables = best(lambda: read_vindr([ann], [lab]), args.repeat)
        steps.append(("parse annotations + image labels", t, f"{n_rows + len(tables.reader_labels):,} rows"))
        t_vote, voted = best(lambda: majority_vote(tables.reader_labels), args.repeat)
        steps.append(("majority vote", t_vote, f"{len(voted):,} images"))
        readers = tables.reader_labels.groupby("image_id").size()
        boxes = tables.reader_boxes.merge(tables.images[["image_id"]], on="image_id")
        sized = boxes.merge(src.images[["image_id", "columns", "rows"]], on="image_id").rename(
            columns={"columns": "width", "rows": "height"})
        t_fuse, fused = best(lambda: fuse_reader_boxes(sized, iou_thr=args.iou, readers=readers), args.repeat)
        steps.append(("box fusion (cxrlab WBF)", t_fuse, f"{len(sized):,} boxes -> {len(fused):,}"))
        steps.append(("vote + fusion", t_vote + t_fuse, "target <= 1 s"))
        if not args.no_ensemble:
            by_image = tables.reader_labels.groupby("image_id")["rad_id"].apply(list)
            inputs = ensemble_inputs(boxes, src.images, by_image)
            t_ref, ref = best(lambda: run_ensemble(inputs, args.iou), args.repeat)
            a = fused.sort_values(["image_id", "class_name", "x_min", "y_min"])[[*BOX_COLUMNS, "score"]].to_numpy()
            b = ref.sort_values(["image_id", "class_name", "x_min", "y_min"])[[*BOX_COLUMNS, "score"]].to_numpy()
            same = a.shape == b.shape and float(np.abs(a - b).max()) if a.shape == b.shape else None
            steps.append(("box fusion (ensemble-boxes 1.0.9, per image)", t_ref,
                          f"{len(ref):,} boxes; max |diff| {same if same is not None else 'shape differs'}"))
        tables.images = src.images
        t, _ = best(lambda: write_release(tables, tmp / "csv", copy_images=False, overwrite=True), args.repeat)
        steps.append(("export: CSVs + Table 2 + manifest", t, ""))
        t, _ = best(lambda: write_release(tables, tmp / "out", formats=("coco", "yolo", "json"),
                                          copy_images=False, overwrite=True), args.repeat)
        steps.append(("export: + COCO, YOLO, JSON", t, f"{args.images:,} YOLO label files"))
        t, table = best(lambda: render_table2([("Training set", table2_from_tables(tables, "train"))], "md"),
                        args.repeat)
        steps.append(("Table 2 (VinDr)", t, ""))
        nih = tmp / "Data_Entry_2017.csv"
        nih_entries(nih, args.nih_rows)

        def nih_table2() -> str:
            t2 = read_nih(nih)
            return render_table2([("All images", table2_from_tables(t2))], "md")

        t, _ = best(nih_table2, args.repeat)
        steps.append((f"Table 2 on {args.nih_rows:,} NIH rows (parse + compute)", t, "target <= 2 s"))
    print(f"\n| step | seconds (best of {args.repeat}) | note |\n|---|---:|---|")
    for name, sec, note in steps:
        print(f"| {name} | {sec:.3f} | {note} |")


if __name__ == "__main__":
    main()
