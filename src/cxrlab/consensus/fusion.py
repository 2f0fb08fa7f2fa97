"""Box fusion across readers: weighted boxes fusion (WBF), vectorised over every image and class at once.

Weighted boxes fusion (Solovyev, Wang & Gabruseva, "Weighted boxes fusion: Ensembling boxes from different
object detection models", Image and Vision Computing 107, 2021) as implemented by the ``ensemble-boxes``
package (``ensemble_boxes.weighted_boxes_fusion``, ``conf_type="avg"``), which is what the VinDr-CXR challenge
community used to merge the three readers' boxes of ``annotations_train.csv``. Each reader is one "model".

Why not call ``ensemble-boxes``: it fuses one image per call in a Python loop (about 0.5 s for the 15,000
training images of VinDr-CXR) and pulls in numba. Here every (image, class) group advances one box per
numpy round, so the cost is a few dozen array operations per round instead of per box. The results are the
same as calling ``weighted_boxes_fusion`` per image (checked in the tests and ``bench/release.py``):

- boxes are normalised by the image size (``width``/``height`` columns when given; otherwise the largest
  ``x_max``/``y_max`` of that image, so nothing is clipped), swapped when reversed, clipped to [0, 1],
  dropped when their area is zero or their score is below ``skip_box_thr``;
- per image and class, boxes are taken by decreasing score (ties: later input first, which is what
  ``ensemble-boxes``' ``argsort()[::-1]`` gives; inputs are ordered by ``rad_id``, then by row); a box joins
  the fused box of best IoU when that IoU is > ``iou_thr``, else starts a new one;
- a fused box is the score-weighted mean of its members, accumulated in float32 exactly as
  ``ensemble-boxes`` does, and its score is the mean member score x min(readers, members) / readers.

So coordinates agree to the last bit in normalised units, and to float64 rounding (< 1e-9 px) after
scaling back to pixels. ``votes`` is the number of distinct readers among a fused box's members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cxrlab.schemas import BOX_COLUMNS

__all__ = ["FUSION_METHODS", "fuse_reader_boxes", "wbf_arrays"]

FUSION_METHODS = ("wbf", "majority")
OUTPUT_COLUMNS = ["image_id", "class_name", *BOX_COLUMNS, "score", "votes"]


def _segment_first_argmax(values: np.ndarray, starts: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per segment (given by *starts*, and *seg* the segment of each value): the max and the position of its
    first occurrence, like ``np.argmax`` on each segment (NaN counts as the largest, as in numpy)."""
    nan = np.isnan(values)
    filled = np.where(nan, np.inf, values)
    seg_max = np.maximum.reduceat(filled, starts)
    is_max = filled == seg_max[seg]
    pos = np.arange(len(values))
    first = np.minimum.reduceat(np.where(is_max, pos, len(values)), starts)
    return values[first], first


