"""``run_split``: set ``Image.split`` of every labeled image of a workspace."""

from __future__ import annotations

import time

import pandas as pd
from sqlalchemy import select, update

from cxrlab.catalog.models import ConsensusLabel, Event, Image, ImageState
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.runtime.report import StageReport
from cxrlab.schemas import get_schema
from cxrlab.split.splitters import split_images, split_summary

__all__ = ["run_split"]

_STATES = (ImageState.LABELED, ImageState.REVIEWED)


def run_split(
    ws: Workspace,
    *,
    test_size: float,
    seed: int = 0,
    method: str = "stratified",
    resplit: bool = False,
) -> StageReport:
    """Split the labeled (or reviewed) images of the workspace into train and test.

    Labels for stratification are the consensus labels (run ``cxrlab consensus`` first); groups for
    ``method="group"`` are the keyed patient identifiers recorded at ingest. Released images keep their
    split; images already split are split again only with *resplit*.

    Raises
    ------
    CxrlabError
        No labeled image, or no consensus labels for a stratified split.
    """
    t0 = time.perf_counter()
    report = StageReport("split")
    names = get_schema(ws.settings.schema).names
    with ws.sessions() as session:
        rows = session.execute(
            select(Image.id, Image.image_id, Image.patient_key, Image.split).where(Image.state.in_(_STATES))
        ).all()
        if not rows:
            raise CxrlabError("nothing to split: no labeled images")
        already = [r for r in rows if r[3]]
        if already and not resplit:
            raise CxrlabError(f"{len(already)} image(s) already have a split (pass resplit to split again)")
        images = pd.DataFrame(rows, columns=["pk", "image_id", "patient", "split"])
        cons = pd.DataFrame(
            session.execute(
                select(ConsensusLabel.image_pk, ConsensusLabel.label, ConsensusLabel.positive)
                .join(Image)
                .where(Image.state.in_(_STATES))
            ).all(),
            columns=["pk", "label", "positive"],
        )
        labels = None
        if len(cons):
            wide = cons.pivot_table(index="pk", columns="label", values="positive", aggfunc="max")
            wide = wide.reindex(index=images["pk"], columns=names).fillna(0).astype(int)
            labels = pd.concat([images[["image_id"]], wide.reset_index(drop=True)], axis=1)
        elif method == "stratified":
            raise CxrlabError("no consensus labels: run `cxrlab consensus` before a stratified split")
        groups = pd.Series(images["patient"].to_numpy(), index=images["image_id"])
        try:
            split = split_images(images["image_id"], test_size=test_size, seed=seed, method=method, labels=labels,
                                 groups=groups)
        except ValueError as exc:
            raise CxrlabError(str(exc)) from None
        for side in ("train", "test"):
            pks = images.loc[split.reindex(images["image_id"]).to_numpy() == side, "pk"].tolist()
            for i in range(0, len(pks), 500):
                session.execute(update(Image).where(Image.id.in_(pks[i:i + 500])).values(split=side))
            report.counts[side] = len(pks)
        session.execute(
            Event.__table__.insert(),
            [{"image_pk": int(pk), "stage": "split", "action": s, "author": "system",
              "detail": {"method": method, "seed": seed}, "at": pd.Timestamp.now(tz="UTC").to_pydatetime()}
             for pk, s in zip(images["pk"], split.reindex(images["image_id"]), strict=True)],
        )
        session.commit()
    if labels is not None:
        summary = split_summary(labels, split)
        summary = summary.loc[summary["positives"] >= 10]
        if len(summary):
            report.notes.append(
                f"largest prevalence gap between train and test: {summary['diff_pp'].max():.2f} percentage points "
                f"(labels with >= 10 positives)"
            )
    report.seconds = time.perf_counter() - t0
    return report
