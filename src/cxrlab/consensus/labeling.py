"""Consensus over a labeling project's reads, for the labeling tool: the suggestion a review opens with, and the
readers' agreement on the dashboard.

The two-reviewer review of the test set (VinDr-CXR data descriptor, "Data labeling") starts from the readers'
majority vote and fused boxes; the labeling stage (:mod:`cxrlab.annotate.reviews`) takes this function as its
``suggest`` argument from the shells (web app, CLI, demo), so that the earlier stage never imports this later
one. Agreement follows the seeds' release statistics: Fleiss' kappa per label over the images every one of
their readers submitted (labels as the readers marked them; a local label counts when the reader drew a box of
that class), and pairwise box agreement between readers at IoU 0.4 (the VinDr-CXR challenge's matching
threshold).
"""

from __future__ import annotations

import pandas as pd
from sqlalchemy.orm import Session

from cxrlab.annotate.marks import Box, Marks
from cxrlab.annotate.projects import project_schema
from cxrlab.annotate.reviews import submitted_reads
from cxrlab.catalog.models import Project
from cxrlab.consensus.agreement import agreement_report
from cxrlab.consensus.fusion import fuse_reader_boxes
from cxrlab.consensus.vote import majority_vote

__all__ = ["project_agreement", "suggest_review"]


def suggest_review(project: Project, image_id: str, readers: list[tuple[str, Marks]]) -> Marks:
    """Majority vote of the readers' labels and fused boxes (kept when more than half the readers drew one)."""
    schema = project_schema(project)
    if not readers:
        return Marks()
    table = pd.DataFrame(
        [
            {"image_id": image_id, "rad_id": rad, **{
                n: int(n in m.labels or any(b.class_name == n for b in m.boxes)) for n in schema.names
            }}
            for rad, m in readers
        ]
    )
    voted = majority_vote(table).iloc[0]
    positive = [n for n in schema.names if int(voted[n]) == 1]
    rows = [
        {"image_id": image_id, "rad_id": rad, "class_name": b.class_name, "x_min": b.x_min, "y_min": b.y_min,
         "x_max": b.x_max, "y_max": b.y_max}
        for rad, m in readers for b in m.boxes
    ]
    boxes: list[Box] = []
    if rows:
        fused = fuse_reader_boxes(pd.DataFrame(rows), iou_thr=0.4)
        keep = fused[fused["votes"] > len(readers) / 2]
        boxes = [Box(r.class_name, float(r.x_min), float(r.y_min), float(r.x_max), float(r.y_max))
                 for r in keep.itertuples(index=False)]
    local = {lb.name for lb in schema.local}
    boxed = {b.class_name for b in boxes}
    # A local label is kept exactly when a fused box of its class survived; global labels by majority.
    labels = [n for n in schema.names if (n in boxed) or (n in positive and n not in local)]
    return Marks(labels, boxes).normalized()


def project_agreement(session: Session, *, project: Project) -> dict:
    """Fleiss' kappa per label and pairwise box agreement (IoU >= 0.4) between readers
    (:func:`~cxrlab.consensus.agreement.agreement_report`).

    Kappa uses the images with at least 2 submitted reads; ``null`` where undefined (e.g. nobody marked the
    label). Box agreement is given for every pair of readers that read at least one image in common.
    """
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
