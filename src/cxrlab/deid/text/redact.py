"""Redaction: fill confirmed boxes in the stored pixels, and draw a preview for the review queue."""

from __future__ import annotations

import io
from collections.abc import Iterable, Sequence

import numpy as np
from PIL import Image, ImageDraw

from cxrlab.deid.text.boxes import boxes_mask
from cxrlab.deid.text.candidates import Candidate

__all__ = ["REDACT_MARGIN_FRAC", "default_margin", "preview_png", "redact"]

#: Redaction margin around each confirmed box, as a fraction of the image's long side (at least 2 px).
REDACT_MARGIN_FRAC = 0.004


def redact(
    stored: np.ndarray,
    boxes: Iterable[Sequence[int]],
    *,
    margin_px: int,
    photometric: str = "MONOCHROME2",
    fill: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Fill *boxes* in the stored pixel array with the value that displays as black.

    Redaction happens on stored values so the output can be written back as Pixel Data (after which
    (0028,0301) *Burned In Annotation*, PS3.3 C.7.6.1.1.6, may be set to NO only if the whole image was
    confirmed clean or reviewed).

    Parameters
    ----------
    stored : numpy.ndarray
        2-D stored values (one frame, one sample per pixel).
    boxes : iterable of (x0, y0, x1, y1)
        Boxes in stored pixel coordinates, max exclusive.
    margin_px : int
        Extra pixels on every side of each box.
    photometric : str, optional
        ``"MONOCHROME2"`` (minimum displays black) or ``"MONOCHROME1"`` (maximum displays black).
    fill : float, optional
        Explicit fill value; default: the minimum of *stored* for MONOCHROME2, the maximum for
        MONOCHROME1 (the darkest value actually present, which stays inside the Modality/VOI range).

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        A redacted copy of *stored* (same dtype) and the boolean redacted mask; ``mask.sum()`` is the
        redacted area in pixels.

    Raises
    ------
    ValueError
        *stored* is not 2-D or *photometric* is not MONOCHROME1/2.
    """
    if stored.ndim != 2:
        raise ValueError("redact expects a 2-D stored pixel array")
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"unsupported photometric interpretation {photometric!r}")
    mask = boxes_mask(stored.shape, boxes, margin_px=margin_px)
    out = stored.copy()
    if fill is None:
        if stored.size == 0:
            return out, mask
        fill = stored.max() if photometric == "MONOCHROME1" else stored.min()
    out[mask] = np.asarray(fill).astype(stored.dtype)
    return out, mask


def preview_png(
    display_uint8: np.ndarray,
    boxes: Iterable[Sequence[int] | Candidate],
    *,
    max_side: int = 512,
) -> bytes:
    """Render a small PNG of the image with candidate boxes drawn, for the review queue.

    Colours: red = confirmed (or a plain box), orange = marker, yellow = doubtful, cyan = ignored.

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        2-D uint8 display image; boxes refer to its pixel coordinates.
    boxes : iterable of (x0, y0, x1, y1) or Candidate
        Boxes to draw.
    max_side : int, optional
        Long side of the preview.

    Returns
    -------
    bytes
        PNG data (RGB).
    """
    img = Image.fromarray(np.ascontiguousarray(display_uint8, dtype=np.uint8)).convert("RGB")
    rows, cols = display_uint8.shape[:2]
    scale = min(1.0, max_side / max(rows, cols, 1))
    if scale < 1.0:
        img = img.resize((max(1, round(cols * scale)), max(1, round(rows * scale))), Image.Resampling.BOX)
    draw = ImageDraw.Draw(img)
    colours = {"doubtful": (255, 210, 0), "ignored": (0, 200, 255), "marker": (255, 128, 0)}
    for b in boxes:
        box, colour = (b.box, colours.get(b.status, (255, 0, 0))) if isinstance(b, Candidate) else (b, (255, 0, 0))
        x0, y0, x1, y1 = (float(v) * scale for v in box[:4])
        draw.rectangle((x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)), outline=colour, width=2)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def default_margin(shape: tuple[int, int]) -> int:
    """Return the redaction margin in pixels for an image of *shape* (:data:`REDACT_MARGIN_FRAC`)."""
    return max(2, round(REDACT_MARGIN_FRAC * max(int(shape[0]), int(shape[1]))))
