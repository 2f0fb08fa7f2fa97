"""HTML pages: ``/login``, ``GET /`` (a grid of the images the user may see), ``GET /images/{image_id}`` (one
image, large) and ``GET /projects/{id}/dashboard`` (admins). Without a session a page redirects to ``/login``.

Plain Jinja2 templates and one ES module from ``static/``; nothing is loaded from the internet. Images come
from the render endpoint, so the pages never see a file path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from cxrlab.annotate.deps import OptionalUser, SessionDep, WorkspaceDep
from cxrlab.annotate.errors import NotFoundError
from cxrlab.annotate.routers.images import ImagePublic, count_images, deid_file, get_image, list_images
from cxrlab.annotate.services import dashboard, projects
from cxrlab.catalog.models import ImageState, UserRole
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


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def page_login(request: Request, workspace: WorkspaceDep) -> HTMLResponse:
    """The login form (posts JSON to ``/api/auth/login`` from ``static/login.js``)."""
    return templates.TemplateResponse(request, "login.html", {"project": workspace.settings.project, "user": None})


@router.get("/", response_class=HTMLResponse)
def page_index(
    request: Request,
    user: OptionalUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    state: ImageState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    """The image grid (the images the user may see) and the user's projects."""
    if user is None:
        return _login_redirect(request)
    rows = list_images(session, state=state, limit=limit, offset=offset, user=user)
    images = [ImagePublic.model_validate(row) for row in rows]
    context = {
        "project": workspace.settings.project,
        "user": user,
        "projects": projects.list_projects(session, user=user),
        "images": images,
        "total": count_images(session, state, user),
        "state": state,
        "states": list(ImageState),
        "limit": limit,
        "offset": offset,
    }
    return templates.TemplateResponse(request, "index.html", context)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def page_image(
    request: Request, image_id: str, user: OptionalUser, session: SessionDep, workspace: WorkspaceDep
) -> Response:
    """One image, rendered large, with window presets."""
    if user is None:
        return _login_redirect(request)
    image = get_image(session, image_id, user)
    presets = window_options(deid_file(workspace, image))
    context = {
        "project": workspace.settings.project,
        "user": user,
        "image": ImagePublic.model_validate(image),
        "presets": presets,
    }
    return templates.TemplateResponse(request, "image.html", context)


@router.get("/projects/{project_id}/dashboard", response_class=HTMLResponse)
def page_dashboard(
    request: Request, project_id: int, user: OptionalUser, session: SessionDep, workspace: WorkspaceDep
) -> Response:
    """Progress, throughput, agreement and export links of a project (admins)."""
    if user is None:
        return _login_redirect(request)
    if user.role is not UserRole.ADMIN:
        raise NotFoundError(f"project {project_id} not found")
    project = projects.get_project(session, project_id)
    context = {
        "project": workspace.settings.project,
        "user": user,
        "p": project,
        "progress": dashboard.progress(session, project=project),
        "agreement": dashboard.agreement(session, project=project),
        "csv_names": ["annotations_train.csv", "image_labels_train.csv", "annotations_test.csv",
                      "image_labels_test.csv"],
    }
    return templates.TemplateResponse(request, "dashboard.html", context)
