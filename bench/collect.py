"""Benchmark DICOM receiving: ``cxrlab collect listen`` next to Orthanc's C-STORE SCP and a bare pynetdicom SCP,
then C-GET retrieval from Orthanc into a workspace (``cxrlab collect pacs``).

One run, same inputs for every receiver: ``--n`` (default 2000) CR phantoms of ``--min-size`` to ``--max-size``
pixels a side (default 2000-3000, uint16 noise, Explicit VR Little Endian, 8-18 MB each), two instances per
study, written into ``--workdir`` (default: a fresh folder under /tmp, deleted at the end unless ``--keep``).
dcmtk's ``storescu`` sends all of them over one association on loopback (after an untimed ``cat > /dev/null``
pass over the inputs: warm page cache) to each receiver in turn, each started fresh in its own process:

- ``cxrlab listen``: ``cxrlab collect listen`` into a fresh workspace; timed from the start of ``storescu`` until
  the listener, sent SIGTERM as soon as ``storescu`` returns, has committed everything to the catalog and exited
  (its count is checked);
- ``orthanc``: Debian's Orthanc with its default storage settings (``SyncStorageArea``: each file fsynced before
  the answer; 16 KiB PDUs) on a fresh storage folder; timed until ``storescu`` returns (Orthanc answers each
  C-STORE once the instance is stored and indexed);
- ``orthanc-nosync``: the same with ``SyncStorageArea`` off (no fsync per file, like the other receivers), shown
  for reference;
- ``bare pynetdicom``: an SCP that writes each received data set to a file and answers success, nothing else, the
  way pynetdicom's documentation writes one (``event.encoded_dataset()``): the same library and presentation
  contexts cxrlab uses, no checks, no catalog; timed until ``storescu`` returns (the target's reference);
- ``bare pynetdicom, chunked``: the same, with pynetdicom's ``STORE_RECV_CHUNKED_DATASET`` (each data set written
  to a file as its fragments arrive, then renamed), the receive method cxrlab uses: the floor of cxrlab's own
  design, shown for reference.

Then ``cxrlab collect pacs --method get`` retrieves everything from the loaded Orthanc into a fresh workspace
(C-FIND per study, C-GET per series; the whole command is timed, interpreter start included). MB are 10^6 bytes
of input files. Each receiver's output is deleted right after it is measured (disk use: about twice the input).
The dcmtk programs (``storescu``, Orthanc) run with ``TCP_NODELAY=1`` (dcmtk leaves Nagle's algorithm on unless
told; cxrlab turns it off on its own sockets), which every receiver benefits from alike.

Usage: ``python bench/collect.py [--n N] [--min-size PX] [--max-size PX] [--repeat R] [--receivers a,b,c]
[--workdir DIR] [--keep]``; exit status 1 when a target is missed (cxrlab >= 2x Orthanc, >= 0.8x bare).
Receivers: ``cxrlab``, ``orthanc``, ``orthanc-nosync``, ``bare``, ``bare-chunked``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.support.server import free_port  # noqa: E402 - after the path set-up above

CR = "1.2.840.10008.5.1.4.1.1.1"
PY = sys.executable
CLI = [PY, "-c", "from cxrlab.cli.main import main; main()"]
RECEIVERS = ("cxrlab", "orthanc", "orthanc-nosync", "bare", "bare-chunked")
TARGETS = (("orthanc", 2.0), ("bare", 0.8))

BARE_SCP = '''
import itertools, os, sys
from pathlib import Path
from pynetdicom import AE, _config, evt
from pynetdicom.presentation import AllStoragePresentationContexts
from pynetdicom.sop_class import Verification
from cxrlab.collect.scp import accepted_transfer_syntaxes

port, out, chunked = int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "chunked"
_config.STORE_RECV_CHUNKED_DATASET = chunked
ae = AE("BARE")
ae.maximum_pdu_size = 0
syntaxes = accepted_transfer_syntaxes()
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, syntaxes)
ae.add_supported_context(Verification)
seq = itertools.count()

def on_store(event):
    dest = out / f"{next(seq):08d}.dcm"
    if chunked:
        os.replace(event.dataset_path, dest)
    else:
        with open(dest, "wb") as fh:
            fh.write(event.encoded_dataset())
    return 0x0000

ae.start_server(("127.0.0.1", port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])
'''


@dataclass
class Row:
    name: str
    n: int
    mb: float
    seconds: float

    @property
    def mbps(self) -> float:
        return self.mb / self.seconds

    @property
    def ips(self) -> float:
        return self.n / self.seconds


# ------------------------------------------------------------------------------------------------- inputs


def make_inputs(folder: Path, n: int, lo: int, hi: int, seed: int = 0) -> int:
    """Write *n* CR phantoms (two per study); return their total size in bytes."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    pool = rng.integers(0, 4096, hi * hi + hi * 64, dtype=np.uint16)
    total = 0
    study = series = ""
    for i in range(n):
        if i % 2 == 0:
            study, series = generate_uid(), generate_uid()
        rows, cols = (int(x) for x in rng.integers(lo, hi + 1, 2))
        offset = int(rng.integers(0, pool.size - rows * cols))
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CR
        meta.MediaStorageSOPInstanceUID = sop = generate_uid()
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CR, sop
        ds.StudyInstanceUID, ds.SeriesInstanceUID = study, series
        ds.PatientName, ds.PatientID, ds.PatientSex, ds.PatientAge = f"Bench^{i // 2}", f"B{i // 2}", "F", "050Y"
        ds.StudyDate, ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "20240105", "CR", "CHEST", "PA"
        ds.SeriesNumber, ds.InstanceNumber = 1, i % 2 + 1
        ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, cols, 1, "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.PixelData = pool[offset:offset + rows * cols].tobytes()
        path = folder / f"{i:05d}.dcm"
        pydicom.dcmwrite(path, ds, enforce_file_format=True)
        total += path.stat().st_size
    return total


