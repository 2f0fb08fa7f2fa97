"""``/api/tasks``: the caller's own queue — next tasks (with prefetch), one task, draft autosave, submit,
set aside as unusable — and the caller's history (``?state=submitted&mine=1``, newest first) with reopen. Another
user's task is 404: blinding is a server rule. Nothing here tells a gold-standard task from another."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response

from cxrlab.annotate import history, tasks
from cxrlab.catalog.models import TaskKind, TaskState
from cxrlab.consensus import suggest_review
from cxrlab.models.suggest import task_suggestions
from cxrlab.web.deps import AuthFirstRoute, IdPath, IdQuery, Offset, ReaderUser, SessionDep
from cxrlab.web.models import (
    QC_422,
    NextOut,
    SaveIn,
    SuggestionsOut,
    TaskOut,
    UnusableIn,
    VersionIn,
    error,
    errors,
    task_out,
)

router = APIRouter(prefix="/api/tasks", tags=["tasks"], responses=errors(401, 403), route_class=AuthFirstRoute)

WRITE_ERRORS = {404: error(404, "Not your task"), 409: error(409, "Stale version or task closed"), 422: QC_422}


@router.get("", response_model=list[TaskOut])
def api_list_tasks(
    user: ReaderUser,
    session: SessionDep,
    response: Response,
    project_id: IdQuery = None,
    kind: TaskKind | None = None,
    state: TaskState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
    mine: Annotated[bool, Query(description=(
        "1: the caller's history, newest first (``?state=submitted&mine=1``: the reads the caller may reopen "
        "until they freeze). This route lists only the caller's own tasks either way"))] = False,
) -> list[TaskOut]:
    """The caller's tasks in queue order (``mine=1``: newest first); ``X-Total-Count`` gives the total. Submitted
    reads say whether they are ``frozen`` (can no longer be reopened) and why."""
    views, total = tasks.list_tasks(session, user=user, project_id=project_id, kind=kind,
                                    states=(state,) if state else None, limit=limit, offset=offset,
                                    newest_first=mine)
    response.headers["X-Total-Count"] = str(total)
    frozen = history.freeze_reasons(session, views)
    return [task_out(v, frozen[v.task.id]) for v in views]


@router.get("/next", response_model=NextOut)
def api_next_tasks(
    user: ReaderUser,
    session: SessionDep,
    project_id: IdQuery = None,
    kind: TaskKind | None = None,
    limit: Annotated[int, Query(ge=1, le=20, description="How many to return (1 to show + the rest to prefetch)")] = 3,
) -> NextOut:
    """The next open tasks of the caller's queue (seeded shuffle), drafts included; remaining count."""
    views, counts = tasks.next_tasks(session, user=user, project_id=project_id, kind=kind, limit=limit)
    remaining = sum(counts.get(s.value, 0) for s in tasks.ACTIVE)
    return NextOut(tasks=[task_out(v) for v in views], remaining=remaining, counts=counts)


@router.get("/{task_id}", response_model=TaskOut, responses=errors(404))
def api_get_task(task_id: IdPath, user: ReaderUser, session: SessionDep) -> TaskOut:
    """One of the caller's tasks with the caller's own marks."""
    view = tasks.get_task(session, user=user, task_id=task_id)
    return task_out(view, history.freeze_reason(session, view))


@router.get("/{task_id}/suggestions", response_model=SuggestionsOut, responses={
    404: error(404, "Not your read task, or its project has no model suggestions")})
def api_suggestions(task_id: IdPath, user: ReaderUser, session: SessionDep, request: Request) -> SuggestionsOut:
    """Model-assisted reading: the detector's boxes on the image of the caller's own read task, each with the id
    (``sug-<k>``) a box accepted from it takes. Answers at once: ``pending`` while the image waits for the
    background worker (which is asked to predict it next), never another reader's marks."""
    found = task_suggestions(session, user=user, task_id=task_id)
    if found.status == "pending":
        request.app.state.suggestions.notify(found.image_pk)
    boxes = [{"id": f"sug-{k}", **b} for k, b in enumerate(found.boxes)]
    return SuggestionsOut(status=found.status, model=found.model, boxes=boxes)


@router.put("/{task_id}/draft", response_model=TaskOut, responses=WRITE_ERRORS)
def api_save_draft(task_id: IdPath, body: SaveIn, user: ReaderUser, session: SessionDep) -> TaskOut:
    """Autosave unfinished marks (boxes checked for class and geometry; the global-label rule waits for submit).
    An undo or redo (``cause``) is saved the same way: a new version, never a rewrite of history."""
    return task_out(tasks.save_draft(session, user=user, task_id=task_id, version=body.version,
                                     marks=body.to_marks(), cause=body.cause))


@router.post("/{task_id}/submit", response_model=TaskOut, responses=WRITE_ERRORS)
def api_submit(task_id: IdPath, body: SaveIn, user: ReaderUser, session: SessionDep) -> TaskOut:
    """Submit the read (all QC rules). Idempotent: the same submission again returns the stored task."""
    view = tasks.submit_task(session, user=user, task_id=task_id, version=body.version, suggest=suggest_review,
                             marks=body.to_marks())
    return task_out(view, history.freeze_reason(session, view))


@router.post("/{task_id}/reopen", response_model=TaskOut, responses={
    404: error(404, "Not your read task"),
    409: error(409, "Frozen (rule read_frozen: the image's review is open or finished, or a release holds it; "
                    "detail says which), not a submitted read (rule not_submitted), or a stale version")})
def api_reopen(task_id: IdPath, body: VersionIn, user: ReaderUser, session: SessionDep) -> TaskOut:
    """Reopen one of the caller's submitted reads to change it: it becomes a draft again (save and submit it as
    any draft). Every submitted version stays in the audit events; a release takes the last one."""
    return task_out(history.reopen_task(session, user=user, task_id=task_id, version=body.version))


@router.post("/{task_id}/unusable", response_model=TaskOut, responses=WRITE_ERRORS)
def api_unusable(task_id: IdPath, body: UnusableIn, user: ReaderUser, session: SessionDep) -> TaskOut:
    """Set the image aside as unusable with a reason code and an optional note: it leaves every reader's
    queue. An unknown code is 422 with the allowed codes listed."""
    return task_out(tasks.set_unusable(session, user=user, task_id=task_id, version=body.version,
                                       reason=body.reason, note=body.note))
