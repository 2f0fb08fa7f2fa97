"""Nothing lost, nothing wrong (issue 10, items 1 and 2): the UID mapping after ``kill -9`` and rerun, the mapping
store's mode, and sources whose header swallows the image (an element length running past the end of the file)."""

from __future__ import annotations

import csv
import os
import signal
import stat
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
import pytest
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from cxrlab.catalog import ImageState, UidMap
from cxrlab.cli.main import app
from cxrlab.deid import deid_folder, deidentify_file, get_profile, image_id_for, verify_folder
from cxrlab.deid.batch import mapping_engine
from cxrlab.errors import FileError
from cxrlab.runtime import Executor
from tests.support.dicom import make_dicom

pytestmark = pytest.mark.slow  # cxrlab processes killed and rerun

KEY = bytes(range(32))
CLI = [sys.executable, "-m", "cxrlab.cli.main"]
runner = CliRunner()


def invoke(*args: object):  # noqa: ANN201
    return runner.invoke(app, [str(a) for a in args])


def _rows(engine) -> set[tuple[str, str, str]]:  # noqa: ANN001 - a SQLAlchemy Engine
    with Session(engine) as session:
        return {tuple(r) for r in session.execute(select(UidMap.original, UidMap.kind, UidMap.new))}


def _kill_at(cmd: list[str], out: Path, thresholds: tuple[int, ...]) -> list[int]:
    """Start *cmd* once per threshold and SIGKILL its process group when *out* holds that many ``*.dicom`` files
    (or let it finish); return how many outputs each killed run left."""
    left = []
    for threshold in thresholds:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and sum(1 for _ in out.glob("*.dicom")) >= threshold:
                break
            time.sleep(0.005)
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        left.append(sum(1 for _ in out.glob("*.dicom")) if out.is_dir() else 0)
    return left


def _sources(folder: Path, n: int, size: int = 192) -> Path:
    for i in range(n):
        make_dicom(folder / f"{i % 7}" / f"{i}.dcm", seed=i, rows=size, columns=size)
    return folder


class TestDeidFolderKillKeepsTheMapping:
    def test_kill_at_three_points_then_rerun_keeps_every_row(self, tmp_path: Path) -> None:
        n = 200
        src = _sources(tmp_path / "src", n, size=128)
        reference = mapping_engine(tmp_path / "ref.sqlite")
        deid_folder(src, tmp_path / "ref", profile=get_profile("vindr"), key=KEY, mapping=tmp_path / "ref.sqlite",
                    executor=Executor(2))
        expected = _rows(reference)
        assert len(expected) == 2 * n  # vindr keeps one UID, the SOP Instance UID: its row and the image_id row
        key_file = tmp_path / "site.key"
        key_file.write_text(KEY.hex())
        out = tmp_path / "out"
        cmd = [*CLI, "deid", "folder", str(src), str(out), "-k", str(key_file), "--no-text", "--workers", "2"]
        left = _kill_at(cmd, out, (30, 100, 170))
        assert sum(0 < k < n for k in left) >= 2, f"the runs must be killed midway to mean anything: {left}"
        store = tmp_path / "site.key.mapping.sqlite"
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in (tmp_path / "ref").iterdir())
        assert _rows(mapping_engine(store)) == expected
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        result = invoke("deid", "export-mapping", tmp_path / "map.csv", "--mapping", store)
        assert result.exit_code == 0, result.output
        with open(tmp_path / "map.csv", newline="") as fh:
            assert {tuple(r) for r in list(csv.reader(fh))[1:]} == {(o, k, nw) for o, k, nw in expected}
        result = invoke("deid", "verify", out, "--source", src, "-k", key_file, "--report", tmp_path / "r.json")
        assert result.exit_code == 0, result.output
        assert f"verified {n} file(s): {n} clean, 0 finding(s)" in result.output


def _deid(tmp_path: Path, n: int, size: int) -> tuple[Path, Path, Path]:
    """*n* sources de-identified in process: ``(src, out, mapping store)``."""
    src = _sources(tmp_path / "src", n, size=size)
    out, store = tmp_path / "out", tmp_path / "m.sqlite"
    deid_folder(src, out, profile=get_profile("vindr"), key=KEY, mapping=store, executor=Executor(1))
    return src, out, store


