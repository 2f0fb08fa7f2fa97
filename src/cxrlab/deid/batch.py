"""Batch de-identification of a plain folder (``cxrlab deid folder``): parallel, streaming, resumable.

Outputs are ``OUT/<image_id>.dicom``, fully determined by the input and the key. The mapping of original
identifiers lives in a SQLite file beside the key (never in OUT), created with mode 0600.

Nothing is lost to a ``kill -9``: a worker writes each output under a temporary name, and the parent renames it
only after committing its mapping rows, so a visible output always has its rows. A rerun removes stale
temporaries, skips finished outputs and re-records their rows from the source header (cheap, no pixel work;
inserted with on-conflict-do-nothing), which also repairs a store written by an older cxrlab or cut short by a
power loss. The rerun produces a folder byte-identical to an uninterrupted run and the same mapping.

Like ``cp`` and the other de-identification tools, the batch returns once the kernel has the outputs; it does not
wait for the disk (``sync=True`` does, once, at the end). Because the outputs themselves say what is done, a rerun
after a power loss re-checks each output it would skip (:func:`output_complete`) and redoes the ones the crash
truncated.
"""

from __future__ import annotations

import csv
import io
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from cxrlab.catalog.db import make_engine, transaction
from cxrlab.catalog.models import Redaction, UidMap
from cxrlab.deid.engine import TextOptions, deidentify_dataset, deidentify_file, read_header
from cxrlab.deid.identifiers import image_id_for
from cxrlab.deid.profiles import Profile
from cxrlab.dicom.io import is_dicom
from cxrlab.errors import CxrlabError, FileError
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import (
    atomic_write_bytes,
    exclusive_lock,
    iter_files,
    private_file,
    publish_staged,
    remove_stale_temporaries,
)
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = [
    "FileOutcome",
    "deid_folder",
    "export_mapping",
    "load_key",
    "mapping_engine",
    "mapping_rows",
    "output_complete",
    "read_redactions",
    "record_mapping",
]

#: Files per worker hand-off when no pixels are scanned (a few ms each: hand-offs would dominate).
CHUNK_HEADER_ONLY = 16
#: Results per commit of the mapping store; the outputs of a commit are renamed into place right after it.
PUBLISH_EVERY = 32


@dataclass
class FileOutcome:
    """What a worker did with one file (no PHI: the mapping goes only to the mapping store)."""

    outcome: str  # deidentified | redacted | review | already | duplicate | not_dicom | failed
    image_id: str = ""
    reason: str = ""
    original: str = ""
    uid_map: dict[str, str] = field(default_factory=dict)
    redacted_boxes: list = field(default_factory=list)
    reencoded_to: str | None = None
    staged: Path | None = None  # the output under its temporary name, renamed by the parent after the commit


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
    """Open (and create) the mapping store: a SQLite file path or any SQLAlchemy URL.

    A SQLite file is created with mode 0600, like the exported CSV (and an older, wider one is narrowed): it
    links every released image to its patient. SQLite gives its ``-wal`` and ``-shm`` files the database's mode.
    """
    text = str(path_or_url)
    if "://" not in text:
        path = Path(text).resolve()
        private_file(path)
        text = f"sqlite:///{path}"
    engine = make_engine(text)
    UidMap.__table__.create(engine, checkfirst=True)
    Redaction.__table__.create(engine, checkfirst=True)
    return engine


def mapping_rows(original_sop: str, image_id: str, uid_map: dict[str, str]) -> list[dict[str, str]]:
    """The ``uid_map`` rows of one image: its ``image_id`` and every remapped UID."""
    rows = [{"original": original_sop, "kind": "image_id", "new": image_id}]
    rows += [{"original": old, "kind": "uid", "new": new} for old, new in uid_map.items()]
    return rows


def record_mapping(session: Session, rows: list[dict[str, str]]) -> None:
    """Store ``original -> new`` pairs (:func:`mapping_rows` of one or many images) in one statement; pairs
    already stored are left as they are."""
    if not rows:
        return
    # A UID shared by several images (their Study Instance UID) comes once per image; it always maps to the
    # same new value (keyed), so one row per (original, kind) is enough.
    rows = list({(r["original"], r["kind"]): r for r in rows}.values())
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    # One statement executed for many parameter sets: compiled once and cached, unlike a multi-row VALUES.
    session.execute(insert(UidMap.__table__).on_conflict_do_nothing(index_elements=["original", "kind"]), rows)


def read_redactions(engine: Engine) -> dict[str, list]:
    """``image_id -> boxes`` of every redaction recorded in a mapping store or a workspace catalog."""
    with Session(engine) as session:  # a read: never committed
        return {r.image_id: r.boxes for r in session.scalars(select(Redaction))}


def export_mapping(engine: Engine, output: Path) -> int:
    """Write the ``original,kind,new`` pairs of a mapping store or catalog to *output* (CSV) and return how many.

    The file links released images to patients: it is created with mode 0600 and renamed into place whole, so it
    is never readable by others, not even for a moment.
    """
    with Session(engine) as session:  # a read: never committed
        rows = session.execute(select(UidMap.original, UidMap.kind, UidMap.new)
                               .order_by(UidMap.kind, UidMap.original)).all()
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["original", "kind", "new"])
    writer.writerows(rows)
    atomic_write_bytes(output, buf.getvalue().encode(), mode=0o600)
    return len(rows)


