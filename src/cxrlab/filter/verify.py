"""Human verification of the filter's decisions: the queue, one decision as an event with its author, and the
decisions as training labels.

The seeds filter with a light CNN, then "a team of readers verifies case by case and removes what the algorithm
missed" (VinDr-CXR data descriptor, "Data filtering"). Images the filter is not sure of, and a random audit sample
of the ones it accepted (:data:`~cxrlab.filter.stage.DEFAULT_AUDIT_FRACTION`), wait in state
``needs_verification``. A verifier's decision moves the image to ``accepted`` or ``filtered_out`` and is kept as an
:class:`~cxrlab.catalog.models.Event` (``stage="filter"``, ``action="verify.accept"`` or ``"verify.outlier"``,
``author`` the verifier). These functions are what every shell calls (the CLI today, the web app's triage page
next); nothing here depends on the labeling stage. :func:`training_decisions` collects these decisions, the
readers' "unusable" reason codes (``stage="annotate"``, ``action="image.unusable"``) and the images readers
labeled, for ``cxrlab filter train -w``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.catalog.db import transaction
from cxrlab.catalog.models import Event, Image, ImageState
from cxrlab.errors import ConflictError, NotFoundError
from cxrlab.filter.classes import OUTLIER_CLASSES, READER_CODES, VERIFY_ACTIONS, population_outlier

__all__ = ["TrainingDecision", "record_verification", "training_decisions", "verification_queue"]

#: Image states whose images readers have read (they were kept as frontal chests of the population).
_READ_STATES = (ImageState.LABELED, ImageState.REVIEWED, ImageState.RELEASED)


def lock_waiting(session: Session, image_pk: int, waiting: Callable[[Image], bool], queue: str) -> Image:
    """The image row locked for a human decision (``SELECT ... FOR UPDATE`` on PostgreSQL), while it still waits
    in *queue* (``waiting(image)``); one rule for every queue of the triage page, so that two people deciding the
    same image at once never both succeed.

    Raises
    ------
    NotFoundError
        No such image.
    ConflictError
        The image no longer waits in *queue* (someone decided it meanwhile).
    """
    img = session.get(Image, image_pk, with_for_update=True)
    if img is None:
        raise NotFoundError("no such image")
    if not waiting(img):
        raise ConflictError(f"the image is not waiting {queue} (it was decided meanwhile)")
    return img


def verification_queue(session: Session, *, limit: int = 48, after_pk: int | None = None) -> list[Image]:
    """The images waiting for a verifier, oldest first (by catalog id), one page at a time.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A catalog session.
    limit : int, optional
        Page size (the triage page shows 24-48 thumbnails).
    after_pk : int, optional
        Continue after this catalog id (the last image of the previous page).

    Returns
    -------
    list of Image
        Images in state ``needs_verification``; their ``state_reason`` says why (uncertain class, audit sample).
    """
    q = select(Image).where(Image.state == ImageState.NEEDS_VERIFICATION)
    if after_pk is not None:
        q = q.where(Image.id > after_pk)
    return list(session.scalars(q.order_by(Image.id).limit(max(1, int(limit)))))


def record_verification(
    session: Session, *, image_pk: int, action: str, author: str, reason: str | None = None
) -> Image:
    """Record a verifier's decision on an image waiting for verification.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A catalog session (the write is one transaction through :func:`cxrlab.catalog.transaction`).
    image_pk : int
        Catalog id of the image.
    action : {"accept", "outlier"}
        ``accept`` makes it ``accepted``; ``outlier`` makes it ``filtered_out`` with *reason*.
    author : str
        Who decided (a user name; kept on the event).
    reason : str, optional
        For ``outlier``: one of :data:`~cxrlab.filter.classes.OUTLIER_CLASSES` (the class the verifier saw).

    Returns
    -------
    Image
        The image, in its new state.

    Raises
    ------
    ValueError
        Unknown action, a missing or unknown reason for ``outlier``, or an empty author.
    NotFoundError
        No such image.
    ConflictError
        The image is not waiting for verification (someone else decided it meanwhile).
    """
    if action not in VERIFY_ACTIONS:
        raise ValueError(f"action must be one of {', '.join(VERIFY_ACTIONS)}")
    if not (author or "").strip():
        raise ValueError("a verification needs its author")
    if action == "outlier" and reason not in OUTLIER_CLASSES:
        raise ValueError(f"an outlier needs one of the reasons {', '.join(OUTLIER_CLASSES)}")
    with transaction(session):
        img = lock_waiting(session, image_pk, lambda i: i.state == ImageState.NEEDS_VERIFICATION, "for verification")
        before = img.state_reason
        if action == "accept":
            img.state, img.state_reason = ImageState.ACCEPTED, None
        else:
            img.state, img.state_reason = ImageState.FILTERED_OUT, f"verified: {reason}"
        session.add(Event(image_pk=img.id, stage="filter", action=f"verify.{action}", author=author.strip(),
                          detail={"reason": reason if action == "outlier" else None, "was": before}))
    return img


@dataclass(frozen=True)
class TrainingDecision:
    """One image a human decided, as a training example.

    Attributes
    ----------
    image_pk : int
        Catalog id.
    path : str
        The de-identified file, relative to the workspace.
    klass : str
        ``frontal_chest`` (of the population's age group) or one of
        :data:`~cxrlab.filter.classes.OUTLIER_CLASSES`.
    source : str
        ``verification``, ``reader`` (an "unusable" reason code) or ``labeled`` (read by readers).
    """

    image_pk: int
    path: str
    klass: str
    source: str


def training_decisions(session: Session, *, population: str) -> list[TrainingDecision]:
    """Every human decision of the workspace that names a model class, the latest one per image.

    Sources, the later overriding the earlier for one image: images readers labeled (``labeled``, ``reviewed``,
    ``released``: frontal chests of the population), readers' "unusable" reason codes
    (:data:`~cxrlab.filter.classes.READER_CODES`; ``wrong_age_group`` is the age group that is wrong for
    *population*), verifications (:func:`record_verification`) and set-aside images a verifier returned to reading
    (:func:`cxrlab.annotate.setaside.decide_set_aside`: frontal chests). Images without a de-identified file are
    left out.

    Parameters
    ----------
    session : sqlalchemy.orm.Session
        A catalog session.
    population : {"adult", "pediatric", "any"}
        The workspace population.

    Returns
    -------
    list of TrainingDecision
        In catalog id order.
    """
    wrong = population_outlier(population)
    found: dict[int, tuple[str, str]] = {}
    for (pk,) in session.execute(select(Image.id).where(Image.state.in_(_READ_STATES))):
        found[pk] = ("frontal_chest", "labeled")
    events = session.execute(
        select(Event.image_pk, Event.stage, Event.action, Event.detail)
        .where(Event.image_pk.is_not(None),
               ((Event.stage == "annotate") & (Event.action == "image.unusable"))
               | ((Event.stage == "filter") & Event.action.in_([f"verify.{a}" for a in (*VERIFY_ACTIONS, "return")])))
        .order_by(Event.id)
    )
    for pk, stage, action, detail in events:
        reason = (detail or {}).get("reason")
        if stage == "annotate":
            klass = READER_CODES.get(reason or "")
            if klass == "wrong_age_group":
                klass = wrong
            if klass is None:
                continue
            found[pk] = (klass, "reader")
        elif action in ("verify.accept", "verify.return"):  # a set-aside image returned to reading is usable
            found[pk] = ("frontal_chest", "verification")
        elif reason in OUTLIER_CLASSES:
            found[pk] = (reason, "verification")
    if not found:
        return []
    paths = dict(session.execute(select(Image.id, Image.deid_path).where(Image.id.in_(list(found)))).all())
    return [TrainingDecision(pk, paths[pk], k, s) for pk, (k, s) in sorted(found.items()) if paths.get(pk)]
