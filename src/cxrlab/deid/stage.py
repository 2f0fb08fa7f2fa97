"""The workspace de-identification stage (``cxrlab deid run``): ``ingested`` -> ``deidentified``.

Uses the workspace profile and key through :mod:`cxrlab.deid.engine`; the UID mapping goes to the catalog.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.catalog.models import Event, Image, ImageState, QuarantineItem, Redaction
from cxrlab.catalog.workspace import Workspace
from cxrlab.deid.batch import mapping_rows, record_mapping
from cxrlab.deid.engine import DeidResult, TextOptions, deidentify_file, ocr_available
from cxrlab.deid.profiles import Profile, get_profile
from cxrlab.errors import FileError
from cxrlab.runtime.executor import Executor, batches
from cxrlab.runtime.files import exclusive_lock, remove_stale_temporaries
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["run_deid"]

#: Images per catalog transaction (and per ``sync`` of their outputs).
BATCH = 64


def _deid_item(item: tuple[int, Path], dst_dir: Path, profile: Profile, key: bytes, id_scheme: str,
               text: TextOptions | None):  # noqa: ANN202
    """Worker: ``(DeidResult, size)`` or ``(None, reason)``; never raises."""
    try:
        result = deidentify_file(item[1], dst_dir, profile=profile, key=key, id_scheme=id_scheme, text=text)
        path = dst_dir / f"{result.image_id}.dicom"
        result.dataset = None  # do not ship the dataset back to the parent
        return result, path.stat().st_size if path.exists() else 0
    except FileError as exc:
        return None, exc.reason
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return None, f"de-identification failed ({type(exc).__name__})"


def run_deid(
    ws: Workspace,
    *,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
    text: bool | None = None,
) -> StageReport:
    """De-identify every image in state ``ingested``; idempotent and resumable.

    Burned-in text is scanned when *text* is True, or when it is None and the ``[ocr]`` extra is installed:
    confirmed text is redacted (a ``redactions`` row), doubtful images become ``flagged_text`` with a preview in
    ``review/`` and their triage thumbnail in ``thumbs/``.
    """
    t0 = time.perf_counter()
    report = StageReport("deid")
    key = ws.secret_key()
    profile = get_profile(ws.settings.deid_profile)
    with ws.sessions() as session:
        todo = session.execute(
            select(Image.id, Image.raw_path).where(Image.state == ImageState.INGESTED).order_by(Image.id)
        ).all()
    items = [(pk, ws.root / raw) for pk, raw in todo]
    if not items:
        report.notes.append("no ingested image is waiting for de-identification")
        return report
    with exclusive_lock(ws.path(".deid.lock"), "de-identification"):
        remove_stale_temporaries(ws.path("images"))
        opts = None
        if text or (text is None and ocr_available()):
            opts = TextOptions(review_dir=ws.path("review"), thumbs_dir=ws.path("thumbs"))
        elif text is None:
            report.notes.append("burned-in text was NOT scanned: install the [ocr] extra")
        _run(ws, items, report, executor or Executor(), key, profile, on_progress, opts)
        # Every result is in: a temporary still here belongs to a worker lost mid-write (kill -9 of a Dask worker,
        # whose tasks Dask ran again elsewhere), never to a file the batch still needs.
        lost = remove_stale_temporaries(ws.path("images"))
        if lost:
            report.notes.append(f"removed {lost} temporary file(s) left by a lost worker")
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
    text: TextOptions | None,
) -> None:
    results = executor.map(_deid_item, items, ws.path("images"), profile, key, "hmac", text)
    for batch in batches(results, BATCH, total=len(items), on_progress=on_progress):
        with ws.transaction() as session:
            record_batch(session, [(pk, raw, result, info) for (pk, raw), (result, info) in batch], profile, report)
            # The outputs of the batch reach the disk before the rows that point at them are committed (one
            # sync per batch instead of one fsync per file).
            os.sync()


def record_batch(session: Session, batch: list[tuple[int, Path, DeidResult | None, int | str]], profile: Profile,
                 report: StageReport) -> None:
    """Record the outcomes of a batch of images ``(pk, raw path, result or None, size or reason)`` inside the
    caller's transaction, in a few statements for the whole batch (the single writer's rate bounds a cluster):
    one query loads its images, one insert stores every mapping row; the ORM then writes the states and events
    in batches at the flush."""
    pks = [pk for pk, *_ in batch]
    images = {img.id: img for img in session.scalars(select(Image).where(Image.id.in_(pks)))}
    rows: list[dict[str, str]] = []
    for pk, raw, result, info in batch:
        _record(session, images[pk], raw, result, info, profile, report, rows)
    record_mapping(session, rows)


def _record(session: Session, img: Image, raw: Path, result: DeidResult | None, info: int | str, profile: Profile,
            report: StageReport, rows: list[dict[str, str]]) -> None:
    """Record the outcome of one image: its state, redactions and event (or its quarantine); its mapping rows are
    appended to *rows*, for the caller to store."""
    pk = img.id
    if result is None:
        report.counts["quarantined"] += 1
        report.problems.append((str(raw), info))
        session.merge(QuarantineItem(stage="deid", sha256=img.raw_sha256, source_path=str(raw), reason=info))
        session.add(Event(image_pk=pk, stage="deid", action="failed", detail={"reason": info}))
        return
    rows.extend(mapping_rows(img.sop_instance_uid, result.image_id, result.uid_map))
    img.image_id = result.image_id
    detail = {"profile": profile.name, "text": result.text_decision}
    if result.text_decision == "review":
        img.state, img.state_reason = ImageState.FLAGGED_TEXT, "doubtful burned-in text"
        report.counts["flagged_text"] += 1
    else:
        img.deid_path, img.deid_file_size = f"images/{result.image_id}.dicom", info
        img.state = ImageState.DEIDENTIFIED
        report.counts["redacted" if result.text_decision == "redact" else "deidentified"] += 1
    if result.redacted_boxes:
        session.merge(Redaction(image_id=result.image_id, boxes=[list(b) for b in result.redacted_boxes],
                                transfer_syntax=result.reencoded_to or "", reencoded=bool(result.reencoded_to)))
        detail["redacted_boxes"] = len(result.redacted_boxes)
    session.add(Event(image_pk=pk, stage="deid", action="deidentified", detail=detail))
