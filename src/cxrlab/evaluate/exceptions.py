"""Exceptions of the evaluate stage."""

from __future__ import annotations

from cxrlab.errors import CxrlabError

__all__ = ["EvaluationError", "SubmissionError"]


class EvaluationError(CxrlabError):
    """Ground truth or predictions cannot be scored (missing columns, unknown classes, bad values)."""

    default_message = "cannot evaluate"


class SubmissionError(EvaluationError):
    """A submission file is malformed; run :func:`cxrlab.evaluate.validate_submission` for every problem."""

    default_message = "invalid submission"
