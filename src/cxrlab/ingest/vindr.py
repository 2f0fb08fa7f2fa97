"""Import VinDr-CXR / VinDr-PCXR releases: ``annotations_*.csv``, ``image_labels_*.csv`` and DICOM folders.

Layouts (VinDr-CXR and VinDr-PCXR data descriptors, "Data Records"):

- ``annotations_{train,test}.csv``: ``image_id, rad_id, class_name, x_min, y_min, x_max, y_max[, class_id]``,
  one row per box per reader; a reader's "No finding" is a row with empty coordinates. Rows with an empty
  ``rad_id`` are consensus rows (the test set: "labeled by the consensus of 5 radiologists").
- ``image_labels_{train,test}.csv``: ``image_id, rad_id`` (also spelled ``rad_ID``) and one 0/1 column per
  label, one row per reader (train) or per image (test).
- The public challenge's single file ``train.csv``: ``image_id, class_name, class_id, rad_id, x_min, y_min,
  x_max, y_max`` with its own spellings ("ILD", "Lung Opacity"; ``schemas.ALIASES``) and class ids 0-14.
- ``train/`` and ``test/`` folders of ``<image_id>.dicom`` files.

Columns are found by name; the split of a CSV comes from its name (``*train*`` / ``*test*``), else ``train``.
Class names are mapped to the schema's spelling, so Table 2 and the exports use the seeds' names.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.errors import CxrlabError
from cxrlab.ingest.tables import BadRows, Column, CsvFormatError, CsvTable, read_table
from cxrlab.runtime.executor import Executor
from cxrlab.schemas import BOX_COLUMNS, LabelSchema, ReleaseTables, get_schema, guess_schema
from cxrlab.schemas.release import SIZE_RULE, bad_image_sizes, box_problems

__all__ = [
    "ANNOTATION_SPEC",
    "find_release_files",
    "read_dicom_folder",
    "read_image_meta",
    "read_meta",
    "read_vindr",
    "read_vindr_challenge",
    "read_vindr_release",
]

ANNOTATION_SPEC = [
    Column("image_id", ("image id", "imageid"), nullable=False),
    Column("rad_id", ("rad id", "radiologist_id", "reader"), required=False),
    Column("class_name", ("class name", "label", "finding"), nullable=False),
    Column("class_id", ("class id",), required=False, kind="int"),
    Column("x_min", ("xmin", "x1"), kind="float"),
    Column("y_min", ("ymin", "y1"), kind="float"),
    Column("x_max", ("xmax", "x2"), kind="float"),
    Column("y_max", ("ymax", "y2"), kind="float"),
    Column("width", ("image_width",), required=False, kind="float"),
    Column("height", ("image_height",), required=False, kind="float"),
    Column("score", ("confidence",), required=False, kind="float"),
]
_LABEL_KEYS = ("image_id", "rad_id", "split", "line")

#: Image metadata columns accepted in a ``--meta`` CSV (aliases include NIH ``Data_Entry`` names).
META_SPEC = [
    Column("image_id", ("image index", "image", "imageid"), nullable=False),
    Column("split", required=False),
    Column("rows", ("height", "image_height", "originalimage[height", "height]"), required=False, kind="float"),
    Column("columns", ("width", "image_width", "originalimage[width"), required=False, kind="float"),
    Column("sex", ("patient sex", "patient gender", "gender", "patientsex"), required=False),
    Column("age_years", ("age", "patient age", "age (years)"), required=False),
    Column("study_year", ("year", "study year"), required=False, kind="float"),
    Column("file_size", ("size", "bytes", "file size"), required=False, kind="float"),
    Column("patient_id", ("patient id", "patient"), required=False),
]


def _split_of(path: Path, default: str = "train") -> str:
    name = path.name.lower()
    if "test" in name:
        return "test"
    if "train" in name:
        return "train"
    return default


def _resolve_classes(table: CsvTable, schema: LabelSchema) -> None:
    frame = table.frame
    uniq = frame["class_name"].dropna().unique()
    mapping = {u: schema.resolve(u) for u in uniq}
    resolved = frame["class_name"].map(mapping)
    table.reject(resolved.isna().to_numpy(), f"class_name is not a label of schema {schema.name}")
    frame = table.frame
    frame["class_name"] = frame["class_name"].map(mapping)
    local = {lb.name for lb in schema.local}
    ok = frame["class_name"].isin(local) | (frame["class_name"] == schema.no_finding)
    table.frame = frame
    table.reject(~ok.to_numpy(), "class_name is a global label (boxes are for local labels)")


def _check_sizes(table: CsvTable, columns: Sequence[str]) -> None:
    """Reject rows whose image size in *columns* is not a whole number from 1 to 65,535 (PS3.3 C.7.6.3.1)."""
    for col in columns:
        table.reject(bad_image_sizes(table.frame[col].to_numpy(dtype=float)), f"{col} {SIZE_RULE}")


def _check_boxes(table: CsvTable, schema: LabelSchema, sizes: pd.DataFrame | None = None) -> None:
    """Reject box rows with a missing coordinate, a flipped box, or a box that leaves its image: beyond the
    row's ``width``/``height``, else the image's size in *sizes* (``columns``, ``rows`` by ``image_id``), else
    beyond 65,535, the largest image DICOM describes (:func:`cxrlab.schemas.release.box_problems`)."""
    frame = table.frame
    is_box = (frame["class_name"] != schema.no_finding).to_numpy()
    coords = frame[BOX_COLUMNS].to_numpy(dtype=float)
    missing = is_box & np.isnan(coords).any(axis=1)
    table.reject(missing, "box coordinates missing")
    frame = table.frame
    c = frame[BOX_COLUMNS].to_numpy(dtype=float)
    box = (frame["class_name"] != schema.no_finding).to_numpy()
    table.reject(box & ((c[:, 2] < c[:, 0]) | (c[:, 3] < c[:, 1])), "x_max < x_min or y_max < y_min")
    frame = table.frame
    width, height = frame["width"].astype(float), frame["height"].astype(float)
    if sizes is not None and len(sizes):
        width = width.fillna(frame["image_id"].map(sizes["columns"]).astype(float))
        height = height.fillna(frame["image_id"].map(sizes["rows"]).astype(float))
    box = (frame["class_name"] != schema.no_finding).to_numpy()
    lines = frame["line"].to_numpy()
    for mask, reason in box_problems(frame[BOX_COLUMNS].to_numpy(dtype=float), width.to_numpy(), height.to_numpy()):
        table.reject(table.frame["line"].isin(lines[box & mask]).to_numpy(), reason)


def _read_annotations(
    path: Path, schema: LabelSchema | None, on_bad_rows: BadRows, sizes: pd.DataFrame | None = None
) -> tuple[CsvTable, LabelSchema]:
    table = read_table(path, ANNOTATION_SPEC, on_bad_rows=on_bad_rows)
    if schema is None:
        try:
            schema = guess_schema(set(table.frame["class_name"].dropna().unique()))
        except KeyError as exc:
            raise CsvFormatError(path, str(exc.args[0])) from None
    _resolve_classes(table, schema)
    _check_sizes(table, ("width", "height"))
    _check_boxes(table, schema, sizes)
    return table, schema


def _read_labels(
    path: Path, schema: LabelSchema | None, on_bad_rows: BadRows
) -> tuple[CsvTable, LabelSchema, list[str]]:
    spec = [
        Column("image_id", ("image id", "imageid"), nullable=False),
        Column("rad_id", ("rad id", "radiologist_id", "reader"), required=False),
        Column("split", required=False),
    ]
    table = read_table(path, spec, on_bad_rows=on_bad_rows, others="float")
    others = [c for c in table.frame.columns if c not in _LABEL_KEYS and not str(c).startswith("Unnamed:")]
    if schema is None:
        try:
            schema = guess_schema(others)
        except KeyError as exc:
            raise CsvFormatError(path, str(exc.args[0])) from None
    mapping = {c: schema.resolve(c) for c in others}
    unknown = [c for c, m in mapping.items() if m is None]
    if unknown:
        raise CsvFormatError(path, f"column(s) {', '.join(unknown)} are not labels of schema {schema.name}")
    frame = table.frame.rename(columns=mapping)
    names = [mapping[c] for c in others]
    bad = np.zeros(len(frame), dtype=bool)
    for name in names:
        num = frame[name] if frame[name].dtype != object else pd.to_numeric(frame[name], errors="coerce")
        bad |= ~num.isin([0, 1]).to_numpy()
        frame[name] = num
    table.frame = frame
    table.reject(bad, "label value is not 0 or 1")
    frame = table.frame
    for name in names:
        frame[name] = frame[name].astype(int)
    dup = frame.duplicated(subset=["image_id", "rad_id"], keep="first").to_numpy()
    table.frame = frame
    table.reject(dup, "duplicate row for this image_id and rad_id")
    return table, schema, names


def _derive_labels(marks: pd.DataFrame, keys: list[str], schema: LabelSchema) -> pd.DataFrame:
    """0/1 labels per *keys* group from annotation rows: a local label is 1 when a box of it was drawn,
    "No finding" when its row is present."""
    if marks.empty:
        return pd.DataFrame(columns=[*keys, *schema.names])
    wide = marks.groupby([*keys, "class_name"], sort=True).size().unstack("class_name", fill_value=0)
    wide = wide.clip(upper=1).reindex(columns=schema.names, fill_value=0).astype(int).reset_index()
    wide.columns.name = None
    return wide


def read_vindr(
    annotations: Sequence[str | Path] = (),
    image_labels: Sequence[str | Path] = (),
    *,
    dicom_dirs: Sequence[str | Path] = (),
    schema: str | LabelSchema | None = None,
    split: str | None = None,
    on_bad_rows: BadRows = "raise",
    read_headers: bool = False,
    executor: Executor | None = None,
    image_sizes: pd.DataFrame | None = None,
) -> ReleaseTables:
    """Read VinDr-layout files into :class:`~cxrlab.schemas.ReleaseTables`.

    Parameters
    ----------
    annotations, image_labels : sequence of path
        ``annotations_*.csv[.gz]`` and ``image_labels_*.csv[.gz]`` files (any number, any order).
    dicom_dirs : sequence of path
        Folders of ``<image_id>.dicom`` (or ``.dcm``) files; the split is the folder name when it is
        ``train`` or ``test``.
    schema : str or LabelSchema, optional
        Label schema; guessed from the class names and label headers when not given.
    split : str, optional
        Force the split of every CSV (default: from each file name, else ``train``).
    on_bad_rows : {"raise", "warn", "ignore"}
        Bad-row policy of :func:`~cxrlab.ingest.tables.read_table`; with ``warn`` the dropped rows are in
        ``ReleaseTables.problems``.
    read_headers : bool
        Read each DICOM header for rows, columns, sex and age (header only, in parallel).
    image_sizes : DataFrame, optional
        ``rows`` and ``columns`` by ``image_id`` (a ``--meta`` file: :func:`read_meta`), overriding the headers'.
        A box is a bad row when it leaves its image: beyond the row's ``width``/``height``, else this size or
        the header's, else beyond 65,535 (the largest image DICOM describes).

    Raises
    ------
    CsvFormatError
        A file is missing, empty, lacks a column or has bad rows (line numbers in the message).
    CxrlabError
        No file was given.
    """
    if not annotations and not image_labels and not dicom_dirs:
        raise CxrlabError("nothing to read: give annotations, image labels or DICOM folders")
    sch = get_schema(schema) if isinstance(schema, str) else schema
    problems: list[tuple[str, str]] = []
    folders = [read_dicom_folder(Path(d), read_headers=read_headers, executor=executor) for d in dicom_dirs]
    sizes = _image_sizes([*folders, image_sizes])
    ann_tables: list[tuple[CsvTable, str]] = []
    for p in annotations:
        table, sch = _read_annotations(Path(p), sch, on_bad_rows, sizes)
        ann_tables.append((table, split or _split_of(Path(p))))
    lab_tables: list[tuple[CsvTable, str, list[str]]] = []
    for p in image_labels:
        table, sch, names = _read_labels(Path(p), sch, on_bad_rows)
        lab_tables.append((table, split or _split_of(Path(p)), names))
    if sch is None:
        sch = get_schema("vindr-cxr")
    for table, *_ in [*ann_tables, *lab_tables]:
        table.finish()
        problems.extend((f"{table.path}:{n}", r) for n, r in table.problems)
    names = sch.names

    split_of: dict[str, str] = {}
    rb, rm, cb, cm = [], [], [], []
    for table, sp in ann_tables:
        f = table.frame
        for iid in f["image_id"].unique():
            split_of.setdefault(iid, sp)
        reader = f["rad_id"].notna()
        is_box = f["class_name"] != sch.no_finding
        rb.append(f.loc[reader & is_box, ["image_id", "rad_id", "class_name", *BOX_COLUMNS]])
        rm.append(f.loc[reader, ["image_id", "rad_id", "class_name"]])
        cols = ["image_id", "class_name", *BOX_COLUMNS] + (["score"] if f["score"].notna().any() else [])
        cb.append(f.loc[~reader & is_box, cols])
        cm.append(f.loc[~reader, ["image_id", "class_name"]])
    reader_boxes = _concat(rb, ["image_id", "rad_id", "class_name", *BOX_COLUMNS])
    consensus_boxes = _concat(cb, ["image_id", "class_name", *BOX_COLUMNS])
    if "score" not in consensus_boxes:
        consensus_boxes["score"] = np.nan
    consensus_boxes["votes"] = np.nan
    derived_r = _derive_labels(_concat(rm, ["image_id", "rad_id", "class_name"]), ["image_id", "rad_id"], sch)
    derived_c = _derive_labels(_concat(cm, ["image_id", "class_name"]), ["image_id"], sch)

    lr, lc, known = [], [], set()
    for table, sp, got in lab_tables:
        f = table.frame
        known.update(got)
        for iid in f["image_id"].unique():
            split_of.setdefault(iid, sp)
        f = f.reindex(columns=["image_id", "rad_id", *names], fill_value=0)
        reader = f["rad_id"].notna()
        lr.append(f.loc[reader])
        lc.append(f.loc[~reader].drop(columns="rad_id"))
    reader_labels = _merge_labels(_concat(lr, ["image_id", "rad_id", *names]), derived_r, ["image_id", "rad_id"])
    consensus_labels = _merge_labels(_concat(lc, ["image_id", *names]), derived_c, ["image_id"])
    if ann_tables:
        known.update(lb.name for lb in sch.local)
        known.add(sch.no_finding)
    images = pd.DataFrame({"image_id": list(split_of), "split": list(split_of.values())})
    for files in folders:
        images = _merge_images(images, files)
    return ReleaseTables(
        schema=sch,
        images=images.sort_values("image_id").reset_index(drop=True),
        reader_boxes=reader_boxes,
        reader_labels=reader_labels,
        consensus_boxes=consensus_boxes,
        consensus_labels=consensus_labels,
        known_labels=[n for n in names if n in known],
        source="vindr",
        problems=problems,
    )


def _image_sizes(frames: Sequence[pd.DataFrame | None]) -> pd.DataFrame | None:
    """``rows, columns`` by ``image_id`` from *frames* (later frames win; rows without both sizes skipped)."""
    known = [f.loc[f["rows"].notna() & f["columns"].notna(), ["image_id", "rows", "columns"]]
             for f in frames if f is not None and {"rows", "columns"} <= set(f.columns)]
    if not known:
        return None
    sizes = pd.concat(known, ignore_index=True).drop_duplicates("image_id", keep="last").set_index("image_id")
    return sizes.astype(float)


def _concat(frames: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    frames = [f for f in frames if len(f)]
    if not frames:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in BOX_COLUMNS else "object") for c in columns})
    return pd.concat(frames, ignore_index=True)


def _merge_labels(given: pd.DataFrame, derived: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Labels from ``image_labels`` files win; annotation-derived rows fill (image, reader) pairs they lack."""
    if given.empty:
        return derived.reset_index(drop=True)
    if derived.empty:
        return given.reset_index(drop=True)
    have = pd.MultiIndex.from_frame(given[keys].astype(str))
    extra = derived.loc[~pd.MultiIndex.from_frame(derived[keys].astype(str)).isin(have)]
    return pd.concat([given, extra], ignore_index=True)


