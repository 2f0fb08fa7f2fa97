"""``/api/reviews``: a reviewer's review tasks — readers' marks, suggested consensus, shared proposal, approve,
comment. Only the review task's own reviewer sees the readers' marks; everyone else gets 404."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from cxrlab.annotate import reviews, tasks
from cxrlab.catalog.models import TaskKind, TaskState
from cxrlab.consensus import suggest_review
from cxrlab.web.deps import AuthFirstRoute, IdPath, IdQuery, Offset, ReviewerUser, SessionDep
from cxrlab.web.models import (
    QC_422,
    ApproveIn,
    CommentIn,
    ReviewOut,
    SaveIn,
    TaskOut,
    error,
    errors,
    review_out,
    task_out,
)

router = APIRouter(prefix="/api/reviews", tags=["reviews"], responses=errors(401, 403), route_class=AuthFirstRoute)

WRITE_ERRORS = {404: error(404, "Not your review task"), 409: error(409, "Stale proposal version, or review not open"),
                422: QC_422}


@router.get("", response_model=list[TaskOut])
def api_list_reviews(
    user: ReviewerUser,
    session: SessionDep,
    project_id: IdQuery = None,
    state: TaskState | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> list[TaskOut]:
    """The caller's review tasks (``waiting`` until the image's readers are done)."""
    views, _ = tasks.list_tasks(session, user=user, project_id=project_id, kind=TaskKind.REVIEW,
                                states=(state,) if state else None, limit=limit, offset=offset)
    return [task_out(v) for v in views]


@router.get("/{task_id}", response_model=ReviewOut, responses=errors(404))
def api_get_review(task_id: IdPath, user: ReviewerUser, session: SessionDep) -> ReviewOut:
    """Readers' marks (one entry per reader), the suggested consensus, the proposal, approvals, comments."""
    return review_out(reviews.get_review(session, user=user, task_id=task_id, suggest=suggest_review))


@router.put("/{task_id}/proposal", response_model=ReviewOut, responses=WRITE_ERRORS)
def api_edit_proposal(task_id: IdPath, body: SaveIn, user: ReviewerUser, session: SessionDep) -> ReviewOut:
    """Replace the shared proposal (``version`` = the review's); clears the approvals. An undo or redo
    (``cause``) is a new version like any edit."""
    return review_out(reviews.edit_proposal(session, user=user, task_id=task_id, version=body.version,
                                            marks=body.to_marks(), suggest=suggest_review, cause=body.cause))


@router.post("/{task_id}/approve", response_model=ReviewOut, responses=WRITE_ERRORS)
def api_approve(task_id: IdPath, body: ApproveIn, user: ReviewerUser, session: SessionDep) -> ReviewOut:
    """Approve the proposal at ``version``; when both reviewers approved it the review is final."""
    return review_out(reviews.approve_review(session, user=user, task_id=task_id, version=body.version,
                                             suggest=suggest_review))


@router.post("/{task_id}/comments", response_model=ReviewOut, responses=WRITE_ERRORS)
def api_comment(task_id: IdPath, body: CommentIn, user: ReviewerUser, session: SessionDep) -> ReviewOut:
    """Comment on the review (a disagreement stays open with comments)."""
    return review_out(reviews.add_comment(session, user=user, task_id=task_id, text=body.text, suggest=suggest_review))
