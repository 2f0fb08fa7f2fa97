"""Batch de-identification of a plain folder (``cxrlab deid folder``): parallel, streaming, resumable.

Outputs are ``OUT/<image_id>.dicom``, each written to a temporary name and renamed, and fully determined by the
input and the key: after a ``kill -9`` a rerun skips finished outputs, removes stale temporaries and produces a
folder byte-identical to an uninterrupted run. The mapping of original identifiers lives in a SQLite file beside
the key (never in OUT).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from cxrlab.catalog.db import make_engine
from cxrlab.catalog.models import UidMap
from cxrlab.deid.engine import deidentify_file
from cxrlab.deid.identifiers import image_id_for
from cxrlab.deid.profiles import Profile
from cxrlab.dicom.io import is_dicom
from cxrlab.errors import CxrlabError, FileError
from cxrlab.ingest.folder import iter_files
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import exclusive_lock, remove_stale_temporaries
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["FileOutcome", "deid_folder", "load_key", "mapping_engine", "record_mapping"]


@dataclass
class FileOutcome:
    """What a worker did with one file (no PHI: the mapping goes only to the mapping store)."""

    outcome: str  # deidentified | already | duplicate | not_dicom | failed
    image_id: str = ""
    reason: str = ""
    original: str = ""
    uid_map: dict[str, str] = field(default_factory=dict)


def load_key(path: Path) -> bytes:
    """Read a key file (hex, as written by ``cxrlab init``; at least 16 bytes).

    Raises
    ------
    CxrlabError
        Missing, unreadable or too short.
    """
    try:
        key = bytes.fromhex(Path(path).read_text().strip())
    except FileNotFoundError:
        raise CxrlabError(
            f'{path}: key file not found (create one: python -c "import secrets; '
            f'print(secrets.token_hex(32))" > {path}; chmod 600 {path})'
        ) from None
    except ValueError:
        raise CxrlabError(f"{path}: key file must hold hex digits") from None
    if len(key) < 16:
        raise CxrlabError(f"{path}: key too short ({len(key)} bytes; use 32)")
    return key


def mapping_engine(path_or_url: str | Path) -> Engine:
    """Open (and create) the mapping store: a SQLite file path or any SQLAlchemy URL."""
    text = str(path_or_url)
    engine = make_engine(text if "://" in text else f"sqlite:///{Path(text).resolve()}")
    UidMap.__table__.create(engine, checkfirst=True)
    return engine


def record_mapping(session: Session, original_sop: str, image_id: str, uid_map: dict[str, str]) -> None:
    """Store ``original -> new`` pairs (idempotent)."""
    session.merge(UidMap(original=original_sop, kind="image_id", new=image_id))
    for old, new in uid_map.items():
        session.merge(UidMap(original=old, kind="uid", new=new))


def _one(path: Path, out: Path, profile: Profile, key: bytes, id_scheme: str) -> FileOutcome:
    """Worker: de-identify *path* unless its output already exists (never raises)."""
    try:
        if not is_dicom(path):
            return FileOutcome("not_dicom")
        ds = pydicom.dcmread(path, stop_before_pixels=True, force=True, specific_tags=["SOPInstanceUID"])
        uid = str(ds.get("SOPInstanceUID") or getattr(ds.file_meta, "MediaStorageSOPInstanceUID", "") or "").strip()
        if uid and (out / f"{image_id_for(uid, key, id_scheme)}.dicom").exists():
            return FileOutcome("already", image_id_for(uid, key, id_scheme))
        result = deidentify_file(path, out, profile=profile, key=key, id_scheme=id_scheme)
        return FileOutcome("deidentified", result.image_id, original=uid, uid_map=result.uid_map)
    except FileError as exc:
        return FileOutcome("failed", reason=exc.reason)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return FileOutcome("failed", reason=f"unexpected error ({type(exc).__name__})")


def deid_folder(
    src: Path,
    out: Path,
    *,
    profile: Profile,
    key: bytes,
    mapping: str | Path,
    id_scheme: str = "hmac",
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """De-identify every DICOM file below *src* into *out*.

    Raises
    ------
    CxrlabError
        *src* missing, *out* inside *src*, or another run holds the lock.
    """
    t0 = time.perf_counter()
    src, out = Path(src).resolve(), Path(out).resolve()
    if not src.exists():
        raise CxrlabError(f"{src}: no such file or folder")
    if out == src or src in out.parents:
        raise CxrlabError(f"{out}: the output folder must not be inside the input folder")
    out.mkdir(parents=True, exist_ok=True)
    report = StageReport("deid")
    files = [src] if src.is_file() else list(iter_files(src))
    engine = mapping_engine(mapping)
    lock = Path(str(mapping)).with_suffix(".lock") if "://" not in str(mapping) else out.parent / ".cxrlab-deid.lock"
    with exclusive_lock(lock, "de-identification"), Session(engine) as session:
        stale = remove_stale_temporaries(out)
        if stale:
            report.notes.append(f"removed {stale} temporary file(s) left by an interrupted run")
        seen: dict[str, Path] = {}
        for n, (path, res) in enumerate((executor or Executor()).map(_one, files, out, profile, key, id_scheme), 1):
            if res.image_id in seen and res.outcome in ("deidentified", "already"):
                if res.outcome == "deidentified":
                    # Two inputs share a SOP Instance UID and raced for one output: the first input in
                    # folder order wins, so the result never depends on timing.
                    deidentify_file(seen[res.image_id], out, profile=profile, key=key, id_scheme=id_scheme)
                res.outcome = "duplicate"
            report.counts[res.outcome] += 1
            if res.outcome == "failed":
                report.problems.append((str(path), res.reason))
            if res.image_id:
                seen.setdefault(res.image_id, path)
            if res.outcome == "deidentified" and res.original:
                record_mapping(session, res.original, res.image_id, res.uid_map)
            if n % 200 == 0:
                session.commit()
            if on_progress:
                on_progress(n, len(files))
        session.commit()
    engine.dispose()
    report.seconds = time.perf_counter() - t0
    return report
