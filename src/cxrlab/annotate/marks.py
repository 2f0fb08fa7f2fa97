"""Marks on an image — global/local labels, boxes and a comment — as stored in drafts and review proposals,
and the audit rows written for every change.

A box carries a stable ``id`` (given by the client, or made here), so a save can be compared with the previous
one: every added, changed or removed box and every added or removed label becomes one ``events`` row
(``annotation.create|update|delete``, ``label.create|delete``) with the author and the task.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from cxrlab.annotate.readings import BoxInput, ReadingInput
from cxrlab.annotate.writes import insert_events

__all__ = ["EDIT_CAUSES", "SUGGESTION", "SUGGESTION_ID", "Box", "Marks", "audit_changes", "audit_rows", "edit_cause",
           "keep_provenance"]

_COORDS = ("x_min", "y_min", "x_max", "y_max")
#: Why a save was sent: a plain edit, or the viewer's undo / redo of earlier edits. An undo is saved as a new
#: version like any edit (history is never rewritten); its audit rows carry ``"cause": "undo"``.
EDIT_CAUSES = ("edit", "undo", "redo")


def edit_cause(cause: str) -> dict[str, str]:
    """The audit-context entry of a save's *cause* (none for a plain edit).

    Raises
    ------
    ValueError
        *cause* is not one of :data:`EDIT_CAUSES`.
    """
    if cause not in EDIT_CAUSES:
        raise ValueError(f"cause must be one of {', '.join(EDIT_CAUSES)}")
    return {} if cause == "edit" else {"cause": cause}


#: ``Box.source`` of a box accepted from the model's suggestions (model-assisted reading); a box drawn by the
#: reader has none.
SUGGESTION = "suggestion"
#: Id of the box a reader makes by accepting suggestion *k* of the shown image: ``f"{SUGGESTION_ID}{k}"``.
SUGGESTION_ID = "sug-"


@dataclass
class Box:
    """A box of a local label in pixels of the original image; ``id`` is stable across saves.

    ``source`` is :data:`SUGGESTION` for a box the reader accepted from the model's suggestions, with the model's
    SHA-256 (``model``) and the suggestion's score (``score``); None for a box the reader drew. The provenance is
    fixed when the box is created: moving, resizing or re-classing the box keeps it (:func:`keep_provenance`).
    """

    class_name: str
    x_min: float
    y_min: float
    x_max: float
    y_max: float
    id: str = ""
    source: str | None = None
    model: str | None = None
    score: float | None = None

    def as_dict(self) -> dict[str, Any]:
        out = {"id": self.id, "class_name": self.class_name, **{k: getattr(self, k) for k in _COORDS}}
        if self.source:
            out |= {"source": self.source, "model": self.model, "score": self.score}
        return out


@dataclass
class Marks:
    """What one person marked on one image."""

    labels: list[str] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    comment: str | None = None

    @classmethod
    def from_json(cls, data: dict | None) -> Marks:
        data = data or {}
        return cls(
            labels=list(data.get("labels", [])),
            boxes=[Box(**b) for b in data.get("boxes", [])],
            comment=data.get("comment"),
        )

    def normalized(self) -> Marks:
        """Labels de-duplicated in order, every box with an id, coordinates rounded to 0.01 px, corners
        ordered (min <= max)."""
        boxes = []
        seen: set[str] = set()
        for b in self.boxes:
            bid = b.id if b.id and b.id not in seen else secrets.token_hex(6)
            seen.add(bid)
            x0, x1 = sorted((float(b.x_min), float(b.x_max)))
            y0, y1 = sorted((float(b.y_min), float(b.y_max)))
            boxes.append(Box(b.class_name, round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2), bid, b.source,
                             b.model, b.score))
        comment = (self.comment or "").strip() or None
        return Marks(list(dict.fromkeys(self.labels)), boxes, comment)

    def to_json(self) -> dict[str, Any]:
        return {"labels": list(self.labels), "boxes": [b.as_dict() for b in self.boxes], "comment": self.comment}

    def reading(self, image_id: str, rad_id: str) -> ReadingInput:
        """As a :class:`ReadingInput` for the QC rules and the ``readings`` tables."""
        boxes = [BoxInput(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max) for b in self.boxes]
        return ReadingInput(image_id, rad_id, list(self.labels), boxes, self.comment)

    def same_content(self, other: Marks) -> bool:
        """Equal labels, comment and boxes (ids ignored)."""

        def key(m: Marks) -> tuple:
            return (
                sorted(m.labels),
                m.comment,
                sorted((b.class_name, b.x_min, b.y_min, b.x_max, b.y_max) for b in m.boxes),
            )

        return key(self) == key(other)


def keep_provenance(old: Marks, new: Marks, *, suggested: list[dict] | None, model: str | None) -> Marks:
    """*new* with each box's provenance decided by the server, not by what the client sent.

    A box already in *old* (same id) keeps *old*'s provenance, whatever the save says: an accepted suggestion
    stays one when it is moved, resized or re-classed, and a drawn box never becomes one. A new box that claims
    :data:`SUGGESTION` must have the id ``sug-<k>`` of suggestion *k* of *suggested* (the stored boxes of the
    image's current *model*); it gets that model and the suggestion's score. A claim with no such suggestion is
    refused.

    Raises
    ------
    ValueError
        A new box claims a suggestion that the image does not have (or suggestions are off).
    """
    before = {b.id: b for b in old.boxes}
    boxes = []
    for b in new.boxes:
        if b.id in before:
            o = before[b.id]
            boxes.append(Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max, b.id, o.source, o.model, o.score))
        elif b.source:
            k = b.id.removeprefix(SUGGESTION_ID)
            if (b.source != SUGGESTION or not b.id.startswith(SUGGESTION_ID) or not k.isdigit() or not suggested
                    or int(k) >= len(suggested) or not model):
                raise ValueError(f"box {b.id!r} claims a model suggestion this image does not have")
            boxes.append(Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max, b.id, SUGGESTION, model,
                             float(suggested[int(k)]["score"])))
        else:
            boxes.append(Box(b.class_name, b.x_min, b.y_min, b.x_max, b.y_max, b.id))
    return Marks(list(new.labels), boxes, new.comment)


def audit_changes(
    session: Session,
    *,
    image_pk: int,
    author: str,
    stage: str,
    old: Marks,
    new: Marks,
    context: dict[str, Any],
) -> int:
    """Add one ``events`` row per created/updated/deleted box and per added/removed label; return the count."""
    rows = audit_rows(image_pk=image_pk, author=author, stage=stage, old=old, new=new, context=context)
    insert_events(session, rows)
    return len(rows)


def audit_rows(
    *, image_pk: int, author: str, stage: str, old: Marks, new: Marks, context: dict[str, Any]
) -> list[dict[str, Any]]:
    """The ``events`` rows (column dicts) of :func:`audit_changes`, for a caller that adds more rows at once."""
    rows: list[tuple[str, dict[str, Any]]] = []
    old_boxes = {b.id: b for b in old.boxes}
    new_boxes = {b.id: b for b in new.boxes}
    for bid, box in new_boxes.items():
        if bid not in old_boxes:
            rows.append(("annotation.create", box.as_dict()))
        elif old_boxes[bid] != box:
            rows.append(("annotation.update", {"before": old_boxes[bid].as_dict(), "after": box.as_dict()}))
    for bid, box in old_boxes.items():
        if bid not in new_boxes:
            rows.append(("annotation.delete", box.as_dict()))
    for label in new.labels:
        if label not in old.labels:
            rows.append(("label.create", {"label": label}))
    for label in old.labels:
        if label not in new.labels:
            rows.append(("label.delete", {"label": label}))
    if (old.comment or None) != (new.comment or None):
        rows.append(("comment.update", {"length": len(new.comment or "")}))
    return [{"image_pk": image_pk, "stage": stage, "action": action, "author": author, "detail": {**context, **detail}}
            for action, detail in rows]
