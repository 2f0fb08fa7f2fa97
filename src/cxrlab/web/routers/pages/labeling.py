"""HTML pages: ``/login``, ``GET /`` (the user's projects and a grid of the images the user may see),
``GET /images/{image_id}`` (one image, large), ``GET /projects/{id}/read`` (the reading viewer),
``GET /projects/{id}/review`` (the next open review task), ``GET /reviews/{task_id}`` (the review page),
``GET /history`` (the reader's own submitted reads, newest first, to reopen) and ``GET /projects/{id}/dashboard``
(admins). Without a session a page redirects to ``/login``.

The viewer pages only hand the ES modules their ids; everything else comes from the REST API, so the pages
hold no business rule.

Plain Jinja2 templates and one ES module from ``static/``; nothing is loaded from the internet. Images come
from the render endpoint, so the pages never see a file path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from cxrlab.annotate import history, progress, projects, tasks
from cxrlab.annotate.images import count_images, deid_file, get_image, list_images, shown_state
from cxrlab.annotate.reasons import NOTE_MAX_CHARS, UNUSABLE_REASONS
from cxrlab.catalog.models import ImageState, TaskKind, TaskState, UserRole
from cxrlab.consensus import project_agreement, reader_quality
from cxrlab.dicom.io import read_dataset, read_pixels
from cxrlab.errors import FileError
from cxrlab.filter.triage import queue_counts
from cxrlab.web.deps import VERIFIER_ROLES, IdPath, IdQuery, Offset, SessionDep, WorkspaceDep
from cxrlab.web.models import ImagePublic
from cxrlab.web.pages import PAGE_TAG, PageUser, page_admin, render

__all__ = ["router", "window_options"]

router = APIRouter(tags=[PAGE_TAG], include_in_schema=False)


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


@router.get("/login", response_class=HTMLResponse)
def page_login(request: Request, workspace: WorkspaceDep) -> HTMLResponse:
    """The login form (posts JSON to ``/api/auth/login`` from ``static/login.js``)."""
    return render(request, "login.html", workspace=workspace, user=None)


@router.get("/", response_class=HTMLResponse)
def page_index(
    request: Request,
    user: PageUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    state: ImageState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Offset = 0,
) -> Response:
    """The image grid (the images the user may see) and the user's projects."""
    rows = list_images(session, state=state, limit=limit, offset=offset, user=user)
    images = [ImagePublic.model_validate(row).model_copy(update={"state": shown_state(row, user)}) for row in rows]
    mine = projects.list_projects(session, user=user)
    open_tasks = {
        (p.id, kind.value): sum(tasks.counts_by_state(session, user=user, project_id=p.id, kind=kind).get(s.value, 0)
                                for s in tasks.ACTIVE)
        for p in mine for kind in (TaskKind.READ, TaskKind.REVIEW)
    }
    context = {
        "projects": mine,
        "open_tasks": open_tasks,
        "images": images,
        "total": count_images(session, state, user),
        "state": state,
        "states": list(ImageState) if user.role is UserRole.ADMIN else [],
        "limit": limit,
        "offset": offset,
        "triage": queue_counts(session) if user.role in VERIFIER_ROLES else None,
    }
    return render(request, "index.html", workspace=workspace, user=user, **context)


@router.get("/images/{image_id}", response_class=HTMLResponse)
def page_image(
    request: Request, image_id: str, user: PageUser, session: SessionDep, workspace: WorkspaceDep
) -> Response:
    """One image, rendered large, with window presets."""
    image = get_image(session, image_id, user)
    presets = window_options(deid_file(workspace, image))
    context = {
        "image": ImagePublic.model_validate(image).model_copy(update={"state": shown_state(image, user)}),
        "presets": presets,
    }
    return render(request, "image.html", workspace=workspace, user=user, **context)


