"""Folder ingest: real files, bad inputs, duplicates, idempotence (recovery after SIGKILL is in
tests/integration/test_kill.py)."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import encapsulate
from sqlalchemy import func, select

from cxrlab.catalog.models import Image, QuarantineItem
from cxrlab.errors import CxrlabError
from cxrlab.ingest import run_ingest
from cxrlab.runtime import Executor
from tests.support.dicom import make_dicom


def _images(ws) -> list[Image]:  # noqa: ANN001
    with ws.sessions() as s:
        return list(s.scalars(select(Image).order_by(Image.id)))


class TestIngestFolder:
    def test_real_files_metadata_and_raw_store(self, workspace, shared_dicom: Path) -> None:
        report = run_ingest(workspace, shared_dicom, executor=Executor(1))
        # RG1_J2KI/RG1_UNCI and siim/Fake_MONOHR1 share SOP Instance UIDs; chrJapMulti has no pixel data.
        assert report.counts["ingested"] == 3
        assert report.counts["duplicate"] == 2
        assert report.counts["quarantined"] == 1
        imgs = _images(workspace)
        rg1 = next(i for i in imgs if i.rows == 1955)
        assert (rg1.columns, rg1.modality, rg1.photometric) == (1841, "CR", "MONOCHROME1")
        for img in imgs:
            raw = workspace.root / img.raw_path
            assert raw.is_file() and img.raw_sha256 in raw.name
        assert len(list((workspace.root / "raw").rglob("*.dcm"))) == 3

    def test_metadata_fields(self, workspace, tmp_path: Path) -> None:
        make_dicom(tmp_path / "in" / "a.dcm", rows=80, columns=60, age="018M", sex="F", modality="DX")
        run_ingest(workspace, tmp_path / "in", executor=Executor(1))
        (img,) = _images(workspace)
        assert (img.rows, img.columns, img.sex, img.modality, img.study_year) == (80, 60, "F", "DX", 2020)
        assert img.age_years == pytest.approx(1.5)
        assert img.pixel_spacing_row == pytest.approx(0.15)
        assert img.patient_key and "PID123456" not in img.patient_key
        assert img.transfer_syntax == "1.2.840.10008.1.2.1"
        assert img.file_size == (tmp_path / "in" / "a.dcm").stat().st_size

    def test_bad_inputs_are_quarantined_with_reasons_and_batch_continues(self, workspace, tmp_path: Path) -> None:
        src = tmp_path / "in"
        good = make_dicom(src / "good.dcm")
        data = good.read_bytes()
        (src / "truncated_pixels.dcm").write_bytes(
            make_dicom(tmp_path / "t.dcm").read_bytes()[: len(data) - 2000]
        )
        (src / "truncated_header.dcm").write_bytes(data[:300])
        (src / "notes.txt").write_text("not a dicom")
        make_dicom(src / "nopixels.dcm", pixels=False)
        ds = pydicom.dcmread(make_dicom(tmp_path / "u.dcm"))
        ds.PixelData = encapsulate([b"\x00" * 100])
        ds.file_meta.TransferSyntaxUID = "1.2.840.10008.1.2.4.100"  # MPEG2: not an image codec we decode
        ds.save_as(src / "mpeg.dcm", enforce_file_format=True)
        report = run_ingest(workspace, src, executor=Executor(2))
        assert report.counts["ingested"] == 1
        assert report.counts["not_dicom"] == 1
        assert report.counts["quarantined"] == 4
        reasons = {Path(p).name: r for p, r in report.problems}
        assert "pixel data truncated" in reasons["truncated_pixels.dcm"]
        assert "truncated or corrupt" in reasons["truncated_header.dcm"]
        assert "no pixel data" in reasons["nopixels.dcm"]
        assert "unsupported transfer syntax 1.2.840.10008.1.2.4.100" in reasons["mpeg.dcm"]
        for reason in reasons.values():
            assert "DOE" not in reason and "PID123456" not in reason
        reason_files = list((workspace.root / "quarantine").glob("*.reason.txt"))
        assert len(reason_files) == 4
        with workspace.sessions() as s:
            assert s.scalar(select(func.count(QuarantineItem.id))) == 4

    def test_rerun_is_idempotent(self, workspace, tmp_path: Path) -> None:
        for i in range(3):
            make_dicom(tmp_path / "in" / f"{i}.dcm", seed=i)
        run_ingest(workspace, tmp_path / "in", executor=Executor(1))
        report = run_ingest(workspace, tmp_path / "in", executor=Executor(1))
        assert report.counts == {"already_ingested": 3}
        assert len(_images(workspace)) == 3

    def test_duplicate_uid_with_other_bytes_is_ignored(self, workspace, tmp_path: Path) -> None:
        make_dicom(tmp_path / "in" / "a.dcm", sop_uid="1.2.3.4", seed=1)
        make_dicom(tmp_path / "in" / "b.dcm", sop_uid="1.2.3.4", seed=2)
        report = run_ingest(workspace, tmp_path / "in", executor=Executor(1))
        assert (report.counts["ingested"], report.counts["duplicate"]) == (1, 1)
        assert len(list((workspace.root / "raw").rglob("*.dcm"))) == 1

    def test_empty_folder_reports_it(self, workspace, tmp_path: Path) -> None:
        (tmp_path / "empty").mkdir()
        report = run_ingest(workspace, tmp_path / "empty")
        assert report.total == 0
        assert any("folder is empty" in n for n in report.notes)

    def test_missing_path_raises(self, workspace, tmp_path: Path) -> None:
        with pytest.raises(CxrlabError, match="no such file or folder"):
            run_ingest(workspace, tmp_path / "nope")
