"""Reading compressed input with a limit on its unpacked size (decompression bombs).

A gzip file of 10 MB can unpack to gigabytes (``zeros | gzip`` packs about 1000:1): read whole, it exhausts
memory before anything is parsed. Every reader of compressed input in cxrlab goes through
:class:`LimitedReader`, which streams the decompressor's output and fails with :class:`UnpackedTooLargeError`
once more than the limit has come out, whatever asks for the bytes (pandas' CSV parser, an upload, a deflated
DICOM data set):

- :func:`open_table` opens a ``.csv`` or ``.csv.gz`` file (gzip recognised by its magic bytes, RFC 1952 2.3.1)
  for streaming; :func:`unpack_bytes` unpacks an upload held in memory;
- :func:`check_inflated_size` reads a raw deflate stream (RFC 1951, as in the Deflated Explicit VR Little
  Endian transfer syntax, PS3.5 A.5) to its end without keeping it.

The limit is :data:`DEFAULT_MAX_UNPACKED` (2 GiB: the largest public release table, NIH's ``Data_Entry_2017.csv``,
is 7.8 MB; VinDr-CXR's annotations are a few MB), changed for a block of code with :func:`unpack_limit` (the CLI's
``--max-unpacked`` option) or per call.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import BinaryIO

from cxrlab.errors import FileError

__all__ = [
    "DEFAULT_MAX_UNPACKED",
    "GZIP_MAGIC",
    "CorruptStreamError",
    "LimitedReader",
    "UnpackedTooLargeError",
    "check_inflated_size",
    "format_size",
    "is_gzip",
    "max_unpacked",
    "open_table",
    "parse_size",
    "unpack_bytes",
    "unpack_limit",
]

#: Default limit on the unpacked size of one compressed input.
DEFAULT_MAX_UNPACKED = 2 * 2**30
#: The first two bytes of a gzip member (RFC 1952 2.3.1: ID1 ID2).
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

_limit: ContextVar[int] = ContextVar("cxrlab_max_unpacked", default=DEFAULT_MAX_UNPACKED)


class UnpackedTooLargeError(FileError):
    """A compressed input unpacks to more than the limit (the CLI exits with code 2)."""

    exit_code = 2

    def __init__(self, path: str | Path, limit: int) -> None:
        self.limit = limit
        super().__init__(path, f"unpacks to more than {format_size(limit)} (the limit on unpacked size)")


class CorruptStreamError(FileError):
    """A compressed stream is corrupt or truncated."""


def format_size(n: int) -> str:
    """``2 GiB``, ``64 KiB``, ``1.5 MiB``, ``100 bytes`` (binary units)."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?)b?|b?)\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """Read a size: ``4GiB``, ``500MB``, ``3g``, ``2048`` (bytes). ``Ki/Mi/Gi/Ti`` are powers of 1024, ``k/M/G/T``
    of 1000, except that a bare letter (``4g``) means 1024, as in ``ulimit`` and ``sort -S``.

    A size option needs no library of its own (the well-kept size parsers pull in a package for one regular
    expression).

    Raises
    ------
    ValueError
        Not a size, or not positive.
    """
    m = _SIZE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a size (e.g. 4GiB, 500MB, 2048)")
    number, unit, binary = float(m.group(1)), (m.group(2) or "").lower(), m.group(3)
    bare = unit and not binary and not text.strip().lower().endswith("b")
    base = 1024 if (binary or bare) else 1000
    value = int(number * base ** ("kmgt".index(unit) + 1)) if unit else int(number)
    if value <= 0:
        raise ValueError(f"{text!r}: a size must be positive")
    return value


def max_unpacked() -> int:
    """The limit in force (bytes)."""
    return _limit.get()


@contextmanager
def unpack_limit(limit: int | None) -> Iterator[None]:
    """Use *limit* (bytes) for the readers called inside the block; None keeps the current limit."""
    if limit is None:
        yield
        return
    if limit <= 0:
        raise ValueError("the limit on unpacked size must be positive")
    token = _limit.set(int(limit))
    try:
        yield
    finally:
        _limit.reset(token)


class LimitedReader(io.RawIOBase):
    """A read-only stream over a decompressing stream that fails once more than *limit* bytes came out.

    Decompression errors (``zlib.error``, a cut stream, a bad header) become :class:`CorruptStreamError`, the
    size overrun :class:`UnpackedTooLargeError`; both name *path*.

    Parameters
    ----------
    inner : binary stream
        Yields the unpacked bytes (a :class:`gzip.GzipFile`, ...).
    path : str or Path
        Named in the errors.
    limit : int, optional
        Bytes allowed; default :func:`max_unpacked`.
    """

    def __init__(self, inner: BinaryIO, *, path: str | Path, limit: int | None = None) -> None:
        super().__init__()
        self._inner = inner
        self.path = path
        self.limit = max_unpacked() if limit is None else limit
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # noqa: ANN001 - a writable buffer (memoryview, bytearray)
        view = memoryview(buffer).cast("B")
        # Ask for one byte more than the limit allows, so an input of exactly the limit still passes.
        want = min(len(view), self.limit - self.count + 1)
        try:
            data = self._inner.read(want)
        except (zlib.error, EOFError, gzip.BadGzipFile) as exc:
            reason = f"corrupt or truncated compressed data ({type(exc).__name__})"
            raise CorruptStreamError(self.path, reason) from None
        n = len(data)
        self.count += n
        if self.count > self.limit:
            raise UnpackedTooLargeError(self.path, self.limit)
        view[:n] = data
        return n

    def readall(self) -> bytes:
        """Everything left, read in 1 MiB pieces (RawIOBase's default reads 8 KiB at a time)."""
        parts, buf = [], bytearray(_CHUNK)
        while n := self.readinto(buf):
            parts.append(bytes(buf[:n]))
        return b"".join(parts)

    def close(self) -> None:
        try:
            self._inner.close()
        finally:
            super().close()


def is_gzip(path: str | Path) -> bool:
    """True when *path* starts with the gzip magic bytes (whatever its suffix)."""
    with open(path, "rb") as fh:
        return fh.read(2) == GZIP_MAGIC


@contextmanager
def open_table(path: str | Path, *, limit: int | None = None) -> Iterator[BinaryIO]:
    """Open a ``.csv`` or gzip-compressed CSV for streaming: a plain file as it is, a gzip file through a
    :class:`LimitedReader` (*limit* bytes unpacked at most; default :func:`max_unpacked`).

    A gzip file is first unpacked to its end without keeping anything (about 1 s per GiB), so a bomb fails
    before a parser has built gigabytes of rows from it; the reader then given out checks the limit again.

    Raises
    ------
    OSError
        The file cannot be opened.
    UnpackedTooLargeError, CorruptStreamError
        As :class:`LimitedReader` says (at once, or while reading).
    """
    raw = open(path, "rb")  # noqa: SIM115 - closed below, or by the readers that wrap it
    try:
        if raw.read(2) != GZIP_MAGIC:
            raw.seek(0)
            yield raw
            return
        raw.seek(0)
        _drain(LimitedReader(gzip.GzipFile(fileobj=raw), path=path, limit=limit))
        raw.seek(0)
        with io.BufferedReader(LimitedReader(gzip.GzipFile(fileobj=raw), path=path, limit=limit), _CHUNK) as fh:
            yield fh
    finally:
        raw.close()


def _drain(reader: LimitedReader) -> int:
    """Read *reader* to its end, keeping nothing; the number of bytes it gave."""
    buf = bytearray(_CHUNK)
    while reader.readinto(buf):
        pass
    return reader.count


def unpack_bytes(data: bytes, *, path: str | Path, limit: int | None = None) -> bytes:
    """*data* as sent, or unpacked when it starts with the gzip magic bytes (at most *limit* bytes).

    Raises
    ------
    UnpackedTooLargeError, CorruptStreamError
        As :class:`LimitedReader` says, naming *path*.
    """
    if data[:2] != GZIP_MAGIC:
        return data
    with LimitedReader(gzip.GzipFile(fileobj=io.BytesIO(data)), path=path, limit=limit) as fh:
        return fh.readall()


class _RawInflater(io.RawIOBase):
    """A raw deflate stream (no zlib or gzip header, RFC 1951) as a readable stream."""

    def __init__(self, fh: BinaryIO) -> None:
        super().__init__()
        self._fh = fh
        self._z = zlib.decompressobj(-zlib.MAX_WBITS)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = _CHUNK if size is None or size < 0 else size
        while not self._pending:
            if self._z.eof:
                return b""
            packed = self._z.unconsumed_tail or self._fh.read(_CHUNK)
            if not packed:
                raise EOFError("deflate stream ends before its last block")
            self._pending = self._z.decompress(packed, _CHUNK)
        out, self._pending = self._pending[:size], self._pending[size:]
        return out


def check_inflated_size(fh: BinaryIO, *, path: str | Path, limit: int | None = None) -> int:
    """Inflate the raw deflate stream at *fh*'s position to its end, keeping nothing; return its size.

    Raises
    ------
    UnpackedTooLargeError
        It inflates to more than *limit* bytes (default :func:`max_unpacked`).
    CorruptStreamError
        The stream is corrupt or cut short.
    """
    return _drain(LimitedReader(_RawInflater(fh), path=path, limit=limit))
