"""``/api/images``: list de-identified images and render one as PNG or JPEG.

Only images that have an ``image_id`` and a de-identified file (``deid_path``) are served; ``raw/`` never is.
The output schema ``ImagePublic`` carries non-identifying fields only (no raw path, SOP Instance UID or
patient key). The plain functions here hold the logic; the ``api_*`` handlers only parse and delegate.
"""

from __future__ import annotations

import enum
import io
import math
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from PIL import Image as PILImage
from pydantic import BaseModel, ConfigDict
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from cxrlab.annotate.deps import NotFoundError, SessionDep, WorkspaceDep
from cxrlab.catalog.models import Image, ImageState
from cxrlab.catalog.workspace import Workspace

__all__ = [
    "ImagePublic",
    "RenderFormat",
    "count_images",
    "deid_file",
    "get_image",
    "list_images",
    "parse_window",
    "render_image",
    "router",
]

#: Rendered bytes never change for a given URL while the de-identified file stays; browsers may keep them.
CACHE_CONTROL = "private, max-age=86400"

router = APIRouter(prefix="/api/images", tags=["images"])


class ImagePublic(BaseModel):
    """What the API tells about an image: non-identifying metadata only."""

    model_config = ConfigDict(from_attributes=True)

    image_id: str
    state: ImageState
    rows: int | None = None
    columns: int | None = None
    modality: str | None = None
    view_position: str | None = None
    sex: str | None = None
    age_years: float | None = None


class RenderFormat(enum.StrEnum):
    """Encodings of ``/render``."""

    PNG = "png"
    JPEG = "jpeg"


MEDIA_TYPES = {RenderFormat.PNG: "image/png", RenderFormat.JPEG: "image/jpeg"}


# --- logic -------------------------------------------------------------------------------------------------


def _servable(state: ImageState | None = None) -> Select[tuple[Image]]:
    stmt = select(Image).where(Image.image_id.is_not(None), Image.deid_path.is_not(None))
    if state is not None:
        stmt = stmt.where(Image.state == state)
    return stmt


def count_images(session: Session, state: ImageState | None = None) -> int:
    """How many servable (de-identified) images the catalog holds, optionally in one state."""
    return session.scalar(select(func.count()).select_from(_servable(state).subquery())) or 0


def list_images(
    session: Session, *, state: ImageState | None = None, limit: int = 100, offset: int = 0
) -> list[Image]:
    """Servable images ordered by ``image_id``."""
    stmt = _servable(state).order_by(Image.image_id).limit(limit).offset(offset)
    return list(session.scalars(stmt))


def get_image(session: Session, image_id: str) -> Image:
    """The servable image *image_id*; ``NotFoundError`` if unknown or not de-identified."""
    image = session.scalar(_servable().where(Image.image_id == image_id))
    if image is None:
        raise NotFoundError(f"image {image_id!r} not found")
    return image


def deid_file(workspace: Workspace, image: Image) -> Path:
    """The de-identified file of *image* (``deid_path`` absolute or relative to the workspace root).

    Raises ``NotFoundError`` if the file is missing or lies in the workspace's ``raw/`` folder.
    """
    path = Path(image.deid_path or "")
    if not path.is_absolute():
        path = workspace.root / path
    path = path.resolve()
    if not image.deid_path or path.is_relative_to(workspace.path("raw").resolve()) or not path.is_file():
        raise NotFoundError(f"image {image.image_id!r}: de-identified file not available")
    return path


def parse_window(text: str | None) -> tuple[float, float] | None:
    """``"C,W"`` to ``(center, width)``; ``ValueError`` unless both are finite numbers and width > 0."""
    if text is None or text == "":
        return None
    parts = text.split(",")
    if len(parts) != 2:
        raise ValueError("window must be 'center,width'")
    center, width = (float(p) for p in parts)
    if not (math.isfinite(center) and math.isfinite(width)) or width <= 0:
        raise ValueError("window center and width must be finite and width > 0")
    return center, width


def render_image(
    path: Path, *, fmt: RenderFormat, max_size: int | None, window: tuple[float, float] | None
) -> bytes:
    """Render the DICOM file *path* with the display pipeline and encode it as PNG or JPEG."""
    from cxrlab.dicom.display import to_uint8  # the display pipeline pulls in numpy and the decoders

    pixels = to_uint8(path, window=window, max_size=max_size)
    out = io.BytesIO()
    picture = PILImage.fromarray(pixels)
    if fmt is RenderFormat.JPEG:
        picture.save(out, format="JPEG", quality=90)
    else:
        picture.save(out, format="PNG")
    return out.getvalue()


# --- handlers ----------------------------------------------------------------------------------------------


def window_query(
    window: Annotated[
        str | None, Query(description="Window 'center,width' in modality units; default: the file's own")
    ] = None,
) -> tuple[float, float] | None:
    """Parse ``?window=C,W`` or answer 422."""
    try:
        return parse_window(window)
    except ValueError:
        raise HTTPException(
            status_code=422, detail="window must be 'center,width' with finite numbers and width > 0"
        ) from None


@router.get("", response_model=list[ImagePublic])
def api_list_images(
    session: SessionDep,
    response: Response,
    state: ImageState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[Image]:
    """De-identified images, ordered by ``image_id``; ``X-Total-Count`` gives the total for the filter."""
    response.headers["X-Total-Count"] = str(count_images(session, state))
    return list_images(session, state=state, limit=limit, offset=offset)


@router.get("/{image_id}", response_model=ImagePublic)
def api_get_image(image_id: str, session: SessionDep) -> Image:
    """One de-identified image's metadata."""
    return get_image(session, image_id)


@router.get(
    "/{image_id}/render",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}}}, 404: {}, 422: {}},
)
def api_render_image(
    image_id: str,
    session: SessionDep,
    workspace: WorkspaceDep,
    window: Annotated[tuple[float, float] | None, Depends(window_query)],
    format: RenderFormat = RenderFormat.PNG,
    max_size: Annotated[int | None, Query(ge=16, le=8192, description="Longest side in pixels")] = 1024,
) -> Response:
    """The de-identified image rendered for display (8-bit grayscale), downsized to ``max_size``."""
    path = deid_file(workspace, get_image(session, image_id))
    data = render_image(path, fmt=format, max_size=max_size, window=window)
    return Response(content=data, media_type=MEDIA_TYPES[format], headers={"Cache-Control": CACHE_CONTROL})
