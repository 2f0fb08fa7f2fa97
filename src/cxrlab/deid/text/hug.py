"""Redaction boxes that hug the burned-in text: one box per glyph, and the line's band as insurance.

:meth:`~cxrlab.deid.text.detector.TextDetector.scan` grows every confirmed line beyond what the detector boxed: over
stroke columns that continue the line (:func:`~cxrlab.deid.text.candidates.extend_lines`), by
:data:`~cxrlab.deid.text.detector.LINE_END_PAD` line heights at each end and
:data:`~cxrlab.deid.text.detector.LINE_VERT_PAD` above and below. That growth is insurance for recall (a faint first
or last character, a clipped ascender, a faint neighbour line the detector did not box), but redacted whole it is
mostly empty film: on text burned into a real CR about 3.7 % of the image was changed farther than 16 px from any
stroke (issue 15, item 3; ``bench/deid_text.py``), and it still missed what lay past the padding. :func:`hug_boxes`
is what :func:`~cxrlab.deid.text.scan.scan_dataset` redacts instead. It looks at the stored pixels at full resolution
(the detector only saw a 1024-px rendering) and follows the glyphs themselves, so it reaches text the grown box did
not (a neighbouring line of the same block, the rest of a line the detector boxed in pieces) while leaving the empty
film of the padding alone:

1. **The ink.** Software burns text in with one value, its *ink*: the glyphs' cores hold it exactly, their
   anti-aliased rims blend it with the film. The ink of a line is the value held by the most of its stroke pixels
   (below) inside the *detected* box (:attr:`Candidate.detected`: what the detector boxed and recognition read), when
   it is held by at least :data:`HUG_INK_DOMINANCE` times as many as any other value (anatomy and rims spread over
   many values) and at least :data:`HUG_INK_PRECISION` of the detected box's pixels holding it lie within a top-hat
   kernel of a stroke (a flat border or a saturated area at the same value is not ink). Where a line has an ink,
   every pixel holding it, along the whole line (the full width of the image for horizontal text), is a stroke
   whatever the anatomy under it, so a character too faint for any threshold is still found.
2. **Strokes that stand out.** Pixels that stand out from their local background are strokes too (a neighbouring line
   drawn with another value; every stroke of a line without an ink: text re-quantised by lossy compression, an image
   resampled after the text was burned in): the white and black top-hats (:data:`HUG_KERNEL` line heights wide: wider
   than any stroke, narrower than the anatomy) of the crop smoothed by :data:`HUG_SMOOTH` line heights (film grain),
   above :data:`HUG_CONTRAST` of the line's own stroke contrast (the :data:`HUG_STROKE_PERCENTILE` th percentile of
   the top-hat inside the detected box) and above :data:`HUG_NOISE_MADS` robust deviations (1.4826 MAD) over the
   crop's median top-hat. They are looked for in a context of :data:`HUG_CONTEXT` line heights around the grown box,
   away (a top-hat kernel) from the ink's glyphs, whose shape the ink already gives exactly.
3. **The glyphs.** Straight runs of strokes at least :data:`HUG_RUN` line heights long, across or along the line,
   are edges (the film's border, a collimator blade, a saturated band), not strokes of a glyph (no stroke of a glyph
   is longer than the glyph, about 0.6 line heights): they are taken out before the strokes are split into connected
   components, so that a glyph touching an edge stays a glyph. Components smaller than :data:`HUG_MIN_AREA` square
   line heights (grain), taller than :data:`HUG_MAX_HEIGHT` line heights (an edge crossing the line) or long and
   thin (wider than two line heights, thinner than :data:`HUG_MIN_THICKNESS` of one) are not glyphs.
4. **The text.** Every glyph that touches the grown box is text, and so is every glyph within :data:`HUG_GAP` line
   heights of a glyph of the text (letters, and the lines of one block, are set closer than that), or beside one
   along the line within :data:`HUG_GAP_ALONG` line heights (about an em: a word space with a punctuation mark too
   small to count), until none is added; only as far as :data:`HUG_REACH` line heights above or below the grown box
   (the next line of a block, not another group), and along the line as far as the ink goes (without an ink, as far
   as :data:`HUG_REACH` line heights past the grown box's ends). Each glyph is redacted as its bounding box grown by
   :data:`HUG_GROW_STROKES` stroke widths (its anti-aliased rim, the faint part of a stroke whose core stood out):
   twice the largest distance from the background inside the ink pixels of each glyph touching the detected box (the
   median over them), or, without an ink, the top-hat kernel (the widest stroke the top-hat finds; its components
   are whole glyphs or words, as the black top-hat fills the gaps between bright strokes).
5. **The band.** The rows of the detected box less :data:`HUG_BAND_SHRINK` line heights above and below (the
   detector's box is about 1.6 glyph heights tall) are redacted across the detected box and, for a line without an
   ink, across the whole grown box: there a faint first or last character at the value of the anatomy under it is
   invisible to any threshold, so the line-end insurance stays.

The line height is the detected box's height across the text (its width for vertical text, handled by transposing).
Every constant is a fraction of the line height, of the line's own contrast or of its own stroke pixels, never
pixels or stored values, so the rule carries across image sizes, bit depths and polarities. The redaction margin
(:func:`~cxrlab.deid.text.redact.default_margin`) is added afterwards by :func:`~cxrlab.deid.text.redact.redact`, as
before. A marker (its grown box is its detected box) is redacted as detected.

What it does, and how the constants were chosen, is in docs/benchmarks.md ("Burned-in text"): the figures of
``bench/deid_text.py`` on the layouts and phantoms the rule was developed on, and on held-out ones
(``--seed 7001 --real-seed 100``).
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
    "HUG_GAP",
    "HUG_GAP_ALONG",
    "HUG_GROW_STROKES",
    "HUG_INK_DOMINANCE",
    "HUG_INK_PRECISION",
    "HUG_KERNEL",
    "HUG_MAX_HEIGHT",
    "HUG_MIN_AREA",
    "HUG_MIN_THICKNESS",
    "HUG_NOISE_MADS",
    "HUG_REACH",
    "HUG_RUN",
    "HUG_SMOOTH",
    "HUG_STROKE_PERCENTILE",
    "hug_boxes",
]

#: Top-hat kernel side, in line heights. The detected box is about 1.6 glyph heights tall, so this is about 0.4 glyph
#: heights: wider than a stroke (at most about a fifth of the glyph height even in bold fonts), narrower than anatomy.
HUG_KERNEL = 0.25
#: Percentile of the top-hat inside the detected box taken as the line's stroke contrast.
HUG_STROKE_PERCENTILE = 95.0
#: A pixel stands out as a stroke when its top-hat reaches this fraction of the line's stroke contrast...
HUG_CONTRAST = 0.1
#: ... and this many robust deviations (1.4826 MAD) above the median top-hat of the crop.
HUG_NOISE_MADS = 5.0
#: The line's ink: the value held by the most stroke pixels of its detected box, when it is held by at least this many
#: times as many as any other value (anatomy and anti-aliased rims spread over many values; a line's glyph cores hold
#: one)...
HUG_INK_DOMINANCE = 5.0
#: ... of whose pixels in the detected box at least this share lie on a stroke or within a kernel of one (a flat
#: border or a saturated area at the ink's value is not ink).
HUG_INK_PRECISION = 0.5
#: Straight runs of strokes at least this many line heights long are edges, taken out before the glyphs are found.
HUG_RUN = 1.0
#: Stroke components taller than this many line heights are edges crossing the line, not glyphs.
HUG_MAX_HEIGHT = 1.5
#: Stroke components wider than two line heights and thinner than this fraction of one are edges along the line.
HUG_MIN_THICKNESS = 0.2
#: The crop is smoothed (Gaussian, sigma in line heights, at least 1 px) before the top-hat: film grain averages out,
#: strokes (at least a few pixels wide at the stored resolution) do not.
HUG_SMOOTH = 0.02
#: The line's band (the detected box's rows less this many line heights above and below) is redacted across the
#: detected box, and across the grown box for a line without an ink: the insurance for faint line ends.
HUG_BAND_SHRINK = 0.2
#: Stroke components smaller than this many square line heights are grain, not part of a glyph.
HUG_MIN_AREA = 0.01
#: Strokes that stand out are found in a context of this many line heights around the grown box: a glyph or an edge
#: crossing the border of the search is judged whole.
HUG_CONTEXT = 2.0
#: Glyphs closer than this many line heights to a glyph of the text are text too (letter and line spacing)...
HUG_GAP = 0.5
#: ... and so are glyphs beside one, along the line, closer than this many line heights (about an em: a word space
#: with a punctuation mark too small to count as a glyph, "ID: 4821").
HUG_GAP_ALONG = 1.0
#: ... as far as this many line heights above or below the grown box (the next line of a block; along the line, as
#: far as the line's ink goes, or this far past the grown box's ends without an ink).
HUG_REACH = 1.0
#: Each glyph's box grows by this many stroke widths on every side (the anti-aliased rim is under one stroke width).
HUG_GROW_STROKES = 1.0


def hug_boxes(stored: np.ndarray, candidates: Sequence[Candidate]) -> list[Box]:
    """Return redaction boxes for the ``confirmed`` and ``marker`` *candidates* that hug their strokes.

    See the module docstring for the rule. A candidate without a :attr:`~Candidate.detected` box is hugged around its
    ``box``; one whose grown box equals its detected box (a marker) is returned as it is.

    Parameters
    ----------
    stored : numpy.ndarray
        2-D stored pixel values the candidate boxes refer to (any integer or float dtype).
    candidates : sequence of Candidate
        Candidates of a scan in *stored* coordinates; only ``confirmed`` and ``marker`` ones are redacted.

    Returns
    -------
    list of (x0, y0, x1, y1)
        Boxes, max exclusive (several per candidate: its band first, then one per glyph), each within
        :data:`HUG_REACH` line heights of its candidate's grown box across the line, and along the line within as
        much (a line without an ink) or anywhere its ink's glyphs continue.

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
    """Boxes for one line: its band, then the glyphs of the text around it (steps 1-5 of the module docstring)."""
    import cv2

    if vertical:  # work with the text running along the rows
        boxes = _hug_one(stored.T, (grown[1], grown[0], grown[3], grown[2]),
                         (detected[1], detected[0], detected[3], detected[2]), False)
        return [(y0, x0, y1, x1) for x0, y0, x1, y1 in boxes]
    rows, cols = stored.shape
    gx0, gy0, gx1, gy1 = max(0, grown[0]), max(0, grown[1]), min(cols, grown[2]), min(rows, grown[3])
    dx0, dy0 = max(gx0, detected[0]), max(gy0, detected[1])
    dx1, dy1 = min(gx1, detected[2]), min(gy1, detected[3])
    if dx1 <= dx0 or dy1 <= dy0:  # no usable detected box: keep the grown one
        return [(gx0, gy0, gx1, gy1)] if gx1 > gx0 and gy1 > gy0 else []
    if (gx0, gy0, gx1, gy1) == (dx0, dy0, dx1, dy1):
        return [(dx0, dy0, dx1, dy1)]
    line_h = float(dy1 - dy0)
    ctx = int(np.ceil(HUG_CONTEXT * line_h))
    cx0, cy0, cx1, cy1 = max(0, gx0 - ctx), max(0, gy0 - ctx), min(cols, gx1 + ctx), min(rows, gy1 + ctx)
    raw = np.ascontiguousarray(stored[cy0:cy1, cx0:cx1])
    d = (dx0 - cx0, dy0 - cy0, dx1 - cx0, dy1 - cy0)
    strokes, ink = _strokes(raw, d, line_h)
    exact = None
    if ink is not None:  # the line's own value: follow it along the whole line, not only near the grown box
        exact = _without_runs((stored[cy0:cy1] == ink).astype(np.uint8), line_h)
        # and what stands out near the line away from the ink's glyphs (a neighbouring line drawn with another value)
        k = max(3, int(round(HUG_KERNEL * line_h)) | 1)
        strokes &= 1 - cv2.dilate(exact[:, cx0:cx1], cv2.getStructuringElement(cv2.MORPH_RECT, (k, k)))
        wide = exact.copy()
        wide[:, cx0:cx1] |= _without_runs(strokes, line_h)
        strokes, cx0, cx1 = wide, 0, cols
    # boxes in crop coordinates: the grown box (text touching it is redacted) and the detected box
    g = (gx0 - cx0, gy0 - cy0, gx1 - cx0, gy1 - cy0)
    d = (dx0 - cx0, dy0 - cy0, dx1 - cx0, dy1 - cy0)
    glyphs, labels = _glyphs(strokes, line_h)
    reach = int(np.ceil(HUG_REACH * line_h))
    h, w = strokes.shape
    limit = (0 if ink is not None else max(0, g[0] - reach), max(0, g[1] - reach),
             w if ink is not None else min(w, g[2] + reach), min(h, g[3] + reach))
    text = _follow(glyphs, g, limit, HUG_GAP_ALONG * line_h, HUG_GAP * line_h)
    # exact strokes give the stroke width; the top-hats' components are whole glyphs or words (the black top-hat fills
    # the gaps between bright strokes), so there the widest stroke the top-hat can find, its kernel, stands for it
    width = _stroke_width(exact, labels, glyphs, text, d) if exact is not None else None
    grow = int(np.ceil(HUG_GROW_STROKES * (width if width is not None else HUG_KERNEL * line_h)))
    shrink = int(round(HUG_BAND_SHRINK * line_h))
    by0, by1 = d[1] + shrink, max(d[1] + shrink + 1, d[3] - shrink)
    # the line-end insurance: the band across the grown box, unless the ink shows the whole line, faint ends included
    boxes: list[Box] = [(d[0], by0, d[2], by1) if ink is not None else (g[0], by0, g[2], by1)]
    for i in sorted(text):
        x0, y0, x1, y1 = glyphs[i]
        boxes.append(
            (max(limit[0], x0 - grow), max(limit[1], y0 - grow), min(limit[2], x1 + grow), min(limit[3], y1 + grow))
        )
    return [(cx0 + x0, cy0 + y0, cx0 + x1, cy0 + y1) for x0, y0, x1, y1 in boxes]


