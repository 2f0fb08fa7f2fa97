"""Display pipeline for greyscale projection radiographs: stored values -> what a radiologist sees.

The steps follow the grayscale pipeline of DICOM PS3.4 Annex N (N.2.1.1) in order:

1. Modality LUT (PS3.3 C.11.1): Rescale Slope/Intercept (C.11.1.1.2) or a Modality LUT Sequence
   (C.11.1.1.1) turns stored values into modality values (:func:`apply_modality_lut`).
2. VOI LUT (PS3.3 C.11.2): a VOI LUT Sequence (C.11.2.1.1) or Window Center/Width with the
   VOI LUT Function LINEAR (C.11.2.1.2.1), LINEAR_EXACT (C.11.2.1.3.2) or SIGMOID (C.11.2.1.3.1) selects
   the values of interest (:func:`apply_voi`). The output is normalised to [0, 1].
3. Presentation: MONOCHROME1 (PS3.3 C.7.6.3.1.2: minimum value is displayed white) is inverted after
   the VOI step, on the quantised 8-bit output (v -> 255 - v), the equivalent of a Presentation LUT
   Shape INVERSE (C.11.6.1.2). A (2050,0020) Presentation LUT Shape in the file is not read separately.

Mask subtraction (N.2.1.2) does not exist in projection radiography and is not implemented;
Pixel Padding Value (C.7.5.1.1.2) is not excluded from the automatic windows.

Every function is pure numpy (array + dataset in, array out) except :func:`to_uint8`, :func:`to_uint16`
and :func:`render_file`, which also read the file. Errors about a file are
:class:`~cxrlab.dicom.io.DicomReadError`; their messages name the file and the reason and never quote a
value read from the file (it may be PHI).
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.valuerep import VR

from cxrlab.dicom.io import DicomReadError, read_dataset, read_pixels
from cxrlab.dicom.metadata import measurement_spacing
from cxrlab.runtime.files import atomic_write_bytes

__all__ = [
    "parse_window",
    "AUTO_PERCENTILES",
    "FALLBACK_PERCENTILES",
    "PNG_COMPRESS_LEVEL",
    "apply_modality_lut",
    "apply_voi",
    "apply_window",
    "FLOAT_WINDOWS",
    "downsample",
    "encode",
    "range_window",
    "render_float",
    "resize",
    "scale_to_window",
    "probe_values",
    "read_stored",
    "render_file",
    "render_pixels",
    "to_uint8",
    "to_uint16",
    "window_presets",
]

#: Robust min/max used when a file has neither a VOI LUT Sequence nor a window: the 0.5th and 99.5th
#: percentiles of the modality values (a few saturated or collimated pixels do not set the contrast).
FALLBACK_PERCENTILES: tuple[float, float] = (0.5, 99.5)

#: Histogram-based windows offered by :func:`window_presets`, as (low, high) percentiles.
AUTO_PERCENTILES: tuple[tuple[float, float], ...] = ((1.0, 99.0), (2.0, 98.0), (5.0, 95.0))

#: zlib level for PNG output. Level 1 is ~3-10x faster than Pillow's default 6 on 8-bit radiographs for
#: files ~10-20 % larger; PNG stays lossless at any level, so speed wins for a viewer/thumbnail cache.
PNG_COMPRESS_LEVEL = 1

#: Percentiles are computed on a regular subsample of at most this many pixels (fast and deterministic).
_PERCENTILE_SAMPLE = 1_000_000

_VOI_FUNCTIONS = ("LINEAR", "LINEAR_EXACT", "SIGMOID")


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def _source(ds: Dataset) -> str:
    """Return a name for *ds* to put in error messages (its filename, never a value from it)."""
    name = getattr(ds, "filename", None)
    return str(name) if isinstance(name, str | os.PathLike) and str(name) else "<dataset>"


def _values(value: Any) -> list[float]:
    """Return a DS/IS element value (single or multi-valued) as a list of floats."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return [float(value)]
    return [float(v) for v in value]


