"""Scan a DICOM dataset: render it small, run the :class:`~cxrlab.deid.text.detector.TextDetector`, map the
boxes back to stored pixel coordinates."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cxrlab.deid.text.boxes import Box
from cxrlab.deid.text.candidates import Candidate
from cxrlab.deid.text.confirm import Decision
from cxrlab.deid.text.detector import TextDetector
from cxrlab.deid.text.hug import hug_boxes
from cxrlab.dicom.display import to_uint8

__all__ = ["TextScan", "scan_dataset"]


@dataclass
class TextScan:
    """Outcome of :func:`scan_dataset`.

    Attributes
    ----------
    decision : str
        ``"clean"``, ``"redact"`` or ``"review"``.
    boxes : list of tuple of int
        Boxes to redact, in original (stored) pixel coordinates, without the redaction margin: the confirmed and
        marker lines hugged to their strokes (:func:`~cxrlab.deid.text.hug.hug_boxes`; several boxes per line), or
        their grown boxes whole when the stored pixels are not one 2-D array.
    candidates : list of Candidate
        Every candidate with its status, in original pixel coordinates.
    seconds : dict
        Wall time per step: ``render``, ``detect``, ``recognize``, ``hug`` (when the boxes were hugged), ``total``.
    shape : tuple of int
        (rows, columns) of the original image.
    """

    decision: Decision
    boxes: list[Box]
    candidates: list[Candidate]
    seconds: dict[str, float] = field(default_factory=dict)
    shape: tuple[int, int] = (0, 0)


def scan_dataset(ds: Any, detector: TextDetector, *, render_max_side: int | None = None) -> TextScan:
    """Render a DICOM dataset (:func:`cxrlab.dicom.display.to_uint8`) and scan it for burned-in text.

    The result does not look at (0028,0301) *Burned In Annotation* (PS3.3 C.7.6.1.1.6): a NO there is not
    evidence of absence (the design notes, "Known hazards").

    The boxes to redact hug the text (:func:`~cxrlab.deid.text.hug.hug_boxes`, issue 15 item 3): each line's band
    across its grown box, and the glyphs of the text around it, one box each, found in the stored pixels at full
    resolution. When the stored pixels are not at hand as one 2-D array (a Modality LUT Sequence, several frames),
    the grown boxes are redacted whole.

    Parameters
    ----------
    ds : pydicom.dataset.Dataset or path
        Greyscale image dataset.
    detector : TextDetector
        A reusable detector.
    render_max_side : int, optional
        Long side of the rendering used for detection and recognition crops; default the detector's
        ``hi_side``.

    Returns
    -------
    TextScan
        Decision, boxes to redact and candidates in original pixel coordinates, timings.
    """
    t0 = time.perf_counter()
    disp, ds, stored = _render_and_pixels(ds, render_max_side or detector.hi_side, full_range=True)
    t1 = time.perf_counter()
    decision, cands, secs = detector.scan(disp)
    rows, cols = int(ds.Rows), int(ds.Columns)
    sy, sx = rows / disp.shape[0], cols / disp.shape[1]

    def scaled(box: Box) -> Box:
        x0, y0, x1, y1 = box
        return (
            max(0, int(np.floor(x0 * sx))),
            max(0, int(np.floor(y0 * sy))),
            min(cols, int(np.ceil(x1 * sx))),
            min(rows, int(np.ceil(y1 * sy))),
        )

    for c in cands:
        c.box = scaled(c.box)
        if c.detected is not None:
            c.detected = scaled(c.detected)
    t2 = time.perf_counter()
    if decision == "redact" and stored is not None and stored.shape == (rows, cols):
        boxes = hug_boxes(stored, cands)
        secs["hug"] = time.perf_counter() - t2
    else:
        boxes = [c.box for c in cands if c.status in ("confirmed", "marker")]
    secs = {"render": t1 - t0, **secs, "total": time.perf_counter() - t0}
    return TextScan(decision, boxes, cands, secs, (rows, cols))


def _render_small(ds: Any, max_side: int, *, full_range: bool = False) -> tuple[np.ndarray, Any]:
    """:func:`_render_and_pixels` without the stored pixels."""
    disp, ds, _stored = _render_and_pixels(ds, max_side, full_range=full_range)
    return disp, ds


def _render_and_pixels(
    ds: Any, max_side: int, *, full_range: bool = False
) -> tuple[np.ndarray, Any, np.ndarray | None]:
    """Render the 8-bit display image for detection at long side <= *max_side*; return it and the dataset.

    Fast path for the usual linear Modality LUT (Rescale Slope/Intercept, which commutes with averaging):
    the *stored* array is block-averaged first (:func:`_area_downsample`, on the integer array without a
    float64 copy of the full image), then only the small image is windowed.

    With *full_range*, the window spans every value of the downsampled image instead of the file's own VOI:
    text burned in at the maximum value stays visible over bright anatomy (the spine, the mediastinum) that
    a clinical window saturates to the same white. A linear window over the full range of a linear Modality LUT
    is a min-max stretch of the stored values, with black at the smallest modality value (PS3.3 C.11.1) and
    MONOCHROME1 inverted (C.7.6.3.1.2). Otherwise :func:`cxrlab.dicom.display.render_pixels` windows the small
    image (the percentile fallback window then comes from the downsampled values, slightly narrower than at
    full resolution, which only raises contrast); non-linear Modality LUTs and VOI LUT sequences use
    :func:`~cxrlab.dicom.display.to_uint8`.

    The third value is the 2-D stored pixel array when it was decoded on the way (the fast path), else None.
    """
    import cv2

    from cxrlab.dicom.display import render_pixels
    from cxrlab.dicom.io import read_dataset, read_pixels

    if not hasattr(ds, "Rows"):
        ds = read_dataset(ds)
    if ds.get("ModalityLUTSequence") or (ds.get("VOILUTSequence") and not full_range):
        return to_uint8(ds, max_size=max_side), ds, None
    stored = read_pixels(ds)
    if stored.ndim != 2:
        return to_uint8(ds, max_size=max_side), ds, None
    small = _area_downsample(stored, max_side)
    if full_range:
        out = cv2.normalize(small, None, 0, 255, cv2.NORM_MINMAX, dtype=cv2.CV_8U)
        slope = float(ds.get("RescaleSlope", 1) or 1)
        if (str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1") != (slope < 0):
            cv2.bitwise_not(out, out)
        return out, ds, stored
    return render_pixels(small.astype(np.float32, copy=False), ds), ds, stored


def _area_downsample(stored: np.ndarray, max_side: int) -> np.ndarray:
    """Area-average *stored* so its long side is <= *max_side* (halving first while more than twice too big:
    OpenCV's integer-factor ``INTER_AREA`` is several times faster than one large non-integer step)."""
    import cv2

    img = stored if stored.dtype in (np.uint8, np.uint16, np.int16) else stored.astype(np.float32)
    img = np.ascontiguousarray(img)
    while max(img.shape) > 2 * max_side:
        img = cv2.resize(img, (img.shape[1] // 2, img.shape[0] // 2), interpolation=cv2.INTER_AREA)
    rows, cols = img.shape
    if max(rows, cols) <= max_side:
        return img
    scale = max_side / max(rows, cols)
    size = (min(max_side, max(1, round(cols * scale))), min(max_side, max(1, round(rows * scale))))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)
