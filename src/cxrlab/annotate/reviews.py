"""Two-stage review of test images: readers first, then a pair of reviewers settles the final labels.

VinDr-CXR data descriptor ("Data annotation"): each test image was read by 3 radiologists, then two senior
radiologists reviewed their marks and settled the consensus used as test labels. Here a review opens when the
image's last reader has submitted. Each reviewer of the pair then sees every reader's marks (only inside the
review task: blinding holds for readers) and a suggested consensus — by default the majority vote of the
readers' labels and the fused boxes kept when more than half of the readers drew them
(:func:`cxrlab.consensus.suggest_review`) — which becomes the editable proposal. The suggestion is a later
stage's computation, so the callers pass it in as ``suggest``: the labeling stage never imports consensus.
Edits use optimistic versioning and clear earlier approvals; the review is final when both reviewers approved
the same version. Disagreement stays open, with comments. Final labels and boxes go to ``consensus_labels`` /
``consensus_boxes`` with ``method="review"`` and the reviewers as author; the image becomes ``reviewed``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cxrlab.annotate.marks import Marks, audit_changes, edit_cause
from cxrlab.annotate.projects import project_schema
from cxrlab.annotate.readings import QCError, check_reading
from cxrlab.annotate.writes import bump_version, lock_row, transaction
from cxrlab.catalog.models import (
    ConsensusBox,
    ConsensusLabel,
    Event,
    Image,
    ImageState,
    Project,
    Review,
    ReviewComment,
    Task,
    TaskKind,
    TaskState,
    User,
)
from cxrlab.errors import ConflictError, NotFoundError

__all__ = [
    "ReviewView",
    "Suggest",
    "add_comment",
    "approve_review",
    "edit_proposal",
    "get_review",
    "open_review_if_ready",
    "reader_marks",
    "submitted_reads",
]

REVIEW_METHOD = "review"

#: ``suggest(project, image_id, readers) -> Marks``: the proposal a review opens with, from the readers' marks
#: (``readers`` is ``[(rad_id, marks), ...]``). The shells pass :func:`cxrlab.consensus.suggest_review`.
Suggest = Callable[[Project, str, list[tuple[str, Marks]]], Marks]


@dataclass
class ReviewView:
    """Everything a reviewer sees in one review task."""

    task: Task
    image: Image
    project: Project
    review: Review
    readers: list[tuple[str, Marks]] = field(default_factory=list)
    suggestion: Marks | None = None
    approvals: dict[str, int] = field(default_factory=dict)
    reviewers: list[str] = field(default_factory=list)
    comments: list[tuple[str, str, datetime]] = field(default_factory=list)

    @property
    def proposal(self) -> Marks:
        return Marks.from_json(self.review.proposal)


def _now() -> datetime:
    return datetime.now(UTC)


def reader_marks(session: Session, *, project_id: int, image_pk: int) -> list[tuple[str, Marks]]:
    """The submitted reads of an image in a project, as ``(rad_id, marks)`` sorted by ``rad_id`` (gold-standard
    reads never count: they are scored, not used)."""
    rows = session.execute(
        select(User.rad_id, Task.draft)
        .join(User, User.id == Task.user_id)
        .where(Task.project_id == project_id, Task.image_pk == image_pk, Task.kind == TaskKind.READ,
               Task.state == TaskState.SUBMITTED, Task.gold.is_(False))
        .order_by(User.rad_id)
    ).all()
    return [(rad_id, Marks.from_json(draft)) for rad_id, draft in rows]


def submitted_reads(session: Session, *, project: Project, split: str | None = None) -> list[tuple[str, str, Marks]]:
    """Every submitted read of a project (optionally of one split) as ``(image_id, rad_id, marks)``, sorted; gold-
    standard reads are left out (they never enter the agreement, the consensus or an export)."""
    stmt = (
        select(Image.image_id, User.rad_id, Task.draft)
        .join(Image, Image.id == Task.image_pk)
        .join(User, User.id == Task.user_id)
        .where(Task.project_id == project.id, Task.kind == TaskKind.READ, Task.state == TaskState.SUBMITTED,
               Task.gold.is_(False))
        .order_by(Image.image_id, User.rad_id)
    )
    if split is not None:
        stmt = stmt.where(Image.split == split)
    return [(image_id, rad_id, Marks.from_json(draft)) for image_id, rad_id, draft in session.execute(stmt)]


def open_review_if_ready(session: Session, *, project: Project, image: Image, suggest: Suggest) -> bool:
    """Open the waiting review of *image* (its reads are done): the suggestion becomes the proposal and the
    reviewers' tasks enter their queues. Call inside a write transaction. Returns True when opened."""
    review = session.scalar(
        select(Review).where(Review.project_id == project.id, Review.image_pk == image.id, Review.state == "waiting")
    )
    if review is None or image.state is ImageState.FILTERED_OUT:
        return False
    readers = reader_marks(session, project_id=project.id, image_pk=image.id)
    if not readers:
        return False
    suggestion = suggest(project, image.image_id or "", readers)
    review.state = "open"
    review.proposal = suggestion.to_json()
    review.approvals = {}
    review.version += 1
    session.execute(
        update(Task)
        .where(Task.project_id == project.id, Task.image_pk == image.id, Task.kind == TaskKind.REVIEW,
               Task.state == TaskState.WAITING)
        .values(state=TaskState.PENDING, version=Task.version + 1, updated_at=_now())
        .execution_options(synchronize_session=False)
    )
    session.add(Event(image_pk=image.id, stage="review", action="review.open", author="system",
                      detail={"project": project.name, "readers": len(readers)}))
    return True