def _lut(item: Dataset, ds: Dataset) -> tuple[np.ndarray, int, int]:
    """Decode one LUT item (PS3.3 C.11.1.1.1 / C.11.2.1.1): return (data, first mapped value, bits).

    *LUT Descriptor* is (number of entries, first input value mapped, bits per entry); 0 entries means
    2^16 (C.11.1.1.1). The first mapped value is SS when Pixel Representation is 1 (two's complement).
    *LUT Data* has an ambiguous VR (US or OW); OW data is unpacked with the transfer syntax's endianness.
    """
    src = _source(ds)
    try:
        n_entries, first, bits = (int(v) for v in item.LUTDescriptor)
    except (AttributeError, TypeError, ValueError):
        raise DicomReadError(src, "LUT Descriptor (0028,3002) missing or not three values") from None
    n_entries = n_entries or 65536
    if int(getattr(ds, "PixelRepresentation", 0)) == 1 and first >= 2**15:
        first -= 2**16
    if "LUTData" not in item:
        raise DicomReadError(src, "LUT Data (0028,3006) missing")
    raw = item["LUTData"].value
    if item["LUTData"].VR == VR.OW or isinstance(raw, bytes | bytearray):
        meta = getattr(ds, "file_meta", None)
        uid = str(getattr(meta, "TransferSyntaxUID", "")) if meta is not None else ""
        dtype = ">u2" if uid == "1.2.840.10008.1.2.2" else "<u2"
        data = np.frombuffer(bytes(raw), dtype=dtype).astype(np.float64)
    else:
        data = np.asarray(_values(raw), dtype=np.float64)
    if data.size < 1:
        raise DicomReadError(src, "LUT Data (0028,3006) is empty")
    data = data[:n_entries]
    return data, first, bits


def _lookup(arr: np.ndarray, data: np.ndarray, first: int) -> np.ndarray:
    """Apply a LUT: inputs below *first* map to the first entry, beyond the end to the last one."""
    idx = np.rint(np.asarray(arr, dtype=np.float64) - first)
    np.clip(idx, 0, data.size - 1, out=idx)
    return data[idx.astype(np.intp)]


def _sample(arr: np.ndarray) -> np.ndarray:
    """Return the finite values of a regular subsample of *arr* (at most ~1e6 pixels)."""
    a = np.asarray(arr)
    if a.ndim == 2 and a.size > _PERCENTILE_SAMPLE:
        step = math.ceil(math.sqrt(a.size / _PERCENTILE_SAMPLE))
        a = a[::step, ::step]
    a = a.ravel()
    if a.dtype.kind == "f":
        a = a[np.isfinite(a)]
    return a


def _percentile_range(arr: np.ndarray, lo_pct: float, hi_pct: float) -> tuple[float, float]:
    """Return the (lo_pct, hi_pct) percentiles of the modality values."""
    values = _sample(arr)
    if values.size == 0:
        return 0.0, 0.0
    lo, hi = np.percentile(values, [lo_pct, hi_pct])
    return float(lo), float(hi)


def _range_window(lo: float, hi: float) -> tuple[float, float]:
    """Return (center, width) such that LINEAR_EXACT (C.11.2.1.3.2) maps *lo* -> 0 and *hi* -> 1."""
    return (lo + hi) / 2.0, max(hi - lo, 0.0)


def _function(ds: Dataset, function: str | None) -> str:
    """Return the VOI LUT Function (0028,1056) to use; LINEAR is the default (C.11.2.1.3)."""
    name = function if function is not None else str(getattr(ds, "VOILUTFunction", "") or "LINEAR")
    name = name.strip().upper()
    if name not in _VOI_FUNCTIONS:
        if function is not None:
            raise ValueError(f"unknown VOI LUT function {function!r}; expected one of {_VOI_FUNCTIONS}")
        # An unknown defined term in the file: fall back to the default function, not an error.
        name = "LINEAR"
    return name


def _file_windows(ds: Dataset) -> list[tuple[float, float]]:
    """Return the (center, width) pairs of (0028,1050)/(0028,1051); empty when absent or unreadable."""
    try:
        centers = _values(ds.get("WindowCenter"))
        widths = _values(ds.get("WindowWidth"))
    except (TypeError, ValueError):
        return []
    return list(zip(centers, widths, strict=False))


def _valid_width(width: float, function: str) -> bool:
    """Width must be >= 1 for LINEAR (C.11.2.1.2.1) and > 0 for LINEAR_EXACT and SIGMOID (C.11.2.1.3)."""
    if not math.isfinite(width):
        return False
    return width >= 1.0 if function == "LINEAR" else width > 0.0


def _monochrome(ds: Dataset) -> str:
    """Return MONOCHROME1 or MONOCHROME2 (PS3.3 C.7.6.3.1.2) or raise for anything else."""
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2") or "MONOCHROME2").strip()
    if int(getattr(ds, "SamplesPerPixel", 1) or 1) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise DicomReadError(_source(ds), "not a greyscale image (needs MONOCHROME1/2, 1 sample per pixel)")
    return photometric


