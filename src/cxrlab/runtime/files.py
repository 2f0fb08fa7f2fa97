"""Atomic file writes: write to a temporary file in the target folder, fsync, then rename.

A reader (or a killed process) never sees a half-written file.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

__all__ = ["atomic_copy", "atomic_write_bytes", "atomic_write_text"]


def _tmp_in(path: Path) -> tuple[int, str]:
    path.parent.mkdir(parents=True, exist_ok=True)
    return tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644) -> None:
    """Write *data* to *path* atomically with permissions *mode*."""
    path = Path(path)
    fd, tmp = _tmp_in(path)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write UTF-8 *text* to *path* atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: Path | str, dst: Path | str) -> None:
    """Copy *src* to *dst* atomically (the kernel copies the bytes; see shutil.copyfile)."""
    dst = Path(dst)
    fd, tmp = _tmp_in(dst)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
