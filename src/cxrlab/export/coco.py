"""COCO object-detection JSON of a release (one file per split).

Format: "COCO - Common Objects in Context", data format, object detection: ``images`` (``id``, ``file_name``,
``width``, ``height``), ``annotations`` (``id``, ``image_id``, ``category_id``, ``bbox`` = ``[x, y, width,
height]`` in pixels, ``area``, ``iscrowd``) and ``categories``. Boxes are written as ``[x_min, y_min, x_max -
x_min, y_max - y_min]``: passing ``[x_min, y_min, x_max, y_max]`` in COCO's field is the known mistake that
inflated the community's mAP@0.4 (the design notes, "Known hazards").

Categories are the schema's local labels, ``id = class_id + 1`` (COCO ids start at 1).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.runtime.files import atomic_write_text
from cxrlab.schemas import ReleaseTables

__all__ = ["coco_dict", "write_coco"]


def coco_dict(
    tables: ReleaseTables, split: str | None, *, boxes: str = "consensus", file_names: dict[str, str] | None = None
) -> dict:
    """The COCO dict of one split.

    Parameters
    ----------
    boxes : {"consensus", "readers"}
        Consensus boxes (with ``score`` and ``votes``), or every reader's box (with ``rad_id``).
    file_names : dict, optional
        ``image_id`` -> file name to write (default ``<split>/<image_id>.dicom``).
    """
    if boxes not in ("consensus", "readers"):
        raise ValueError(f"boxes must be 'consensus' or 'readers', got {boxes!r}")
    schema = tables.schema
    images = tables.images if split is None else tables.images.loc[tables.images["split"] == split]
    images = images.sort_values("image_id").reset_index(drop=True)
    ids = {iid: i + 1 for i, iid in enumerate(images["image_id"])}

    def num(row: dict, key: str) -> int:
        v = row.get(key)
        return int(v) if v is not None and not pd.isna(v) else 0

    coco_images = [
        {
            "id": ids[r["image_id"]],
            "file_name": (file_names or {}).get(r["image_id"], f"{r.get('split') or split}/{r['image_id']}.dicom"),
            "width": num(r, "columns"),
            "height": num(r, "rows"),
        }
        for r in images.to_dict("records")
    ]
    src = tables.consensus_boxes if boxes == "consensus" else tables.reader_boxes
    src = src.loc[src["image_id"].isin(ids)].sort_values(["image_id"], kind="stable")
    local = {lb.name: i for i, lb in enumerate(schema.local)}
    src = src.loc[src["class_name"].isin(local)]
    x0, y0 = src["x_min"].to_numpy(float), src["y_min"].to_numpy(float)
    w, h = src["x_max"].to_numpy(float) - x0, src["y_max"].to_numpy(float) - y0
    anns = []
    extra = ["score", "votes"] if boxes == "consensus" else ["rad_id"]
    extras = {k: src[k].to_numpy() if k in src else np.full(len(src), None) for k in extra}
    for i, (iid, cls) in enumerate(zip(src["image_id"], src["class_name"], strict=True)):
        ann = {
            "id": i + 1,
            "image_id": ids[iid],
            "category_id": local[cls] + 1,
            "bbox": [round(float(x0[i]), 2), round(float(y0[i]), 2), round(float(w[i]), 2), round(float(h[i]), 2)],
            "area": round(float(w[i] * h[i]), 2),
            "iscrowd": 0,
        }
        for k in extra:
            v = extras[k][i]
            if v is not None and not (isinstance(v, float) and np.isnan(v)):
                ann[k] = v.item() if hasattr(v, "item") else v
        anns.append(ann)
    return {
        "info": {"description": f"{schema.name} release ({split or 'all'})", "version": "1.0"},
        "images": coco_images,
        "annotations": anns,
        "categories": [{"id": i + 1, "name": lb.name, "supercategory": "finding"} for i, lb in enumerate(schema.local)],
    }


def write_coco(
    tables: ReleaseTables, out: Path, *, boxes: str = "consensus", file_names: dict[str, str] | None = None
) -> dict[str, int]:
    """Write ``coco/<split>.json`` for each split; returns annotations written per file."""
    counts = {}
    for split in tables.splits or [None]:
        data = coco_dict(tables, split, boxes=boxes, file_names=file_names)
        name = f"coco/{split or 'all'}.json"
        atomic_write_text(Path(out) / name, json.dumps(data) + "\n")
        counts[name] = len(data["annotations"])
    return counts
