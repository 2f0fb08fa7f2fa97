"""Folder ingest: scan a folder tree, validate each DICOM file, store originals content-addressed.

Per file (in a worker process): sniff the DICOM prefix, read the header, check that the image is usable
(SOP Instance UID, Pixel Data, a transfer syntax we can decode, pixel data not truncated:
:func:`cxrlab.dicom.io.check_pixel_data`), hash the bytes, and copy the original to
``raw/<sha[:2]>/<sha>.dcm`` atomically. The parent process is the only
catalog writer: it records results in small transactions (64 files each), so a killed ingest loses at most the
open batch and a rerun finishes the rest (the unique SOP Instance UID makes every file land exactly once).
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.catalog.models import Event, Image, ImageState, QuarantineItem
from cxrlab.catalog.workspace import Workspace
from cxrlab.dicom.io import SUPPORTED_TRANSFER_SYNTAXES, DicomReadError, check_pixel_data, is_dicom, read_dataset
from cxrlab.dicom.metadata import extract_metadata
from cxrlab.errors import CxrlabError
from cxrlab.runtime.executor import Executor, batches
from cxrlab.runtime.files import (
    atomic_copy,
    atomic_link_or_copy,
    atomic_write_text,
    exclusive_lock,
    iter_files,
    remove_stale_temporaries,
    sha256_file,
)
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["IngestResult", "check_file", "probe_file", "record_result", "record_results", "run_ingest", "store_raw"]

BATCH = 64


@dataclass
class IngestResult:
    """What a worker found out about one file."""

    path: str
    outcome: str  # "ok" | "not_dicom" | "error"
    sha256: str = ""
    reason: str = ""
    meta: dict | None = None
    size: int = 0



def _check_usable(ds, path: Path) -> None:  # noqa: ANN001 - pydicom FileDataset
    """Raise DicomReadError when the dataset is not a usable single image (PS3.5 Section 8)."""
    if not ds.get("SOPInstanceUID") and not getattr(ds.file_meta, "MediaStorageSOPInstanceUID", None):
        raise DicomReadError(path, "no SOP Instance UID (0008,0018)")
    if "PixelData" not in ds:
        raise DicomReadError(path, "no pixel data (7FE0,0010)")
    ts = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "1.2.840.10008.1.2")
    if ts not in SUPPORTED_TRANSFER_SYNTAXES:
        raise DicomReadError(path, f"unsupported transfer syntax {ts}")
    for kw in ("Rows", "Columns", "BitsAllocated"):
        if not ds.get(kw):
            raise DicomReadError(path, f"missing {kw}")
    check_pixel_data(ds, path=path)


def check_file(path: Path, key: bytes) -> IngestResult:
    """Validate one file and read its catalog metadata, without storing it (never raises).

    The first half of :func:`probe_file`; the C-STORE receiver (:mod:`cxrlab.collect.scp`) runs it before it
    answers, and :func:`store_raw` later, off the network's path.
    """
    try:
        if not is_dicom(path):
            return IngestResult(str(path), "not_dicom")
        size = path.stat().st_size
        ds = read_dataset(path)
        _check_usable(ds, path)
        meta = extract_metadata(ds, key=key).as_dict()
        del ds
        return IngestResult(str(path), "ok", meta=meta, size=size)
    except DicomReadError as exc:
        return IngestResult(str(path), "error", reason=exc.reason)
    except OSError as exc:
        return IngestResult(str(path), "error", reason=f"cannot read file ({exc.strerror or type(exc).__name__})")
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return IngestResult(str(path), "error", reason=f"unexpected error ({type(exc).__name__})")


def store_raw(result: IngestResult, raw_dir: Path, *, link: bool = False) -> IngestResult:
    """Put a file that :func:`check_file` found usable into the content-addressed ``raw/<sha[:2]>/<sha>.dcm``
    (never raises: a file that cannot be read or stored becomes an ``error`` result).

    With *link*, the file is hard-linked instead of copied (same filesystem; a copy otherwise): the C-STORE
    receiver's spool files take no second write.
    """
    if result.outcome != "ok":
        return result
    path = Path(result.path)
    try:
        sha = sha256_file(path)
        dest = raw_dir / sha[:2] / f"{sha}.dcm"
        if link:
            atomic_link_or_copy(path, dest)
        elif not dest.exists():
            atomic_copy(path, dest)
    except OSError as exc:
        return IngestResult(str(path), "error", reason=f"cannot store file ({exc.strerror or type(exc).__name__})")
    return IngestResult(result.path, "ok", sha256=sha, meta=result.meta, size=result.size)


def probe_file(path: Path, raw_dir: Path, key: bytes, link: bool = False) -> IngestResult:
    """Validate one file and copy it into ``raw/`` (runs in a worker; never raises): :func:`check_file`, then
    :func:`store_raw`."""
    return store_raw(check_file(path, key), raw_dir, link=link)


def _quarantine(ws: Workspace, session: Session, result: IngestResult, source: str) -> None:
    path = Path(result.path)
    try:
        sha = sha256_file(path)
    except OSError:
        sha = hashlib.sha256(result.path.encode()).hexdigest()
    exists = session.scalar(
        select(QuarantineItem).where(QuarantineItem.sha256 == sha, QuarantineItem.stage == "ingest")
    )
    stored = ws.path("quarantine", f"{sha}.bin")
    if path.is_file() and not stored.exists():
        atomic_copy(path, stored)
    atomic_write_text(ws.path("quarantine", f"{sha}.reason.txt"), f"stage: ingest\nreason: {result.reason}\n")
    if exists is None:
        session.add(
            QuarantineItem(
                stage="ingest",
                sha256=sha,
                source_path=source,
                stored_path=str(stored),
                reason=result.reason,
            )
        )


def run_ingest(
    ws: Workspace,
    source: Path,
    *,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Ingest every DICOM file below *source* into the workspace.

    Returns a :class:`StageReport` with counts ``ingested``, ``duplicate``, ``already_ingested``,
    ``not_dicom`` and ``quarantined``; the files counted as ``duplicate`` (same SOP Instance UID as another
    file, other bytes), ``already_ingested`` and ``not_dicom`` are listed in ``report.skipped``, the
    quarantined ones in ``report.problems``.

    Raises
    ------
    CxrlabError
        *source* does not exist or is not a folder.
    """
    t0 = time.perf_counter()
    source = Path(source)
    report = StageReport("ingest")
    if not source.exists():
        raise CxrlabError(f"{source}: no such file or folder")
    files = [source] if source.is_file() else list(iter_files(source))
    if not files:
        report.notes.append(f"{source}: folder is empty, nothing to ingest")
        return report
    with exclusive_lock(ws.path(".ingest.lock"), "ingest"):
        removed = remove_stale_temporaries(ws.path("raw")) + remove_stale_temporaries(ws.path("quarantine"))
        if removed:
            report.notes.append(f"removed {removed} temporary file(s) left by an interrupted ingest")
        _ingest(ws, files, report, executor or Executor(), on_progress, origin=f"folder {source.resolve()}")
        # every result is in: what is left was written by a worker lost mid-write (its task ran again elsewhere)
        lost = remove_stale_temporaries(ws.path("raw")) + remove_stale_temporaries(ws.path("quarantine"))
        if lost:
            report.notes.append(f"removed {lost} temporary file(s) left by a lost worker")
    report.seconds = time.perf_counter() - t0
    return report


