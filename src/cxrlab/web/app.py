"""The FastAPI app factory of the web shell.

``create_app(workspace)`` builds the app, stores the workspace on ``app.state.workspace`` (read by
``deps.get_workspace``), includes each router module (``routers/api/*``: the REST API; ``routers/pages/*``:
the HTML pages), mounts ``static/`` and maps domain errors to status codes in one place
(:mod:`cxrlab.web.errors`). Its lifespan runs the leaderboard's scoring worker (``app.state.scoring``), a
thread that scores submissions outside the requests, and the model suggestions' worker (``app.state.suggestions``),
a thread that predicts images for model-assisted reading. OpenAPI docs are at ``/docs``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

import cxrlab
from cxrlab.annotate.users import LoginLimiter
from cxrlab.benchmark import ScoringWorker
from cxrlab.catalog.db import WalCheckpointer
from cxrlab.catalog.workspace import Workspace
from cxrlab.models.suggest import SuggestionWorker
from cxrlab.web.admission import Admission
from cxrlab.web.errors import register_error_handlers
from cxrlab.web.offline_docs import mount_offline_docs
from cxrlab.web.pixels import PixelCache
from cxrlab.web.routers.api import auth, health, images, leaderboard, projects, reviews, tasks, triage, users
from cxrlab.web.routers.pages import admin as admin_pages
from cxrlab.web.routers.pages import labeling as labeling_pages
from cxrlab.web.routers.pages import leaderboard as leaderboard_pages
from cxrlab.web.routers.pages import triage as triage_pages

__all__ = ["create_app"]

STATIC_DIR = Path(__file__).resolve().parent / "static"


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Run the scoring and suggestion workers while the server runs (they finish the item in hand on shutdown) and the
    SQLite catalog's WAL checkpoints outside the writers' commits (:class:`~cxrlab.catalog.db.WalCheckpointer`)."""
    app.state.scoring.start()
    app.state.checkpointer.start()
    app.state.suggestions.start()
    try:
        yield
    finally:
        await run_in_threadpool(app.state.suggestions.stop)
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
    app.state.suggestions = SuggestionWorker(workspace)
    register_error_handlers(app)
    for module in (health, auth, users, projects, tasks, reviews, images, leaderboard, triage, labeling_pages,
                   leaderboard_pages, admin_pages, triage_pages):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    mount_offline_docs(app)
    app.add_middleware(Admission)
    return app
