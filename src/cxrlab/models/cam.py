"""Class activation maps turned into boxes (``cxrlab cam``): weakly supervised localization as ChestX-ray8 scores it.

ChestX-ray8 (Wang et al., CVPR 2017), section 3.2, "Weakly-Supervised Pathology Localization": a classifier whose
last feature map is pooled globally has, for each disease, a heatmap, the prediction layer's weights applied to
the feature map at every cell (Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016);
"Bounding Box Generation": "The intensities in heatmaps are first normalized to [0, 255] and then thresholded by
{60, 180} individually. Finally, B-Boxes are generated to cover the isolated regions in the resulting binary maps."
Table 4 scores the boxes by IoU and IoBB (``cxrlab evaluate localization``, :mod:`cxrlab.evaluate.localization`).

As computed here, per image and label (:func:`cam_boxes`):

1. the map ``(h, w)`` is the run's ONNX output ``cam`` (:class:`cxrlab.models.networks.ExportWrapper`: no torch at
   inference), upsampled bilinearly to the **original** image's rows and columns (:func:`upsample`; the network saw
   the image resized to a square, aspect not kept, so the map covers the whole image);
2. negative values are set to 0 (ReLU) and the map is divided by its maximum, so it runs from 0 to 1 (a map with
   no positive cell gives no box): the normalisation to [0, 255] of the paper, with 0 as the bottom;
3. cells of at least *threshold* of the maximum are kept (the paper's 60 and 180 of 255 are 0.235 and 0.706) and
   split into 8-connected regions (``scipy.ndimage.label``);
4. each region's bounding box, in the original image's pixels (pixel i spans [i, i + 1]), is a box; boxes are
   ranked by the region's peak (ties: top, then left edge) and the *max_boxes* best are kept.

The output is NIH's ``BBox_List_2017.csv`` layout, what ``cxrlab evaluate localization --pred`` reads by position:
``Image Index,Finding Label,Bbox [x,y,w,h]`` plus a ``score`` column (the scorer ignores it): the label's
predicted probability times the region's peak on the normalised map. Labels are named as the run names them,
except that a run trained on NIH ChestX-ray14 writes the box list's spelling ("Infiltrate" for "Infiltration",
:data:`cxrlab.export.nih.BBOX_SPELLING`). The image id is :func:`~cxrlab.models.predict.find_images`'s (a PNG's
file name, NIH's ``Image Index``; a DICOM file's stem). Rows are sorted by image, label (the run's order) and rank;
scores have :data:`~cxrlab.models.predict.DECIMALS` places: two runs write byte-identical files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.datasets.images import load_image
from cxrlab.errors import CxrlabError
from cxrlab.export.nih import BBOX_SPELLING
from cxrlab.models.predict import DECIMALS, ClassifierModel, _refuse, find_images
from cxrlab.models.train import CAM_OUTPUT
from cxrlab.runtime.files import atomic_write_text

__all__ = ["CAM_HEADER", "DEFAULT_MAX_BOXES", "DEFAULT_THRESHOLD", "CamModel", "cam_boxes", "heatmap_boxes",
           "run_cam", "upsample"]

#: NIH's box-list header with a ``score`` column in place of its three trailing empty fields.
CAM_HEADER = ("Image Index", "Finding Label", "Bbox [x", "y", "w", "h]", "score")
#: Default fraction of the map's maximum kept: ChestX-ray8's upper threshold, 180 of 255 (on the phantoms it
#: localizes the enlarged heart far better than the lower one, 60 of 255: docs/guides/baselines.md, "Localization").
DEFAULT_THRESHOLD = 0.7
#: Default largest number of boxes per image and label.
DEFAULT_MAX_BOXES = 1
#: The label that is never localized (it names the absence of findings).
_NO_FINDING = "no finding"


def _ndimage():  # noqa: ANN202 - the scipy.ndimage module
    try:
        from scipy import ndimage
    except ImportError as exc:
        raise ImportError(f"cxrlab cam needs scipy (the ML extra): pip install 'cxrlab[ml]' ({exc})") from exc
    return ndimage


def _interpolation(n_out: int, n_in: int) -> np.ndarray:
    """``(n_out, n_in)`` weights of linear interpolation with half-pixel centres (torch's ``align_corners=False``,
    edges clamped)."""
    pos = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0, n_in - 1)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = pos - lo
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(w, (rows, lo), 1.0 - frac)
    np.add.at(w, (rows, hi), frac)
    return w


def upsample(cam: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Bilinear upsampling of a map ``(h, w)`` to *shape* ``(rows, columns)``: the map covers the whole image, each
    cell's value sits at its centre (half-pixel centres, as ``torch.nn.functional.interpolate`` with
    ``align_corners=False``)."""
    cam = np.asarray(cam, dtype=np.float64)
    return _interpolation(shape[0], cam.shape[0]) @ cam @ _interpolation(shape[1], cam.shape[1]).T


