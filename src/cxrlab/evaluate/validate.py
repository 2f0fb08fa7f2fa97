"""Validate a Kaggle-style submission: every problem, with its line number, before anything is scored.

Layout (docs, "File formats"): ``image_id,PredictionString``, one row per test image,
groups of ``class conf x_min y_min x_max y_max``; "No finding" is ``14 1 0 0 1 1``. Errors make a submission
unscorable or its score meaningless; warnings point at what the metric will silently ignore.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cxrlab.evaluate.classes import CHALLENGE, NO_FINDING_BOX, ClassList
from cxrlab.evaluate.detection import MAX_DETS
from cxrlab.evaluate.formats import SUBMISSION_COLUMNS, line_of, parse_prediction_strings, read_csv, read_meta

__all__ = ["TOLERANCE", "Problem", "Severity", "problems_summary", "unknown_class_text", "validate_submission"]

#: Pixels a box may pass the image border by before it is "outside the image".
TOLERANCE = 1.0


class Severity(StrEnum):
    """How bad a problem is: an error refuses the submission, a warning does not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Problem:
    """One problem of a submission.

    Attributes
    ----------
    severity : Severity
    code : str
        Stable short name (``bad_number``, ``unknown_class``, ``outside_image``, ...).
    message : str
        What is wrong and how to fix it.
    line : int or None
        Line in the file (header = 1); None for a problem of the whole file (missing images).
    image_id : str or None
    """

    severity: Severity
    code: str
    message: str
    line: int | None = None
    image_id: str | None = None

    def format(self, name: str) -> str:
        """``name:line: severity: message`` (the form compilers use)."""
        where = f"{name}:{self.line}" if self.line is not None else name
        return f"{where}: {self.severity.value}: {self.message}"


