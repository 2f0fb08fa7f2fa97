"""Majority vote of readers' image-level labels.

VinDr-CXR data descriptor, Table 2 note: "the numbers of positive labels were reported based on the majority
vote of the participating radiologists". A label is positive when more than ``threshold`` of the readers
marked it (a local label counts as marked when the reader drew a box of that class). With the default
threshold 0.5 and 3 readers that is 2 of 3; with an even number of readers a tie (2 of 4) is negative.
"""

from __future__ import annotations

import time

import pandas as pd
from sqlalchemy import delete, insert, select

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
from cxrlab.catalog.workspace import Workspace
from cxrlab.runtime.report import StageReport
from cxrlab.schemas import ReleaseTables, get_schema

__all__ = ["REVIEW", "consensus_tables", "image_positives", "majority_vote", "run_consensus"]

#: ``method`` of consensus rows written by human review (the labeling platform); never overwritten here.
REVIEW = REVIEW_METHOD
#: Image states whose readings are aggregated.
STATES = (ImageState.LABELED, ImageState.REVIEWED)


def majority_vote(votes: pd.DataFrame, *, threshold: float = 0.5) -> pd.DataFrame:
    """Aggregate a reader x label 0/1 table.

    Parameters
    ----------
    votes : DataFrame
        Columns ``image_id``, ``rad_id`` and one 0/1 column per label (the ``image_labels_train.csv`` layout).
    threshold : float
        Fraction of readers that must be exceeded (strictly) for a positive.

    Returns
    -------
    DataFrame
        One row per ``image_id`` with 0/1 per label.

    Notes
    -----
    Ties: the comparison is strict, so with the default 0.5 exactly half of the readers (2 of 4, 1 of 2) is
    negative; use a threshold below 0.5 (e.g. 0.49) to count ties as positive.
    """
    labels = [c for c in votes.columns if c not in ("image_id", "rad_id")]
    grouped = votes.groupby("image_id", sort=True)
    share = grouped[labels].sum() / grouped.size().to_numpy()[:, None]
    return (share > threshold).astype(int).reset_index()


def image_positives(
    tables: ReleaseTables, image_ids: list[str] | None = None, *, threshold: float = 0.5
) -> pd.DataFrame:
    """Final 0/1 labels per image of a release: the consensus labels where an image has them (test sets,
    review decisions, a workspace after ``cxrlab consensus``), else the majority vote of its readers."""
    names = tables.schema.names
    cons = tables.consensus_labels
    readers = tables.reader_labels
    if image_ids is not None:
        keep = set(image_ids)
        cons = cons.loc[cons["image_id"].isin(keep)]
        readers = readers.loc[readers["image_id"].isin(keep)]
    readers = readers.loc[~readers["image_id"].isin(set(cons["image_id"]))]
    parts = [cons.reindex(columns=["image_id", *names])]
    if len(readers):
        parts.append(majority_vote(readers.reindex(columns=["image_id", "rad_id", *names]), threshold=threshold))
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=["image_id", *names])
    return pd.concat(parts, ignore_index=True)


