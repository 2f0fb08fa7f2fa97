"""Baseline models for a release (issue 16): a multi-label classifier in plain torch, trained into a run folder
and exported to ONNX, and prediction on onnxruntime that writes what ``cxrlab evaluate`` scores.

Importing this package imports neither torch nor onnxruntime: :func:`train_classifier` needs torch and onnx (the
``[ml]`` extra), :func:`predict_classifier` onnxruntime. Nothing is ever downloaded: networks start from scratch
or from a weights file the user passes.
"""

from cxrlab.models.predict import ClassifierModel, find_images, predict_classifier
from cxrlab.models.train import ARCHS, CLASSIFIER_FORMAT, train_classifier

__all__ = ["ARCHS", "CLASSIFIER_FORMAT", "ClassifierModel", "find_images", "predict_classifier", "train_classifier"]
