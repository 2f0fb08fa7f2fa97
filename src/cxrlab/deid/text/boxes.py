"""Axis-aligned boxes ``(x0, y0, x1, y1)`` (max exclusive): masks, unions and overlaps."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

__all__ = ["Box", "boxes_mask"]

Box = tuple[int, int, int, int]
T = TypeVar("T")


def boxes_mask(shape: tuple[int, int], boxes: Iterable[Sequence[int]], *, margin_px: int = 0) -> np.ndarray:
    """Return a boolean mask of the union of *boxes* grown by *margin_px*, clipped to *shape*.

    Parameters
    ----------
    shape : (rows, columns)
        Mask size.
    boxes : iterable of (x0, y0, x1, y1)
        Boxes, max exclusive.
    margin_px : int, optional
        Growth on every side.

    Returns
    -------
    numpy.ndarray
        bool of *shape*.
    """
    rows, cols = int(shape[0]), int(shape[1])
    mask = np.zeros((rows, cols), dtype=bool)
    m = max(0, int(margin_px))
    for b in boxes:
        x0, y0, x1, y1 = (int(v) for v in b[:4])
        x0, y0 = max(0, x0 - m), max(0, y0 - m)
        x1, y1 = min(cols, x1 + m), min(rows, y1 + m)
        if x1 > x0 and y1 > y0:
            mask[y0:y1, x0:x1] = True
    return mask


def _merge_until_stable(items: Sequence[T], merge: Callable[[T, T], T | None]) -> list[T]:
    """Replace any pair that *merge* joins by the joined item, until no pair joins (few items: quadratic is fine)."""
    out = list(items)
    changed = True
    while changed:
        changed = False
        for i in range(len(out)):
            for j in range(i + 1, len(out)):
                joined = merge(out[i], out[j])
                if joined is not None:
                    out[i] = joined
                    del out[j]
                    changed = True
                    break
            if changed:
                break
    return out


def _union_boxes(boxes: Sequence[Box]) -> list[Box]:
    """Merge overlapping boxes until none overlap."""

    def join(a: Box, b: Box) -> Box | None:
        if a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]:
            return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
        return None

    return _merge_until_stable(boxes, join)


def _inside_frac(box: Box, others: Sequence[Box]) -> float:
    """Largest fraction of *box*'s area that lies inside one of *others*."""
    x0, y0, x1, y1 = box
    area = max(1, (x1 - x0) * (y1 - y0))
    best = 0
    for o in others:
        w = min(x1, o[2]) - max(x0, o[0])
        h = min(y1, o[3]) - max(y0, o[1])
        if w > 0 and h > 0:
            best = max(best, w * h)
    return best / area
