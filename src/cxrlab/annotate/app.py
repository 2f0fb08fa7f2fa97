"""The FastAPI app factory of the web app (DESIGN.md, "Web app").

``create_app(workspace)`` builds the app, stores the workspace on ``app.state.workspace`` (read by
``deps.get_workspace``), includes each router module, mounts ``static/`` and maps domain errors to status
codes in one place. OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

import cxrlab
from cxrlab.annotate.errors import (
    AuthenticationError,
    ConflictError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
)
from cxrlab.annotate.routers import auth, health, images, pages, projects, reviews, tasks, users
from cxrlab.annotate.services.auth import LoginLimiter
from cxrlab.annotate.services.images import PixelCache
from cxrlab.annotate.services.readings import QCError
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError, FileError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _unauthenticated(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=401, content={"detail": str(exc)}, headers={"WWW-Authenticate": "Bearer"})


async def _forbidden(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=403, content={"detail": str(exc)})


async def _conflict(request: Request, exc: Exception) -> JSONResponse:
    version = getattr(exc, "current_version", None)
    return JSONResponse(status_code=409, content={"detail": str(exc), "current_version": version})


async def _qc(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": str(exc), "rule": getattr(exc, "rule", "qc")})


async def _rate_limited(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=429, content={"detail": str(exc)}, headers={"Retry-After": "60"})


async def _bad_request(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=400, content={"detail": str(exc)})


async def _file_error(request: Request, exc: Exception) -> JSONResponse:
    # The message names a workspace path and a PHI-free reason: log it, but do not send paths to clients.
    log.warning("render failed: %s", exc)
    return JSONResponse(status_code=500, content={"detail": "the image file could not be read or decoded"})


def create_app(workspace: Workspace, *, secure_cookies: bool = False) -> FastAPI:
    """The web app serving *workspace*: labeling tool, review, dashboard and REST API.

    Parameters
    ----------
    secure_cookies : bool
        Mark the session cookie ``Secure`` (set it when the app is served over HTTPS, e.g. behind a proxy).
    """
    app = FastAPI(
        title=f"cxrlab · {workspace.settings.project}",
        version=cxrlab.__version__,
        description="Blinded multi-reader labeling and two-stage review of chest X-rays. Authenticate with "
        "`POST /api/auth/token` (bearer) or `POST /api/auth/login` (cookie; send `X-CXRLab-CSRF: 1` on writes).",
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.workspace = workspace
    app.state.secure_cookies = secure_cookies
    app.state.login_limiter = LoginLimiter()
    app.state.pixel_cache = PixelCache()
    for exc, handler in (
        (NotFoundError, _not_found),
        (AuthenticationError, _unauthenticated),
        (PermissionDeniedError, _forbidden),
        (ConflictError, _conflict),
        (QCError, _qc),
        (RateLimitedError, _rate_limited),
        (FileError, _file_error),
        (CxrlabError, _bad_request),
    ):
        app.add_exception_handler(exc, handler)
    for module in (health, auth, users, projects, tasks, reviews, images, pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
