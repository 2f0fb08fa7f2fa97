"""Project dashboard: progress per split and per reader, throughput, unusable images, inter-reader agreement.

Agreement follows the seeds' release statistics: Fleiss' kappa per label over the images every one of their
readers submitted (labels as the readers marked them; a local label counts when the reader drew a box of that
class), and pairwise box agreement between readers at IoU 0.4 (the VinDr-CXR challenge's matching threshold).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cxrlab.annotate.reasons import reason_title
from cxrlab.annotate.services.projects import project_schema
from cxrlab.annotate.services.reviews import submitted_reads
from cxrlab.annotate.services.tasks import unusable_reason
from cxrlab.catalog.models import Image, Project, Review, Task, TaskKind, TaskState, User

__all__ = ["agreement", "progress"]


def progress(session: Session, *, project: Project, now: datetime | None = None) -> dict:
    """Counts per split (images, read tasks per state, reviews per state), per reader (tasks per state,
    submitted in the last hour and day, median seconds between a reader's submissions) and the unusable
    images with their reason codes (never the readers' free-text notes)."""
    now = now or datetime.now(UTC)
    splits: dict[str, dict] = {}
    for split, state, n in session.execute(
        select(Image.split, Task.state, func.count(Task.id))
        .join(Image, Image.id == Task.image_pk)
        .where(Task.project_id == project.id, Task.kind == TaskKind.READ)
        .group_by(Image.split, Task.state)
    ):
        entry = splits.setdefault(split or "none", {"images": 0, "tasks": {}, "reviews": {}})
        entry["tasks"][state.value] = n
    for split, n in session.execute(
        select(Image.split, func.count(func.distinct(Task.image_pk)))
        .join(Image, Image.id == Task.image_pk)
        .where(Task.project_id == project.id)
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
    return {
        "project": project.name,
        "splits": splits,
        "readers": sorted(users.values(), key=lambda u: u["rad_id"]),
        "throughput": {
            "submitted": len(submitted),
            "last_hour": sum(1 for t in submitted if now - t <= timedelta(hours=1)),
            "last_day": sum(1 for t in submitted if now - t <= timedelta(days=1)),
        },
        "unusable": unusable,
    }


def agreement(session: Session, *, project: Project) -> dict:
    """Fleiss' kappa per label and pairwise box agreement (IoU >= 0.4) between readers
    (:func:`cxrlab.consensus.agreement_report`).

    Kappa uses the images with at least 2 submitted reads; ``null`` where undefined (e.g. nobody marked the
    label). Box agreement is given for every pair of readers that read at least one image in common.
    """
    from cxrlab.consensus import agreement_report  # a later stage: the web app is a shell (DESIGN.md)

    schema = project_schema(project)
    reads = submitted_reads(session, project=project)
    marked = pd.DataFrame(
        [{"image_id": i, "rad_id": r, **{n: int(n in m.labels or any(b.class_name == n for b in m.boxes))
                                         for n in schema.names}} for i, r, m in reads],
        columns=["image_id", "rad_id", *schema.names],
    )
    counts = marked.groupby("image_id").size() if len(marked) else pd.Series(dtype=int)
    multi = counts[counts >= 2].index
    # One row per read (empty coordinates: who read the image) plus one per box, as agreement_report wants.
    boxes = pd.DataFrame(
        [{"image_id": i, "rad_id": r, "class_name": "", "x_min": None, "y_min": None, "x_max": None, "y_max": None}
         for i, r, _m in reads]
        + [{"image_id": i, "rad_id": r, "class_name": b.class_name, "x_min": b.x_min, "y_min": b.y_min,
            "x_max": b.x_max, "y_max": b.y_max} for i, r, m in reads for b in m.boxes],
        columns=["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max"],
    ).astype({c: float for c in ("x_min", "y_min", "x_max", "y_max")})
    report = agreement_report(marked[marked["image_id"].isin(multi)], boxes, schema=schema, iou_thr=0.4)
    kappa = dict(zip(report.labels["label"], report.labels["kappa"], strict=True)) if len(report.labels) else {}
    kappas = {n: None if n not in kappa or pd.isna(kappa[n]) else round(float(kappa[n]), 4) for n in schema.names}
    real = boxes.dropna(subset=["x_min"])
    read_by = marked.groupby("rad_id")["image_id"].apply(set).to_dict() if len(marked) else {}
    pairs = []
    for row in report.pairs.itertuples(index=False):
        common = read_by[row.rad_a] & read_by[row.rad_b]
        on_common = real[real["image_id"].isin(common)]
        pairs.append({"rad_a": row.rad_a, "rad_b": row.rad_b, "images": int(row.images), "matched": int(row.matched),
                      "boxes_a": int((on_common["rad_id"] == row.rad_a).sum()),
                      "boxes_b": int((on_common["rad_id"] == row.rad_b).sum()),
                      "f1": None if pd.isna(row.agreement) else round(float(row.agreement), 4)})
    return {"project": project.name, "images": int(len(multi)), "fleiss_kappa": kappas, "box_iou": 0.4,
            "box_agreement": pairs}
