"""Domain errors to HTTP answers, in one place: each error class maps to one status.

API routes answer JSON (``{"detail": ...}`` plus the fields each status documents, see
:mod:`cxrlab.web.models`); page routes (tagged ``pages``, :func:`cxrlab.web.pages.is_page`) answer the same
status as an HTML page, and a page without a session redirects to ``/login``. No answer repeats a value the
client sent or names a file path.
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

from cxrlab.annotate.readings import QCError
from cxrlab.benchmark.errors import InvalidUploadError, UploadTooLargeError
from cxrlab.errors import (
    AuthenticationError,
    ConflictError,
    CxrlabError,
    FileError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from cxrlab.web.pages import LoginRequired, is_page, render

__all__ = ["register_error_handlers"]

log = logging.getLogger(__name__)

HTTP_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")

#: Titles of the HTML error pages.
PAGE_TITLES = {400: "Bad request", 403: "Not allowed", 404: "Not found", 409: "Conflict", 413: "Too large",
               422: "Not valid", 429: "Too many requests", 500: "Server error"}


def _answer(request: Request, status: int, content: dict, headers: dict[str, str] | None = None) -> Response:
    """JSON for the API; the same status as an HTML page for a page route."""
    if is_page(request):
        return render(request, "error.html", workspace=request.app.state.workspace,
                      user=getattr(request.state, "user", None), status_code=status,
                      title=PAGE_TITLES.get(status, "Error"), detail=str(content.get("detail", "")))
    return JSONResponse(status_code=status, content=content, headers=headers)


async def _login_required(request: Request, exc: Exception) -> Response:
    return RedirectResponse(f"/login?next={getattr(exc, 'path', '/')}", status_code=303)


async def _not_found(request: Request, exc: Exception) -> Response:
    return _answer(request, 404, {"detail": str(exc)})


async def _unauthenticated(request: Request, exc: Exception) -> Response:
    return _answer(request, 401, {"detail": str(exc)}, {"WWW-Authenticate": "Bearer"})


async def _forbidden(request: Request, exc: Exception) -> Response:
    return _answer(request, 403, {"detail": str(exc)})


async def _conflict(request: Request, exc: Exception) -> Response:
    content = {"detail": str(exc), "current_version": getattr(exc, "current_version", None)}
    if getattr(exc, "rule", None):
        content["rule"] = exc.rule
    return _answer(request, 409, content)


async def _qc(request: Request, exc: Exception) -> Response:
    return _answer(request, 422, {"detail": str(exc), "rule": getattr(exc, "rule", "qc")})


async def _rate_limited(request: Request, exc: Exception) -> Response:
    retry_after = getattr(exc, "retry_after", 60)
    return _answer(request, 429, {"detail": str(exc)}, {"Retry-After": str(retry_after)})


async def _invalid_upload(request: Request, exc: Exception) -> Response:
    content = {"detail": str(exc), "problems": getattr(exc, "problems", []),
               "submission_id": getattr(exc, "submission_id", None)}
    return _answer(request, 422, content)


async def _too_large(request: Request, exc: Exception) -> Response:
    return _answer(request, 413, {"detail": str(exc)})


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _answer(request, 400, {"detail": str(exc)})


async def _invalid_request(request: Request, exc: Exception) -> Response:
    # FastAPI's default 422 echoes each offending value ("input"); a too-long comment or note is free text typed
    # by a person and may hold PHI, so the errors say where and why, never what was sent.
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in errors]
    return _answer(request, 422, {"detail": jsonable_encoder(detail)})


async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code == 405:
        # Starlette names the methods of the first route whose path matched; where two routes share a path
        # (GET and POST /api/users) the Allow header must list both (RFC 9110, 15.5.6). Ask every route which
        # methods it takes on this path (Route.matches is FULL for path and method).
        routes = [r for r in request.app.router.routes if not isinstance(r, Mount)]
        allowed = [m for m in HTTP_METHODS
                   if any(r.matches({**request.scope, "method": m})[0] is Match.FULL for r in routes)]
        if allowed:
            exc = StarletteHTTPException(405, exc.detail, headers={**(exc.headers or {}), "Allow": ", ".join(allowed)})
    return await http_exception_handler(request, exc)


async def _file_error(request: Request, exc: Exception) -> Response:
    # The message names a workspace path and a PHI-free reason: log it, but do not send paths to clients.
    log.warning("render failed: %s", exc)
    return _answer(request, 500, {"detail": "the image file could not be read or decoded"})


def register_error_handlers(app: FastAPI) -> None:
    """Install the handlers: one per error class (the most specific class wins)."""
    for exc, handler in (
        (LoginRequired, _login_required),
        (NotFoundError, _not_found),
        (AuthenticationError, _unauthenticated),
        (PermissionDeniedError, _forbidden),
        (ConflictError, _conflict),
        (QCError, _qc),
        (RequestValidationError, _invalid_request),
        (StarletteHTTPException, _http_error),
        (RateLimitedError, _rate_limited),
        (InvalidUploadError, _invalid_upload),
        (UploadTooLargeError, _too_large),
        (FileError, _file_error),
        (CxrlabError, _bad_request),
    ):
        app.add_exception_handler(exc, handler)
