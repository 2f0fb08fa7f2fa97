"""DaskExecutor against an in-process Dask cluster (threads, no network): the map contract, the workspace check's
error, and the errors of a bad address. The real processes (``dask scheduler``/``dask worker``) are in
tests/integration/test_dask.py."""

from __future__ import annotations

from pathlib import Path

import pytest

from cxrlab.runtime import DaskExecutor, Executor
from cxrlab.runtime.cluster import ClusterError, SchedulerUnavailableError

distributed = pytest.importorskip("distributed", reason="needs the [dask] extra")


@pytest.fixture(scope="module")
def address():
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as c:
        yield c.scheduler_address


def _add(x: int, y: int) -> int:
    return x + y


class TestMap:
    @pytest.mark.parametrize("chunksize", [1, 5])
    def test_same_results_and_order_as_the_pool(self, address: str, chunksize: int) -> None:
        with DaskExecutor(address, min_chunk=3) as ex:
            got = list(ex.map(_add, range(40), 100, chunksize=chunksize))
        assert got == list(Executor(1).map(_add, range(40), 100))

    def test_empty_input(self, address: str) -> None:
        with DaskExecutor(address) as ex:
            assert list(ex.map(_add, [], 1)) == []

    def test_describe_names_the_scheduler_and_threads(self, address: str) -> None:
        with DaskExecutor(address) as ex:
            assert ex.describe() == f"Dask {address} (2 worker threads)"
        assert Executor(2).describe() == "process pool (2 workers)"

    def test_invalid_arguments(self, address: str) -> None:
        with pytest.raises(ValueError):
            DaskExecutor(address, min_chunk=0)
        with DaskExecutor(address) as ex, pytest.raises(ValueError):
            list(ex.map(_add, [1], 1, chunksize=0))


class TestWorkspaceCheck:
    def test_a_worker_that_cannot_see_the_folder_is_named(self, address: str, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
        import cxrlab.runtime.cluster as cluster

        monkeypatch.setattr(cluster, "_probe_paths", lambda checks: [checks[0][0]])
        with DaskExecutor(address) as ex, pytest.raises(ClusterError) as info:
            ex.check_paths([tmp_path])
        message = str(info.value)
        assert message.startswith(f"{tmp_path.resolve()}: not visible to Dask worker ")
        assert "(host " in message and "same path on every worker host" in message
        assert not list(tmp_path.glob(".cxrlab-cluster-*"))

    def test_a_folder_without_the_marker_is_not_the_same_folder(self, tmp_path: Path) -> None:
        from cxrlab.runtime.cluster import _probe_paths

        assert _probe_paths([(str(tmp_path), "abc"), (str(tmp_path), None), (str(tmp_path / "x"), None)]) == [
            str(tmp_path), str(tmp_path / "x")]
        (tmp_path / ".cxrlab-cluster-abc").touch()
        assert _probe_paths([(str(tmp_path), "abc")]) == []


class TestAddress:
    @pytest.mark.parametrize("address", ["tcp://127.0.0.1", "tcp://:8786", "tcp://127.0.0.1:notaport"])
    def test_not_an_address(self, address: str) -> None:
        with pytest.raises(SchedulerUnavailableError, match="not a scheduler address"):
            DaskExecutor(address).connect()

    def test_exit_code_is_2(self) -> None:
        assert SchedulerUnavailableError().exit_code == 2
