"""A reader's work: the queue, draft autosave, submit, and setting an image aside as unusable.

Blinding is enforced here and in the routers' output schemas: every function takes the acting user and finds
only that user's own tasks (anything else is "not found"); a task never carries another reader's marks.

Saves use optimistic versioning (:func:`cxrlab.annotate.writes.bump_version`): a save names the version
it started from and is refused with :class:`ConflictError` when the task moved on. Submit is idempotent: sending
the same submission again answers with the stored result. A submission is committed before the response is
sent, so a killed server loses nothing that was acknowledged. The submitted read lands in the ``readings``
tables with ``rad_id`` = the user's reader id, so the consensus and export stages see it; every submitted version
is also kept whole in its ``reading.submit`` event (a reopened read, :mod:`cxrlab.annotate.history`, replaces the
``readings`` row when it is submitted again: a release takes the last version).

A gold-standard task (``Task.gold``, :mod:`cxrlab.annotate.gold`) answers exactly like any other task: the reader
cannot tell. Its read is checked by the same QC rules but never lands in ``readings``, never opens a review and
never moves its image's state; setting it aside as unusable closes only that task.

An edit sent with ``cause="undo"`` or ``"redo"`` (the viewer's Ctrl+Z / Ctrl+Shift+Z) is a save like any other:
a new version with its audit rows, which carry the cause. Undo never rewrites history.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from sqlalchemy import Select, bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from cxrlab.annotate.marks import EDIT_CAUSES, Marks, audit_rows, edit_cause, keep_provenance
from cxrlab.annotate.projects import project_schema
from cxrlab.annotate.readings import QCError, check_reading, record_reading
from cxrlab.annotate.reasons import NOTE_MAX_CHARS, UNUSABLE_CODES
from cxrlab.annotate.reviews import Suggest, open_review_if_ready
from cxrlab.annotate.writes import bump_version, insert_events, lock_row, transaction
from cxrlab.catalog.models import (
    Event,
    Image,
    ImageState,
    Project,
    Review,
    Suggestion,
    Task,
    TaskKind,
    TaskState,
    User,
)
from cxrlab.errors import ConflictError, NotFoundError

__all__ = ["ACTIVE", "EDIT_CAUSES", "TaskView", "check_marks", "counts_by_state", "get_task", "list_tasks",
           "next_tasks", "save_draft", "set_unusable", "submit_task", "unusable_reason"]

#: Task states that are still in the user's queue.
ACTIVE = (TaskState.PENDING, TaskState.DRAFT)
DONE = (TaskState.SUBMITTED, TaskState.UNUSABLE, TaskState.CANCELLED)
#: Key of the unusable note in ``tasks.draft`` (see :func:`unusable_reason`).
_NOTE_KEY = "unusable_note"


@dataclass
class TaskView:
    """A task with the image it is about (what the routers turn into their output schema)."""

    task: Task
    image: Image
    project: Project

    @property
    def marks(self) -> Marks:
        return Marks.from_json(self.task.draft)


def _now() -> datetime:
    return datetime.now(UTC)


def _with_image(stmt: Select) -> Select:
    """Select tasks with their image and project in one query."""
    return stmt.join(Image, Image.id == Task.image_pk).join(Project, Project.id == Task.project_id)


# The queries of every request of a reader's loop are built once per shape (functools.cache) with bound
# parameters: SQLAlchemy then neither rebuilds the statement nor its cache key at each call.


@cache
def _task_stmt(with_kind: bool) -> Select:
    stmt = _with_image(select(Task, Image, Project)).where(Task.id == bindparam("task_id"),
                                                          Task.user_id == bindparam("user_id"))
    if with_kind:
        stmt = stmt.where(Task.kind == bindparam("kind"))
    return stmt.execution_options(populate_existing=True)


def get_task(session: Session, *, user: User, task_id: int, kind: TaskKind | None = None) -> TaskView:
    """The user's own task *task_id* (of *kind* if given); ``NotFoundError`` for anyone else's."""
    params = {"task_id": task_id, "user_id": user.id} | ({} if kind is None else {"kind": kind})
    row = session.execute(_task_stmt(kind is not None), params).first()
    if row is None:
        raise NotFoundError(f"task {task_id} not found")
    return TaskView(*row)


def _reloaded(session: Session, view: TaskView) -> TaskView:
    """*view* with its task row read again (after a write)."""
    session.refresh(view.task)
    return view


def list_tasks(
    session: Session,
    *,
    user: User,
    project_id: int | None = None,
    kind: TaskKind | None = None,
    states: tuple[TaskState, ...] | None = None,
    limit: int = 100,
    offset: int = 0,
    newest_first: bool = False,
) -> tuple[list[TaskView], int]:
    """The user's tasks in queue order (``newest_first``: the user's history, the latest submitted or changed
    first), and their total count."""
    stmt = select(Task).where(Task.user_id == user.id)
    if project_id is not None:
        stmt = stmt.where(Task.project_id == project_id)
    if kind is not None:
        stmt = stmt.where(Task.kind == kind)
    if states:
        stmt = stmt.where(Task.state.in_(states))
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    return _page(session, stmt, limit, offset, newest_first), total


def _page(session: Session, stmt: Select, limit: int, offset: int = 0, newest_first: bool = False) -> list[TaskView]:
    stmt = _with_image(stmt.add_columns(Image, Project))
    if newest_first:
        stmt = stmt.order_by(func.coalesce(Task.submitted_at, Task.updated_at).desc(), Task.id.desc())
    else:
        stmt = stmt.order_by(Task.project_id, Task.order_key, Task.id)
    return [TaskView(*row) for row in session.execute(stmt.limit(limit).offset(offset))]


def next_tasks(
    session: Session, *, user: User, project_id: int | None = None, kind: TaskKind | None = None, limit: int = 3
) -> tuple[list[TaskView], dict[str, int]]:
    """The next *limit* open tasks of the user's queue (drafts and pending, in the seeded order), for the
    viewer to show the first and prefetch the rest; and the user's task counts per state (in that project)."""
    params = _filters(user, project_id, kind) | {"limit": limit}
    views = [TaskView(*row) for row in session.execute(_next_stmt(project_id is not None, kind is not None), params)]
    return views, counts_by_state(session, user=user, project_id=project_id, kind=kind)


