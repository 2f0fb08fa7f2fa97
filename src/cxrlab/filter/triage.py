"""The triage queues: every image that waits for a human, one page at a time, and the burned-in text decisions.

Three queues feed the web app's grid triage page (``/triage``) and ``cxrlab filter queue|verify``:

- ``filter``: images in state ``needs_verification`` (the filter model was not sure, or the audit sample);
  decided with :func:`cxrlab.filter.verify.record_verification`.
- ``text``: images de-identification held for doubtful burned-in text (state ``flagged_text``: no output file,
  the candidate boxes in ``review/<image_id>.json``); decided here with :func:`record_text_decision`: no PHI
  (released as is), redact the boxes (cxrlab redacts and re-encodes), or discard.
- ``unusable``: images a reader set aside as unusable (``filtered_out`` with an ``unusable (...)`` reason, see
  :func:`cxrlab.annotate.tasks.set_unusable`); confirmed or returned to the reading queue by
  :func:`cxrlab.annotate.tasks.decide_set_aside` (the labeling stage owns the tasks).

Blinding and PHI: a :class:`TriageItem` carries the catalog id, the pseudonymous ``image_id``, the image size,
a reason *code* and, for text, the candidate boxes as coordinates. Never a header value, a path, a reader id or
recognised text. Every decision is an :class:`~cxrlab.catalog.models.Event` with its author.

Thumbnails: the page's thumbnails are the stored ``thumbs/<image_id>.jpg`` (:mod:`cxrlab.dicom.thumbnail`),
written by the filter stage and, for images held for text, by de-identification; a text decision removes the one
made from the source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cxrlab.catalog.db import transaction
from cxrlab.catalog.models import Event, FilterScore, Image, ImageState, Redaction
from cxrlab.catalog.workspace import Workspace
from cxrlab.dicom.thumbnail import THUMB_FOLDER, remove_thumbnail
from cxrlab.errors import FileError, NotFoundError
from cxrlab.filter.classes import AUDIT
from cxrlab.filter.verify import lock_waiting

__all__ = [
    "QUEUES",
    "SET_ASIDE_PREFIX",
    "TEXT_ACTIONS",
    "TriageItem",
    "candidate_boxes",
    "queue_counts",
    "record_text_decision",
    "triage_file",
    "triage_image",
    "triage_page",
]

#: The queues of the triage page, in the order it lists them.
QUEUES: tuple[str, ...] = ("filter", "text", "unusable")
#: What a verifier can decide about an image held for burned-in text.
TEXT_ACTIONS: tuple[str, ...] = ("release", "redact", "discard")
#: How :func:`cxrlab.annotate.tasks.set_unusable` begins ``images.state_reason`` (the unusable queue's mark).
SET_ASIDE_PREFIX = "unusable ("
#: Most boxes one redaction decision may carry.
MAX_BOXES = 64


@dataclass(frozen=True)
class TriageItem:
    """One image of a triage queue, as the triage page may show it (nothing identifying).

    Attributes
    ----------
    pk : int
        Catalog id (what decisions name).
    image_id : str
        The pseudonymous image id.
    queue : str
        One of :data:`QUEUES`.
    why : str
        A code: ``uncertain``, ``audit`` or ``unreadable`` (filter); ``text`` (text); the reader's unusable
        reason code (unusable).
    rows, columns : int or None
        Image size (the boxes are in these pixels).
    klass : str or None
        The filter model's class (filter queue).
    confidence : float or None
        Its confidence.
    boxes : list of list of int
        Candidate text boxes ``[x0, y0, x1, y1]`` in stored pixels (text queue).
    """

    pk: int
    image_id: str
    queue: str
    why: str
    rows: int | None = None
    columns: int | None = None
    klass: str | None = None
    confidence: float | None = None
    boxes: list[list[int]] = field(default_factory=list)


def _queue_filter(queue: str):  # noqa: ANN202 - a SQLAlchemy clause
    if queue == "filter":
        return Image.state == ImageState.NEEDS_VERIFICATION
    if queue == "text":
        return Image.state == ImageState.FLAGGED_TEXT
    if queue == "unusable":
        return (Image.state == ImageState.FILTERED_OUT) & Image.state_reason.startswith(SET_ASIDE_PREFIX)
    raise ValueError(f"queue must be one of {', '.join(QUEUES)}")


def queue_counts(session: Session) -> dict[str, int]:
    """How many images wait in each queue (:data:`QUEUES` order)."""
    return {q: session.scalar(select(func.count(Image.id)).where(_queue_filter(q))) or 0 for q in QUEUES}


def candidate_boxes(ws: Workspace, image_id: str) -> list[list[int]]:
    """The candidate text boxes de-identification recorded for a held image (``review/<image_id>.json``), the
    ones it did not ignore; ``[]`` when the file is missing or unreadable. Only coordinates are read."""
    path = ws.path("review", f"{image_id}.json")
    try:
        data = json.loads(path.read_text())
        found = [[int(v) for v in c["box"]] for c in data.get("candidates", []) if c.get("status") != "ignored"]
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return []
    return [b for b in found if len(b) == 4][:MAX_BOXES]


def _why_filter(reason: str | None) -> str:
    if reason == AUDIT:
        return "audit"
    if (reason or "").startswith("not readable"):
        return "unreadable"
    return "uncertain"


def _why_unusable(reason: str | None) -> str:
    # "unusable (<rad_id>): <code>": only the code leaves (the reader id would unblind the verifier).
    return (reason or "").rsplit(": ", 1)[-1] or "other"


def triage_page(
    session: Session, ws: Workspace, queue: str, *, limit: int = 48, after_pk: int | None = None
) -> list[TriageItem]:
    """One page of *queue*, oldest first (catalog id order), after *after_pk*.

    Raises
    ------
    ValueError
        Unknown queue.
    """
    q = select(Image).where(_queue_filter(queue), Image.image_id.is_not(None))
    if after_pk is not None:
        q = q.where(Image.id > after_pk)
    images = list(session.scalars(q.order_by(Image.id).limit(max(1, min(int(limit), 500)))))
    scores = {}
    if queue == "filter" and images:
        scores = {s.image_pk: s for s in session.scalars(
            select(FilterScore).where(FilterScore.image_pk.in_([i.id for i in images])))}
    items = []
    for img in images:
        base = {"pk": img.id, "image_id": img.image_id, "queue": queue, "rows": img.rows, "columns": img.columns}
        if queue == "filter":
            s = scores.get(img.id)
            items.append(TriageItem(**base, why=_why_filter(img.state_reason), klass=s.klass if s else None,
                                    confidence=round(float(s.confidence), 3) if s else None))
        elif queue == "text":
            items.append(TriageItem(**base, why="text", boxes=candidate_boxes(ws, img.image_id or "")))
        else:
            items.append(TriageItem(**base, why=_why_unusable(img.state_reason)))
    return items


def triage_file(ws: Workspace, image: Image) -> Path:
    """The file whose pixels the triage page shows: the de-identified file, or for an image held for text (it
    has none yet) the source file, whose pixels only are rendered. Never leaves the workspace.

    Raises
    ------
    NotFoundError
        The file is missing or lies outside the workspace.
    """
    rel = image.raw_path if image.state == ImageState.FLAGGED_TEXT else image.deid_path
    path = Path(rel or "")
    path = (path if path.is_absolute() else ws.root / path).resolve()
    if not rel or not path.is_file():
        raise NotFoundError("image file not available")
    return path


def _check_boxes(boxes: object) -> list[tuple[int, int, int, int]]:
    if not isinstance(boxes, list) or not boxes or len(boxes) > MAX_BOXES:
        raise ValueError(f"redact needs 1 to {MAX_BOXES} boxes [x0, y0, x1, y1]")
    out = []
    for box in boxes:
        if (not isinstance(box, list | tuple) or len(box) != 4
                or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31 for v in box)):
            raise ValueError("each box must be [x0, y0, x1, y1], integers >= 0")
        out.append((box[0], box[1], box[2], box[3]))
    return out


def record_text_decision(
    session: Session, ws: Workspace, *, image_pk: int, action: str, author: str,
    boxes: list[list[int]] | None = None,
) -> Image:
    """Decide an image held for doubtful burned-in text, as an event with its author.

    ``release``: no PHI, de-identified as is (state ``deidentified``). ``redact``: *boxes* (default: the
    candidate boxes) are redacted, the image re-encoded losslessly if it was compressed, the boxes stored in
    ``redactions`` (state ``deidentified``). ``discard``: the image never reaches a release (``filtered_out``).
    The event keeps the boxes as coordinates, never text.

    Raises
    ------
    ValueError
        Unknown action, malformed boxes, or an empty author.
    NotFoundError
        No such image, or its source file is missing.
    ConflictError
        The image is not held for text review (decided meanwhile).
    FileError
        The source cannot be de-identified (the message names no header value), or a box lies outside it.
    """
    from cxrlab.deid.engine import deidentify_reviewed
    from cxrlab.deid.profiles import get_profile

    if action not in TEXT_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(TEXT_ACTIONS)}")
    if not (author or "").strip():
        raise ValueError("a decision needs its author")
    chosen = _check_boxes(boxes) if action == "redact" and boxes is not None else None
    with transaction(session):
        img = lock_waiting(session, image_pk, lambda i: i.state == ImageState.FLAGGED_TEXT, "for text review")
        detail: dict = {"was": "flagged_text"}
        if action == "discard":
            img.state, img.state_reason = ImageState.FILTERED_OUT, "discarded: burned-in text"
        else:
            if action == "redact" and chosen is None:
                chosen = [tuple(b) for b in candidate_boxes(ws, img.image_id or "")]
                if not chosen:
                    raise ValueError("no candidate boxes recorded for this image: give the boxes to redact")
            src = triage_file(ws, img)
            result = deidentify_reviewed(src, ws.path("images"), profile=get_profile(ws.settings.deid_profile),
                                         key=ws.secret_key(), boxes=list(chosen) if chosen else None)
            if result.image_id != img.image_id:
                raise FileError(src, "the source no longer matches the catalog (its image id changed)")
            out = ws.path("images", f"{result.image_id}.dicom")
            img.deid_path, img.deid_file_size = f"images/{result.image_id}.dicom", out.stat().st_size
            img.state, img.state_reason = ImageState.DEIDENTIFIED, None
            if result.redacted_boxes:
                boxes_out = [list(b) for b in result.redacted_boxes]
                session.merge(Redaction(image_id=result.image_id, boxes=boxes_out,
                                        transfer_syntax=result.reencoded_to or "", reencoded=bool(result.reencoded_to)))
                detail["boxes"] = boxes_out
        session.add(Event(image_pk=img.id, stage="deid", action=f"text.{action}", author=author.strip(),
                          detail=detail))
    # The stored thumbnail showed the source's pixels, burned-in text included: gone with the decision (a
    # redacted image's thumbnail is written again by the filter stage, or by the triage page when asked).
    remove_thumbnail(ws.path(THUMB_FOLDER), img.image_id or "")
    return img


def triage_image(session: Session, image_pk: int) -> Image:
    """The image *image_pk* if it waits in one of the queues (what the triage page may render).

    Raises
    ------
    NotFoundError
        No such image, or it waits in no queue (so nothing else can be fetched through the triage page).
    """
    img = session.get(Image, image_pk)
    if img is None or img.image_id is None or not any(
            session.scalar(select(Image.id).where(Image.id == image_pk, _queue_filter(q))) for q in QUEUES):
        raise NotFoundError("no such image in the triage queues")
    return img
