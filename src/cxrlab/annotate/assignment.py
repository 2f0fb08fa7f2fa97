"""Assign images to blinded readers, and test images to a pair of reviewers.

VinDr-CXR data descriptor, "Data annotation": each training image was read independently by 3 radiologists,
each test image by 3 readers whose labels 2 senior radiologists then settled, and "to ensure the complete
blindness among annotators, the images were randomly shuffled before being assigned to each of them".

Tasks are handed out here, once, in one transaction: every image gets exactly ``readers_per_image`` read tasks
(a unique constraint forbids a second task for the same reader and image), so the readers-per-image cap
cannot be broken by concurrent requests — there is no shared pool to race for. Each reader's queue order is
a seeded shuffle: ``order_key`` = a hash of (seed, reader, image), stable when images are added later.
Readers are chosen per image by least load, ties broken by the same seeded hash.

With a gold rate (``--gold-rate 0.05``), gold-standard tasks (:mod:`cxrlab.annotate.gold`) go out in the same
transaction: each reader who gets new tasks gets gold ones too, so that about that share of the reader's read
tasks are gold. They are created among the new normal tasks at seeded random places (so their ids tell nothing)
and ordered by the same hash as every task.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Sequence

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from cxrlab.annotate.gold import interleave, plan_gold_tasks
from cxrlab.annotate.writes import transaction
from cxrlab.catalog.models import (
    Event,
    Image,
    ImageState,
    Project,
    Review,
    Task,
    TaskKind,
    TaskState,
    User,
    UserRole,
)
from cxrlab.errors import CxrlabError
from cxrlab.runtime.report import StageReport

__all__ = ["assign_images", "assignable_count", "order_key"]

#: Splits named as in the seeds' releases.
TRAIN, TEST = "train", "test"


def assignable_count(session: Session) -> int:
    """How many accepted, de-identified images no project has assigned yet (what :func:`assign_images` takes)."""
    taken = exists().where(Task.image_pk == Image.id)
    return session.scalar(
        select(func.count(Image.id)).where(Image.state == ImageState.ACCEPTED, Image.image_id.is_not(None),
                                           Image.deid_path.is_not(None), ~taken)
    ) or 0


def order_key(seed: int, user_id: int, image_id: str) -> int:
    """Seeded pseudo-random position of *image_id* in user *user_id*'s queue (31-bit, deterministic)."""
    digest = hashlib.sha256(f"{seed}:{user_id}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


def _pick(candidates: Sequence[User], k: int, load: Counter, seed: int, image_id: str) -> list[User]:
    ranked = sorted(candidates, key=lambda u: (load[u.id], order_key(seed + 7919, u.id, image_id)))
    return ranked[:k]


def _users(session: Session, role: UserRole, names: Sequence[str] | None) -> list[User]:
    stmt = select(User).where(User.role == role, User.active.is_(True)).order_by(User.id)
    users = list(session.scalars(stmt))
    if names:
        by_name = {u.username: u for u in users}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise CxrlabError(f"not an active {role.value}: {', '.join(missing)}")
        users = [by_name[n] for n in names]
    return users


def assign_images(
    session: Session,
    *,
    project: Project,
    test_fraction: float = 0.0,
    readers: Sequence[str] | None = None,
    reviewers: Sequence[str] | None = None,
    limit: int | None = None,
    image_ids: Sequence[str] | None = None,
    gold_rate: float = 0.0,
    author: str = "system",
) -> StageReport:
    """Assign every accepted, not yet assigned image to the project's readers (and reviewers for test images).

    Parameters
    ----------
    project : Project
        Its ``readers_per_image``, ``reviewers_per_test`` and ``seed`` are used.
    test_fraction : float
        Share of images without a split that go to the test split (chosen by a seeded hash of the
        ``image_id``); images that already have a split keep it.
    readers, reviewers : list of str, optional
        User names to draw from (default: every active annotator / reviewer).
    limit : int, optional
        Assign at most this many images (by ``image_id``).
    image_ids : list of str, optional
        Only these images (each still has to be accepted and unassigned).
    gold_rate : float
        Share of each reader's read tasks in the project that are gold-standard tasks (0 to
        :data:`~cxrlab.annotate.gold.MAX_GOLD_RATE`): readers who get new tasks get gold ones with them
        (:func:`~cxrlab.annotate.gold.plan_gold_tasks`). Gold tasks go out only with new images.
    author : str
        Who assigns (an admin's user name): the ``assigned`` events name it.

    Returns
    -------
    StageReport
        Counts of images per split and of tasks (``gold_tasks`` among the read tasks).

    Raises
    ------
    CxrlabError
        Fewer readers than ``readers_per_image``, or test images and fewer reviewers than
        ``reviewers_per_test``.
    """
    if not 0.0 <= test_fraction <= 1.0:
        raise CxrlabError("test fraction must lie in [0, 1]")
    if not 0.0 <= gold_rate <= 0.5:
        raise CxrlabError("gold rate must lie in [0, 0.5]")
    t0 = time.perf_counter()
    report = StageReport("assign")
    with transaction(session):
        reader_pool = _users(session, UserRole.ANNOTATOR, readers)
        if len(reader_pool) < project.readers_per_image:
            raise CxrlabError(
                f"project {project.name!r} needs {project.readers_per_image} readers per image; "
                f"{len(reader_pool)} active annotator(s) available (add some with `cxrlab users add`)"
            )
        taken = exists().where(Task.image_pk == Image.id)
        stmt = (
            select(Image)
            .where(Image.state == ImageState.ACCEPTED, Image.image_id.is_not(None), Image.deid_path.is_not(None))
            .where(~taken)
            .order_by(Image.image_id)
        )
        if image_ids is not None:
            stmt = stmt.where(Image.image_id.in_(list(image_ids)))
        if limit is not None:
            stmt = stmt.limit(limit)
        images = list(session.scalars(stmt))
        if not images:
            report.notes.append("no accepted images left to assign")
            return report
        unsplit = sorted((i for i in images if not i.split), key=lambda i: order_key(project.seed, 0, i.image_id))
        n_test = round(test_fraction * len(unsplit))
        for k, img in enumerate(unsplit):
            img.split = TEST if k < n_test else TRAIN
        review_pool: list[User] = []
        if any(i.split == TEST for i in images):
            review_pool = _users(session, UserRole.REVIEWER, reviewers)
            if len(review_pool) < project.reviewers_per_test:
                raise CxrlabError(
                    f"test images need {project.reviewers_per_test} reviewers; "
                    f"{len(review_pool)} active reviewer(s) available"
                )
        load = Counter(
            dict(
                session.execute(
                    select(Task.user_id, func.count(Task.id))
                    .where(Task.project_id == project.id, Task.gold.is_(False))
                    .group_by(Task.user_id)
                ).all()
            )
        )
        planned: list[Task] = []
        new_reads: Counter = Counter()
        for img in images:
            for user in _pick(reader_pool, project.readers_per_image, load, project.seed, img.image_id):
                load[user.id] += 1
                new_reads[user.id] += 1
                planned.append(_task(project, img.id, img.image_id, user, TaskKind.READ, TaskState.PENDING))
                report.counts["read_tasks"] += 1
            if img.split == TEST:
                for user in _pick(review_pool, project.reviewers_per_test, load, project.seed, img.image_id):
                    load[user.id] += 1
                    planned.append(_task(project, img.id, img.image_id, user, TaskKind.REVIEW, TaskState.WAITING))
                    report.counts["review_tasks"] += 1
                session.add(Review(project_id=project.id, image_pk=img.id, state="waiting", version=0, approvals={}))
            img.state = ImageState.ASSIGNED
            session.add(
                Event(
                    image_pk=img.id,
                    stage="annotate",
                    action="assigned",
                    author=author,
                    detail={"project": project.name, "split": img.split},
                )
            )
            report.counts[f"images_{img.split}"] += 1
        plan, notes = plan_gold_tasks(session, project=project, rate=gold_rate, readers=reader_pool,
                                      new_tasks=new_reads)
        gold = []
        for user, image_pk, image_id in plan:
            task = _task(project, image_pk, image_id, user, TaskKind.READ, TaskState.PENDING)
            task.gold = True
            gold.append(task)
            session.add(Event(image_pk=image_pk, stage="annotate", action="gold.assigned", author=author,
                              detail={"project": project.name, "rad_id": user.rad_id}))
        # one add per task, in this order: the ids follow it, so a gold task's id lies among the new ones
        session.add_all(interleave(planned, gold, seed=project.seed + len(planned)))
        if gold_rate:
            report.counts["gold_tasks"] = len(gold)
        report.notes += notes
    report.seconds = time.perf_counter() - t0
    return report


def _task(project: Project, image_pk: int, image_id: str, user: User, kind: TaskKind, state: TaskState) -> Task:
    return Task(
        project_id=project.id,
        image_pk=image_pk,
        user_id=user.id,
        kind=kind,
        state=state,
        order_key=order_key(project.seed, user.id, image_id),
        version=0,
        gold=False,
    )
