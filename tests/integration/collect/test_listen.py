"""``cxrlab collect listen``: dcmtk's ``storescu`` sends to a real listener process; unknown callers are refused,
a bad instance answers a failure status without stopping it, SIGTERM commits and exits 0, and what a killed
receiver had acknowledged is recorded by the next one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import select

from cxrlab.catalog.models import Image, QuarantineItem
from tests.integration.collect.test_pacs import corrupt_phantom
from tests.support.data import real_data
from tests.support.orthanc import PHI, Phantom, free_port, write_phantom

# slow: real Orthanc/dcmtk processes, and processes killed with SIGKILL
pytestmark = [pytest.mark.pacs, pytest.mark.slow]

STORESCU = shutil.which("storescu")
ECHOSCU = shutil.which("echoscu")
CLI = [sys.executable, "-c", "from cxrlab.cli.main import main; main()"]
READY_TIMEOUT = 60.0


@dataclass
class Listener:
    proc: subprocess.Popen
    port: int
    ws: Path

    def send(self, files: list[Path], *, calling: str = "STORESCU") -> subprocess.CompletedProcess:
        """storescu every file over one association (going on after a failed store)."""
        return subprocess.run([STORESCU, "-v", "--no-halt", "-aet", calling, "-aec", "CXRLAB", "127.0.0.1",
                               str(self.port), *map(str, files)], capture_output=True, text=True, timeout=120)

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGTERM)
        out, err = self.proc.communicate(timeout=60)
        return self.proc.returncode, out, err


@pytest.fixture
def listen(workspace) -> Iterator:  # noqa: ANN001 - Workspace
    """Start ``cxrlab collect listen`` (allowing STORESCU only) and wait until it answers a C-ECHO."""
    if STORESCU is None or ECHOSCU is None:
        pytest.skip("dcmtk's storescu/echoscu not found (apt-get install dcmtk)")
    started: list[Listener] = []

    def start(*extra: str) -> Listener:
        port = free_port()
        proc = subprocess.Popen([*CLI, "collect", "listen", "--port", str(port), "--aet", "CXRLAB", "--bind",
                                 "127.0.0.1", "-w", str(workspace.root), *extra],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        listener = Listener(proc, port, workspace.root)
        started.append(listener)
        deadline = time.monotonic() + READY_TIMEOUT
        while subprocess.run([ECHOSCU, "-aet", "STORESCU", "-aec", "CXRLAB", "127.0.0.1", str(port)],
                             capture_output=True, timeout=30).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"the listener did not start: {proc.communicate()}")
            time.sleep(0.2)
        return listener

    yield start
    for listener in started:
        if listener.proc.poll() is None:
            listener.proc.kill()
            listener.proc.communicate()


def images(ws) -> dict[str, str]:  # noqa: ANN001 - Workspace
    with ws.sessions() as s:
        return dict(s.execute(select(Image.sop_instance_uid, Image.origin)).all())


class TestListen:
    def test_storescu_to_listen_to_catalog_refusing_unknown_callers(self, workspace, listen, tmp_path: Path) -> None:
        study, series = generate_uid(), generate_uid()
        good = [write_phantom(tmp_path / f"g{i}.dcm", Phantom(study, series), seed=i) for i in range(3)]
        real = real_data("dicom", "RG1_UNCI.dcm")
        bad = corrupt_phantom(tmp_path / "bad.dcm", Phantom(study, series))
        listener = listen("--allow-aet", "STORESCU", "--allow-aet", "MODALITY2")

        sent = listener.send([good[0], bad, good[1], real])
        assert sent.stderr.count("Received Store Response (Success)") == 3, sent.stderr
        assert "Received Store Response (Error: CannotUnderstand)" in sent.stderr  # 0xC000, PS3.4 B.2.3
        refused = listener.send([good[2]], calling="INTRUDER")
        assert refused.returncode != 0
        assert "Calling AE Title Not Recognized" in refused.stderr, refused.stderr
        after = listener.send([good[2]])  # the listener lives on after a bad instance and a refused caller
        assert after.returncode == 0, after.stderr

        code, out, err = listener.stop()
        assert code == 0, err
        got = images(workspace)
        assert len(got) == 4 and set(got.values()) == {"listen STORESCU@127.0.0.1"}
        with workspace.sessions() as s:
            (q,) = s.scalars(select(QuarantineItem)).all()
        assert q.source_path.startswith("listen STORESCU@127.0.0.1 #") and "pixel data" in q.reason
        assert "ingested" in out and "quarantined" in out
        assert "Traceback" not in err
        for value in PHI.values():
            assert value not in out + err
        assert not list(workspace.path("incoming").rglob("*.dcm"))

    def test_port_in_use_is_one_line(self, workspace) -> None:
        import socket

        from typer.testing import CliRunner

        from cxrlab.cli.main import app
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            sock.listen(1)
            port = sock.getsockname()[1]
            result = CliRunner().invoke(app, ["collect", "listen", "--port", str(port), "--bind", "127.0.0.1",
                                              "-w", str(workspace.root)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert f"cannot listen on 127.0.0.1:{port}" in result.output


KILLED_RECEIVER = """
import os, signal, sys
from pathlib import Path
from cxrlab.catalog import open_workspace
from cxrlab.collect.scp import Receiver
from cxrlab.runtime.report import StageReport

ws = open_workspace(sys.argv[1])
receiver = Receiver(ws, StageReport("listen"))
receiver._record = lambda batch: None  # the commit never comes: the process dies first
receiver.start()
for path in sys.argv[2:]:
    assert receiver.store(Path(path).read_bytes(), origin="listen TEST@127.0.0.1", sop_uid="") == 0
import tempfile
partial = tempfile.NamedTemporaryFile(delete=False, suffix=".dcm")  # as pynetdicom opens one per data set
partial.write(b"half an instance, PLANTED^SECRET^NAME")
partial.flush()
print(partial.name)
os.kill(os.getpid(), signal.SIGKILL)
"""


class TestSpoolRecovery:
    def test_instances_acknowledged_before_kill_9_are_recorded_by_the_next_receiver(
        self, workspace, tmp_path: Path
    ) -> None:
        from cxrlab.collect.scp import Receiver
        from cxrlab.runtime.report import StageReport

        files = [write_phantom(tmp_path / f"{i}.dcm", Phantom(generate_uid(), generate_uid()), seed=i)
                 for i in range(3)]
        script = tmp_path / "killed.py"
        script.write_text(KILLED_RECEIVER)
        proc = subprocess.run([sys.executable, str(script), str(workspace.root), *map(str, files)],
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        assert images(workspace) == {}
        partial = Path(proc.stdout.strip())
        assert partial.is_file() and partial.is_relative_to(workspace.path("incoming")), partial  # not in /tmp
        assert len(list(workspace.path("incoming").rglob("*.dcm"))) == 4

        report = StageReport("listen")
        with Receiver(workspace, report):
            pass
        assert len(images(workspace)) == 3 and report.counts["ingested"] == 3
        assert "recorded 3 instance(s) received by an interrupted run" in report.notes
        assert not list(workspace.path("incoming").rglob("*.dcm")) and not partial.exists()
