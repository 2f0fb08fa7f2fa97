"""Majority vote of readers' image-level labels.

VinDr-CXR data descriptor, Table 2 note: "the numbers of positive labels were reported based on the majority
vote of the participating radiologists". A label is positive when more than ``threshold`` of the readers
marked it (a local label counts as marked when the reader drew a box of that class). With the default
threshold 0.5 and 3 readers that is 2 of 3; with an even number of readers a tie (2 of 4) is negative.
"""

from __future__ import annotations

import time

import pandas as pd

from cxrlab.catalog.models import REVIEW_METHOD
from cxrlab.catalog.release import CONSENSUS_STATES, add_events, load_release, replace_consensus
from cxrlab.catalog.workspace import Workspace
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.report import ProgressCallback, StageReport
from cxrlab.schemas import ReleaseTables, get_schema

__all__ = ["REVIEW", "consensus_tables", "image_positives", "label_votes", "majority_vote", "run_consensus"]

#: ``method`` of consensus rows written by human review (the labeling platform); never overwritten here.
REVIEW = REVIEW_METHOD


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


def label_votes(reader_labels: pd.DataFrame, names: list[str], *, threshold: float = 0.5) -> pd.DataFrame:
    """The majority vote of each image's readers with its tally, one row per image and label.

    Parameters
    ----------
    reader_labels : DataFrame
        ``image_id, rad_id`` and one 0/1 column per label: one row per reader per image.
    names : list of str
        Labels to vote on (the schema's, in seed order).
    threshold : float
        Positive when more than this share of the image's readers marked the label (:func:`majority_vote`).

    Returns
    -------
    DataFrame
        ``image_id, label, positive, votes, readers``, by image then label: ``votes`` readers marked the label,
        out of ``readers``.
    """
    table = reader_labels.reindex(columns=["image_id", "rad_id", *names])
    if table.empty:
        return pd.DataFrame(columns=["image_id", "label", "positive", "votes", "readers"])
    grouped = table.groupby("image_id", sort=True)
    readers = grouped.size()
    votes = grouped[names].sum().stack()
    positive = majority_vote(table, threshold=threshold).set_index("image_id")[names].stack()
    out = pd.DataFrame({"positive": positive, "votes": votes}).rename_axis(["image_id", "label"]).reset_index()
    out["readers"] = out["image_id"].map(readers)
    return out


def run_consensus(
    ws: Workspace,
    *,
    threshold: float = 0.5,
    iou_thr: float = 0.4,
    skip_box_thr: float = 0.0,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Aggregate the readers of every labeled (or reviewed) image: majority vote of labels, WBF of boxes.

    Idempotent: earlier automatic rows are replaced. Rows written by human review (``method == "review"``
    in ``consensus_labels`` / ``consensus_boxes``) are never touched: a reviewed label keeps its decision,
    and an image with any reviewed box gets no fused boxes (the reviewer's boxes are its consensus).

    The catalog is read into release tables (:func:`cxrlab.catalog.release.load_release`), voted and fused in
    memory (:func:`label_votes`, :func:`~cxrlab.consensus.fuse_reader_boxes`), and written back
    (:func:`cxrlab.catalog.release.replace_consensus`), all in one transaction.

    Parameters
    ----------
    threshold : float
        A label is positive when more than this share of the image's readers marked it (2 of 3; a 2-of-4
        tie is negative).
    iou_thr, skip_box_thr : float
        Box fusion options (:func:`cxrlab.consensus.fuse_reader_boxes`). Every fused box is stored with its
        ``votes`` (distinct readers); the export keeps those drawn by a majority.
    executor : Executor, optional
        Accepted for the stage contract; the vote and the fusion are vectorised and run in this process.
    on_progress : callable, optional
        Called once with ``(images, images)`` when the consensus is stored.
    """
    from cxrlab.consensus.fusion import fuse_reader_boxes

    t0 = time.perf_counter()
    report = StageReport("consensus")
    schema = get_schema(ws.settings.schema)
    with ws.transaction() as session:
        tables = load_release(session, schema, states=CONSENSUS_STATES)
        readers = tables.reader_labels.groupby("image_id", sort=False).size()
        if readers.empty:
            report.notes.append("no labeled images")
            return report
        image_ids = [iid for iid in tables.images["image_id"] if iid in readers.index]  # catalog order
        labels = label_votes(tables.reader_labels, schema.names, threshold=threshold)
        sizes = tables.images.set_index("image_id")[["columns", "rows"]].set_axis(["width", "height"], axis=1)
        fused = fuse_reader_boxes(tables.reader_boxes.join(sizes, on="image_id"), iou_thr=iou_thr,
                                  skip_box_thr=skip_box_thr, readers=readers)
        stored = replace_consensus(session, image_ids=image_ids, labels=labels, boxes=fused,
                                   label_method=f"majority>{threshold:g}", box_method=f"wbf@{iou_thr:g}")
        add_events(session, image_ids, stage="consensus", action="majority_vote+wbf")
    report.counts["images"] = len(image_ids)
    report.counts["reviewed_labels_kept"] = stored["reviewed_labels_kept"]
    if len(tables.reader_boxes):
        report.counts["fused_boxes"] = stored["fused_boxes"]
    if stored["images_with_reviewed_boxes"]:
        report.counts["images_with_reviewed_boxes"] = stored["images_with_reviewed_boxes"]
    if on_progress:
        on_progress(len(image_ids), len(image_ids))
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
