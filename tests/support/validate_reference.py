"""The row-by-row submission validator (cxrlab before the vectorised ``validate_submission``), kept as the
reference the vectorised one must agree with problem for problem (tests/unit/evaluate/test_validate.py).

Unchanged but for the image-border rule given later to both: a :data:`TOLERANCE` px margin, and negative
coordinates checked on images without a size too.
"""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path
from typing import BinaryIO

import numpy as np
import pandas as pd

from cxrlab.evaluate.classes import CHALLENGE, NO_FINDING_BOX, ClassList
from cxrlab.evaluate.detection import MAX_DETS
from cxrlab.evaluate.formats import SUBMISSION_COLUMNS, line_of, read_csv, read_meta
from cxrlab.evaluate.validate import TOLERANCE, Problem, Severity, unknown_class_text

__all__ = ["reference_validate"]


def _ids(values: list[str], limit: int = 3) -> str:
    shown = ", ".join(repr(v) for v in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def reference_validate(
    source: str | Path | pd.DataFrame | BinaryIO,
    *,
    gt_image_ids: Collection[str] | None = None,
    meta: str | Path | pd.DataFrame | None = None,
    classes: ClassList = CHALLENGE,
) -> list[Problem]:
    """List every problem of a submission, in line order (whole-file problems last).

    Parameters
    ----------
    source : path, DataFrame or binary file
        ``image_id,PredictionString`` (a binary file: an upload held in memory, named by its ``name``).
    gt_image_ids : collection of str, optional
        The test images: each needs exactly one row, and no other image may appear. Not checked when None.
    meta : path or DataFrame, optional
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
    image_ids = frame["image_id"].astype(str).str.strip().tolist()
    strings = frame["PredictionString"].fillna("").astype(str).tolist()
    known = set(gt_image_ids) if gt_image_ids is not None else None
    first_line: dict[str, int] = {}
    n_classes = len(classes)

    row_values: list[np.ndarray] = []
    row_index: list[int] = []
    for i, (iid, text) in enumerate(zip(image_ids, strings, strict=True)):
        line = line_of(i)
        if not iid:
            problems.append(Problem(E, "empty_image_id", "image_id is empty", line))
        elif iid in first_line:
            problems.append(
                Problem(E, "duplicate_image", f"image {iid!r} already has a row on line {first_line[iid]}", line, iid)
            )
        else:
            first_line[iid] = line
            if known is not None and iid not in known:
                problems.append(Problem(E, "unknown_image", f"image {iid!r} is not a test image", line, iid))
        tokens = text.split()
        if not tokens:
            hint = f"; write '{classes.no_finding} 1 0 0 1 1' for No finding" if classes.no_finding is not None else ""
            problems.append(Problem(W, "empty_prediction", f"no prediction for this image{hint}", line, iid))
            continue
        if len(tokens) % 6:
            problems.append(
                Problem(
                    E,
                    "bad_count",
                    f"{len(tokens)} numbers is not a multiple of 6 (groups of class conf x_min y_min x_max y_max)",
                    line,
                    iid,
                )
            )
            continue
        try:
            values = np.array([float(t) for t in tokens])
        except ValueError:
            bad = next(k for k, t in enumerate(tokens) if not _is_float(t))
            problems.append(
                Problem(
                    E,
                    "bad_number",
                    f"number {bad + 1} ({tokens[bad][:20]!r}, group {bad // 6 + 1}) is not a number",
                    line,
                    iid,
                )
            )
            continue
        row_values.append(values.reshape(-1, 6))
        row_index.append(i)

    if row_values:
        groups = np.vstack(row_values)
        rows = np.repeat(np.array(row_index), [len(v) for v in row_values])
        problems += _check_groups(groups, rows, image_ids, classes, n_classes, sizes)
    problems.sort(key=lambda p: (p.line is None, p.line or 0))
    if known is not None:
        absent = sorted(known - set(first_line))
        if absent:
            problems.append(Problem(E, "missing_image", f"{len(absent)} test image(s) have no row: {_ids(absent)}"))
    return problems


def _is_float(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


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
    out: list[Problem] = []

    def report(mask: np.ndarray, severity: Severity, code: str, what: str) -> None:
        for r in np.unique(rows[mask]):
            hit = mask & (rows == r)
            n = int(hit.sum())
            first = int(group_no[np.flatnonzero(hit)[0]])
            out.append(
                Problem(
                    severity,
                    code,
                    f"{n} group{'s' if n > 1 else ''} {what} (first: group {first})",
                    line_of(int(r)),
                    image_ids[int(r)],
                )
            )

    not_int = ~np.isfinite(cls) | (cls != np.floor(cls))
    report(not_int, E, "bad_class", "with a class that is not an integer")
    unknown = ~not_int & ((cls < 0) | (cls >= n_classes))
    for r in np.unique(rows[unknown]):  # the message names the row's class ids (unknown_class_text)
        report(unknown & (rows == r), E, "unknown_class", unknown_class_text(cls[unknown & (rows == r)], classes))
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
        per_row = sizes.reindex([image_ids[r] for r in range(len(image_ids))])
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
    key = rows * (n_classes + 1) + np.where(not_int, n_classes, np.clip(cls, 0, n_classes).astype(np.int64))
    _, inv, counts = np.unique(key, return_inverse=True, return_counts=True)
    crowded = counts[inv] > MAX_DETS
    report(
        crowded,
        W,
        "too_many",
        f"beyond {MAX_DETS} of one class (kaggle and coco score the {MAX_DETS} most confident of each class per image)",
    )
    return out
