"""Text candidates: the detected regions, and where the strokes of small text show where to look.

A :class:`Candidate` is one region the detector boxed; :func:`merge_lines` joins the fragments of one line.
:func:`stroke_mask` and :func:`stroke_proposals` find thin, sharp, high-contrast features (text strokes) that
the downsampled global detector pass misses, and :func:`extend_lines` grows a confirmed line over the strokes
that continue it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from cxrlab.deid.text.boxes import Box, _merge_until_stable

__all__ = ["Candidate", "extend_lines", "merge_lines", "stroke_mask", "stroke_proposals"]

#: Fragments of one line separated by at most this many line heights are merged (:func:`merge_lines`).
LINE_MERGE_GAP = 1.5
#: Stroke proposals (:func:`stroke_proposals`), in pixels of a 1024-px rendering: the top-hat kernel (about a
#: character's size), the contrast a stroke needs over its surroundings (8-bit display values) and the
#: closing that joins strokes into words and lines. Small text that the global detector pass misses (a 30-px
#: line of a 2500-px image is under 8 px at 640) still stands out this way.
PROPOSAL_KERNEL = 7
PROPOSAL_CONTRAST = 15
PROPOSAL_CLOSE = (9, 3)
#: Largest proposal height (a block of a few small lines) in pixels at 1024.
PROPOSAL_MAX_HEIGHT = 90


@dataclass
class Candidate:
    """One detected text region.

    Attributes
    ----------
    box : tuple of int
        ``(x0, y0, x1, y1)`` in pixel coordinates of the image passed to the detector (max exclusive),
        already grown by the DB unclip distance.
    score : float
        Mean detection probability inside the region.
    text : str
        Recognised string ("" when recognition was not run).
    rec_conf : float
        Recognition confidence in [0, 1].
    status : str
        ``"confirmed"``, ``"doubtful"`` or ``"ignored"`` after :func:`confirm`, ``"marker"`` after
        :func:`~cxrlab.deid.text.confirm.settle_markers` (redacted like confirmed text); ``"candidate"`` before.
    reason : str
        Why the candidate was not confirmed (empty when confirmed).
    strokes : float or None
        Fraction of the box covered by :func:`stroke_mask` (None when not measured).
    vertical : bool
        The text runs top to bottom or bottom to top (read rotated by :meth:`TextDetector.recognize`).
    detected : tuple of int or None
        For a redacted candidate, its box as detected and read, before :func:`extend_lines` and the line padding
        of :meth:`TextDetector.scan` grew it into ``box`` (None otherwise). :func:`~cxrlab.deid.text.hug.hug_boxes`
        takes the line's band and height from it.
    """

    box: Box
    score: float
    text: str = ""
    rec_conf: float = 0.0
    status: str = "candidate"
    reason: str = ""
    strokes: float | None = None
    vertical: bool = False
    detected: Box | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict of the fields."""
        return {
            "box": list(self.box),
            "score": round(float(self.score), 4),
            "text": self.text,
            "rec_conf": round(float(self.rec_conf), 4),
            "status": self.status,
            "reason": self.reason,
            "vertical": self.vertical,
        }


def merge_lines(candidates: Sequence[Candidate], *, gap_factor: float = LINE_MERGE_GAP) -> list[Candidate]:
    """Merge candidates that are fragments of one text line.

    Low-contrast text (over the spine, say) is often detected in pieces ("06", "83"); each piece fails
    the line geometry and reads poorly. Two boxes are merged when their vertical overlap is at least 60%
    of the smaller height, their heights differ by less than 1.6x and the horizontal gap is at most
    *gap_factor* times the larger height. Repeats until nothing changes; the score is the area-weighted mean.

    Parameters
    ----------
    candidates : sequence of Candidate
        Detector output.
    gap_factor : float, optional
        Largest horizontal gap, in line heights.

    Returns
    -------
    list of Candidate
        New list (merged candidates are new objects, others are the inputs).
    """

    def join(a: Candidate, b: Candidate) -> Candidate | None:
        ax0, ay0, ax1, ay1 = a.box
        bx0, by0, bx1, by1 = b.box
        ah, bh = ay1 - ay0, by1 - by0
        if min(ah, bh) <= 0 or max(ah, bh) > 1.6 * min(ah, bh):
            return None
        if min(ay1, by1) - max(ay0, by0) < 0.6 * min(ah, bh):
            return None
        if max(ax0, bx0) - min(ax1, bx1) > gap_factor * max(ah, bh):
            return None
        wa, wb = (ax1 - ax0) * ah, (bx1 - bx0) * bh
        box = (min(ax0, bx0), min(ay0, by0), max(ax1, bx1), max(ay1, by1))
        return Candidate(box, (a.score * wa + b.score * wb) / max(1, wa + wb))

    return _merge_until_stable(candidates, join)


