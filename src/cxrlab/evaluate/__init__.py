"""Evaluate: benchmark scores exactly as the public challenge and the papers computed them.

Detection mAP (``kaggle``, ``voc``, ``coco``), classification AUC with bootstrap intervals, NIH localization
accuracy, and submission validation. Pure functions on tables: no catalog, no web.
"""

from cxrlab.evaluate.classes import CHALLENGE, CLASS_LISTS, ClassList, get_class_list
from cxrlab.evaluate.classification import ClassificationResult, ClassScore, score_classification
from cxrlab.evaluate.detection import DetectionResult, Metric, score_detections, score_submission
from cxrlab.evaluate.exceptions import EvaluationError, SubmissionError
from cxrlab.evaluate.formats import (
    GroundTruth,
    Predictions,
    parse_predictions,
    read_annotations,
    read_meta,
    read_submission,
)
from cxrlab.evaluate.localization import LocalizationResult, read_nih_boxes, score_localization
from cxrlab.evaluate.validate import Problem, Severity, validate_submission

__all__ = [
    "CHALLENGE",
    "CLASS_LISTS",
    "ClassList",
    "ClassScore",
    "ClassificationResult",
    "DetectionResult",
    "EvaluationError",
    "GroundTruth",
    "LocalizationResult",
    "Metric",
    "Predictions",
    "Problem",
    "Severity",
    "SubmissionError",
    "get_class_list",
    "parse_predictions",
    "read_annotations",
    "read_meta",
    "read_nih_boxes",
    "read_submission",
    "score_classification",
    "score_detections",
    "score_localization",
    "score_submission",
    "validate_submission",
]