def _review_task(session: Session, user: User, task_id: int) -> tuple[Task, Image, Project, Review]:
    task = session.scalar(
        select(Task).where(Task.id == task_id, Task.user_id == user.id, Task.kind == TaskKind.REVIEW)
        .execution_options(populate_existing=True)
    )
    if task is None:
        raise NotFoundError(f"review task {task_id} not found")
    review = session.scalar(
        select(Review).where(Review.project_id == task.project_id, Review.image_pk == task.image_pk)
        .execution_options(populate_existing=True)
    )
    image, project = session.get(Image, task.image_pk), session.get(Project, task.project_id)
    if review is None or image is None or project is None:
        raise NotFoundError(f"review task {task_id} not found")
    return task, image, project, review


def get_review(session: Session, *, user: User, task_id: int, suggest: Suggest) -> ReviewView:
    """The reviewer's own review task with the readers' marks (once the review is open), the suggestion, the
    current proposal, approvals and comments; ``NotFoundError`` for anyone else."""
    task, image, project, review = _review_task(session, user, task_id)
    view = ReviewView(task, image, project, review)
    names = dict(session.execute(
        select(User.id, User.username).join(Task, Task.user_id == User.id)
        .where(Task.project_id == project.id, Task.image_pk == image.id, Task.kind == TaskKind.REVIEW)
    ).all())
    view.reviewers = sorted(names.values())
    view.approvals = {names.get(int(uid), str(uid)): int(v) for uid, v in (review.approvals or {}).items()}
    if review.state != "waiting":
        view.readers = reader_marks(session, project_id=project.id, image_pk=image.id)
        view.suggestion = suggest(project, image.image_id or "", view.readers)
    view.comments = [
        (username, text, at)
        for username, text, at in session.execute(
            select(User.username, ReviewComment.text, ReviewComment.at)
            .join(User, User.id == ReviewComment.user_id)
            .where(ReviewComment.review_id == review.id)
            .order_by(ReviewComment.id)
        )
    ]
    return view


def _require_open(review: Review) -> None:
    if review.state == "waiting":
        raise ConflictError("the review opens when every reader has submitted", current_version=review.version)
    if review.state == "finalized":
        raise ConflictError("the review is final", current_version=review.version)
    if review.state == "unusable":
        raise ConflictError("the image was set aside as unusable", current_version=review.version)


def _check(project: Project, image: Image, marks: Marks, *, partial: bool) -> None:
    check_reading(marks.reading(image.image_id or "", "review"), project_schema(project), rows=image.rows,
                  columns=image.columns, partial=partial)


def edit_proposal(
    session: Session, *, user: User, task_id: int, version: int, marks: Marks, suggest: Suggest, cause: str = "edit"
) -> ReviewView:
    """Replace the shared proposal; every approval is cleared (both reviewers must approve the new version).

    *cause* ``undo`` or ``redo`` (the viewer's Ctrl+Z / Ctrl+Shift+Z) is kept in the audit rows: an undo is a new
    version like any edit, never a rewrite of history.

    Raises
    ------
    ConflictError
        Stale *version* (the other reviewer saved meanwhile) or the review is not open.
    QCError
        Unknown label or class, box outside the image or too small.
    """
    edit_cause(cause)  # an unknown cause is refused before anything is read
    task, image, project, review = _review_task(session, user, task_id)
    marks = marks.normalized()
    _check(project, image, marks, partial=True)
    with transaction(session):
        lock_row(session, Review, review.id)
        session.refresh(review)
        _require_open(review)
        old = Marks.from_json(review.proposal)
        if not bump_version(session, Review, review.id, version, proposal=marks.to_json(), approvals={}):
            raise ConflictError("the proposal changed meanwhile; reload the review", current_version=review.version)
        session.execute(
            update(Task)
            .where(Task.project_id == project.id, Task.image_pk == image.id, Task.kind == TaskKind.REVIEW,
                   Task.state.in_((TaskState.SUBMITTED, TaskState.PENDING)))
            .values(state=TaskState.DRAFT, version=Task.version + 1, updated_at=_now())
            .execution_options(synchronize_session=False)
        )
        context = {"task_id": task.id, "review_id": review.id} | edit_cause(cause)
        audit_changes(session, image_pk=image.id, author=user.username, stage="review", old=old, new=marks,
                      context=context)
    return get_review(session, user=user, task_id=task_id, suggest=suggest)


