"""Errors of the filter stage."""

from __future__ import annotations

from cxrlab.errors import CxrlabError

__all__ = ["ModelError", "NoTrainingDataError"]


class ModelError(CxrlabError):
    """A filter model file cannot be used: unreadable, corrupt, or its sidecar does not match it."""

    default_message = "the filter model cannot be used"


class NoTrainingDataError(CxrlabError):
    """A workspace has no human decisions to train the filter model on."""

    default_message = "the workspace has no verification decisions or reader reason codes to train on"
