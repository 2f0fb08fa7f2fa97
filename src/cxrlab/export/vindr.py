"""The four CSVs of a VinDr-layout release.

``annotations_{split}.csv``: ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id`` — one row per box;
a "No finding" is one row with empty coordinates. ``image_labels_{split}.csv``: ``image_id,rad_id`` and one
0/1 column per label in the seed's order. The training set has one row per reader (``rad_id`` set), the test
set the consensus (empty ``rad_id``) — VinDr-CXR data descriptor, "Data Records": "Each image in the training
set was independently labeled by 3 radiologists, while ... the test set ... by the consensus of 5
radiologists"; docs, "File formats".

Coordinates are written with at most two decimals and no trailing zeros (``691``, ``1375.5``); ``class_id``
is :meth:`~cxrlab.schemas.LabelSchema.class_id`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab.runtime.files import atomic_write_text
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables

__all__ = [
    "ANNOTATION_COLUMNS",
    "annotation_rows",
    "format_coords",
    "frame_csv_text",
    "label_rows",
    "write_csv",
    "write_frame",
    "write_vindr_csvs",
]

ANNOTATION_COLUMNS = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max", "class_id"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a CSV atomically (RFC 4180 quoting, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _text_column(values: pd.Series) -> list[str]:
    """One CSV column as text: missing -> "", whole floats without ".0", RFC 4180 quoting where needed."""
    if pd.api.types.is_integer_dtype(values.dtype) and not values.isna().any():
        return values.astype("int64").astype(str).tolist()
    if pd.api.types.is_float_dtype(values.dtype):
        arr = values.to_numpy(dtype=float)
        whole = np.isfinite(arr) & (arr == np.round(arr))
        text = np.where(whole, np.char.mod("%d", np.where(whole, arr, 0).astype(np.int64)),
                        arr.astype(str)).astype(object)
        text[~np.isfinite(arr)] = ""
        return text.tolist()
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    text = []
    for v in np.asarray(uniques, dtype=object):
        if isinstance(v, float | np.floating) and float(v).is_integer():
            v = int(v)
        t = str(v)
        if "," in t or '"' in t or "\n" in t or "\r" in t:
            t = '"' + t.replace('"', '""') + '"'
        text.append(t)
    text.append("")  # code -1: missing
    return np.asarray(text, dtype=object)[codes].tolist()


def frame_csv_text(frame: pd.DataFrame) -> str:
    """A DataFrame as CSV text (no index, ``\\n`` line ends, empty cells for missing values).

    Written by hand (column-wise text conversion, one join) because ``DataFrame.to_csv`` spends about a second
    on the 63,000 object rows of a VinDr-CXR ``annotations_train.csv``.
    """
    header = ",".join(_text_column(pd.Series(list(frame.columns))))
    columns = [_text_column(frame[c]) for c in frame.columns]
    body = "".join(",".join(row) + "\n" for row in zip(*columns, strict=True)) if len(frame) else ""
    return header + "\n" + body


def write_frame(path: Path, frame: pd.DataFrame) -> None:
    """Write a DataFrame as CSV atomically (:func:`frame_csv_text`)."""
    atomic_write_text(path, frame_csv_text(frame))


def format_coords(values: np.ndarray) -> np.ndarray:
    """Format pixel coordinates with at most 2 decimals, no trailing zeros; NaN becomes ``""``."""
    values = np.asarray(values, dtype=float)
    out = np.full(values.shape, "", dtype=object)
    ok = np.isfinite(values)
    if ok.any():
        # "+ 0.0" turns -0.0 into 0.0 so a rounded tiny negative never prints as "-0".
        text = np.char.mod("%.2f", np.round(values[ok], 2) + 0.0)
        text = np.char.rstrip(np.char.rstrip(text, "0"), ".")
        out[ok] = text
    return out


def _split_images(tables: ReleaseTables, split: str | None) -> set[str] | None:
    return None if split is None else set(tables.split_ids(split))


def annotation_rows(tables: ReleaseTables, split: str | None = None, *, consensus: bool = False) -> pd.DataFrame:
    """Rows of ``annotations_<split>.csv`` (all images when *split* is None).

    Parameters
    ----------
    consensus : bool
        Write the consensus boxes with an empty ``rad_id`` (the test layout) instead of each reader's.
    """
    schema = tables.schema
    keep = _split_images(tables, split)
    nf = schema.no_finding
    if consensus:
        boxes = tables.consensus_boxes.copy()
        boxes["rad_id"] = ""
        labels = tables.consensus_labels.copy()
        labels["rad_id"] = ""
    else:
        boxes = tables.reader_boxes.copy()
        labels = tables.reader_labels.copy()
    if keep is not None:
        boxes = boxes.loc[boxes["image_id"].isin(keep)]
        labels = labels.loc[labels["image_id"].isin(keep)]
    boxes = boxes[["image_id", "rad_id", "class_name", *BOX_COLUMNS]]
    frames = [boxes]
    if nf in labels.columns and len(labels):
        nf_rows = labels.loc[labels[nf] == 1, ["image_id", "rad_id"]].copy()
        nf_rows["class_name"] = nf
        for c in BOX_COLUMNS:
            nf_rows[c] = np.nan
        frames.append(nf_rows)
    rows = pd.concat([f for f in frames if len(f)], ignore_index=True) if any(len(f) for f in frames) else boxes
    local = {lb.name: i for i, lb in enumerate(schema.local)}
    ids = {**local, **({nf: len(local)} if nf else {})}
    out = pd.DataFrame(
        {
            "image_id": rows["image_id"].to_numpy(dtype=object),
            "rad_id": rows["rad_id"].fillna("").to_numpy(dtype=object),
            "class_name": rows["class_name"].to_numpy(dtype=object),
        },
        dtype=object,
    )
    for c in BOX_COLUMNS:
        out[c] = format_coords(rows[c].to_numpy(dtype=float))
    out["class_id"] = rows["class_name"].map(ids).astype("Int64").to_numpy()
    return out.sort_values(["image_id", "rad_id"], kind="stable").reset_index(drop=True)


def label_rows(tables: ReleaseTables, split: str | None = None, *, consensus: bool = False) -> pd.DataFrame:
    """Rows of ``image_labels_<split>.csv``: ``image_id, rad_id`` and one 0/1 column per label."""
    names = tables.schema.names
    keep = _split_images(tables, split)
    if consensus:
        labels = tables.consensus_labels.copy()
        labels["rad_id"] = ""
    else:
        labels = tables.reader_labels.copy()
    if keep is not None:
        labels = labels.loc[labels["image_id"].isin(keep)]
    out = labels.reindex(columns=["image_id", "rad_id", *names])
    out[names] = out[names].fillna(0).astype(int)
    out["rad_id"] = out["rad_id"].fillna("").astype(str)
    return out.sort_values(["image_id", "rad_id"], kind="stable").reset_index(drop=True)


def write_vindr_csvs(
    tables: ReleaseTables,
    out: Path,
    *,
    splits: tuple[str, ...] = ("train", "test"),
    per_reader: tuple[str, ...] = ("train",),
) -> dict[str, int]:
    """Write ``annotations_<split>.csv`` and ``image_labels_<split>.csv`` for each split that has images.

    Splits in *per_reader* get one row per reader; the others the consensus with an empty ``rad_id``.

    Returns
    -------
    dict
        Rows written per file name.
    """
    counts = {}
    for split in splits:
        if not tables.split_ids(split):
            continue
        consensus = split not in per_reader
        ann = annotation_rows(tables, split, consensus=consensus)
        lab = label_rows(tables, split, consensus=consensus)
        write_frame(Path(out) / f"annotations_{split}.csv", ann)
        write_frame(Path(out) / f"image_labels_{split}.csv", lab)
        counts[f"annotations_{split}.csv"] = len(ann)
        counts[f"image_labels_{split}.csv"] = len(lab)
    return counts
