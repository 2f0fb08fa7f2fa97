"""Exceptions shared by every cxrlab stage.

Messages name the file and the reason, never a value read from the file: a DICOM value may be PHI.
"""

from __future__ import annotations

from pathlib import Path


class CxrlabError(Exception):
    """Base class of every error cxrlab raises on purpose."""

    default_message = "cxrlab error"
    #: Exit code of the CLI when this error ends a command.
    exit_code = 1

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)


class WorkspaceError(CxrlabError):
    """The workspace is missing, not initialised, or its settings are invalid."""

    default_message = "invalid workspace"


class FileError(CxrlabError):
    """A problem with one input file: carries the path and a PHI-free reason."""

    default_message = "cannot process file"

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")