def warm(folder: Path) -> None:
    subprocess.run(f"cat {folder}/*.dcm > /dev/null", shell=True, check=True)


# ------------------------------------------------------------------------------------------------- peers


def wait_echo(port: int, aet: str, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + 60
    while subprocess.run(["echoscu", "-aet", "CXRLAB", "-aec", aet, "127.0.0.1", str(port)],
                         capture_output=True).returncode != 0:
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise RuntimeError(f"{aet} on port {port} did not start")
        time.sleep(0.2)


def storescu(folder: Path, port: int, aet: str) -> float:
    """Send every file of *folder* over one association; return the seconds it took."""
    t0 = time.perf_counter()
    done = subprocess.run(["storescu", "-aet", "CXRLAB", "-aec", aet, "--no-halt", "+sd", "127.0.0.1", str(port),
                           str(folder)], capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        raise RuntimeError(f"storescu to {aet} failed: {done.stderr[-500:]}")
    return seconds


def sync() -> None:
    subprocess.run(["sync"], check=False)


def run_cxrlab(inputs: Path, work: Path, n: int) -> float:
    ws = work / "ws"
    subprocess.run([*CLI, "init", str(ws)], check=True, capture_output=True)
    port = free_port()
    proc = subprocess.Popen([*CLI, "collect", "listen", "--port", str(port), "--aet", "CXRLAB", "--bind",
                             "127.0.0.1", "-w", str(ws)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_echo(port, "CXRLAB", proc)
        sync()
        t0 = time.perf_counter()
        storescu(inputs, port, "CXRLAB")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=3600)
        seconds = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        raise RuntimeError(f"cxrlab collect listen exited {proc.returncode}: {err[-500:]}")
    with sqlite3.connect(ws / "catalog.db") as db:
        got = db.execute("select count(*) from images").fetchone()[0]
    if got != n:
        raise RuntimeError(f"cxrlab catalog holds {got} images, {n} sent\n{out}\n{err[-500:]}")
    return seconds


def run_bare(inputs: Path, work: Path, n: int, *, chunked: bool = False) -> float:
    out = work / "bare"
    out.mkdir()
    script = work / "bare_scp.py"
    script.write_text(BARE_SCP)
    port = free_port()
    proc = subprocess.Popen([PY, str(script), str(port), str(out), "chunked" if chunked else "bytes"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_echo(port, "BARE", proc)
        sync()
        seconds = storescu(inputs, port, "BARE")
    finally:
        proc.terminate()
        proc.wait()
    got = len(list(out.iterdir()))
    if got != n:
        raise RuntimeError(f"the bare SCP wrote {got} files, {n} sent")
    return seconds


def start_orthanc_for_bench(work: Path, *, sync_storage: bool = True):  # noqa: ANN201 - support.orthanc.Orthanc
    import pytest
    from tests.support.orthanc import start_orthanc

    try:
        return start_orthanc(work / "orthanc", settings={"SyncStorageArea": sync_storage})
    except pytest.skip.Exception as exc:
        raise RuntimeError(f"Orthanc unavailable: {exc}") from None


def run_orthanc(inputs: Path, work: Path, n: int, *, then_get: bool, mb: float,
                sync_storage: bool = True) -> tuple[float, Row | None]:
    import requests

    server = start_orthanc_for_bench(work, sync_storage=sync_storage)
    try:
        wait_echo(server.dicom_port, server.aet)
        sync()
        seconds = storescu(inputs, server.dicom_port, server.aet)
        got = requests.get(f"{server.url}/statistics", timeout=60).json()["CountInstances"]
        if got != n:
            raise RuntimeError(f"Orthanc holds {got} instances, {n} sent")
        get_row = None
        if then_get:
            ws = work / "ws-get"
            subprocess.run([*CLI, "init", str(ws)], check=True, capture_output=True)
            sync()
            t0 = time.perf_counter()
            done = subprocess.run([*CLI, "collect", "pacs", "--host", "127.0.0.1", "--port", str(server.dicom_port),
                                   "--called-aet", server.aet, "-w", str(ws)], capture_output=True, text=True)
            get_seconds = time.perf_counter() - t0
            if done.returncode != 0:
                raise RuntimeError(f"cxrlab collect pacs failed: {done.stderr[-500:]}")
            with sqlite3.connect(ws / "catalog.db") as db:
                fetched = db.execute("select count(*) from images").fetchone()[0]
            if fetched != n:
                raise RuntimeError(f"C-GET brought {fetched} of {n}")
            get_row = Row("cxrlab collect pacs (C-GET from Orthanc)", n, mb, get_seconds)
        return seconds, get_row
    finally:
        server.stop()


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="instances (default 2000)")
    ap.add_argument("--min-size", type=int, default=2000)
    ap.add_argument("--max-size", type=int, default=3000)
    ap.add_argument("--repeat", type=int, default=1, help="runs per receiver; the median is kept")
    ap.add_argument("--receivers", default=",".join(RECEIVERS), help="subset of " + ",".join(RECEIVERS))
    ap.add_argument("--no-get", action="store_true", help="skip the C-GET retrieval")
    ap.add_argument("--workdir", type=Path)
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args(argv)
    for tool in ("storescu", "echoscu"):
        if shutil.which(tool) is None:
            print(f"{tool} not found (apt-get install dcmtk)", file=sys.stderr)
            return 2
    base = args.workdir or Path(tempfile.mkdtemp(prefix="cxrlab-bench-collect-"))
    inputs = base / "inputs"
    chosen = [r for r in args.receivers.split(",") if r]
    try:
        t0 = time.perf_counter()
        total = make_inputs(inputs, args.n, args.min_size, args.max_size) if not inputs.exists() else \
            sum(p.stat().st_size for p in inputs.glob("*.dcm"))
        mb = total / 1e6
        print(f"inputs: {args.n} CR files, {args.min_size}-{args.max_size} px, {mb:,.0f} MB "
              f"({time.perf_counter() - t0:.0f} s to write) in {inputs}", flush=True)
        rows: dict[str, Row] = {}
        get_row: Row | None = None
        names = {"cxrlab": "cxrlab collect listen (+ catalog)", "orthanc": "Orthanc C-STORE SCP",
                 "orthanc-nosync": "Orthanc, SyncStorageArea off",
                 "bare": "bare pynetdicom SCP (files only)", "bare-chunked": "bare pynetdicom SCP, chunked receive"}
        times: dict[str, list[float]] = {name: [] for name in chosen}
        for r in range(args.repeat):  # round robin: a busy spell of the shared machine hits every receiver
            for name in chosen:
                warm(inputs)
                work = base / f"run-{name}-{r}"
                work.mkdir()
                try:
                    if name == "cxrlab":
                        times[name].append(run_cxrlab(inputs, work, args.n))
                    elif name in ("bare", "bare-chunked"):
                        times[name].append(run_bare(inputs, work, args.n, chunked=name == "bare-chunked"))
                    else:
                        seconds, got = run_orthanc(inputs, work, args.n, mb=mb, sync_storage=name == "orthanc",
                                                   then_get=name == "orthanc" and not args.no_get and r == 0)
                        times[name].append(seconds)
                        get_row = get_row or got
                finally:
                    shutil.rmtree(work, ignore_errors=True)
                print(f"  {names[name]}: run {r + 1}: {times[name][-1]:.1f} s", flush=True)
        for name in chosen:
            rows[name] = Row(names[name], args.n, mb, statistics.median(times[name]))
        print()
        print(f"{'receiver':<42} {'s':>8} {'MB/s':>8} {'inst/s':>8}  vs Orthanc  vs bare")
        for row in rows.values():
            vs_o = f"{row.mbps / rows['orthanc'].mbps:9.2f}x" if "orthanc" in rows else ""
            vs_b = f"{row.mbps / rows['bare'].mbps:7.2f}x" if "bare" in rows else ""
            print(f"{row.name:<42} {row.seconds:8.1f} {row.mbps:8.1f} {row.ips:8.1f}  {vs_o:>10} {vs_b:>8}")
        if get_row:
            print(f"{get_row.name:<42} {get_row.seconds:8.1f} {get_row.mbps:8.1f} {get_row.ips:8.1f}")
        missed = []
        if "cxrlab" in rows:
            for other, goal in TARGETS:
                if other in rows:
                    ratio = rows["cxrlab"].mbps / rows[other].mbps
                    ok = ratio >= goal
                    print(f"target cxrlab >= {goal:g}x {other}: {ratio:.2f}x {'met' if ok else 'MISSED'}")
                    missed += [] if ok else [other]
        return 1 if missed else 0
    finally:
        if not args.keep and args.workdir is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    os.environ.setdefault("TCP_NODELAY", "1")  # dcmtk (storescu, Orthanc): Nagle off, as cxrlab's own sockets
    sys.exit(main())
