"""Request dependencies of the web app: workspace, catalog session, the current user and role checks.

Authorization lives here, in one place; every router takes these ``Annotated`` aliases. A request is
authenticated by a bearer token (``Authorization: Bearer ...``, for API clients) or by the session cookie
(``cxrlab_session``: HttpOnly, SameSite=Strict). Cookie-authenticated requests that change something must also
carry the header ``X-CXRLab-CSRF: 1``: a cross-site form cannot set a custom header, and a cross-site script
cannot send one without a CORS preflight that this app never grants (OWASP CSRF cheat sheet, "custom request
headers"), on top of SameSite=Strict.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cxrlab.annotate.errors import AuthenticationError, NotFoundError, PermissionDeniedError
from cxrlab.annotate.services.auth import resolve_token
from cxrlab.catalog.models import User, UserRole
from cxrlab.catalog.workspace import Workspace

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "AdminUser",
    "CurrentUser",
    "NotFoundError",
    "OptionalUser",
    "ReaderUser",
    "ReviewerUser",
    "SessionDep",
    "WorkspaceDep",
    "get_session",
    "get_workspace",
    "request_token",
    "require_roles",
]

COOKIE_NAME = "cxrlab_session"
CSRF_HEADER = "X-CXRLab-CSRF"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


async def get_workspace(request: Request) -> Workspace:
    """The workspace the app was created with.

    The dependencies that do no I/O are ``async def``: FastAPI runs a plain ``def`` dependency in the thread
    pool, and each such hop costs CPU (about 60 µs here) and wakes one more thread to contend for the GIL.
    """
    return request.app.state.workspace


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


async def get_session(workspace: WorkspaceDep) -> AsyncIterator[Session]:
    """One catalog session per request, closed when the response is done.

    Making the session does no I/O (it takes a connection at its first query, in the handler's thread). Closing
    a session that still holds a connection gives it back, which may roll back on the database server, so that
    runs in the thread pool; a session whose work ended with a commit (a write) holds none.
    """
    session = workspace.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            await run_in_threadpool(session.close)
        else:
            session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def request_token(request: Request) -> tuple[str, str] | None:
    """``(token, "bearer"|"cookie")`` from the request, or None."""
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip(), "bearer"
    cookie = request.cookies.get(COOKIE_NAME)
    return (cookie, "cookie") if cookie else None


def get_current_user(request: Request, session: SessionDep) -> User:
    """The authenticated, active user (401 otherwise); enforces the CSRF header for cookie writes (403)."""
    found = request_token(request)
    if found is None:
        raise AuthenticationError()
    token, kind = found
    user = resolve_token(session, token)
    if kind == "cookie" and request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
        raise PermissionDeniedError(f"missing {CSRF_HEADER} header on a cookie-authenticated request")
    request.state.user = user
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_optional_user(request: Request, session: SessionDep) -> User | None:
    """The logged-in user of a page request, or None (pages redirect to the login page)."""
    try:
        return get_current_user(request, session)
    except (AuthenticationError, PermissionDeniedError):
        return None


OptionalUser = Annotated[User | None, Depends(get_optional_user)]


def require_roles(*roles: UserRole) -> Callable[[User], Coroutine[Any, Any, User]]:
    """A dependency admitting only users with one of *roles* (403 for the others)."""

    async def check(user: CurrentUser) -> User:
        if user.role not in roles:
            raise PermissionDeniedError()
        return user

    return check


AdminUser = Annotated[User, Depends(require_roles(UserRole.ADMIN))]
ReaderUser = Annotated[User, Depends(require_roles(UserRole.ANNOTATOR, UserRole.REVIEWER, UserRole.ADMIN))]
ReviewerUser = Annotated[User, Depends(require_roles(UserRole.REVIEWER, UserRole.ADMIN))]
