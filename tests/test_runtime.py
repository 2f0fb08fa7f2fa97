"""Runtime: the process-pool executor, atomic writes and the stage lock."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cxrlab.errors import CxrlabError
from cxrlab.runtime import Executor, atomic_write_bytes, default_workers
from cxrlab.runtime.files import exclusive_lock, remove_stale_temporaries


def _square_pid(x: int) -> tuple[int, int]:
    return x * x, os.getpid()


def _power(x: int, n: int) -> int:
    return x**n


class TestExecutor:
    def test_defaults_to_all_cores(self) -> None:
        assert Executor().workers == default_workers() >= 1

    def test_results_in_input_order_on_several_processes(self) -> None:
        out = list(Executor(2).map(_square_pid, range(50)))
        assert [item for item, _ in out] == list(range(50))
        assert [res[0] for _, res in out] == [x * x for x in range(50)]
        assert os.getpid() not in {res[1] for _, res in out}

    @pytest.mark.parametrize("chunksize", [1, 7, 64])
    def test_chunks_keep_input_order_and_pass_extra_arguments(self, chunksize: int) -> None:
        out = list(Executor(2).map(_power, range(41), 3, chunksize=chunksize))
        assert out == [(x, x**3) for x in range(41)]

    def test_invalid_chunksize_raises(self) -> None:
        with pytest.raises(ValueError, match="chunksize must be >= 1"):
            list(Executor(2).map(_power, [1], 2, chunksize=0))

    def test_one_worker_runs_in_process(self) -> None:
        out = list(Executor(1).map(_square_pid, [3]))
        assert out == [(3, (9, os.getpid()))]

    def test_invalid_workers_raises(self) -> None:
        with pytest.raises(ValueError, match="workers must be >= 1"):
            Executor(0)


class TestAtomicWrite:
    def test_writes_mode_and_leaves_no_temporary(self, tmp_path: Path) -> None:
        target = tmp_path / "sub" / "f.bin"
        atomic_write_bytes(target, b"abc", mode=0o600)
        assert target.read_bytes() == b"abc"
        assert oct(target.stat().st_mode & 0o777) == "0o600"
        assert [p.name for p in target.parent.iterdir()] == ["f.bin"]

    def test_stale_temporaries_are_removed(self, tmp_path: Path) -> None:
        (tmp_path / ".f.bin.abc.tmp").write_bytes(b"half")
        (tmp_path / "keep.dcm").write_bytes(b"x")
        assert remove_stale_temporaries(tmp_path) == 1
        assert [p.name for p in tmp_path.iterdir()] == ["keep.dcm"]


class TestExclusiveLock:
    def test_second_holder_raises(self, tmp_path: Path) -> None:
        lock = tmp_path / ".lock"
        with exclusive_lock(lock, "ingest"):
            pid = os.fork()
            if pid == 0:  # child: a different process must be refused
                try:
                    with exclusive_lock(lock, "ingest"):
                        os._exit(1)
                except CxrlabError:
                    os._exit(0)
            _, status = os.waitpid(pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
        with exclusive_lock(lock, "ingest"):  # released after the block
            pass
