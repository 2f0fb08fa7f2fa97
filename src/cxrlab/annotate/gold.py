"""Gold-standard tasks (reader QA): images already decided, read again by readers who do not know it.

An admin marks a set of decided images of a project as *gold* (:func:`mark_gold`): images with a consensus
(``consensus_labels``/``consensus_boxes``: the reviewers' decision, or the majority vote and fused boxes) or an
expert's read (a ``readings`` row of one reader id). Their decided marks are copied into ``gold_standards``.
``cxrlab annotate assign --gold-rate 0.05`` then mixes gold tasks into the readers' queues
(:func:`plan_gold_tasks`, called by :func:`cxrlab.annotate.assignment.assign_images`): each is an ordinary read
task with ``tasks.gold`` set, created in the same run as the new normal tasks and interleaved with them, ordered
by the same seeded hash as every task, and answered by the API exactly like any other task — the server never
tells a reader which tasks are gold. A reader's gold reads are scored against the gold marks
(:func:`cxrlab.consensus.reader_quality`: per-label sensitivity and specificity, box F1 at IoU 0.4) and never
enter the readings, a review, the consensus or a release.

The anchors are CVAT's "ground truth jobs" and Label Studio Enterprise's ground-truth agreement; here the gold
set is blinded to readers and the scoring is open.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from cxrlab.annotate.marks import Box, Marks
from cxrlab.annotate.projects import project_schema
from cxrlab.annotate.readings import QCError, check_reading
from cxrlab.annotate.writes import insert_events, transaction
from cxrlab.catalog.models import (
    REVIEW_METHOD,
    ConsensusBox,
    ConsensusLabel,
    GoldStandard,
    Image,
    ImageState,
    Project,
    Reading,
    Task,
    TaskKind,
    TaskState,
    User,
)
from cxrlab.errors import CxrlabError
from cxrlab.runtime.report import StageReport

__all__ = [
    "CONSENSUS",
    "DECIDED_STATES",
    "MAX_GOLD_RATE",
    "gold_reads",
    "gold_standards",
    "interleave",
    "list_gold",
    "mark_gold",
    "plan_gold_tasks",
    "unmark_gold",
]

#: ``source`` of gold marks taken from the image's consensus; an expert's read is ``reader:<rad_id>``.
CONSENSUS = "consensus"
#: Image states of a decided image (its reads are in, and a consensus or review may have settled it).
DECIDED_STATES = (ImageState.LABELED, ImageState.REVIEWED, ImageState.RELEASED)
#: The largest share of gold tasks in a queue: beyond it readers would mostly re-read decided images.
MAX_GOLD_RATE = 0.5
#: Offset of the seed that picks which gold images a reader gets (the queue order uses the project's seed).
_PICK_SEED = 104729


def _source(source: str) -> tuple[str, str | None]:
    """``(source, rad_id)`` of a gold source: ``consensus`` or ``reader:<rad_id>``."""
    source = (source or "").strip()
    if source == CONSENSUS:
        return source, None
    if source.startswith("reader:") and source[7:].strip():
        return f"reader:{source[7:].strip()}", source[7:].strip()
    raise CxrlabError(f"gold source must be {CONSENSUS!r} or 'reader:<rad_id>' (an expert's read)")


def _consensus_marks(session: Session, image: Image) -> Marks | None:
    """The decided marks of *image* from its consensus rows, or None without any.

    Labels: the positive ``consensus_labels``. Boxes: every box a reviewer decided (``method == "review"``) and the
    fused boxes drawn by more than half of the image's readers (the release's own rule, :func:`cxrlab.export.
    consensus_boxes_shown`), so the gold marks are what a release would show.
    """
    rows = session.execute(select(ConsensusLabel.label, ConsensusLabel.positive, ConsensusLabel.readers)
                           .where(ConsensusLabel.image_pk == image.id).order_by(ConsensusLabel.id)).all()
    if not rows:
        return None
    readers = max(r for _, _, r in rows)
    labels = [label for label, positive, _ in rows if positive]
    boxes = [
        Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max)
        for b in session.scalars(select(ConsensusBox).where(ConsensusBox.image_pk == image.id)
                                 .order_by(ConsensusBox.id))
        if b.method == REVIEW_METHOD or not readers or b.votes > readers / 2
    ]
    return Marks(labels, boxes)


def _reader_marks(session: Session, image: Image, rad_id: str) -> Marks | None:
    reading = session.scalar(select(Reading).where(Reading.image_pk == image.id, Reading.rad_id == rad_id))
    if reading is None:
        return None
    return Marks([lb.label for lb in reading.labels],
                 [Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max) for b in reading.boxes])


def mark_gold(
    session: Session, *, project: Project, image_ids: Sequence[str], source: str = CONSENSUS, author: str = "cli"
) -> StageReport:
    """Mark decided images as gold in *project*, with their decided marks (replacing earlier gold marks).

    Parameters
    ----------
    image_ids : list of str
        The images; each must be de-identified and decided (``labeled``, ``reviewed`` or ``released``).
    source : str
        ``consensus`` (the image's consensus rows) or ``reader:<rad_id>`` (that expert's read).
    author : str
        Who marks them (the admin's user name; ``cli`` from the command line); each image gets a ``gold.mark``
        event with it.

    Raises
    ------
    CxrlabError
        Unknown or undecided image, no consensus / no read by that reader, or a decided label that the project's
        schema does not have (the message names the image and the label). Nothing is stored then.
    """
    source, rad_id = _source(source)
    schema = project_schema(project)
    report = StageReport("gold")
    with transaction(session):
        for image_id in dict.fromkeys(image_ids):
            image = session.scalar(select(Image).where(Image.image_id == image_id, Image.deid_path.is_not(None)))
            if image is None:
                raise CxrlabError(f"image {image_id!r} not found")
            if image.state not in DECIDED_STATES:
                raise CxrlabError(f"image {image_id!r} is {image.state.value}, not decided (labeled, reviewed or "
                                  "released)")
            marks = _consensus_marks(session, image) if rad_id is None else _reader_marks(session, image, rad_id)
            if marks is None:
                what = "no consensus" if rad_id is None else f"no read by {rad_id}"
                raise CxrlabError(f"image {image_id!r} has {what}")
            marks = marks.normalized()
            try:
                check_reading(marks.reading(image_id, "gold"), schema, rows=image.rows, columns=image.columns,
                              partial=True)
            except QCError as exc:
                raise CxrlabError(f"image {image_id!r}: {exc} (project {project.name!r})") from None
            stored = {k: v for k, v in marks.to_json().items() if k != "comment"}
            row = session.scalar(select(GoldStandard).where(GoldStandard.project_id == project.id,
                                                            GoldStandard.image_pk == image.id))
            if row is None:
                session.add(GoldStandard(project_id=project.id, image_pk=image.id, marks=stored, source=source,
                                         author=author))
                report.counts["marked"] += 1
            else:
                row.marks, row.source, row.author = stored, source, author
                report.counts["updated"] += 1
            insert_events(session, [{"image_pk": image.id, "stage": "annotate", "action": "gold.mark",
                                     "author": author, "detail": {"project": project.name, "source": source}}])
    return report


def unmark_gold(session: Session, *, project: Project, image_ids: Sequence[str], author: str = "cli") -> StageReport:
    """Stop using images as gold in *project*: their gold marks go, and the gold tasks not yet submitted are
    cancelled (submitted gold reads stay in the catalog but are no longer scored)."""
    report = StageReport("gold")
    with transaction(session):
        pks = dict(session.execute(select(Image.image_id, Image.id).where(Image.image_id.in_(list(image_ids)))).all())
        rows = list(session.scalars(select(GoldStandard).where(GoldStandard.project_id == project.id,
                                                              GoldStandard.image_pk.in_(list(pks.values())))))
        for row in rows:
            session.delete(row)
        gone = [row.image_pk for row in rows]
        if gone:
            result = session.execute(
                update(Task)
                .where(Task.project_id == project.id, Task.gold.is_(True), Task.image_pk.in_(gone),
                       Task.state.in_((TaskState.PENDING, TaskState.DRAFT)))
                .values(state=TaskState.CANCELLED, version=Task.version + 1)
                .execution_options(synchronize_session=False)
            )
            report.counts["tasks_cancelled"] = result.rowcount
        insert_events(session, [{"image_pk": pk, "stage": "annotate", "action": "gold.unmark", "author": author,
                                 "detail": {"project": project.name}} for pk in gone])
        report.counts["unmarked"] = len(gone)
    return report


def gold_standards(session: Session, *, project: Project) -> dict[str, Marks]:
    """``image_id -> decided marks`` of the gold images of *project*."""
    return {
        image_id: Marks.from_json(marks)
        for image_id, marks in session.execute(
            select(Image.image_id, GoldStandard.marks).join(Image, Image.id == GoldStandard.image_pk)
            .where(GoldStandard.project_id == project.id).order_by(Image.image_id)
        )
    }


def list_gold(session: Session, *, project: Project) -> list[dict]:
    """The gold images of *project* for admins: ``image_id, source, author, created_at, labels, boxes`` and
    ``reads`` (gold reads submitted) and ``open`` (gold tasks still in queues)."""
    counts: dict[tuple[int, str], int] = {
        (pk, state.value): n
        for pk, state, n in session.execute(
            select(Task.image_pk, Task.state, func.count(Task.id))
            .where(Task.project_id == project.id, Task.gold.is_(True)).group_by(Task.image_pk, Task.state)
        )
    }
    out = []
    for image_id, row in session.execute(
        select(Image.image_id, GoldStandard).join(Image, Image.id == GoldStandard.image_pk)
        .where(GoldStandard.project_id == project.id).order_by(Image.image_id)
    ):
        marks = Marks.from_json(row.marks)
        out.append({"image_id": image_id, "source": row.source, "author": row.author, "created_at": row.created_at,
                    "labels": marks.labels, "boxes": len(marks.boxes),
                    "reads": counts.get((row.image_pk, TaskState.SUBMITTED.value), 0),
                    "open": sum(counts.get((row.image_pk, s.value), 0) for s in (TaskState.PENDING, TaskState.DRAFT))})
    return out


def gold_reads(session: Session, *, project: Project) -> list[tuple[str, str, str, Marks]]:
    """Every submitted gold read of *project* as ``(image_id, rad_id, username, marks)``, sorted, for images that
    are still gold."""
    stmt = (
        select(Image.image_id, User.rad_id, User.username, Task.draft)
        .join(Image, Image.id == Task.image_pk)
        .join(User, User.id == Task.user_id)
        .join(GoldStandard, (GoldStandard.project_id == Task.project_id) & (GoldStandard.image_pk == Task.image_pk))
        .where(Task.project_id == project.id, Task.gold.is_(True), Task.kind == TaskKind.READ,
               Task.state == TaskState.SUBMITTED)
        .order_by(Image.image_id, User.rad_id, User.username)
    )
    return [(image_id, rad_id or username, username, Marks.from_json(draft))
            for image_id, rad_id, username, draft in session.execute(stmt)]


def plan_gold_tasks(
    session: Session, *, project: Project, rate: float, readers: Sequence[User], new_tasks: Counter
) -> tuple[list[tuple[User, int, str]], list[str]]:
    """Which gold images each reader reads next, so that about *rate* of the reader's read tasks in *project* are
    gold; only readers who get new normal tasks in this run (*new_tasks*: user id -> count) get gold ones, so that
    gold tasks are created among normal ones.

    A reader never gets a gold image it has a task on (in any project) or a read of. Which gold images is a
    seeded choice per reader (the project's seed).

    Returns
    -------
    plan : list of (user, image pk, image_id)
    notes : list of str
        Readers who got fewer gold tasks than the rate asks (not enough gold images they have not read).
    """
    if not 0.0 <= rate <= MAX_GOLD_RATE:
        raise CxrlabError(f"gold rate must lie in [0, {MAX_GOLD_RATE}]")
    golds = session.execute(
        select(Image.id, Image.image_id).join(GoldStandard, GoldStandard.image_pk == Image.id)
        .where(GoldStandard.project_id == project.id)
    ).all()
    plan: list[tuple[User, int, str]] = []
    notes: list[str] = []
    if rate == 0 or not golds:
        if rate and not golds:
            notes.append(f"project {project.name!r} has no gold images (mark some with `cxrlab annotate gold`)")
        return plan, notes
    have = Counter(dict(session.execute(
        select(Task.user_id, func.count(Task.id))
        .where(Task.project_id == project.id, Task.kind == TaskKind.READ, Task.state != TaskState.CANCELLED)
        .group_by(Task.user_id)
    ).all()))
    gold_have = Counter(dict(session.execute(
        select(Task.user_id, func.count(Task.id))
        .where(Task.project_id == project.id, Task.gold.is_(True), Task.state != TaskState.CANCELLED)
        .group_by(Task.user_id)
    ).all()))
    for user in readers:
        if not new_tasks.get(user.id):
            continue
        normal = have[user.id] - gold_have[user.id] + new_tasks[user.id]
        need = int(normal * rate / (1 - rate) + 0.5) - gold_have[user.id]
        if need <= 0:
            continue
        seen = set(session.scalars(select(Task.image_pk).where(Task.user_id == user.id)))
        if user.rad_id:
            seen |= set(session.scalars(select(Reading.image_pk).where(Reading.rad_id == user.rad_id)))
        free = sorted(((pk, iid) for pk, iid in golds if pk not in seen),
                      key=lambda g: _pick_key(project.seed, user.id, g[1]))
        plan += [(user, pk, iid) for pk, iid in free[:need]]
        if len(free) < need:
            notes.append(f"{user.username}: {need - len(free)} gold task(s) short (no more gold images this reader "
                         "has not read)")
    return plan, notes


def _pick_key(seed: int, user_id: int, image_id: str) -> int:
    from cxrlab.annotate.assignment import order_key  # assignment imports this module

    return order_key(seed + _PICK_SEED, user_id, image_id)


def interleave(items: list, extra: list, *, seed: int) -> list:
    """*items* with *extra* inserted at seeded random positions (each position equally likely)."""
    out = list(items)
    rng = random.Random(seed)
    for item in extra:
        out.insert(rng.randint(0, len(out)), item)
    return out
