"""Real DICOM peers for the collect tests (and ``bench/collect.py``): Orthanc (Debian ``orthanc`` +
``orthanc-dicomweb``) and dcmtk's ``dcmqrscp``, each started on free 127.0.0.1 ports with a generated
configuration, plus small phantoms (the suite's DICOM writer, :mod:`tests.support.dicom`) whose study, series,
date, modality and body part the test chooses.

Anything missing (the binaries, the DICOMweb plugin) skips the tests that need it, with the package to install.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
import requests

from tests.support.dicom import CR_IMAGE_STORAGE, DX_FOR_PRESENTATION, dicom_dataset
from tests.support.server import free_port

__all__ = [
    "CXRLAB_AET",
    "DCMQRSCP",
    "Dcmqrscp",
    "Orthanc",
    "Phantom",
    "free_port",
    "orthanc_problem",
    "start_dcmqrscp",
    "start_orthanc",
    "write_phantom",
]

ORTHANC = Path(os.environ.get("CXRLAB_ORTHANC", "/usr/sbin/Orthanc"))
DCMQRSCP = Path("/usr/bin/dcmqrscp")
#: The AE title the peers know cxrlab by.
CXRLAB_AET = "CXRLAB"
READY_TIMEOUT = 30.0
#: dcmtk (in Orthanc and dcmqrscp) leaves Nagle's algorithm on unless told: every request/answer exchange then
#: waits for a delayed TCP acknowledgement (about 40 ms on Linux). ``TCP_NODELAY=1`` turns it off at run time.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
#: Planted in every phantom: no log line, error message or report may ever show them.
PHI = {"PatientName": "PLANTED^SECRET^NAME", "PatientID": "PLANTED-PID-8841", "InstitutionName": "PLANTED CLINIC",
       "ReferringPhysicianName": "PLANTED^DOCTOR", "AccessionNumber": "PLANTACC77"}


def _dicomweb_plugin() -> Path | None:
    for pattern in ("/usr/share/orthanc/plugins/libOrthancDicomWeb.so", "/usr/lib/orthanc/libOrthancDicomWeb.so*"):
        for found in sorted(glob.glob(pattern)):
            return Path(found)
    return None


def orthanc_problem() -> str | None:
    """Why Orthanc cannot be started here (None: it can)."""
    if not ORTHANC.is_file():
        return f"{ORTHANC} not found (apt-get install orthanc orthanc-dicomweb)"
    if _dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (apt-get install orthanc-dicomweb)"
    return None


# --- phantoms ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phantom:
    """One small instance placed in a chosen study and series."""

    study: str
    series: str
    date: str = "20200315"
    modality: str = "CR"
    body_part: str = "CHEST"
    rows: int = 64


#: Storage SOP class of a phantom by modality (PS3.4 B.5).
_CLASS_OF = {"CR": CR_IMAGE_STORAGE, "DX": DX_FOR_PRESENTATION, "CT": "1.2.840.10008.5.1.4.1.1.2"}


def write_phantom(path: Path, p: Phantom, *, seed: int = 0) -> Path:
    """A valid CR/DX/CT file (the suite's :func:`~tests.support.dicom.dicom_dataset`) in study *p.study*, series
    *p.series*, with the planted :data:`PHI`."""
    ds = dicom_dataset(rows=p.rows, columns=p.rows, modality=p.modality, body_part=p.body_part, seed=seed,
                       sop_class=_CLASS_OF[p.modality], patient_name=PHI["PatientName"], patient_id=PHI["PatientID"])
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.StudyDate = p.study, p.series, p.date
    ds.InstitutionName = PHI["InstitutionName"]
    ds.ReferringPhysicianName = PHI["ReferringPhysicianName"]
    ds.AccessionNumber = PHI["AccessionNumber"]
    path.parent.mkdir(parents=True, exist_ok=True)
    pydicom.dcmwrite(path, ds, enforce_file_format=True)
    return path


# --- Orthanc -------------------------------------------------------------------------------------------------


@dataclass
class Orthanc:
    """A running Orthanc: its DICOM and HTTP ports, its log, and a few REST helpers."""

    aet: str
    dicom_port: int
    http_port: int
    root: Path
    proc: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb(self) -> str:
        return f"{self.url}/dicom-web"

    def upload(self, paths: Iterable[Path]) -> int:
        """POST each file to ``/instances``; return how many Orthanc stored."""
        n = 0
        with requests.Session() as s:
            for path in paths:
                r = s.post(f"{self.url}/instances", data=Path(path).read_bytes(), timeout=60)
                r.raise_for_status()
                n += 1
        return n

    def study_id(self, study_uid: str) -> str | None:
        r = requests.post(f"{self.url}/tools/lookup", data=study_uid, timeout=30)
        r.raise_for_status()
        return next((x["ID"] for x in r.json() if x["Type"] == "Study"), None)

    def delete_study(self, study_uid: str) -> None:
        sid = self.study_id(study_uid)
        assert sid is not None, "no such study in Orthanc"
        requests.delete(f"{self.url}/studies/{sid}", timeout=30).raise_for_status()

    def clear(self) -> None:
        """Delete every patient (and so every instance)."""
        for pid in requests.get(f"{self.url}/patients", timeout=30).json():
            requests.delete(f"{self.url}/patients/{pid}", timeout=30).raise_for_status()

    def instance_uids(self) -> set[str]:
        """The SOP Instance UIDs Orthanc holds."""
        out = set()
        for iid in requests.get(f"{self.url}/instances", timeout=30).json():
            tags = requests.get(f"{self.url}/instances/{iid}/simplified-tags", timeout=30).json()
            out.add(tags["SOPInstanceUID"])
        return out

    def stop(self) -> None:
        """Kill it (its storage is thrown away with the test's folder; a clean shutdown takes seconds)."""
        self.proc.kill()
        self.proc.wait()


def start_orthanc(root: Path, *, modalities: dict[str, tuple[str, int]] | None = None, aet: str = "ORTHANC",
                  storage: Path | None = None, users: dict[str, str] | None = None,
                  settings: dict | None = None) -> Orthanc:
    """Start Orthanc with a generated configuration on free ports.

    Parameters
    ----------
    modalities : dict, optional
        AE title -> (host, port) of the peers it knows (C-FIND, C-GET, C-MOVE and C-STORE allowed); default: cxrlab
        (:data:`CXRLAB_AET`) without a C-MOVE port. Unknown callers are refused at association time.
    storage : path, optional
        Where it stores instances and its index (default: ``root/storage``).
    users : dict, optional
        HTTP basic users and passwords: when given, the REST API and DICOMweb need one of them.
    settings : dict, optional
        More configuration options (they win over the ones above).
    """
    problem = orthanc_problem()
    if problem:
        pytest.skip(problem)
    root.mkdir(parents=True, exist_ok=True)
    storage = storage or root / "storage"
    http_port, dicom_port = free_port(), free_port()
    known = modalities if modalities is not None else {CXRLAB_AET: ("127.0.0.1", 9)}
    config = {
        "Name": "cxrlab-test", "StorageDirectory": str(storage), "IndexDirectory": str(storage),
        "HttpPort": http_port, "DicomPort": dicom_port, "DicomAet": aet,
        "RemoteAccessAllowed": False, "AuthenticationEnabled": bool(users), "RegisteredUsers": users or {},
        "DicomCheckCalledAet": True, "DicomCheckModalityHost": False,
        # Only the declared modalities may associate: an unknown calling AE title is rejected (PS3.8 9.3.4).
        "DicomAlwaysAllowEcho": False, "DicomAlwaysAllowStore": False, "DicomAlwaysAllowFind": False,
        "DicomAlwaysAllowGet": False, "DicomAlwaysAllowMove": False,
        "DicomModalities": {name.lower(): {"AET": name, "Host": host, "Port": port}
                            for name, (host, port) in known.items()},
        "Plugins": [str(_dicomweb_plugin())], "DicomWeb": {"Enable": True, "Root": "/dicom-web/"},
        "StorageCompression": False, "ConcurrentJobs": 1, "HttpThreadsCount": 4, "DicomScpTimeout": 30,
        "StableAge": 1, "SaveJobs": False,
        **(settings or {}),
    }
    cfg = root / "orthanc.json"
    cfg.write_text(json.dumps(config, indent=1))
    log = root / "orthanc.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(ORTHANC), str(cfg)], stdout=fh, stderr=subprocess.STDOUT, cwd=root, env=DCMTK_ENV)
    server = Orthanc(aet, dicom_port, http_port, root, proc, log)
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        try:
            if requests.get(f"{server.url}/system", timeout=2).status_code in (200, 401) and _listening(dicom_port):
                return server
        except requests.RequestException:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"Orthanc did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@contextmanager
def orthanc(root: Path, **kwargs: object) -> Iterator[Orthanc]:
    """:func:`start_orthanc`, stopped at the end."""
    server = start_orthanc(root, **kwargs)
    try:
        yield server
    finally:
        server.stop()


# --- dcmqrscp ------------------------------------------------------------------------------------------------


@dataclass
class Dcmqrscp:
    """A running dcmqrscp (dcmtk's query/retrieve SCP) with one storage area, answering to :attr:`aet`."""

    aet: str
    port: int
    root: Path
    proc: subprocess.Popen
    log: Path
    files: list[Path] = field(default_factory=list)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def start_dcmqrscp(root: Path, files: Iterable[Path], *, move_port: int = 9, aet: str = "DCMQR") -> Dcmqrscp:
    """Index *files* into a fresh storage area (``dcmqridx``) and serve it with dcmqrscp on a free port.

    cxrlab is known as :data:`CXRLAB_AET` at 127.0.0.1:*move_port* (its C-MOVE destination).
    """
    if not DCMQRSCP.is_file() or shutil.which("dcmqridx") is None:
        pytest.skip("dcmtk's dcmqrscp/dcmqridx not found (apt-get install dcmtk)")
    store = root / "store"
    store.mkdir(parents=True)
    copied = []
    for i, f in enumerate(files):
        dst = store / f"in{i:04d}.dcm"
        shutil.copyfile(f, dst)
        copied.append(dst)
    port = free_port()
    cfg = root / "dcmqrscp.cfg"
    cfg.write_text(
        f"NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n\n"
        "HostTable BEGIN\n"
        f"cxrlab = ({CXRLAB_AET}, localhost, {move_port})\n"  # dcmqrscp matches the peer by its name

        "HostTable END\n\nVendorTable BEGIN\nVendorTable END\n\n"
        "AETable BEGIN\n"
        f"{aet} {store} RW (200, 1024mb) cxrlab\n"
        "AETable END\n"
    )
    subprocess.run(["dcmqridx", str(store), *map(str, copied)], check=True, capture_output=True, timeout=120)
    log = root / "dcmqrscp.log"
    with open(log, "wb") as fh:
        proc = subprocess.Popen([str(DCMQRSCP), "-c", str(cfg), str(port)], stdout=fh,
                                stderr=subprocess.STDOUT, cwd=root, env=DCMTK_ENV)
    server = Dcmqrscp(aet, port, root, proc, log, copied)
    deadline = time.monotonic() + READY_TIMEOUT
    while not _listening(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise RuntimeError(f"dcmqrscp did not start:\n{log.read_text(errors='replace')[-2000:]}")
        time.sleep(0.1)
    return server
