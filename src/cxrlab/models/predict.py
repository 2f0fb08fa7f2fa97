"""Inference with a run's ONNX export on onnxruntime (no torch): ``probs.csv`` for ``cxrlab evaluate
classification``.

The output is the layout :func:`cxrlab.evaluate.score_classification` reads: ``image_id`` and one probability
column per class, named as the release's ``image_labels_*.csv`` names its labels, one row per image, rows sorted by
image id. An image's id is what the release tables call it: the file stem for DICOM files (VinDr-CXR's
``<image_id>.dicom``), the file name for PNG/JPEG files (NIH ChestX-ray14's ``Image Index``, ``00000001_000.png``).

Deterministic: each image is rendered by :func:`cxrlab.datasets.load_image` with the sidecar's size and window and
run alone (its output never depends on a batch), on a deterministic session
(:func:`cxrlab.runtime.onnx.deterministic_session`), and probabilities are written with :data:`DECIMALS` places:
two runs write byte-identical files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.datasets.images import RASTER_SUFFIXES, load_image
from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import atomic_write_text
from cxrlab.runtime.onnx import deterministic_session, load_checked

__all__ = ["DECIMALS", "ClassifierModel", "DetectorModel", "decode_detections", "find_images", "nms",
           "predict_classifier", "predict_detector", "run_format"]

#: Decimal places of the probabilities written.
DECIMALS = 6
#: What to install for inference.
PREDICT_HINT = "prediction needs onnxruntime (the ML extra): pip install 'cxrlab[ml]'"
_DICOM_SUFFIXES = (".dicom", ".dcm")


def _refuse(path: Path, why: str) -> CxrlabError:
    return CxrlabError(f"{path}: {why}")


def _model_path(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "model.onnx"
    if not path.exists():
        raise _refuse(path, "no model here (a run folder of cxrlab train classifier|detector holds model.onnx)")
    return path


def run_format(path: str | os.PathLike[str]) -> str | None:
    """The sidecar ``format`` of a run folder or ``.onnx`` file (None when unreadable: the model's loader then
    says why)."""
    import json

    from cxrlab.runtime.onnx import sidecar_path

    try:
        meta = json.loads(sidecar_path(_model_path(path)).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return meta.get("format") if isinstance(meta, dict) else None


class ClassifierModel:
    """A run's ``model.onnx`` + ``model.json``, checked (format, SHA-256, input and output shapes).

    Parameters
    ----------
    path : path
        A run folder (its ``model.onnx``) or an ``.onnx`` file.
    threads : int
        onnxruntime intra-op threads.
    """

    #: What the sidecar's ``format`` must be, and what the model is called in messages.
    what = "a classifier model"

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1) -> None:
        path = _model_path(path)
        self.path = path
        data, self.meta, self.sha256 = load_checked(path, fmt=self._format(), what=self.what, refuse=_refuse)
        self.classes: list[str] = list(self.meta.get("classes") or [])
        inp = self.meta.get("input") or {}
        self.size, self.window = int(inp.get("size") or 0), str(inp.get("window") or "file")
        self._session = deterministic_session(data, threads=threads, path=path, refuse=_refuse, hint=PREDICT_HINT)
        i, o = self._session.get_inputs(), self._session.get_outputs()
        if (len(i) != 1 or list(i[0].shape[1:]) != [1, self.size, self.size] or not o or not self._fits(o[0])
                or not all(self._fits_extra(x) for x in o[1:])):
            raise _refuse(path, "refused: its input or output does not match its sidecar")
        self._input, self._output = i[0].name, o[0].name
        #: Names of the outputs after the first (a classifier's class activation maps, ``cam``).
        self.extra_outputs = [x.name for x in o[1:]]

    @staticmethod
    def _format() -> str:
        from cxrlab.models.train import CLASSIFIER_FORMAT

        return CLASSIFIER_FORMAT

    def _fits(self, output: Any) -> bool:
        return output.shape[-1] == len(self.classes)

    def _fits_extra(self, output: Any) -> bool:
        """A further output is the class activation maps ``(n, classes, h, w)`` (classifiers exported since
        ``cxrlab cam``)."""
        from cxrlab.models.train import CAM_OUTPUT

        return output.name == CAM_OUTPUT and len(output.shape) == 4 and output.shape[1] == len(self.classes)

    def _run_all(self, image: np.ndarray, names: list[str]) -> list[np.ndarray]:
        """The outputs *names* for one rendered image ``(size, size)`` (batch axis dropped), checked finite."""
        x = np.ascontiguousarray(image, dtype=np.float32)[None, None]
        found = [np.asarray(v, dtype=np.float64)[0] for v in self._session.run(names, {self._input: x})]
        if not all(np.isfinite(v).all() for v in found):
            raise CxrlabError(f"{self.path}: the model returned a non-finite value")
        return found

    def _run(self, image: np.ndarray) -> np.ndarray:
        return self._run_all(image, [self._output])[0]

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities ``(classes,)`` for one rendered image ``(size, size)``."""
        return self._run(image).reshape(-1)