def _filters(user: User, project_id: int | None, kind: TaskKind | None) -> dict:
    """The bound parameters of :func:`_filtered`."""
    params: dict = {"user_id": user.id}
    if project_id is not None:
        params["project_id"] = project_id
    if kind is not None:
        params["kind"] = kind
    return params


def _filtered(stmt: Select, with_project: bool, with_kind: bool) -> Select:
    """*stmt* restricted to one user's tasks (in a project, of a kind), as bound parameters."""
    stmt = stmt.where(Task.user_id == bindparam("user_id"))
    if with_project:
        stmt = stmt.where(Task.project_id == bindparam("project_id"))
    if with_kind:
        stmt = stmt.where(Task.kind == bindparam("kind"))
    return stmt


@cache
def _next_stmt(with_project: bool, with_kind: bool) -> Select:
    stmt = _filtered(select(Task, Image, Project), with_project, with_kind).where(Task.state.in_(ACTIVE))
    return _with_image(stmt).order_by(Task.project_id, Task.order_key, Task.id).limit(bindparam("limit"))


@cache
def _counts_stmt(with_project: bool, with_kind: bool) -> Select:
    return _filtered(select(Task.state, func.count(Task.id)), with_project, with_kind).group_by(Task.state)


def _refused(session: Session, task: Task) -> None:
    """Raise the ConflictError that explains why a conditional update of *task* matched no row."""
    session.refresh(task)
    _editable(task)
    raise ConflictError("your copy is out of date (saved elsewhere meanwhile); reload the task",
                        current_version=task.version)


def _editable(task: Task) -> None:
    if task.state is TaskState.SUBMITTED:
        raise ConflictError("task already submitted", current_version=task.version)
    if task.state in (TaskState.UNUSABLE, TaskState.CANCELLED):
        raise ConflictError(
            "the image was set aside as unusable; it left every reader's queue", current_version=task.version
        )
    if task.state is TaskState.WAITING:
        raise ConflictError("task is not open yet", current_version=task.version)


