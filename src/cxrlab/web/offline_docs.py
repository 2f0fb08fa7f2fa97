"""Swagger UI (``/docs``) and ReDoc (``/redoc``) served from the installed package, with no internet.

FastAPI's own ``/docs`` page loads Swagger UI's script and style from a CDN and its favicon from
fastapi.tiangolo.com, so on a hospital network without internet access the page stays blank. The
``fastapi-offline`` wheel ships the same assets (Swagger UI 5 bundle and CSS, the ReDoc standalone bundle, a
favicon; their licences travel with the wheel); :func:`mount_offline_docs` serves them under ``/docs/assets``
and builds both pages with FastAPI's own HTML generators pointing at them. Nothing here is hand-written
except the three routes.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "DOCS_URL", "REDOC_URL", "mount_offline_docs"]

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"

# The wheel's data folder (``fastapi_offline/static``); its FastAPIOffline() factory would also replace the
# app's constructor, which we keep, so only the files are used.
_ASSETS_DIR = Path(str(files("fastapi_offline").joinpath("static")))

# The browser enforces "nothing from another host": ReDoc's side menu shows Redocly's logo from its CDN (an
# <img> no option removes; it hides itself when the image fails), and with this policy the request never
# leaves the machine. Inline script/style: FastAPI's page starts Swagger UI with an inline script, and both
# bundles set inline styles; ReDoc runs its search index in a blob: worker.
_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; font-src 'self' data:; worker-src 'self' blob:; connect-src 'self'")


def mount_offline_docs(app: FastAPI) -> None:
    """Serve ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc) from local assets.

    Create the app with ``docs_url=None, redoc_url=None`` (FastAPI's CDN pages) and call this once.
    The pages load only ``/docs/assets/*`` and the app's ``openapi_url``; Swagger UI's online validator
    badge is turned off (``validatorUrl: null``), ReDoc does not load Google Fonts, and a
    Content-Security-Policy keeps the browser from fetching anything from another host.

    Parameters
    ----------
    app : FastAPI
        The application; its ``openapi_url``, ``title`` and ``swagger_ui_parameters`` are used.
    """
    if app.openapi_url is None:
        raise ValueError("the app has no OpenAPI schema (openapi_url=None): there is nothing to document")
    openapi_url = app.openapi_url
    app.mount(ASSETS_URL, StaticFiles(directory=_ASSETS_DIR), name="docs-assets")

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None, **(app.swagger_ui_parameters or {})},
        )
        page.headers["Content-Security-Policy"] = _CSP
        return page

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{ASSETS_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = _CSP
        return page
