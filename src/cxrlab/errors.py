"""Exceptions shared by every cxrlab stage.

The domain errors of the labeling stage and the leaderboard (not found, not allowed, conflict, rate limited) are
here too: the web shell maps each to one HTTP status in one place, the CLI to an exit code.

Messages name the file and the reason, never a value read from the file: a DICOM value may be PHI.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "CxrlabError",
    "FileError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "WorkspaceError",
]


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


class NotFoundError(CxrlabError):
    """The resource does not exist or is not visible to the caller (HTTP 404; never says which)."""

    default_message = "not found"


class AuthenticationError(CxrlabError):
    """No valid session or token (HTTP 401)."""

    default_message = "not authenticated"


class PermissionDeniedError(CxrlabError):
    """Authenticated, but the role may not do this (HTTP 403)."""

    default_message = "not enough permissions"


class ConflictError(CxrlabError):
    """A save named a stale version, or the item changed state meanwhile, or a rule refuses the change (HTTP 409).

    ``current_version`` tells the client which version to reload; ``rule`` names the rule that refuses it.
    """

    default_message = "conflict: the item was changed meanwhile; reload it"

    def __init__(
        self, message: str | None = None, *, current_version: int | None = None, rule: str | None = None
    ) -> None:
        super().__init__(message)
        self.current_version = current_version
        self.rule = rule


class RateLimitedError(CxrlabError):
    """Too many failed logins for this user name or address (HTTP 429)."""

    default_message = "too many failed logins; try again later"