def _provenance(session: Session, view: TaskView, old: Marks, marks: Marks) -> Marks:
    """*marks* with the provenance of each box decided here (:func:`cxrlab.annotate.marks.keep_provenance`):
    a box accepted from the model's suggestions must name one of the image's stored suggestions of the project's
    current model (model-assisted reading); else ``QCError`` (rule ``unknown_suggestion``)."""
    known = {b.id for b in old.boxes}
    model = view.project.suggest_model_sha256
    suggested = None
    if model and any(b.source and b.id not in known for b in marks.boxes):
        suggested = session.scalar(select(Suggestion.boxes).where(Suggestion.image_pk == view.task.image_pk,
                                                                  Suggestion.model_sha256 == model))
    try:
        return keep_provenance(old, marks, suggested=suggested, model=model)
    except ValueError as exc:
        raise QCError(str(exc), rule="unknown_suggestion") from None


def _context(task: Task, user: User, cause: str) -> dict:
    """The audit context of a save: the task, the reader and (undo, redo) why it was sent."""
    return {"task_id": task.id, "rad_id": user.rad_id} | edit_cause(cause)


def save_draft(
    session: Session, *, user: User, task_id: int, version: int, marks: Marks, cause: str = "edit"
) -> TaskView:
    """Autosave the user's unfinished work on a read task.

    *cause* (:data:`EDIT_CAUSES`) says whether the save is an edit or the viewer's undo/redo; either way it is a
    new version with its audit rows.

    Raises
    ------
    NotFoundError
        Not the user's read task.
    ConflictError
        *version* is stale, or the task is no longer editable (submitted, unusable).
    QCError
        Unknown label or class, box outside the image or too small (the rules that hold for drafts).
    """
    view = get_task(session, user=user, task_id=task_id, kind=TaskKind.READ)
    marks = marks.normalized()
    schema = project_schema(view.project)
    check_reading(marks.reading(view.image.image_id or "", user.rad_id), schema, rows=view.image.rows,
                  columns=view.image.columns, partial=True)
    task = view.task
    # The conditional UPDATE is the check: it succeeds only while the row still has the version (and hence
    # the draft) read above, so ``old`` is exactly what this save replaces.
    old = Marks.from_json(task.draft) if task.version == version else Marks()
    marks = _provenance(session, view, old, marks)
    events = audit_rows(image_pk=task.image_pk, author=user.username, stage="annotate", old=old, new=marks,
                        context=_context(task, user, cause))
    with transaction(session):
        ok = task.state in ACTIVE and bump_version(
            session, Task, task.id, version, task, draft=marks.to_json(), state=TaskState.DRAFT, updated_at=_now()
        )
        if not ok:
            _refused(session, task)
        insert_events(session, events)
    return view


