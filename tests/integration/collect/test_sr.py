"""DICOM SR export (``cxrlab export TAG --format sr``) and send-back (``cxrlab send pacs|dicomweb``): the SRs read
back to the release's boxes and labels, pass highdicom's, pydicom's and dcmtk's checks, carry no PHI, and make the
round trip through Orthanc (C-STORE or STOW-RS, then WADO-RS)."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
import pytest
from typer.testing import CliRunner

from cxrlab.cli.main import app
from tests.support.orthanc import CXRLAB_AET, PHI, Orthanc, Phantom, start_orthanc, write_phantom

pytest.importorskip("highdicom", reason="the SR tests need the pacs extra: pip install -e '.[pacs]'")

runner = CliRunner()
TAG = "sr1"


class Release:
    """A labeled workspace of phantoms (with planted PHI) exported with ``--format sr``."""

    def __init__(self, root: Path) -> None:
        from pydicom.uid import generate_uid

        from cxrlab.annotate.readings import simulate_readers
        from cxrlab.catalog import init_workspace
        from cxrlab.consensus import run_consensus
        from cxrlab.deid import run_deid
        from cxrlab.export.release import run_export, tables_from_workspace
        from cxrlab.filter import run_filter
        from cxrlab.ingest import run_ingest
        from cxrlab.runtime import Executor

        for i in range(5):
            write_phantom(root / "in" / f"{i}.dcm", Phantom(generate_uid(), generate_uid(), rows=256), seed=i)
        self.ws = init_workspace(root / "ws")
        run_ingest(self.ws, root / "in", executor=Executor(1))
        run_deid(self.ws, executor=Executor(1), text=False)
        run_filter(self.ws)
        simulate_readers(self.ws, readers=3, seed=5)
        run_consensus(self.ws)
        self.report = run_export(self.ws, TAG, formats=("sr",))
        self.out = self.ws.path("exports", TAG)
        self.tables = tables_from_workspace(self.ws)

    def srs(self) -> list[Path]:
        return sorted((self.out / "sr").rglob("*.dcm"))

    def expected(self, image_id: str) -> tuple[np.ndarray, dict[str, bool]]:
        """The image's consensus boxes (label, x_min, y_min, x_max, y_max; float32 as SCOORD stores them, sorted)
        and its global labels."""
        from cxrlab.consensus.vote import image_positives

        b = self.tables.consensus_boxes
        b = b.loc[b["image_id"] == image_id]
        boxes = sorted((r.class_name, *np.float32([r.x_min, r.y_min, r.x_max, r.y_max]).tolist())
                       for r in b.itertuples())
        pos = image_positives(self.tables).set_index("image_id").loc[image_id]
        labels = {lb.name: bool(pos[lb.name] == 1) for lb in self.tables.schema.global_}
        return boxes, labels


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Release:
    return Release(tmp_path_factory.mktemp("sr"))


def read_back(path_or_ds, release: Release):  # noqa: ANN001, ANN201
    from cxrlab.export.sr import read_sr

    content = read_sr(path_or_ds, release.tables.schema.names)
    boxes = sorted((b.label, b.x_min, b.y_min, b.x_max, b.y_max) for b in content.boxes)
    return content, boxes


class TestExportSr:
    def test_one_sr_per_image_reading_back_to_the_same_boxes_and_labels(self, release: Release) -> None:
        srs = release.srs()
        assert len(srs) == 5 == release.report.counts["sr_files"]
        n_boxes = 0
        for path in srs:
            image_id = path.stem
            content, boxes = read_back(path, release)
            want_boxes, want_labels = release.expected(image_id)
            assert boxes == want_boxes
            assert content.labels == want_labels
            n_boxes += len(boxes)
            image = pydicom.dcmread(release.out / path.parent.name / f"{image_id}.dicom", stop_before_pixels=True)
            assert content.sop_instance_uid == image.file_meta.MediaStorageSOPInstanceUID
        assert n_boxes > 0, "no consensus box at all: the test would prove nothing"

    def test_highdicom_pydicom_and_dcmtk_accept_it(self, release: Release) -> None:
        import highdicom as hd
        from pydicom import config

        for path in release.srs():
            ds = pydicom.dcmread(path)
            assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.34"  # Comprehensive 3D SR Storage
            assert ds.ContentTemplateSequence[0].TemplateIdentifier == "1500"
            assert ds.CompletionFlag == "COMPLETE" and ds.ValueType == "CONTAINER"
            hd.sr.Comprehensive3DSR.from_dataset(ds)  # highdicom's parser of TID 1500 raises on a bad tree
            old = config.settings.writing_validation_mode
            config.settings.writing_validation_mode = config.RAISE
            try:
                ds.save_as(path.with_suffix(".check"), enforce_file_format=True)  # every value checked by VR
            finally:
                config.settings.writing_validation_mode = old
                path.with_suffix(".check").unlink(missing_ok=True)
        if shutil.which("dsrdump"):
            for path in release.srs():
                dump = subprocess.run(["dsrdump", "-v", str(path)], capture_output=True, text=True, timeout=60)
                assert dump.returncode == 0, dump.stderr
                problems = [ln for ln in (dump.stdout + dump.stderr).splitlines() if ln[:2] in ("W:", "E:", "F:")]
                assert problems == [], problems

    def test_no_phi_in_any_sr(self, release: Release) -> None:
        for path in release.srs():
            data = path.read_bytes()
            for value in PHI.values():
                assert value.encode() not in data

    def test_same_release_gives_the_same_uids(self, release: Release, tmp_path: Path) -> None:
        from cxrlab.export.release import write_release

        again = write_release(release.tables, tmp_path / TAG, formats=("sr",))
        assert again.counts["sr_files"] == 5
        for path in release.srs():
            twin = tmp_path / TAG / "sr" / path.parent.name / path.name
            assert pydicom.dcmread(twin).SOPInstanceUID == pydicom.dcmread(path).SOPInstanceUID


@pytest.fixture(scope="module")
def sr_pacs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    server = start_orthanc(tmp_path_factory.mktemp("orthanc-sr"))
    try:
        yield server
    finally:
        server.stop()


def wado_back(server: Orthanc, sr: Path):  # noqa: ANN201 - a pydicom Dataset
    from dicomweb_client import DICOMwebClient

    ds = pydicom.dcmread(sr, stop_before_pixels=True)
    client = DICOMwebClient(server.dicomweb)
    return client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID)


@pytest.mark.pacs
@pytest.mark.slow  # a real Orthanc
class TestSendBack:
    def test_stow_then_wado_gives_the_same_boxes(self, release: Release, sr_pacs: Orthanc) -> None:
        from cxrlab.collect import DicomwebPeer, send_dicomweb

        report = send_dicomweb(release.out / "sr", DicomwebPeer(sr_pacs.dicomweb))
        assert report.counts["sent"] == 5 and not report.problems
        for path in release.srs():
            assert read_back(wado_back(sr_pacs, path), release) == read_back(path, release)
        sr_pacs.clear()

    def test_send_pacs_cli_then_wado_gives_the_same_boxes(self, release: Release, sr_pacs: Orthanc,
                                                            tmp_path: Path) -> None:
        folder = tmp_path / "out"
        shutil.copytree(release.out / "sr", folder)
        (folder / "notes.txt").write_text("not DICOM")
        result = runner.invoke(app, ["send", "pacs", str(folder), "--host", "127.0.0.1", "--port",
                                     str(sr_pacs.dicom_port), "--called-aet", sr_pacs.aet, "--calling-aet",
                                     CXRLAB_AET])
        assert result.exit_code == 0, result.output
        assert "sent" in result.output and "5" in result.output
        for path in release.srs():
            assert read_back(wado_back(sr_pacs, path), release) == read_back(path, release)
        sr_pacs.clear()

    def test_send_reports_each_file_that_failed(self, release: Release, sr_pacs: Orthanc, tmp_path: Path) -> None:
        folder = tmp_path / "out"
        shutil.copytree(release.out / "sr", folder)
        good = release.srs()[0]
        (folder / "broken.dcm").write_bytes(good.read_bytes()[:400])  # the header of an SR, cut short
        result = runner.invoke(app, ["send", "dicomweb", sr_pacs.dicomweb, str(folder)])
        assert result.exit_code == 1, result.output
        assert "broken.dcm" in result.output and "Traceback" not in result.output
        assert "sent" in result.output
        sr_pacs.clear()

    def test_cli_export_format_sr(self, release: Release) -> None:
        result = runner.invoke(app, ["export", "sr-cli", "--format", "sr", "-w", str(release.ws.root)])
        assert result.exit_code == 0, result.output
        assert "sr_files" in result.output and "sr/ 5 files" in result.output