def heatmap_boxes(heat: np.ndarray, threshold: float, max_boxes: int) -> list[tuple[float, int, int, int, int]]:
    """Boxes of the 8-connected regions of ``heat >= threshold`` (ChestX-ray8 section 3.2, "Bounding Box
    Generation"): ``(peak, x_min, y_min, x_max, y_max)`` in pixels (pixel i spans [i, i + 1]), by descending peak
    (ties: top, then left edge), at most *max_boxes*."""
    ndimage = _ndimage()
    labels, n = ndimage.label(heat >= threshold, structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    peaks = ndimage.maximum(heat, labels, index=np.arange(1, n + 1))
    found = [(float(pk), sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
             for pk, sl in zip(peaks, ndimage.find_objects(labels), strict=True)]
    found.sort(key=lambda b: (-b[0], b[2], b[1]))
    return found[:max_boxes]


def cam_boxes(cam: np.ndarray, shape: tuple[int, int], *, threshold: float = DEFAULT_THRESHOLD,
              max_boxes: int = DEFAULT_MAX_BOXES) -> list[tuple[float, int, int, int, int]]:
    """Boxes of one label's class activation map ``(h, w)`` on an image of *shape* ``(rows, columns)``: upsampled
    (:func:`upsample`), ReLU, divided by its maximum, thresholded, regions' boxes (:func:`heatmap_boxes`). A map
    with no positive value gives no box.

    Raises
    ------
    ValueError
        *threshold* outside (0, 1], *max_boxes* < 1, or a map that is not two-dimensional.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    if max_boxes < 1:
        raise ValueError(f"max_boxes must be >= 1, got {max_boxes}")
    if np.ndim(cam) != 2:
        raise ValueError(f"a class activation map is (h, w), got shape {np.shape(cam)}")
    heat = np.maximum(upsample(cam, shape), 0.0)
    top = float(heat.max())
    if not top > 0.0:
        return []
    return heatmap_boxes(heat / top, threshold, max_boxes)


class CamModel(ClassifierModel):
    """A classifier run whose ONNX export has the class activation output (``cam``), checked.

    Raises
    ------
    CxrlabError
        As :class:`~cxrlab.models.predict.ClassifierModel`, and a model exported without the ``cam`` output (a run
        trained before ``cxrlab cam``): the message says how to re-export it from its ``best.pt``.
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1) -> None:
        super().__init__(path, threads=threads)
        if CAM_OUTPUT not in self.extra_outputs:
            raise _refuse(self.path, f"has no class activation output ({CAM_OUTPUT!r}): it was exported before "
                          "cxrlab cam; re-export the run from its best.pt with `cxrlab train export RUN` (needs torch)")
        spelling = BBOX_SPELLING.get(self._schema(), {})
        #: The name written for each class (NIH's box-list spelling for an NIH run).
        self.box_names = [spelling.get(c, c) for c in self.classes]

    def _schema(self) -> str | None:
        """The sidecar's ``schema``; for runs exported without it, ``nih14`` when the classes are NIH's 14."""
        from cxrlab.schemas import SCHEMAS

        schema = self.meta.get("schema")
        if schema is None and list(self.classes) == SCHEMAS["nih14"].names:
            return "nih14"
        return schema if isinstance(schema, str) else None

    def maps(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(classes,)`` and class activation maps ``(classes, h, w)`` of one rendered image."""
        probs, cams = self._run_all(image, [self._output, CAM_OUTPUT])
        return probs.reshape(-1), cams

    def select(self, labels: Sequence[str] | None) -> list[int]:
        """Indices of the classes to localize: *labels* (the run's names or the box list's, any case), or every
        class except "No finding".

        Raises
        ------
        CxrlabError
            A label the run does not have (listing those it has).
        """
        if not labels:
            return [i for i, c in enumerate(self.classes) if c.casefold() != _NO_FINDING]
        lookup = {n.casefold(): i for names in (self.classes, self.box_names) for i, n in enumerate(names)}
        unknown = [lb for lb in labels if lb.strip().casefold() not in lookup]
        if unknown:
            raise CxrlabError(f"{self.path}: the run has no label {', '.join(map(repr, unknown))} (it has "
                              f"{', '.join(self.classes)})")
        return sorted({lookup[lb.strip().casefold()] for lb in labels})


def run_cam(
    run: str | os.PathLike[str],
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    labels: Sequence[str] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    max_boxes: int = DEFAULT_MAX_BOXES,
    min_prob: float = 0.0,
    threads: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write the boxes of the class activation maps of every image below *images* (*out*, box-list layout).

    Parameters
    ----------
    run : path
        A classifier run folder (``cxrlab train classifier``) or its ``model.onnx``.
    images : path
        An image file or a folder of them (:func:`~cxrlab.models.predict.find_images`).
    out : path
        The CSV to write (atomically).
    labels : sequence of str, optional
        Labels to localize (default: every label but "No finding").
    threshold : float
        Fraction of the map's maximum kept, in (0, 1].
    max_boxes : int
        Most boxes per image and label.
    min_prob : float
        Localize a label on an image only when the classifier gives it at least this probability (0: every
        selected label on every image, the benchmark's setting, where the disease is known and its place asked).
    threads : int
        onnxruntime threads.
    on_progress : callable, optional
        ``on_progress(done, total)`` per image.

    Returns
    -------
    dict
        ``{"images": n, "boxes": n, "labels": [...], "model": sha256}``.

    Raises
    ------
    CxrlabError
        A missing or refused model (one without the ``cam`` output included), an unknown label, a bad option, no
        images, an image that cannot be read (naming the file).
    ImportError
        onnxruntime or scipy is missing.
    """
    if not 0.0 < threshold <= 1.0 or max_boxes < 1 or not 0.0 <= min_prob <= 1.0:
        raise CxrlabError("threshold must be in (0, 1], max boxes >= 1 and the minimum probability in [0, 1]")
    _ndimage()
    model = CamModel(run, threads=threads)
    chosen = model.select(labels)
    items = find_images(images)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CAM_HEADER)
    n_boxes = 0
    for done, (image_id, path) in enumerate(items, start=1):
        image, shape = load_image(path, size=(model.size, model.size), window=model.window)
        probs, cams = model.maps(image)
        for k in chosen:
            if probs[k] < min_prob:
                continue
            for peak, x0, y0, x1, y1 in cam_boxes(cams[k], shape, threshold=threshold, max_boxes=max_boxes):
                w.writerow([image_id, model.box_names[k], x0, y0, x1 - x0, y1 - y0,
                            f"{probs[k] * peak:.{DECIMALS}f}"])
                n_boxes += 1
        if on_progress:
            on_progress(done, len(items))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buf.getvalue())
    return {"images": len(items), "boxes": n_boxes, "labels": [model.box_names[k] for k in chosen],
            "model": model.sha256}
