"""Box helpers shared by the metrics: grouping, all (prediction, truth) pairs of a group, IoU and IoBB.

Everything works on flat arrays: boxes of many images and classes at once, never one box at a time.
"""

from __future__ import annotations

import numpy as np

__all__ = ["iobb", "iou_xywh", "iou_xyxy", "pairs", "segments"]


def segments(sorted_keys: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Start offset and length of each key ``0..n-1`` in a sorted array of keys."""
    keys = np.arange(n)
    start = np.searchsorted(sorted_keys, keys, side="left")
    return start, np.searchsorted(sorted_keys, keys, side="right") - start


def pairs(group: np.ndarray, start: np.ndarray, count: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair of an item (of key ``group[i]``) with the sorted boxes of the same key.

    Parameters
    ----------
    group : ndarray of int
        Key of each item (a prediction).
    start, count : ndarray of int
        :func:`segments` of the sorted boxes (the ground truth).

    Returns
    -------
    item, box, offsets : ndarray of int
        Pair *p* joins item ``item[p]`` and box position ``box[p]``; the pairs of item *i* are
        ``offsets[i]:offsets[i + 1]``.
    """
    n = count[group]
    offsets = np.concatenate(([0], np.cumsum(n)))
    item = np.repeat(np.arange(len(group)), n)
    box = start[group][item] + (np.arange(offsets[-1]) - offsets[:-1][item])
    return item, box, offsets


def iou_xywh(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """IoU of ``[x, y, w, h]`` boxes row by row, with the operations and order of pycocotools' ``bbIou``
    (``maskApi.c``), so results agree to the last bit; 0 when the boxes do not overlap."""
    w = np.minimum(d[:, 2] + d[:, 0], g[:, 2] + g[:, 0]) - np.maximum(d[:, 0], g[:, 0])
    h = np.minimum(d[:, 3] + d[:, 1], g[:, 3] + g[:, 1]) - np.maximum(d[:, 1], g[:, 1])
    inter = w * h
    union = d[:, 2] * d[:, 3] + g[:, 2] * g[:, 3] - inter
    out = np.zeros(len(d))
    np.divide(inter, union, out=out, where=(w > 0) & (h > 0))
    return out


def _intersection(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    iw = np.minimum(d[:, 2], g[:, 2]) - np.maximum(d[:, 0], g[:, 0])
    ih = np.minimum(d[:, 3], g[:, 3]) - np.maximum(d[:, 1], g[:, 1])
    return np.where((iw > 0) & (ih > 0), iw * ih, 0.0)


def _area(b: np.ndarray) -> np.ndarray:
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def iou_xyxy(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """IoU of ``[x_min, y_min, x_max, y_max]`` boxes row by row (continuous coordinates, no "+1" pixel)."""
    inter = _intersection(d, g)
    out = np.zeros(len(d))
    np.divide(inter, _area(d) + _area(g) - inter, out=out, where=inter > 0)
    return out


def iobb(d: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Intersection over the area of the detected box *d* (ChestX-ray8, Sec. 5.2: "IoBB"), row by row."""
    inter = _intersection(d, g)
    out = np.zeros(len(d))
    np.divide(inter, _area(d), out=out, where=inter > 0)
    return out
