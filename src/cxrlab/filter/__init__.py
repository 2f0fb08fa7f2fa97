"""Filter: set outliers aside, with header rules and a light CNN, and the human verification of its decisions.

- :mod:`~cxrlab.filter.rules` -- header rules (modality, body part, view position, age).
- :mod:`~cxrlab.filter.render` -- the model's input: a 256 px two-window rendering of a DICOM or PNG file.
- :mod:`~cxrlab.filter.model` -- an ONNX model and its sidecar on onnxruntime (no torch), and :func:`decide`.
- :mod:`~cxrlab.filter.train` -- training in plain torch (the ``[ml]`` extra), on phantoms or human decisions.
- :mod:`~cxrlab.filter.predict` -- ``cxrlab filter predict``: one row per file, no workspace.
- :mod:`~cxrlab.filter.verify` -- the verification queue and a verifier's decision as an event with its author.
- :mod:`~cxrlab.filter.stage` -- ``run_filter``: header rules, then the model, then the audit sample.

Importing this package imports neither torch nor onnxruntime.
"""

from cxrlab.filter.classes import AGE_CLASSES, OUTLIER_CLASSES, VIEW_CLASSES
from cxrlab.filter.exceptions import ModelError, NoTrainingDataError
from cxrlab.filter.model import DEFAULT_THRESHOLD, FilterModel, Prediction, decide, is_available
from cxrlab.filter.rules import FilterRules, check_header
from cxrlab.filter.stage import DEFAULT_AUDIT_FRACTION, run_filter, workspace_model
from cxrlab.filter.verify import record_verification, training_decisions, verification_queue

__all__ = [
    "AGE_CLASSES",
    "DEFAULT_AUDIT_FRACTION",
    "DEFAULT_THRESHOLD",
    "OUTLIER_CLASSES",
    "VIEW_CLASSES",
    "FilterModel",
    "FilterRules",
    "ModelError",
    "NoTrainingDataError",
    "Prediction",
    "check_header",
    "decide",
    "is_available",
    "record_verification",
    "run_filter",
    "training_decisions",
    "verification_queue",
    "workspace_model",
]
