"""Progress of a labeling project: per split and per reader, throughput, unusable images.

The dashboard shows it beside the readers' agreement (:func:`cxrlab.consensus.project_agreement`).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cxrlab.annotate.reasons import reason_title
from cxrlab.annotate.tasks import unusable_reason
from cxrlab.catalog.models import Image, Project, Review, Task, TaskKind, TaskState, User

__all__ = ["progress"]


def progress(session: Session, *, project: Project, now: datetime | None = None) -> dict:
    """Counts per split (images, read tasks per state, reviews per state), per reader (tasks per state,
    submitted in the last hour and day, median seconds between a reader's submissions) and the unusable
    images with their reason codes (never the readers' free-text notes).

    Gold-standard tasks count in each reader's tasks (they are part of the reader's work) but not in the splits;
    ``gold`` gives their count per state."""
    now = now or datetime.now(UTC)
    splits: dict[str, dict] = {}
    for split, state, n in session.execute(
        select(Image.split, Task.state, func.count(Task.id))
        .join(Image, Image.id == Task.image_pk)
        .where(Task.project_id == project.id, Task.kind == TaskKind.READ, Task.gold.is_(False))
        .group_by(Image.split, Task.state)
    ):
        entry = splits.setdefault(split or "none", {"images": 0, "tasks": {}, "reviews": {}})
        entry["tasks"][state.value] = n
    for split, n in session.execute(
        select(Image.split, func.count(func.distinct(Task.image_pk)))
        .join(Image, Image.id == Task.image_pk)
        .where(Task.project_id == project.id, Task.gold.is_(False))
        .group_by(Image.split)
    ):
        splits.setdefault(split or "none", {"images": 0, "tasks": {}, "reviews": {}})["images"] = n
    for split, state, n in session.execute(
        select(Image.split, Review.state, func.count(Review.id))
        .join(Image, Image.id == Review.image_pk)
        .where(Review.project_id == project.id)
        .group_by(Image.split, Review.state)
    ):
        splits.setdefault(split or "none", {"images": 0, "tasks": {}, "reviews": {}})["reviews"][state] = n

    users: dict[str, dict] = {}
    for username, rad_id, role, kind, state, n in session.execute(
        select(User.username, User.rad_id, User.role, Task.kind, Task.state, func.count(Task.id))
        .join(User, User.id == Task.user_id)
        .where(Task.project_id == project.id)
        .group_by(User.username, User.rad_id, User.role, Task.kind, Task.state)
    ):
        entry = users.setdefault(username, {"username": username, "rad_id": rad_id, "role": role.value,
                                            "tasks": {}, "last_hour": 0, "last_day": 0, "median_seconds": None})
        entry["tasks"].setdefault(kind.value, {})[state.value] = n
    times: dict[str, list[datetime]] = {}
    for username, at in session.execute(
        select(User.username, Task.submitted_at)
        .join(User, User.id == Task.user_id)
        .where(Task.project_id == project.id, Task.submitted_at.is_not(None))
        .order_by(Task.submitted_at)
    ):
        times.setdefault(username, []).append(at)
    for username, stamps in times.items():
        entry = users[username]
        entry["last_hour"] = sum(1 for t in stamps if now - t <= timedelta(hours=1))
        entry["last_day"] = sum(1 for t in stamps if now - t <= timedelta(days=1))
        gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(stamps)]
        entry["median_seconds"] = float(pd.Series(gaps).median()) if gaps else None
    unusable = []
    for image_id, rad_id, task, at in session.execute(
        select(Image.image_id, User.rad_id, Task, Task.updated_at)
        .join(Image, Image.id == Task.image_pk)
        .join(User, User.id == Task.user_id)
        .where(Task.project_id == project.id, Task.state == TaskState.UNUSABLE)
        .order_by(Task.updated_at)
    ):
        code, _note = unusable_reason(task)  # the note is free text (maybe PHI): never on the dashboard
        unusable.append({"image_id": image_id, "rad_id": rad_id, "reason": code, "reason_title": reason_title(code),
                         "at": at})
    submitted = [t for stamps in times.values() for t in stamps]
    gold = {state.value: n for state, n in session.execute(
        select(Task.state, func.count(Task.id)).where(Task.project_id == project.id, Task.gold.is_(True))
        .group_by(Task.state))}
    return {
        "project": project.name,
        "splits": splits,
        "readers": sorted(users.values(), key=lambda u: (u["rad_id"] is None, u["rad_id"] or "", u["username"])),
        "throughput": {
            "submitted": len(submitted),
            "last_hour": sum(1 for t in submitted if now - t <= timedelta(hours=1)),
            "last_day": sum(1 for t in submitted if now - t <= timedelta(days=1)),
        },
        "unusable": unusable,
        "gold": gold,
    }
