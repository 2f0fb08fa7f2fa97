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
from cxrlab.annotate.deps import NotFoundError
from cxrlab.annotate.routers import health, images, pages
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import FileError

__all__ = ["create_app"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).resolve().parent / "static"


async def _not_found(request: Request, exc: Exception) -> JSONResponse:
    return JSONResponse(status_code=404, content={"detail": str(exc)})


async def _file_error(request: Request, exc: Exception) -> JSONResponse:
    # The message names a workspace path and a PHI-free reason: log it, but do not send paths to clients.
    log.warning("render failed: %s", exc)
    return JSONResponse(status_code=500, content={"detail": "the image file could not be read or decoded"})


def create_app(workspace: Workspace) -> FastAPI:
    """The web app serving *workspace*'s de-identified images."""
    app = FastAPI(
        title=f"cxrlab · {workspace.settings.project}",
        version=cxrlab.__version__,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.workspace = workspace
    app.add_exception_handler(NotFoundError, _not_found)
    app.add_exception_handler(FileError, _file_error)
    app.include_router(health.router)
    app.include_router(images.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
