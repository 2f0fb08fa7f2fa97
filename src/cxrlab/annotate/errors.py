"""Domain errors of the labeling tool; ``create_app`` maps each to one HTTP status in one place."""

from __future__ import annotations

from cxrlab.errors import CxrlabError

__all__ = [
    "AuthenticationError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
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
    """A save named a stale version, or the item changed state meanwhile (HTTP 409).

    ``current_version`` tells the client which version to reload.
    """

    default_message = "conflict: the item was changed meanwhile; reload it"

    def __init__(self, message: str | None = None, *, current_version: int | None = None) -> None:
        super().__init__(message)
        self.current_version = current_version


class RateLimitedError(CxrlabError):
    """Too many failed logins for this user name or address (HTTP 429)."""

    default_message = "too many failed logins; try again later"
