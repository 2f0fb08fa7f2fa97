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
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.datasets.images import RASTER_SUFFIXES, load_image
from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import atomic_write_text
from cxrlab.runtime.onnx import deterministic_session, load_checked

__all__ = ["DECIMALS", "ClassifierModel", "find_images", "predict_classifier"]

#: Decimal places of the probabilities written.
DECIMALS = 6
#: What to install for inference.
PREDICT_HINT = "prediction needs onnxruntime (the ML extra): pip install 'cxrlab[ml]'"
_DICOM_SUFFIXES = (".dicom", ".dcm")


def _refuse(path: Path, why: str) -> CxrlabError:
    return CxrlabError(f"{path}: {why}")


class ClassifierModel:
    """A run's ``model.onnx`` + ``model.json``, checked (format, SHA-256, input and output shapes).

    Parameters
    ----------
    path : path
        A run folder (its ``model.onnx``) or an ``.onnx`` file.
    threads : int
        onnxruntime intra-op threads.
    """

    def __init__(self, path: str | os.PathLike[str], *, threads: int = 1) -> None:
        from cxrlab.models.train import CLASSIFIER_FORMAT

        path = Path(path)
        if path.is_dir():
            path = path / "model.onnx"
        if not path.exists():
            raise _refuse(path, "no model here (a run folder of cxrlab train classifier holds model.onnx)")
        self.path = path
        data, self.meta, self.sha256 = load_checked(path, fmt=CLASSIFIER_FORMAT, what="a classifier model",
                                                    refuse=_refuse)
        self.classes: list[str] = list(self.meta.get("classes") or [])
        inp = self.meta.get("input") or {}
        self.size, self.window = int(inp.get("size") or 0), str(inp.get("window") or "file")
        self._session = deterministic_session(data, threads=threads, path=path, refuse=_refuse, hint=PREDICT_HINT)
        i, o = self._session.get_inputs(), self._session.get_outputs()
        if (len(i) != 1 or list(i[0].shape[1:]) != [1, self.size, self.size] or len(o) != 1
                or o[0].shape[-1] != len(self.classes)):
            raise _refuse(path, "refused: its input or output does not match its sidecar")
        self._input = i[0].name

    def predict(self, image: np.ndarray) -> np.ndarray:
        """Probabilities ``(classes,)`` for one rendered image ``(size, size)``."""
        x = np.ascontiguousarray(image, dtype=np.float32)[None, None]
        (p,) = self._session.run(None, {self._input: x})
        p = np.asarray(p, dtype=np.float64).reshape(-1)
        if not np.isfinite(p).all():
            raise CxrlabError(f"{self.path}: the model returned a non-finite probability")
        return p


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
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["image_id", *model.classes])
    for done, (image_id, path) in enumerate(items, start=1):
        image, _ = load_image(path, size=(model.size, model.size), window=model.window)
        w.writerow([image_id, *(f"{v:.{DECIMALS}f}" for v in model.predict(image))])
        if on_progress:
            on_progress(done, len(items))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, buf.getvalue())
    return {"images": len(items), "classes": model.classes, "model": model.sha256}
