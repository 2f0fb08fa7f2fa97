"""Domain errors of the labeling tool; ``create_app`` maps each to one HTTP status in one place."""

from __future__ import annotations

from cxrlab.errors import CxrlabError

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "DailyLimitError",
    "InvalidUploadError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "UploadTooLargeError",
]


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


class DailyLimitError(RateLimitedError):
    """The user's submissions to a benchmark today (UTC) reached its daily limit (HTTP 429).

    ``retry_after`` is the number of seconds until the next UTC day begins.
    """

    default_message = "daily submission limit reached; try again tomorrow (UTC)"

    def __init__(self, message: str | None = None, *, retry_after: int = 60) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class InvalidUploadError(CxrlabError):
    """An uploaded file was refused by a validator (HTTP 422).

    ``problems`` lists every problem as ``name:line: severity: message``; ``submission_id`` is the ``invalid``
    submission recorded for it (None for other uploads).
    """

    default_message = "the uploaded file is not valid"

    def __init__(
        self, message: str | None = None, *, problems: list[str] | None = None, submission_id: int | None = None
    ) -> None:
        super().__init__(message)
        self.problems = list(problems or [])
        self.submission_id = submission_id


class UploadTooLargeError(CxrlabError):
    """An upload is larger than the server accepts (HTTP 413; exit code 2 in the CLI, like
    :class:`~cxrlab.runtime.unpack.UnpackedTooLargeError`)."""

    default_message = "the upload is too large"
    exit_code = 2
