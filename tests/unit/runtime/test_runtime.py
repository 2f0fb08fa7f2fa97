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

    def test_private_file_is_never_readable_by_others(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        """The temporary was created 0644 and narrowed only after the write (a window for the key file and the
        exported identifier mapping)."""
        import cxrlab.runtime.files as files

        seen: list[int] = []
        real_fsync = os.fsync
        monkeypatch.setattr(files.os, "fsync", lambda fd: (seen.append(os.fstat(fd).st_mode & 0o777),
                                                            real_fsync(fd))[1])
        atomic_write_bytes(tmp_path / "secret.key", b"abc", mode=0o600)
        assert seen == [0o600]

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


class TestUnpack:
    """runtime.unpack: the one limit on unpacked size, tested with real (small) bombs and low limits."""

    @staticmethod
    def _bomb(mib: int = 50) -> bytes:
        """A genuine gzip bomb: *mib* MiB of zeros, about 50 KiB packed."""
        import gzip

        return gzip.compress(b"\0" * (mib * 2**20), compresslevel=9)

    def test_default_limit_is_2_gib(self) -> None:
        from cxrlab.runtime.unpack import DEFAULT_MAX_UNPACKED, max_unpacked

        assert DEFAULT_MAX_UNPACKED == max_unpacked() == 2 * 2**30

    def test_bomb_stops_at_the_limit(self, tmp_path: Path) -> None:
        from cxrlab.runtime.unpack import UnpackedTooLargeError, open_table

        bomb = tmp_path / "bomb.csv.gz"
        bomb.write_bytes(self._bomb())
        assert bomb.stat().st_size < 100_000
        pattern = r"bomb\.csv\.gz: unpacks to more than 1 MiB"
        with pytest.raises(UnpackedTooLargeError, match=pattern) as info, open_table(bomb, limit=2**20) as fh:
            fh.read()
        assert info.value.exit_code == 2 and info.value.limit == 2**20

    def test_exactly_the_limit_passes(self, tmp_path: Path) -> None:
        import gzip

        from cxrlab.runtime.unpack import UnpackedTooLargeError, open_table, unpack_bytes

        data = b"a,b\n" + b"1,2\n" * 1000
        path = tmp_path / "t.csv.gz"
        path.write_bytes(gzip.compress(data))
        with open_table(path, limit=len(data)) as fh:
            assert fh.read() == data
        assert unpack_bytes(gzip.compress(data), path="t", limit=len(data)) == data
        with pytest.raises(UnpackedTooLargeError):
            unpack_bytes(gzip.compress(data), path="t", limit=len(data) - 1)

    def test_limit_set_for_a_block(self) -> None:
        from cxrlab.runtime.unpack import UnpackedTooLargeError, max_unpacked, unpack_bytes, unpack_limit

        with unpack_limit(4096):
            assert max_unpacked() == 4096
            with pytest.raises(UnpackedTooLargeError, match="more than 4 KiB"):
                unpack_bytes(self._bomb(1), path="x.gz")
            with unpack_limit(None):
                assert max_unpacked() == 4096
        assert max_unpacked() == 2 * 2**30
        with pytest.raises(ValueError, match="positive"), unpack_limit(0):
            pass

    def test_plain_file_is_read_as_it_is(self, tmp_path: Path) -> None:
        from cxrlab.runtime.unpack import open_table, unpack_bytes

        (tmp_path / "t.csv").write_bytes(b"x" * 5000)
        with open_table(tmp_path / "t.csv", limit=10) as fh:
            assert fh.read() == b"x" * 5000
        assert unpack_bytes(b"plain", path="p", limit=1) == b"plain"

    @pytest.mark.parametrize("data", [b"\x1f\x8b\x08\x00broken", None])
    def test_corrupt_stream_raises(self, tmp_path: Path, data: bytes | None) -> None:
        from cxrlab.runtime.unpack import CorruptStreamError, open_table

        if data is None:  # a real stream cut in the middle
            data = self._bomb(1)[:200]
        (tmp_path / "c.gz").write_bytes(data)
        pattern = r"c\.gz: corrupt or truncated compressed data"
        with pytest.raises(CorruptStreamError, match=pattern), open_table(tmp_path / "c.gz") as fh:
            fh.read()

    def test_raw_deflate_size(self) -> None:
        import io
        import zlib

        from cxrlab.runtime.unpack import CorruptStreamError, UnpackedTooLargeError, check_inflated_size

        z = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
        packed = z.compress(b"\0" * 3 * 2**20) + z.flush()
        assert check_inflated_size(io.BytesIO(packed), path="d") == 3 * 2**20
        with pytest.raises(UnpackedTooLargeError, match="d: unpacks to more than 1 MiB"):
            check_inflated_size(io.BytesIO(packed), path="d", limit=2**20)
        with pytest.raises(CorruptStreamError):
            check_inflated_size(io.BytesIO(packed[: len(packed) // 2]), path="d")

    @pytest.mark.parametrize(("text", "size"), [
        ("4GiB", 4 * 2**30), ("500MB", 500 * 10**6), ("3g", 3 * 2**30), ("2048", 2048), ("1.5 MiB", 3 * 2**19),
        ("10KiB", 10240), ("2kB", 2000),
    ])
    def test_parse_size(self, text: str, size: int) -> None:
        from cxrlab.runtime.unpack import parse_size

        assert parse_size(text) == size

    @pytest.mark.parametrize("text", ["lots", "-1", "0", "4 GiBs", ""])
    def test_parse_size_raises(self, text: str) -> None:
        from cxrlab.runtime.unpack import parse_size

        with pytest.raises(ValueError, match="size"):
            parse_size(text)
