"""``/api/triage``: the grid triage page's queues, thumbnails and decisions (verifiers, reviewers and admins).

A thin layer over :mod:`cxrlab.filter.triage`, :func:`cxrlab.filter.verify.record_verification` and
:func:`cxrlab.annotate.setaside.decide_set_aside`, the functions ``cxrlab filter verify`` calls too. Images are
named by their catalog id and pseudonymous ``image_id``; nothing here sends a header value, a path, a reader id
or recognised text. A batch of decisions is checked whole before anything is written (an unknown reason or a
malformed box is a 422 and nothing changes); then each decision is its own transaction and gets its own result
(an image decided meanwhile is a ``409`` result, the others still land).
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cxrlab.annotate.setaside import decide_set_aside
from cxrlab.catalog.models import INT_MAX
from cxrlab.errors import ConflictError, FileError, NotFoundError
from cxrlab.filter.classes import OUTLIER_CLASSES
from cxrlab.filter.triage import (
    MAX_BOXES,
    queue_counts,
    record_text_decision,
    triage_file,
    triage_image,
    triage_page,
)
from cxrlab.filter.verify import record_verification
from cxrlab.web.deps import AuthFirstRoute, IdPath, SessionDep, VerifierUser, WorkspaceDep
from cxrlab.web.models import errors

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/triage", tags=["triage"], responses=errors(401, 403, 422),
                   route_class=AuthFirstRoute)

Queue = Literal["filter", "text", "unusable"]
#: Which actions each queue takes.
ACTIONS: dict[str, tuple[str, ...]] = {"filter": ("accept", "outlier"), "text": ("release", "redact", "discard"),
                                       "unusable": ("confirm", "return")}
Coordinate = Annotated[int, Field(ge=0, le=INT_MAX, strict=True)]


class Counts(BaseModel):
    """Images waiting in each queue."""

    filter: int
    text: int
    unusable: int


class ItemOut(BaseModel):
    """One image of a queue (:class:`cxrlab.filter.triage.TriageItem`): ids, size, a reason code, boxes."""

    pk: int = Field(description="Catalog id: what a decision names")
    image_id: str
    queue: Queue
    why: str = Field(description="uncertain, audit, unreadable (filter); text; the reader's reason code (unusable)")
    rows: int | None
    columns: int | None
    klass: str | None = Field(description="The filter model's class (filter queue)")
    confidence: float | None
    boxes: list[list[int]] = Field(description="Candidate text boxes [x0, y0, x1, y1] in stored pixels (text)")


class PageOut(BaseModel):
    """One page of a queue, and the counts of every queue."""

    queue: Queue
    items: list[ItemOut]
    counts: Counts


class DecisionIn(BaseModel):
    """A decision on one image: ``accept`` or ``outlier`` + ``reason`` (filter); ``release``, ``redact`` (+ optional
    ``boxes``, default the candidates) or ``discard`` (text); ``confirm`` or ``return`` (unusable)."""

    model_config = ConfigDict(extra="forbid")

    image: int = Field(ge=1, le=INT_MAX, description="Catalog id (ItemOut.pk)")
    queue: Queue
    action: Literal["accept", "outlier", "release", "redact", "discard", "confirm", "return"]
    reason: Literal[OUTLIER_CLASSES] | None = None  # type: ignore[valid-type]
    boxes: list[Annotated[list[Coordinate], Field(min_length=4, max_length=4)]] | None = Field(
        default=None, min_length=1, max_length=MAX_BOXES)

    @model_validator(mode="after")
    def _fits_queue(self) -> DecisionIn:
        if self.action not in ACTIONS[self.queue]:
            raise ValueError(f"the {self.queue} queue takes {' or '.join(ACTIONS[self.queue])}")
        if (self.action == "outlier") != (self.reason is not None):
            raise ValueError("give a reason with outlier, and only with outlier")
        if self.boxes is not None and self.action != "redact":
            raise ValueError("boxes go with redact only")
        return self


class DecisionsIn(BaseModel):
    """Decisions on the images of one page (each image at most once)."""

    model_config = ConfigDict(extra="forbid")

    decisions: list[DecisionIn] = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _once_each(self) -> DecisionsIn:
        if len({d.image for d in self.decisions}) != len(self.decisions):
            raise ValueError("each image may be decided once per request")
        return self


class ResultOut(BaseModel):
    """What became of one decision: ``status`` 200 (``state`` is the new state), 404 or 409 (``detail``)."""

    image: int
    status: int
    state: str | None = None
    detail: str | None = None


class DecisionsOut(BaseModel):
    """One result per decision, in the order sent, and the queues' counts after them."""

    results: list[ResultOut]
    counts: Counts


