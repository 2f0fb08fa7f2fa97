"""Read the files a benchmark is scored from: ground-truth boxes, Kaggle-style submissions and image sizes.

Layouts (DESIGN.md, "Formats we must write exactly"):

- ground truth: ``annotations_test.csv`` of the seeds, ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max,
  class_id``, one row per box; a "No finding" row has empty coordinates and becomes the box ``0 0 1 1``
  (VinDr-CXR data descriptor, "Data Records"; the challenge's convention for "No finding");
- submission: ``image_id,PredictionString`` with groups ``class conf x_min y_min x_max y_max`` separated by
  white space; "No finding" is ``14 1 0 0 1 1``;
- image sizes (``--meta``): ``image_id,width,height`` (``columns,rows`` are accepted as well).

Line numbers count the header as line 1, so pandas row *i* is on line *i + 2*.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cxrlab.evaluate.classes import CHALLENGE, NO_FINDING_BOX, ClassList
from cxrlab.evaluate.exceptions import EvaluationError, SubmissionError

__all__ = [
    "GroundTruth",
    "Predictions",
    "parse_predictions",
    "numeric",
    "read_annotations",
    "read_csv",
    "read_meta",
    "read_submission",
]

BOX_COLUMNS = ["x_min", "y_min", "x_max", "y_max"]
SUBMISSION_COLUMNS = ["image_id", "PredictionString"]


def read_csv(source: str | Path | pd.DataFrame | BinaryIO, *, what: str) -> tuple[pd.DataFrame, str]:
    """Read a CSV as strings (ids stay exact, empty cells stay ``""``); return it and a name for messages.

    *source* may also be an open binary file (an upload held in memory); messages then use its ``name``
    attribute, or ``<what>`` without one, never a server path.
    """
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), f"<{what}>"
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else f"<{what}>"
    else:
        path = Path(source)
        if not path.is_file():
            raise EvaluationError(f"{path}: {what} file not found")
        source, name = path, str(path)
    try:
        frame = pd.read_csv(source, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{name}: not a readable CSV ({type(exc).__name__}: {exc})") from None
    return frame, name


def numeric(col: pd.Series) -> np.ndarray:
    """A column as float64 (a fresh array); empty or non-numeric cells become NaN."""
    if pd.api.types.is_numeric_dtype(col):
        return col.to_numpy(dtype=np.float64, copy=True)
    return pd.to_numeric(col.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64, copy=True)


def line_of(row: int) -> int:
    """File line of pandas row *row* (header on line 1)."""
    return row + 2


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth boxes of one test set, in file order.

    Attributes
    ----------
    image_ids : ndarray of str
        Every image, in order of first appearance in the file (the order the community evaluator numbered
        them, which decides ties in confidence between images).
    image : ndarray of int
        Per box, its index into ``image_ids``.
    cls : ndarray of int
        Per box, its class id in ``classes``.
    boxes : ndarray of float64, shape (n, 4)
        ``x_min, y_min, x_max, y_max``.
    classes : ClassList
    dropped : Counter
        Rows left out because their class is not in ``classes``, by class name.
    """

    image_ids: np.ndarray
    image: np.ndarray
    cls: np.ndarray
    boxes: np.ndarray
    classes: ClassList
    dropped: Counter = field(default_factory=Counter)

    def subset(self, image_ids) -> GroundTruth:  # noqa: ANN001 - any collection of str
        """The boxes of *image_ids* only, keeping file order.

        Raises
        ------
        EvaluationError
            When an id is not in the ground truth.
        """
        wanted = pd.Index(pd.unique(np.asarray(list(image_ids), dtype=object)))
        pos = pd.Index(self.image_ids).get_indexer(wanted)
        if (pos < 0).any():
            missing = wanted[pos < 0]
            raise EvaluationError(
                f"{len(missing)} image id(s) to score are not in the ground truth (first: {missing[0]!r})"
            )
        keep = np.zeros(len(self.image_ids), bool)
        keep[pos] = True
        rows = keep[self.image]
        old = np.flatnonzero(keep)  # new image numbering keeps the order of first appearance
        remap = np.full(len(self.image_ids), -1)
        remap[old] = np.arange(len(old))
        return GroundTruth(
            self.image_ids[old], remap[self.image[rows]], self.cls[rows], self.boxes[rows], self.classes, self.dropped
        )


