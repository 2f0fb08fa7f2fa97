"""Record readers' labels: the QC rules of the seeds and a scripted reader simulation for demos.

QC rules (VinDr-CXR data descriptor, "Technical Validation": rules "prevent annotators from mechanical
mistakes like forgetting to choose global labels or marking lesions on the image while choosing 'No finding'
as the global label"): at least one global label; "No finding" excludes every box and every other label;
class names must belong to the schema; boxes lie inside the image and are at least a few pixels wide.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session, make_transient_to_detached

from cxrlab.annotate.writes import insert_events
from cxrlab.catalog.models import Image, ImageState, Reading, ReadingBox, ReadingLabel
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.runtime.report import StageReport
from cxrlab.schemas import LabelSchema, get_schema

__all__ = [
    "BoxInput",
    "QCError",
    "ReadingInput",
    "check_reading",
    "load_readings",
    "record_reading",
    "simulate_readers",
    "simulated_reads",
]

MIN_BOX_PX = 4


class QCError(CxrlabError):
    """A reading breaks a QC rule; the message says which, ``rule`` names it for clients (HTTP 422).

    Rules: ``unknown_label``, ``global_label_required``, ``no_finding_exclusive``, ``unknown_box_class``,
    ``box_too_small``, ``box_outside``, ``not_open`` (image unknown or not open for labeling), ``unknown_suggestion``
    (a box claims a model suggestion the image does not have; :func:`cxrlab.annotate.marks.keep_provenance`).
    """

    def __init__(self, message: str | None = None, *, rule: str = "qc") -> None:
        super().__init__(message)
        self.rule = rule


@dataclass
class BoxInput:
    """One box of a local label, in pixels of the original image."""

    class_name: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float


@dataclass
class ReadingInput:
    """One reader's read of one image."""

    image_id: str
    rad_id: str
    labels: list[str] = field(default_factory=list)
    boxes: list[BoxInput] = field(default_factory=list)
    comment: str | None = None


def check_reading(
    reading: ReadingInput,
    schema: LabelSchema,
    *,
    rows: int | None,
    columns: int | None,
    partial: bool = False,
) -> None:
    """Apply the QC rules; raise :class:`QCError` with a message for the reader and the rule's name.

    This is the one QC implementation: the CLI, the web app's submit and review endpoints all call it.
    With ``partial=True`` (draft autosave) only the rules that hold for unfinished work apply: known label
    and class names, boxes inside the image and at least :data:`MIN_BOX_PX` wide.
    """
    names = set(schema.names)
    local = {lb.name for lb in schema.local}
    glob = {lb.name for lb in schema.global_}
    for name in reading.labels:
        if name not in names:
            raise QCError(f"label {name!r} is not in schema {schema.name}", rule="unknown_label")
    for box in reading.boxes:
        if box.class_name not in local:
            raise QCError(
                f"box class {box.class_name!r} is not a local label of schema {schema.name}", rule="unknown_box_class"
            )
        values = (box.x_min, box.y_min, box.x_max, box.y_max)
        if not all(math.isfinite(v) for v in values):
            raise QCError(f"box of {box.class_name!r} has a coordinate that is not a number", rule="box_outside")
        if box.x_max - box.x_min < MIN_BOX_PX or box.y_max - box.y_min < MIN_BOX_PX:
            raise QCError(
                f"box of {box.class_name!r} is smaller than {MIN_BOX_PX} pixels (draw it larger)", rule="box_too_small"
            )
        if box.x_min < 0 or box.y_min < 0 or (columns and box.x_max > columns) or (rows and box.y_max > rows):
            raise QCError(f"box of {box.class_name!r} lies outside the image", rule="box_outside")
    if partial:
        return
    if not any(name in glob for name in reading.labels):
        raise QCError(
            "choose at least one global label before submitting (or set the image aside as unusable)",
            rule="global_label_required",
        )
    if schema.no_finding in reading.labels and (len(set(reading.labels)) > 1 or reading.boxes):
        raise QCError(
            f"{schema.no_finding!r} excludes every box and every other label", rule="no_finding_exclusive"
        )


