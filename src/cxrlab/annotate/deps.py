"""Request dependencies of the web app: the workspace, a catalog session and the app's domain errors.

Routers take these as ``Annotated`` aliases (``WorkspaceDep``, ``SessionDep``) so a handler's signature says
what it needs; ``create_app`` stores the workspace on ``app.state.workspace``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError

__all__ = ["NotFoundError", "SessionDep", "WorkspaceDep", "get_session", "get_workspace"]


class NotFoundError(CxrlabError):
    """The requested resource does not exist or is not served (mapped to HTTP 404 by ``create_app``)."""

    default_message = "not found"


def get_workspace(request: Request) -> Workspace:
    """The workspace the app was created with."""
    return request.app.state.workspace


WorkspaceDep = Annotated[Workspace, Depends(get_workspace)]


def get_session(workspace: WorkspaceDep) -> Iterator[Session]:
    """One catalog session per request, closed when the response is done."""
    with workspace.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
