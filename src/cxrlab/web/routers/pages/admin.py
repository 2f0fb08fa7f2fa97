"""Admin pages for what the CLI does: ``GET /admin/users`` (add, disable, enable, reset a password; reader ids),
``GET /admin/projects`` (create from a preset or an uploaded YAML schema; progress per project) and
``GET /admin/projects/{id}`` (assignment: test fraction, which readers and reviewers, gold rate; gold-standard
images; model-assisted reading).

The pages show what the library functions return; their forms post to the REST API (``static/admin.js``),
which calls the same library functions as the CLI and records every action as an event with its author (the
admin). Annotators and reviewers get the 403 page (HTML, not the API's JSON).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from cxrlab.annotate import gold, progress, projects, users
from cxrlab.annotate.assignment import assignable_count
from cxrlab.catalog.models import User, UserRole
from cxrlab.models.suggest import suggestion_counts
from cxrlab.schemas import SCHEMAS
from cxrlab.web.deps import IdPath, SessionDep, WorkspaceDep
from cxrlab.web.pages import PAGE_TAG, PageAdmin, render

__all__ = ["router"]

router = APIRouter(tags=[PAGE_TAG], include_in_schema=False)


@router.get("/admin/users", response_class=HTMLResponse)
def page_users(request: Request, admin: PageAdmin, session: SessionDep, workspace: WorkspaceDep) -> Response:
    """Every user with role, reader id and state; forms to add a user, disable/enable one, set a password."""
    return render(request, "admin_users.html", workspace=workspace, user=admin, users=users.list_users(session),
                  roles=[r.value for r in UserRole])


@router.get("/admin/projects", response_class=HTMLResponse)
def page_projects(request: Request, admin: PageAdmin, session: SessionDep, workspace: WorkspaceDep) -> Response:
    """Every project with its progress; the form that creates one from a preset or an uploaded YAML schema."""
    rows = [(p, progress.progress(session, project=p)) for p in projects.list_projects(session, user=admin)]
    return render(request, "admin_projects.html", workspace=workspace, user=admin, rows=rows,
                  presets=sorted(SCHEMAS), default_schema=workspace.settings.schema)


@router.get("/admin/projects/{project_id}", response_class=HTMLResponse)
def page_project(
    request: Request, project_id: IdPath, admin: PageAdmin, session: SessionDep, workspace: WorkspaceDep
) -> Response:
    """One project: assignment of the images waiting (readers, reviewers, test fraction, gold rate), its gold
    images, its model-assisted reading setting (a detector run, off by default), and its progress."""
    project = projects.get_project(session, project_id)
    active = list(session.scalars(select(User).where(User.active.is_(True)).order_by(User.id)))
    context = {
        "p": project,
        "waiting": assignable_count(session),
        "annotators": [u for u in active if u.role is UserRole.ANNOTATOR],
        "reviewers": [u for u in active if u.role is UserRole.REVIEWER],
        "gold": gold.list_gold(session, project=project),
        "progress": progress.progress(session, project=project),
        "suggest": suggestion_counts(session, project=project),
    }
    return render(request, "admin_project.html", workspace=workspace, user=admin, **context)
