"""Burned-in text: identifying lines drawn into the pixels, with their exact boxes for the ground truth."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, features

from cxrlab.dicom.phantom.people import _pick

_F32 = np.float32

_DEFAULT_FONT = "<pil-default>"


@functools.lru_cache(maxsize=1)
def _font_keys() -> tuple[str, ...]:
    """Fonts usable for burned-in text: PIL's built-in font plus a few system TTFs, sorted."""
    keys = [_DEFAULT_FONT]
    root = Path("/usr/share/fonts")
    if root.is_dir() and features.check_module("freetype2"):
        ttfs = sorted(str(p) for p in root.rglob("*.ttf") if "Math" not in p.name and "Symbol" not in p.name)
        keys.extend(ttfs[:6])
    return tuple(keys)


@functools.lru_cache(maxsize=256)
def _font(key: str, size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Load font *key* at pixel *size* (falls back to PIL's built-in font)."""
    if key != _DEFAULT_FONT:
        try:
            return ImageFont.truetype(key, size)
        except OSError:
            pass
    if features.check_module("freetype2"):
        return ImageFont.load_default(size=size)
    return ImageFont.load_default()


def _render_line(text: str, key: str, size: int) -> np.ndarray:
    """Render one text line to a tightly cropped float32 alpha mask in [0, 1]."""
    font = _font(key, size)
    left, top, right, bottom = (int(v) for v in font.getbbox(text))
    w, h = max(1, right - left + 4), max(1, bottom - top + 4)
    im = Image.new("L", (w, h), 0)
    ImageDraw.Draw(im).text((2 - left, 2 - top), text, fill=255, font=font)
    if not isinstance(font, ImageFont.FreeTypeFont):  # bitmap fallback: scale up to the requested size
        factor = max(1, round(size / 11))
        im = im.resize((w * factor, h * factor), Image.Resampling.NEAREST)
    a = np.asarray(im, dtype=_F32) / 255.0
    ys, xs = np.nonzero(a > 0)
    if ys.size == 0:
        return np.zeros((0, 0), dtype=_F32)
    return a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


def _overlaps(box: tuple[int, int, int, int], boxes: list[tuple[int, int, int, int]], pad: int) -> bool:
    """Return True when *box* (padded) intersects any of *boxes*."""
    x0, y0, x1, y1 = box
    return any(x0 - pad < b[2] and b[0] < x1 + pad and y0 - pad < b[3] and b[1] < y1 + pad for b in boxes)


def _burn_text(
    rng: np.random.Generator, pixels: np.ndarray, bits: int, mono1: bool, candidates: list[str]
) -> list[tuple[int, int, int, int]]:
    """Burn 1-3 groups of text lines into *pixels* in place; return the tight per-line boxes."""
    rows, cols = pixels.shape
    maxv = float(2**bits - 1)
    keys = _font_keys()
    boxes: list[tuple[int, int, int, int]] = []
    places = ["tl", "tr", "bl", "br", "lung", "top"]
    n_groups = int(rng.integers(1, 4))
    order = rng.permutation(len(places))[:n_groups]
    for gi in order:
        place = places[int(gi)]
        n_lines = int(rng.integers(1, 4))
        lines = [
            candidates[int(i)]
            for i in rng.choice(len(candidates), size=min(n_lines, len(candidates)), replace=False)
        ]
        key = _pick(rng, keys)
        size = max(8, int(round(float(rng.uniform(0.012, 0.045)) * rows)))
        contrast_mode = rng.random()
        level = float(rng.uniform(0.75, 1.0))
        bump = float(rng.uniform(0.1, 0.25))
        margin = int(round(float(rng.uniform(0.01, 0.04)) * min(rows, cols)))
        masks: list[np.ndarray] = []
        for _attempt in range(4):
            masks = [_render_line(t, key, size) for t in lines]
            masks = [m for m in masks if m.size]
            width = max((m.shape[1] for m in masks), default=0)
            if width <= cols - 2 * margin - 2:
                break
            size = max(6, int(size * 0.7))
        else:
            continue
        if not masks:
            continue
        gap = max(2, size // 3)
        group_h = sum(m.shape[0] for m in masks) + gap * (len(masks) - 1)
        group_w = max(m.shape[1] for m in masks)
        if group_h > rows - 2 * margin:
            continue
        if place in ("tl", "tr", "top"):
            y = margin
        elif place in ("bl", "br"):
            y = rows - margin - group_h
        else:  # over the right lung field (image left, upper zone)
            y = int(rows * 0.3)
        if place == "lung":
            gx = max(margin, int(cols * 0.5 - 0.3 * min(rows, cols)))
            gx = min(gx, cols - margin - group_w)
        elif place == "top":
            gx = (cols - group_w) // 2
        else:
            gx = margin
        y = int(np.clip(y, 0, max(0, rows - group_h)))
        placed: list[tuple[tuple[int, int, int, int], np.ndarray]] = []
        for m in masks:
            mh, mw = m.shape
            x = cols - margin - mw if place in ("tr", "br") else gx
            x = int(np.clip(x, 0, cols - mw))
            placed.append(((x, y, x + mw, y + mh), m))
            y += mh + gap
        if any(_overlaps(b, boxes, gap) for b, _ in placed):
            continue
        for (x0, y0, x1, y1), m in placed:
            region = pixels[y0:y1, x0:x1].astype(_F32)
            bg = float(region.mean()) / maxv
            bg_disp = 1.0 - bg if mono1 else bg
            # Low contrast (just above the local background) or bright text.
            t_disp = min(1.0, bg_disp + bump) if contrast_mode < 0.3 else max(level, min(1.0, bg_disp + 0.1))
            tv = (1.0 - t_disp) * maxv if mono1 else t_disp * maxv
            new = region * (1.0 - m) + _F32(tv) * m
            pixels[y0:y1, x0:x1] = np.clip(np.rint(new), 0, maxv).astype(np.uint16)
            boxes.append((x0, y0, x1, y1))
    return boxes