def submit_task(
    session: Session, *, user: User, task_id: int, version: int, marks: Marks, suggest: Suggest
) -> TaskView:
    """Submit a read: full QC, then the read lands in ``readings`` and leaves the queue.

    Idempotent: the same submission sent again (e.g. a retry after a lost response) returns the stored task.
    When the last reader of the image submits, the image becomes ``labeled`` and, for a test image, its review
    opens with the proposal *suggest* makes from the readers' marks.

    Parameters
    ----------
    suggest : Suggest
        The review's suggested consensus (:data:`cxrlab.annotate.reviews.Suggest`); the shells pass
        :func:`cxrlab.consensus.suggest_review`.

    Raises
    ------
    NotFoundError, ConflictError, QCError
        As for :func:`save_draft`; QC applies every rule (a global label, "No finding" exclusive, ...).
    """
    view = get_task(session, user=user, task_id=task_id, kind=TaskKind.READ)
    marks = marks.normalized()
    if view.task.state is TaskState.SUBMITTED and Marks.from_json(view.task.draft).same_content(marks):
        return view
    schema = project_schema(view.project)
    image_id = view.image.image_id or ""
    check_reading(marks.reading(image_id, user.rad_id), schema, rows=view.image.rows, columns=view.image.columns)
    task = view.task
    old = Marks.from_json(task.draft) if task.version == version else Marks()  # as in save_draft
    marks = _provenance(session, view, old, marks)
    context = {"task_id": task.id, "rad_id": user.rad_id}
    events = audit_rows(image_pk=task.image_pk, author=user.username, stage="annotate", old=old, new=marks,
                        context=context)
    # The whole version (labels and boxes; the comment is free text and stays on the task) in the submit event:
    # every submitted version of a read stays readable in ``events`` (cxrlab.annotate.history.read_versions).
    snapshot = {k: v for k, v in marks.to_json().items() if k != "comment"}
    events.append({"image_pk": task.image_pk, "stage": "annotate", "action": "reading.submit",
                   "author": user.username, "detail": {**context, "project": view.project.name,
                                                       "version": version + 1, "marks": snapshot}
                   | ({"gold": True} if task.gold else {})})
    if task.gold:
        _submit_gold(session, view, version, marks, events)
        return view
    with transaction(session):
        # serialises the last readers of one image (see _after_read); its state is the current one
        (image_state,) = lock_row(session, Image, task.image_pk, Image.state)
        _close(session, task, version, marks)
        set_committed_value(view.image, "state", image_state)
        record_reading(session, schema, marks.reading(image_id, user.rad_id), author=user.username,
                       mark_labeled=False, image=view.image, events=events)
        _after_read(session, view.project, view.image, suggest)
    return view


def _close(session: Session, task: Task, version: int, marks: Marks) -> None:
    """Set *task* ``submitted`` with *marks* if it is still open at *version*, else raise why not (inside the
    caller's transaction)."""
    now = _now()
    ok = task.state in ACTIVE and bump_version(
        session, Task, task.id, version, task, draft=marks.to_json(), state=TaskState.SUBMITTED,
        updated_at=now, submitted_at=now,
    )
    if not ok:
        _refused(session, task)


def _submit_gold(session: Session, view: TaskView, version: int, marks: Marks, events: list[dict]) -> None:
    """Submit a gold-standard read: the task closes and the events are kept; nothing reaches ``readings``, the
    image or its review (gold reads never enter a release or the consensus)."""
    task = view.task
    with transaction(session):
        _close(session, task, version, marks)
        insert_events(session, events)


def set_unusable(
    session: Session, *, user: User, task_id: int, version: int, reason: str, note: str | None = None
) -> TaskView:
    """Set the task's image aside as unusable (VinDr-CXR: images unfit for reading are excluded).

    The image leaves every reader's queue (their open tasks are cancelled), its review is cancelled, its catalog
    state becomes ``filtered_out`` with the reason code, and it shows in the project dashboard. A gold-standard
    task closes alone (its image is decided already; nothing else changes), with the same answer.

    Parameters
    ----------
    reason : str
        One of :data:`cxrlab.annotate.reasons.UNUSABLE_CODES`.
    note : str, optional
        Free text (at most :data:`~cxrlab.annotate.reasons.NOTE_MAX_CHARS` characters). It may hold PHI, so it
        is kept on the task row only (``tasks.draft["unusable_note"]``, see :func:`unusable_reason`): never in
        ``images.state_reason``, the audit event, the dashboard or a default export.

    Raises
    ------
    QCError
        Unknown reason code (``rule="unknown_reason"``; the message lists the codes and never repeats what was
        sent) or a note that is too long (``rule="note_too_long"``).
    NotFoundError, ConflictError
        As for :func:`save_draft`.
    """
    code = (reason or "").strip()
    if code not in UNUSABLE_CODES:
        raise QCError("give one of the unusable reasons: " + ", ".join(UNUSABLE_CODES), rule="unknown_reason")
    note = (note or "").strip() or None
    if note is not None and len(note) > NOTE_MAX_CHARS:
        raise QCError(f"the note must have at most {NOTE_MAX_CHARS} characters", rule="note_too_long")
    view = get_task(session, user=user, task_id=task_id, kind=TaskKind.READ)
    with transaction(session):
        task = view.task
        lock_row(session, Image, task.image_pk)
        draft = {k: v for k, v in (task.draft or {}).items() if k != _NOTE_KEY}
        if note is not None:
            draft[_NOTE_KEY] = note
        if not (task.state in ACTIVE and bump_version(session, Task, task.id, version, state=TaskState.UNUSABLE,
                                                      reason=code, draft=draft or None, updated_at=_now())):
            _refused(session, task)
        if task.gold:
            session.add(Event(image_pk=task.image_pk, stage="annotate", action="gold.unusable", author=user.username,
                              detail={"task_id": task.id, "rad_id": user.rad_id, "reason": code, "gold": True}))
        else:
            _set_image_aside(session, task, user, code)
    return _reloaded(session, view)


