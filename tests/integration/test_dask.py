"""The batch stages on a real Dask cluster (issue 17): a ``dask scheduler`` and ``dask worker`` processes on
127.0.0.1 (:mod:`tests.support.dask_cluster`) give the same files and catalog rows as the process pool, a worker
killed with SIGKILL mid-batch loses nothing and doubles nothing, and a scheduler that is not there is one line and
exit code 2."""

from __future__ import annotations

import hashlib
import shutil
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cxrlab.catalog import Settings, init_workspace
from cxrlab.catalog.models import Event, Image, QuarantineItem, UidMap
from cxrlab.cli.main import app
from cxrlab.deid import run_deid
from cxrlab.dicom.phantom import generate_phantoms
from cxrlab.ingest import run_ingest
from cxrlab.runtime import DaskExecutor, Executor
from tests.support.dask_cluster import dask_cli, start_dask_cluster
from tests.support.server import free_port

runner = CliRunner()
N = 300

needs_dask = pytest.mark.skipif(dask_cli() is None, reason="needs the [dask] extra (the dask command)")


# --- fixtures ---------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def phantoms(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """300 small phantoms (64-96 px, no burned-in text), as ``cxrlab phantom`` writes them."""
    folder = tmp_path_factory.mktemp("phantoms")
    generate_phantoms(folder, N, seed=17, size_range=(64, 96), text_prob=0.0, outlier_prob=0.1)
    return folder


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, phantoms: Path):
    """Ingest + de-identify with the process pool (2 workers) on SQLite: the outputs every cluster run must give."""
    ws = init_workspace(tmp_path_factory.mktemp("ref") / "ws")
    run_ingest(ws, phantoms, executor=Executor(2))
    run_deid(ws, executor=Executor(2), text=False)
    yield ws
    ws.engine.dispose()


@pytest.fixture(scope="module")
def cluster():
    """A scheduler and two single-thread workers, for the module."""
    if dask_cli() is None:
        pytest.skip("needs the [dask] extra (the dask command)")
    with start_dask_cluster(workers=2) as c:
        yield c


def _workspace_like(ref, root: Path, **settings):  # noqa: ANN001, ANN202 - Workspace
    """A new workspace with *ref*'s secret key (de-identification is keyed: same key, same bytes)."""
    ws = init_workspace(root, settings=Settings(**settings))
    shutil.copyfile(ref.path(ref.settings.key_file), ws.path(ws.settings.key_file))
    return ws


