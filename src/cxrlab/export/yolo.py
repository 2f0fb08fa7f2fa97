"""YOLO (Ultralytics) labels of a release: ``labels/<split>/<stem>.txt`` and ``data.yaml``.

Format (Ultralytics docs, "Object detection datasets overview"): one line per box, ``class x_center y_center
width height`` normalised by the image width and height; an image without boxes has an empty file. Images are
expected at ``images/<split>/<stem>.png`` (written by the PNG option); Ultralytics finds each label by
replacing ``/images/`` with ``/labels/`` in the image path. ``data.yaml`` names the classes (the schema's local
labels, ``class = class_id``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from cxrlab.runtime.files import atomic_write_text
from cxrlab.schemas import ReleaseTables

__all__ = ["write_yolo"]


def write_yolo(tables: ReleaseTables, out: Path, *, boxes: str = "consensus") -> tuple[dict[str, int], list]:
    """Write the YOLO label files and ``data.yaml`` under *out*.

    Returns
    -------
    counts : dict
        Label files and boxes written.
    problems : list of (str, str)
        Images skipped because their size is unknown (boxes cannot be normalised).
    """
    schema = tables.schema
    local = {lb.name: i for i, lb in enumerate(schema.local)}
    src = tables.consensus_boxes if boxes == "consensus" else tables.reader_boxes
    src = src.loc[src["class_name"].isin(local)]
    by_image = {iid: g for iid, g in src.groupby("image_id", sort=False)}
    problems, n_files, n_boxes = [], 0, 0
    splits = tables.splits or ["train"]
    for r in tables.images.to_dict("records"):
        split = r.get("split") or "train"
        w, h = r.get("columns"), r.get("rows")
        if w is None or h is None or np.isnan(float(w)) or np.isnan(float(h)) or not w or not h:
            problems.append((str(r["image_id"]), "image size unknown: YOLO labels need width and height"))
            continue
        g = by_image.get(r["image_id"])
        lines = []
        if g is not None:
            x0, y0 = g["x_min"].to_numpy(float), g["y_min"].to_numpy(float)
            x1, y1 = g["x_max"].to_numpy(float), g["y_max"].to_numpy(float)
            cx, cy = (x0 + x1) / 2 / float(w), (y0 + y1) / 2 / float(h)
            bw, bh = (x1 - x0) / float(w), (y1 - y0) / float(h)
            for cls, a, b, c, d in zip(g["class_name"], cx, cy, bw, bh, strict=True):
                lines.append(f"{local[cls]} {a:.6f} {b:.6f} {c:.6f} {d:.6f}")
            n_boxes += len(lines)
        stem = Path(str(r["image_id"])).stem
        # Plain writes: the release folder is built aside and renamed whole (export.release), so one label
        # file per image needs no fsync of its own.
        folder = Path(out) / "labels" / split
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{stem}.txt").write_text("".join(x + "\n" for x in lines))
        n_files += 1
    data = {
        "path": ".",
        "train": "images/train",
        "val": "images/test" if "test" in splits else "images/train",
        "test": "images/test" if "test" in splits else None,
        "nc": len(local),
        "names": {i: name for name, i in local.items()},
    }
    data = {k: v for k, v in data.items() if v is not None}
    atomic_write_text(Path(out) / "data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return {"yolo_label_files": n_files, "yolo_boxes": n_boxes}, problems
