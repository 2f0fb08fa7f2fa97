"""Redaction boxes that hug the burned-in text (:func:`cxrlab.deid.text.hug_boxes`, issue 15 item 3).

Synthetic images with text burned at a known place, and candidates shaped like the detector's (a detected box about
1.6 glyph heights tall, grown by the line-end and vertical padding of :meth:`TextDetector.scan`): every stroke must
stay covered, nothing may be redacted outside the grown box, and the area changed far from the strokes must shrink.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from cxrlab.deid.text import Candidate, boxes_mask, default_margin, hug_boxes, redact
from cxrlab.deid.text.hug import HUG_BAND_SHRINK

cv2 = pytest.importorskip("cv2")

SHAPE = (900, 1200)
#: Distance from the nearest stroke beyond which a changed pixel does not hug the text (bench/deid_text.py).
HUG_PX = 16


def _background(seed: int = 0) -> np.ndarray:
    """A smooth uint16 'anatomy' (two gradients and a broad bright blob) with film grain."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0 : SHAPE[0], 0 : SHAPE[1]].astype(np.float32)
    base = 4000 + 6 * xx + 3 * yy + 5000 * np.exp(-(((xx - 700) / 250) ** 2 + ((yy - 400) / 200) ** 2))
    return np.clip(base + rng.normal(0, 60, SHAPE), 0, 65535).astype(np.uint16)