def _tree(folder: Path) -> dict[str, str]:
    """``relative path -> sha256`` of every file below *folder*, hidden ones (temporaries) included."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _rows(ws) -> dict[str, list[tuple]]:  # noqa: ANN001 - Workspace
    """The catalog rows the stages write, without their timestamps."""
    skip = {"created_at", "updated_at", "at"}

    def table(model, order) -> list[tuple]:  # noqa: ANN001
        cols = [c for c in model.__table__.columns if c.name not in skip]
        with ws.sessions() as s:
            return [tuple(r) for r in s.execute(select(*cols).order_by(*order)).all()]

    return {
        "images": table(Image, [Image.id]),
        "events": table(Event, [Event.id]),
        "uid_map": table(UidMap, [UidMap.original, UidMap.kind]),
        "quarantine": table(QuarantineItem, [QuarantineItem.id]),
    }


# --- tests ------------------------------------------------------------------------------------------------------


@needs_dask
class TestNoScheduler:
    def test_one_line_and_exit_code_2(self, workspace) -> None:  # noqa: ANN001
        address = f"tcp://127.0.0.1:{free_port()}"
        result = runner.invoke(app, ["deid", "run", "-w", str(workspace.root), "--no-text", "--scheduler", address])
        assert result.exit_code == 2
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert lines == [f"error: no Dask scheduler answers at {address} (connection refused)"]

    def test_environment_variable_selects_the_scheduler(self, workspace, monkeypatch) -> None:  # noqa: ANN001
        address = f"tcp://127.0.0.1:{free_port()}"
        monkeypatch.setenv("CXRLAB_SCHEDULER", address)
        result = runner.invoke(app, ["ingest", "folder", str(workspace.root), "-w", str(workspace.root)])
        assert result.exit_code == 2
        assert address in result.output


@pytest.mark.slow  # a scheduler and worker processes
class TestExecutorContract:
    def test_order_chunks_and_arguments_sent_once(self, cluster) -> None:  # noqa: ANN001
        _Counted.pickled = 0
        arg = _Counted(7)
        with DaskExecutor(cluster.address, min_chunk=3) as ex:
            got = list(ex.map(_scale, range(50), arg, chunksize=1))
            assert ex.workers == 2
            assert "2 worker threads" in ex.describe()
        assert got == [(i, i * 7) for i in range(50)]
        assert _Counted.pickled == 1  # scattered once, not once per chunk (17 chunks)

    def test_workers_see_the_workspace(self, cluster, tmp_path: Path) -> None:  # noqa: ANN001
        with DaskExecutor(cluster.address) as ex:
            ex.check_paths([tmp_path, tmp_path / "not" / "made" / "yet"])
        assert not list(tmp_path.glob(".cxrlab-cluster-*"))  # the marker files are removed


@pytest.mark.slow  # a Dask cluster, and the same 300 images on the process pool
@pytest.mark.pg
class TestSameAsThePool:
    def test_ingest_and_deid_on_postgresql(self, cluster, reference, phantoms: Path, tmp_path: Path,  # noqa: ANN001
                                           pg_database_url: str) -> None:
        ws = _workspace_like(reference, tmp_path / "ws", database_url=pg_database_url)
        try:
            for cmd in (["ingest", "folder", str(phantoms)], ["deid", "run", "--no-text"]):
                result = runner.invoke(app, [*cmd, "-w", str(ws.root), "--scheduler", cluster.address])
                assert result.exit_code == 0, result.output
                assert f"Dask {cluster.address}" in result.output
            assert _tree(ws.path("raw")) == _tree(reference.path("raw"))
            assert _tree(ws.path("images")) == _tree(reference.path("images"))
            assert _rows(ws) == _rows(reference)
        finally:
            ws.engine.dispose()


@pytest.mark.slow  # a worker process killed with SIGKILL mid-batch
class TestWorkerKilled:
    def test_batch_finishes_identical_without_temporaries(self, cluster, reference, phantoms: Path,  # noqa: ANN001
                                                          tmp_path: Path) -> None:
        ws = _workspace_like(reference, tmp_path / "ws")
        run_ingest(ws, phantoms, executor=Executor(1))
        victim = cluster.add_worker()  # a third worker, so the module's cluster keeps two
        victim_addr = cluster.worker_address(victim)
        done: dict = {}
        with DaskExecutor(cluster.address, min_chunk=4) as ex:
            thread = threading.Thread(target=lambda: done.setdefault("report", run_deid(ws, executor=ex,
                                                                                        text=False)))
            thread.start()
            deadline = time.monotonic() + 120
            busy = False
            while time.monotonic() < deadline and thread.is_alive() and not busy:
                busy = bool(ex.connect().processing(workers=[victim_addr]).get(victim_addr))
                time.sleep(0.005)
            cluster.kill(victim)
            thread.join(timeout=300)
        assert busy, "the worker must be killed while it runs deid tasks for this test to mean anything"
        report = done["report"]
        assert report.counts == _deid_counts(reference)
        assert _tree(ws.path("images")) == _tree(reference.path("images"))  # no .tmp left, nothing missing
        with ws.sessions() as s:
            per_image = s.execute(select(Event.image_pk, func.count()).where(Event.stage == "deid")
                                  .group_by(Event.image_pk)).all()
        assert per_image and all(n == 1 for _pk, n in per_image)  # each image recorded once
        assert _rows(ws) == _rows(reference)


def _deid_counts(ws) -> dict[str, int]:  # noqa: ANN001 - Workspace
    with ws.sessions() as s:
        rows = s.execute(select(Event.action, func.count()).where(Event.stage == "deid").group_by(Event.action)).all()
    names = {"deidentified": "deidentified", "failed": "quarantined"}
    return {names[action]: n for action, n in rows}


class _Counted:
    """An argument that counts how often this process pickles it."""

    pickled = 0

    def __init__(self, factor: int) -> None:
        self.factor = factor

    def __reduce__(self):  # noqa: ANN204
        type(self).pickled += 1
        return (_Counted, (self.factor,))


def _scale(x: int, arg: _Counted) -> int:
    return x * arg.factor



@pytest.mark.slow  # starts a LocalCluster in a cxrlab process
@needs_dask
class TestClusterLocal:
    def test_prints_the_address_and_dashboard_and_stops_on_sigterm(self) -> None:
        import os
        import signal
        import subprocess
        import sys

        proc = subprocess.Popen([sys.executable, "-m", "cxrlab.cli.main", "cluster", "local", "--workers", "1",
                                 "--port", "0", "--dashboard-port", "0"],
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True)
        try:
            address = proc.stdout.readline().split("scheduler: ", 1)[1].strip()
            dashboard = proc.stdout.readline()
            assert address.startswith("tcp://127.0.0.1:")
            assert dashboard.startswith("dashboard: http://127.0.0.1:")
            with DaskExecutor(address) as ex:
                assert list(ex.map(_scale, [1, 2], _Counted(3))) == [(1, 3), (2, 6)]
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            rest, _ = proc.communicate(timeout=60)
        assert proc.returncode == 0
        assert rest.rstrip().endswith("cluster stopped")


@pytest.mark.slow  # a Dask cluster, and the process pool on the same 300 images
class TestDeidFolder:
    def test_same_outputs_and_mapping_as_the_pool(self, cluster, phantoms: Path, tmp_path: Path) -> None:  # noqa: ANN001
        from cxrlab.deid import deid_folder, get_profile
        from cxrlab.deid.batch import mapping_engine

        key = bytes(range(32))
        (tmp_path / "site.key").write_text(key.hex())
        deid_folder(phantoms, tmp_path / "ref", profile=get_profile("vindr"), key=key,
                    mapping=tmp_path / "ref.sqlite", executor=Executor(2))
        result = runner.invoke(app, ["deid", "folder", str(phantoms), str(tmp_path / "out"), "-k",
                                     str(tmp_path / "site.key"), "--mapping", str(tmp_path / "out.sqlite"),
                                     "--no-text", "--scheduler", cluster.address])
        assert result.exit_code == 0, result.output
        assert _tree(tmp_path / "out") == _tree(tmp_path / "ref")

        def mapping(path: Path) -> list[tuple]:
            with mapping_engine(path).connect() as conn:
                return sorted(conn.exec_driver_sql("SELECT original, kind, new FROM uid_map").all())

        assert mapping(tmp_path / "out.sqlite") == mapping(tmp_path / "ref.sqlite")
