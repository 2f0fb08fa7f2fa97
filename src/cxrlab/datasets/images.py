"""One image file -> the float32 array a model sees: cxrlab's display pipeline, a window, a fixed size.

DICOM files go through :func:`cxrlab.dicom.display.render_float` (Modality LUT, resize, VOI or a computed window,
MONOCHROME1 inverted: PS3.4 Annex N.2.1.1, PS3.3 C.7.6.3.1.2); PNG and JPEG files (NIH ChestX-ray14 ships 8-bit
PNGs, NIH ChestX-ray14 README, "Contents") are read as grey levels, whose "file" window is the values as stored.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from cxrlab.dicom.display import FLOAT_WINDOWS, range_window, render_float, resize, scale_to_window
from cxrlab.dicom.io import read_dataset
from cxrlab.errors import FileError

__all__ = ["RASTER_SUFFIXES", "WINDOWS", "image_size", "load_image"]

#: Windows a dataset offers (:func:`cxrlab.dicom.display.render_float`).
WINDOWS = FLOAT_WINDOWS
#: Files read as raster images rather than DICOM.
RASTER_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})


def _raster(path: Path) -> np.ndarray:
    """Grey levels of a PNG/JPEG scaled to [0, 1] by the bit depth (8 or 16 bits); colour averaged to grey."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I", "I;16", "I;16B", "I;16L"):
                return np.asarray(im, dtype=np.float32) / np.float32(65535.0)
            return np.asarray(im.convert("L"), dtype=np.float32) / np.float32(255.0)
    except (OSError, ValueError, Image.DecompressionBombError):
        raise FileError(path, "not a readable PNG/JPEG image") from None


def load_image(
    path: str | os.PathLike[str], *, size: tuple[int, int] | None = None, window: str = "file"
) -> tuple[np.ndarray, tuple[int, int]]:
    """Read and render one image file.

    Parameters
    ----------
    path : path
        A DICOM file (any transfer syntax cxrlab decodes), or a PNG/JPEG.
    size : (rows, columns), optional
        Output shape (aspect ratio not kept); None keeps the original.
    window : {"file", "full", "auto"}
        :data:`WINDOWS`: the file's own VOI (DICOM; a raster's values as stored), min..max, or 1st..99th
        percentile.

    Returns
    -------
    (numpy.ndarray, (int, int))
        float32 image in [0, 1] (1 white) and the original (rows, columns).

    Raises
    ------
    FileError
        The file cannot be read or rendered (the message names the file and the reason).
    ValueError
        Unknown *window*.
    """
    if window not in WINDOWS:
        raise ValueError(f"window must be one of {', '.join(WINDOWS)}, got {window!r}")
    path = Path(path)
    if not path.is_file():
        raise FileError(path, "file not found")
    if path.suffix.lower() in RASTER_SUFFIXES:
        full = _raster(path)
        small = full if size is None else resize(full, size)
        if window != "file":
            small = scale_to_window(small, *range_window(full, window))
        return np.clip(np.asarray(small, dtype=np.float32), 0.0, 1.0), (int(full.shape[0]), int(full.shape[1]))
    return render_float(path, window=window, shape=size)  # DicomReadError is a FileError


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(rows, columns) of an image without decoding its pixels: the DICOM header's (0028,0010) *Rows* and
    (0028,0011) *Columns* (PS3.3 C.7.6.3.1), or a raster's header.

    Raises
    ------
    FileError
        Unreadable file, or no size in it.
    """
    path = Path(path)
    if path.suffix.lower() in RASTER_SUFFIXES:
        try:
            with Image.open(path) as im:
                return int(im.height), int(im.width)
        except (OSError, ValueError):
            raise FileError(path, "not a readable PNG/JPEG image") from None
    ds = read_dataset(path, header_only=True)  # DicomReadError (a FileError) names the file and the reason
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    if rows < 1 or cols < 1:
        raise FileError(path, "no Rows/Columns (0028,0010/0011) in the header")
    return rows, cols