def _score_order(g: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Processing order inside each (contiguous) group: ``np.argsort(scores)[::-1]``, as ensemble-boxes does.

    numpy's default argsort is not stable, so ties among different scores are ordered by calling it on that
    group's scores, as ensemble-boxes does. A group whose scores are all equal (every reader box scores 1.0)
    comes back from argsort in input order, reversed here without a call.
    """
    k = len(g)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, k])
    ends = np.repeat(starts + sizes - 1, sizes)
    pos = np.arange(k)
    order = ends - (pos - np.repeat(starts, sizes))
    mixed = np.flatnonzero(np.minimum.reduceat(s, starts) != np.maximum.reduceat(s, starts))
    for i in mixed:
        a, b = starts[i], starts[i] + sizes[i]
        order[a:b] = a + np.argsort(s[a:b])[::-1]
    return order


def wbf_arrays(
    group: np.ndarray,
    model: np.ndarray,
    scores: np.ndarray,
    coords: np.ndarray,
    n_models: np.ndarray,
    *,
    iou_thr: float = 0.55,
    skip_box_thr: float = 0.0,
) -> dict[str, np.ndarray]:
    """Weighted boxes fusion of many independent groups at once (the array core of :func:`fuse_reader_boxes`).

    Parameters
    ----------
    group : (n,) int array
        Group of each box (one group = one image and class). Boxes of a group must be contiguous and in
        input order (models in order, then boxes of a model in order).
    model : (n,) int array
        Model (reader) index of each box inside its image.
    scores : (n,) float array
        Box scores (1.0 for a reader's box).
    coords : (n, 4) float array
        ``x1, y1, x2, y2`` normalised to [0, 1].
    n_models : (n,) int array
        Number of models of the box's image (the score rescaling divides by it).
    iou_thr, skip_box_thr : float
        As in ``ensemble_boxes.weighted_boxes_fusion``.

    Returns
    -------
    dict of arrays
        One entry per fused box: ``group``, ``coords`` (n, 4), ``score``, ``members``, ``votes`` (distinct
        models), and ``box_cluster``: for each input box its fused box index (-1 when skipped).
    """
    n = len(group)
    box_cluster = np.full(n, -1, dtype=np.int64)
    empty = {
        "group": np.zeros(0, np.int64), "coords": np.zeros((0, 4)), "score": np.zeros(0),
        "members": np.zeros(0, np.int64), "votes": np.zeros(0, np.int64), "box_cluster": box_cluster,
    }
    if n == 0:
        return empty
    c = np.array(coords, dtype=np.float64)
    # ensemble_boxes.prefilter_boxes: swap reversed corners, clip to [0, 1], drop zero-area and low-score boxes.
    x1, x2 = np.minimum(c[:, 0], c[:, 2]), np.maximum(c[:, 0], c[:, 2])
    y1, y2 = np.minimum(c[:, 1], c[:, 3]), np.maximum(c[:, 1], c[:, 3])
    c = np.clip(np.stack([x1, y1, x2, y2], axis=1), 0.0, 1.0)
    s = np.asarray(scores, dtype=np.float64)
    keep = (s >= skip_box_thr) & ((c[:, 2] - c[:, 0]) * (c[:, 3] - c[:, 1]) != 0.0)
    idx = np.flatnonzero(keep)
    if len(idx) == 0:
        return empty
    g, m, s, c, nm = group[idx], model[idx], s[idx], c[idx], np.asarray(n_models)[idx]
    order = _score_order(g, s)
    g, m, s, c, nm, idx = g[order], m[order], s[order], c[order], nm[order], idx[order]
    k = len(g)
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    sizes = np.diff(np.r_[starts, k])
    rank = np.arange(k) - np.repeat(starts, sizes)
    # Cluster slots: group i owns slots starts[i] .. starts[i] + sizes[i] - 1 (at most one cluster per box).
    n_clusters = np.zeros(len(starts), dtype=np.int64)
    fused = np.zeros((k, 4))  # what matching compares against (float64 holding float32 values, or raw box)
    acc32 = np.zeros((k, 4), dtype=np.float32)  # sum of score * coords, in float32 like get_weighted_box
    conf = np.zeros(k)  # sum of member scores
    members = np.zeros(k, dtype=np.int64)
    slot_of_box = np.zeros(k, dtype=np.int64)
    gidx = np.repeat(np.arange(len(starts)), sizes)
    by_rank = np.argsort(rank, kind="stable")
    rank_bounds = np.searchsorted(rank[by_rank], np.arange(int(sizes.max()) + 1))
    for r in range(int(sizes.max())):
        active = by_rank[rank_bounds[r]:rank_bounds[r + 1]]  # one box per group that has more than r boxes
        ag = gidx[active]
        nc = n_clusters[ag]
        has = nc > 0
        matched = np.zeros(len(active), dtype=bool)
        best_slot = np.full(len(active), -1, dtype=np.int64)
        if has.any():
            a_has = active[has]
            counts = nc[has]
            seg = np.repeat(np.arange(len(a_has)), counts)
            seg_starts = np.r_[0, np.cumsum(counts)[:-1]]
            local = np.arange(counts.sum()) - np.repeat(seg_starts, counts)
            slots = np.repeat(starts[ag[has]], counts) + local
            b = fused[slots]
            nb = c[a_has][seg]
            # find_matching_box_fast / bb_iou_array, same operations in the same order.
            xa = np.maximum(b[:, 0], nb[:, 0])
            ya = np.maximum(b[:, 1], nb[:, 1])
            xb = np.minimum(b[:, 2], nb[:, 2])
            yb = np.minimum(b[:, 3], nb[:, 3])
            inter = np.maximum(xb - xa, 0) * np.maximum(yb - ya, 0)
            area_a = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            area_b = (nb[:, 2] - nb[:, 0]) * (nb[:, 3] - nb[:, 1])
            with np.errstate(invalid="ignore", divide="ignore"):
                iou = inter / (area_a + area_b - inter)
            best, first = _segment_first_argmax(iou, seg_starts, seg)
            ok = ~(best <= iou_thr)
            matched[has] = ok
            best_slot[has] = np.where(ok, slots[first], -1)
        # New clusters: the box as is (ensemble-boxes stores the raw row for a one-box cluster).
        new = active[~matched]
        new_slots = starts[gidx[new]] + n_clusters[gidx[new]]
        n_clusters[gidx[new]] += 1
        fused[new_slots] = c[new]
        acc32[new_slots] = (s[new, None] * c[new]).astype(np.float32)
        conf[new_slots] = s[new]
        members[new_slots] = 1
        slot_of_box[new] = new_slots
        # Joins: get_weighted_box recomputed over the members, i.e. float32 accumulation in member order.
        join = active[matched]
        js = best_slot[matched]
        acc32[js] = (acc32[js].astype(np.float64) + s[join, None] * c[join]).astype(np.float32)
        conf[js] = conf[js] + s[join]
        members[js] += 1
        fused[js] = (acc32[js].astype(np.float64) / conf[js, None]).astype(np.float32)
        slot_of_box[join] = js
    used = np.flatnonzero(np.arange(k) - np.repeat(starts, sizes) < np.repeat(n_clusters, sizes))
    # Score (conf_type="avg", allows_overflow=False): float32(mean score) * min(models, members) / models;
    # a one-box cluster keeps its float64 score.
    mean = np.where(members[used] > 1, (conf[used] / np.maximum(members[used], 1)).astype(np.float32), conf[used])
    nmod = np.zeros(k)
    nmod[slot_of_box] = nm
    score = mean * np.minimum(nmod[used], members[used]) / nmod[used]
    remap = np.full(k, -1, dtype=np.int64)
    remap[used] = np.arange(len(used))
    box_cluster[idx] = remap[slot_of_box]
    pairs = np.unique(np.stack([slot_of_box, m]), axis=1)
    votes = np.bincount(pairs[0], minlength=k)[used]
    return {
        "group": g[starts][gidx[used]],
        "coords": fused[used],
        "score": score,
        "members": members[used],
        "votes": votes,
        "box_cluster": box_cluster,
    }


def fuse_reader_boxes(
    boxes: pd.DataFrame,
    *,
    iou_thr: float = 0.4,
    skip_box_thr: float = 0.0,
    method: str = "wbf",
    threshold: float = 0.5,
    readers: pd.Series | None = None,
) -> pd.DataFrame:
    """Fuse the readers' boxes of each image and class into consensus boxes.

    Parameters
    ----------
    boxes : DataFrame
        ``image_id, rad_id, class_name, x_min, y_min, x_max, y_max`` in pixels; optional ``score`` (absent
        = 1.0 per reader box) and ``width``/``height`` (image size, for the normalisation). Rows with empty
        coordinates (a reader's "No finding") count that reader for the image but add no box.
    iou_thr : float
        A box joins a fused box when their IoU is > this (0.4: the VinDr-CXR challenge's mAP@0.4 matching).
    skip_box_thr : float
        Boxes with a lower score are ignored.
    method : {"wbf", "majority"}
        ``wbf``: every fused box. ``majority``: only fused boxes drawn by more than *threshold* of the
        image's readers (2 of 3 by default), the box counterpart of the majority vote of labels.
    threshold : float
        Share of readers for ``majority`` (strictly more than).
    readers : Series, optional
        Readers per ``image_id`` (the "models" of WBF); default: distinct ``rad_id`` of the image in *boxes*.

    Returns
    -------
    DataFrame
        ``image_id, class_name, x_min, y_min, x_max, y_max, score, votes``, sorted by image, class and
        decreasing score. ``votes`` = number of distinct readers whose boxes were fused.

    Raises
    ------
    ValueError
        Unknown *method*, a required column missing, or a threshold out of [0, 1].
    """
    if method not in FUSION_METHODS:
        raise ValueError(f"method must be one of {', '.join(FUSION_METHODS)}, got {method!r}")
    if not 0.0 <= iou_thr <= 1.0:
        raise ValueError(f"iou_thr must be in [0, 1], got {iou_thr}")
    missing = [c for c in ("image_id", "rad_id", "class_name", *BOX_COLUMNS) if c not in boxes.columns]
    if missing:
        raise ValueError(f"boxes lack column(s) {', '.join(missing)}")
    if boxes.empty:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in (*BOX_COLUMNS, "score") else "object")
                             for c in OUTPUT_COLUMNS}).astype({"votes": "int64"})
    frame = boxes.reset_index(drop=True)
    image_codes, image_ids = pd.factorize(frame["image_id"], sort=True)
    rad = frame["rad_id"].astype(str).to_numpy()
    # Reader order inside an image: sorted rad_id (the "models" list handed to ensemble-boxes).
    pair_codes, _ = pd.factorize(pd.Series(image_codes).astype(str) + "\x00" + rad, sort=False)
    reader_rank = _reader_rank(image_codes, rad)
    first = np.unique(pair_codes, return_index=True)[1]
    per_image_models = np.bincount(image_codes[first], minlength=len(image_ids))
    if readers is not None:
        given = readers.reindex(image_ids).to_numpy(dtype=np.float64)
        per_image_models = np.where(np.isfinite(given) & (given > 0), given, per_image_models).astype(np.int64)
    coords = frame[BOX_COLUMNS].to_numpy(dtype=np.float64)
    has_box = ~np.isnan(coords).any(axis=1)
    if "width" in frame and "height" in frame:
        w = frame["width"].to_numpy(dtype=np.float64)
        h = frame["height"].to_numpy(dtype=np.float64)
    else:
        w = h = np.full(len(frame), np.nan)
    # Unknown size: the image's largest x_max / y_max (the box extent; nothing is clipped).
    max_x = pd.Series(np.where(has_box, coords[:, 2], np.nan)).groupby(image_codes).transform("max").to_numpy()
    max_y = pd.Series(np.where(has_box, coords[:, 3], np.nan)).groupby(image_codes).transform("max").to_numpy()
    w = np.where(np.isfinite(w) & (w > 0), w, max_x)
    h = np.where(np.isfinite(h) & (h > 0), h, max_y)
    sel = np.flatnonzero(has_box)
    if len(sel) == 0:
        return fuse_reader_boxes(boxes.iloc[0:0], method=method)
    class_codes, class_names = pd.factorize(frame["class_name"].to_numpy()[sel], sort=True)
    ic = image_codes[sel]
    # Input order: image, class, reader rank, row.
    order = np.lexsort((sel, reader_rank[sel], class_codes, ic))
    sel, ic, cc = sel[order], ic[order], class_codes[order]
    grp_key = ic.astype(np.int64) * (len(class_names) + 1) + cc
    group = np.r_[0, np.cumsum(grp_key[1:] != grp_key[:-1])]
    norm = np.stack([coords[sel, 0] / w[sel], coords[sel, 1] / h[sel], coords[sel, 2] / w[sel],
                     coords[sel, 3] / h[sel]], axis=1)
    score = frame["score"].to_numpy(dtype=np.float64)[sel] if "score" in frame else np.ones(len(sel))
    res = wbf_arrays(group, reader_rank[sel], score, norm, per_image_models[ic], iou_thr=iou_thr,
                     skip_box_thr=skip_box_thr)
    first_of_group = np.unique(group, return_index=True)[1]
    g_img, g_cls = ic[first_of_group], cc[first_of_group]
    fg = res["group"]
    img = g_img[fg]
    gw, gh = w[sel][first_of_group][fg], h[sel][first_of_group][fg]
    fc = res["coords"]
    out = pd.DataFrame(
        {
            "image_id": np.asarray(image_ids)[img],
            "class_name": np.asarray(class_names)[g_cls[fg]],
            "x_min": fc[:, 0] * gw,
            "y_min": fc[:, 1] * gh,
            "x_max": fc[:, 2] * gw,
            "y_max": fc[:, 3] * gh,
            "score": res["score"],
            "votes": res["votes"].astype(np.int64),
        }
    )
    if method == "majority":
        need = threshold * per_image_models[img]
        out = out.loc[out["votes"].to_numpy() > need]
    return out.sort_values(["image_id", "class_name", "score"], ascending=[True, True, False],
                           kind="stable").reset_index(drop=True)


def _reader_rank(image_codes: np.ndarray, rad: np.ndarray) -> np.ndarray:
    """Index of each row's reader among the image's readers sorted by ``rad_id``."""
    frame = pd.DataFrame({"img": image_codes, "rad": rad})
    return frame.groupby("img")["rad"].rank(method="dense").to_numpy(dtype=np.int64) - 1
