"""The filter stage: apply header rules to de-identified images (``deidentified`` -> accepted|filtered_out)."""

from __future__ import annotations

import time

from sqlalchemy import select

from cxrlab.catalog.models import Event, Image, ImageState
from cxrlab.catalog.workspace import Workspace
from cxrlab.filter.rules import FilterRules, check_header
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["run_filter"]


def run_filter(
    ws: Workspace,
    *,
    rules: FilterRules | None = None,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Decide every ``deidentified`` image; idempotent (decided images are not revisited).

    Header rules read only catalog columns, so this runs in the catalog process: *executor* is accepted for
    the stage contract and not used.
    """
    t0 = time.perf_counter()
    rules = rules or FilterRules(population=ws.settings.population)
    report = StageReport("filter")
    with ws.transaction() as session:
        images = session.scalars(select(Image).where(Image.state == ImageState.DEIDENTIFIED)).all()
        if not images:
            report.notes.append("no de-identified image is waiting for the filter")
        for n, img in enumerate(images, start=1):
            reason = check_header(
                modality=img.modality,
                body_part=img.body_part,
                view_position=img.view_position,
                age_years=img.age_years,
                rules=rules,
            )
            img.state = ImageState.FILTERED_OUT if reason else ImageState.ACCEPTED
            img.state_reason = reason
            session.add(
                Event(image_pk=img.id, stage="filter", action=img.state.value, detail={"reason": reason})
            )
            report.counts[img.state.value] += 1
            if reason:
                report.problems.append((img.image_id or str(img.id), reason))
            if on_progress:
                on_progress(n, len(images))
    report.seconds = time.perf_counter() - t0
    return report
