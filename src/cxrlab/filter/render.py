"""The model's input: a small two-channel rendering of a radiograph, made with cxrlab's display pipeline.

Every image, DICOM or PNG, becomes a ``(2, 256, 256)`` float32 array in [0, 1]:

* channel 0, ``full range``: a linear window from the smallest to the largest value of the downsampled image;
* channel 1, ``auto 1-99%``: a linear window between the 1st and 99th percentiles (clipped).

These are the "full range" and "auto 1-99%" windows of :func:`cxrlab.dicom.display.window_presets`, computed
from the image itself and never from its (0028,1050)/(0028,1051) *Window Center/Width*, so a file's own VOI
(or a PNG's earlier windowing) does not change what the model sees. DICOM stored values go through the
Modality LUT (PS3.3 C.11.1); MONOCHROME1 is inverted so that 1 is always white (PS3.3 C.7.6.3.1.2). The image is
area-averaged to 256 x 256 (the aspect ratio is not kept: the model sees every film at one shape). Everything is
pure numpy and Pillow: the same file gives the same array on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset

from cxrlab.dicom.display import apply_modality_lut
from cxrlab.dicom.io import is_dicom, read_dataset, read_pixels
from cxrlab.errors import FileError

__all__ = [
    "CHANNELS",
    "IMAGE_SUFFIXES",
    "INPUT_SIZE",
    "input_from_dataset",
    "is_model_input",
    "load_input",
    "stack_windows",
]

#: Side of the square rendering the model sees, in pixels.
INPUT_SIZE = 256
#: The two input channels (names of :func:`cxrlab.dicom.display.window_presets`).
CHANNELS: tuple[str, str] = ("full range", "auto 1-99%")
#: Non-DICOM image files the filter reads (NIH ChestX-ray14 ships 8-bit PNGs).
IMAGE_SUFFIXES = frozenset({".png"})
#: Percentiles of the ``auto 1-99%`` channel.
_AUTO = (1.0, 99.0)


def _shrink(arr: np.ndarray, size: int) -> np.ndarray:
    """Area-average a 2-D array to ``size x size`` (integer box reduction first, then one BOX resize)."""
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    factor = min(img.width, img.height) // (2 * size)
    if factor >= 2:
        img = img.reduce(factor)
    return np.asarray(img.resize((size, size), Image.Resampling.BOX), dtype=np.float32)


def stack_windows(small: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """The two channels of :data:`CHANNELS` from an already downsampled image of modality values.

    Parameters
    ----------
    small : numpy.ndarray
        2-D float array (modality values, or 8-bit display values of a PNG).
    invert : bool, optional
        MONOCHROME1: the smallest value is white (PS3.3 C.7.6.3.1.2).

    Returns
    -------
    numpy.ndarray
        float32 of shape ``(2, rows, cols)`` in [0, 1]; zeros for a constant image.
    """
    a = np.nan_to_num(np.asarray(small, dtype=np.float32))
    lo, hi = float(a.min()), float(a.max())
    full = (a - lo) / (hi - lo) if hi > lo else np.zeros_like(a)
    p_lo, p_hi = (float(v) for v in np.percentile(a, _AUTO))
    auto = np.clip((a - p_lo) / (p_hi - p_lo), 0.0, 1.0) if p_hi > p_lo else full
    out = np.stack([full, auto]).astype(np.float32)
    if invert:
        out = 1.0 - out
    return out


def _from_dicom(path: Path) -> np.ndarray:
    return input_from_dataset(read_dataset(path), path=path)


def input_from_dataset(ds: Dataset, *, path: str | Path = "<dataset>") -> np.ndarray:
    """The model's input for a DICOM dataset already read (see :func:`load_input`).

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        A greyscale image dataset with pixel data.
    path : str or pathlib.Path, optional
        Its name in error messages.

    Returns
    -------
    numpy.ndarray
        float32 ``(2, INPUT_SIZE, INPUT_SIZE)``.

    Raises
    ------
    FileError
        Not a greyscale image, or pixel data that cannot be decoded.
    """
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip()
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise FileError(path, "not a greyscale image (needs MONOCHROME1/2, 1 sample per pixel)")
    stored = read_pixels(ds, path=path)
    if ds.get("ModalityLUTSequence"):
        small = _shrink(apply_modality_lut(stored, ds), INPUT_SIZE)
    else:
        # Rescale Slope/Intercept is linear (PS3.3 C.11.1.1.2): it commutes with area averaging, so the small
        # image is rescaled instead of a float64 copy of the full one.
        small = apply_modality_lut(_shrink(stored, INPUT_SIZE), ds)
    return stack_windows(small, invert=photometric == "MONOCHROME1")


def _from_png(path: Path) -> np.ndarray:
    try:
        with Image.open(path) as im:
            im.load()
            grey = im.convert("I") if im.mode in ("I", "I;16", "I;16B") else im.convert("L")
    except (OSError, ValueError, Image.DecompressionBombError):
        raise FileError(path, "not a readable PNG image") from None
    return stack_windows(_shrink(np.asarray(grey), INPUT_SIZE))


def is_model_input(path: Path) -> bool:
    """Whether the filter reads *path*: a DICOM file (by its preamble) or a PNG (by its suffix)."""
    return path.suffix.lower() in IMAGE_SUFFIXES or is_dicom(path)


def load_input(path: str | Path) -> np.ndarray:
    """Read one DICOM or PNG file and return the model's input for it.

    Parameters
    ----------
    path : str or pathlib.Path
        A DICOM file (any transfer syntax cxrlab decodes) or a PNG (8-bit, 16-bit or RGBA: colour is averaged
        to grey).

    Returns
    -------
    numpy.ndarray
        float32 ``(2, INPUT_SIZE, INPUT_SIZE)`` (:func:`stack_windows`).

    Raises
    ------
    FileError
        The file cannot be read or is not a greyscale image (the reason never quotes a value from the file).
    """
    path = Path(path)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return _from_png(path)
    return _from_dicom(path)
