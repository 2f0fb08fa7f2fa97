"""Run the web app with uvicorn: ``serve(workspace)`` is what ``cxrlab serve`` calls.

Access log lines hold the method, path and query only; paths carry ``image_id`` hashes, never PHI.
With ``workers > 1`` uvicorn needs an import string, so the workers rebuild the app from
``$CXRLAB_WORKSPACE`` through ``app_from_env``.

The client address (the login limiter's per-address key, the access log) is the TCP peer's unless
``forwarded_allow_ips`` names the reverse proxies whose ``X-Forwarded-For`` may replace it: uvicorn by default
trusts the header from 127.0.0.1, so any local client could pick a fresh address for every failed login.
"""

from __future__ import annotations

import os

import uvicorn
from fastapi import FastAPI

from cxrlab.catalog.workspace import Workspace, open_workspace
from cxrlab.web.app import create_app

__all__ = ["app_from_env", "serve"]


def app_from_env() -> FastAPI:
    """App factory for uvicorn worker processes: the workspace at ``$CXRLAB_WORKSPACE``."""
    return create_app(open_workspace(), secure_cookies=os.environ.get("CXRLAB_SECURE_COOKIES") == "1")


def serve(
    workspace: Workspace,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    log_level: str = "info",
    secure_cookies: bool = False,
    forwarded_allow_ips: str | None = None,
) -> None:
    """Serve *workspace* over HTTP until interrupted (blocks); ``secure_cookies`` marks the session cookie
    ``Secure`` (behind an HTTPS proxy); ``forwarded_allow_ips`` (comma-separated) are the proxies whose
    ``X-Forwarded-*`` headers are trusted (none by default)."""
    # Keep idle connections for 30 s (uvicorn: 5 s): a reader looks at an image longer than that, and a
    # connection closed while the client reuses it surfaces as a read error.
    common = {"host": host, "port": port, "log_level": log_level, "server_header": False, "timeout_keep_alive": 30,
              "proxy_headers": bool(forwarded_allow_ips), "forwarded_allow_ips": forwarded_allow_ips or ""}
    if workers > 1:
        os.environ["CXRLAB_WORKSPACE"] = str(workspace.root)
        os.environ["CXRLAB_SECURE_COOKIES"] = "1" if secure_cookies else "0"
        uvicorn.run("cxrlab.web.server:app_from_env", factory=True, workers=workers, **common)
        return
    config = uvicorn.Config(app=create_app(workspace, secure_cookies=secure_cookies), **common)
    uvicorn.Server(config).run()