def find_images(images: str | os.PathLike[str]) -> list[tuple[str, Path]]:
    """``(image_id, file)`` of the image files below *images* (or the one file), sorted by id.

    Raises
    ------
    CxrlabError
        Nothing there, no image file, or two files with one id.
    """
    root = Path(images)
    if root.is_file():
        files = [root]
    elif root.is_dir():
        files = sorted(p for p in root.rglob("*") if p.is_file()
                       and p.suffix.lower() in (*_DICOM_SUFFIXES, *RASTER_SUFFIXES))
    else:
        raise CxrlabError(f"{root}: no such file or folder")
    found: dict[str, Path] = {}
    for p in files:
        key = p.name if p.suffix.lower() in RASTER_SUFFIXES else p.stem
        if key in found:
            raise CxrlabError(f"{p}: image id {key} also names {found[key]}")
        found[key] = p
    if not found:
        raise CxrlabError(f"{root}: no image file (.dicom, .dcm, .png, .jpg)")
    return sorted(found.items())


def predict_classifier(
    run: str | os.PathLike[str],
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    threads: int = 1,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write ``probs.csv`` (*out*) for every image below *images* with the run's model.

    Returns
    -------
    dict
        ``{"images": n, "classes": [...], "model": sha256}``.

    Raises
    ------
    CxrlabError
        A missing or refused model, no images, an image that cannot be read (naming the file).
    """
    model = ClassifierModel(run, threads=threads)
    items = find_images(images)

    def scores(path: Path) -> Iterable[float]:
        image, _ = load_image(path, size=(model.size, model.size), window=model.window)
        return model.predict(image)

    _write_probs(out, model.classes, items, scores, on_progress)
    return {"images": len(items), "classes": model.classes, "model": model.sha256}


def _write_probs(out: str | os.PathLike[str], labels: list[str], items: list[tuple[str, Path]],
                 scores: Callable[[Path], Iterable[float]], on_progress: Callable[[int, int], None] | None) -> None:
    """Write ``probs.csv``: ``image_id`` and one column per label, :data:`DECIMALS` places, in *items*' order,
    through a temporary file."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_id", *labels])
    for done, (image_id, path) in enumerate(items, start=1):
        w.writerow([image_id, *(f"{v:.{DECIMALS}f}" for v in scores(path))])
        if on_progress:
            on_progress(done, len(items))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buf.getvalue())


#: Decoding of a detector's map: at most this many boxes per image, each of at least this heatmap score.
MAX_DETECTIONS, MIN_SCORE = 100, 0.01
#: IoU above which a box of a class suppresses a lower-scored one of the same class.
NMS_IOU = 0.5