class TestMappingRowsAreChecked:
    def test_deleted_rows_are_reported_then_restored_by_a_rerun(self, tmp_path: Path) -> None:
        src, out, store = _deid(tmp_path, 4, 32)
        engine = mapping_engine(store)
        first, second = (pydicom.dcmread(p) for p in sorted(src.rglob("*.dcm"))[:2])
        with Session(engine) as session:
            session.execute(delete(UidMap).where(UidMap.original == first.SOPInstanceUID, UidMap.kind == "image_id"))
            session.execute(delete(UidMap).where(UidMap.original == second.SOPInstanceUID, UidMap.kind == "uid"))
            session.commit()
        report = verify_folder(out, profile=get_profile("vindr"), source_dir=src, key=KEY, mapping=engine)
        found = {(f.image_id, f.check, f.detail) for f in report.findings}
        assert found == {
            (image_id_for(first.SOPInstanceUID, KEY), "mapping", "1 of 2 mapping row(s) missing (image_id)"),
            (image_id_for(second.SOPInstanceUID, KEY), "mapping", "1 of 2 mapping row(s) missing (uid)"),
        }
        assert first.SOPInstanceUID not in report.to_json()
        # Without the source only the image_id row can be checked.
        alone = verify_folder(out, profile=get_profile("vindr"), mapping=engine)
        assert [(f.image_id, f.check) for f in alone.findings] == [(image_id_for(first.SOPInstanceUID, KEY), "mapping")]
        key_file = tmp_path / "k"
        key_file.write_text(KEY.hex())
        result = invoke("deid", "verify", out, "--source", src, "-k", key_file, "--mapping", store)
        assert result.exit_code == 1 and "mapping row(s) missing" in result.output
        # The rerun finds every output done and re-records the rows from the source headers.
        report = deid_folder(src, out, profile=get_profile("vindr"), key=KEY, mapping=store, executor=Executor(1))
        assert report.counts["already"] == 4
        assert verify_folder(out, profile=get_profile("vindr"), source_dir=src, key=KEY, mapping=engine).ok

    def test_missing_store_is_an_error(self, tmp_path: Path) -> None:
        _src, out, _store = _deid(tmp_path, 4, 32)
        result = invoke("deid", "verify", out, "--mapping", tmp_path / "elsewhere.sqlite")
        assert result.exit_code == 1 and "no such mapping store" in result.output


class TestMappingStoreMode:
    def test_store_and_its_wal_files_are_0600(self, tmp_path: Path) -> None:
        store = tmp_path / "m.sqlite"
        engine = mapping_engine(store)
        with engine.connect() as conn:  # an open connection in WAL mode keeps -wal and -shm beside the store
            conn.exec_driver_sql("SELECT count(*) FROM uid_map").all()
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in tmp_path.iterdir() if "sqlite" in p.name}
        assert modes == {"m.sqlite": 0o600, "m.sqlite-wal": 0o600, "m.sqlite-shm": 0o600}

    def test_an_older_wider_store_is_narrowed(self, tmp_path: Path) -> None:
        store = tmp_path / "m.sqlite"
        mapping_engine(store).dispose()
        store.chmod(0o644)
        mapping_engine(store).dispose()
        assert stat.S_IMODE(store.stat().st_mode) == 0o600


def _swallowing(path: Path, vr: str) -> Path:
    """A valid image whose private UT (0009,1011) or ST (0008,0081) *Institution Address* declares a length that
    runs past the end of the file: pydicom takes every later element, Pixel Data included, as its value."""
    make_dicom(path)
    ds = pydicom.dcmread(path)
    if vr == "UT":
        ds.add_new(0x00091011, "UT", "PRIVATE NOTE")
    else:
        ds.InstitutionAddress = "1 MAIN STREET"
    ds.save_as(path, enforce_file_format=True)
    data = bytearray(path.read_bytes())
    if vr == "UT":  # explicit VR UT: tag, VR, 2 reserved bytes, 4-byte length (PS3.5 7.1.2)
        i = data.index(b"\x09\x00\x11\x10UT\x00\x00")
        data[i + 8 : i + 12] = struct.pack("<I", 0x100000)
    else:  # explicit VR ST: tag, VR, 2-byte length
        i = data.index(b"\x08\x00\x81\x00ST")
        data[i + 6 : i + 8] = struct.pack("<H", 0xFFFF)
    path.write_bytes(bytes(data))
    return path


