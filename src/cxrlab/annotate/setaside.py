"""A verifier's decision on an image a reader set aside as unusable: confirm it, or return it to the reading queue.

The triage page's ``unusable`` queue (:mod:`cxrlab.filter.triage`) lists images that
:func:`cxrlab.annotate.tasks.set_unusable` moved to ``filtered_out``. Confirming keeps the image out of the
release (its state reason says the decision was confirmed, so it leaves the queue). Returning it undoes what
setting it aside did: the set-aside read task and the read tasks it cancelled open again (``pending``), the
review tasks it cancelled wait again, the review waits again, and the image is ``assigned``. Either way the
decision is an :class:`~cxrlab.catalog.models.Event` (``stage="filter"``, ``action="verify.confirm"`` or
``"verify.return"``) with its author; :func:`cxrlab.filter.verify.training_decisions` reads a return as a
frontal chest.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cxrlab.annotate.writes import transaction
from cxrlab.catalog.models import Event, Image, ImageState, Review, Task, TaskKind, TaskState
from cxrlab.filter.triage import SET_ASIDE_PREFIX
from cxrlab.filter.verify import lock_waiting

__all__ = ["SET_ASIDE_ACTIONS", "decide_set_aside"]

#: What a verifier can decide about an image set aside as unusable.
SET_ASIDE_ACTIONS: tuple[str, ...] = ("confirm", "return")


def decide_set_aside(session: Session, *, image_pk: int, action: str, author: str) -> Image:
    """Confirm a reader's "unusable" decision, or return the image to the reading queue.

    Raises
    ------
    ValueError
        Unknown action or an empty author.
    NotFoundError
        No such image.
    ConflictError
        The image is not waiting in the unusable queue (decided meanwhile).
    """
    if action not in SET_ASIDE_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(SET_ASIDE_ACTIONS)}")
    if not (author or "").strip():
        raise ValueError("a decision needs its author")
    with transaction(session):
        img = lock_waiting(session, image_pk, lambda i: i.state == ImageState.FILTERED_OUT
                           and (i.state_reason or "").startswith(SET_ASIDE_PREFIX), "in the unusable queue")
        code = (img.state_reason or "").rsplit(": ", 1)[-1]
        if action == "confirm":
            img.state_reason = f"unusable, confirmed: {code}"
        else:
            _reopen(session, img)
            img.state, img.state_reason = ImageState.ASSIGNED, None
        session.add(Event(image_pk=img.id, stage="filter", action=f"verify.{action}", author=author.strip(),
                          detail={"reason": code}))
    return img


def _reopen(session: Session, img: Image) -> None:
    """Open again the tasks and reviews that setting *img* aside closed, in every project that set it aside."""
    now = datetime.now(UTC)
    projects = list(session.scalars(
        select(Task.project_id).where(Task.image_pk == img.id, Task.kind == TaskKind.READ, Task.gold.is_(False),
                                      Task.state == TaskState.UNUSABLE).distinct()))
    if not projects:
        return
    mine = (Task.image_pk == img.id) & Task.project_id.in_(projects) & Task.gold.is_(False)
    session.execute(update(Task).where(mine, Task.kind == TaskKind.READ,
                                       Task.state.in_((TaskState.UNUSABLE, TaskState.CANCELLED)))
                    .values(state=TaskState.PENDING, reason=None, version=Task.version + 1, updated_at=now)
                    .execution_options(synchronize_session=False))
    session.execute(update(Task).where(mine, Task.kind == TaskKind.REVIEW, Task.state == TaskState.CANCELLED)
                    .values(state=TaskState.WAITING, version=Task.version + 1, updated_at=now)
                    .execution_options(synchronize_session=False))
    session.execute(update(Review).where(Review.image_pk == img.id, Review.project_id.in_(projects),
                                         Review.state == "unusable")
                    .values(state="waiting", version=Review.version + 1)
                    .execution_options(synchronize_session=False))
