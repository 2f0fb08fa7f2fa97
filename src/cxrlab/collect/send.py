"""Sending DICOM objects back: C-STORE to a PACS (PS3.4 Annex B) or STOW-RS to a DICOMweb server (PS3.18 10.5),
one status per file (``cxrlab send pacs``, ``cxrlab send dicomweb``).

The objects are typically the Structured Reports of ``cxrlab export TAG --format sr``; any DICOM file goes.
"""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import requests
from pydicom.errors import InvalidDicomError

from cxrlab.collect.dicomweb import DicomwebPeer
from cxrlab.collect.peer import Peer, PeerError, status_text
from cxrlab.dicom.io import is_dicom
from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import iter_files
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["send_dicomweb", "send_pacs"]

#: Presentation contexts one association may propose (PS3.8 9.3.2.2: context ids are odd numbers 1-255).
MAX_CONTEXTS = 128


def _dicom_files(folder: Path, report: StageReport) -> list[tuple[Path, str, str]]:
    """``(path, SOP Class UID, Transfer Syntax UID)`` of every DICOM file below *folder* (others are skipped)."""
    folder = Path(folder)
    if not folder.exists():
        raise CxrlabError(f"{folder}: no such file or folder")
    files = []
    for path in [folder] if folder.is_file() else iter_files(folder):
        if not is_dicom(path):
            report.counts["not_dicom"] += 1
            report.skipped.append((str(path), "not_dicom"))
            continue
        try:
            meta = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
            files.append((path, str(meta.file_meta.MediaStorageSOPClassUID or meta.SOPClassUID),
                          str(meta.file_meta.TransferSyntaxUID)))
        except (InvalidDicomError, AttributeError, OSError, ValueError) as exc:
            report.counts["unreadable"] += 1
            report.problems.append((str(path), f"cannot read its file meta ({type(exc).__name__})"))
    return files


def send_pacs(
    folder: Path, peer: Peer, *, on_progress: ProgressCallback | None = None
) -> StageReport:
    """C-STORE every DICOM file below *folder* to *peer*, each in the transfer syntax it is stored in.

    Returns
    -------
    StageReport
        Counts ``sent``, ``warning 0xB...``, ``failed 0x....``; every file that failed is in ``problems`` with
        the peer's status.

    Raises
    ------
    PeerError
        The peer cannot be reached, rejects the association, or drops it.
    """
    t0 = time.perf_counter()
    report = StageReport("send")
    files = _dicom_files(folder, report)
    contexts = sorted({(sop, ts) for _, sop, ts in files})
    for start in range(0, len(contexts), MAX_CONTEXTS):
        chunk = set(contexts[start:start + MAX_CONTEXTS])
        ae = peer.new_ae()
        for sop, ts in sorted(chunk):
            ae.add_requested_context(sop, ts)
        batch = [f for f in files if (f[1], f[2]) in chunk]
        with peer.associate(ae) as assoc:
            for path, _sop, _ts in batch:
                _store_one(assoc, peer, path, report)
                if on_progress:
                    on_progress(report.total, len(files))
    report.seconds = time.perf_counter() - t0
    return report


def _store_one(assoc, peer: Peer, path: Path, report: StageReport) -> None:  # noqa: ANN001 - Association
    try:
        ds = pydicom.dcmread(path)
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        report.counts["unreadable"] += 1
        report.problems.append((str(path), f"cannot read ({type(exc).__name__})"))
        return
    status = assoc.send_c_store(ds)
    code = status.get("Status") if status else None
    if code is None:
        raise peer.lost("C-STORE")
    if code == 0x0000:
        report.counts["sent"] += 1
    elif code & 0xF000 == 0xB000:
        report.counts[f"warning {status_text(code)}"] += 1
    else:
        report.counts[f"failed {status_text(code)}"] += 1
        report.problems.append((str(path), f"C-STORE refused with status {status_text(code)}"))


def send_dicomweb(
    folder: Path, peer: DicomwebPeer, *, on_progress: ProgressCallback | None = None
) -> StageReport:
    """STOW-RS every DICOM file below *folder* to *peer*, one request per file (so each file has its status).

    Returns
    -------
    StageReport
        Counts ``sent`` and ``failed HTTP nnn`` / ``failed 0x....`` (the Failure Reason of the STOW-RS response,
        PS3.18 Table 10.5.3-1); every failed file is in ``problems``.

    Raises
    ------
    PeerError
        The server cannot be reached at all (a refused connection or a timeout on the first file).
    """
    t0 = time.perf_counter()
    report = StageReport("send")
    files = _dicom_files(folder, report)
    client = peer.client()
    for done, (path, _sop, _ts) in enumerate(files, start=1):
        try:
            ds = pydicom.dcmread(path)
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
            report.counts["unreadable"] += 1
            report.problems.append((str(path), f"cannot read ({type(exc).__name__})"))
            continue
        try:
            answer = client.store_instances([ds])
        except requests.HTTPError as exc:
            code = exc.response.status_code if exc.response is not None else 0
            report.counts[f"failed HTTP {code}"] += 1
            report.problems.append((str(path), f"STOW-RS refused: HTTP {code}"))
            continue
        except requests.RequestException as exc:
            if report.counts["sent"] == 0:
                raise PeerError(f"{peer}: STOW-RS: cannot connect or no answer ({type(exc).__name__})") from None
            report.counts["failed network"] += 1
            report.problems.append((str(path), f"STOW-RS failed ({type(exc).__name__})"))
            continue
        failed = answer.get("FailedSOPSequence") if answer is not None else None
        if failed:
            reason = failed[0].get("FailureReason")
            text = status_text(int(reason)) if reason is not None else "no reason"
            report.counts[f"failed {text}"] += 1
            report.problems.append((str(path), f"STOW-RS refused with failure reason {text}"))
        else:
            report.counts["sent"] += 1
        if on_progress:
            on_progress(done, len(files))
    report.seconds = time.perf_counter() - t0
    return report