def output_complete(path: Path) -> bool:
    """True when *path* exists and parses as a DICOM file whose Pixel Data is complete (a rerun may skip it).

    A crash of the machine (not of the process) can leave a renamed output shorter than written, or empty: it then
    is not DICOM, or ends inside an element or before Pixel Data, or has a Pixel Data length beyond the file's end
    (:func:`cxrlab.deid.engine.read_header` checks the lengths). Every output carries Pixel Data (a source without
    it fails), so an output without it is never complete.
    """
    if not path.exists() or not is_dicom(path):
        return False
    try:
        _ds, span = read_header(path)
    except FileError:
        return False
    return span is not None


def _one(path: Path, out: Path, profile: Profile, key: bytes, id_scheme: str, text: TextOptions | None) -> FileOutcome:
    """Worker: de-identify *path* into a staged output unless its output already exists (never raises).

    For an output that exists (or an image held for review), the mapping is recomputed from the header, so a
    rerun restores rows that a crash lost.
    """
    try:
        if not is_dicom(path):
            return FileOutcome("not_dicom")
        header = read_header(path)
        ds = header[0]
        uid = str(ds.get("SOPInstanceUID") or getattr(ds.file_meta, "MediaStorageSOPInstanceUID", "") or "").strip()
        if uid:
            image_id = image_id_for(uid, key, id_scheme)
            done = None
            if output_complete(out / f"{image_id}.dicom"):
                done = "already"
            elif text is not None and (text.review_dir / f"{image_id}.json").exists():
                done = "review"
            if done:
                known = deidentify_dataset(ds, profile=profile, key=key, id_scheme=id_scheme)
                return FileOutcome(done, known.image_id, original=known.original_sop, uid_map=known.uid_map)
        result = deidentify_file(path, out, profile=profile, key=key, id_scheme=id_scheme, text=text, header=header,
                                 stage=True)
        outcome = {"review": "review", "redact": "redacted"}.get(result.text_decision or "", "deidentified")
        return FileOutcome(outcome, result.image_id, original=result.original_sop, uid_map=result.uid_map,
                           redacted_boxes=result.redacted_boxes, reencoded_to=result.reencoded_to,
                           staged=result.staged)
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
    text: TextOptions | None = None,
    sync: bool = False,
) -> StageReport:
    """De-identify every DICOM file below *src* into *out*.

    With *text*, burned-in text is detected: confirmed text is redacted (recorded in the mapping store's
    ``redactions`` table), doubtful images go to ``text.review_dir`` and get no output. With *sync*, the call
    returns only when every output is on disk.

    Every :data:`PUBLISH_EVERY` results the parent commits their mapping rows (and redactions), then renames
    their staged outputs into place: an output is never visible before its rows are committed.

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
    with exclusive_lock(lock, "de-identification"):
        stale = remove_stale_temporaries(out)
        if stale:
            report.notes.append(f"removed {stale} temporary file(s) left by an interrupted run")
        seen: set[str] = set()
        rows: list[dict[str, str]] = []
        redactions: list[Redaction] = []
        staged: list[tuple[Path, Path]] = []

        def publish() -> None:
            with transaction(engine) as session:
                record_mapping(session, rows)
                for redaction in redactions:
                    session.merge(redaction)
            for tmp, dst in staged:  # only once their rows are committed
                publish_staged(tmp, dst)
            rows.clear()
            redactions.clear()
            staged.clear()

        chunk = 1 if text is not None else CHUNK_HEADER_ONLY
        results = (executor or Executor()).map(_one, files, out, profile, key, id_scheme, text, chunksize=chunk)
        for n, (path, res) in enumerate(results, 1):
            if res.image_id in seen and res.outcome in ("deidentified", "redacted", "already"):
                # Two inputs share a SOP Instance UID: the first in folder order wins, whatever the timing.
                if res.staged is not None:
                    res.staged.unlink(missing_ok=True)
                res.outcome = "duplicate"
            report.counts[res.outcome] += 1
            if res.outcome == "failed":
                report.problems.append((str(path), res.reason))
            if res.image_id:
                seen.add(res.image_id)
            if res.outcome in ("deidentified", "redacted", "review", "already") and res.original:
                rows.extend(mapping_rows(res.original, res.image_id, res.uid_map))
            if res.outcome == "redacted":
                redactions.append(Redaction(image_id=res.image_id, boxes=[list(b) for b in res.redacted_boxes],
                                            transfer_syntax=res.reencoded_to or "", reencoded=bool(res.reencoded_to)))
            if res.outcome in ("deidentified", "redacted") and res.staged is not None:
                staged.append((res.staged, out / f"{res.image_id}.dicom"))
            if n % PUBLISH_EVERY == 0:
                publish()
            if on_progress:
                on_progress(n, len(files))
        publish()
        if sync:
            os.sync()
    engine.dispose()
    report.seconds = time.perf_counter() - t0
    return report