def stroke_mask(display_uint8: np.ndarray) -> np.ndarray:
    """Mark thin, sharp, high-contrast features (text strokes, bright or dark) of a display image.

    The white and black top-hats with a square kernel of :data:`PROPOSAL_KERNEL` px (at a 1024-px rendering;
    scaled to the image's long side) keep features smaller than a character; those above
    :data:`PROPOSAL_CONTRAST` display levels are strokes. Anatomy is smooth at that scale.

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        2-D uint8 display image.

    Returns
    -------
    numpy.ndarray
        uint8 mask (1 = stroke) of the image's shape.
    """
    import cv2

    k = max(3, round(PROPOSAL_KERNEL * max(display_uint8.shape) / 1024.0) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    img = np.ascontiguousarray(display_uint8)
    hat = cv2.max(cv2.morphologyEx(img, cv2.MORPH_TOPHAT, kernel), cv2.morphologyEx(img, cv2.MORPH_BLACKHAT, kernel))
    return (hat > PROPOSAL_CONTRAST).astype(np.uint8)


def stroke_proposals(display_uint8: np.ndarray, strokes: np.ndarray | None = None) -> list[Box]:
    """Find clusters of strokes (:func:`stroke_mask`): where small burned-in text may be.

    The detector's global pass runs on a downsampled image (:attr:`TextDetector.max_side`), where the smallest
    text lines are only a few pixels tall and vanish; their strokes do not. Strokes are joined into words and
    lines by a closing (:data:`PROPOSAL_CLOSE`), and connected components at most :data:`PROPOSAL_MAX_HEIGHT`
    tall, not taller than 1.25x their width and at least 20% filled are proposed. On real radiographs this also
    proposes surgical clips, wires and lead markers; the detector and recognition decide on each
    (:class:`TextDetector`).

    Parameters
    ----------
    display_uint8 : numpy.ndarray
        2-D uint8 display image. Sizes are tuned for a rendering with a long side of 1024 px and scaled to
        the image's long side.
    strokes : numpy.ndarray, optional
        :func:`stroke_mask` of the image, when already computed.

    Returns
    -------
    list of (x0, y0, x1, y1)
        Proposal boxes, max exclusive, in the image's coordinates.
    """
    import cv2

    f = max(display_uint8.shape) / 1024.0
    if strokes is None:
        strokes = stroke_mask(display_uint8)
    close = (max(3, round(PROPOSAL_CLOSE[0] * f)), max(1, round(PROPOSAL_CLOSE[1] * f)))
    joined = cv2.morphologyEx(strokes, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, close))
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    hmin, hmax = max(2, round(4 * f)), PROPOSAL_MAX_HEIGHT * f
    out: list[Box] = []
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        if hmin <= h <= hmax and w >= 0.8 * h and area >= 0.2 * w * h:
            out.append((x, y, x + w, y + h))
    return out


def extend_lines(candidates: Sequence[Candidate], strokes: np.ndarray) -> list[Candidate]:
    """Grow each confirmed line box along its line while strokes continue (in place; also returned).

    A line's faint end (characters over bright anatomy, say) is often left out of the detected box although
    its strokes are visible. Within the middle 60% of the box's rows, the box's left and right edges move
    outwards over every column holding a stroke, across gaps of at most one line height.

    Parameters
    ----------
    candidates : sequence of Candidate
        After :func:`confirm`; only ``confirmed`` boxes grow.
    strokes : numpy.ndarray
        :func:`stroke_mask` of the image the boxes refer to.

    Returns
    -------
    list of Candidate
        The same objects.
    """
    cols = strokes.shape[1]
    for c in candidates:
        if c.status != "confirmed" or c.vertical:
            continue
        x0, y0, x1, y1 = c.box
        h = y1 - y0
        band = strokes[y0 + h // 5 : max(y0 + h // 5 + 1, y1 - h // 5), :]
        if band.size == 0 or h <= 0:
            continue
        has = np.flatnonzero(band.any(axis=0))
        gap = max(2, h)
        right = x1
        for x in has[np.searchsorted(has, x1) :]:
            if x - right > gap:
                break
            right = int(x) + 1
        left = x0
        for x in has[: np.searchsorted(has, x0)][::-1]:
            if left - x > gap:
                break
            left = int(x)
        c.box = (max(0, left), y0, min(cols, right), y1)
    return list(candidates)


def _measure_strokes(candidates: Sequence[Candidate], strokes: np.ndarray | None) -> None:
    """Fill each candidate's ``strokes`` (fraction of its box on the :func:`stroke_mask`)."""
    if strokes is None:
        return
    for c in candidates:
        x0, y0, x1, y1 = c.box
        region = strokes[y0:y1, x0:x1]
        c.strokes = float(region.mean()) if region.size else 0.0