# --------------------------------------------------------------------------------------------------
# pipeline steps (pure numpy)
# --------------------------------------------------------------------------------------------------


def apply_modality_lut(arr: np.ndarray, ds: Dataset) -> np.ndarray:
    """Map stored values to modality values (PS3.3 C.11.1, PS3.4 N.2.1.1).

    Parameters
    ----------
    arr : numpy.ndarray
        Stored pixel values, as returned by :func:`cxrlab.dicom.io.read_pixels`.
    ds : pydicom.dataset.Dataset
        The dataset holding the Modality LUT Module.

    Returns
    -------
    numpy.ndarray
        float64 modality values. When (0028,3000) *Modality LUT Sequence* is present its first item is
        applied (C.11.1.1.1: inputs below the first mapped value take the first entry, inputs past the end
        the last one); otherwise ``arr * RescaleSlope + RescaleIntercept`` (C.11.1.1.2), with slope 1 and
        intercept 0 when absent.

    Notes
    -----
    This is the same computation as :func:`pydicom.pixels.apply_modality_lut`, reimplemented so that it
    always returns float64 and accepts LUTs of any bit depth (pydicom builds a ``uint{bits}`` dtype,
    which fails for e.g. 12-bit entries).
    """
    seq = ds.get("ModalityLUTSequence")
    if seq:
        data, first, _bits = _lut(seq[0], ds)
        return _lookup(arr, data, first)
    out = np.asarray(arr, dtype=np.float64)
    slope_value, intercept_value = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    try:
        slope = 1.0 if slope_value in (None, "") else float(slope_value)
        intercept = 0.0 if intercept_value in (None, "") else float(intercept_value)
    except (TypeError, ValueError):
        raise DicomReadError(_source(ds), "Rescale Slope/Intercept (0028,1053/1052) not numeric") from None
    if slope != 1.0:
        out = out * slope
    if intercept != 0.0:
        out = out + intercept
    return out


def apply_window(arr: np.ndarray, center: float, width: float, function: str = "LINEAR") -> np.ndarray:
    """Apply a window to modality values; return floats in [0, 1] (ymin = 0, ymax = 1).

    Parameters
    ----------
    arr : numpy.ndarray
        Modality values.
    center, width : float
        Window Center (0028,1050) and Window Width (0028,1051) in modality units.
    function : {"LINEAR", "LINEAR_EXACT", "SIGMOID"}
        VOI LUT Function (0028,1056).

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1]:

        - LINEAR (PS3.3 C.11.2.1.2.1)::

            x <= c - 0.5 - (w-1)/2  -> 0
            x >  c - 0.5 + (w-1)/2  -> 1
            else ((x - (c - 0.5)) / (w-1) + 0.5)

          With w = 1 the middle interval is empty: a threshold at c - 0.5.
        - LINEAR_EXACT (C.11.2.1.3.2): x <= c - w/2 -> 0, x > c + w/2 -> 1, else (x - c)/w + 0.5.
        - SIGMOID (C.11.2.1.3.1): 1 / (1 + exp(-4 (x - c) / w)).

    Raises
    ------
    ValueError
        Width below 1 for LINEAR or not positive for the other functions, or an unknown function.
    """
    function = function.strip().upper()
    if function not in _VOI_FUNCTIONS:
        raise ValueError(f"unknown VOI LUT function {function!r}; expected one of {_VOI_FUNCTIONS}")
    c, w = float(center), float(width)
    if not math.isfinite(c) or not _valid_width(w, function):
        raise ValueError("window width must be >= 1 for LINEAR (PS3.3 C.11.2.1.2.1) and > 0 for LINEAR_EXACT/SIGMOID")
    x = np.asarray(arr, dtype=np.float64)
    if function == "SIGMOID":
        with np.errstate(over="ignore"):
            return 1.0 / (1.0 + np.exp(-4.0 * (x - c) / w))
    if function == "LINEAR_EXACT":
        lo, hi = c - w / 2.0, c + w / 2.0
        y = x - c
        y /= w
    else:
        lo, hi = c - 0.5 - (w - 1.0) / 2.0, c - 0.5 + (w - 1.0) / 2.0
        y = x - (c - 0.5)
        if w > 1.0:
            y /= w - 1.0
    y += 0.5
    # The comparisons below are the clauses' own (<= lo -> ymin, > hi -> ymax); the clip only absorbs
    # rounding in the middle branch (and, for w = 1, leaves the empty middle branch to the comparisons).
    np.clip(y, 0.0, 1.0, out=y)
    np.copyto(y, 0.0, where=x <= lo)
    np.copyto(y, 1.0, where=x > hi)
    return y


