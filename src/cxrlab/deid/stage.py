"""The de-identification stage: rebuild each ingested file with only the profile's attributes.

Pixel Data is copied as stored (encapsulated fragments untouched), so no decode happens here. Burned-in
text removal and verification come on top of this (issue 3).
"""

from __future__ import annotations

import time
from io import BytesIO
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from sqlalchemy import select

from cxrlab.catalog.models import Event, Image, ImageState, QuarantineItem
from cxrlab.catalog.workspace import Workspace
from cxrlab.deid.identifiers import (
    IMPLEMENTATION_CLASS_UID,
    IMPLEMENTATION_VERSION_NAME,
    image_id_for,
    new_uid,
)
from cxrlab.deid.profiles import PROFILES
from cxrlab.errors import CxrlabError
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import atomic_write_bytes, exclusive_lock, remove_stale_temporaries
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["deidentify_dataset", "deidentify_file", "run_deid"]


def deidentify_dataset(ds: Dataset, *, key: bytes, profile: str = "vindr") -> tuple[Dataset, str]:
    """Return ``(new_dataset, image_id)`` keeping only the attributes of *profile*.

    Raises
    ------
    CxrlabError
        Unknown profile or no SOP Instance UID.
    """
    if profile not in PROFILES:
        raise CxrlabError(f"unknown de-identification profile {profile!r} (known: {', '.join(PROFILES)})")
    keep = PROFILES[profile]
    uid = str(ds.get("SOPInstanceUID") or getattr(ds.file_meta, "MediaStorageSOPInstanceUID", "") or "")
    if not uid:
        raise CxrlabError("no SOP Instance UID (0008,0018)")
    out = Dataset()
    for elem in ds:
        if int(elem.tag) in keep:
            out.add(elem)
    # PS3.15 E.1.1: mark the instance as de-identified and name the method.
    out.PatientIdentityRemoved = "YES"
    out.DeidentificationMethod = f"cxrlab {profile} profile"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.get("SOPClassUID") or ds.file_meta.get("MediaStorageSOPClassUID")
    meta.MediaStorageSOPInstanceUID = new_uid(uid, key)
    meta.TransferSyntaxUID = ds.file_meta.TransferSyntaxUID
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    out.file_meta = meta
    return out, image_id_for(uid, key)


def deidentify_file(src: Path, dst_dir: Path, key: bytes, profile: str) -> tuple[str, str, int] | tuple[None, str, int]:
    """De-identify one file into ``dst_dir/<image_id>.dicom`` (worker function; never raises).

    Returns ``(image_id, relative_name, size)`` or ``(None, reason, 0)``.
    """
    try:
        ds = pydicom.dcmread(src)
        out, image_id = deidentify_dataset(ds, key=key, profile=profile)
        buf = BytesIO()
        pydicom.dcmwrite(buf, out, enforce_file_format=True)
        data = buf.getvalue()
        atomic_write_bytes(dst_dir / f"{image_id}.dicom", data)
        return image_id, f"images/{image_id}.dicom", len(data)
    except CxrlabError as exc:
        return None, str(exc), 0
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return None, f"de-identification failed ({type(exc).__name__})", 0


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
    profile = ws.settings.deid_profile
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
    profile: str,
    on_progress: ProgressCallback | None,
) -> None:
    session = ws.sessions()
    try:
        for n, ((pk, raw), res) in enumerate(executor.map(_deid_item, items, ws.path("images"), key, profile), start=1):
            image_id, info, size = res
            img = session.get(Image, pk)
            if image_id is None:
                report.counts["quarantined"] += 1
                report.problems.append((str(raw), info))
                session.merge(QuarantineItem(stage="deid", sha256=img.raw_sha256, source_path=str(raw), reason=info))
                session.add(Event(image_pk=pk, stage="deid", action="failed", detail={"reason": info}))
            else:
                img.image_id, img.deid_path, img.deid_file_size = image_id, info, size
                img.state = ImageState.DEIDENTIFIED
                session.add(Event(image_pk=pk, stage="deid", action="deidentified", detail={"profile": profile}))
                report.counts["deidentified"] += 1
            session.commit()
            if on_progress:
                on_progress(n, len(items))
    finally:
        session.close()


def _deid_item(item: tuple[int, Path], dst_dir: Path, key: bytes, profile: str):  # noqa: ANN202
    return deidentify_file(item[1], dst_dir, key, profile)
