"""Majority vote of readers' image-level labels.

VinDr-CXR data descriptor, Table 2 note: "the numbers of positive labels were reported based on the majority
vote of the participating radiologists". A label is positive when more than ``threshold`` of the readers
marked it (a local label counts as marked when the reader drew a box of that class). With the default
threshold 0.5 and 3 readers that is 2 of 3; with an even number of readers a tie (2 of 4) is negative.
"""

from __future__ import annotations

import time

import pandas as pd
from sqlalchemy import delete, select

from cxrlab.catalog.models import ConsensusLabel, Event, Image, ImageState, Reading, ReadingBox, ReadingLabel
from cxrlab.catalog.workspace import Workspace
from cxrlab.runtime.report import StageReport
from cxrlab.schemas import get_schema

__all__ = ["majority_vote", "run_consensus"]


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
    """
    labels = [c for c in votes.columns if c not in ("image_id", "rad_id")]
    grouped = votes.groupby("image_id", sort=True)
    share = grouped[labels].sum() / grouped.size().to_numpy()[:, None]
    return (share > threshold).astype(int).reset_index()


def run_consensus(ws: Workspace, *, threshold: float = 0.5) -> StageReport:
    """Recompute majority-vote labels for every labeled image (idempotent: previous votes are replaced)."""
    t0 = time.perf_counter()
    report = StageReport("consensus")
    schema = get_schema(ws.settings.schema)
    with ws.sessions() as session:
        rows = session.execute(
            select(Image.id, Reading.rad_id, Reading.id)
            .join(Reading)
            .where(Image.state == ImageState.LABELED)
        ).all()
        if not rows:
            report.notes.append("no labeled images")
            return report
        reading_ids = [r[2] for r in rows]
        marked: dict[int, set[str]] = {rid: set() for rid in reading_ids}
        for rid, label in session.execute(
            select(ReadingLabel.reading_id, ReadingLabel.label).where(
                ReadingLabel.reading_id.in_(reading_ids)
            )
        ):
            marked[rid].add(label)
        for rid, cls in session.execute(
            select(ReadingBox.reading_id, ReadingBox.class_name).where(ReadingBox.reading_id.in_(reading_ids))
        ):
            marked[rid].add(cls)
        table = pd.DataFrame(
            [
                {"image_id": pk, "rad_id": rad, **{n: int(n in marked[rid]) for n in schema.names}}
                for pk, rad, rid in rows
            ]
        )
        counts = table.groupby("image_id").size()
        sums = table.groupby("image_id")[schema.names].sum()
        result = majority_vote(table, threshold=threshold)
        pks = [int(pk) for pk in result["image_id"]]
        session.execute(delete(ConsensusLabel).where(ConsensusLabel.image_pk.in_(pks)))
        for rec in result.to_dict("records"):
            pk = int(rec["image_id"])
            for name in schema.names:
                session.add(
                    ConsensusLabel(
                        image_pk=pk,
                        label=name,
                        positive=int(rec[name]),
                        votes=int(sums.loc[pk, name]),
                        readers=int(counts.loc[pk]),
                        method=f"majority>{threshold:g}",
                    )
                )
            session.add(Event(image_pk=pk, stage="consensus", action="majority_vote"))
            report.counts["images"] += 1
        session.commit()
    report.seconds = time.perf_counter() - t0
    return report
