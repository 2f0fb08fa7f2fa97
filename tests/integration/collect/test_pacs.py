"""``cxrlab collect pacs`` against a real Orthanc and a real dcmqrscp: the filters, C-GET and C-MOVE, a PACS
that refuses or does not answer, a study that vanishes, a corrupt instance, and ``kill -9`` then rerun."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pydicom.uid import generate_uid
from sqlalchemy import func, select
from typer.testing import CliRunner

from cxrlab.catalog.models import CollectInstance, CollectState, CollectStudy, Image, QuarantineItem
from cxrlab.cli.main import app
from cxrlab.collect import DicomwebPeer, Peer, PeerError, QueryFilters, run_collect_dicomweb, run_collect_pacs
from tests.integration.collect.conftest import Archive, phantom_set
from tests.support.orthanc import (
    CXRLAB_AET,
    PHI,
    Orthanc,
    Phantom,
    free_port,
    start_dcmqrscp,
    start_orthanc,
    write_phantom,
)

# slow: real Orthanc/dcmtk processes, and processes killed with SIGKILL
pytestmark = [pytest.mark.pacs, pytest.mark.slow]

runner = CliRunner()
TIMEOUT = 20.0


def peer_of(server: Orthanc, *, calling: str = CXRLAB_AET, called: str | None = None, timeout: float = TIMEOUT) -> Peer:
    return Peer("127.0.0.1", server.dicom_port, called or server.aet, calling, timeout=timeout)


def catalog(ws) -> tuple[set[str], dict[str, str]]:  # noqa: ANN001 - Workspace
    """SOP Instance UIDs of the catalog's images, and the quarantine's reasons by source."""
    with ws.sessions() as s:
        uids = list(s.scalars(select(Image.sop_instance_uid)))
        quarantined = {q.source_path: q.reason for q in s.scalars(select(QuarantineItem))}
    assert len(uids) == len(set(uids)), "an instance recorded twice"
    return set(uids), quarantined


def quarantined_uids(archive: Archive) -> set[str]:
    """What arrives unusable: chrJapMulti has no Pixel Data."""
    return {archive.uid_of("chrJapMulti.dcm")}


class TestQueryFilters:
    """C-FIND filters: the catalog holds exactly the matching instances (counts asserted), C-GET and C-MOVE."""

    def test_default_filters_collect_every_cr_and_dx_instance(self, workspace, pacs: Orthanc, archive: Archive) -> None:
        expected = archive.expected()
        assert len(expected) == 10  # 6 phantoms (the CT study is left out) + the 4 real CRs
        report = run_collect_pacs(workspace, peer_of(pacs))
        uids, quarantine = catalog(workspace)
        assert uids == expected - quarantined_uids(archive)
        assert report.counts["ingested"] == 9 and report.counts["quarantined"] == 1
        assert report.counts["studies found"] == 7 and report.counts["studies done"] == 7
        assert list(quarantine.values()) == ["no pixel data (7FE0,0010)"]
        with workspace.sessions() as s:
            origins = set(s.scalars(select(Image.origin)))
        assert all(o.startswith(f"pacs ORTHANC@127.0.0.1:{pacs.dicom_port} study ") for o in origins), origins

    @pytest.mark.parametrize(("filters", "oracle", "n"), [
        (QueryFilters(body_part="CHEST", study_date="20200101-20201231"),
         {"date": ("20200101", "20201231"), "body_part": "CHEST"}, 4),
        (QueryFilters(modalities=("DX",)), {"modalities": ("DX",)}, 3),
        (QueryFilters(modalities=("CT",), body_part="CHEST"), {"modalities": ("CT",), "body_part": "CHEST"}, 2),
        (QueryFilters(study_date="20210101-"), {"date": ("20210101", "99991231")}, 1),
    ], ids=["chest-2020", "dx", "ct-chest", "since-2021"])
    def test_filters_keep_exactly_the_matching_instances(
        self, workspace, pacs: Orthanc, archive: Archive, filters: QueryFilters, oracle: dict, n: int
    ) -> None:
        expected = archive.expected(**oracle)
        assert len(expected) == n
        report = run_collect_pacs(workspace, peer_of(pacs), filters)
        assert catalog(workspace)[0] == expected
        assert report.counts["ingested"] == n

    def test_limit_keeps_the_first_studies_by_date(self, workspace, pacs: Orthanc, archive: Archive) -> None:
        report = run_collect_pacs(workspace, peer_of(pacs), QueryFilters(study_date="20200101-", limit=1))
        assert report.counts["studies found"] == 1
        first = [p for p, ds in archive.headers.items() if ds.StudyDate == "20200310"]
        assert catalog(workspace)[0] == {archive.headers[p].SOPInstanceUID for p in first}

    def test_c_move_collects_the_same_set_as_c_get(self, workspace, pacs: Orthanc, archive: Archive,
                                                   move_port: int) -> None:
        filters = QueryFilters(body_part="CHEST", study_date="20200101-20201231")
        report = run_collect_pacs(workspace, peer_of(pacs), filters, method="move", move_port=move_port,
                                  bind="127.0.0.1")
        assert catalog(workspace)[0] == archive.expected(date=("20200101", "20201231"), body_part="CHEST")
        assert report.counts["ingested"] == 4

    def test_rerun_retrieves_nothing_again(self, workspace, pacs: Orthanc) -> None:
        filters = QueryFilters(modalities=("DX",))
        run_collect_pacs(workspace, peer_of(pacs), filters)
        again = run_collect_pacs(workspace, peer_of(pacs), filters)
        assert again.counts["ingested"] == 0 and again.counts["already_ingested"] == 0
        assert "nothing to retrieve" in " ".join(again.notes)


class TestCli:
    def test_collect_pacs_prints_the_summary(self, workspace, pacs: Orthanc) -> None:
        result = runner.invoke(app, ["collect", "pacs", "--host", "127.0.0.1", "--port", str(pacs.dicom_port),
                                     "--called-aet", "ORTHANC", "--modality", "CR", "--modality", "DX",
                                     "--study-date", "20200101-20201231", "--body-part", "CHEST",
                                     "-w", str(workspace.root)])
        assert result.exit_code == 0, result.output
        assert "studies found" in result.output and "ingested" in result.output
        for value in PHI.values():
            assert value not in result.output

    def test_invalid_study_date_is_a_usage_error(self, workspace) -> None:
        result = runner.invoke(app, ["collect", "pacs", "--host", "127.0.0.1", "--port", "104", "--called-aet",
                                     "X", "--study-date", "20201301", "-w", str(workspace.root)])
        assert_one_line_error(result, "invalid study date", "20201301")


def assert_one_line_error(result, *parts: str) -> str:  # noqa: ANN001 - a click Result
    """Exit 1 through the CLI's error path (no traceback), one line naming every part."""
    assert type(result.exception) is SystemExit and result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for part in parts:
        assert part in lines[0], (part, lines[0])
    return lines[0]


