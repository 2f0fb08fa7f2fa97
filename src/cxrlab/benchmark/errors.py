"""Errors of the leaderboard: uploads refused, too large, or over the daily limit."""

from __future__ import annotations

from cxrlab.errors import CxrlabError, RateLimitedError

__all__ = ["DailyLimitError", "InvalidUploadError", "UploadTooLargeError"]


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