def apply_voi(
    arr: np.ndarray,
    ds: Dataset,
    *,
    window: tuple[float, float] | None = None,
    index: int = 0,
    function: str | None = None,
) -> np.ndarray:
    """Apply the VOI LUT (PS3.3 C.11.2, PS3.4 N.2.1.1) to modality values; return floats in [0, 1].

    Parameters
    ----------
    arr : numpy.ndarray
        Modality values (output of :func:`apply_modality_lut`).
    ds : pydicom.dataset.Dataset
        The dataset holding the VOI LUT Module.
    window : (center, width), optional
        Explicit window in modality units; overrides everything in the file.
    index : int
        Which of the file's alternative VOI LUTs / windows to use (default the first, as C.11.2 lets
        the application choose among multiple values).
    function : str, optional
        VOI LUT Function for *window* or the file's windows; default the file's (0028,1056), else LINEAR.

    Returns
    -------
    numpy.ndarray
        float64 in [0, 1], before any MONOCHROME1 inversion. The source, in order of precedence:

        1. *window*;
        2. (0028,3010) *VOI LUT Sequence* item *index* (C.11.2.1.1), its output divided by
           2^bits - 1 (3rd value of the LUT Descriptor; by the LUT's maximum if the data exceed that);
        3. (0028,1050)/(0028,1051) *Window Center/Width* value *index* with the VOI LUT Function
           (C.11.2.1.2, C.11.2.1.3); a width that the clause forbids (< 1 for LINEAR) is ignored;
        4. fallback: linear from the 0.5th to the 99.5th percentile of *arr*
           (:data:`FALLBACK_PERCENTILES`, a robust min/max); a constant image gives all zeros.

    Raises
    ------
    ValueError
        *window* has an invalid width, *index* is negative, or *function* is unknown.
    DicomReadError
        The VOI LUT Sequence item is malformed.
    """
    if index < 0:
        raise ValueError("index must be >= 0")
    if window is not None:
        return apply_window(arr, window[0], window[1], _function(ds, function))
    seq = ds.get("VOILUTSequence")
    if seq and index < len(seq):
        data, first, bits = _lut(seq[index], ds)
        ymax = max(float(2**bits - 1), float(data.max()), 1.0)
        return _lookup(arr, data, first) / ymax
    fn = _function(ds, function)
    windows = _file_windows(ds)
    if index < len(windows) and _valid_width(windows[index][1], fn) and math.isfinite(windows[index][0]):
        return apply_window(arr, windows[index][0], windows[index][1], fn)
    return _fallback(arr)


def _fallback(arr: np.ndarray) -> np.ndarray:
    """Linear map of the robust range (:data:`FALLBACK_PERCENTILES`) to [0, 1]."""
    lo, hi = _percentile_range(arr, *FALLBACK_PERCENTILES)
    if not hi > lo:
        return np.zeros(np.shape(arr), dtype=np.float64)
    return apply_window(arr, *_range_window(lo, hi), function="LINEAR_EXACT")


def _default_window(arr_modality: np.ndarray, ds: Dataset, index: int = 0) -> dict[str, Any]:
    """Describe the window :func:`apply_voi` uses by default (for metadata)."""
    fn = _function(ds, None)
    windows = _file_windows(ds)
    if ds.get("VOILUTSequence"):
        source = "VOILUTSequence"
    elif index < len(windows) and _valid_width(windows[index][1], fn):
        c, w = windows[index]
        return {"center": c, "width": w, "function": fn, "source": "file"}
    else:
        source = "fallback"
    c, w = _range_window(*_percentile_range(arr_modality, *FALLBACK_PERCENTILES))
    return {"center": c, "width": w, "function": "LINEAR_EXACT", "source": source}