@router.get("/counts", response_model=Counts)
def api_counts(user: VerifierUser, session: SessionDep) -> Counts:
    """How many images wait in each queue."""
    return Counts(**queue_counts(session))


@router.get("/queues/{queue}", response_model=PageOut)
def api_queue(
    queue: Queue,
    user: VerifierUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    limit: Annotated[int, Query(ge=1, le=200)] = 48,
    after: Annotated[int | None, Query(ge=0, le=INT_MAX, description="Continue after this catalog id")] = None,
) -> PageOut:
    """One page of *queue*, oldest first; ``after`` = the last ``pk`` of the previous page."""
    items = [ItemOut(**vars(i)) for i in triage_page(session, workspace, queue, limit=limit, after_pk=after)]
    return PageOut(queue=queue, items=items, counts=Counts(**queue_counts(session)))


@router.get("/images/{pk}/render", response_class=Response,
            responses={200: {"content": {"image/jpeg": {}}}, **errors(404, 500)})
def api_render(
    pk: IdPath,
    request: Request,
    user: VerifierUser,
    session: SessionDep,
    workspace: WorkspaceDep,
    max_size: Annotated[int, Query(ge=16, le=4096, description="Longest side in pixels")] = 256,
) -> Response:
    """The pixels of an image waiting in a queue, rendered (JPEG, the display pipeline's default window): the
    thumbnails and the large view. An image held for text has no de-identified file yet: its source's pixels
    are rendered, and its header never leaves the server."""
    from cxrlab.dicom.display import encode, to_uint8

    path = triage_file(workspace, triage_image(session, pk))
    session.close()
    data = request.app.state.pixel_cache.rendered(
        path, ("triage", max_size), lambda: encode(to_uint8(path, max_size=max_size), "jpeg"))
    return Response(content=data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _apply(session: SessionDep, workspace: WorkspaceDep, d: DecisionIn, author: str) -> ResultOut:
    try:
        if d.queue == "filter":
            img = record_verification(session, image_pk=d.image, action=d.action, author=author, reason=d.reason)
        elif d.queue == "text":
            img = record_text_decision(session, workspace, image_pk=d.image, action=d.action, author=author,
                                       boxes=d.boxes)
        else:
            img = decide_set_aside(session, image_pk=d.image, action=d.action, author=author)
    except NotFoundError:
        return ResultOut(image=d.image, status=404, detail="no such image")
    except ConflictError as exc:
        return ResultOut(image=d.image, status=409, detail=str(exc))
    except ValueError as exc:
        return ResultOut(image=d.image, status=422, detail=str(exc))
    except FileError as exc:
        log.warning("triage decision failed: %s", exc)  # names a workspace path, never a header value
        return ResultOut(image=d.image, status=500, detail="the image file could not be read or written")
    return ResultOut(image=d.image, status=200, state=img.state.value)


@router.post("/decisions", response_model=DecisionsOut)
def api_decide(body: DecisionsIn, user: VerifierUser, session: SessionDep, workspace: WorkspaceDep) -> DecisionsOut:
    """Record the decisions of one page, each an event with the caller as author (``cxrlab filter verify`` does
    the same from the shell)."""
    results = [_apply(session, workspace, d, user.username) for d in body.decisions]
    return DecisionsOut(results=results, counts=Counts(**queue_counts(session)))
