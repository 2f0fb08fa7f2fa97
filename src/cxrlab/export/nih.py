"""NIH ChestX-ray14-style files of a release: ``Data_Entry.csv``, ``BBox_List.csv`` and the split lists.

Layouts of the NIH ChestX-ray14 README ("Contents"), written the way the 2020 ``Data_Entry_2017_v2020.csv``
is: the header is unquoted (``OriginalImage[Width,Height]`` spans two fields), no trailing empty column, ages
in whole years, labels joined by ``|`` in alphabetical order or ``No Finding``. ``BBox_List.csv`` keeps the
original header ``Image Index,Finding Label,Bbox [x,y,w,h],,,`` and, for the NIH schema, its spelling
"Infiltrate". Image names are ``<image_id>.png`` unless the id already ends in ``.png``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.consensus.vote import image_positives
from cxrlab.runtime.files import atomic_write_text
from cxrlab.schemas import ReleaseTables

__all__ = ["BBOX_HEADER", "BBOX_SPELLING", "DATA_ENTRY_HEADER", "write_nih"]

DATA_ENTRY_HEADER = (
    "Image Index,Finding Labels,Follow-up #,Patient ID,Patient Age,Patient Gender,View Position,"
    "OriginalImage[Width,Height],OriginalImagePixelSpacing[x,y]"
)
#: Header of NIH's ``BBox_List_2017.csv`` (the four numbers x, y, w, h span the header's ``Bbox [x,y,w,h]``).
BBOX_HEADER = "Image Index,Finding Label,Bbox [x,y,w,h],,,"
#: Per schema, the box list's spelling of a label that ``Data_Entry_2017.csv`` spells otherwise.
BBOX_SPELLING = {"nih14": {"Infiltration": "Infiltrate"}}


def _name(image_id: str) -> str:
    return image_id if image_id.lower().endswith(".png") else f"{image_id}.png"


def _cell(v: object) -> str:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return ""
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    s = str(v)
    return f'"{s}"' if any(c in s for c in ',"\n') else s


def _num(v: object) -> str:
    return "" if v is None or pd.isna(v) else repr(float(v)) if not float(v).is_integer() else str(int(v))


def write_nih(tables: ReleaseTables, out: Path, *, threshold: float = 0.5) -> dict[str, int]:
    """Write ``nih/Data_Entry.csv``, ``nih/BBox_List.csv``, ``nih/train_val_list.txt``, ``nih/test_list.txt``."""
    out = Path(out) / "nih"
    schema = tables.schema
    names = schema.names
    images = tables.images.sort_values("image_id").reset_index(drop=True)
    pos = image_positives(tables, list(images["image_id"]), threshold=threshold).set_index("image_id")
    pos = pos.reindex(images["image_id"]).fillna(0)
    order = sorted(names)
    nofinding = schema.no_finding or "No Finding"
    lines = [DATA_ENTRY_HEADER]
    for r, (_, p) in zip(images.to_dict("records"), pos.iterrows(), strict=True):
        labels = "|".join(n for n in order if p.get(n, 0) == 1) or nofinding
        age = r.get("age_years")
        cells = [
            _cell(_name(str(r["image_id"]))),
            _cell(labels),
            _cell(r.get("follow_up") if r.get("follow_up") is not None and not pd.isna(r.get("follow_up")) else 0),
            _cell(r.get("patient_id")),
            "" if age is None or pd.isna(age) else str(int(age)),
            _cell(r.get("sex")),
            _cell(r.get("view_position")),
            _num(r.get("columns")),
            _num(r.get("rows")),
            _num(r.get("spacing_x")),
            _num(r.get("spacing_y")),
        ]
        lines.append(",".join(cells))
    atomic_write_text(out / "Data_Entry.csv", "\n".join(lines) + "\n")
    boxes = tables.consensus_boxes.sort_values("image_id", kind="stable")
    spelling = BBOX_SPELLING.get(schema.name, {})
    blines = [BBOX_HEADER]
    for r in boxes.to_dict("records"):
        w = r["bbox_w"] if "bbox_w" in r and not pd.isna(r["bbox_w"]) else r["x_max"] - r["x_min"]
        h = r["bbox_h"] if "bbox_h" in r and not pd.isna(r["bbox_h"]) else r["y_max"] - r["y_min"]
        cls = spelling.get(r["class_name"], r["class_name"])
        blines.append(",".join([_cell(_name(str(r["image_id"]))), _cell(cls), _num(r["x_min"]), _num(r["y_min"]),
                                _num(w), _num(h)]))
    atomic_write_text(out / "BBox_List.csv", "\n".join(blines) + "\n")
    for split, fname in (("train", "train_val_list.txt"), ("test", "test_list.txt")):
        ids = tables.split_ids(split)
        atomic_write_text(out / fname, "".join(_name(i) + "\n" for i in ids))
    return {"nih/Data_Entry.csv": len(lines) - 1, "nih/BBox_List.csv": len(blines) - 1}