@contextmanager
def mute_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers (a PACS that hangs)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    conns: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conns.append(sock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, daemon=True)
    t.start()
    try:
        yield sock.getsockname()[1]
    finally:
        stop.set()
        t.join()
        for c in conns:
            c.close()
        sock.close()


class TestRefusingPacs:
    """A PACS that refuses or does not answer: one line naming it, exit 1, never a traceback."""

    def cli(self, ws, port: int, *extra: str):  # noqa: ANN001, ANN201
        return runner.invoke(app, ["collect", "pacs", "--host", "127.0.0.1", "--port", str(port),
                                   "-w", str(ws.root), *extra])

    def test_unknown_calling_ae_is_rejected(self, workspace, pacs: Orthanc) -> None:
        result = self.cli(workspace, pacs.dicom_port, "--called-aet", "ORTHANC", "--calling-aet", "STRANGER")
        assert_one_line_error(result, f"ORTHANC@127.0.0.1:{pacs.dicom_port}", "association rejected",
                              "calling AE title not recognised", "'STRANGER'")

    def test_wrong_called_ae_is_rejected(self, workspace, pacs: Orthanc) -> None:
        result = self.cli(workspace, pacs.dicom_port, "--called-aet", "NOT_ORTHANC")
        assert_one_line_error(result, f"NOT_ORTHANC@127.0.0.1:{pacs.dicom_port}", "association rejected",
                              "called AE title not recognised", "--called-aet")

    def test_a_pacs_that_does_not_answer_times_out(self, workspace) -> None:
        with mute_server() as port:
            result = self.cli(workspace, port, "--called-aet", "HANGS", "--timeout", "1")
        assert_one_line_error(result, f"HANGS@127.0.0.1:{port}", "no association answer within 1 s")

    def test_nothing_listening_is_refused(self, workspace) -> None:
        with socket.socket() as sock:  # bound, never listening: connections are refused
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            result = self.cli(workspace, port, "--called-aet", "GONE", "--timeout", "5")
        assert_one_line_error(result, f"GONE@127.0.0.1:{port}", "connection refused")

    def test_library_raises_peer_error(self, workspace, pacs: Orthanc) -> None:
        with pytest.raises(PeerError, match=r"^ORTHANC@127\.0\.0\.1:\d+: association rejected"):
            run_collect_pacs(workspace, peer_of(pacs, calling="STRANGER"))