def run_consensus(
    ws: Workspace,
    *,
    threshold: float = 0.5,
    iou_thr: float = 0.4,
    skip_box_thr: float = 0.0,
) -> StageReport:
    """Aggregate the readers of every labeled (or reviewed) image: majority vote of labels, WBF of boxes.

    Idempotent: earlier automatic rows are replaced. Rows written by human review (``method == "review"``
    in ``consensus_labels`` / ``consensus_boxes``) are never touched: a reviewed label keeps its decision,
    and an image with any reviewed box gets no fused boxes (the reviewer's boxes are its consensus).

    Parameters
    ----------
    threshold : float
        A label is positive when more than this share of the image's readers marked it (2 of 3; a 2-of-4
        tie is negative).
    iou_thr, skip_box_thr : float
        Box fusion options (:func:`cxrlab.consensus.fuse_reader_boxes`). Every fused box is stored with its
        ``votes`` (distinct readers); the export keeps those drawn by a majority.
    """
    from cxrlab.consensus.fusion import fuse_reader_boxes

    t0 = time.perf_counter()
    report = StageReport("consensus")
    schema = get_schema(ws.settings.schema)
    names = schema.names
    labeled = select(Reading.image_pk).join(Image).where(Image.state.in_(STATES)).scalar_subquery()
    with ws.sessions() as session:
        rows = session.execute(
            select(Image.id, Image.columns, Image.rows, Reading.rad_id, Reading.id)
            .join(Reading)
            .where(Image.state.in_(STATES))
        ).all()
        if not rows:
            report.notes.append("no labeled images")
            return report
        reads = pd.DataFrame(rows, columns=["image_id", "width", "height", "rad_id", "reading"])
        pks = sorted({int(pk) for pk in reads["image_id"]})
        marks = pd.DataFrame(
            session.execute(
                select(ReadingLabel.reading_id, ReadingLabel.label)
                .join(Reading, Reading.id == ReadingLabel.reading_id)
                .join(Image)
                .where(Image.state.in_(STATES))
            ).all(),
            columns=["reading", "label"],
        )
        box_rows = pd.DataFrame(
            session.execute(
                select(ReadingBox.reading_id, ReadingBox.class_name, ReadingBox.x_min, ReadingBox.y_min,
                       ReadingBox.x_max, ReadingBox.y_max)
                .join(Reading, Reading.id == ReadingBox.reading_id)
                .join(Image)
                .where(Image.state.in_(STATES))
                .order_by(ReadingBox.id)
            ).all(),
            columns=["reading", "class_name", "x_min", "y_min", "x_max", "y_max"],
        )
        marked = pd.concat([marks, box_rows[["reading", "class_name"]].rename(columns={"class_name": "label"})])
        wide = pd.crosstab(marked["reading"], marked["label"]).clip(upper=1) if len(marked) else pd.DataFrame()
        wide = wide.reindex(index=reads["reading"], columns=names, fill_value=0).fillna(0).astype(int)
        table = pd.concat([reads[["image_id", "rad_id"]].reset_index(drop=True), wide.reset_index(drop=True)],
                          axis=1)
        counts = table.groupby("image_id").size()
        sums = table.groupby("image_id")[names].sum()
        result = majority_vote(table, threshold=threshold).set_index("image_id")
        reviewed = {
            (int(pk), lab)
            for pk, lab in session.execute(
                select(ConsensusLabel.image_pk, ConsensusLabel.label).where(
                    ConsensusLabel.image_pk.in_(labeled), ConsensusLabel.method == REVIEW
                )
            )
        }
        session.execute(
            delete(ConsensusLabel).where(ConsensusLabel.image_pk.in_(labeled), ConsensusLabel.method != REVIEW)
        )
        method = f"majority>{threshold:g}"
        label_values = [
            {"image_pk": pk, "label": name, "positive": int(result.at[pk, name]), "votes": int(sums.at[pk, name]),
             "readers": int(counts.at[pk]), "method": method}
            for pk in pks
            for name in names
            if (pk, name) not in reviewed
        ]
        if label_values:
            session.execute(insert(ConsensusLabel), label_values)
        report.counts["images"] = len(pks)
        report.counts["reviewed_labels_kept"] = len(reviewed)
        # Box fusion (one "model" per reader; readers without boxes still count).
        reviewed_box_images = set(
            session.scalars(
                select(ConsensusBox.image_pk).where(ConsensusBox.image_pk.in_(labeled), ConsensusBox.method == REVIEW)
            )
        )
        session.execute(
            delete(ConsensusBox).where(ConsensusBox.image_pk.in_(labeled), ConsensusBox.method != REVIEW)
        )
        if len(box_rows):
            boxes = box_rows.merge(reads, on="reading")
            boxes = boxes.loc[~boxes["image_id"].isin(reviewed_box_images)]
            fused = fuse_reader_boxes(
                boxes[["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max", "width", "height"]],
                iou_thr=iou_thr,
                skip_box_thr=skip_box_thr,
                readers=counts,
            )
            box_method = f"wbf@{iou_thr:g}"
            values = [
                {"image_pk": int(r.image_id), "class_name": r.class_name, "x_min": float(r.x_min),
                 "y_min": float(r.y_min), "x_max": float(r.x_max), "y_max": float(r.y_max),
                 "score": float(r.score), "votes": int(r.votes), "method": box_method, "author": "system"}
                for r in fused.itertuples(index=False)
            ]
            if values:
                session.execute(insert(ConsensusBox), values)
            report.counts["fused_boxes"] = len(values)
        if reviewed_box_images:
            report.counts["images_with_reviewed_boxes"] = len(reviewed_box_images)
        session.execute(
            insert(Event), [{"image_pk": pk, "stage": "consensus", "action": "majority_vote+wbf"} for pk in pks]
        )
        session.commit()
    report.seconds = time.perf_counter() - t0
    return report


def consensus_tables(
    tables: ReleaseTables,
    *,
    method: str = "wbf",
    iou_thr: float = 0.4,
    skip_box_thr: float = 0.0,
    threshold: float = 0.5,
) -> ReleaseTables:
    """The consensus of a release's readers, in memory (what ``cxrlab consensus --annotations`` writes).

    Labels: :func:`majority_vote` (> *threshold* of the image's readers). Boxes:
    :func:`~cxrlab.consensus.fuse_reader_boxes` with *method* ``wbf`` (every fused box) or ``majority``
    (fused boxes drawn by > *threshold* of the readers). An image's readers are those with a label row or a
    box. Images that already had a consensus and no readers (a test set) keep theirs.
    """
    from cxrlab.consensus.fusion import fuse_reader_boxes

    names = tables.schema.names
    labels = tables.reader_labels
    readers = pd.concat([labels[["image_id", "rad_id"]], tables.reader_boxes[["image_id", "rad_id"]]])
    n_readers = readers.drop_duplicates().groupby("image_id").size()
    fused = fuse_reader_boxes(tables.reader_boxes, iou_thr=iou_thr, skip_box_thr=skip_box_thr, method=method,
                              threshold=threshold, readers=n_readers)
    voted = majority_vote(labels.reindex(columns=["image_id", "rad_id", *names]), threshold=threshold) \
        if len(labels) else labels.reindex(columns=["image_id", *names])
    done = set(n_readers.index)
    old_labels = tables.consensus_labels.loc[~tables.consensus_labels["image_id"].isin(done)]
    old_boxes = tables.consensus_boxes.loc[~tables.consensus_boxes["image_id"].isin(done)]
    return ReleaseTables(
        schema=tables.schema,
        images=tables.images,
        consensus_boxes=pd.concat([b for b in (old_boxes, fused) if len(b)], ignore_index=True)
        if len(old_boxes) or len(fused) else fused,
        consensus_labels=pd.concat([x for x in (old_labels, voted) if len(x)], ignore_index=True)
        if len(old_labels) or len(voted) else voted,
        known_labels=tables.known_labels,
        source=tables.source,
        problems=tables.problems,
    )