def _set_image_aside(session: Session, task: Task, user: User, code: str) -> None:
    """The rest of :func:`set_unusable` for a normal task: every queue, the review and the image."""
    session.execute(
        update(Task)
        .where(Task.project_id == task.project_id, Task.image_pk == task.image_pk, Task.id != task.id,
               Task.gold.is_(False), Task.state.in_((TaskState.PENDING, TaskState.DRAFT, TaskState.WAITING)))
        .values(state=TaskState.CANCELLED, version=Task.version + 1, updated_at=_now())
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Review).where(Review.project_id == task.project_id, Review.image_pk == task.image_pk)
        .values(state="unusable", version=Review.version + 1)
        .execution_options(synchronize_session=False)
    )
    image = session.get(Image, task.image_pk)
    assert image is not None
    image.state = ImageState.FILTERED_OUT
    image.state_reason = f"unusable ({user.rad_id}): {code}"
    session.add(Event(image_pk=task.image_pk, stage="annotate", action="image.unusable", author=user.username,
                      detail={"task_id": task.id, "rad_id": user.rad_id, "reason": code}))


def unusable_reason(task: Task) -> tuple[str | None, str | None]:
    """The reason code and the free-text note of an unusable *task* (``(None, None)`` for other tasks).

    The note lives in the task's ``draft`` JSON under ``"unusable_note"`` (a task set aside is closed, so its
    draft no longer changes; no new column was needed). A task set aside before reasons became codes holds the
    reader's free text in ``reason``: it reads as code ``other`` with that text as the note, so the text still
    stays out of everything that shows only codes.
    """
    if task.reason is None:
        return None, None
    if task.reason in UNUSABLE_CODES:
        return task.reason, (task.draft or {}).get(_NOTE_KEY)
    return "other", task.reason


_READ_STATES = select(Task.state).where(Task.project_id == bindparam("project_id"),
                                        Task.image_pk == bindparam("image_pk"), Task.kind == TaskKind.READ,
                                        Task.gold.is_(False))


def _after_read(session: Session, project: Project, image: Image, suggest: Suggest) -> None:
    """After a submit: when no read task of the image is open, mark it labeled and open its review."""
    states = set(session.scalars(_READ_STATES, {"project_id": project.id, "image_pk": image.id}))
    if states - set(DONE):
        return
    if TaskState.SUBMITTED in states and image.state is ImageState.ASSIGNED:
        image.state = ImageState.LABELED
    open_review_if_ready(session, project=project, image=image, suggest=suggest)


def counts_by_state(
    session: Session, *, user: User, project_id: int | None = None, kind: TaskKind | None = None
) -> dict[str, int]:
    """The user's task counts per state (for the viewer's progress line)."""
    stmt = _counts_stmt(project_id is not None, kind is not None)
    return {str(state.value): n for state, n in session.execute(stmt, _filters(user, project_id, kind))}


def check_marks(view: TaskView, marks: Marks, *, partial: bool) -> None:
    """Run the QC rules on *marks* for the task's image (used by the review service too)."""
    check_reading(marks.reading(view.image.image_id or "", "review"), project_schema(view.project),
                  rows=view.image.rows, columns=view.image.columns, partial=partial)