@pytest.fixture
def own_pacs(tmp_path: Path) -> Iterator[Orthanc]:
    """An empty Orthanc of the test's own (for tests that change what the PACS holds)."""
    server = start_orthanc(tmp_path / "orthanc")
    try:
        yield server
    finally:
        server.stop()


def corrupt_phantom(path: Path, p: Phantom) -> Path:
    """A phantom whose header claims 128x128 while its Pixel Data holds 64x64 (Orthanc stores it as is)."""
    import pydicom

    write_phantom(path, p)
    ds = pydicom.dcmread(path)
    ds.Rows = ds.Columns = 128
    ds.save_as(path, enforce_file_format=True)
    return path


class TestStudiesThatChange:
    def test_study_vanishing_between_find_and_get_is_recorded(self, workspace, own_pacs: Orthanc,
                                                              tmp_path: Path) -> None:
        early, late = generate_uid(), generate_uid()
        files = [write_phantom(tmp_path / "a.dcm", Phantom(early, generate_uid(), "20200101")),
                 write_phantom(tmp_path / "b.dcm", Phantom(late, generate_uid(), "20200202"), seed=1)]
        own_pacs.upload(files)

        def on_study(done: int, total: int) -> None:
            if done == 1:  # the first study is in; the second was found but is deleted before its C-GET
                own_pacs.delete_study(late)

        report = run_collect_pacs(workspace, peer_of(own_pacs), on_study=on_study)
        assert report.counts["studies done"] == 1 and report.counts["studies vanished"] == 1
        with workspace.sessions() as s:
            states = dict(s.execute(select(CollectStudy.study_uid, CollectStudy.state)).all())
        assert states == {early: CollectState.DONE, late: CollectState.VANISHED}
        again = run_collect_pacs(workspace, peer_of(own_pacs))
        assert again.counts["ingested"] == 0 and not again.problems

    def test_corrupt_instance_is_quarantined_and_the_rest_collected(self, workspace, own_pacs: Orthanc,
                                                                    tmp_path: Path) -> None:
        study, series = generate_uid(), generate_uid()
        good = write_phantom(tmp_path / "good.dcm", Phantom(study, series))
        bad = corrupt_phantom(tmp_path / "bad.dcm", Phantom(study, series))
        own_pacs.upload([good, bad])
        report = run_collect_pacs(workspace, peer_of(own_pacs))
        assert report.counts["ingested"] == 1 and report.counts["quarantined"] == 1
        uids, quarantine = catalog(workspace)
        assert len(uids) == 1
        (source, reason), = quarantine.items()
        assert source.startswith(f"ORTHANC@127.0.0.1:{own_pacs.dicom_port} #") and "pixel data" in reason.lower()
        with workspace.sessions() as s:
            assert s.scalar(select(CollectStudy.state)) == CollectState.DONE
            assert sorted(s.scalars(select(CollectInstance.state))) == [CollectState.DONE, CollectState.FAILED]
        assert not list(workspace.path("incoming").rglob("*.dcm")), "spool files left behind"


KILLER = """
import os, signal, sys
from cxrlab.catalog import open_workspace
from cxrlab.collect import Peer, run_collect_pacs

ws = open_workspace(sys.argv[1])
peer = Peer("127.0.0.1", int(sys.argv[2]), "ORTHANC", "CXRLAB", timeout=20)
after = int(sys.argv[3])

def on_progress(done, total):
    if done >= after:
        os.kill(os.getpid(), signal.SIGKILL)

run_collect_pacs(ws, peer, on_progress=on_progress)
"""


