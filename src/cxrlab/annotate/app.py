"""The FastAPI app factory of the web app (DESIGN.md, "Web app").

``create_app(workspace)`` builds the app, stores the workspace on ``app.state.workspace`` (read by
``deps.get_workspace``), includes each router module, mounts ``static/`` and maps domain errors to status
codes in one place. Its lifespan runs the leaderboard's scoring worker (``app.state.scoring``), a thread that
scores submissions outside the requests. OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount

import cxrlab
from cxrlab.annotate.admission import Admission
from cxrlab.annotate.errors import (
    AuthenticationError,
    ConflictError,
    InvalidUploadError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    UploadTooLargeError,
)
from cxrlab.annotate.offline_docs import mount_offline_docs
from cxrlab.annotate.routers import (
    auth,
    health,
    images,
    leaderboard,
    leaderboard_pages,
    pages,
    projects,
    reviews,
    tasks,
    users,
)
from cxrlab.annotate.services.auth import LoginLimiter
from cxrlab.annotate.services.images import PixelCache
from cxrlab.annotate.services.readings import QCError
from cxrlab.annotate.worker import ScoringWorker
from cxrlab.catalog.db import WalCheckpointer
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError, FileError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"
HTTP_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _unauthenticated(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=401, content={"detail": str(exc)}, headers={"WWW-Authenticate": "Bearer"})


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=403, content={"detail": str(exc)})


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    content = {"detail": str(exc), "current_version": getattr(exc, "current_version", None)}
    if getattr(exc, "rule", None):
        content["rule"] = exc.rule
    return JSONResponse(status_code=409, content=content)


async def _qc(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc), "rule": getattr(exc, "rule", "qc")})


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    retry_after = getattr(exc, "retry_after", 60)
    return JSONResponse(status_code=429, content={"detail": str(exc)}, headers={"Retry-After": str(retry_after)})


async def _invalid_upload(request: Request, exc: Exception) -> JSONResponse:
    content = {"detail": str(exc), "problems": getattr(exc, "problems", []),
               "submission_id": getattr(exc, "submission_id", None)}
    return JSONResponse(status_code=422, content=content)


async def _too_large(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=413, content={"detail": str(exc)})


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": str(exc)})


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    # FastAPI's default 422 echoes each offending value ("input"); a too-long comment or note is free text typed
    # by a person and may hold PHI, so the errors say where and why, never what was sent.
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    detail = [{k: v for k, v in e.items() if k not in ("input", "url")} for e in errors]
    return JSONResponse(status_code=422, content={"detail": jsonable_encoder(detail)})


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


async def _file_error(request: Request, exc: Exception) -> JSONResponse:
    # The message names a workspace path and a PHI-free reason: log it, but do not send paths to clients.
    log.warning("render failed: %s", exc)
    return JSONResponse(status_code=500, content={"detail": "the image file could not be read or decoded"})


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the scoring worker while the server runs (it finishes the submission in hand on shutdown), and the
    SQLite catalog's WAL checkpoints outside the writers' commits (:class:`~cxrlab.catalog.db.WalCheckpointer`)."""
    app.state.scoring.start()
    app.state.checkpointer.start()
    try:
        yield
    finally:
        await run_in_threadpool(app.state.scoring.stop)
        await run_in_threadpool(app.state.checkpointer.stop)


def create_app(workspace: Workspace, *, secure_cookies: bool = False) -> FastAPI:
    """The web app serving *workspace*: labeling tool, review, dashboard, leaderboard and REST API.

    Parameters
    ----------
    secure_cookies : bool
        Mark the session cookie ``Secure`` (set it when the app is served over HTTPS, e.g. behind a proxy).
    """
    app = FastAPI(
        title=f"cxrlab · {workspace.settings.project}",
        version=cxrlab.__version__,
        description="Blinded multi-reader labeling, two-stage review and a benchmark leaderboard of chest X-rays. "
        "Authenticate with "
        "`POST /api/auth/token` (bearer) or `POST /api/auth/login` (cookie; send `X-CXRLab-CSRF: 1` on writes).",
        docs_url=None,  # served from local assets by mount_offline_docs (FastAPI's pages load a CDN)
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.workspace = workspace
    app.state.secure_cookies = secure_cookies
    app.state.login_limiter = LoginLimiter()
    app.state.pixel_cache = PixelCache()
    app.state.scoring = ScoringWorker(workspace)
    app.state.checkpointer = WalCheckpointer(workspace.engine)
    for exc, handler in (
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
    for module in (health, auth, users, projects, tasks, reviews, images, leaderboard, pages, leaderboard_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    mount_offline_docs(app)
    app.add_middleware(Admission)
    return app
