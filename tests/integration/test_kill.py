"""Kill -9 halfway, then rerun: folder ingest holds every file once, and a de-identification run ends
byte-identical to an uninterrupted one (the CLI in a real subprocess, killed with its process group)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from cxrlab.catalog.models import Image
from cxrlab.deid import deid_folder, get_profile
from cxrlab.ingest import run_ingest
from cxrlab.runtime import Executor
from tests.support.dicom import make_dicom

pytestmark = pytest.mark.slow  # processes killed with SIGKILL and rerun

KEY = bytes(range(32))


class TestIngestKill:
    def test_sigkill_then_rerun_holds_every_file_once(self, workspace, tmp_path: Path) -> None:
        src = tmp_path / "in"
        n = 600
        for i in range(n):
            make_dicom(src / f"{i // 50}" / f"{i}.dcm", seed=i, rows=96, columns=96)
        env = {**os.environ, "CXRLAB_WORKSPACE": str(workspace.root)}
        proc = subprocess.Popen(
            [sys.executable, "-m", "cxrlab.cli.main", "ingest", "folder", str(src), "--workers", "2"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        # Kill once some (not all) rows are committed.
        deadline = time.monotonic() + 120
        count = 0
        while time.monotonic() < deadline and proc.poll() is None:
            with workspace.sessions() as s:
                count = s.scalar(select(func.count(Image.id)))
            if count >= 64:
                break
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        assert 0 < count < n, "the ingest must be killed halfway for this test to mean anything"
        report = run_ingest(workspace, src, executor=Executor(2))
        assert report.counts["quarantined"] == 0
        with workspace.sessions() as s:
            imgs = list(s.scalars(select(Image)))
        assert len(imgs) == n
        assert len({i.sop_instance_uid for i in imgs}) == n
        assert not list((workspace.root / "raw").rglob("*.tmp"))


class TestDeidFolderKill:
    def test_kill_halfway_then_rerun_is_byte_identical(self, tmp_path: Path) -> None:
        src = tmp_path / "src"
        n = 500
        for i in range(n):
            make_dicom(src / f"{i // 100}" / f"{i}.dcm", seed=i, rows=128, columns=128)
        key_file = tmp_path / "key"
        key_file.write_text(KEY.hex())
        reference = tmp_path / "ref"
        deid_folder(src, reference, profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "ref.sqlite",
                    executor=Executor(2))
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "cxrlab.cli.main", "deid", "folder", str(src), str(out), "-k", str(key_file),
               "--no-text",               "--workers", "2"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if len(list(out.glob("*.dicom"))) >= 100:
                break
            time.sleep(0.02)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        done = len(list(out.glob("*.dicom")))
        assert 0 < done < n, "the run must be killed halfway for this test to mean anything"
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        names = sorted(p.name for p in out.iterdir())
        assert names == sorted(p.name for p in reference.iterdir())
        assert len(names) == n
        for name in names:
            assert (out / name).read_bytes() == (reference / name).read_bytes()