#: Replacing a read: its labels and boxes go with it (``ON DELETE CASCADE``).
_DELETE_READING = delete(Reading).where(Reading.image_pk == bindparam("image_pk"),
                                        Reading.rad_id == bindparam("rad_id"))
_INSERT_READING, _INSERT_LABELS, _INSERT_BOXES = insert(Reading.__table__), insert(ReadingLabel), insert(ReadingBox)


def record_reading(
    session: Session,
    schema: LabelSchema,
    reading: ReadingInput,
    *,
    author: str = "script",
    mark_labeled: bool = True,
    image: Image | None = None,
    events: Sequence[dict[str, Any]] = (),
) -> Reading:
    """Validate and store *reading* (replacing an earlier one by the same reader); return the row.

    ``mark_labeled`` moves the image to ``labeled`` at once (scripted readings); the web app passes False and
    moves it when its last reader has submitted. *image* saves a query when the caller holds the image row.
    *events* are more ``events`` rows (column dicts) to add after the reading's own, in the same ``INSERT``.

    The rows go in as a few plain ``INSERT`` statements (one per table), not through the ORM's unit of work: the
    web app's submit runs this while it holds the catalog's write lock.

    Raises
    ------
    QCError
        A QC rule is broken, or the image is unknown or not open for labeling.
    """
    img = image if image is not None else session.scalar(select(Image).where(Image.image_id == reading.image_id))
    if img is None:
        raise QCError(f"unknown image_id {reading.image_id}", rule="not_open")
    if img.state not in (ImageState.ACCEPTED, ImageState.ASSIGNED, ImageState.LABELED):
        raise QCError(f"image {reading.image_id} is {img.state.value}, not open for labeling", rule="not_open")
    check_reading(reading, schema, rows=img.rows, columns=img.columns)
    session.execute(_DELETE_READING, {"image_pk": img.id, "rad_id": reading.rad_id})
    values = {"image_pk": img.id, "rad_id": reading.rad_id, "schema": schema.name, "comment": reading.comment,
              "submitted_at": datetime.now(UTC)}
    reading_id = session.execute(_INSERT_READING, values).inserted_primary_key[0]
    labels = [{"reading_id": reading_id, "label": name} for name in dict.fromkeys(reading.labels)]
    if labels:
        session.execute(_INSERT_LABELS, labels)
    if reading.boxes:
        session.execute(_INSERT_BOXES, [{"reading_id": reading_id, **vars(b)} for b in reading.boxes])
    if mark_labeled:
        img.state = ImageState.LABELED
    insert_events(session, [{"image_pk": img.id, "stage": "annotate", "action": "reading", "author": author,
                             "detail": {"rad_id": reading.rad_id}}, *events])
    stale = session.identity_map.get(session.identity_key(Reading, reading_id))
    if stale is not None:  # the replaced read, whose id SQLite may give to the new one
        session.expunge(stale)
    row = Reading(id=reading_id, **values)  # the stored row; its labels and boxes load when first read
    make_transient_to_detached(row)
    session.add(row)
    return row


def load_readings(path: Path) -> list[ReadingInput]:
    """Read readings from a JSON file: a list of ``{image_id, rad_id, labels, boxes: [{class_name, x_min, ...}]}``.

    Raises
    ------
    CxrlabError
        The file is not valid JSON or an entry lacks a field (the message gives the entry number).
    """
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CxrlabError(f"{path}: cannot read readings ({exc})") from None
    out = []
    for i, entry in enumerate(data):
        try:
            out.append(
                ReadingInput(
                    image_id=entry["image_id"],
                    rad_id=str(entry["rad_id"]),
                    labels=list(entry.get("labels", [])),
                    boxes=[BoxInput(**b) for b in entry.get("boxes", [])],
                    comment=entry.get("comment"),
                )
            )
        except (KeyError, TypeError) as exc:
            raise CxrlabError(f"{path}: entry {i}: missing or invalid field ({exc})") from None
    return out


