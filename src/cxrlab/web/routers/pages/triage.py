"""``GET /triage``: the grid triage page (verifiers, reviewers and admins; anyone else gets the 403 page).

The page hands ``static/triage.js`` the queue and the key map; the thumbnails, the queue pages and the decisions
come from ``/api/triage`` (:mod:`cxrlab.web.routers.api.triage`). The page shows no header value: ids, reason
codes and counts only.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from cxrlab.errors import PermissionDeniedError
from cxrlab.filter.classes import OUTLIER_CLASSES
from cxrlab.filter.triage import QUEUES, queue_counts
from cxrlab.web.deps import VERIFIER_ROLES, SessionDep, WorkspaceDep
from cxrlab.web.pages import PAGE_TAG, PageUser, render

__all__ = ["OUTLIER_KEYS", "router"]

router = APIRouter(tags=[PAGE_TAG], include_in_schema=False)

#: The key that marks an image outlier with each reason (filter queue); 1-5 work too, in this order.
OUTLIER_KEYS: dict[str, str] = {"lateral": "l", "other_body_part": "o", "low_quality": "q", "pediatric": "p",
                                "adult": "a"}


@router.get("/triage", response_class=HTMLResponse)
def page_triage(request: Request, user: PageUser, session: SessionDep, workspace: WorkspaceDep,
                queue: str = "filter", size: Annotated[int, Query(ge=24, le=48)] = 48) -> Response:
    """The grid triage page of *queue* (``filter``, ``text`` or ``unusable``), *size* thumbnails per page."""
    if user.role not in VERIFIER_ROLES:
        raise PermissionDeniedError("verifiers, reviewers and admins only")
    if queue not in QUEUES:
        queue = "filter"
    keys = [{"reason": r, "key": OUTLIER_KEYS[r], "digit": str(i + 1)} for i, r in enumerate(OUTLIER_CLASSES)]
    return render(request, "triage.html", workspace=workspace, user=user, queue=queue, queues=QUEUES,
                  counts=queue_counts(session), keys=keys, size=size)