@router.get("/projects/{project_id}/dashboard", response_class=HTMLResponse)
def page_dashboard(
    request: Request, project_id: IdPath, session: SessionDep, workspace: WorkspaceDep, user: PageUser
) -> Response:
    """Progress, throughput, agreement and export links of a project (admins; others get the 403 page)."""
    project = projects.get_project(session, project_id)
    user = page_admin(user)
    context = {
        "p": project,
        "progress": progress.progress(session, project=project),
        "agreement": project_agreement(session, project=project),
        "quality": reader_quality(session, project=project),
        "triage": queue_counts(session),
        "csv_names": ["annotations_train.csv", "image_labels_train.csv", "annotations_test.csv",
                      "image_labels_test.csv"],
    }
    return render(request, "dashboard.html", workspace=workspace, user=user, **context)


#: Rows per page of the history.
HISTORY_PAGE = 50


@router.get("/history", response_class=HTMLResponse)
def page_history(
    request: Request,
    user: PageUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    project_id: IdQuery = None,
    offset: Offset = 0,
) -> Response:
    """The user's submitted reads, newest first (the same list as ``GET /api/tasks?state=submitted&mine=1``),
    each with its reopen button or the reason it is frozen."""
    views, total = tasks.list_tasks(session, user=user, project_id=project_id, kind=TaskKind.READ,
                                    states=(TaskState.SUBMITTED,), limit=HISTORY_PAGE, offset=offset,
                                    newest_first=True)
    frozen = history.freeze_reasons(session, views)
    context = {"views": views, "frozen": frozen, "total": total, "offset": offset, "limit": HISTORY_PAGE,
               "project_id": project_id}
    return render(request, "history.html", workspace=workspace, user=user, **context)


#: Long side of the 16-bit array the viewer windows (``?max_size=`` on the page overrides it).
VIEWER_MAX_SIZE = 1024

ViewerSize = Annotated[int, Query(ge=256, le=4096, description="Long side of the windowed array")]


@router.get("/projects/{project_id}/read", response_class=HTMLResponse)
def page_read(
    request: Request,
    project_id: IdPath,
    user: PageUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    task: IdQuery = None,
    max_size: ViewerSize = VIEWER_MAX_SIZE,
) -> Response:
    """The reading viewer over the user's own queue in a project (``?task=`` opens one task first)."""
    project = projects.get_project(session, project_id, user=user)
    context = {"p": project, "task_id": task,
               "max_size": max_size, "unusable_reasons": UNUSABLE_REASONS, "note_max": NOTE_MAX_CHARS}
    return render(request, "read.html", workspace=workspace, user=user, **context)


@router.get("/projects/{project_id}/review", response_class=HTMLResponse)
def page_next_review(
    request: Request,
    project_id: IdPath,
    user: PageUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    skip: IdQuery = None,
) -> Response:
    """Open the user's next open review task of a project, or say that none is open.

    ``?skip=`` (the review page's "Next review" link names its own task) prefers another open review; the
    skipped one is opened only when it is the last one open.
    """
    project = projects.get_project(session, project_id, user=user)
    views, counts = tasks.next_tasks(session, user=user, project_id=project.id, kind=TaskKind.REVIEW, limit=2)
    others = [v for v in views if v.task.id != skip]
    if views:
        return RedirectResponse(f"/reviews/{(others or views)[0].task.id}", status_code=303)
    context = {"p": project, "counts": counts}
    return render(request, "review_none.html", workspace=workspace, user=user, **context)


@router.get("/reviews/{task_id}", response_class=HTMLResponse)
def page_review(
    request: Request,
    task_id: IdPath,
    user: PageUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    max_size: ViewerSize = VIEWER_MAX_SIZE,
) -> Response:
    """The review page of one of the user's review tasks (readers' marks come from ``/api/reviews``)."""
    view = tasks.get_task(session, user=user, task_id=task_id, kind=TaskKind.REVIEW)
    context = {"p": view.project, "task_id": task_id,
               "max_size": max_size}
    return render(request, "review.html", workspace=workspace, user=user, **context)
