"""A reader's own history: submitted reads newest first, reopening one to change it, and the freeze rule.

A submitted read may be reopened (it becomes a draft again, and is then saved and submitted like any draft) while
its image has no open or finished review and no release holds it. After that the read is frozen: reopening it
is refused with :class:`~cxrlab.errors.ConflictError` whose ``rule`` is :data:`FROZEN_RULE` and whose message
says why. The rule exists because a review starts from the readers' marks and a release ships them: changing a
read under either would make them disagree with what they were built from.

Nothing is rewritten: every submitted version stays in ``events`` (the ``reading.submit`` row of each carries the
whole version, :func:`read_versions`), and the ``readings`` row — what the consensus and a release take — is the
last version submitted. While a read is reopened its image goes back to ``assigned``, so no consensus or release
takes the image until the read is submitted again.

A gold-standard task (:mod:`cxrlab.annotate.gold`) follows the same rule as seen by its reader: its image's own
review or release says nothing about the reader's read (the image was decided before), so a gold read freezes
when a release holds an image of the same reader's reads of that project submitted no later than it, as
a training read submitted then would have been frozen by that release. Its answers are those of any task.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import and_, exists, select, tuple_
from sqlalchemy.orm import Session, aliased

from cxrlab.annotate.tasks import TaskView, get_task
from cxrlab.annotate.writes import bump_version, lock_row, transaction
from cxrlab.catalog.models import Event, Image, ImageState, Review, Task, TaskKind, TaskState, User
from cxrlab.errors import ConflictError

__all__ = ["FROZEN_RULE", "NOT_SUBMITTED_RULE", "freeze_reason", "freeze_reasons", "read_versions", "reopen_task"]

#: ``rule`` of the 409 that refuses to reopen a frozen read.
FROZEN_RULE = "read_frozen"
#: ``rule`` of the 409 that refuses to reopen a task that is not a submitted read.
NOT_SUBMITTED_RULE = "not_submitted"

_RULE_TEXT = ("a submitted read can be reopened only while its image has no open or finished review and no release "
              "holds it")
_WHY = {
    "open": "its image's review has opened",
    "finalized": "its image's review is finished",
    "unusable": "its image was set aside as unusable",
    "released": "a release holds its image",
}


def _message(why: str) -> str:
    return f"this read is frozen: {_WHY[why]} ({_RULE_TEXT})"


def freeze_reasons(session: Session, views: Sequence[TaskView]) -> dict[int, str | None]:
    """Why each submitted read of *views* can no longer be reopened (the 409's message), or None when it can.

    Tasks that are not submitted reads map to None (the rule is about submitted reads). A few queries for the
    whole page, whatever its length.
    """
    out: dict[int, str | None] = {v.task.id: None for v in views}
    reads = [v for v in views if v.task.kind is TaskKind.READ and v.task.state is TaskState.SUBMITTED]
    normal = [v for v in reads if not v.task.gold]
    gold = [v for v in reads if v.task.gold]
    if normal:
        keys = {(v.task.project_id, v.task.image_pk) for v in normal}
        states = dict(
            ((pid, pk), state)
            for pid, pk, state in session.execute(
                select(Review.project_id, Review.image_pk, Review.state)
                .where(tuple_(Review.project_id, Review.image_pk).in_(list(keys)))
            )
        )
        for v in normal:
            why = _why(v.image.state, states.get((v.task.project_id, v.task.image_pk)))
            out[v.task.id] = _message(why) if why else None
    if gold:
        released = set(session.scalars(select(Task.id).where(Task.id.in_([v.task.id for v in gold]),
                                                           _released_before(Task))))
        for v in gold:
            out[v.task.id] = _message("released") if v.task.id in released else None
    return out


def _why(image_state: ImageState, review_state: str | None) -> str | None:
    if image_state is ImageState.RELEASED:
        return "released"
    if image_state is ImageState.FILTERED_OUT:
        return "unusable"
    if review_state in ("open", "finalized"):
        return review_state
    return None


def _released_before(gold: type[Task]):  # noqa: ANN202 - a SQL expression
    """True for a gold task when a release holds the image of one of its reader's normal reads of the project
    submitted no later than it."""
    other = aliased(Task)
    return exists().where(
        other.user_id == gold.user_id, other.project_id == gold.project_id, other.gold.is_(False),
        other.kind == TaskKind.READ, other.state == TaskState.SUBMITTED,
        other.submitted_at <= gold.submitted_at,
        exists().where(and_(Image.id == other.image_pk, Image.state == ImageState.RELEASED)),
    )


def freeze_reason(session: Session, view: TaskView) -> str | None:
    """:func:`freeze_reasons` of one task."""
    return freeze_reasons(session, [view])[view.task.id]


def reopen_task(session: Session, *, user: User, task_id: int, version: int) -> TaskView:
    """Reopen the user's submitted read *task_id* to change it: it becomes a draft again (a new version).

    The ``readings`` row keeps the last submitted version until the read is submitted again; meanwhile the image
    is ``assigned`` again (no consensus or release takes it). An ``events`` row ``reading.reopen`` names the
    author.

    Raises
    ------
    NotFoundError
        Not the user's read task.
    ConflictError
        Frozen (``rule`` :data:`FROZEN_RULE`: its image's review is open or finished, or a release holds it), not
        a submitted read (``rule`` :data:`NOT_SUBMITTED_RULE`), or *version* is stale.
    """
    view = get_task(session, user=user, task_id=task_id, kind=TaskKind.READ)
    task = view.task
    with transaction(session):
        # the image row's lock serialises this with a submit that would open the review (tasks.submit_task)
        (image_state,) = lock_row(session, Image, task.image_pk, Image.state)
        session.refresh(task)
        if task.state is not TaskState.SUBMITTED:
            raise ConflictError("only a submitted read can be reopened", current_version=task.version,
                                rule=NOT_SUBMITTED_RULE)
        session.refresh(view.image)
        reason = freeze_reason(session, view)
        if reason:
            raise ConflictError(reason, current_version=task.version, rule=FROZEN_RULE)
        if not bump_version(session, Task, task.id, version, task, state=TaskState.DRAFT,
                            updated_at=datetime.now(UTC)):
            raise ConflictError("your copy is out of date (changed elsewhere meanwhile); reload the task",
                                current_version=task.version)
        if not task.gold and image_state is ImageState.LABELED:
            view.image.state = ImageState.ASSIGNED
        session.add(Event(image_pk=task.image_pk, stage="annotate", action="reading.reopen", author=user.username,
                          detail={"task_id": task.id, "rad_id": user.rad_id, "version": version + 1}
                          | ({"gold": True} if task.gold else {})))
    return view


def read_versions(session: Session, *, task_id: int) -> list[dict]:
    """Every submitted version of read task *task_id*, oldest first, from ``events``: ``{version, at, author,
    labels, boxes}`` (the comment is free text and is not copied into events)."""
    image_pk = session.scalar(select(Task.image_pk).where(Task.id == task_id))
    rows = session.execute(
        select(Event.detail, Event.at, Event.author)
        .where(Event.image_pk == image_pk, Event.action == "reading.submit", Event.stage == "annotate")
        .order_by(Event.id)
    )
    out = []
    for detail, at, author in rows:
        if (detail or {}).get("task_id") != task_id or "marks" not in detail:
            continue
        out.append({"version": detail.get("version"), "at": at, "author": author, **detail["marks"]})
    return out