def window_presets(ds: Dataset, arr_modality: np.ndarray) -> list[dict[str, Any]]:
    """Return candidate windows for a viewer: the file's own, the full range and histogram-based ones.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset
        The dataset (for (0028,1050)/(0028,1051) and (0028,1055) *Window Center & Width Explanation*).
    arr_modality : numpy.ndarray
        Modality values (output of :func:`apply_modality_lut`).

    Returns
    -------
    list of dict
        ``{"name", "center", "width"}`` in modality units. First each of the file's windows, named by its
        explanation when present (else ``"file 1"``, ...); then ``"full range"`` (min..max) and
        ``"auto 1-99%"``, ``"auto 2-98%"``, ``"auto 5-95%"`` (:data:`AUTO_PERCENTILES`). For the computed
        ones center = (lo + hi) / 2 and width = hi - lo, i.e. LINEAR_EXACT (C.11.2.1.3.2) maps lo -> 0
        and hi -> 1; under the default LINEAR function the edges move by at most one modality unit.
        Degenerate computed windows (width 0) are left out.
    """
    presets: list[dict[str, Any]] = []
    try:
        explanations = [str(e) for e in _as_list(ds.get("WindowCenterWidthExplanation"))]
    except (TypeError, ValueError):
        explanations = []
    for i, (c, w) in enumerate(_file_windows(ds)):
        name = explanations[i].strip() if i < len(explanations) and explanations[i].strip() else f"file {i + 1}"
        presets.append({"name": name, "center": c, "width": w})
    values = _sample(arr_modality)
    if values.size:
        ranges = [("full range", float(values.min()), float(values.max()))]
        for lo_pct, hi_pct in AUTO_PERCENTILES:
            lo, hi = np.percentile(values, [lo_pct, hi_pct])
            ranges.append((f"auto {lo_pct:g}-{hi_pct:g}%", float(lo), float(hi)))
        for name, lo, hi in ranges:
            if hi > lo:
                c, w = _range_window(lo, hi)
                presets.append({"name": name, "center": c, "width": w})
    return presets


def _as_list(value: Any) -> list[Any]:
    """Return a possibly multi-valued element value as a list."""
    if value is None:
        return []
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def downsample(arr: np.ndarray, max_size: int | None) -> np.ndarray:
    """Area-average *arr* so its long side is at most *max_size*, keeping the aspect ratio.

    Pillow's BOX filter on a float32 ('F' mode) image: every output pixel is the mean of the input
    pixels it covers (fractional coverage weighted). The short side is rounded and at least 1.

    Returns
    -------
    numpy.ndarray
        float32 (a copy), or *arr* unchanged when no resizing is needed.
    """
    if max_size is None:
        return arr
    if max_size < 1:
        raise ValueError("max_size must be >= 1")
    rows, cols = arr.shape[:2]
    if max(rows, cols) <= max_size:
        return arr
    scale = max_size / max(rows, cols)
    new_rows = min(max_size, max(1, round(rows * scale)))
    new_cols = min(max_size, max(1, round(cols * scale)))
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    return np.asarray(img.resize((new_cols, new_rows), Image.Resampling.BOX), dtype=np.float32)


#: Windows of :func:`render_float`: the file's VOI (as :func:`to_uint8`), the full range, the 1st-99th percentile.
FLOAT_WINDOWS = ("file", "full", "auto")