class TestKillAndRerun:
    def test_kill_9_mid_collect_then_rerun_loses_nothing_and_fetches_nothing_twice(
        self, workspace, pacs: Orthanc, archive: Archive
    ) -> None:
        script = workspace.root / "killer.py"
        script.write_text(KILLER)
        proc = subprocess.run([sys.executable, str(script), str(workspace.root), str(pacs.dicom_port), "3"],
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == -signal.SIGKILL, proc.stderr
        with workspace.sessions() as s:
            before = s.scalar(select(func.count(Image.id)))
            pending = s.scalar(select(func.count(CollectInstance.id))
                               .where(CollectInstance.state == CollectState.PENDING))
        expected = archive.expected() - quarantined_uids(archive)
        assert 0 < before < len(expected) and pending > 0, (before, pending)

        report = run_collect_pacs(workspace, peer_of(pacs))
        uids, quarantine = catalog(workspace)
        assert uids == expected
        assert len(quarantine) == 1
        # only the missing instances came: none arrived twice
        assert report.counts["already_ingested"] == 0 and report.counts["duplicate"] == 0
        assert report.counts["ingested"] + before == len(expected)
        with workspace.sessions() as s:
            assert set(s.scalars(select(CollectStudy.state))) == {CollectState.DONE}
        for value in PHI.values():
            assert value not in proc.stdout + proc.stderr


class TestDcmqrscp:
    """dcmtk's dcmqrscp as a second, independent PACS."""

    @pytest.fixture
    def dcmqrscp(self, tmp_path: Path) -> Iterator[tuple]:
        files = [write_phantom(tmp_path / "in" / f"{i}.dcm", p, seed=i) for i, p in enumerate(phantom_set())]
        move_port = free_port()
        server = start_dcmqrscp(tmp_path / "dcmqrscp", files, move_port=move_port)
        try:
            yield Peer("127.0.0.1", server.port, server.aet, CXRLAB_AET, timeout=TIMEOUT), move_port
        finally:
            server.stop()

    @pytest.mark.parametrize("method", ["get", "move"])
    def test_collects_the_matching_phantoms(self, workspace, dcmqrscp: tuple, method: str) -> None:
        peer, move_port = dcmqrscp
        report = run_collect_pacs(workspace, peer, QueryFilters(study_date="20200101-20201231"), method=method,
                                  move_port=move_port, bind="127.0.0.1")
        assert report.counts["ingested"] == 5, (report.counts, report.problems)  # the 2020 CR and DX phantoms
        assert report.counts["studies found"] == 2
        assert len(catalog(workspace)[0]) == 5

    def test_a_pacs_without_body_part_says_why_series_were_left_out(self, workspace, dcmqrscp: tuple) -> None:
        """dcmqrscp does not return Body Part Examined: --body-part keeps nothing, and the report says so."""
        peer, _ = dcmqrscp
        report = run_collect_pacs(workspace, peer, QueryFilters(body_part="CHEST"))
        assert report.counts["studies found"] == 0 and report.counts["series left out: no Body Part Examined"] == 4


def test_no_peer_error_or_log_line_shows_phi(workspace, pacs: Orthanc, caplog: pytest.LogCaptureFixture,
                                            move_port: int) -> None:
    """Plant PHI (every phantom carries :data:`PHI`), collect at DEBUG log level by C-GET, C-MOVE and DICOMweb,
    and from a refusing peer; grep every log record and message."""
    caplog.set_level("DEBUG")
    run_collect_pacs(workspace, peer_of(pacs))
    run_collect_pacs(workspace, peer_of(pacs), QueryFilters(modalities=("CT",)), method="move",
                     move_port=move_port, bind="127.0.0.1")
    run_collect_dicomweb(workspace, DicomwebPeer(pacs.dicomweb), QueryFilters(modalities=("DX",)))
    with pytest.raises(PeerError) as info:
        run_collect_pacs(workspace, peer_of(pacs, calling="STRANGER"))
    text = caplog.text + str(info.value)
    text += "".join(p.read_text() for p in workspace.path("quarantine").glob("*.txt"))
    assert caplog.records, "nothing was logged: the test would prove nothing"
    for value in PHI.values():
        assert value not in text
