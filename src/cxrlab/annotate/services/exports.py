"""Export a project from the labeling tool: full-fidelity JSON and the seeds' CSVs.

CSV layouts are the VinDr-CXR data descriptor's ("Data Records"; DESIGN.md "Formats we must write exactly"):
``annotations_{train,test}.csv`` ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id`` — train rows
keep one row per reader box with the reader's ``rad_id`` (a reader's "No finding" is one row with empty
coordinates); test rows are the reviewed consensus with an empty ``rad_id``. ``image_labels_{train,test}.csv``
``image_id,rad_id,<one 0/1 column per label>`` — one row per reader (train) or per image (test). Unlike VinDr
Lab, which exported only the reviewer's marks, the JSON keeps every reader's marks, unusable decisions, the
review's proposal, approvals and comments, and the final consensus.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.annotate.services.marks import Marks
from cxrlab.annotate.services.projects import project_schema
from cxrlab.annotate.services.reviews import submitted_reads
from cxrlab.catalog.models import (
    ConsensusBox,
    ConsensusLabel,
    Image,
    Project,
    Review,
    ReviewComment,
    Task,
    User,
)
from cxrlab.export import ANNOTATION_COLUMNS
from cxrlab.schemas import LabelSchema

__all__ = ["CSV_NAMES", "project_csv", "project_json"]

CSV_NAMES = ("annotations_train.csv", "image_labels_train.csv", "annotations_test.csv", "image_labels_test.csv")


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def _box_row(schema: LabelSchema, image_id: str, rad_id: str, b: Any) -> list:
    return [image_id, rad_id, b.class_name, _fmt(b.x_min), _fmt(b.y_min), _fmt(b.x_max), _fmt(b.y_max),
            schema.class_id(b.class_name)]


def _no_finding_row(schema: LabelSchema, image_id: str, rad_id: str) -> list:
    return [image_id, rad_id, schema.no_finding, "", "", "", "", schema.class_id(schema.no_finding)]


def _csv(header: list[str], rows: list[list]) -> str:
    buf = io.StringIO()
    pd.DataFrame(rows, columns=header).to_csv(buf, index=False, lineterminator="\n")
    return buf.getvalue()


def project_csv(session: Session, *, project: Project, name: str) -> str:
    """One of :data:`CSV_NAMES` for *project*, as CSV text (``ValueError`` for another name)."""
    if name not in CSV_NAMES:
        raise ValueError(f"unknown export {name!r} (one of {', '.join(CSV_NAMES)})")
    schema = project_schema(project)
    split = "train" if name.endswith("_train.csv") else "test"
    labels_header = ["image_id", "rad_id", *schema.names]
    if split == "train":
        rows_a, rows_l = [], []
        for image_id, rad_id, m in submitted_reads(session, project=project, split="train"):
            marked = set(m.labels) | {b.class_name for b in m.boxes}
            rows_a += [_box_row(schema, image_id, rad_id, b) for b in m.boxes]
            if schema.no_finding in marked:
                rows_a.append(_no_finding_row(schema, image_id, rad_id))
            rows_l.append([image_id, rad_id, *(int(n in marked) for n in schema.names)])
    else:
        finals = session.execute(
            select(Image.id, Image.image_id).join(Review, Review.image_pk == Image.id)
            .where(Review.project_id == project.id, Review.state == "finalized").order_by(Image.image_id)
        ).all()
        pks = [pk for pk, _ in finals]
        positives: dict[int, set[str]] = {pk: set() for pk in pks}
        for pk, label in session.execute(
            select(ConsensusLabel.image_pk, ConsensusLabel.label)
            .where(ConsensusLabel.image_pk.in_(pks), ConsensusLabel.method == "review", ConsensusLabel.positive == 1)
        ):
            positives[pk].add(label)
        boxes: dict[int, list[ConsensusBox]] = {pk: [] for pk in pks}
        for box in session.scalars(
            select(ConsensusBox).where(ConsensusBox.image_pk.in_(pks), ConsensusBox.method == "review")
            .order_by(ConsensusBox.id)
        ):
            boxes[box.image_pk].append(box)
        rows_a, rows_l = [], []
        for pk, image_id in finals:
            rows_a += [_box_row(schema, image_id, "", b) for b in boxes[pk]]
            if schema.no_finding in positives[pk]:
                rows_a.append(_no_finding_row(schema, image_id, ""))
            rows_l.append([image_id, "", *(int(n in positives[pk]) for n in schema.names)])
    if name.startswith("annotations_"):
        return _csv(ANNOTATION_COLUMNS, rows_a)
    return _csv(labels_header, rows_l)


def project_json(session: Session, *, project: Project) -> dict[str, Any]:
    """Everything the project holds, per image: every task (reads with marks, comments, unusable reasons;
    review tasks), the review (proposal, approvals, comments) and the final consensus."""
    schema = project_schema(project)
    images = session.execute(
        select(Image.id, Image.image_id, Image.split, Image.state)
        .where(Image.id.in_(select(Task.image_pk).where(Task.project_id == project.id)))
        .order_by(Image.image_id)
    ).all()
    users = {u.id: u for u in session.scalars(select(User))}
    tasks: dict[int, list[dict]] = {}
    for t in session.scalars(select(Task).where(Task.project_id == project.id).order_by(Task.id)):
        u = users[t.user_id]
        tasks.setdefault(t.image_pk, []).append({
            "task_id": t.id, "kind": t.kind.value, "rad_id": u.rad_id, "username": u.username,
            "state": t.state.value, "version": t.version, "reason": t.reason,
            "submitted_at": _iso(t.submitted_at), "marks": Marks.from_json(t.draft).to_json() if t.draft else None,
        })
    reviews = {r.image_pk: r for r in session.scalars(select(Review).where(Review.project_id == project.id))}
    comments: dict[int, list[dict]] = {}
    if reviews:
        for c in session.scalars(select(ReviewComment).where(
                ReviewComment.review_id.in_([r.id for r in reviews.values()])).order_by(ReviewComment.id)):
            comments.setdefault(c.review_id, []).append(
                {"username": users[c.user_id].username, "text": c.text, "at": _iso(c.at)})
    pks = [pk for pk, *_ in images]
    final_labels: dict[int, list[str]] = {}
    for pk, label in session.execute(select(ConsensusLabel.image_pk, ConsensusLabel.label).where(
            ConsensusLabel.image_pk.in_(pks), ConsensusLabel.method == "review", ConsensusLabel.positive == 1)):
        final_labels.setdefault(pk, []).append(label)
    final_boxes: dict[int, list[dict]] = {}
    for b in session.scalars(select(ConsensusBox).where(ConsensusBox.image_pk.in_(pks),
                                                        ConsensusBox.method == "review")):
        final_boxes.setdefault(b.image_pk, []).append(
            {"class_name": b.class_name, "x_min": b.x_min, "y_min": b.y_min, "x_max": b.x_max, "y_max": b.y_max,
             "author": b.author})
    out = []
    for pk, image_id, split, state in images:
        review = reviews.get(pk)
        out.append({
            "image_id": image_id, "split": split, "state": state.value, "tasks": tasks.get(pk, []),
            "review": None if review is None else {
                "state": review.state, "version": review.version, "proposal": review.proposal,
                "approvals": {users[int(k)].username: v for k, v in (review.approvals or {}).items()},
                "comments": comments.get(review.id, []), "finalized_at": _iso(review.finalized_at),
            },
            "consensus": None if pk not in final_labels and pk not in final_boxes else {
                "labels": sorted(final_labels.get(pk, [])), "boxes": final_boxes.get(pk, []), "method": "review",
            },
        })
    return {
        "project": project.name,
        "schema": {"name": schema.name, "no_finding": schema.no_finding,
                   "labels": [{"name": lb.name, "kind": lb.kind, "definition": lb.definition} for lb in schema.labels]},
        "readers_per_image": project.readers_per_image,
        "reviewers_per_test": project.reviewers_per_test,
        "images": out,
    }
