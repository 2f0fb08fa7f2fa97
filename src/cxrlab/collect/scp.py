"""Receiving instances: the spool, the single catalog writer, and the C-STORE SCP of ``cxrlab collect listen``.

Every instance that reaches cxrlab over the network (C-STORE from a modality, C-GET or C-MOVE sub-operations, a
WADO-RS part) takes one path, :meth:`Receiver.store`:

1. its bytes are written to a spool file ``incoming/<run>/<origin>/<n>.dcm`` (temporary name, then rename);
2. the spool file goes through ingest's own check, :func:`cxrlab.ingest.check_file` (header, pixel data,
   transfer syntax: the first half of ``ingest folder``'s :func:`~cxrlab.ingest.probe_file`);
3. the sender gets its answer (success, or a failure status for a bad instance);
4. a single writer thread hashes each checked file into the content-addressed ``raw/`` store (a hard link:
   :func:`cxrlab.ingest.store_raw`, the second half of ``probe_file``), records the results in batches through
   :func:`cxrlab.ingest.record_result` (dedupe by SOP Instance UID, quarantine with a reason), marks the matching
   query rows done, commits, and only then deletes the spool files.

So the spool is the journal: after ``kill -9`` the next receiver in the workspace records what the dead one had
acknowledged but not committed (:meth:`Receiver.recover`). A run's spool folder is locked while its receiver
lives (``fcntl`` locks die with their process), so several receivers (a listener and a collect) share a workspace.
"""

from __future__ import annotations

import fcntl
import hashlib
import itertools
import logging
import os
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from pydicom.filereader import read_file_meta_info
from pynetdicom import AE, _config, evt
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.transport import ThreadedAssociationServer
from sqlalchemy import update

from cxrlab.catalog.models import CollectInstance, CollectState
from cxrlab.catalog.workspace import Workspace
from cxrlab.collect.peer import NO_DELAY, check_aet
from cxrlab.dicom.io import SUPPORTED_TRANSFER_SYNTAXES
from cxrlab.errors import CxrlabError
from cxrlab.ingest import IngestResult, check_file, record_result, store_raw
from cxrlab.runtime.files import atomic_path, atomic_write_text, iter_files
from cxrlab.runtime.report import StageReport

__all__ = [
    "STATUS_CANNOT_UNDERSTAND",
    "STATUS_OUT_OF_RESOURCES",
    "Receiver",
    "accepted_transfer_syntaxes",
    "receive_to_files",
    "start_store_scp",
]

log = logging.getLogger(__name__)

#: C-STORE failure statuses (PS3.4 Table B.2-1): "Error: Cannot understand" and "Refused: Out of Resources".
STATUS_CANNOT_UNDERSTAND = 0xC000
STATUS_OUT_OF_RESOURCES = 0xA700
#: Results recorded per catalog transaction (at most; fewer when the queue runs dry).
BATCH = 64
SPOOL = "incoming"


def accepted_transfer_syntaxes() -> list[str]:
    """The transfer syntaxes cxrlab's decoders read (:data:`cxrlab.dicom.io.SUPPORTED_TRANSFER_SYNTAXES`),
    uncompressed first (an SCP accepts the first one it supports of those proposed, PS3.8 9.3.3.2)."""
    return list(SUPPORTED_TRANSFER_SYNTAXES)


@dataclass
class _Item:
    path: Path
    result: IngestResult
    origin: str
    sop_uid: str
    label: str