def _merge_images(images: pd.DataFrame, files: pd.DataFrame) -> pd.DataFrame:
    """Add one DICOM folder's files to *images*; a column both have (``split``, and ``path``, ``file_size``, ...
    from a second folder such as ``test/`` after ``train/``) is filled where it is still empty."""
    merged = images.merge(files, on="image_id", how="outer", suffixes=("", "_dir"))
    for col in [c for c in merged.columns if c.endswith("_dir")]:
        merged[col.removesuffix("_dir")] = merged[col.removesuffix("_dir")].fillna(merged.pop(col))
    return merged


def read_dicom_folder(folder: Path, *, read_headers: bool = False, executor: Executor | None = None) -> pd.DataFrame:
    """List ``<image_id>.dicom`` / ``.dcm`` files below *folder*: ``image_id, split, path, file_size`` and,
    with *read_headers*, ``rows, columns, sex, age_years, study_year`` from each header.

    Raises
    ------
    CxrlabError
        *folder* is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise CxrlabError(f"{folder}: not a folder of DICOM files")
    rows = []
    for p in sorted(folder.rglob("*")):
        if p.suffix.lower() in (".dicom", ".dcm") and p.is_file():
            parent, top = p.parent.name.lower(), folder.name.lower()
            sp = parent if parent in ("train", "test") else (top if top in ("train", "test") else None)
            rows.append({"image_id": p.stem, "split": sp, "path": str(p), "file_size": p.stat().st_size})
    frame = pd.DataFrame(rows, columns=["image_id", "split", "path", "file_size"])
    if read_headers and len(frame):
        ex = executor or Executor()
        metas = [m for _p, m in ex.map(read_image_meta, list(frame["path"]))]
        meta = pd.DataFrame(metas, index=frame.index)
        frame = pd.concat([frame, meta], axis=1)
    return frame


def read_image_meta(path: str) -> dict:
    """Rows, columns, sex, age (years) and study year from one DICOM header (empty values when unreadable).

    Ages come from (0010,1010) *Patient's Age* (an AS value, PS3.5 Table 6.2-1).
    """
    from cxrlab.dicom.io import DicomReadError, read_dataset
    from cxrlab.dicom.metadata import parse_age_string

    out = {"rows": None, "columns": None, "sex": None, "age_years": None, "study_year": None}
    try:
        ds = read_dataset(path, header_only=True)
    except DicomReadError:
        return out
    out["rows"], out["columns"] = ds.get("Rows") or None, ds.get("Columns") or None  # US: 0 means unknown
    sex = str(ds.get("PatientSex", "") or "").strip().upper()[:1]
    out["sex"] = sex if sex in ("M", "F", "O") else None
    out["age_years"] = parse_age_string(ds.get("PatientAge"))
    date = str(ds.get("StudyDate", "") or "")
    out["study_year"] = int(date[:4]) if len(date) >= 4 and date[:4].isdigit() else None
    return out


def find_release_files(folder: Path) -> dict[str, list[Path]]:
    """The VinDr files of a release folder: ``annotations``, ``image_labels`` (``.csv`` or ``.csv.gz``) and
    ``dicom_dirs`` (``train/``, ``test/``)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CxrlabError(f"{folder}: not a folder")
    found: dict[str, list[Path]] = {"annotations": [], "image_labels": [], "dicom_dirs": []}
    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        if p.is_file() and (name.endswith(".csv") or name.endswith(".csv.gz")):
            if name.startswith("annotations"):
                found["annotations"].append(p)
            elif name.startswith("image_labels"):
                found["image_labels"].append(p)
        elif p.is_dir() and name in ("train", "test"):
            found["dicom_dirs"].append(p)
    return found