def approve_review(session: Session, *, user: User, task_id: int, version: int, suggest: Suggest) -> ReviewView:
    """Approve the proposal at *version*; when every reviewer approved it, finalize the review.

    Raises
    ------
    ConflictError
        *version* is not the current proposal, or the review is not open.
    QCError
        The proposal breaks a QC rule (e.g. no global label): edit it first.
    """
    task, image, project, review = _review_task(session, user, task_id)
    with transaction(session):
        lock_row(session, Review, review.id)
        session.refresh(review)
        _require_open(review)
        if review.version != version:
            raise ConflictError("the proposal changed meanwhile; reload the review", current_version=review.version)
        proposal = Marks.from_json(review.proposal)
        _check(project, image, proposal, partial=False)
        approvals = {**(review.approvals or {}), str(user.id): version}
        review.approvals = approvals
        session.execute(update(Task).where(Task.id == task.id)
                        .values(state=TaskState.SUBMITTED, version=Task.version + 1, submitted_at=_now(),
                                updated_at=_now())
                        .execution_options(synchronize_session=False))
        session.add(Event(image_pk=image.id, stage="review", action="review.approve", author=user.username,
                          detail={"task_id": task.id, "review_id": review.id, "version": version}))
        reviewer_ids = set(session.scalars(
            select(Task.user_id).where(Task.project_id == project.id, Task.image_pk == image.id,
                                       Task.kind == TaskKind.REVIEW, Task.state != TaskState.CANCELLED)
        ))
        if reviewer_ids and all(approvals.get(str(uid)) == version for uid in reviewer_ids):
            _finalize(session, project=project, image=image, review=review, proposal=proposal,
                      reviewer_ids=reviewer_ids)
    return get_review(session, user=user, task_id=task_id, suggest=suggest)


def _finalize(session: Session, *, project: Project, image: Image, review: Review, proposal: Marks,
              reviewer_ids: set[int]) -> None:
    schema = project_schema(project)
    readers = reader_marks(session, project_id=project.id, image_pk=image.id)
    names = sorted(session.scalars(select(User.username).where(User.id.in_(reviewer_ids))))
    author = "+".join(names)[:64]
    session.execute(delete(ConsensusLabel).where(ConsensusLabel.image_pk == image.id))
    session.execute(delete(ConsensusBox).where(ConsensusBox.image_pk == image.id))
    marked = set(proposal.labels) | {b.class_name for b in proposal.boxes}
    for name in schema.names:
        votes = sum(1 for _, m in readers if name in m.labels or any(b.class_name == name for b in m.boxes))
        session.add(ConsensusLabel(image_pk=image.id, label=name, positive=int(name in marked), votes=votes,
                                   readers=len(readers), method=REVIEW_METHOD))
    for b in proposal.boxes:
        session.add(ConsensusBox(image_pk=image.id, class_name=b.class_name, x_min=b.x_min, y_min=b.y_min,
                                 x_max=b.x_max, y_max=b.y_max, score=None, votes=len(reviewer_ids),
                                 method=REVIEW_METHOD, author=author))
    review.state = "finalized"
    review.finalized_at = _now()
    image.state = ImageState.REVIEWED
    session.add(Event(image_pk=image.id, stage="review", action="review.finalize", author=author,
                      detail={"review_id": review.id, "version": review.version, "labels": sorted(marked),
                              "boxes": len(proposal.boxes)}))


def add_comment(session: Session, *, user: User, task_id: int, text: str, suggest: Suggest) -> ReviewView:
    """Add a comment to the review (e.g. why the reviewer does not approve)."""
    text = (text or "").strip()
    if not text or len(text) > 2000:
        raise QCError("a comment needs 1 to 2000 characters", rule="comment_length")
    task, image, _project, review = _review_task(session, user, task_id)
    with transaction(session):
        session.add(ReviewComment(review_id=review.id, user_id=user.id, text=text))
        session.add(Event(image_pk=image.id, stage="review", action="review.comment", author=user.username,
                          detail={"task_id": task.id, "review_id": review.id}))
    return get_review(session, user=user, task_id=task_id, suggest=suggest)
