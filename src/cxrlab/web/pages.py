"""What every HTML page shares: the templates, the logged-in user (or a redirect to ``/login``), the admin check
and the base context.

Page handlers take :data:`PageUser` (or :data:`PageAdmin`) instead of checking the session themselves, and
render through :func:`render`. An error raised by a page handler (not found, not allowed) is answered as an
HTML page by :mod:`cxrlab.web.errors`, never as the API's JSON.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cxrlab.catalog.models import User, UserRole
from cxrlab.errors import PermissionDeniedError
from cxrlab.web.deps import OptionalUser, WorkspaceDep

__all__ = [
    "PAGE_TAG",
    "LoginRequired",
    "PageAdmin",
    "PageUser",
    "is_page",
    "page_admin",
    "page_user",
    "render",
    "templates",
]

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

#: The tag every page router carries; errors on its routes are answered in HTML.
PAGE_TAG = "pages"


class LoginRequired(Exception):  # noqa: N818 - a control-flow signal, answered by a redirect
    """No session on a page request: :mod:`cxrlab.web.errors` answers with a redirect to ``/login``."""

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def page_user(request: Request, user: OptionalUser) -> User:
    """The logged-in user of a page request; without a session the page redirects to ``/login?next=...``."""
    if user is None:
        raise LoginRequired(request.url.path)
    return user


PageUser = Annotated[User, Depends(page_user)]


def page_admin(user: PageUser) -> User:
    """The logged-in admin; any other role gets the 403 page "admins only"."""
    if user.role is not UserRole.ADMIN:
        raise PermissionDeniedError("admins only")
    return user


PageAdmin = Annotated[User, Depends(page_admin)]


def is_page(request: Request) -> bool:
    """True when *request* was routed to an HTML page (a route tagged ``pages``)."""
    route = request.scope.get("route")
    return PAGE_TAG in (getattr(route, "tags", None) or [])


def render(request: Request, template: str, *, workspace: WorkspaceDep, user: User | None,
           status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render *template* with the context every page has (the workspace's project name, the user)."""
    return templates.TemplateResponse(
        request, template, {"project": workspace.settings.project, "user": user, **context}, status_code=status_code
    )
