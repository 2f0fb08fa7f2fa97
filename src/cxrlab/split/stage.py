"""``run_split``: set ``Image.split`` of every labeled image of a workspace."""

from __future__ import annotations

import time

import pandas as pd

from cxrlab.catalog.release import CONSENSUS_STATES, add_events, load_release, set_release_fields
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.report import ProgressCallback, StageReport
from cxrlab.schemas import get_schema
from cxrlab.split.splitters import split_images, split_summary

__all__ = ["run_split"]


def run_split(
    ws: Workspace,
    *,
    test_size: float,
    seed: int = 0,
    method: str = "stratified",
    resplit: bool = False,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Split the labeled (or reviewed) images of the workspace into train and test.

    Labels for stratification are the consensus labels (run ``cxrlab consensus`` first); groups for
    ``method="group"`` are the keyed patient identifiers recorded at ingest. Released images keep their
    split; images already split are split again only with *resplit*. *executor* is accepted for the stage
    contract (the split runs in this process); *on_progress* is called once, when the split is stored.

    Raises
    ------
    CxrlabError
        No labeled image, or no consensus labels for a stratified split.
    """
    t0 = time.perf_counter()
    report = StageReport("split")
    schema = get_schema(ws.settings.schema)
    names = schema.names
    with ws.transaction() as session:
        tables = load_release(session, schema, states=CONSENSUS_STATES)
        images = tables.images
        if images.empty:
            raise CxrlabError("nothing to split: no labeled images")
        already = int(images["split"].astype(bool).sum())
        if already and not resplit:
            raise CxrlabError(f"{already} image(s) already have a split (pass resplit to split again)")
        labels = None
        if len(tables.consensus_labels):
            wide = tables.consensus_labels.set_index("image_id")
            labels = wide.reindex(index=images["image_id"], columns=names).fillna(0).astype(int).reset_index()
        elif method == "stratified":
            raise CxrlabError("no consensus labels: run `cxrlab consensus` before a stratified split")
        groups = pd.Series(images["patient_id"].to_numpy(), index=images["image_id"])
        try:
            split = split_images(images["image_id"], test_size=test_size, seed=seed, method=method, labels=labels,
                                 groups=groups)
        except ValueError as exc:
            raise CxrlabError(str(exc)) from None
        split = split.reindex(images["image_id"])
        set_release_fields(session, split)
        add_events(session, split.index, stage="split", action=list(split), detail={"method": method, "seed": seed})
    for side in ("train", "test"):
        report.counts[side] = int((split == side).sum())
    if on_progress:
        on_progress(len(split), len(split))
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
