"""HTML pages: ``GET /`` (a grid of thumbnails) and ``GET /images/{image_id}`` (one image, large).

Plain Jinja2 templates and one ES module from ``static/``; nothing is loaded from the internet. Images come
from the render endpoint, so the pages never see a file path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from cxrlab.annotate.deps import SessionDep, WorkspaceDep
from cxrlab.annotate.routers.images import ImagePublic, count_images, deid_file, get_image, list_images
from cxrlab.catalog.models import ImageState
from cxrlab.dicom.io import read_dataset, read_pixels
from cxrlab.errors import FileError

__all__ = ["router", "templates", "window_options"]

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

router = APIRouter(tags=["pages"], include_in_schema=False)


def window_options(path: Path) -> list[dict[str, str]]:
    """Window choices for the viewer: the file default, then the display pipeline's presets.

    Each option is ``{"label", "value"}`` with ``value`` the render endpoint's ``window`` parameter (empty:
    the file's own VOI). An unreadable file leaves only the default (the render endpoint reports the error).
    """
    from cxrlab.dicom.display import apply_modality_lut, window_presets  # heavy: numpy and the decoders

    options = [{"label": "File default", "value": ""}]
    try:
        ds = read_dataset(path)
        presets = window_presets(ds, apply_modality_lut(read_pixels(ds, path=path), ds))
    except FileError:
        return options
    for preset in presets:
        options.append({"label": str(preset["name"]), "value": f"{preset['center']:g},{preset['width']:g}"})
    return options


@router.get("/", response_class=HTMLResponse)
def page_index(
    request: Request,
    session: SessionDep,
    workspace: WorkspaceDep,
    state: ImageState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> HTMLResponse:
    """The image grid."""
    rows = list_images(session, state=state, limit=limit, offset=offset)
    images = [ImagePublic.model_validate(row) for row in rows]
    context = {
        "project": workspace.settings.project,
        "images": images,
        "total": count_images(session, state),
        "state": state,
        "states": list(ImageState),
        "limit": limit,
        "offset": offset,
    }
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def page_image(request: Request, image_id: str, session: SessionDep, workspace: WorkspaceDep) -> HTMLResponse:
    """One image, rendered large, with window presets."""
    image = get_image(session, image_id)
    presets = window_options(deid_file(workspace, image))
    context = {
        "project": workspace.settings.project,
        "image": ImagePublic.model_validate(image),
        "presets": presets,
    }
    return templates.TemplateResponse(request, "image.html", context)