def _ids(values: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def validate_submission(
    source: str | Path | pd.DataFrame | BinaryIO,
    *,
    gt_image_ids: Collection[str] | None = None,
    meta: str | Path | pd.DataFrame | BinaryIO | None = None,
    classes: ClassList = CHALLENGE,
) -> list[Problem]:
    """List every problem of a submission, in line order (whole-file problems last).

    Parameters
    ----------
    source : path, DataFrame or binary file
        ``image_id,PredictionString`` (a binary file: an upload held in memory, named by its ``name``).
    gt_image_ids : collection of str, optional
        The test images: each needs exactly one row, and no other image may appear. Not checked when None.
    meta : path, DataFrame or binary file, optional
        Image sizes (``image_id,width,height``, or a frame of :func:`~cxrlab.evaluate.formats.read_meta`): boxes
        must lie inside ``[0, width] x [0, height]`` give or take :data:`TOLERANCE` px. Without it (and on an
        image it has no size for) only negative coordinates are reported.
    classes : ClassList
        Valid class ids are ``0 .. len(classes) - 1``.

    Returns
    -------
    list of Problem
        Empty when the submission is clean.

    Raises
    ------
    EvaluationError
        When the submission or the metadata file cannot be read at all.
    """
    frame, _ = read_csv(source, what="submission")
    problems: list[Problem] = []
    E, W = Severity.ERROR, Severity.WARNING
    missing_cols = [c for c in SUBMISSION_COLUMNS if c not in frame.columns]
    if missing_cols:
        return [
            Problem(
                E, "missing_column", f"missing column(s) {', '.join(missing_cols)}; need image_id,PredictionString", 1
            )
        ]
    extra_cols = [c for c in frame.columns if c not in SUBMISSION_COLUMNS]
    if extra_cols:
        problems.append(Problem(W, "extra_column", f"column(s) {', '.join(map(str, extra_cols))} ignored", 1))
    sizes = read_meta(meta) if meta is not None else None
    ids = frame["image_id"].astype(str).str.strip()
    image_ids = ids.tolist()
    strings = frame["PredictionString"].fillna("").astype(str).tolist()
    known = set(gt_image_ids) if gt_image_ids is not None else None

    # image ids: empty, repeated (pointing at the first row of that id), not a test image
    empty_id = (ids == "").to_numpy()
    named = ids[~empty_id]
    repeated = np.zeros(len(ids), bool)
    repeated[np.flatnonzero(~empty_id)[named.duplicated(keep="first").to_numpy()]] = True
    first_row = pd.Series(np.flatnonzero(~empty_id), index=named.to_numpy()).groupby(level=0, sort=False).first()
    unknown = ~empty_id & ~repeated
    if known is not None:
        unknown &= ~ids.isin(known).to_numpy()
    else:
        unknown[:] = False

    # the PredictionStrings: token counts and the numbers of every row that has whole groups
    parsed = parse_prediction_strings(strings)
    counts = parsed.counts
    no_prediction = counts == 0
    bad_count = ~no_prediction & (counts % 6 != 0)

    hint = f"; write '{classes.no_finding} 1 0 0 1 1' for No finding" if classes.no_finding is not None else ""
    for i in np.flatnonzero(empty_id | repeated | unknown | no_prediction | bad_count | parsed.bad_row):
        iid, line = image_ids[i], line_of(int(i))
        if empty_id[i]:
            problems.append(Problem(E, "empty_image_id", "image_id is empty", line))
        elif repeated[i]:
            first = line_of(int(first_row[iid]))
            message = f"image {iid!r} already has a row on line {first}"
            problems.append(Problem(E, "duplicate_image", message, line, iid))
        elif unknown[i]:
            problems.append(Problem(E, "unknown_image", f"image {iid!r} is not a test image", line, iid))
        if no_prediction[i]:
            problems.append(Problem(W, "empty_prediction", f"no prediction for this image{hint}", line, iid))
        elif bad_count[i]:
            problems.append(
                Problem(
                    E,
                    "bad_count",
                    f"{counts[i]} numbers is not a multiple of 6 (groups of class conf x_min y_min x_max y_max)",
                    line,
                    iid,
                )
            )
        elif parsed.bad_row[i]:
            k, token = parsed.bad_token[int(i)]
            problems.append(
                Problem(
                    E, "bad_number", f"number {k + 1} ({token[:20]!r}, group {k // 6 + 1}) is not a number", line, iid
                )
            )

    if len(parsed.rows):
        problems += _check_groups(parsed.groups, parsed.rows, image_ids, classes, len(classes), sizes)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    if known is not None:
        absent = sorted(known - set(named))
        if absent:
            problems.append(Problem(E, "missing_image", f"{len(absent)} test image(s) have no row: {_ids(absent)}"))
    return problems


def _check_groups(
    groups: np.ndarray,
    rows: np.ndarray,
    image_ids: list[str],
    classes: ClassList,
    n_classes: int,
    sizes: pd.DataFrame | None,
) -> list[Problem]:
    """Vectorised checks of every parsed group; one problem per row and kind, with counts."""
    E, W = Severity.ERROR, Severity.WARNING
    cls, conf, box = groups[:, 0], groups[:, 1], groups[:, 2:]
    group_no = np.arange(len(groups)) - np.searchsorted(rows, rows, side="left") + 1
    out: list[Problem] = []  # rule by rule; the caller's stable sort by line keeps the rules' order in a line

    def report(mask: np.ndarray, severity: Severity, code: str, what: str | Callable[[np.ndarray], str]) -> None:
        """One problem per row with a group in *mask*; *what* may depend on the row's groups (their indices)."""
        hits = np.flatnonzero(mask)
        if not len(hits):
            return
        hit_rows, first, n = np.unique(rows[hits], return_index=True, return_counts=True)
        for r, i, f, c in zip(hit_rows.tolist(), first.tolist(), group_no[hits[first]].tolist(), n.tolist(),
                              strict=True):
            text = what(hits[i : i + c]) if callable(what) else what  # rows ascend: a row's groups are adjacent
            message = f"{c} group{'s' if c > 1 else ''} {text} (first: group {f})"
            out.append(Problem(severity, code, message, line_of(r), image_ids[r]))
    not_int = ~np.isfinite(cls) | (cls != np.floor(cls))
    report(not_int, E, "bad_class", "with a class that is not an integer")
    report(~not_int & ((cls < 0) | (cls >= n_classes)), E, "unknown_class",
           lambda groups: unknown_class_text(cls[groups], classes))
    report(np.isnan(conf), E, "nan_confidence", "with a NaN confidence")
    report(np.isinf(conf), E, "infinite_confidence", "with an infinite confidence")
    report(conf < 0, E, "negative_confidence", "with a negative confidence")
    finite = np.isfinite(box).all(axis=1)
    report(~finite, E, "bad_box", "with a NaN or infinite coordinate")
    flipped = finite & ((box[:, 2] < box[:, 0]) | (box[:, 3] < box[:, 1]))
    report(flipped, E, "flipped_box", "with x_max < x_min or y_max < y_min")
    empty = finite & ~flipped & ((box[:, 2] == box[:, 0]) | (box[:, 3] == box[:, 1]))
    report(empty, W, "empty_box", "with zero width or height (can never match)")
    if classes.no_finding is not None:
        nf = cls == classes.no_finding
        report(
            nf & finite & ~(box == NO_FINDING_BOX).all(axis=1),
            W,
            "no_finding_box",
            f"of class {classes.no_finding} (No finding) with a box other than 0 0 1 1 (only 0 0 1 1 matches)",
        )
    # a box may pass the image border by TOLERANCE px (rounding of resized or padded model outputs)
    negative = finite & (box < -TOLERANCE).any(axis=1)
    if sizes is None:
        report(negative, E, "outside_image", "with a negative coordinate")
    else:
        per_row = sizes.reindex(image_ids)
        w = per_row["width"].to_numpy()[rows]
        h = per_row["height"].to_numpy()[rows]
        no_size = np.isnan(w)
        report(no_size, W, "no_size", "on an image without a size in the metadata")
        beyond = (np.maximum(box[:, 0], box[:, 2]) > w + TOLERANCE) | (np.maximum(box[:, 1], box[:, 3]) > h + TOLERANCE)
        report(
            negative | (finite & beyond),  # NaN sizes compare False: an image without a size is checked for < 0 only
            E,
            "outside_image",
            f"outside the image (0 <= x <= width, 0 <= y <= height, {TOLERANCE:g} px tolerance)",
        )
    # more than MAX_DETS groups of one class on one image: the COCO-style metrics score only the most confident
    key = rows * (n_classes + 1) + np.clip(np.where(not_int, n_classes, cls), 0, n_classes).astype(np.int64)
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    crowded = counts[inv] > MAX_DETS
    report(
        crowded,
        W,
        "too_many",
        f"beyond {MAX_DETS} of one class (kaggle and coco score the {MAX_DETS} most confident of each class per image)",
    )
    return out


def unknown_class_text(ids: np.ndarray, classes: ClassList) -> str:
    """``with class_id 22 not in the vindr-cxr-challenge class list (0-14, 14 = No finding)``: the ids a row
    uses that the benchmark's numbering does not have, and that numbering (a schema's own ids and the
    challenge's differ, see :mod:`cxrlab.evaluate.classes`)."""
    distinct = [f"{v:g}" for v in sorted(set(ids.tolist()))]
    shown = ", ".join(distinct[:5]) + (f" and {len(distinct) - 5} more" if len(distinct) > 5 else "")
    return f"with class_id {shown} not in the {classes.name} class list ({classes.ids_text})"


def problems_summary(problems: list[Problem]) -> dict[str, int]:
    """Counts of errors and warnings."""
    return {
        "errors": sum(p.severity is Severity.ERROR for p in problems),
        "warnings": sum(p.severity is Severity.WARNING for p in problems),
    }