class TestSwallowedImage:
    @pytest.mark.parametrize(("vr", "tag"), [("UT", "(0009,1011)"), ("ST", "(0008,0081)")])
    def test_oversized_length_fails_the_file_with_the_reason(self, tmp_path: Path, vr: str, tag: str) -> None:
        src = tmp_path / "src"
        bad = _swallowing(src / "bad.dcm", vr)
        make_dicom(src / "good.dcm", seed=1)
        key_file = tmp_path / "k"
        key_file.write_text(KEY.hex())
        out = tmp_path / "out"
        result = subprocess.run([*CLI, "deid", "folder", str(src), str(out), "-k", str(key_file), "--no-text",
                                 "--workers", "1"], capture_output=True, text=True, timeout=120)
        assert result.returncode == 2, result.stdout + result.stderr
        line = f"{bad}: element {tag} length"
        assert line in result.stderr and "runs past the end of the file" in result.stderr
        assert "MAIN STREET" not in result.stderr + result.stdout and "PRIVATE NOTE" not in result.stderr
        assert len(list(out.glob("*.dicom"))) == 1  # only good.dcm
        result = invoke("deid", "verify", out, "--source", src, "-k", key_file)
        assert result.exit_code == 1 and "missing" in result.output  # the failed image has no output

    def test_workspace_stage_refuses_it_too(self, tmp_path: Path) -> None:
        bad = _swallowing(tmp_path / "bad.dcm", "UT")
        with pytest.raises(FileError, match=r"element \(0009,1011\) length 1048576 runs past the end of the file"):
            deidentify_file(bad, tmp_path / "out", profile=get_profile("vindr"), key=KEY)
        assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())

    def test_source_without_pixel_data_fails(self, tmp_path: Path) -> None:
        src = tmp_path / "src"
        make_dicom(src / "nopixels.dcm", pixels=False)
        report = deid_folder(src, tmp_path / "out", profile=get_profile("vindr"), key=KEY,
                             mapping=tmp_path / "m.sqlite", executor=Executor(1))
        assert report.problems == [(str(src / "nopixels.dcm"), "no pixel data (7FE0,0010)")]
        assert not list((tmp_path / "out").glob("*.dicom"))

    def test_verify_flags_outputs_without_pixels_or_of_another_size(self, tmp_path: Path) -> None:
        src, out, _store = _deid(tmp_path, 3, 64)
        ids = [image_id_for(pydicom.dcmread(src / f"{i}" / f"{i}.dcm").SOPInstanceUID, KEY) for i in range(3)]
        # What the old engine wrote for a swallowing source: a header without Rows, Columns or Pixel Data.
        ds = pydicom.dcmread(out / f"{ids[0]}.dicom")
        for keyword in ("PixelData", "Rows", "Columns"):
            delattr(ds, keyword)
        ds.save_as(out / f"{ids[0]}.dicom", enforce_file_format=True)
        ds = pydicom.dcmread(out / f"{ids[1]}.dicom")
        ds.PixelData = np.ascontiguousarray(ds.pixel_array[:32, :48]).tobytes()
        ds.Rows, ds.Columns = 32, 48
        ds.save_as(out / f"{ids[1]}.dicom", enforce_file_format=True)
        found = {(f.image_id, f.check, f.detail) for f in verify_folder(
            out, profile=get_profile("vindr"), source_dir=src, key=KEY).findings}
        assert found == {
            (ids[0], "pixels", "no pixel data (7FE0,0010): the output lost its image"),
            (ids[0], "size", "image size ?x? differs from the source's 64x64"),
            (ids[1], "size", "image size 32x48 differs from the source's 64x64"),
        }
        # Without the source, the output without pixels is still caught.
        alone = verify_folder(out, profile=get_profile("vindr"))
        assert [(f.image_id, f.check) for f in alone.findings] == [(ids[0], "pixels")]


class TestDeidRunKill:
    """The workspace stage: kill -9 at several points, rerun, then the catalog's uid_map holds every row an
    uninterrupted run writes and ``deid verify`` of the workspace (images/ against raw/, the catalog's mapping) is
    clean."""

    def test_kill_at_three_points_then_rerun(self, tmp_path: Path) -> None:
        from cxrlab.catalog import Image, init_workspace
        from cxrlab.deid import deidentify_dataset
        from cxrlab.deid.batch import mapping_rows
        from cxrlab.ingest import run_ingest

        n = 120
        src = _sources(tmp_path / "src", n, size=128)
        ws = init_workspace(tmp_path / "ws")
        run_ingest(ws, src, executor=Executor(2))
        key, profile = ws.secret_key(), get_profile(ws.settings.deid_profile)
        expected = set()
        for path in src.rglob("*.dcm"):  # what an uninterrupted run records: the rows are a function of the header
            res = deidentify_dataset(pydicom.dcmread(path, stop_before_pixels=True), profile=profile, key=key)
            expected |= {(r["original"], r["kind"], r["new"]) for r in mapping_rows(res.original_sop, res.image_id,
                                                                                    res.uid_map)}
        cmd = [*CLI, "deid", "run", "-w", str(ws.root), "--no-text", "--workers", "2"]
        left = _kill_at(cmd, ws.path("images"), (20, 60, 100))
        assert sum(0 < k < n for k in left) >= 2, f"the runs must be killed midway to mean anything: {left}"
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        assert _rows(ws.engine) == expected and len(expected) == 2 * n
        with ws.sessions() as session:
            states = session.execute(select(Image.state, func.count()).group_by(Image.state)).all()
            assert states == [(ImageState.DEIDENTIFIED, n)]
        result = invoke("deid", "verify", "-w", ws.root)
        assert result.exit_code == 0, result.output
        assert f"verified {n} file(s): {n} clean" in result.output
        # A lost row is a finding.
        with ws.sessions() as session:
            session.execute(delete(UidMap).where(UidMap.kind == "image_id").where(
                UidMap.original == session.scalar(select(Image.sop_instance_uid).limit(1))))
            session.commit()
        result = invoke("deid", "verify", "-w", ws.root)
        assert result.exit_code == 1 and "1 of 2 mapping row(s) missing (image_id)" in " ".join(result.output.split())