class DetectorModel(ClassifierModel):
    """A detector run's ``model.onnx`` + ``model.json`` (``cxrlab train detector``), checked like a classifier's.

    :meth:`predict` returns the decoded boxes of one image (:func:`decode_detections`).
    """

    what = "a detector model"

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1) -> None:
        super().__init__(path, threads=threads)
        self.stride = int(self.meta.get("stride") or 8)
        ids = self.meta.get("class_ids") or {}
        if set(ids) != set(self.classes):
            raise _refuse(self.path, "refused: its sidecar's class ids do not match its classes")
        self.class_ids = [int(ids[c]) for c in self.classes]
        nf = self.meta.get("no_finding_id")
        self.no_finding_id = None if nf is None else int(nf)

    @staticmethod
    def _format() -> str:
        from cxrlab.models.train import DETECTOR_FORMAT

        return DETECTOR_FORMAT

    def _fits(self, output: Any) -> bool:
        return output.shape[1] == len(self.classes) + 4

    def predict(self, image: np.ndarray) -> list[tuple[int, float, float, float, float, float]]:  # type: ignore[override]
        """Boxes ``(class index, score, x0, y0, x1, y1)`` in the input frame of one rendered image."""
        return decode_detections(self._run(image), len(self.classes), self.stride, self.size)

    def image_scores(self, path: str | os.PathLike[str]) -> np.ndarray:
        """Image-level scores of the image file *path*: each class's highest heatmap score, the probability that
        the image holds the finding somewhere (max pooling over the cells, the multiple-instance reading of a
        box-supervised map; Li et al., "Thoracic disease identification and localization with limited
        supervision", CVPR 2018)."""
        image, _ = load_image(path, size=(self.size, self.size), window=self.window)
        heat = self._run(image)[: len(self.classes)]
        return heat.reshape(len(self.classes), -1).max(axis=1)

    def detect(self, path: str | os.PathLike[str]) -> list[tuple[int, float, float, float, float, float]]:
        """Boxes ``(class index, score, x0, y0, x1, y1)`` of the image file *path* in its original pixels: the
        file rendered as in training (:func:`cxrlab.datasets.load_image` with the sidecar's size and window),
        :meth:`predict`, and the boxes scaled back by columns / size and rows / size.

        Raises
        ------
        FileError
            The file cannot be read or rendered (the message names the file and the reason).
        """
        image, (rows, cols) = load_image(path, size=(self.size, self.size), window=self.window)
        sx, sy = cols / self.size, rows / self.size
        return [(c, score, x0 * sx, y0 * sy, x1 * sx, y1 * sy) for c, score, x0, y0, x1, y1 in self.predict(image)]


