"""Reader quality against gold-standard images: per-label sensitivity and specificity, box F1 at IoU 0.4.

Each reader's submitted gold reads (:mod:`cxrlab.annotate.gold`) are compared with the images' decided marks.
A label counts as marked when the reader (or the gold) chose it or drew a box of its class, as in the
agreement (:mod:`cxrlab.consensus.labeling`). Boxes are matched one to one per image and class, greedily by
decreasing IoU, when IoU >= 0.4 (the VinDr-CXR challenge's threshold), with the same matching as the readers'
pairwise box agreement (:func:`cxrlab.consensus.agreement.box_agreement`, the gold standing in as a reader): a
matched box is a true positive, an unmatched reader box a false positive and an unmatched gold box a false
negative; F1 = 2 TP / (2 TP + FP + FN).

This is the scoring of CVAT's ground-truth jobs and Label Studio's ground-truth agreement, per reader, open.
It lives here, beside the agreement, since the labeling stage may not import a later stage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session

from cxrlab.annotate.gold import gold_reads, gold_standards
from cxrlab.annotate.marks import Marks
from cxrlab.annotate.projects import project_schema
from cxrlab.catalog.models import Project
from cxrlab.consensus.agreement import box_agreement
from cxrlab.schemas import BOX_COLUMNS, LabelSchema

__all__ = ["GOLD_IOU", "reader_quality", "score_reads"]

#: IoU threshold of the box matching (VinDr-CXR challenge: mAP@0.4).
GOLD_IOU = 0.4
#: The gold's reader id in the box matching (no user's reader id has a leading space).
_GOLD = " gold"


def _ratio(num: int, den: int) -> float | None:
    return round(num / den, 4) if den else None


def _marked(marks: Marks, name: str) -> bool:
    return name in marks.labels or any(b.class_name == name for b in marks.boxes)


def score_reads(
    reads: list[tuple[str, Marks]], gold: dict[str, Marks], schema: LabelSchema, *, iou_thr: float = GOLD_IOU
) -> dict:
    """Score one reader's reads ``[(image_id, marks), ...]`` against *gold* (``image_id -> marks``).

    Returns
    -------
    dict
        ``images`` (reads scored), ``labels``: label -> ``{tp, fn, tn, fp, sensitivity, specificity}``
        (null where undefined: no gold positive, or no gold negative), ``boxes``: ``{gold, reader, matched,
        f1}`` (``f1`` null when neither drew a box).
    """
    reads = [(i, m) for i, m in reads if i in gold]
    labels = {}
    for name in schema.names:
        tp = fn = tn = fp = 0
        for image_id, marks in reads:
            truth, said = _marked(gold[image_id], name), _marked(marks, name)
            tp += truth and said
            fn += truth and not said
            tn += not truth and not said
            fp += not truth and said
        labels[name] = {"tp": tp, "fn": fn, "tn": tn, "fp": fp, "sensitivity": _ratio(tp, tp + fn),
                        "specificity": _ratio(tn, tn + fp)}
    rows = []
    for image_id, marks in reads:
        for who, m in ((_GOLD, gold[image_id]), ("reader", marks)):
            rows.append({"image_id": image_id, "rad_id": who, "class_name": "", **dict.fromkeys(BOX_COLUMNS)})
            rows += [{"image_id": image_id, "rad_id": who, "class_name": b.class_name, "x_min": b.x_min,
                      "y_min": b.y_min, "x_max": b.x_max, "y_max": b.y_max} for b in m.boxes]
    n_gold = sum(len(gold[i].boxes) for i, _ in reads)
    n_reader = sum(len(m.boxes) for _, m in reads)
    matched = 0
    if n_gold and n_reader:
        frame = pd.DataFrame(rows, columns=["image_id", "rad_id", "class_name", *BOX_COLUMNS])
        frame = frame.astype({c: float for c in BOX_COLUMNS})
        _, pairs = box_agreement(frame, iou_thr=iou_thr)
        matched = int(pairs["matched"].sum()) if len(pairs) else 0
    f1 = _ratio(2 * matched, n_gold + n_reader)
    return {"images": len(reads), "labels": labels,
            "boxes": {"gold": n_gold, "reader": n_reader, "matched": matched, "f1": f1}}


def reader_quality(session: Session, *, project: Project, iou_thr: float = GOLD_IOU) -> dict:
    """Every reader's score on the gold images of *project* (:func:`score_reads`), for the dashboard and
    ``cxrlab annotate quality``.

    Returns
    -------
    dict
        ``project``, ``gold_images``, ``box_iou`` and ``readers``: one entry per reader with gold reads
        (``rad_id``, ``username`` and the scores), by reader id; plus per reader ``mean_sensitivity`` and
        ``mean_specificity`` over the labels where they are defined.
    """
    schema = project_schema(project)
    gold = gold_standards(session, project=project)
    per_reader: dict[tuple[str, str], list[tuple[str, Marks]]] = {}
    for image_id, rad_id, username, marks in gold_reads(session, project=project):
        per_reader.setdefault((rad_id, username), []).append((image_id, marks))
    readers = []
    for (rad_id, username), reads in sorted(per_reader.items()):
        scores = score_reads(reads, gold, schema, iou_thr=iou_thr)
        sens = [v["sensitivity"] for v in scores["labels"].values() if v["sensitivity"] is not None]
        spec = [v["specificity"] for v in scores["labels"].values() if v["specificity"] is not None]
        readers.append({"rad_id": rad_id, "username": username, **scores,
                        "mean_sensitivity": round(float(np.mean(sens)), 4) if sens else None,
                        "mean_specificity": round(float(np.mean(spec)), 4) if spec else None})
    return {"project": project.name, "gold_images": len(gold), "box_iou": iou_thr, "readers": readers}