def _simulated_truth(
    rng: np.random.Generator, schema: LabelSchema, rows: int, cols: int
) -> tuple[list, list]:
    """A plausible latent read: 'No finding' with p=0.6, else 1-3 boxed findings and a global impression."""
    if rng.random() < 0.6:
        return [schema.no_finding], []
    local = [lb.name for lb in schema.local]
    glob = [lb.name for lb in schema.global_ if lb.name != schema.no_finding]
    weights = np.linspace(2.0, 0.2, len(local))
    picks = rng.choice(len(local), size=int(rng.integers(1, 4)), replace=False, p=weights / weights.sum())
    boxes = []
    for k in picks:
        w, h = rng.uniform(0.08, 0.3) * cols, rng.uniform(0.08, 0.3) * rows
        x0, y0 = rng.uniform(0.1 * cols, 0.9 * cols - w), rng.uniform(0.15 * rows, 0.85 * rows - h)
        boxes.append((local[k], x0, y0, x0 + w, y0 + h))
    return [glob[int(rng.integers(len(glob)))]], boxes


def simulated_reads(
    rng: np.random.Generator, schema: LabelSchema, *, readers: int, rows: int, cols: int
) -> list[tuple[list[str], list[BoxInput]]]:
    """Seeded reads of one image by *readers* simulated readers: ``[(labels, boxes), ...]``.

    The image gets a latent read; each reader sees each finding with p=0.85, jitters boxes by a few percent,
    and adds a false finding with p=0.05. Every read passes :func:`check_reading`.
    """
    truth_labels, truth_boxes = _simulated_truth(rng, schema, rows, cols)
    reads = []
    for _ in range(readers):
        boxes = [
            BoxInput(name, *_jitter(rng, (x0, y0, x1, y1), cols, rows))
            for name, x0, y0, x1, y1 in truth_boxes
            if rng.random() < 0.85
        ]
        labels = [lb for lb in truth_labels if lb != schema.no_finding] if boxes else []
        if rng.random() < 0.05 and schema.local:
            extra, ebox = _simulated_truth(np.random.default_rng(rng.integers(1 << 31)), schema, rows, cols)
            boxes += [BoxInput(n, *b) for n, *b in ebox[:1]]
            labels = labels or [lb for lb in extra if lb != schema.no_finding]
        if not boxes and not labels:
            labels = [schema.no_finding]
        elif not labels:
            labels = [next(lb.name for lb in schema.global_ if lb.name != schema.no_finding)]
        labels += sorted({b.class_name for b in boxes})
        reads.append((labels, boxes))
    return reads


def simulate_readers(ws: Workspace, *, readers: int = 3, seed: int = 0) -> StageReport:
    """Simulate *readers* blinded readers (``R1``, ``R2``, ...) on every accepted image that is not assigned in
    the labeling tool (for demos and tests; see :func:`simulated_reads`). Readings pass the same QC rules as
    the web app's."""
    t0 = time.perf_counter()
    report = StageReport("annotate")
    schema = get_schema(ws.settings.schema)
    rng = np.random.default_rng(seed)
    with ws.sessions() as session:
        images = session.scalars(
            select(Image)
            .where(Image.state == ImageState.ACCEPTED)  # assigned images belong to the web app's readers
            .order_by(Image.id)
        ).all()
        for img in images:
            reads = simulated_reads(rng, schema, readers=readers, rows=img.rows or 1024, cols=img.columns or 1024)
            for r, (labels, boxes) in enumerate(reads):
                record_reading(session, schema, ReadingInput(img.image_id, f"R{r + 1}", labels, boxes))
                report.counts["readings"] += 1
            report.counts["images"] += 1
        session.commit()
        report.notes.append(f"{session.scalar(select(func.count(Reading.id)))} readings in the catalog")
    report.seconds = time.perf_counter() - t0
    return report


def _jitter(rng: np.random.Generator, box: tuple, cols: int, rows: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = box
    dx, dy = 0.03 * (x1 - x0), 0.03 * (y1 - y0)
    x0, x1 = x0 + rng.normal(0, dx), x1 + rng.normal(0, dx)
    y0, y1 = y0 + rng.normal(0, dy), y1 + rng.normal(0, dy)
    return (round(max(0.0, x0), 1), round(max(0.0, y0), 1), round(min(cols, x1), 1), round(min(rows, y1), 1))