def _without_runs(strokes: np.ndarray, line_h: float) -> np.ndarray:
    """*strokes* less its straight runs at least :data:`HUG_RUN` line heights long, across or along the line: edges (a
    border, a saturated band, a collimator blade), not strokes of a glyph."""
    import cv2

    run = max(3, int(round(HUG_RUN * line_h)))
    edges = cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (run, 1)))
    edges |= cv2.morphologyEx(strokes, cv2.MORPH_OPEN, cv2.getStructuringElement(cv2.MORPH_RECT, (1, run)))
    return strokes & (1 - edges)


def _strokes(raw: np.ndarray, d: Box, line_h: float) -> tuple[np.ndarray, float | int | None]:
    """The uint8 stroke mask of the crop *raw* (1 = stroke) for the line detected at *d* -- the pixels holding its ink,
    or those its top-hats find -- and the ink (None when the line has none)."""
    import cv2

    crop = raw.astype(np.float32)
    if HUG_SMOOTH > 0:
        crop = cv2.GaussianBlur(crop, (0, 0), max(1.0, HUG_SMOOTH * line_h))
    k = max(3, int(round(HUG_KERNEL * line_h)) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    hat = np.maximum(
        cv2.morphologyEx(crop, cv2.MORPH_TOPHAT, kernel), cv2.morphologyEx(crop, cv2.MORPH_BLACKHAT, kernel)
    )
    med = float(np.median(hat))
    mad = 1.4826 * float(np.median(np.abs(hat - med)))
    inside = (slice(d[1], d[3]), slice(d[0], d[2]))
    stroke_contrast = float(np.percentile(hat[inside], HUG_STROKE_PERCENTILE))
    strong = (hat > max(HUG_CONTRAST * stroke_contrast, med + HUG_NOISE_MADS * mad)).astype(np.uint8)
    ink = _ink(raw[inside], strong[inside], cv2.dilate(strong, kernel)[inside])
    return strong, ink


def _ink(region: np.ndarray, strong: np.ndarray, near: np.ndarray) -> float | int | None:
    """The value the line inside the detected *region* is drawn with, or None (:data:`HUG_INK_DOMINANCE`,
    :data:`HUG_INK_PRECISION`); *strong* marks its stroke pixels, *near* those within a top-hat kernel of one."""
    core = region[strong.astype(bool)]
    if core.size == 0:
        return None
    values, counts = np.unique(core, return_counts=True)
    order = np.argsort(counts)[::-1]
    j = int(order[0])
    runner_up = int(counts[order[1]]) if counts.size > 1 else 0
    if counts[j] < HUG_INK_DOMINANCE * runner_up:
        return None
    holding = region == values[j]
    if int(near[holding].sum()) < HUG_INK_PRECISION * int(holding.sum()):
        return None
    return values[j].item()


def _glyphs(strokes: np.ndarray, line_h: float) -> tuple[dict[int, Box], np.ndarray]:
    """The glyph-like connected components of *strokes*: their boxes by label, and the label image."""
    import cv2

    n, labels, stats, _ = cv2.connectedComponentsWithStats(strokes, connectivity=8)
    glyphs: dict[int, Box] = {}
    for i in range(1, n):
        x, y, w, h, area = (int(v) for v in stats[i])
        grain = area < HUG_MIN_AREA * line_h * line_h
        edge = h > HUG_MAX_HEIGHT * line_h or (w > 2 * line_h and h < HUG_MIN_THICKNESS * line_h)
        if not (grain or edge):
            glyphs[i] = (x, y, x + w, y + h)
    return glyphs, labels


def _overlap(a: Sequence[float], b: Sequence[float]) -> bool:
    """True when boxes *a* and *b* (max exclusive) intersect."""
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _follow(glyphs: dict[int, Box], grown: Box, limit: Box, along: float, gap: float) -> set[int]:
    """Labels of the text: the glyphs touching *grown*, then every glyph touching *limit* that lies within *along* of a
    glyph of the text along the line (to the left or right) or within *gap* of it in any direction, until none is
    added."""
    text = {i for i, b in glyphs.items() if _overlap(b, grown)}
    rest = {i for i, b in glyphs.items() if i not in text and _overlap(b, limit)}
    todo = list(text)
    while todo and rest:
        x0, y0, x1, y1 = glyphs[todo.pop()]
        near = (x0 - gap, y0 - gap, x1 + gap, y1 + gap)
        beside = (x0 - along, y0, x1 + along, y1)
        for j in [j for j in rest if _overlap(glyphs[j], near) or _overlap(glyphs[j], beside)]:
            rest.discard(j)
            text.add(j)
            todo.append(j)
    return text


def _stroke_width(
    exact: np.ndarray, labels: np.ndarray, glyphs: dict[int, Box], text: set[int], d: Box
) -> float | None:
    """The line's stroke width: twice the largest distance from the background inside the ink pixels *exact* of each
    glyph of the text that touches the detected box *d* (the median over them); None when none does."""
    import cv2

    own = [i for i in text if _overlap(glyphs[i], d)]
    if not own:
        return None
    dist = cv2.distanceTransform(exact, cv2.DIST_L2, 3)
    widths = []
    for i in own:
        x0, y0, x1, y1 = glyphs[i]
        widths.append(2.0 * float(dist[y0:y1, x0:x1][labels[y0:y1, x0:x1] == i].max()))
    return float(np.median(widths))