def _peaks(heat: np.ndarray) -> np.ndarray:
    """Cells that are the maximum of their 3 x 3 neighbourhood (CenterNet's max-pool NMS), per class."""
    c, h, w = heat.shape
    pad = np.full((c, h + 2, w + 2), -np.inf)
    pad[:, 1:-1, 1:-1] = heat
    best = np.max([pad[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
    return heat >= best


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float = NMS_IOU) -> np.ndarray:
    """Indices kept by greedy non-maximum suppression (by descending score, ties in index order)."""
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        ix0, iy0 = np.maximum(boxes[i, 0], boxes[rest, 0]), np.maximum(boxes[i, 1], boxes[rest, 1])
        ix1, iy1 = np.minimum(boxes[i, 2], boxes[rest, 2]), np.minimum(boxes[i, 3], boxes[rest, 3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        union = area[i] + area[rest] - inter
        order = rest[inter <= iou * np.maximum(union, 1e-12)]
    return np.asarray(keep, dtype=np.int64)


def decode_detections(out: np.ndarray, n_classes: int, stride: int, size: int, *,
                      max_detections: int = MAX_DETECTIONS, min_score: float = MIN_SCORE
                      ) -> list[tuple[int, float, float, float, float, float]]:
    """Boxes of a detector's map ``(classes + 4, h, w)``: heatmap peaks of score >= *min_score*, each a box of
    the predicted size around the cell plus its offset (clipped to the *size* x *size* image), per-class NMS
    (:data:`NMS_IOU`), the *max_detections* best; boxes under one pixel wide or high are dropped. Returns ``(class,
    score, x0, y0, x1, y1)`` by descending score (ties: class, then cell order): deterministic."""
    heat = out[:n_classes]
    cls, ys, xs = np.nonzero(_peaks(heat) & (heat >= min_score))
    if cls.size == 0:
        return []
    scores = heat[cls, ys, xs]
    w, h, dx, dy = (out[n_classes + k, ys, xs] for k in range(4))
    cx, cy = (xs + dx) * stride, (ys + dy) * stride
    bw, bh = np.clip(w, 0, None) * stride, np.clip(h, 0, None) * stride
    boxes = np.clip(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1), 0, size)
    # A box under one pixel of the model's input (clipped at the edge, or a collapsed size) can never match, and
    # written with one decimal in the original pixels it could become an empty box the validator warns about.
    ok = (boxes[:, 2] - boxes[:, 0] >= 1.0) & (boxes[:, 3] - boxes[:, 1] >= 1.0)
    cls, scores, boxes = cls[ok], scores[ok], boxes[ok]
    found: list[tuple[int, float, float, float, float, float]] = []
    for c in np.unique(cls):
        sel = np.flatnonzero(cls == c)
        for i in sel[nms(boxes[sel], scores[sel])]:
            found.append((int(c), float(scores[i]), *(float(v) for v in boxes[i])))
    found.sort(key=lambda d: -d[1])  # stable: ties keep class, then cell order
    return found[:max_detections]


def predict_detector(
    run: str | os.PathLike[str],
    images: str | os.PathLike[str],
    out: str | os.PathLike[str],
    *,
    threads: int = 1,
    image_labels: bool = False,
    on_progress: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Write a detection submission (*out*) for every image below *images* with a detector run's model, or with
    *image_labels* the image-level ``probs.csv`` ``cxrlab evaluate classification`` reads.

    The layout is what ``cxrlab evaluate detection`` reads: ``image_id,PredictionString``, groups ``class conf
    x_min y_min x_max y_max`` in the original image's pixels, the class ids of the release's
    ``annotations_*.csv`` (the sidecar's ``class_ids``; score with ``--classes <schema>``). When the schema has
    "No finding", every image also gets ``<id> <1 - best box score> 0 0 1 1`` (the challenge's convention for
    "No finding"), so a confident empty image scores. Scores with :data:`DECIMALS` places, coordinates with one;
    rows sorted by image id: two runs write byte-identical files.

    *image_labels*: ``image_id`` plus one column per class, its highest heatmap score
    (:meth:`DetectorModel.image_scores`), and "No finding" (1 - the highest of them) when the schema has it: the
    box-supervised network read as a classifier of the local labels.

    Returns
    -------
    dict
        ``{"images": n, "boxes": n, "classes": [...], "model": sha256, "schema": name}`` (no ``boxes`` with
        *image_labels*).
    """
    model = DetectorModel(run, threads=threads)
    items = find_images(images)
    if image_labels:
        return _image_label_probs(model, items, out, on_progress)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_id", "PredictionString"])
    n_boxes = 0
    for done, (image_id, path) in enumerate(items, start=1):
        groups = []
        best = 0.0
        for c, score, x0, y0, x1, y1 in model.detect(path):
            best = max(best, score)
            groups.append(f"{model.class_ids[c]} {score:.{DECIMALS}f} {x0:.1f} {y0:.1f} {x1:.1f} {y1:.1f}")
        n_boxes += len(groups)
        if model.no_finding_id is not None:
            groups.append(f"{model.no_finding_id} {1.0 - best:.{DECIMALS}f} 0 0 1 1")
        w.writerow([image_id, " ".join(groups)])
        if on_progress:
            on_progress(done, len(items))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buf.getvalue())
    return {"images": len(items), "boxes": n_boxes, "classes": model.classes, "model": model.sha256,
            "schema": model.meta.get("schema")}


def _image_label_probs(model: DetectorModel, items: list[tuple[str, Path]], out: str | os.PathLike[str],
                       on_progress: Callable[[int, int], None] | None) -> dict[str, Any]:
    """``probs.csv`` of a detector: per image, each class's highest heatmap score (+ No finding)."""
    no_finding = model.no_finding_id is not None
    labels = model.classes + (["No finding"] if no_finding else [])

    def scores(path: Path) -> list[float]:
        found = [float(v) for v in model.image_scores(path)]
        return found + [1.0 - max(found, default=0.0)] if no_finding else found

    _write_probs(out, labels, items, scores, on_progress)
    return {"images": len(items), "classes": labels, "model": model.sha256, "schema": model.meta.get("schema")}