def resize(arr: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D array to ``shape`` = (rows, columns), not keeping the aspect ratio.

    Area averaging (Pillow's BOX filter on a float32 'F' image, as :func:`downsample`) when both sides shrink,
    bilinear interpolation otherwise.

    Returns
    -------
    numpy.ndarray
        float32 (a copy), or *arr* unchanged when it already has that shape.
    """
    rows, cols = int(shape[0]), int(shape[1])
    if rows < 1 or cols < 1:
        raise ValueError("shape must be two sides >= 1")
    if arr.shape[:2] == (rows, cols):
        return arr
    shrink = rows <= arr.shape[0] and cols <= arr.shape[1]
    img = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32), mode="F")
    method = Image.Resampling.BOX if shrink else Image.Resampling.BILINEAR
    return np.asarray(img.resize((cols, rows), method), dtype=np.float32)


def range_window(values: np.ndarray, window: str) -> tuple[float, float]:
    """The (low, high) of the ``full`` (min..max) or ``auto`` (1st..99th percentile, the first of
    :data:`AUTO_PERCENTILES`) window of *values*, on the regular subsample :func:`window_presets` uses."""
    sample = _sample(values)
    if sample.size == 0:
        return 0.0, 0.0
    if window == "full":
        return float(sample.min()), float(sample.max())
    if window == "auto":
        lo, hi = np.percentile(sample, AUTO_PERCENTILES[0])
        return float(lo), float(hi)
    raise ValueError(f"window must be 'full' or 'auto', got {window!r}")


def scale_to_window(small: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Linear map of [lo, hi] to [0, 1], clipped (LINEAR_EXACT, PS3.3 C.11.2.1.3.2); zeros when hi <= lo."""
    if not hi > lo:
        return np.zeros(np.shape(small), dtype=np.float64)
    return apply_window(small, *_range_window(lo, hi), function="LINEAR_EXACT")


def render_float(
    ds_or_path: Dataset | str | os.PathLike[str],
    *,
    window: str = "file",
    shape: tuple[int, int] | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """The displayed image as float32 in [0, 1] (1 white) at *shape*, for models: :func:`to_uint8` without the
    8-bit quantisation, resized to a fixed shape.

    Modality LUT (PS3.3 C.11.1) -> :func:`resize` of the modality values -> window -> MONOCHROME1 inversion
    (PS3.3 C.7.6.3.1.2). The window's parameters are taken from the full-resolution modality values.

    Parameters
    ----------
    ds_or_path : Dataset or path
        A dataset with pixel data, or a file path.
    window : {"file", "full", "auto"}
        ``file``: the file's VOI LUT or first Window Center/Width, else the robust range (exactly what
        :func:`to_uint8` shows); ``full``: min..max; ``auto``: 1st..99th percentile (the viewer's
        ``full range`` and ``auto 1-99%`` presets, :func:`window_presets`), whatever the file says.
    shape : (rows, columns), optional
        Output shape (aspect ratio not kept); None keeps the original size.

    Returns
    -------
    (numpy.ndarray, (int, int))
        The image and the original (rows, columns).

    Raises
    ------
    DicomReadError
        Unreadable file, no decodable pixel data, or not a greyscale image.
    ValueError
        Unknown *window*.
    """
    if window not in FLOAT_WINDOWS:
        raise ValueError(f"window must be one of {', '.join(FLOAT_WINDOWS)}, got {window!r}")
    ds, stored = _load(ds_or_path)
    photometric = _monochrome(ds)
    modality = apply_modality_lut(stored, ds)
    small = modality if shape is None else resize(modality, shape)
    if window == "file":
        y = _voi_resolved(modality, small, ds)
    else:
        y = scale_to_window(small, *range_window(modality, window))
    out = np.asarray(y, dtype=np.float32)
    if photometric == "MONOCHROME1":
        out = np.subtract(np.float32(1.0), out, dtype=np.float32)
    return out, (int(stored.shape[0]), int(stored.shape[1]))


def _to_u8(y: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """Quantise [0, 1] floats to 0..255, rounding half up; ``invert`` then maps v to 255 - v.

    Inverting after quantisation (an INVERSE Presentation LUT on the 8-bit output, PS3.3 C.11.6.1.2)
    makes a MONOCHROME1 relabelling of an image render as its exact complement (a + b == 255).
    """
    out = np.multiply(y, 255.0)
    out += 0.5
    np.clip(out, 0.0, 255.0, out=out)
    u8 = out.astype(np.uint8)  # truncation of non-negative values = floor
    if invert:
        np.subtract(np.uint8(255), u8, out=u8)
    return u8


# --------------------------------------------------------------------------------------------------
# file-level helpers
# --------------------------------------------------------------------------------------------------


def _load(ds_or_path: Dataset | str | os.PathLike[str]) -> tuple[Dataset, np.ndarray]:
    """Return (dataset, stored values) from a dataset or a path."""
    if isinstance(ds_or_path, Dataset):
        ds = ds_or_path
        _monochrome(ds)
        return ds, read_pixels(ds, path=_source(ds))
    ds = read_dataset(ds_or_path)
    _monochrome(ds)
    return ds, read_pixels(ds, path=ds_or_path)


def to_uint8(
    ds_or_path: Dataset | str | os.PathLike[str],
    *,
    window: tuple[float, float] | None = None,
    max_size: int | None = None,
) -> np.ndarray:
    """Render a greyscale DICOM image the way a radiologist sees it, as 8-bit.

    Modality LUT -> (optional) area downsampling -> VOI LUT -> MONOCHROME1 inversion -> 0..255.
    The VOI parameters (including the percentile fallback) are taken from the full-resolution modality
    values; downsampling averages modality values (linear in the detector signal), before windowing.

    Parameters
    ----------
    ds_or_path : Dataset or path
        A dataset with pixel data, or a file path.
    window : (center, width), optional
        Override the file's VOI (modality units; the file's VOI LUT Function, default LINEAR).
    max_size : int, optional
        Long side limit in pixels (:func:`downsample`); None keeps full resolution.

    Returns
    -------
    numpy.ndarray
        uint8 of shape (rows, cols); 0 black, 255 white.

    Raises
    ------
    DicomReadError
        Unreadable file, no decodable pixel data, or not a greyscale image.
    """
    ds, stored = _load(ds_or_path)
    return render_pixels(stored, ds, window=window, max_size=max_size)


def render_pixels(
    stored: np.ndarray,
    ds: Dataset,
    *,
    window: tuple[float, float] | None = None,
    max_size: int | None = None,
) -> np.ndarray:
    """Pure-array core of :func:`to_uint8`: stored values + dataset -> displayed uint8.

    Parameters
    ----------
    stored : numpy.ndarray
        Stored values of one frame (:func:`cxrlab.dicom.io.read_pixels`).
    ds : pydicom.dataset.Dataset
        The dataset the values come from (Modality LUT, VOI LUT and Image Pixel modules).
    window, max_size
        As for :func:`to_uint8`.

    Returns
    -------
    numpy.ndarray
        uint8; 0 black, 255 white.
    """
    photometric = _monochrome(ds)
    modality = apply_modality_lut(stored, ds)
    y = _voi_downsampled(modality, ds, window=window, max_size=max_size)
    # PS3.3 C.7.6.3.1.2: the minimum of MONOCHROME1 is displayed white -> invert after the VOI LUT.
    return _to_u8(y, invert=photometric == "MONOCHROME1")


def _voi_downsampled(
    modality: np.ndarray, ds: Dataset, *, window: tuple[float, float] | None, max_size: int | None
) -> np.ndarray:
    """Resolve the VOI on full-resolution values, then apply it to the downsampled values."""
    return _voi_resolved(modality, downsample(modality, max_size), ds, window=window)


def _voi_resolved(
    modality: np.ndarray, small: np.ndarray, ds: Dataset, *, window: tuple[float, float] | None = None
) -> np.ndarray:
    """The file's VOI (or *window*) resolved on the full-resolution *modality* values, applied to *small*."""
    if small is modality or window is not None:
        return apply_voi(small, ds, window=window)
    has_lut = bool(ds.get("VOILUTSequence"))
    fn = _function(ds, None)
    windows = _file_windows(ds)
    if not has_lut and not (windows and _valid_width(windows[0][1], fn)):
        lo, hi = _percentile_range(modality, *FALLBACK_PERCENTILES)
        if not hi > lo:
            return np.zeros(small.shape, dtype=np.float64)
        return apply_window(small, *_range_window(lo, hi), function="LINEAR_EXACT")
    return apply_voi(small, ds)


def to_uint16(
    ds: Dataset | str | os.PathLike[str], *, max_size: int | None = 1024
) -> tuple[np.ndarray, dict[str, Any]]:
    """Return downsampled modality values packed into uint16, for windowing in a client.

    ``modality = meta["offset"] + meta["scale"] * u16`` (error at most ``scale / 2``). The full
    modality range of the (downsampled) image is spread over 0..65535; a constant image has scale 1.

    Parameters
    ----------
    ds : Dataset or path
        A dataset with pixel data, or a file path.
    max_size : int, optional
        Long side limit (:func:`downsample`); None keeps full resolution.

    Returns
    -------
    (numpy.ndarray, dict)
        The uint16 array and ``meta`` with keys ``offset``, ``scale``, ``photometric``
        (MONOCHROME1 means the client must invert after windowing), ``rows``/``columns`` (original
        size), ``shape`` (returned size), ``window`` (the default window: center, width, VOI function and
        its source: ``file``, ``VOILUTSequence`` (approximated by the robust range) or ``fallback``),
        ``windows`` (all of the file's windows, or the default one) and ``presets``
        (:func:`window_presets`).
    """
    ds, stored = _load(ds)
    photometric = _monochrome(ds)
    modality = apply_modality_lut(stored, ds)
    small = np.asarray(downsample(modality, max_size), dtype=np.float64)
    finite = small[np.isfinite(small)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 0.0
    scale = (hi - lo) / 65535.0 if hi > lo else 1.0
    packed = np.rint((np.nan_to_num(small, nan=lo) - lo) / scale)
    packed = np.clip(packed, 0, 65535).astype(np.uint16)
    default = _default_window(modality, ds)
    fn = _function(ds, None)
    file_windows = [{"center": c, "width": w, "function": fn} for c, w in _file_windows(ds) if _valid_width(w, fn)]
    meta: dict[str, Any] = {
        "offset": lo,
        "scale": scale,
        "photometric": photometric,
        "rows": int(stored.shape[0]),
        "columns": int(stored.shape[1]),
        "shape": [int(packed.shape[0]), int(packed.shape[1])],
        "window": default,
        "windows": file_windows or [{k: default[k] for k in ("center", "width", "function")}],
        "presets": window_presets(ds, modality),
        "spacing": measurement_spacing(ds),
    }
    return packed, meta


def read_stored(ds_or_path: Dataset | str | os.PathLike[str]) -> tuple[Dataset, np.ndarray]:
    """The dataset and its stored pixel values (decoded, full resolution), for :func:`probe_values`."""
    return _load(ds_or_path)


def probe_values(ds: Dataset, stored: np.ndarray, points: Sequence[tuple[int, int]]) -> list[dict[str, Any]]:
    """The stored value and the modality value of the original image at each ``(x, y)`` pixel (*stored* as
    :func:`read_stored` gives it; x to the right, y down, from the top-left pixel).

    The stored value is the pixel as the file holds it; the modality value is its Modality LUT output
    (:func:`apply_modality_lut`, PS3.3 C.11.1), in the unit of (0028,1054) *Rescale Type* when the file gives
    one (``US``, unspecified, when it does not; CT's Hounsfield units are ``HU``).

    Raises
    ------
    ValueError
        A point lies outside the image.
    """
    rows, columns = stored.shape[:2]
    unit = str(ds.get("RescaleType") or "US").strip() or "US"
    out = []
    for x, y in points:
        if not (0 <= x < columns and 0 <= y < rows):
            raise ValueError(f"pixel ({x}, {y}) lies outside the {columns} x {rows} image")
        value = stored[y, x]
        modality = float(apply_modality_lut(np.asarray([value]), ds)[0])
        out.append({"x": int(x), "y": int(y), "stored": int(value), "modality": modality, "unit": unit})
    return out


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``"C,W"`` (modality units) to ``(center, width)``; None for no text.

    Raises
    ------
    ValueError
        Not two finite numbers, or a width that is not > 0 (PS3.3 C.11.2.1.3: LINEAR_EXACT windows only need
        a positive width; the display pipeline applies that exact function).
    """
    if text is None or text == "":
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError("window must be 'center,width'")
    try:
        center, width = (float(p) for p in parts)
    except ValueError:
        raise ValueError("window must be 'center,width' with two numbers") from None
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError("window center and width must be finite and width > 0")
    return center, width


def encode(img: np.ndarray, fmt: str, *, quality: int = 90) -> bytes:
    """Encode an 8-bit greyscale image as PNG or JPEG bytes.

    PNG uses zlib level :data:`PNG_COMPRESS_LEVEL` (1, fast; lossless anyway). JPEG uses *quality*,
    no optimisation pass (Pillow's default; ``optimize=True`` costs a second Huffman pass).

    Raises
    ------
    ValueError
        Unknown format, or *img* is not 2-D uint8.
    """
    fmt = fmt.upper()
    if img.dtype != np.uint8 or img.ndim != 2:
        raise ValueError("encode expects a 2-D uint8 array")
    buf = io.BytesIO()
    pil = Image.fromarray(img)
    if fmt == "PNG":
        pil.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt in ("JPEG", "JPG"):
        pil.save(buf, format="JPEG", quality=int(quality))
    else:
        raise ValueError(f"unsupported image format {fmt!r}; expected PNG or JPEG")
    return buf.getvalue()


_SUFFIX_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def render_file(
    path: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    window: tuple[float, float] | None = None,
    max_size: int | None = None,
    quality: int = 90,
) -> Path:
    """Render the DICOM file *path* to *out* (PNG or JPEG, chosen by the suffix), atomically.

    The image (:func:`to_uint8`) is encoded in memory and written with
    :func:`cxrlab.runtime.files.atomic_write_bytes` (a temporary file in *out*'s folder, fsynced, then renamed),
    so readers never see a partial file and a failure leaves nothing behind.

    Returns
    -------
    Path
        *out*.

    Raises
    ------
    ValueError
        *out* has a suffix other than .png, .jpg or .jpeg.
    DicomReadError
        *path* cannot be rendered.
    """
    out = Path(out)
    fmt = _SUFFIX_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise ValueError(f"{out}: unsupported output suffix; use .png, .jpg or .jpeg")
    data = encode(to_uint8(path, window=window, max_size=max_size), fmt, quality=quality)
    atomic_write_bytes(out, data)  # 0644: a rendered image is not secret beyond its folder
    return out
