"""The web server's in-process caches of decoded and rendered pixels, and the VOI LUTs the viewer applies.

For client-side window/level the viewer gets the modality values downsampled and packed into little-endian
uint16 (:func:`cxrlab.dicom.display.to_uint16`) with their offset/scale and the window presets; a VOI LUT
Sequence item is sent as a 65,536-entry table over the packed values, so the client applies the file's own VOI
LUTs exactly as the server would.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.errors import NotFoundError

__all__ = ["PixelCache", "voi_lut_names"]


class PixelCache:
    """Small in-process LRUs keyed by (file, mtime, ...): ``to_uint16`` results (decoding and packing a 2500²
    image takes tens of ms, and the viewer asks for the metadata and the pixels of the same image) and rendered
    JPEG/PNG bytes (about 100-300 kB each at 1024 px)."""

    def __init__(self, capacity: int = 16, rendered_capacity: int = 256, stored_capacity: int = 4) -> None:
        self.capacity = capacity
        self.rendered_capacity = rendered_capacity
        self.stored_capacity = stored_capacity
        self._items: OrderedDict[tuple, tuple[np.ndarray, dict[str, Any]]] = OrderedDict()
        self._rendered: OrderedDict[tuple, bytes] = OrderedDict()
        self._stored: OrderedDict[tuple, tuple[Any, np.ndarray]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, path: Path, max_size: int) -> tuple[np.ndarray, dict[str, Any]]:
        """The packed uint16 array and its metadata (:func:`cxrlab.dicom.display.to_uint16`)."""
        from cxrlab.dicom.display import to_uint16

        try:
            key = (str(path), max_size, path.stat().st_mtime_ns)
        except OSError:
            raise NotFoundError("image file not available") from None
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                self._items.move_to_end(key)
                return hit
        value = to_uint16(path, max_size=max_size)
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return value

    def rendered(self, path: Path, key: tuple, render: Callable[[], bytes]) -> bytes:
        """Rendered bytes of *path* for *key* (format, size, window), from the cache or made by *render*.

        Every reader of an image asks for the same first-paint JPEG; with 3 readers per image two of three
        requests are served from memory.
        """
        try:
            full = ("render", str(path), path.stat().st_mtime_ns, *key)
        except OSError:
            raise NotFoundError("image file not available") from None
        with self._lock:
            hit = self._rendered.get(full)
            if hit is not None:
                self._rendered.move_to_end(full)
                return hit
        data = render()
        with self._lock:
            self._rendered[full] = data
            while len(self._rendered) > self.rendered_capacity:
                self._rendered.popitem(last=False)
        return data

    def probe(self, path: Path, points: list[tuple[int, int]]) -> list[dict[str, Any]]:
        """Stored and modality values at original-image pixels (:func:`cxrlab.dicom.display.probe_values`).

        The viewer's pixel probe asks for one point after another of the same image, so the decoded stored
        values of the last few images are kept (a 2500² image: 12.5 MB).
        """
        from cxrlab.dicom.display import probe_values, read_stored

        try:
            key = (str(path), path.stat().st_mtime_ns)
        except OSError:
            raise NotFoundError("image file not available") from None
        with self._lock:
            hit = self._stored.get(key)
            if hit is not None:
                self._stored.move_to_end(key)
        if hit is None:
            hit = read_stored(path)
            with self._lock:
                self._stored[key] = hit
                while len(self._stored) > self.stored_capacity:
                    self._stored.popitem(last=False)
        return probe_values(hit[0], hit[1], points)

    def voi_lut(self, path: Path, max_size: int, index: int) -> np.ndarray:
        """VOI LUT Sequence item *index* (PS3.3 C.11.2.1.1) evaluated at every packed value: 65,536 uint8 display
        levels (before any MONOCHROME1 inversion), so that ``display = lut[u16]``."""
        from cxrlab.dicom.display import apply_voi
        from cxrlab.dicom.io import read_dataset

        _, meta = self.get(path, max_size)
        ds = read_dataset(path)
        seq = ds.get("VOILUTSequence")
        if not seq or not 0 <= index < len(seq):
            raise NotFoundError(f"VOI LUT {index} not found")
        values = meta["offset"] + meta["scale"] * np.arange(65536, dtype=np.float64)
        y = apply_voi(values, ds, index=index)
        return np.clip(np.rint(y * 255.0), 0, 255).astype(np.uint8)


def voi_lut_names(path: Path) -> list[str]:
    """Names of the file's VOI LUT Sequence items ((0028,3003) LUT Explanation, else "VOI LUT n")."""
    from cxrlab.dicom.io import read_dataset

    seq = read_dataset(path).get("VOILUTSequence") or []
    return [str(item.get("LUTExplanation") or f"VOI LUT {i + 1}") for i, item in enumerate(seq)]
