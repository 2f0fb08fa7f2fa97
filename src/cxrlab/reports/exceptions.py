"""Exceptions of the reports stage.

Report text is PHI: no message here ever quotes it. A message names the file, the line (or record) and the
reason, nothing read from the report.
"""

from __future__ import annotations

from cxrlab.errors import CxrlabError, FileError

__all__ = ["ReportError", "ReportFileError", "VocabularyError"]


class ReportError(CxrlabError):
    """Reports cannot be read, labeled or scored (bad options, missing columns, no report at all)."""

    default_message = "cannot process reports"


class ReportFileError(FileError, ReportError):
    """One report (or one whole file) cannot be read: carries the path, the line when known, and a text-free
    reason."""

    default_message = "cannot read report"

    def __init__(self, path: str, reason: str, *, line: int | None = None) -> None:
        self.line = line
        self.where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(path, reason)
        self.args = (f"{self.where}: {reason}",)

    def __str__(self) -> str:
        return str(self.args[0])


class VocabularyError(ReportError):
    """A vocabulary YAML file is missing or malformed."""

    default_message = "invalid report vocabulary"
