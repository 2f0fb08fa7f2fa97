"""Baseline models for a release (issue 16): a multi-label classifier and a one-stage detector in plain torch,
trained into a run folder and exported to ONNX, prediction on onnxruntime that writes what ``cxrlab evaluate``
scores, and class activation maps turned into boxes for ``cxrlab evaluate localization`` (:func:`run_cam`).

Model-assisted reading (:mod:`cxrlab.models.suggest`): a labeling project names a detector run and the viewer
offers its boxes as suggestions, predicted once per image in the background.

Importing this package imports neither torch nor onnxruntime: :func:`train_classifier` and :func:`train_detector`
need torch and onnx (the ``[ml]`` extra), :func:`predict_run` onnxruntime, :func:`run_cam` onnxruntime and
scipy. Nothing is ever downloaded: networks start from scratch or from a weights file the user passes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from cxrlab.models.cam import run_cam
from cxrlab.models.predict import (
    ClassifierModel,
    DetectorModel,
    decode_detections,
    find_images,
    predict_classifier,
    predict_detector,
    run_format,
)
from cxrlab.models.suggest import SuggestionWorker, predict_suggestions, set_suggest_run, task_suggestions
from cxrlab.models.train import ARCHS, CLASSIFIER_FORMAT, DETECTOR_FORMAT, _torch, export_classifier, train_classifier

__all__ = ["ARCHS", "CLASSIFIER_FORMAT", "DETECTOR_FORMAT", "ClassifierModel", "DetectorModel", "SuggestionWorker",
           "decode_detections", "export_classifier", "find_images", "predict_classifier", "predict_detector",
           "predict_run", "predict_suggestions", "run_cam", "set_suggest_run", "task_suggestions", "train_classifier",
           "train_detector"]


def train_detector(release: str | os.PathLike[str], run: str | os.PathLike[str], **kwargs: Any) -> dict[str, Any]:
    """Train the one-stage detector (:func:`cxrlab.models.detector.train_detector`; imports torch only here)."""
    _torch()
    from cxrlab.models.detector import train_detector as _train

    return _train(release, run, **kwargs)


def predict_run(run: str | os.PathLike[str], images: str | os.PathLike[str], out: str | os.PathLike[str], *,
                threads: int = 1, image_labels: bool = False,
                on_progress: Callable[[int, int], None] | None = None) -> dict[str, Any]:
    """:func:`predict_detector` for a detector run (its sidecar's format; *image_labels*: image-level scores
    instead of boxes), else :func:`predict_classifier` (which always writes image-level scores)."""
    if run_format(run) == DETECTOR_FORMAT:
        return predict_detector(run, images, out, threads=threads, image_labels=image_labels, on_progress=on_progress)
    return predict_classifier(run, images, out, threads=threads, on_progress=on_progress)
