"""Read the files a benchmark is scored from: ground-truth boxes, Kaggle-style submissions and image sizes.

Layouts (docs, "File formats"):

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
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cxrlab.evaluate.classes import CHALLENGE, NO_FINDING_BOX, ClassList
from cxrlab.evaluate.exceptions import EvaluationError, SubmissionError
from cxrlab.runtime.unpack import CorruptStreamError, open_table
from cxrlab.schemas.release import MAX_IMAGE_SIDE, bad_image_sizes, box_problems

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
    attribute, or ``<what>`` without one, never a server path. A file that starts with the gzip magic bytes is
    unpacked while it is read (:func:`cxrlab.runtime.unpack.open_table`).

    Raises
    ------
    EvaluationError
        Missing file, or not a readable CSV (a corrupt gzip stream included).
    UnpackedTooLargeError
        A gzip file unpacks to more than :func:`~cxrlab.runtime.unpack.max_unpacked` bytes.
    """
    if isinstance(source, pd.DataFrame):
        return source.reset_index(drop=True), f"<{what}>"
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        name = name if isinstance(name, str) else f"<{what}>"
        opened = nullcontext(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise EvaluationError(f"{path}: {what} file not found")
        opened, name = open_table(path), str(path)
    try:
        with opened as fh:
            frame = pd.read_csv(fh, dtype=str, keep_default_na=False, skipinitialspace=True, compression=None)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise EvaluationError(f"{name}: not a readable CSV ({type(exc).__name__}: {exc})") from None
    except CorruptStreamError as exc:
        raise EvaluationError(f"{name}: {exc.reason}") from None
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


def read_annotations(
    source: str | Path | pd.DataFrame | BinaryIO,
    *,
    classes: ClassList = CHALLENGE,
    meta: str | Path | pd.DataFrame | BinaryIO | None = None,
) -> GroundTruth:
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
    meta : path, DataFrame or binary file, optional
        Image sizes (:func:`read_meta`): a box must lie inside its image (give or take 1 px). Without them, or
        for an image they do not list, inside ``[0, 65535]`` (the largest image DICOM describes).

    Returns
    -------
    GroundTruth
        "No finding" rows become the box ``0 0 1 1``; rows of classes outside *classes* are dropped and counted.

    Raises
    ------
    EvaluationError
        Missing columns, or a box row with a missing or non-numeric coordinate, ``x_max < x_min`` or a box
        outside its image (naming the file and line).
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
    width = height = None
    if meta is not None:
        sizes = read_meta(meta)
        width = pd.Series(image_id).map(sizes["width"]).to_numpy(dtype=np.float64)
        height = pd.Series(image_id).map(sizes["height"]).to_numpy(dtype=np.float64)
    outside = [(box_rows & mask, reason) for mask, reason in box_problems(coords, width, height)]
    outside = [(mask, reason) for mask, reason in outside if mask.any()]
    if outside:
        row = min(int(np.flatnonzero(mask)[0]) for mask, _ in outside)
        reason = next(r for mask, r in outside if mask[row])
        total = int(np.logical_or.reduce([mask for mask, _ in outside]).sum())
        raise EvaluationError(f"{name}:{line_of(row)}: {reason} ({total} such row(s))")
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


def _to_float(text: bytes) -> np.ndarray:
    """Parse newline-separated ASCII number tokens (only characters of ``_NUMBER_CHARS``, so no comma ever
    splits a line into fields). pandas' C tokenizer is about three times faster than ``float()`` per token and
    rounds identically; a malformed token ("1e", "--1") raises ValueError."""
    if not text:
        return np.empty(0)
    try:
        col = pd.read_csv(io.BytesIO(text), header=None, names=["v"], dtype=np.float64, na_filter=False, quoting=3)
    except (ValueError, pd.errors.ParserError) as exc:
        raise ValueError(str(exc)) from None
    return col["v"].to_numpy()


#: ASCII white space as ``str.split()`` sees it (the information separators 0x1c-0x1f included), mapped to " ".
_SPACES = bytes.maketrans(b"\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f", b" " * 9)
#: The characters of a plain decimal number. Over this alphabet pandas' C parser accepts exactly the tokens
#: ``float()`` accepts and gives the same doubles (tests/unit/evaluate/test_validate.py checks both on generated
#: tokens); a row with any other character ("nan", "inf", "1_0", a comma, non-ASCII digits) is read with
#: ``float()`` token by token.
_NUMBER_CHARS = b"0123456789.eE+- "
#: Rows parsed per ``read_csv`` call when a block that failed is split to find its bad rows.
_SMALL_BLOCK = 8


@dataclass
class ParsedStrings:
    """Every row's token count; the groups of the rows that parsed (``rows``: their row, in order); the rows
    with a token that is not a number, with (index, token) of their first one."""

    counts: np.ndarray
    groups: np.ndarray
    rows: np.ndarray
    bad_row: np.ndarray
    bad_token: dict[int, tuple[int, str]]


def parse_prediction_strings(strings: list[str]) -> ParsedStrings:
    """Count the tokens of every row and read the numbers of the rows with whole groups of six.

    The one reader of PredictionStrings: :func:`parse_predictions` (the scorer) and
    :func:`cxrlab.evaluate.validate_submission` both use it. Rows of plain ASCII numbers (nearly every row of a
    real submission) are joined and read by one :func:`_to_float` call; Python works per row, never per token,
    except on rows that hold other characters or a malformed number, which are read with ``float()`` as
    ``str.split()`` tokens (the reference behaviour) to name the first bad token.
    """
    n = len(strings)
    counts = np.zeros(n, np.int64)
    plain: list[bytes | None] = [None] * n  # single-spaced plain-number text, or None: read token by token
    for i, s in enumerate(strings):
        if not s.isascii():
            counts[i] = len(s.split())
            continue
        b = s.encode("ascii").translate(_SPACES)
        if b.translate(None, _NUMBER_CHARS):
            counts[i] = len(s.split())
            continue
        if b"  " in b or b[:1] == b" " or b[-1:] == b" ":
            b = b" ".join(b.split())
        plain[i] = b
        counts[i] = b.count(b" ") + 1 if b else 0
    whole = (counts > 0) & (counts % 6 == 0)
    values: dict[int, np.ndarray] = {}
    bad_token: dict[int, tuple[int, str]] = {}

    def by_token(i: int) -> None:
        tokens = strings[i].split()
        try:
            values[i] = np.array([float(t) for t in tokens])
        except ValueError:
            k = next(k for k, t in enumerate(tokens) if not _is_float(t))
            bad_token[i] = (k, tokens[k])

    def block(rows: np.ndarray) -> None:
        try:
            parsed = _to_float(b"\n".join(plain[i] for i in rows).replace(b" ", b"\n"))
        except ValueError:
            if len(rows) <= _SMALL_BLOCK:
                for i in rows:
                    by_token(int(i))
            else:
                half = len(rows) // 2
                block(rows[:half])
                block(rows[half:])
            return
        ends = np.cumsum(counts[rows])
        for i, chunk in zip(rows.tolist(), np.split(parsed, ends[:-1]), strict=True):
            values[i] = chunk

    candidates = np.flatnonzero(whole)
    fast = np.array([i for i in candidates if plain[i] is not None], dtype=np.int64)
    if len(fast):
        try:
            all_values = _to_float(b"\n".join(plain[i] for i in fast).replace(b" ", b"\n"))
        except ValueError:
            block(fast)
            all_values = None
    else:
        all_values = None
    for i in candidates:
        if plain[i] is None:
            by_token(int(i))
    bad_row = np.zeros(n, bool)
    bad_row[list(bad_token)] = True
    ok = whole & ~bad_row
    rows = np.repeat(np.flatnonzero(ok), counts[ok] // 6)
    if all_values is not None and len(values) == 0:  # the usual case: every row of numbers read at once
        groups = all_values.reshape(-1, 6)
    elif all_values is not None:  # plus some rows read token by token: put them in row order
        for i, chunk in zip(fast.tolist(), np.split(all_values, np.cumsum(counts[fast])[:-1]), strict=True):
            values[i] = chunk
        groups = np.concatenate([values[i] for i in np.flatnonzero(ok)]).reshape(-1, 6)
    else:
        parts = [values[i] for i in np.flatnonzero(ok)]
        groups = np.concatenate(parts).reshape(-1, 6) if parts else np.empty((0, 6))
    return ParsedStrings(counts, groups, rows, bad_row, bad_token)


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


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
    parsed = parse_prediction_strings(frame["PredictionString"].tolist())
    odd = np.flatnonzero(parsed.counts % 6)
    if len(odd):
        raise SubmissionError(
            f"{name}:{line_of(int(odd[0]))}: PredictionString has {parsed.counts[odd[0]]} numbers, not a multiple "
            "of 6 (class conf x_min y_min x_max y_max)"
        )
    if parsed.bad_token:
        i = min(parsed.bad_token)
        raise SubmissionError(f"{name}:{line_of(i)}: {parsed.bad_token[i][1][:20]!r} is not a number")
    rows, groups = parsed.rows, parsed.groups
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
        Missing columns, or a size that is not a whole number from 1 to 65,535 (DICOM's US (0028,0010) *Rows*
        and (0028,0011) *Columns*, PS3.3 C.7.6.3.1), naming the line.
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
    bad = np.isnan(out.to_numpy()).any(axis=1) | bad_image_sizes(out.to_numpy()).any(axis=1)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise EvaluationError(
            f"{name}:{line_of(row)}: width and height must be positive whole numbers up to {MAX_IMAGE_SIDE:,} "
            f"(DICOM Columns and Rows; {bad.sum()} such row(s))"
        )
    return out[~out.index.duplicated(keep="first")]
