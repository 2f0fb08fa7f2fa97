"""Export a project from the labeling tool: full-fidelity JSON and the seeds' CSVs.

CSV layouts are the VinDr-CXR data descriptor's ("Data Records"; docs, "File formats"):
``annotations_{train,test}.csv`` ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id`` — train rows
keep one row per reader box with the reader's ``rad_id`` (a reader's "No finding" is one row with empty
coordinates); test rows are the reviewed consensus with an empty ``rad_id``. ``image_labels_{train,test}.csv``
``image_id,rad_id,<one 0/1 column per label>`` — one row per reader (train) or per image (test). Unlike VinDr
Lab, which exported only the reviewer's marks, the JSON keeps every reader's marks, unusable decisions, the
review's proposal, approvals and comments, and the final consensus.

Free text typed by people — read comments, unusable notes, review comments — is not de-identified and may hold
PHI (a name read off the film), so it leaves the tool only when asked for: :func:`project_json` leaves it out
unless ``include_free_text=True``, and then says so in a top-level ``warning``. Reason codes are always
exported. The CSVs carry no free text at all (the seed layouts have no column for it).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.annotate.marks import Marks
from cxrlab.annotate.projects import project_schema
from cxrlab.annotate.reviews import submitted_reads
from cxrlab.annotate.tasks import unusable_reason
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
from cxrlab.export import annotation_rows, frame_csv_text, label_rows
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables

__all__ = ["CSV_NAMES", "FREE_TEXT_WARNING", "project_csv", "project_json"]

CSV_NAMES = ("annotations_train.csv", "image_labels_train.csv", "annotations_test.csv", "image_labels_test.csv")

#: The top-level ``warning`` of a JSON export that includes free text.
FREE_TEXT_WARNING = (
    "this export includes free text typed by users (read comments, unusable notes, review comments); it is not "
    "de-identified and may contain PHI"
)


def _iso(dt: datetime | None) -> str | None:
    return dt.isoformat() if dt else None


def project_csv(session: Session, *, project: Project, name: str) -> str:
    """One of :data:`CSV_NAMES` for *project*, as CSV text (``ValueError`` for another name).

    The rows come from the release stage's builders (:func:`cxrlab.export.annotation_rows`,
    :func:`cxrlab.export.label_rows`) over the project's submitted reads (train) or reviewed consensus (test),
    so the labeling tool and ``cxrlab export`` write the seed layout with one piece of code.
    """
    if name not in CSV_NAMES:
        raise ValueError(f"unknown export {name!r} (one of {', '.join(CSV_NAMES)})")
    split = "train" if name.endswith("_train.csv") else "test"
    tables = _project_tables(session, project=project, split=split)
    consensus = split == "test"
    rows = (annotation_rows if name.startswith("annotations_") else label_rows)(tables, consensus=consensus)
    return frame_csv_text(rows)


def _project_tables(session: Session, *, project: Project, split: str) -> ReleaseTables:
    """*project*'s images of *split* as release tables: each reader's marks (train) or the reviewed consensus
    (test: images whose review is finalized, labels and boxes written by the reviewers)."""
    schema = project_schema(project)
    box_cols = ["image_id", "class_name", *BOX_COLUMNS]
    if split == "train":
        reads = submitted_reads(session, project=project, split="train")
        boxes = [[image_id, rad_id, b.class_name, b.x_min, b.y_min, b.x_max, b.y_max]
                 for image_id, rad_id, m in reads for b in m.boxes]
        labels = []
        for image_id, rad_id, m in reads:
            marked = set(m.labels) | {b.class_name for b in m.boxes}
            labels.append([image_id, rad_id, *(int(n in marked) for n in schema.names)])
        return ReleaseTables(
            schema=schema,
            images=pd.DataFrame({"image_id": sorted({r[0] for r in reads}), "split": "train"}),
            reader_boxes=pd.DataFrame(boxes, columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS]),
            reader_labels=pd.DataFrame(labels, columns=["image_id", "rad_id", *schema.names]),
        )
    finals = session.execute(
        select(Image.id, Image.image_id).join(Review, Review.image_pk == Image.id)
        .where(Review.project_id == project.id, Review.state == "finalized").order_by(Image.image_id)
    ).all()
    ids = dict(finals)
    positives: dict[int, set[str]] = {pk: set() for pk in ids}
    for pk, label in session.execute(
        select(ConsensusLabel.image_pk, ConsensusLabel.label)
        .where(ConsensusLabel.image_pk.in_(ids), ConsensusLabel.method == "review", ConsensusLabel.positive == 1)
    ):
        positives[pk].add(label)
    boxes = [
        [ids[b.image_pk], b.class_name, b.x_min, b.y_min, b.x_max, b.y_max]
        for b in session.scalars(
            select(ConsensusBox).where(ConsensusBox.image_pk.in_(ids), ConsensusBox.method == "review")
            .order_by(ConsensusBox.id)
        )
    ]
    return ReleaseTables(
        schema=schema,
        images=pd.DataFrame({"image_id": [image_id for _, image_id in finals], "split": "test"}),
        consensus_boxes=pd.DataFrame(boxes, columns=box_cols),
        consensus_labels=pd.DataFrame(
            [[image_id, *(int(n in positives[pk]) for n in schema.names)] for pk, image_id in finals],
            columns=["image_id", *schema.names],
        ),
    )


def project_json(session: Session, *, project: Project, include_free_text: bool = False) -> dict[str, Any]:
    """Everything the project holds, per image: every task (reads with marks, unusable reason codes; review
    tasks; ``gold`` true for a gold-standard read, which the seed CSVs leave out), the review (proposal,
    approvals, comments) and the final consensus.

    Every box of a read or a proposal has a ``source``: ``reader`` (drawn by the reader) or ``suggestion``
    (accepted from the model's suggestions, with the ``model``'s SHA-256 and the suggestion's ``score``; an
    accepted box the reader then edited stays a suggestion); the top-level ``suggest`` names the project's
    detector run (null: model-assisted reading off), so a study can measure how suggestions bias readers.

    Parameters
    ----------
    include_free_text : bool
        Also export what people typed: read and proposal comments (``marks.comment``), unusable notes
        (``note``) and the text of review comments. Off by default, since that text is not de-identified;
        when on, the export carries a top-level ``warning`` (:data:`FREE_TEXT_WARNING`). ``free_text`` says
        which it is.
    """
    schema = project_schema(project)
    images = session.execute(
        select(Image.id, Image.image_id, Image.split, Image.state)
        .where(Image.id.in_(select(Task.image_pk).where(Task.project_id == project.id)))
        .order_by(Image.image_id)
    ).all()
    users = {u.id: u for u in session.scalars(select(User))}

    def marks(data: dict | None) -> dict | None:
        if not data:
            return None
        out = Marks.from_json(data).to_json()
        for box in out["boxes"]:  # every box says where it came from (model-assisted reading)
            box.setdefault("source", "reader")
        if not include_free_text:
            del out["comment"]
        return out

    tasks: dict[int, list[dict]] = {}
    for t in session.scalars(select(Task).where(Task.project_id == project.id).order_by(Task.id)):
        u = users[t.user_id]
        code, note = unusable_reason(t)
        entry = {
            "task_id": t.id, "kind": t.kind.value, "rad_id": u.rad_id, "username": u.username,
            "state": t.state.value, "version": t.version, "reason": code,
            "submitted_at": _iso(t.submitted_at), "marks": marks(t.draft), "gold": t.gold,
        }
        if include_free_text:
            entry["note"] = note
        tasks.setdefault(t.image_pk, []).append(entry)
    reviews = {r.image_pk: r for r in session.scalars(select(Review).where(Review.project_id == project.id))}
    comments: dict[int, list[dict]] = {}
    if reviews:
        for c in session.scalars(select(ReviewComment).where(
                ReviewComment.review_id.in_([r.id for r in reviews.values()])).order_by(ReviewComment.id)):
            comment = {"username": users[c.user_id].username, "at": _iso(c.at)}
            if include_free_text:
                comment["text"] = c.text
            comments.setdefault(c.review_id, []).append(comment)
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
                "state": review.state, "version": review.version, "proposal": marks(review.proposal),
                "approvals": {users[int(k)].username: v for k, v in (review.approvals or {}).items()},
                "comments": comments.get(review.id, []), "finalized_at": _iso(review.finalized_at),
            },
            "consensus": None if pk not in final_labels and pk not in final_boxes else {
                "labels": sorted(final_labels.get(pk, [])), "boxes": final_boxes.get(pk, []), "method": "review",
            },
        })
    warning = {"warning": FREE_TEXT_WARNING} if include_free_text else {}
    return {
        **warning,
        "project": project.name,
        "free_text": include_free_text,
        "schema": {"name": schema.name, "no_finding": schema.no_finding,
                   "labels": [{"name": lb.name, "kind": lb.kind, "definition": lb.definition} for lb in schema.labels]},
        "suggest": None if not project.suggest_model_sha256 else {
            "run": Path(project.suggest_run or "").name, "model": project.suggest_model_sha256},
        "readers_per_image": project.readers_per_image,
        "reviewers_per_test": project.reviewers_per_test,
        "images": out,
    }
