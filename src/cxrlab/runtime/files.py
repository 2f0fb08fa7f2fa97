"""File services: atomic writes, advisory locks, content hashes and a stable walk of a folder.

Atomic writes go to a temporary file in the target folder, are fsynced, then renamed: a reader (or a killed
process) never sees a half-written file.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cxrlab.errors import CxrlabError

__all__ = [
    "atomic_copy",
    "atomic_link_or_copy",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "exclusive_lock",
    "iter_files",
    "private_file",
    "publish_staged",
    "remove_stale_temporaries",
    "sha256_file",
    "staged_path",
]


@contextmanager
def staged_path(path: Path | str, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a fresh temporary path beside *path* for the caller to create; on success give it *mode* and leave
    it under its temporary name, on error delete it.

    The caller publishes it later with :func:`publish_staged`, once it has recorded what the file is (the
    de-identification batch commits an output's mapping rows first, so a ``kill -9`` never leaves an output
    without them). A temporary never published is removed by :func:`remove_stale_temporaries`.

    The name is reserved with ``mkstemp`` and the empty file removed at once, so the caller's ``open(tmp, "wb")``
    creates the file instead of truncating it: on ext4, truncating a file and writing it again makes the kernel
    flush it to disk at close (its ``auto_da_alloc`` rule for files replaced in place), which halved the
    de-identification throughput of large files (bench/deid.py) and made every later fsync wait for them.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:  # name the file the caller asked for, not the temporary
        raise OSError(exc.errno, exc.strerror, str(path)) from None
    os.close(fd)
    tmp = Path(name)
    tmp.unlink()
    try:
        yield tmp
        os.chmod(tmp, mode)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_path(path: Path | str, *, mode: int = 0o644) -> Iterator[Path]:
    """Yield a fresh temporary path beside *path* for the caller to create; on success give it *mode* and rename
    it to *path*, on error delete it. Every atomic write in cxrlab goes through here or :func:`staged_path`, so
    :func:`remove_stale_temporaries` knows the name.
    """
    with staged_path(path, mode=mode) as tmp:
        yield tmp
    try:
        publish_staged(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def publish_staged(tmp: Path | str, path: Path | str) -> None:
    """Move a file made under :func:`staged_path` to *path* in one step (``os.replace``, atomic within one
    filesystem, and the temporary always sits in *path*'s folder): *path* is the old file or the new one, never
    a mix."""
    os.replace(tmp, path)


def atomic_write_bytes(path: Path | str, data: bytes, *, mode: int = 0o644) -> None:
    """Write *data* to *path* atomically with permissions *mode* (fsynced before the rename).

    The temporary file is created with *mode* already (less the umask), so a private file (a key, the identifier
    mapping) is never readable by others while it is written.
    """
    with atomic_path(path, mode=mode) as tmp, open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode),
                                                    "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def atomic_write_text(path: Path | str, text: str) -> None:
    """Write UTF-8 *text* to *path* atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_copy(src: Path | str, dst: Path | str) -> None:
    """Copy *src* to *dst* atomically (the kernel copies the bytes; see shutil.copyfile)."""
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def atomic_link_or_copy(src: Path | str, dst: Path | str, *, link: bool = True) -> None:
    """Put *src* at *dst* atomically: a hard link when asked and possible (same filesystem), else a copy.
    An existing *dst* is left alone (release files are immutable once placed)."""
    dst = Path(dst)
    if dst.exists():
        return
    with atomic_path(dst) as tmp:
        try:
            if not link:
                raise OSError
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)


@contextmanager
def exclusive_lock(path: Path | str, what: str) -> Iterator[None]:
    """Hold an exclusive advisory lock on *path*, or raise at once if another process holds it.

    A POSIX record lock (``fcntl.lockf``) is used because forked pool workers do not inherit it: an orphaned
    worker of a killed run never blocks the rerun.

    Stages that clean up after a killed run (stale temporary files) take this lock first, so the cleanup never
    touches the files of a run that is still alive. The kernel releases the lock when its holder dies.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        try:
            fcntl.lockf(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise CxrlabError(f"another {what} is running in this workspace ({path} is locked)") from None
        try:
            yield
        finally:
            fcntl.lockf(fh.fileno(), fcntl.LOCK_UN)


def sha256_file(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (content addresses, release manifests)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def iter_files(root: Path | str) -> Iterator[Path]:
    """Yield regular files below *root* in a stable (sorted) order, skipping hidden files and folders.

    Hidden names are skipped because cxrlab's own temporaries (``.<name>.<random>.tmp``, :func:`staged_path`)
    and locks are hidden: a folder that a killed run wrote into never offers them as inputs.
    """
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def remove_stale_temporaries(folder: Path) -> int:
    """Delete the ``.*.tmp`` files that :func:`atomic_write_bytes` left behind when its process was killed."""
    removed = 0
    for tmp in Path(folder).rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def private_file(path: Path) -> None:
    """Create *path* empty with mode 0600 (SQLite takes an empty file as a new database), or narrow an existing
    one and its ``-wal``/``-shm`` side files to 0600.

    For SQLite files that hold what links a released image to its patient (the mapping store, a workspace
    catalog with its ``uid_map`` table); SQLite gives its ``-wal`` and ``-shm`` files the database's mode.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        return
    except FileExistsError:
        pass
    for side in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        with suppress(FileNotFoundError):
            if side.stat().st_mode & 0o077:
                side.chmod(0o600)