def _ingest(
    ws: Workspace, files: list[Path], report: StageReport, executor: Executor, on_progress: ProgressCallback | None,
    *, origin: str,
) -> None:
    key = ws.secret_key()
    results = executor.map(probe_file, files, ws.path("raw"), key)
    seen_uids: set[str] = set()
    for batch in batches(results, BATCH, total=len(files), on_progress=on_progress):
        with ws.transaction() as session:
            record_results(ws, session, [res for _path, res in batch], report, seen_uids, origin=origin)


def record_results(
    ws: Workspace, session: Session, results: list[IngestResult], report: StageReport, seen_uids: set[str], *,
    origin: str,
) -> None:
    """Record a batch of probed files in the caller's transaction: the same rows and counts as
    :func:`record_result` on each in turn, in a few statements for the whole batch (the single writer's rate
    bounds a cluster): one query for the batch's SOP Instance UIDs already in the catalog, then one insert for its
    new images and one for their events. Files that are not new images go through :func:`record_result`."""
    uids = [res.meta["sop_instance_uid"] for res in results if res.outcome == "ok"]
    stored = set(session.scalars(select(Image.sop_instance_uid).where(Image.sop_instance_uid.in_(uids)))) \
        if uids else set()
    new: list[Image] = []
    for res in results:
        uid = res.meta["sop_instance_uid"] if res.outcome == "ok" else None
        if uid is None or uid in stored or uid in seen_uids:
            record_result(ws, session, res, report, seen_uids, origin=origin)
            continue
        seen_uids.add(uid)
        img = _new_image(res, origin)
        session.add(img)
        new.append(img)
        report.counts["ingested"] += 1
    if new:
        session.flush()
        session.add_all([Event(image_pk=img.id, stage="ingest", action="ingested") for img in new])