def read_vindr_release(folder: str | Path, **kwargs: object) -> ReleaseTables:
    """Read a VinDr release folder (``annotations_*.csv``, ``image_labels_*.csv``, ``train/``, ``test/``).

    Keyword arguments are those of :func:`read_vindr`.

    Raises
    ------
    CxrlabError
        The folder holds none of these files.
    """
    found = find_release_files(Path(folder))
    if not found["annotations"] and not found["image_labels"]:
        raise CxrlabError(f"{folder}: no annotations_*.csv or image_labels_*.csv in this folder")
    return read_vindr(found["annotations"], found["image_labels"], dicom_dirs=found["dicom_dirs"], **kwargs)


def read_vindr_challenge(path: str | Path, *, on_bad_rows: BadRows = "raise") -> ReleaseTables:
    """Read the public challenge's single file (``image_id, class_name, class_id, rad_id, x_min, ...``):
    VinDr-CXR schema, challenge spellings mapped to the seed's ("ILD" -> "Interstitial lung disease (ILD)")."""
    return read_vindr([path], schema="vindr-cxr", split="train", on_bad_rows=on_bad_rows)


def read_meta(path: str | Path, *, on_bad_rows: BadRows = "raise") -> pd.DataFrame:
    """Read an image metadata CSV (``image_id`` and any of rows/height, columns/width, sex, age, year, size).

    Ages may be numbers of years or DICOM AS strings (``045Y``, ``018M``; PS3.5 Table 6.2-1). Rows and columns
    must be whole numbers from 1 to 65,535, as DICOM's US (0028,0010) *Rows* and (0028,0011) *Columns* are
    (PS3.3 C.7.6.3.1); another value is a bad row.
    """
    from cxrlab.dicom.metadata import parse_age_string

    table = read_table(path, META_SPEC, on_bad_rows=on_bad_rows)
    _check_sizes(table, ("rows", "columns"))
    frame = table.finish()
    age = frame["age_years"]
    num = pd.to_numeric(age, errors="coerce")
    as_string = num.isna() & age.notna()
    if as_string.any():
        num = num.where(~as_string, age[as_string].map(parse_age_string))
    frame["age_years"] = num.astype(float)
    sex = frame["sex"].astype("object").str.strip().str.upper().str[:1]
    frame["sex"] = sex.where(sex.isin(["M", "F", "O"]), None)
    return frame[[c.name for c in META_SPEC]]