def read_annotations(source: str | Path | pd.DataFrame | BinaryIO, *, classes: ClassList = CHALLENGE) -> GroundTruth:
    """Read ground-truth boxes in the seeds' ``annotations_test.csv`` layout.

    Parameters
    ----------
    source : path or DataFrame
        Columns ``image_id``, ``class_name`` (or ``class_id`` alone) and ``x_min, y_min, x_max, y_max``;
        ``rad_id`` and other columns are ignored.
    classes : ClassList
        The scored classes. The class of a row is read from ``class_name`` (any accepted spelling); ``class_id``
        is used only when there is no ``class_name`` column, because a release's ``class_id`` numbers the
        schema's labels, not the challenge's.

    Returns
    -------
    GroundTruth
        "No finding" rows become the box ``0 0 1 1``; rows of classes outside *classes* are dropped and counted.

    Raises
    ------
    EvaluationError
        Missing columns, or a box row with a missing or non-numeric coordinate or ``x_max < x_min`` (naming the
        file and line).
    """
    frame, name = read_csv(source, what="ground truth")
    has_name = "class_name" in frame.columns
    need = ["image_id", "class_name" if has_name or "class_id" not in frame.columns else "class_id", *BOX_COLUMNS]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise EvaluationError(f"{name}: missing column(s) {', '.join(missing)} (need {', '.join(need)})")
    image_id = frame["image_id"].astype(str).str.strip().to_numpy(dtype=object)
    if has_name:
        labels = frame["class_name"].astype(str)
        lookup = {v: classes.id_of(v) for v in pd.unique(labels)}
        cls = labels.map(lambda v: -1 if lookup[v] is None else lookup[v]).to_numpy(dtype=np.int64)
    else:
        ids = numeric(frame["class_id"])
        bad = ~np.isfinite(ids) | (ids != np.round(ids))
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise EvaluationError(f"{name}:{line_of(row)}: class_id is not an integer")
        cls = ids.astype(np.int64)
        cls[(cls < 0) | (cls >= len(classes))] = -1
        labels = frame["class_id"].astype(str)
    keep = cls >= 0
    dropped = Counter(labels[~keep].tolist())
    coords = np.column_stack([numeric(frame[c]) for c in BOX_COLUMNS]) if len(frame) else np.empty((0, 4))
    is_nf = cls == (classes.no_finding if classes.no_finding is not None else -2)
    coords[is_nf] = NO_FINDING_BOX
    box_rows = keep & ~is_nf
    bad = box_rows & ~np.isfinite(coords).all(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise EvaluationError(
            f"{name}:{line_of(row)}: a {classes.names[cls[row]]!r} box needs four numeric coordinates "
            f"({bad.sum()} such row(s))"
        )
    flipped = box_rows & ((coords[:, 2] < coords[:, 0]) | (coords[:, 3] < coords[:, 1]))
    if flipped.any():
        row = int(np.flatnonzero(flipped)[0])
        raise EvaluationError(f"{name}:{line_of(row)}: x_max < x_min or y_max < y_min ({flipped.sum()} such row(s))")
    image_id, cls, coords = image_id[keep], cls[keep], coords[keep]
    codes, uniques = pd.factorize(image_id, sort=False)
    return GroundTruth(np.asarray(uniques, dtype=object), codes.astype(np.int64), cls, coords, classes, dropped)


def read_submission(source: str | Path | pd.DataFrame | BinaryIO) -> tuple[pd.DataFrame, str]:
    """Read an ``image_id,PredictionString`` submission as strings (an empty cell is ``""``).

    Raises
    ------
    SubmissionError
        When a column is missing.
    """
    frame, name = read_csv(source, what="submission")
    missing = [c for c in SUBMISSION_COLUMNS if c not in frame.columns]
    if missing:
        raise SubmissionError(f"{name}:1: missing column(s) {', '.join(missing)} (need image_id,PredictionString)")
    frame = frame[SUBMISSION_COLUMNS].copy()
    frame["image_id"] = frame["image_id"].astype(str).str.strip()
    frame["PredictionString"] = frame["PredictionString"].fillna("").astype(str)
    return frame, name


@dataclass(frozen=True)
class Predictions:
    """Parsed predictions, one entry per box, in submission order (row by row, group by group).

    Attributes
    ----------
    row : ndarray of int
        Submission row (0-based) of each box.
    image_id : ndarray of str
        Image id of each submission row.
    cls, score, boxes : ndarray
        Class id, confidence and ``x_min, y_min, x_max, y_max`` of each box.
    """

    row: np.ndarray
    image_id: np.ndarray
    cls: np.ndarray
    score: np.ndarray
    boxes: np.ndarray


def _to_float(text: str | bytes) -> np.ndarray:
    """Parse newline-separated number tokens (str, or ASCII bytes). pandas' C tokenizer is about three times
    faster than ``float()`` per token and rounds identically; tokens it refuses ("nan", "inf", "1_0") raise
    ValueError."""
    if not text:
        return np.empty(0)
    if ("," if isinstance(text, str) else b",") in text:
        # The CSV reader would split "1,2" into two fields and keep one; float() refuses it.
        raise ValueError("a token holds a comma")
    try:
        buf = io.BytesIO(text) if isinstance(text, bytes) else io.StringIO(text)
        col = pd.read_csv(buf, header=None, names=["v"], dtype=np.float64, na_filter=False, quoting=3)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(str(exc)) from None
    return col["v"].to_numpy()


_OTHER_SPACE = ("  ", "\t", "\n", "\r", "\x0b", "\x0c")


def _tokenize(strings: list[str]) -> tuple[np.ndarray, str | None, list[list[str]] | None]:
    """Token counts per string and either the tokens joined by newlines (the usual single-space layout, without
    making a Python string per token) or the split tokens (any other white space, as ``str.split()``)."""
    text = " ".join(s for s in strings if s)
    plain = text.isascii() and not text.startswith(" ") and not text.endswith(" ")
    if plain and not any(sp in text for sp in _OTHER_SPACE):
        counts = np.fromiter((s.count(" ") + 1 if s else 0 for s in strings), dtype=np.int64, count=len(strings))
        return counts, text.replace(" ", "\n"), None
    tokens = [s.split() for s in strings]
    counts = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    return counts, None, tokens


def parse_predictions(frame: pd.DataFrame, *, name: str = "<submission>") -> Predictions:
    """Parse every ``PredictionString`` of a submission (vectorised: no Python work per box).

    Numbers are read as Python's ``float()`` reads them, as the community notebook did.

    Raises
    ------
    SubmissionError
        On the first malformed row (naming its line): a token that is not a number, a group of fewer than six
        numbers, a class that is not an integer, or a confidence or coordinate that is NaN or infinite.
        :func:`~cxrlab.evaluate.validate_submission` lists every problem.
    """
    strings = frame["PredictionString"].tolist()
    counts, text, tokens = _tokenize(strings)
    odd = np.flatnonzero(counts % 6)
    if len(odd):
        raise SubmissionError(
            f"{name}:{line_of(int(odd[0]))}: PredictionString has {counts[odd[0]]} numbers, not a multiple of 6 "
            "(class conf x_min y_min x_max y_max)"
        )
    try:
        values = _to_float(text if text is not None else "\n".join(t for row in tokens for t in row))
    except ValueError:
        tokens = tokens if tokens is not None else [s.split() for s in strings]
        values = np.empty(int(counts.sum()))
        k = 0
        for i, row in enumerate(tokens):
            for tok in row:
                try:
                    values[k] = float(tok)
                except ValueError:
                    raise SubmissionError(f"{name}:{line_of(i)}: {tok[:20]!r} is not a number") from None
                k += 1
    rows = np.repeat(np.arange(len(strings)), counts // 6)
    groups = values.reshape(-1, 6)
    cls_f = groups[:, 0]
    bad = ~np.isfinite(cls_f) | (cls_f != np.floor(cls_f))
    if bad.any():
        raise SubmissionError(f"{name}:{line_of(int(rows[np.flatnonzero(bad)[0]]))}: class id is not an integer")
    bad = ~np.isfinite(groups[:, 1:]).all(axis=1)
    if bad.any():
        raise SubmissionError(
            f"{name}:{line_of(int(rows[np.flatnonzero(bad)[0]]))}: confidence or coordinate is NaN or infinite"
        )
    return Predictions(
        rows,
        frame["image_id"].to_numpy(dtype=object),
        cls_f.astype(np.int64),
        np.ascontiguousarray(groups[:, 1]),
        np.ascontiguousarray(groups[:, 2:6]),
    )


def read_meta(source: str | Path | pd.DataFrame | BinaryIO) -> pd.DataFrame:
    """Read image sizes: ``image_id,width,height`` (or ``image_id,columns,rows``), indexed by ``image_id``.

    Raises
    ------
    EvaluationError
        Missing columns or a size that is not a positive number (naming the line).
    """
    frame, name = read_csv(source, what="image metadata")
    lower = {c.lower().strip(): c for c in frame.columns}
    width = lower.get("width") or lower.get("columns")
    height = lower.get("height") or lower.get("rows")
    if "image_id" not in lower or width is None or height is None:
        raise EvaluationError(f"{name}: need columns image_id,width,height (or image_id,columns,rows)")
    out = pd.DataFrame(
        {
            "width": numeric(frame[width]),
            "height": numeric(frame[height]),
        },
        index=frame[lower["image_id"]].astype(str).str.strip(),
    )
    bad = ~(out["width"] > 0) | ~(out["height"] > 0)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise EvaluationError(f"{name}:{line_of(row)}: width and height must be positive numbers")
    return out[~out.index.duplicated(keep="first")]