def _new_image(res: IngestResult, origin: str) -> Image:
    """The catalog row of a newly ingested file."""
    return Image(
        **res.meta,
        raw_sha256=res.sha256,
        raw_path=str(Path("raw") / res.sha256[:2] / f"{res.sha256}.dcm"),
        file_size=res.size,
        state=ImageState.INGESTED,
        origin=origin,
    )


def record_result(
    ws: Workspace, session: Session, res: IngestResult, report: StageReport, seen_uids: set[str], *, origin: str,
    source: str | None = None,
) -> str:
    """Record one probed file in the catalog (or the quarantine) inside the caller's transaction, and count it.

    Parameters
    ----------
    res : IngestResult
        What :func:`probe_file` found.
    seen_uids : set of str
        SOP Instance UIDs recorded earlier in this run (not yet visible to queries of an open batch).
    origin : str
        Where the file came from, without PHI (:attr:`~cxrlab.catalog.models.Image.origin`).
    source : str, optional
        What the quarantine and the report name instead of the file path (a receiver's spool file name means
        nothing to the user); default: the path.

    Returns
    -------
    str
        The outcome counted: ``ingested``, ``already_ingested``, ``duplicate``, ``not_dicom`` or ``quarantined``.
    """
    item = source or res.path
    if res.outcome == "not_dicom":
        outcome = "not_dicom"
        report.skipped.append((item, outcome))
    elif res.outcome == "error":
        outcome = "quarantined"
        report.problems.append((item, res.reason))
        _quarantine(ws, session, res, item)
    else:
        uid = res.meta["sop_instance_uid"]
        existing = session.scalar(select(Image.id).where(Image.sop_instance_uid == uid))
        if existing is not None or uid in seen_uids:
            same_bytes = session.scalar(select(Image.id).where(Image.raw_sha256 == res.sha256))
            if same_bytes is None:
                # Same SOP Instance UID, other bytes: keep the first, drop the stored copy.
                ws.path("raw", res.sha256[:2], f"{res.sha256}.dcm").unlink(missing_ok=True)
            outcome = "already_ingested" if same_bytes else "duplicate"
            report.skipped.append((item, outcome))
        else:
            seen_uids.add(uid)
            img = _new_image(res, origin)
            session.add(img)
            session.flush()
            session.add(Event(image_pk=img.id, stage="ingest", action="ingested"))
            outcome = "ingested"
    report.counts[outcome] += 1
    return outcome
