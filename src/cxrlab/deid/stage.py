"""The workspace de-identification stage (``cxrlab deid run``): ``ingested`` -> ``deidentified``.

Uses the workspace profile and key through :mod:`cxrlab.deid.engine`; the UID mapping goes to the catalog.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy import select

from cxrlab.catalog.models import Event, Image, ImageState, QuarantineItem
from cxrlab.catalog.workspace import Workspace
from cxrlab.deid.batch import record_mapping
from cxrlab.deid.engine import deidentify_file
from cxrlab.deid.profiles import Profile, get_profile
from cxrlab.errors import FileError
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import exclusive_lock, remove_stale_temporaries
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["run_deid"]


def _deid_item(item: tuple[int, Path], dst_dir: Path, profile: Profile, key: bytes, id_scheme: str):  # noqa: ANN202
    """Worker: ``(image_id, relative path, size, original SOP UID, uid_map)`` or ``(None, reason, ...)``."""
    try:
        result = deidentify_file(item[1], dst_dir, profile=profile, key=key, id_scheme=id_scheme)
        path = dst_dir / f"{result.image_id}.dicom"
        return result.image_id, f"images/{result.image_id}.dicom", path.stat().st_size, result.uid_map
    except FileError as exc:
        return None, exc.reason, 0, {}
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return None, f"de-identification failed ({type(exc).__name__})", 0, {}


def run_deid(
    ws: Workspace,
    *,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """De-identify every image in state ``ingested``; idempotent and resumable."""
    t0 = time.perf_counter()
    report = StageReport("deid")
    key = ws.secret_key()
    profile = get_profile(ws.settings.deid_profile)
    with ws.sessions() as session:
        todo = session.execute(
            select(Image.id, Image.raw_path).where(Image.state == ImageState.INGESTED).order_by(Image.id)
        ).all()
    items = [(pk, ws.root / raw) for pk, raw in todo]
    with exclusive_lock(ws.path(".deid.lock"), "de-identification"):
        remove_stale_temporaries(ws.path("images"))
        _run(ws, items, report, executor or Executor(), key, profile, on_progress)
    report.seconds = time.perf_counter() - t0
    return report


def _run(
    ws: Workspace,
    items: list,
    report: StageReport,
    executor: Executor,
    key: bytes,
    profile: Profile,
    on_progress: ProgressCallback | None,
) -> None:
    session = ws.sessions()
    try:
        for n, ((pk, raw), res) in enumerate(
            executor.map(_deid_item, items, ws.path("images"), profile, key, "hmac"), start=1
        ):
            image_id, info, size, uid_map = res
            img = session.get(Image, pk)
            if image_id is None:
                report.counts["quarantined"] += 1
                report.problems.append((str(raw), info))
                session.merge(QuarantineItem(stage="deid", sha256=img.raw_sha256, source_path=str(raw), reason=info))
                session.add(Event(image_pk=pk, stage="deid", action="failed", detail={"reason": info}))
            else:
                img.image_id, img.deid_path, img.deid_file_size = image_id, info, size
                img.state = ImageState.DEIDENTIFIED
                record_mapping(session, img.sop_instance_uid, image_id, uid_map)
                session.add(Event(image_pk=pk, stage="deid", action="deidentified", detail={"profile": profile.name}))
                report.counts["deidentified"] += 1
            session.commit()
            if on_progress:
                on_progress(n, len(items))
    finally:
        session.close()
