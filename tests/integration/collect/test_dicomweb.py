"""``cxrlab collect dicomweb`` against Orthanc's DICOMweb plugin: QIDO-RS with the same filters and WADO-RS bring
the same set as C-GET; credentials; clear one-line errors."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from cxrlab.catalog.models import Image
from cxrlab.cli.main import app
from cxrlab.collect import DicomwebPeer, PeerError, QueryFilters, run_collect_dicomweb
from tests.integration.collect.conftest import Archive
from tests.integration.collect.test_pacs import assert_one_line_error, catalog, quarantined_uids
from tests.support.orthanc import PHI, Orthanc, free_port, start_orthanc

# slow: real Orthanc/dcmtk processes, and processes killed with SIGKILL
pytestmark = [pytest.mark.pacs, pytest.mark.slow]

runner = CliRunner()


class TestCollectDicomweb:
    def test_default_filters_bring_the_same_set_as_c_get(self, workspace, pacs: Orthanc, archive: Archive) -> None:
        report = run_collect_dicomweb(workspace, DicomwebPeer(pacs.dicomweb))
        uids, quarantine = catalog(workspace)
        assert uids == archive.expected() - quarantined_uids(archive)
        assert report.counts["ingested"] == 9 and report.counts["quarantined"] == 1
        assert report.counts["studies found"] == 7
        with workspace.sessions() as s:
            origins = set(s.scalars(select(Image.origin)))
        assert all(o.startswith(f"dicomweb {pacs.dicomweb} study ") for o in origins), origins

    def test_filters_and_rerun(self, workspace, pacs: Orthanc, archive: Archive) -> None:
        filters = QueryFilters(body_part="CHEST", study_date="20200101-20201231")
        report = run_collect_dicomweb(workspace, DicomwebPeer(pacs.dicomweb), filters)
        assert catalog(workspace)[0] == archive.expected(date=("20200101", "20201231"), body_part="CHEST")
        assert report.counts["ingested"] == 4
        again = run_collect_dicomweb(workspace, DicomwebPeer(pacs.dicomweb), filters)
        assert again.counts["ingested"] == 0 and again.counts["already_ingested"] == 0

    def test_cli(self, workspace, pacs: Orthanc) -> None:
        result = runner.invoke(app, ["collect", "dicomweb", pacs.dicomweb, "--modality", "DX", "-w",
                                     str(workspace.root)])
        assert result.exit_code == 0, result.output
        assert "ingested" in result.output
        for value in PHI.values():
            assert value not in result.output


@pytest.fixture
def locked_pacs(tmp_path: Path, archive: Archive) -> Iterator[Orthanc]:
    """An Orthanc whose DICOMweb needs HTTP basic credentials (user "reader", password "s3cret pass")."""
    server = start_orthanc(tmp_path / "orthanc", users={"reader": "s3cret pass"})
    try:
        import requests

        for f in archive.files[:2]:
            requests.post(f"{server.url}/instances", data=f.read_bytes(), auth=("reader", "s3cret pass"),
                          timeout=30).raise_for_status()
        yield server
    finally:
        server.stop()


class TestCredentialsAndErrors:
    def test_user_and_password(self, workspace, locked_pacs: Orthanc, monkeypatch: pytest.MonkeyPatch) -> None:
        result = runner.invoke(app, ["collect", "dicomweb", locked_pacs.dicomweb, "-w", str(workspace.root)])
        line = assert_one_line_error(result, locked_pacs.dicomweb, "HTTP 401", "--user")
        assert "s3cret" not in line
        monkeypatch.setenv("CXRLAB_DICOMWEB_PASSWORD", "s3cret pass")
        result = runner.invoke(app, ["collect", "dicomweb", locked_pacs.dicomweb, "--user", "reader", "-w",
                                     str(workspace.root)])
        assert result.exit_code == 0, result.output
        assert len(catalog(workspace)[0]) == 2

    def test_credentials_in_the_url_never_show(self, workspace, locked_pacs: Orthanc) -> None:
        url = locked_pacs.dicomweb.replace("http://", "http://reader:wrong%20pass@")
        with pytest.raises(PeerError, match="HTTP 401") as info:
            run_collect_dicomweb(workspace, DicomwebPeer(url))
        assert "wrong" not in str(info.value) and "reader" not in str(info.value)

    def test_wrong_service_root_is_one_line(self, workspace, pacs: Orthanc) -> None:
        result = runner.invoke(app, ["collect", "dicomweb", f"{pacs.url}/not-dicom-web", "-w", str(workspace.root)])
        assert_one_line_error(result, f"{pacs.url}/not-dicom-web", "HTTP 404", "service root")

    def test_nothing_listening_is_one_line(self, workspace) -> None:
        url = f"http://127.0.0.1:{free_port()}/dicom-web"
        result = runner.invoke(app, ["collect", "dicomweb", url, "--timeout", "5", "-w", str(workspace.root)])
        assert_one_line_error(result, url, "cannot connect")
