"""``GET /health``: liveness plus a catalog round trip."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel

import cxrlab
from cxrlab.annotate.images import count_images
from cxrlab.web.deps import SessionDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    """Server status; ``images`` counts the de-identified images the server can serve."""

    status: str
    images: int
    version: str


@router.get("/health", response_model=Health)
def api_health(session: SessionDep) -> Health:
    """Report that the server runs and the catalog answers."""
    return Health(status="ok", images=count_images(session), version=cxrlab.__version__)
