"""The repository of release tables: readers' labels and boxes, consensus rows and the release fields of images.

What readers marked (``readings``, ``reading_labels``, ``reading_boxes``), what the consensus decided
(``consensus_labels``, ``consensus_boxes``) and where each image goes (``images.split``, ``images.state``) are
read into :class:`~cxrlab.schemas.ReleaseTables` and written back from DataFrames here, and nowhere else: the
import of a public release, the consensus, the split and the export call these functions and keep their own
logic pure (DataFrames in, DataFrames out).

Every function takes an open session and never commits: run it inside ``transaction(...)``
(:func:`cxrlab.catalog.db.transaction`). Rows written by human review (``method == "review"``, VinDr-CXR data
descriptor: the test set's labels are the reviewers' decisions) are never replaced by automatic ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd
from sqlalchemy import ColumnElement, delete, insert, select, update
from sqlalchemy.orm import Session

from cxrlab.catalog.models import (
    REVIEW_METHOD,
    ConsensusBox,
    ConsensusLabel,
    Event,
    Image,
    ImageState,
    Reading,
    ReadingBox,
    ReadingLabel,
)
from cxrlab.schemas import BOX_COLUMNS, LabelSchema, ReleaseTables

__all__ = [
    "CONSENSUS_STATES",
    "RELEASE_STATES",
    "add_events",
    "add_images",
    "image_pks",
    "load_release",
    "release_images",
    "replace_consensus",
    "set_release_fields",
    "store_consensus",
    "store_readings",
]

#: Image states whose readings the consensus aggregates and the split assigns.
CONSENSUS_STATES = (ImageState.LABELED, ImageState.REVIEWED)
#: Image states that belong to a release (:func:`load_release` default).
RELEASE_STATES = (ImageState.LABELED, ImageState.REVIEWED, ImageState.RELEASED)
#: Bound parameters per ``IN (...)`` list: well below SQLite's limit of 32,766 host parameters.
CHUNK = 500

_T = TypeVar("_T")


def _chunks(items: Sequence[_T]) -> Iterator[Sequence[_T]]:
    for i in range(0, len(items), CHUNK):
        yield items[i:i + CHUNK]


def image_pks(session: Session, image_ids: Iterable[str]) -> dict[str, int]:
    """``image_id -> images.id`` of the given images that are in the catalog."""
    ids = list(dict.fromkeys(str(i) for i in image_ids))
    return {
        iid: pk
        for chunk in _chunks(ids)
        for pk, iid in session.execute(select(Image.id, Image.image_id).where(Image.image_id.in_(chunk)))
    }


def release_images(
    session: Session,
    *,
    states: Sequence[ImageState] = RELEASE_STATES,
    root: Path | None = None,
    where: ColumnElement[bool] | None = None,
) -> tuple[dict[int, str], pd.DataFrame]:
    """The images of a release: those in *states* with an ``image_id`` (and matching *where*), in catalog order.

    Returns
    -------
    pk_to_id : dict
        ``images.id -> image_id``.
    images : DataFrame
        ``image_id, split, path`` (the de-identified file below *root*, None without it), ``rows, columns, sex,
        age_years, study_year, file_size, patient_id`` (the keyed patient hash), ``view_position, spacing_x,
        spacing_y``.
    """
    rows = session.execute(
        select(Image.id, Image.image_id, Image.split, Image.deid_path, Image.rows, Image.columns, Image.sex,
               Image.age_years, Image.study_year, Image.deid_file_size, Image.file_size, Image.patient_key,
               Image.view_position, Image.pixel_spacing_col, Image.pixel_spacing_row)
        .where(Image.state.in_(states), Image.image_id.is_not(None), *(() if where is None else (where,)))
        .order_by(Image.id)
    ).all()
    images = pd.DataFrame(
        [(r[1], r[2], str(root / r[3]) if root is not None and r[3] else None, r[4], r[5], r[6], r[7], r[8],
          r[9] or r[10], r[11], r[12], r[13], r[14]) for r in rows],
        columns=["image_id", "split", "path", "rows", "columns", "sex", "age_years", "study_year", "file_size",
                 "patient_id", "view_position", "spacing_x", "spacing_y"],
    )
    return {r[0]: r[1] for r in rows}, images


def load_release(
    session: Session,
    schema: LabelSchema,
    *,
    states: Sequence[ImageState] = RELEASE_STATES,
    root: Path | None = None,
) -> ReleaseTables:
    """Read the images in *states* with their readings and consensus into :class:`ReleaseTables`.

    Parameters
    ----------
    schema : LabelSchema
        The workspace's label schema (column order of the label tables).
    states : sequence of ImageState
        Which images (only images with an ``image_id``, i.e. de-identified or imported, are part of a release).
    root : Path, optional
        The workspace folder: ``images.path`` is the de-identified file below it (None without *root*).

    Returns
    -------
    ReleaseTables
        ``images`` in catalog order with the stored ``split`` (empty when unsplit); ``reader_labels`` one row
        per reading, sorted by ``image_id, rad_id``, where a local label counts as marked when the reader drew a
        box of that class; ``reader_boxes`` in the order drawn; ``consensus_labels`` (0/1 per label) and
        ``consensus_boxes`` with their ``score``, ``votes`` and ``method`` (``review`` for a reviewer's box).
    """
    names = schema.names
    pk_to_id, images = release_images(session, states=states, root=root)
    in_release = select(Image.id).where(Image.state.in_(states), Image.image_id.is_not(None))
    reads = pd.DataFrame(
        session.execute(
            select(Reading.id, Reading.image_pk, Reading.rad_id).where(Reading.image_pk.in_(in_release))
        ).all(),
        columns=["reading", "pk", "rad_id"],
    )
    marks = pd.DataFrame(
        session.execute(
            select(ReadingLabel.reading_id, ReadingLabel.label)
            .join(Reading, Reading.id == ReadingLabel.reading_id)
            .where(Reading.image_pk.in_(in_release))
        ).all(),
        columns=["reading", "label"],
    )
    boxes = pd.DataFrame(
        session.execute(
            select(ReadingBox.reading_id, ReadingBox.class_name, ReadingBox.x_min, ReadingBox.y_min,
                   ReadingBox.x_max, ReadingBox.y_max)
            .join(Reading, Reading.id == ReadingBox.reading_id)
            .where(Reading.image_pk.in_(in_release))
            .order_by(ReadingBox.id)
        ).all(),
        columns=["reading", "class_name", *BOX_COLUMNS],
    )
    cons = pd.DataFrame(
        session.execute(
            select(ConsensusLabel.image_pk, ConsensusLabel.label, ConsensusLabel.positive)
            .where(ConsensusLabel.image_pk.in_(in_release))
        ).all(),
        columns=["pk", "label", "positive"],
    )
    cboxes = pd.DataFrame(
        session.execute(
            select(ConsensusBox.image_pk, ConsensusBox.class_name, ConsensusBox.x_min, ConsensusBox.y_min,
                   ConsensusBox.x_max, ConsensusBox.y_max, ConsensusBox.score, ConsensusBox.votes,
                   ConsensusBox.method)
            .where(ConsensusBox.image_pk.in_(in_release))
            .order_by(ConsensusBox.id)
        ).all(),
        columns=["pk", "class_name", *BOX_COLUMNS, "score", "votes", "method"],
    )
    reads["image_id"] = reads["pk"].map(pk_to_id)
    reads = reads.sort_values(["image_id", "rad_id"]).reset_index(drop=True)
    marked = pd.concat([marks, boxes[["reading", "class_name"]].rename(columns={"class_name": "label"})])
    wide = pd.crosstab(marked["reading"], marked["label"]).clip(upper=1) if len(marked) else pd.DataFrame()
    wide = wide.reindex(index=reads["reading"], columns=names, fill_value=0).fillna(0).astype(int)
    reader_labels = pd.concat([reads[["image_id", "rad_id"]], wide.reset_index(drop=True)], axis=1)
    reader_boxes = boxes.merge(reads[["reading", "image_id", "rad_id"]], on="reading")
    reader_boxes = reader_boxes[["image_id", "rad_id", "class_name", *BOX_COLUMNS]].sort_values(
        ["image_id", "rad_id"], kind="stable").reset_index(drop=True)
    consensus_labels = None
    if len(cons):
        consensus_labels = cons.pivot_table(index="pk", columns="label", values="positive", aggfunc="max")
        consensus_labels = consensus_labels.reindex(columns=names).fillna(0).astype(int)
        consensus_labels.insert(0, "image_id", [pk_to_id[pk] for pk in consensus_labels.index])
        consensus_labels = consensus_labels.reset_index(drop=True)
        consensus_labels.columns.name = None
    cboxes.insert(0, "image_id", cboxes.pop("pk").map(pk_to_id))
    return ReleaseTables(
        schema=schema,
        images=images,
        reader_boxes=reader_boxes,
        reader_labels=reader_labels,
        consensus_boxes=cboxes,
        consensus_labels=consensus_labels,
        source="workspace",
    )


def add_images(session: Session, records: Sequence[dict[str, Any]]) -> dict[str, int]:
    """Insert one ``images`` row per record (keys: :class:`~cxrlab.catalog.models.Image` columns) and return
    ``image_id -> images.id``."""
    pks: dict[str, int] = {}
    for rec in records:
        img = Image(**rec)
        session.add(img)
        session.flush()
        pks[img.image_id] = img.id
    return pks


def store_readings(session: Session, tables: ReleaseTables) -> dict[str, int]:
    """Record the readers of *tables* as readings: one per (image, reader) with a label row or a box, its
    positive labels and its boxes. The images must be in the catalog already (:func:`add_images`).

    Returns
    -------
    dict
        ``readings`` and ``reader_boxes`` stored.
    """
    names = tables.schema.names
    labels, boxes = tables.reader_labels, tables.reader_boxes
    pairs = pd.concat([labels[["image_id", "rad_id"]], boxes[["image_id", "rad_id"]]]).drop_duplicates()
    if pairs.empty:
        return {"readings": 0, "reader_boxes": 0}
    pks = image_pks(session, pairs["image_id"])
    reading_ids: dict[tuple[str, str], int] = {}
    for iid, rad in pairs.itertuples(index=False):
        reading = Reading(image_pk=pks[iid], rad_id=str(rad), schema=tables.schema.name)
        session.add(reading)
        session.flush()
        reading_ids[(iid, str(rad))] = reading.id
    label_rows = [
        {"reading_id": reading_ids[(rec["image_id"], str(rec["rad_id"]))], "label": n}
        for rec in labels.to_dict("records")
        for n in names
        if rec.get(n) == 1
    ]
    if label_rows:
        session.execute(insert(ReadingLabel), label_rows)
    box_rows = [
        {"reading_id": reading_ids[(rec["image_id"], str(rec["rad_id"]))], "class_name": rec["class_name"],
         **{c: float(rec[c]) for c in BOX_COLUMNS}}
        for rec in boxes.to_dict("records")
    ]
    if box_rows:
        session.execute(insert(ReadingBox), box_rows)
    return {"readings": len(reading_ids), "reader_boxes": len(box_rows)}


def store_consensus(session: Session, tables: ReleaseTables, *, author: str) -> dict[str, int]:
    """Record the consensus of *tables* (a public test set) as human decisions (``method == "review"``), so
    :func:`replace_consensus` keeps them. The images must be in the catalog already.

    Returns
    -------
    dict
        ``consensus_labels`` (images) and ``consensus_boxes`` stored.
    """
    names = tables.schema.names
    cons, cboxes = tables.consensus_labels, tables.consensus_boxes
    pks = image_pks(session, pd.concat([cons["image_id"], cboxes["image_id"]]))
    label_rows = [
        {"image_pk": pks[rec["image_id"]], "label": n, "positive": int(rec.get(n, 0) or 0), "votes": 0,
         "readers": 0, "method": REVIEW_METHOD}
        for rec in cons.to_dict("records")
        for n in names
    ]
    if label_rows:
        session.execute(insert(ConsensusLabel), label_rows)
    box_rows = [
        {"image_pk": pks[rec["image_id"]], "class_name": rec["class_name"], **{c: float(rec[c]) for c in BOX_COLUMNS},
         "score": None if pd.isna(rec.get("score")) else float(rec["score"]),
         "votes": 1 if pd.isna(rec.get("votes")) else int(rec["votes"]),
         "method": REVIEW_METHOD, "author": author}
        for rec in cboxes.to_dict("records")
    ]
    if box_rows:
        session.execute(insert(ConsensusBox), box_rows)
    return {"consensus_labels": len(cons), "consensus_boxes": len(box_rows)}


def replace_consensus(
    session: Session,
    *,
    image_ids: Iterable[str],
    labels: pd.DataFrame,
    boxes: pd.DataFrame,
    label_method: str,
    box_method: str,
) -> dict[str, int]:
    """Replace the automatic consensus of *image_ids* by *labels* and *boxes*; review decisions stay.

    Parameters
    ----------
    image_ids : iterable of str
        The images whose automatic rows are replaced (those without new rows lose their old ones).
    labels : DataFrame
        ``image_id, label, positive, votes, readers`` (:func:`cxrlab.consensus.label_votes`).
    boxes : DataFrame
        ``image_id, class_name, x_min, y_min, x_max, y_max, score, votes`` (:func:`cxrlab.consensus.fuse_reader_boxes`).
    label_method, box_method : str
        Recorded in ``method`` (e.g. ``majority>0.5``, ``wbf@0.4``).

    Returns
    -------
    dict
        ``reviewed_labels_kept``: (image, label) pairs a reviewer decided, left as they were;
        ``images_with_reviewed_boxes``: images that keep their reviewer's boxes and get no automatic ones;
        ``fused_boxes``: automatic boxes stored.

    Notes
    -----
    Rows are stored in catalog order of the images (then in the order given), so a rerun stores the same rows
    in the same order.
    """
    pks = image_pks(session, image_ids)
    ordered = sorted(pks.values())
    reviewed: set[tuple[int, str]] = set()
    reviewed_boxes: set[int] = set()
    for chunk in _chunks(ordered):
        reviewed.update(
            (int(pk), lab) for pk, lab in session.execute(
                select(ConsensusLabel.image_pk, ConsensusLabel.label).where(
                    ConsensusLabel.image_pk.in_(chunk), ConsensusLabel.method == REVIEW_METHOD))
        )
        reviewed_boxes.update(session.scalars(select(ConsensusBox.image_pk).where(
            ConsensusBox.image_pk.in_(chunk), ConsensusBox.method == REVIEW_METHOD)))
        session.execute(delete(ConsensusLabel).where(ConsensusLabel.image_pk.in_(chunk),
                                                     ConsensusLabel.method != REVIEW_METHOD))
        session.execute(delete(ConsensusBox).where(ConsensusBox.image_pk.in_(chunk),
                                                   ConsensusBox.method != REVIEW_METHOD))
    labels = labels.assign(pk=labels["image_id"].map(pks)).dropna(subset=["pk"])
    label_rows = [
        {"image_pk": int(r.pk), "label": r.label, "positive": int(r.positive), "votes": int(r.votes),
         "readers": int(r.readers), "method": label_method}
        for r in labels.sort_values("pk", kind="stable").itertuples(index=False)
        if (int(r.pk), r.label) not in reviewed
    ]
    if label_rows:
        session.execute(insert(ConsensusLabel), label_rows)
    boxes = boxes.assign(pk=boxes["image_id"].map(pks)).dropna(subset=["pk"])
    box_rows = [
        {"image_pk": int(r.pk), "class_name": r.class_name, "x_min": float(r.x_min), "y_min": float(r.y_min),
         "x_max": float(r.x_max), "y_max": float(r.y_max), "score": float(r.score), "votes": int(r.votes),
         "method": box_method, "author": "system"}
        for r in boxes.sort_values("pk", kind="stable").itertuples(index=False)
        if int(r.pk) not in reviewed_boxes
    ]
    if box_rows:
        session.execute(insert(ConsensusBox), box_rows)
    return {"reviewed_labels_kept": len(reviewed), "images_with_reviewed_boxes": len(reviewed_boxes),
            "fused_boxes": len(box_rows)}


def set_release_fields(session: Session, split: pd.Series, *, state: ImageState | None = None) -> None:
    """Set ``images.split`` from *split* (``image_id -> train/test``), and ``images.state`` when given."""
    pks = image_pks(session, split.index)
    values = {"state": state} if state is not None else {}
    for side in sorted(set(split.dropna())):
        chosen = [pks[iid] for iid in split.index[split.to_numpy() == side] if iid in pks]
        for chunk in _chunks(chosen):
            session.execute(update(Image).where(Image.id.in_(chunk)).values(split=side, **values))


def add_events(
    session: Session,
    image_ids: Iterable[str],
    *,
    stage: str,
    action: str | Sequence[str],
    detail: dict | None = None,
) -> None:
    """Record what *stage* did to each image (one ``events`` row each); *action* is one for all or one per
    image."""
    ids = list(image_ids)
    actions = [action] * len(ids) if isinstance(action, str) else list(action)
    pks = image_pks(session, ids)
    extra = {"detail": detail} if detail is not None else {}  # absent, not JSON null
    now = datetime.now(UTC)
    rows = [{"image_pk": pks[iid], "stage": stage, "action": act, "author": "system", "at": now, **extra}
            for iid, act in zip(ids, actions, strict=True) if iid in pks]
    for chunk in _chunks(rows):
        session.execute(insert(Event), list(chunk))
