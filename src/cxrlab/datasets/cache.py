"""An on-disk cache of rendered images: one ``.npy`` per (file, size, window), read back memory-mapped.

Decoding a 2,500-3,000 px DICOM and windowing it costs tens of milliseconds; reading a 512 x 512 float32 array
back costs well under one. The first epoch fills the cache, later ones never open the source file again.

An entry's key is a SHA-256 of the source's resolved path, its size and modification time (so a replaced file
is a new entry), the output size, the window and :data:`PIPELINE_VERSION` (bumped when the rendering changes).
Entries are written to a temporary name and renamed (:func:`cxrlab.runtime.files.atomic_path`), so a reader, a
DataLoader worker writing the same entry or a killed run never leaves a half-written file under a key; a damaged
entry (wrong shape, unreadable) counts as a miss and is rewritten.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from cxrlab.runtime.files import atomic_path

__all__ = ["PIPELINE_VERSION", "ImageCache", "cache_key"]

#: Version of the rendering (:func:`cxrlab.datasets.images.load_image`) stored in every key.
PIPELINE_VERSION = 1


def cache_key(path: str | os.PathLike[str], stat: os.stat_result, size: tuple[int, int] | None, window: str) -> str:
    """The key of one rendering of *path* (its ``os.stat`` result taken by the caller)."""
    ident = [str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns, list(size) if size else None, window,
             PIPELINE_VERSION]
    return hashlib.sha256(json.dumps(ident).encode()).hexdigest()


class ImageCache:
    """A folder of rendered images, ``<key[:2]>/<key>.npy`` (float32, C order).

    Parameters
    ----------
    folder : path
        Created when missing. Several datasets (sizes, windows, splits) may share one folder.
    """

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the entry *key* lives."""
        return self.folder / key[:2] / f"{key}.npy"

    def get(self, key: str, shape: tuple[int, int] | None = None) -> np.ndarray | None:
        """The cached array (a private copy of the memory-mapped file), or None on a miss or a damaged entry.

        Parameters
        ----------
        shape : (rows, columns), optional
            The expected shape; an entry of another shape is a miss.
        """
        try:
            arr = np.load(self.path(key), mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return None
        if arr.dtype != np.float32 or arr.ndim != 2 or (shape is not None and arr.shape != tuple(shape)):
            return None
        return np.array(arr)

    def put(self, key: str, image: np.ndarray) -> None:
        """Store *image* (float32, 2-D) under *key*, atomically."""
        dest = self.path(key)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(dest) as tmp, open(tmp, "wb") as fh:
            np.save(fh, np.ascontiguousarray(image, dtype=np.float32), allow_pickle=False)
