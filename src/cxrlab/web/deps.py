"""Request dependencies of the web app: workspace, catalog session, the current user and role checks.

Authorization lives here, in one place; every router takes these ``Annotated`` aliases. A request is
authenticated by a bearer token (``Authorization: Bearer ...``, for API clients) or by the session cookie
(``cxrlab_session``: HttpOnly, SameSite=Strict). Cookie-authenticated requests that change something must also
carry the header ``X-CXRLab-CSRF: 1``: a cross-site form cannot set a custom header, and a cross-site script
cannot send one without a CORS preflight that this app never grants (OWASP CSRF cheat sheet, "custom request
headers"), on top of SameSite=Strict.

The API routers use :class:`AuthFirstRoute`, so a caller who is not allowed in hears 401/403 before anything
about the request body. Ids and offsets in paths and queries are bounded (:data:`IdPath`, :data:`IdQuery`,
:data:`Offset`) to what an INTEGER column holds on every backend: a larger one is a 422, never a database error.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Path, Query, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from cxrlab.annotate.users import resolve_token
from cxrlab.catalog.models import INT_MAX, User, UserRole
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import AuthenticationError, NotFoundError, PermissionDeniedError

__all__ = [
    "COOKIE_NAME",
    "CSRF_HEADER",
    "AdminUser",
    "AuthFirstRoute",
    "CurrentUser",
    "IdPath",
    "IdQuery",
    "NotFoundError",
    "Offset",
    "OptionalUser",
    "ReaderUser",
    "ReviewerUser",
    "SessionDep",
    "VERIFIER_ROLES",
    "VerifierUser",
    "WorkspaceDep",
    "get_session",
    "get_workspace",
    "request_token",
    "require_roles",
]

COOKIE_NAME = "cxrlab_session"
CSRF_HEADER = "X-CXRLab-CSRF"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}

#: A catalog row id in a path (task, project, benchmark, submission ...): 1 to the largest INTEGER.
IdPath = Annotated[int, Path(ge=1, le=INT_MAX)]
#: An optional row id in a query (``?project_id=``).
IdQuery = Annotated[int | None, Query(ge=1, le=INT_MAX)]
#: ``?offset=`` of a paged list.
Offset = Annotated[int, Query(ge=0, le=INT_MAX)]


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

    check.roles = roles  # how AuthFirstRoute tells a role check among a route's dependencies
    return check


AdminUser = Annotated[User, Depends(require_roles(UserRole.ADMIN))]
ReaderUser = Annotated[User, Depends(require_roles(UserRole.ANNOTATOR, UserRole.REVIEWER, UserRole.ADMIN))]
ReviewerUser = Annotated[User, Depends(require_roles(UserRole.REVIEWER, UserRole.ADMIN))]
#: Who decides the triage queues (:mod:`cxrlab.filter.triage`): verifiers, reviewers and admins.
VERIFIER_ROLES = (UserRole.VERIFIER, UserRole.REVIEWER, UserRole.ADMIN)
VerifierUser = Annotated[User, Depends(require_roles(*VERIFIER_ROLES))]


def _user_dependency(dependant: Dependant) -> Callable[..., Any] | None:
    """The route's user dependency (``get_current_user`` or a :func:`require_roles` check), if it has one."""
    for sub in dependant.dependencies:
        if sub.call is get_current_user or hasattr(sub.call, "roles"):
            return sub.call
    return None


def _current_user(request: Request) -> User:
    """:func:`get_current_user` with a session of its own (401 as the route would answer)."""
    with request.app.state.workspace.sessions() as session:
        return get_current_user(request, session)


async def _authorize(request: Request, dependency: Callable[..., Any]) -> None:
    """Run a route's user dependency on its own (401/403 as the route would answer)."""
    user = await run_in_threadpool(_current_user, request)
    if dependency is not get_current_user:
        await dependency(user)  # a require_roles check


class AuthFirstRoute(APIRoute):
    """An API route that answers 401/403 before it says anything about the request body.

    FastAPI reads and decodes a JSON body before it runs a route's dependencies, so a malformed body answered
    422 (or 400) to a caller who is not logged in at all. When the body cannot be decoded, this route first
    checks the caller as the route's user dependency does, then reports the body. A body that is not even
    UTF-8 (FastAPI's 400 "error parsing the body") becomes the same 422 ``json_invalid`` as any malformed JSON,
    so one documented status covers every malformed request. Only requests that fail pay for the extra check.
    """

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()
        dependency = _user_dependency(self.dependant)

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except (RequestValidationError, HTTPException) as exc:
                if isinstance(exc, HTTPException) and exc.status_code != 400:
                    raise
                if dependency is not None:
                    await _authorize(request, dependency)
                if isinstance(exc, HTTPException):
                    raise RequestValidationError(
                        [{"type": "json_invalid", "loc": ("body",), "msg": "the body is not UTF-8 encoded JSON"}]
                    ) from exc
                raise

        return route
