"""Import NIH ChestX-ray14: ``Data_Entry_2017.csv``, ``BBox_List_2017.csv``, the split lists and the PNG folder.

Layouts (NIH ChestX-ray14 README, "Contents"):

- ``Data_Entry_2017.csv``: ``Image Index, Finding Labels, Follow-up #, Patient ID, Patient Age, Patient Gender,
  View Position, OriginalImage[Width,Height], OriginalImagePixelSpacing[x,y]``. The header is not quoted, so
  ``OriginalImage[Width,Height]`` reads as two columns ``OriginalImage[Width`` and ``Height]`` (the same for
  the pixel spacing). Two published variants are read alike: the 2017 file ends every line with a comma (an
  extra empty column) and may write ages as DICOM AS strings (``058Y``); the 2020 file
  (``Data_Entry_2017_v2020.csv``) has no trailing column and integer ages. Some copies call the sex column
  ``Patient Sex``; a copy with the bracketed headers quoted (``"2682,2749"`` in one field) is read too.
  Labels are joined by ``|``; ``No Finding`` means none of the 14.
- ``BBox_List_2017.csv``: header ``Image Index,Finding Label,Bbox [x,y,w,h],,,`` (``[x y]`` the top-left
  corner, ``[w h]`` the size, in pixels of the 1024x1024 PNG); it spells "Infiltration" as "Infiltrate".
- ``train_val_list.txt`` and ``test_list.txt``: one image name per line (the patient-level split).
- ``images/`` (or ``images_*/images/``) with the PNG files.

Images become :class:`~cxrlab.schemas.ReleaseTables` rows keyed by ``Image Index``; the text-mined labels
are the consensus labels (one "reader": the NLP labeler) and the boxes the consensus boxes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.errors import CxrlabError
from cxrlab.ingest.tables import BadRows, Column, CsvFormatError, read_table
from cxrlab.runtime.unpack import open_table
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables, get_schema
from cxrlab.schemas.release import SIZE_RULE, bad_image_sizes, box_problems

__all__ = [
    "DATA_ENTRY_SPEC",
    "NIH_NO_FINDING",
    "read_bbox_list",
    "read_data_entry",
    "read_nih",
    "read_nih_release",
    "read_split_list",
]

NIH_NO_FINDING = "No Finding"
#: Side of the released PNG images, the space of ``BBox_List_2017.csv`` (NIH ChestX-ray14 README, "Contents":
#: "112,120 frontal-view chest X-ray PNG images in 1024*1024 resolution").
PNG_SIDE = 1024

DATA_ENTRY_SPEC = [
    Column("image_id", ("Image Index",), nullable=False),
    Column("finding_labels", ("Finding Labels",), nullable=False),
    Column("follow_up", ("Follow-up #", "Follow-up"), required=False, kind="int"),
    Column("patient_id", ("Patient ID",), required=False),
    Column("age", ("Patient Age",), required=False),
    Column("sex", ("Patient Gender", "Patient Sex"), required=False),
    Column("view_position", ("View Position",), required=False),
    Column("width", ("OriginalImage[Width", "OriginalImage[Width,Height]", "OriginalImageWidth"), required=False),
    Column("height", ("Height]", "OriginalImageHeight"), required=False, kind="float"),
    Column("spacing_x", ("OriginalImagePixelSpacing[x", "OriginalImagePixelSpacing[x,y]"), required=False),
    Column("spacing_y", ("y]",), required=False, kind="float"),
]
BBOX_SPEC = [
    Column("image_id", ("Image Index",), nullable=False),
    Column("class_name", ("Finding Label",), nullable=False),
    Column("x", ("Bbox [x", "Bbox [x,y,w,h]", "bbox_x"), kind="float", nullable=False),
    Column("y", ("bbox_y",), kind="float", nullable=False),
    Column("w", ("bbox_w",), kind="float", nullable=False),
    Column("h", ("h]", "bbox_h"), kind="float", nullable=False),
]


def _header(path: Path) -> list[str]:
    try:
        with open_table(path) as fh:
            return [str(c) for c in pd.read_csv(fh, nrows=0, encoding="utf-8-sig", compression=None).columns]
    except Exception:  # noqa: BLE001 - read_table reports the real problem
        return []


def _pair(frame: pd.DataFrame, first: str, second: str, table, what: str) -> None:  # noqa: ANN001
    """Split a quoted ``"a,b"`` bracketed column into two numbers (the variant with quoted headers)."""
    values = frame[first]
    if values.dtype != object:
        return
    if frame[second].isna().all() and values.astype("object").str.contains(",", regex=False).fillna(False).any():
        parts = values.astype("object").str.split(",", n=1, expand=True)
        frame[first] = parts[0]
        frame[second] = pd.to_numeric(parts[1], errors="coerce") if parts.shape[1] > 1 else np.nan
    num = pd.to_numeric(frame[first], errors="coerce")
    bad = (num.isna() & frame[first].notna()).to_numpy()
    frame[first] = num
    table.frame = frame
    table.reject(bad, f"{what} is not a number")


def _map_unique(values: pd.Series, fn) -> pd.Series:  # noqa: ANN001
    """Apply *fn* once per distinct value (ages and sexes repeat: 112,120 rows, ~100 values)."""
    codes, uniques = pd.factorize(values)
    mapped = np.array([fn(u) for u in uniques] + [None], dtype=object)
    return pd.Series(mapped[codes], index=values.index)


def _age(value: object) -> float | None:
    from cxrlab.dicom.metadata import parse_age_string

    try:
        years = float(value)  # 2020 variant: whole years
    except (TypeError, ValueError):
        years = parse_age_string(str(value))  # 2017 variant: "058Y"
    return None if years is None or not np.isfinite(years) or years < 0 else years


def _parse_ages(values: pd.Series) -> tuple[pd.Series, np.ndarray]:
    num = _map_unique(values, _age).astype(float)
    bad = (num.isna() & values.notna()).to_numpy()
    return num, bad


def read_data_entry(path: str | Path, *, on_bad_rows: BadRows = "raise") -> tuple[pd.DataFrame, list]:
    """Read ``Data_Entry_2017.csv`` (2017 or 2020 variant, ``.csv`` or ``.csv.gz``).

    Returns
    -------
    frame : DataFrame
        ``image_id, finding_labels, follow_up, patient_id, age_years, sex, view_position, columns (width),
        rows (height), spacing_x, spacing_y`` and one 0/1 column per NIH label in the README's order.
    problems : list of (int, str)
        Dropped rows (line, reason) under the ``warn``/``ignore`` policies.

    Raises
    ------
    CsvFormatError
        Missing columns, unknown finding labels, ages that are not ages, and other bad rows (line numbers).
    """
    schema = get_schema("nih14")
    spec = DATA_ENTRY_SPEC
    header = {str(h).strip().lower() for h in _header(Path(path))}
    if "originalimage[width,height]" not in header:
        # The usual unquoted header: both halves are numeric columns the C parser converts.
        spec = [Column(c.name, c.aliases, c.required, "float", c.nullable) if c.name in ("width", "spacing_x")
                else c for c in spec]
    table = read_table(path, spec, on_bad_rows=on_bad_rows)
    frame = table.frame
    _pair(frame, "width", "height", table, "OriginalImage width")
    frame = table.frame
    for col, what in (("width", "OriginalImage width"), ("height", "OriginalImage height")):
        table.reject(bad_image_sizes(table.frame[col].to_numpy(dtype=float)), f"{what} {SIZE_RULE}")
    frame = table.frame
    _pair(frame, "spacing_x", "spacing_y", table, "OriginalImagePixelSpacing x")
    frame = table.frame
    age, bad_age = _parse_ages(frame["age"].astype("object"))
    frame["age_years"] = age
    table.frame = frame
    table.reject(bad_age, "Patient Age is not an age")
    frame = table.frame
    # Labels: one lookup per distinct "A|B" string (a few hundred in 112,120 rows).
    uniq = frame["finding_labels"].unique()
    vectors: dict[str, np.ndarray | None] = {}
    names = schema.names
    for u in uniq:
        tokens = [t.strip() for t in str(u).split("|")]
        if tokens == [NIH_NO_FINDING] or [t.lower() for t in tokens] == ["no finding"]:
            vectors[u] = np.zeros(len(names), dtype=np.int8)
            continue
        resolved = [schema.resolve(t) for t in tokens]
        if any(r is None for r in resolved):
            vectors[u] = None
            continue
        vec = np.zeros(len(names), dtype=np.int8)
        vec[[names.index(r) for r in resolved]] = 1
        vectors[u] = vec
    unknown = frame["finding_labels"].map(lambda u: vectors[u] is None).to_numpy(dtype=bool)
    table.reject(unknown, "Finding Labels has a label that is not one of the 14 (or No Finding with others)")
    frame = table.frame
    if len(frame):
        codes, uniques = pd.factorize(frame["finding_labels"])
        mat = np.stack([vectors[u] for u in uniques])[codes]
    else:
        mat = np.zeros((0, len(names)), dtype=np.int8)
    frame = pd.concat([frame, pd.DataFrame(mat.astype(int), columns=names, index=frame.index)], axis=1)
    frame["sex"] = _map_unique(frame["sex"], lambda v: str(v).strip().upper()[:1] if str(v).strip().upper()[:1]
                               in ("M", "F", "O") else None)
    frame = frame.rename(columns={"width": "columns", "height": "rows"})
    table.frame = frame
    table.reject(frame["image_id"].duplicated().to_numpy(), "duplicate Image Index")
    frame = table.finish()
    out = frame[["image_id", "finding_labels", "follow_up", "patient_id", "age_years", "sex", "view_position",
                 "columns", "rows", "spacing_x", "spacing_y", *names]].reset_index(drop=True)
    return out, table.problems


def read_bbox_list(path: str | Path, *, on_bad_rows: BadRows = "raise") -> tuple[pd.DataFrame, list]:
    """Read ``BBox_List_2017.csv``: ``image_id, class_name, x_min, y_min, x_max, y_max, bbox_w, bbox_h``
    (class names in the schema's spelling; ``bbox_w``/``bbox_h`` keep the file's width and height). A box that
    leaves the 1024x1024 PNG it was drawn on (:data:`PNG_SIDE`) is a bad row."""
    schema = get_schema("nih14")
    table = read_table(path, BBOX_SPEC, on_bad_rows=on_bad_rows)
    frame = table.frame
    mapping = {u: schema.resolve(u) for u in frame["class_name"].unique()}
    resolved = frame["class_name"].map(mapping)
    table.reject(resolved.isna().to_numpy(), "Finding Label is not one of the 14 NIH labels")
    frame = table.frame
    frame["class_name"] = frame["class_name"].map(mapping)
    table.frame = frame
    table.reject(((frame["w"] <= 0) | (frame["h"] <= 0)).to_numpy(), "box width or height is not positive")
    frame = table.frame
    corners = np.column_stack([frame["x"], frame["y"], frame["x"] + frame["w"], frame["y"] + frame["h"]])
    side = np.full(len(frame), float(PNG_SIDE))
    lines = frame["line"].to_numpy()
    for mask, reason in box_problems(corners, side, side):
        table.reject(table.frame["line"].isin(lines[mask]).to_numpy(), reason)
    frame = table.finish()
    out = pd.DataFrame(
        {
            "image_id": frame["image_id"],
            "class_name": frame["class_name"],
            "x_min": frame["x"],
            "y_min": frame["y"],
            "x_max": frame["x"] + frame["w"],
            "y_max": frame["y"] + frame["h"],
            "bbox_w": frame["w"],
            "bbox_h": frame["h"],
        }
    ).reset_index(drop=True)
    return out, table.problems


def read_split_list(path: str | Path) -> list[str]:
    """Read ``train_val_list.txt`` / ``test_list.txt``: one image name per line (blank lines ignored).

    Raises
    ------
    CsvFormatError
        The file is missing, or a line holds more than one name.
    """
    path = Path(path)
    if not path.is_file():
        raise CsvFormatError(path, "file not found")
    names = []
    for n, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        if any(c in line for c in " ,\t"):
            raise CsvFormatError(path, f"line {n}: expected one image name per line")
        names.append(line)
    return names


def read_nih(
    data_entry: str | Path,
    *,
    bbox_list: str | Path | None = None,
    train_val_list: str | Path | None = None,
    test_list: str | Path | None = None,
    image_dir: str | Path | None = None,
    on_bad_rows: BadRows = "raise",
) -> ReleaseTables:
    """Read NIH ChestX-ray14 files into :class:`~cxrlab.schemas.ReleaseTables` (schema ``nih14``).

    The split is ``train`` for names in ``train_val_list.txt`` and ``test`` for ``test_list.txt``.
    """
    schema = get_schema("nih14")
    entries, probs = read_data_entry(data_entry, on_bad_rows=on_bad_rows)
    problems = [(f"{data_entry}:{n}", r) for n, r in probs]
    images = entries[["image_id", "finding_labels", "follow_up", "patient_id", "age_years", "sex",
                      "view_position", "columns", "rows", "spacing_x", "spacing_y"]].copy()
    images["split"] = None
    for path, split in ((train_val_list, "train"), (test_list, "test")):
        if path is not None:
            names = set(read_split_list(path))
            images.loc[images["image_id"].isin(names), "split"] = split
    if image_dir is not None:
        files = _png_files(Path(image_dir))
        images = images.merge(files, on="image_id", how="left")
    boxes = pd.DataFrame(columns=["image_id", "class_name", *BOX_COLUMNS, "score", "votes"])
    if bbox_list is not None:
        boxes, probs = read_bbox_list(bbox_list, on_bad_rows=on_bad_rows)
        problems += [(f"{bbox_list}:{n}", r) for n, r in probs]
        boxes["score"], boxes["votes"] = np.nan, np.nan
    return ReleaseTables(
        schema=schema,
        images=images,
        consensus_boxes=boxes,
        consensus_labels=entries[["image_id", *schema.names]].copy(),
        source="nih",
        problems=problems,
    )


def _png_files(folder: Path) -> pd.DataFrame:
    if not folder.is_dir():
        raise CxrlabError(f"{folder}: not a folder of PNG images")
    rows = [
        {"image_id": p.name, "path": str(p), "file_size": p.stat().st_size}
        for p in sorted(folder.rglob("*.png"))
    ]
    return pd.DataFrame(rows, columns=["image_id", "path", "file_size"])


def _first(folder: Path, patterns: tuple[str, ...]) -> Path | None:
    for pattern in patterns:
        hits = sorted(folder.glob(pattern))
        if hits:
            return hits[0]
    return None


def read_nih_release(folder: str | Path, *, on_bad_rows: BadRows = "raise") -> ReleaseTables:
    """Read an NIH release folder: ``Data_Entry_2017*.csv[.gz]`` (required), ``BBox_List_2017*.csv[.gz]``,
    ``train_val_list.txt``, ``test_list.txt`` and PNGs below ``images*/``.

    Raises
    ------
    CxrlabError
        No ``Data_Entry`` file in the folder.
    """
    folder = Path(folder)
    entry = _first(folder, ("Data_Entry_2017_v2020.csv*", "Data_Entry_2017.csv*", "Data_Entry*.csv*"))
    if entry is None:
        raise CxrlabError(f"{folder}: no Data_Entry_2017.csv in this folder")
    image_dirs = [p for p in sorted(folder.glob("images*")) if p.is_dir()]
    tables = read_nih(
        entry,
        bbox_list=_first(folder, ("BBox_List_2017.csv*", "BBox_List*.csv*")),
        train_val_list=_first(folder, ("train_val_list*.txt",)),
        test_list=_first(folder, ("test_list*.txt",)),
        on_bad_rows=on_bad_rows,
    )
    if image_dirs:
        files = pd.concat([_png_files(d) for d in image_dirs], ignore_index=True)
        tables.images = tables.images.merge(files, on="image_id", how="left")
    return tables
