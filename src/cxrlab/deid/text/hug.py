"""Redaction boxes that hug the burned-in text: the line's band whole, the rest of its grown box only where strokes are.

:meth:`~cxrlab.deid.text.detector.TextDetector.scan` grows every confirmed line beyond what the detector boxed: over
stroke columns that continue the line (:func:`~cxrlab.deid.text.candidates.extend_lines`), by
:data:`~cxrlab.deid.text.detector.LINE_END_PAD` line heights at each end and
:data:`~cxrlab.deid.text.detector.LINE_VERT_PAD` above and below. That growth is insurance for recall (a faint first
or last character, a clipped ascender, a faint neighbour line the detector did not box), but redacted whole it is
mostly empty film: on text burned into a real CR about 3.7 % of the image was changed farther than 16 px from any
stroke (issue 15, item 3; ``bench/deid_text.py``).

:func:`hug_boxes` keeps part of the insurance and replaces the rest by what the stored pixels show, at full
resolution (the detector only saw a 1024-px rendering):

1. the line's *band* -- the rows of the *detected* box (:attr:`Candidate.detected`: what the detector boxed and
   recognition read) less :data:`HUG_BAND_SHRINK` line heights above and below (the detector's box is taller than the
   glyphs it holds) -- is redacted over the whole width of the grown box: a faint first or last character is often
   invisible to any threshold (text at the value of the anatomy under it), so the line-end insurance stays;
2. everywhere else inside the grown box (and never outside it), *strokes* are pixels that stand out from their local
   background: the white and black top-hats (:data:`HUG_KERNEL` line heights wide: wider than any stroke of the
   line's font, narrower than the anatomy) of the crop smoothed by :data:`HUG_SMOOTH` line heights (film grain), above
   :data:`HUG_CONTRAST` of the line's own stroke contrast (the :data:`HUG_STROKE_PERCENTILE` th percentile of the
   top-hat inside the detected box) and above :data:`HUG_NOISE_MADS` robust deviations (1.4826 MAD) over the crop's
   median top-hat;
3. connected strokes that are not glyph-like are dropped: smaller than :data:`HUG_MIN_AREA` square line heights
   (grain), taller than :data:`HUG_MAX_HEIGHT` line heights (a bone or collimator edge crossing the line) or a long
   thin run (wider than two line heights, thinner than
   :data:`HUG_MIN_THICKNESS` of one: an edge along the line);
4. every glyph-like component is redacted as its bounding box grown by :data:`HUG_GROW` line heights (the
   anti-aliased rim of the strokes, the faint part of a character whose core stood out), clipped to the grown box.
   Components are found in a context of :data:`HUG_CONTEXT` line heights around the grown box, so that a glyph or an
   edge crossing its border is judged whole.

The line height is the detected box's height across the text (its width for vertical text, handled by transposing).
Every constant is a fraction of the line height or of the line's own contrast, never pixels or stored values, so the
rule carries across image sizes, bit depths and polarities. The redaction margin
(:func:`~cxrlab.deid.text.redact.default_margin`) is added afterwards by :func:`~cxrlab.deid.text.redact.redact`, as
before, and every box stays inside the candidate's grown box: the rule never redacts more than before.

What it costs (``bench/deid_text.py``, docs/benchmarks.md): on the real CR, the image changed farther than 16 px from
any stroke falls from 3.7 % to about 1.7 %, but about 0.2 % of the stroke pixels the whole-box rule covered are no
longer covered: faint strokes, at nearly the value of the anatomy under them, that the whole box covered because they
lay in the padding of a *neighbouring* line (a line continuing past its own detected box, under the next line's
padding). Because recall comes first, :func:`~cxrlab.deid.text.scan.scan_dataset` applies the rule only when asked
(``hug=True``); the default still redacts the grown boxes whole.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cxrlab.deid.text.boxes import Box
from cxrlab.deid.text.candidates import Candidate

__all__ = [
    "HUG_BAND_SHRINK",
    "HUG_CONTEXT",
    "HUG_CONTRAST",
    "HUG_GROW",
    "HUG_KERNEL",
    "HUG_MAX_HEIGHT",
    "HUG_MIN_AREA",
    "HUG_MIN_THICKNESS",
    "HUG_NOISE_MADS",
    "HUG_SMOOTH",
    "HUG_STROKE_PERCENTILE",
    "hug_boxes",
]

#: Top-hat kernel side, in line heights. The detected box is about 1.6 glyph heights tall, so this is about 0.4 glyph
#: heights: wider than a stroke (at most about a fifth of the glyph height even in bold fonts), narrower than anatomy.
HUG_KERNEL = 0.25
#: Percentile of the top-hat inside the detected box taken as the line's stroke contrast.
HUG_STROKE_PERCENTILE = 95.0
#: A pixel of the growth area is a stroke when its top-hat reaches this fraction of the line's stroke contrast...
HUG_CONTRAST = 0.1
#: ... and this many robust deviations (1.4826 MAD) above the median top-hat of the growth area.
HUG_NOISE_MADS = 5.0
#: Stroke components taller than this many line heights are edges crossing the line, not glyphs.
HUG_MAX_HEIGHT = 1.5
#: Stroke components wider than two line heights and thinner than this fraction of one are edges along the line.
HUG_MIN_THICKNESS = 0.2
#: The crop is smoothed (Gaussian, sigma in line heights, at least 1 px) before the top-hat: film grain averages out,
#: strokes (at least a few pixels wide at the stored resolution) do not.
HUG_SMOOTH = 0.02
#: The line's band (the detected box's rows less this many line heights above and below) is redacted over the whole
#: grown width: the insurance for faint line ends.
HUG_BAND_SHRINK = 0.2
#: Stroke components smaller than this many square line heights are grain, not part of a glyph.
HUG_MIN_AREA = 0.01
#: Strokes are found in a context of this many line heights around the grown box: a glyph or an edge crossing the
#: grown box's border is judged whole, and an edge crossing the line, cut in two by the band, still leaves pieces
#: taller than HUG_MAX_HEIGHT.
HUG_CONTEXT = 2.0
#: Each glyph component's box grows by this many line heights on every side.
HUG_GROW = 0.25


def hug_boxes(stored: np.ndarray, candidates: Sequence[Candidate]) -> list[Box]:
    """Return redaction boxes for the ``confirmed`` and ``marker`` *candidates* that hug their strokes.

    See the module docstring for the rule. A candidate without a :attr:`~Candidate.detected` box is hugged around its
    ``box``; one whose grown box equals its detected box is returned as it is.

    Parameters
    ----------
    stored : numpy.ndarray
        2-D stored pixel values the candidate boxes refer to (any integer or float dtype).
    candidates : sequence of Candidate
        Candidates of a scan in *stored* coordinates; only ``confirmed`` and ``marker`` ones are redacted.

    Returns
    -------
    list of (x0, y0, x1, y1)
        Boxes, max exclusive, each inside the grown box of its candidate (several per candidate: its band first, then
        one per glyph-like stroke component).

    Raises
    ------
    ValueError
        *stored* is not 2-D.
    """
    if stored.ndim != 2:
        raise ValueError("hug_boxes expects a 2-D stored pixel array")
    out: list[Box] = []
    for c in candidates:
        if c.status not in ("confirmed", "marker"):
            continue
        out.extend(_hug_one(stored, c.box, c.detected or c.box, c.vertical))
    return out


def _hug_one(stored: np.ndarray, grown: Box, detected: Box, vertical: bool) -> list[Box]:
    """Boxes for one line: its band across the whole *grown* box, glyph components elsewhere inside *grown*.

    Strokes are found in a context of :data:`HUG_CONTEXT` line heights around the grown box, so that a glyph or an
    edge crossing the grown box's border is judged whole (its size, its height) before its box is clipped.
    """
    import cv2

    rows, cols = stored.shape
    gx0, gy0, gx1, gy1 = max(0, grown[0]), max(0, grown[1]), min(cols, grown[2]), min(rows, grown[3])
    dx0, dy0 = max(gx0, detected[0]), max(gy0, detected[1])
    dx1, dy1 = min(gx1, detected[2]), min(gy1, detected[3])
    if dx1 <= dx0 or dy1 <= dy0:  # no usable detected box: keep the grown one
        return [(gx0, gy0, gx1, gy1)] if gx1 > gx0 and gy1 > gy0 else []
    if (gx0, gy0, gx1, gy1) == (dx0, dy0, dx1, dy1):
        return [(dx0, dy0, dx1, dy1)]
    line_h = float(dx1 - dx0) if vertical else float(dy1 - dy0)
    ctx = int(np.ceil(HUG_CONTEXT * line_h))
    cx0, cy0, cx1, cy1 = max(0, gx0 - ctx), max(0, gy0 - ctx), min(cols, gx1 + ctx), min(rows, gy1 + ctx)
    crop = np.ascontiguousarray(stored[cy0:cy1, cx0:cx1], dtype=np.float32)
    # boxes in crop coordinates: the grown box (where boxes may go) and the detected box
    g = (gx0 - cx0, gy0 - cy0, gx1 - cx0, gy1 - cy0)
    d = (dx0 - cx0, dy0 - cy0, dx1 - cx0, dy1 - cy0)
    if vertical:  # work with the text running along the rows
        crop = np.ascontiguousarray(crop.T)
        g, d = (g[1], g[0], g[3], g[2]), (d[1], d[0], d[3], d[2])
    if HUG_SMOOTH > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), max(1.0, HUG_SMOOTH * line_h))
    k = max(3, int(round(HUG_KERNEL * line_h)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    hat = np.maximum(
        cv2.morphologyEx(crop, cv2.MORPH_TOPHAT, kernel), cv2.morphologyEx(crop, cv2.MORPH_BLACKHAT, kernel)
    )
    med = float(np.median(hat))
    mad = 1.4826 * float(np.median(np.abs(hat - med)))
    stroke_contrast = float(np.percentile(hat[d[1] : d[3], d[0] : d[2]], HUG_STROKE_PERCENTILE))
    thresh = max(HUG_CONTRAST * stroke_contrast, med + HUG_NOISE_MADS * mad)
    strokes = hat > thresh
    shrink = int(round(HUG_BAND_SHRINK * line_h))
    by0, by1 = d[1] + shrink, max(d[1] + shrink + 1, d[3] - shrink)
    strokes[by0:by1, g[0] : g[2]] = False
    n, _labels, stats, _ = cv2.connectedComponentsWithStats(strokes.astype(np.uint8), connectivity=8)
    grow = int(np.ceil(HUG_GROW * line_h))
    boxes: list[Box] = [(g[0], by0, g[2], by1)]
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        grain = area < HUG_MIN_AREA * line_h * line_h
        edge = h > HUG_MAX_HEIGHT * line_h or (w > 2 * line_h and h < HUG_MIN_THICKNESS * line_h)
        if grain or edge:
            continue
        box = (max(g[0], x - grow), max(g[1], y - grow), min(g[2], x + w + grow), min(g[3], y + h + grow))
        if box[2] > box[0] and box[3] > box[1]:
            boxes.append(box)
    if vertical:
        boxes = [(y0, x0, y1, x1) for x0, y0, x1, y1 in boxes]
    return [(cx0 + x0, cy0 + y0, cx0 + x1, cy0 + y1) for x0, y0, x1, y1 in boxes]
