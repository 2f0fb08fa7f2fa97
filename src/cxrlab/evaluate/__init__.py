"""Evaluate: benchmark scores exactly as the public challenge and the papers computed them.

Detection mAP (``kaggle``, ``voc``, ``coco``), classification AUC with bootstrap intervals, NIH localization
accuracy, and submission validation. Pure functions on tables: no catalog, no web.
"""

from cxrlab.evaluate.classes import CHALLENGE, ClassList, get_class_list
from cxrlab.evaluate.detection import DetectionResult, Metric, score_detections, score_submission
from cxrlab.evaluate.exceptions import EvaluationError, SubmissionError
from cxrlab.evaluate.formats import GroundTruth, Predictions, parse_predictions, read_annotations, read_submission

__all__ = [
    "CHALLENGE",
    "ClassList",
    "DetectionResult",
    "EvaluationError",
    "GroundTruth",
    "Metric",
    "Predictions",
    "SubmissionError",
    "get_class_list",
    "parse_predictions",
    "read_annotations",
    "read_submission",
    "score_detections",
    "score_submission",
]