def _text_mask(text: str, size: int, at: tuple[int, int], *, vertical: bool = False) -> np.ndarray:
    """Boolean stroke mask of *text* drawn at *at* (x, y), turned 90 degrees when *vertical*."""
    font = ImageFont.load_default(size=size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    im = Image.new("L", (right - left + 4, bottom - top + 4), 0)
    ImageDraw.Draw(im).text((2 - left, 2 - top), text, fill=255, font=font)
    glyphs = np.asarray(im) > 0
    if vertical:
        glyphs = np.rot90(glyphs, -1)
    mask = np.zeros(SHAPE, dtype=bool)
    x, y = at
    mask[y : y + glyphs.shape[0], x : x + glyphs.shape[1]] = glyphs
    return mask


def _burn(stored: np.ndarray, strokes: np.ndarray, delta: int) -> np.ndarray:
    out = stored.astype(np.int64)
    out[strokes] += delta
    return np.clip(out, 0, 65535).astype(np.uint16)


def _candidate(strokes: np.ndarray, *, vertical: bool = False) -> Candidate:
    """A confirmed candidate shaped like the detector's around *strokes*: detected box 1.6 glyph heights tall,
    grown by LINE_END_PAD (0.75) and LINE_VERT_PAD (0.2) of its height, like TextDetector.scan."""
    ys, xs = np.nonzero(strokes)
    x0, y0, x1, y1 = int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1
    if vertical:
        w = x1 - x0
        det = (x0 - int(0.3 * w), y0 - int(0.3 * w), x1 + int(0.3 * w), y1 + int(0.3 * w))
        s = det[2] - det[0]
        grown = (det[0] - int(0.2 * s), det[1] - int(0.75 * s), det[2] + int(0.2 * s), det[3] + int(0.75 * s))
    else:
        h = y1 - y0
        det = (x0 - int(0.3 * h), y0 - int(0.3 * h), x1 + int(0.3 * h), y1 + int(0.3 * h))
        s = det[3] - det[1]
        grown = (det[0] - int(0.75 * s), det[1] - int(0.2 * s), det[2] + int(0.75 * s), det[3] + int(0.2 * s))
    grown = (max(0, grown[0]), max(0, grown[1]), min(SHAPE[1], grown[2]), min(SHAPE[0], grown[3]))
    return Candidate(grown, 0.9, "ID 48213377", 0.95, status="confirmed", vertical=vertical, detected=det)


def _far(mask: np.ndarray, strokes: np.ndarray) -> float:
    dist = cv2.distanceTransform((~strokes).astype(np.uint8), cv2.DIST_L2, 5)
    return float((mask & (dist > HUG_PX)).mean())


@pytest.mark.parametrize("size", [28, 56])
def test_every_stroke_covered_and_less_far_area(size: int) -> None:
    strokes = _text_mask("ID: 48213377 MARTIN", size, (150, 300))
    stored = _burn(_background(), strokes, 6000)
    cand = _candidate(strokes)
    margin = default_margin(SHAPE)
    boxes = hug_boxes(stored, [cand])
    _, hugged = redact(stored, boxes, margin_px=margin)
    _, whole = redact(stored, [cand.box], margin_px=margin)
    assert hugged[strokes].all()  # every stroke pixel is redacted
    assert not (hugged & ~whole).any()  # never beyond what the whole-box rule redacted
    for x0, y0, x1, y1 in boxes:  # every box inside the grown box
        assert cand.box[0] <= x0 < x1 <= cand.box[2] and cand.box[1] <= y0 < y1 <= cand.box[3]
    far_hug, far_whole = _far(hugged, strokes), _far(whole, strokes)
    assert far_whole > 0.001  # the test means something: the whole box holds empty film far from the text
    assert far_hug <= 0.7 * far_whole, (far_hug, far_whole)
    # Outside the line's band (the detected rows less HUG_BAND_SHRINK line heights, kept across the grown width as
    # line-end insurance) the redaction hugs the strokes: the vertical padding is gone.
    line_h = cand.detected[3] - cand.detected[1]
    shrink = round(HUG_BAND_SHRINK * line_h)
    off_band = np.ones(SHAPE, dtype=bool)
    off_band[cand.detected[1] + shrink : cand.detected[3] - shrink, :] = False
    # (what is left there: glyph rims just outside the band, grown by HUG_GROW)
    assert _far(hugged & off_band, strokes) <= 0.6 * _far(whole & off_band, strokes)
    # Nothing changed farther than two glyph heights from a stroke (the line-end insurance of the band).
    dist = cv2.distanceTransform((~strokes).astype(np.uint8), cv2.DIST_L2, 5)
    assert dist[hugged].max() <= 2 * size + margin


def test_vertical_text_is_hugged_along_its_columns() -> None:
    strokes = _text_mask("PORTABLE", 40, (500, 200), vertical=True)
    stored = _burn(_background(1), strokes, -2500)  # dark text over the bright blob
    cand = _candidate(strokes, vertical=True)
    boxes = hug_boxes(stored, [cand])
    hugged = boxes_mask(SHAPE, boxes, margin_px=default_margin(SHAPE))
    whole = boxes_mask(SHAPE, [cand.box], margin_px=default_margin(SHAPE))
    assert hugged[strokes].all()
    assert _far(hugged, strokes) <= 0.5 * _far(whole, strokes)


def test_neighbour_line_in_the_padding_is_covered_by_its_strokes() -> None:
    """A second line that the detector did not box, half inside the first line's vertical padding: its visible strokes
    inside the grown box are still redacted (the grown box is the limit, as before)."""
    line = _text_mask("ID: 48213377", 40, (200, 400))
    below = _text_mask("20160303", 40, (200, 400 + 40 + 10))
    stored = _burn(_background(2), line | below, 4000)
    cand = _candidate(line)
    hugged = boxes_mask(SHAPE, hug_boxes(stored, [cand]), margin_px=default_margin(SHAPE))
    whole = boxes_mask(SHAPE, [cand.box], margin_px=default_margin(SHAPE))
    assert hugged[line].all()
    inside = below & whole
    assert inside.any() and hugged[inside].all()


def test_an_edge_crossing_the_padding_is_not_a_glyph() -> None:
    """A bright edge crossing the line's context from top to bottom (a bone border, a collimator blade) in its line-end
    padding is not a glyph: only the band covers where it crosses the line."""
    strokes = _text_mask("ACC 7731902", 36, (300, 500))
    stored = _burn(_background(3), strokes, 5000)
    cand = _candidate(strokes)
    across = np.zeros(SHAPE, dtype=bool)
    across[:, cand.box[2] - 8 : cand.box[2] - 4] = True  # 4 px wide, the image's height, inside the line-end padding
    clean = boxes_mask(SHAPE, hug_boxes(stored, [cand]))
    with_across = boxes_mask(SHAPE, hug_boxes(_burn(stored, across, 8000), [cand]))
    assert clean[strokes].all() and with_across[strokes].all()
    line_h = cand.detected[3] - cand.detected[1]
    assert with_across[:, cand.box[2] - 8 : cand.box[2] - 4].any(axis=1).sum() <= line_h


def test_faint_grain_alone_adds_nothing() -> None:
    """Pure film grain in the padding yields no component boxes: only the band."""
    strokes = _text_mask("03/03/2016", 32, (400, 300))
    stored = _burn(_background(4), strokes, 5000)
    boxes = hug_boxes(stored, [_candidate(strokes)])
    assert len(boxes) <= 1 + len(np.unique(cv2.connectedComponents(strokes.astype(np.uint8))[1])), boxes


def test_candidates_not_redacted_and_degenerate_boxes() -> None:
    stored = _background(5)
    assert hug_boxes(stored, [Candidate((10, 10, 50, 30), 0.5, status="doubtful")]) == []
    # no detected box: hugged around the candidate's own box; a grown box equal to the detected one is kept as is
    same = Candidate((10, 10, 50, 30), 0.5, status="marker", detected=(10, 10, 50, 30))
    assert hug_boxes(stored, [same]) == [(10, 10, 50, 30)]
    outside = Candidate((10, 10, 50, 30), 0.5, status="confirmed", detected=(100, 100, 120, 110))
    assert hug_boxes(stored, [outside]) == [(10, 10, 50, 30)]
    with pytest.raises(ValueError):
        hug_boxes(stored[None], [same])