class Receiver:
    """The spool and the single catalog writer of one receiving run (see the module docstring).

    Parameters
    ----------
    ws : Workspace
        Where the instances go.
    report : StageReport
        Counts ``ingested``, ``already_ingested``, ``duplicate``, ``quarantined``; problems name the origin and
        the instance's number in this run, never a value from the file.
    on_recorded : callable, optional
        Called from the writer thread as ``on_recorded(n)`` after each commit of *n* results.
    """

    def __init__(
        self, ws: Workspace, report: StageReport, *, on_recorded: Callable[[int], None] | None = None
    ) -> None:
        self.ws = ws
        self.report = report
        self.on_recorded = on_recorded
        self._key = ws.secret_key()
        self._raw = ws.path("raw")
        self._run = ws.path(SPOOL, uuid.uuid4().hex)
        self._queue: queue.Queue[_Item | None] = queue.Queue()
        self._seen: set[str] = set()
        self._seq = itertools.count(1)
        self._origins: dict[str, Path] = {}
        self._guard = threading.Lock()
        self._thread: threading.Thread | None = None
        self._lock_fh = None
        self._old_tempdir: str | None = None
        self.error: str | None = None

    # --- life cycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> Receiver:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Lock this run's spool folder, record what dead runs left in theirs, start the writer thread.

        While the receiver lives, the process's temporary folder (:data:`tempfile.tempdir`) is the run's
        ``.tmp/``: pynetdicom writes each incoming data set there (:func:`receive_to_files`), so a killed
        receiver leaves no partial instance, and no PHI, outside the workspace, the next receiver removes it with
        the dead run's folder, and the finished file is renamed into the spool, never copied.
        """
        self._run.mkdir(parents=True, exist_ok=True)
        self._lock_fh = open(self._run / ".lock", "a+b")  # noqa: SIM115 - held for the receiver's life
        fcntl.lockf(self._lock_fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        tmp = self._run / ".tmp"
        tmp.mkdir(exist_ok=True)
        self._old_tempdir, tempfile.tempdir = tempfile.tempdir, str(tmp)
        self._thread = threading.Thread(target=self._write_loop, name="cxrlab-receiver", daemon=True)
        self._thread.start()
        self.recover()

    def close(self) -> None:
        """Record everything queued, stop the writer thread and remove this run's (empty) spool folder."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join()
        self._thread = None
        if tempfile.tempdir == str(self._run / ".tmp"):
            tempfile.tempdir = self._old_tempdir
        shutil.rmtree(self._run / ".tmp", ignore_errors=True)
        if not any(self._run.rglob("*.dcm")):
            shutil.rmtree(self._run, ignore_errors=True)
        if self._lock_fh is not None:
            self._lock_fh.close()
            self._lock_fh = None

    def flush(self) -> None:
        """Wait until every instance stored so far is recorded (committed) in the catalog.

        Raises
        ------
        CxrlabError
            The writer could not commit (the catalog is unreachable); the spool keeps the instances for the next
            run.
        """
        self._queue.join()
        if self.error:
            raise CxrlabError(self.error)

    def recover(self) -> int:
        """Queue the spool files of runs whose receiver is dead (killed before it committed them); return how
        many. Called by :meth:`start`."""
        spool = self.ws.path(SPOOL)
        found = 0
        for run in sorted(p for p in spool.iterdir() if p.is_dir() and p != self._run):
            try:
                fh = open(run / ".lock", "a+b")  # noqa: SIM115 - closed below
            except OSError:
                continue
            try:
                fcntl.lockf(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:  # its receiver is alive
                fh.close()
                continue
            for origin_dir in sorted(p for p in run.iterdir() if p.is_dir() and not p.name.startswith(".")):
                lines = (origin_dir / "ORIGIN").read_text().splitlines() if (origin_dir / "ORIGIN").is_file() else []
                origin = lines[0].strip() if lines and lines[0].strip() else "unknown"
                peer = lines[1].strip() if len(lines) > 1 and lines[1].strip() else origin
                for path in iter_files(origin_dir):
                    if path.suffix != ".dcm":
                        continue
                    n = next(self._seq)
                    target = self._origin_dir(origin, peer) / f"{n:08d}.dcm"
                    os.replace(path, target)
                    self._probe_and_queue(target, origin, _sop_of(target), f"{peer} #{n} (recovered)")
                    found += 1
            shutil.rmtree(run, ignore_errors=True)
            fh.close()
        if found:
            self.report.notes.append(f"recorded {found} instance(s) received by an interrupted run")
        return found

    # --- receiving -------------------------------------------------------------------------------------------

    def store(
        self, data: bytes | Path | Callable[[Path], None], *, origin: str, sop_uid: str, peer: str | None = None
    ) -> int:
        """Spool one instance, check it, and return the C-STORE status to answer (PS3.4 B.2.3).

        Parameters
        ----------
        data : bytes, Path or callable
            The instance in the DICOM File Format (preamble, file meta, data set): its bytes, a complete file that
            is moved into the spool (renamed when on the same filesystem, else copied; pynetdicom's received
            file, :func:`store_handler`), or a function that writes it to the path it is given.
        origin : str
            Where it comes from, for the catalog (:attr:`~cxrlab.catalog.models.Image.origin`): ``pacs
            AE@host:port study <UID>``, ``listen AE@address``, ``dicomweb URL study <UID>``.
        sop_uid : str
            Its SOP Instance UID (from the C-STORE request), to mark the query row done.
        peer : str, optional
            How logs, the report and the quarantine name the sender (default: *origin*); never a UID.

        Returns
        -------
        int
            ``0x0000`` when the instance is usable and in ``raw/``; :data:`STATUS_CANNOT_UNDERSTAND` when it is not
            (it is quarantined with the reason); :data:`STATUS_OUT_OF_RESOURCES` when it cannot be written.
        """
        n = next(self._seq)
        peer = peer or origin
        path = self._origin_dir(origin, peer) / f"{n:08d}.dcm"
        try:
            with atomic_path(path) as tmp:
                if isinstance(data, Path):
                    _move(data, tmp)
                elif callable(data):
                    data(tmp)
                else:
                    with open(tmp, "wb") as fh:
                        fh.write(data)
        except OSError as exc:
            log.error("%s #%d: not written (%s)", peer, n, exc.strerror or type(exc).__name__)
            return STATUS_OUT_OF_RESOURCES
        result = self._probe_and_queue(path, origin, sop_uid, f"{peer} #{n}")
        return 0x0000 if result.outcome == "ok" else STATUS_CANNOT_UNDERSTAND

    def _probe_and_queue(self, path: Path, origin: str, sop_uid: str, label: str) -> IngestResult:
        """Check the instance (before the sender gets its answer); the writer thread stores it in ``raw/``."""
        result = check_file(path, self._key)
        if result.outcome == "not_dicom":
            result = IngestResult(result.path, "error", reason="not a DICOM data set")
        if result.outcome != "ok":
            log.warning("%s: refused (%s)", label, result.reason)
        self._queue.put(_Item(path, result, origin, sop_uid, label))
        return result

    def _origin_dir(self, origin: str, peer: str) -> Path:
        """This run's spool folder for *origin*; its ``ORIGIN`` file keeps the origin and the peer's name for
        :meth:`recover`."""
        with self._guard:
            folder = self._origins.get(origin)
            if folder is None:
                folder = self._run / hashlib.sha256(origin.encode()).hexdigest()[:16]
                folder.mkdir(parents=True, exist_ok=True)
                atomic_write_text(folder / "ORIGIN", f"{origin}\n{peer}\n")
                self._origins[origin] = folder
            return folder

    # --- the writer ------------------------------------------------------------------------------------------

    def _write_loop(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            batch: list[_Item] = []
            while item is not None:
                batch.append(item)
                if len(batch) >= BATCH:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            stopping = item is None
            if batch:
                self._record(batch)
            for _ in range(len(batch) + (1 if stopping else 0)):
                self._queue.task_done()

    def _record(self, batch: Iterable[_Item]) -> None:
        batch = list(batch)
        for it in batch:  # hash and link off the network's path (the sender already has its answer)
            it.result = store_raw(it.result, self._raw, link=True)
            if it.result.outcome != "ok":
                log.warning("%s: not stored (%s)", it.label, it.result.reason)
        try:
            with self.ws.transaction() as session:
                for it in batch:
                    outcome = record_result(self.ws, session, it.result, self.report, self._seen, origin=it.origin,
                                            source=it.label)
                    state = CollectState.FAILED if outcome == "quarantined" else CollectState.DONE
                    if it.sop_uid:
                        session.execute(update(CollectInstance)
                                        .where(CollectInstance.sop_instance_uid == it.sop_uid,
                                               CollectInstance.state == CollectState.PENDING)
                                        .values(state=state))
        except Exception as exc:  # noqa: BLE001 - the spool keeps the instances; the next run records them
            self.error = f"cannot record received instances in the catalog ({type(exc).__name__})"
            log.error(self.error)
            return
        for it in batch:
            it.path.unlink(missing_ok=True)
        if self.on_recorded:
            self.on_recorded(len(batch))


def _move(src: Path, dst: Path) -> None:
    """Rename *src* to *dst* (one filesystem), else copy it; *dst* gets the mode of cxrlab's files (0644)."""
    try:
        os.replace(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)


def _sop_of(path: Path) -> str:
    """The SOP Instance UID of a spool file's meta (PS3.10 7.1), or "" when it cannot be read."""
    try:
        return str(read_file_meta_info(path).get("MediaStorageSOPInstanceUID", "") or "")
    except Exception:  # noqa: BLE001 - a bad file is quarantined by the probe
        return ""


def add_storage_contexts(ae: AE) -> None:
    """Accept every storage SOP class (PS3.4 Annex B) in every transfer syntax the decoders read."""
    syntaxes = accepted_transfer_syntaxes()
    for cx in AllStoragePresentationContexts:
        ae.add_supported_context(cx.abstract_syntax, syntaxes)


def receive_to_files() -> None:
    """Have pynetdicom write each received C-STORE data set straight to a file as its fragments arrive
    (``_config.STORE_RECV_CHUNKED_DATASET``), which :func:`store_handler` then moves into the spool: no copy of the
    instance is assembled in memory, which about doubles the rate of a receiver on loopback (``bench/collect.py``).
    A process-wide pynetdicom setting; the handler reads either form."""
    _config.STORE_RECV_CHUNKED_DATASET = True


def store_handler(
    receiver: Receiver, origin_of: Callable[[Event], str], peer_of: Callable[[Event], str] | None = None
) -> Callable[[Event], int]:
    """An ``EVT_C_STORE`` handler that hands each instance to *receiver*, undecoded: the file pynetdicom wrote
    (:func:`receive_to_files`), or the encoded bytes.

    *origin_of(event)* gives the catalog's origin, *peer_of(event)* the sender's name in logs (default: the
    origin)."""

    def handle(event: Event) -> int:
        received = getattr(event.request, "_dataset_path", None)  # Event.dataset_path, without its exception
        data = received if isinstance(received, Path) else event.encoded_dataset()
        return receiver.store(data, origin=origin_of(event), sop_uid=str(event.request.AffectedSOPInstanceUID or ""),
                              peer=peer_of(event) if peer_of else None)

    return handle


def start_store_scp(
    receiver: Receiver,
    *,
    aet: str,
    port: int,
    bind: str = "0.0.0.0",
    allow_aets: Iterable[str] = (),
    origin_of: Callable[[Event], str] | None = None,
    peer_of: Callable[[Event], str] | None = None,
    timeout: float = 30.0,
    max_associations: int = 10,
) -> ThreadedAssociationServer:
    """Start a C-STORE SCP (and C-ECHO) in background threads; stop it with ``server.shutdown()``.

    Parameters
    ----------
    aet : str
        The AE title it answers to (a caller naming another is rejected: "called AE title not recognised").
    allow_aets : iterable of str
        When given, only these calling AE titles may associate (others: "calling AE title not recognised",
        PS3.8 9.3.4).
    origin_of, peer_of : callable, optional
        ``origin_of(event)`` for the catalog, ``peer_of(event)`` for logs; default ``listen <calling
        AE>@<address>`` for both.

    Raises
    ------
    CxrlabError
        The port cannot be bound (in use, or a privileged port).
    """
    from pynetdicom.sop_class import Verification

    ae = AE(ae_title=check_aet(aet))
    ae.require_called_aet = True
    allowed = [check_aet(a, "allowed AE title") for a in allow_aets]
    if allowed:
        ae.require_calling_aet = allowed
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = timeout
    ae.maximum_associations = max_associations
    # 0 = no limit on the PDUs the peer sends (PS3.8 D.1); larger PDUs mean fewer fragments to reassemble.
    ae.maximum_pdu_size = 0
    add_storage_contexts(ae)
    ae.add_supported_context(Verification)
    receive_to_files()
    origin_of = origin_of or (lambda e: f"listen {e.assoc.requestor.ae_title}@{e.assoc.requestor.address}")
    handlers = [(evt.EVT_C_STORE, store_handler(receiver, origin_of, peer_of)), NO_DELAY]
    try:
        return ae.start_server((bind, port), block=False, evt_handlers=handlers)
    except OSError as exc:
        raise CxrlabError(f"cannot listen on {bind}:{port} ({exc.strerror or type(exc).__name__})") from None
