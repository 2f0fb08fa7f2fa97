"""Export a release in the VinDr layout.

``annotations_train.csv``: ``image_id,rad_id,class_name,x_min,y_min,x_max,y_max,class_id`` — one row per box
per reader; a reader who chose "No finding" gets one row with empty coordinates (VinDr-CXR data descriptor,
"Data Records"; DESIGN.md "Formats we must write exactly"). ``image_labels_train.csv``:
``image_id,rad_id,<one 0/1 column per label>`` — one row per reader. The release folder mirrors the public
releases: ``train/<image_id>.dicom`` (the de-identified files), the CSVs, ``table2.md`` and a manifest.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from pathlib import Path

import pandas as pd
from sqlalchemy import select

from cxrlab.catalog.models import ConsensusLabel, Event, Image, ImageState, Reading, ReadingBox, ReadingLabel
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import atomic_path, atomic_write_text
from cxrlab.runtime.report import StageReport
from cxrlab.schemas import LabelSchema, get_schema
from cxrlab.stats.table2 import compute_table2

__all__ = ["ANNOTATION_COLUMNS", "export_release", "write_csv"]

ANNOTATION_COLUMNS = ["image_id", "rad_id", "class_name", "x_min", "y_min", "x_max", "y_max", "class_id"]


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    """Write a CSV atomically (RFC 4180 quoting, ``\\n`` line ends)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _fmt(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def export_release(ws: Workspace, tag: str, *, link: bool = True) -> StageReport:
    """Write ``exports/<tag>/`` from every labeled image with a consensus.

    Parameters
    ----------
    tag : str
        Release name (a folder name: letters, digits, ``._-``).
    link : bool
        Hard-link the de-identified files instead of copying them (falls back to a copy).
    """
    if not tag or any(
        c not in "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-" for c in tag
    ):
        raise CxrlabError(f"invalid release tag {tag!r}: use letters, digits, '.', '_' or '-'")
    t0 = time.perf_counter()
    report = StageReport("export")
    schema = get_schema(ws.settings.schema)
    out = ws.path("exports", tag)
    (out / "train").mkdir(parents=True, exist_ok=True)
    with ws.sessions() as session:
        images = session.scalars(
            select(Image)
            .where(Image.state.in_([ImageState.LABELED, ImageState.REVIEWED, ImageState.RELEASED]))
            .order_by(Image.image_id)
        ).all()
        if not images:
            raise CxrlabError("nothing to export: no labeled images (run the labeling and consensus first)")
        ann_rows, label_rows = _reader_rows(session, images, schema)
        write_csv(out / "annotations_train.csv", ANNOTATION_COLUMNS, ann_rows)
        write_csv(out / "image_labels_train.csv", ["image_id", "rad_id", *schema.names], label_rows)
        positives = _consensus_frame(session, images, schema)
        meta = pd.DataFrame(
            [
                {
                    "image_id": i.image_id,
                    "rows": i.rows,
                    "columns": i.columns,
                    "age_years": i.age_years,
                    "sex": i.sex,
                    "study_year": i.study_year,
                    "file_size": i.deid_file_size or i.file_size,
                }
                for i in images
            ]
        )
        readers = pd.Series({i.image_id: len(i.readings) for i in images})
        table = compute_table2(meta, positives, schema, annotators=readers)
        atomic_write_text(out / "table2.md", table.to_markdown())
        atomic_write_text(out / "table2.json", json.dumps(vars(table), indent=2))
        for img in images:
            _place(ws.root / img.deid_path, out / "train" / f"{img.image_id}.dicom", link=link)
            img.state = ImageState.RELEASED
            img.split = img.split or "train"
            session.add(Event(image_pk=img.id, stage="export", action="released", detail={"tag": tag}))
        session.commit()
    manifest = {
        "tag": tag,
        "schema": schema.name,
        "images": len(images),
        "files": sorted(p.name for p in out.iterdir() if p.is_file() and p.name != "manifest.json"),
        "train": len(images),
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")
    report.counts.update(
        {"images": len(images), "annotation_rows": len(ann_rows), "label_rows": len(label_rows)}
    )
    report.notes.append(str(out))
    report.seconds = time.perf_counter() - t0
    return report


def _reader_rows(session, images: list[Image], schema: LabelSchema) -> tuple[list, list]:  # noqa: ANN001
    by_pk = {i.id: i.image_id for i in images}
    readings = session.scalars(
        select(Reading).where(Reading.image_pk.in_(by_pk)).order_by(Reading.image_pk, Reading.rad_id)
    ).all()
    rids = [r.id for r in readings]
    labels: dict[int, set[str]] = {rid: set() for rid in rids}
    for rid, lab in session.execute(
        select(ReadingLabel.reading_id, ReadingLabel.label).where(ReadingLabel.reading_id.in_(rids))
    ):
        labels[rid].add(lab)
    boxes: dict[int, list[ReadingBox]] = {rid: [] for rid in rids}
    for box in session.scalars(
        select(ReadingBox).where(ReadingBox.reading_id.in_(rids)).order_by(ReadingBox.id)
    ):
        boxes[box.reading_id].append(box)
    ann_rows, label_rows = [], []
    for r in readings:
        image_id = by_pk[r.image_pk]
        marked = labels[r.id] | {b.class_name for b in boxes[r.id]}
        for b in boxes[r.id]:
            ann_rows.append(
                [
                    image_id,
                    r.rad_id,
                    b.class_name,
                    _fmt(b.x_min),
                    _fmt(b.y_min),
                    _fmt(b.x_max),
                    _fmt(b.y_max),
                    schema.class_id(b.class_name),
                ]
            )
        if schema.no_finding in marked:
            ann_rows.append(
                [image_id, r.rad_id, schema.no_finding, "", "", "", "", schema.class_id(schema.no_finding)]
            )
        label_rows.append([image_id, r.rad_id, *(int(n in marked) for n in schema.names)])
    return ann_rows, label_rows


def _consensus_frame(session, images: list[Image], schema: LabelSchema) -> pd.DataFrame:  # noqa: ANN001
    by_pk = {i.id: i.image_id for i in images}
    rows = session.execute(
        select(ConsensusLabel.image_pk, ConsensusLabel.label, ConsensusLabel.positive).where(
            ConsensusLabel.image_pk.in_(by_pk)
        )
    ).all()
    if not rows:
        raise CxrlabError("no consensus labels: run `cxrlab consensus` before exporting")
    frame = pd.DataFrame(rows, columns=["pk", "label", "positive"]).pivot(
        index="pk", columns="label", values="positive"
    )
    frame = frame.reindex(columns=schema.names, fill_value=0).fillna(0).astype(int)
    frame.insert(0, "image_id", [by_pk[pk] for pk in frame.index])
    return frame.reset_index(drop=True)


def _place(src: Path, dst: Path, *, link: bool) -> None:
    """Put *src* at *dst* atomically: a hard link when asked and possible, else a copy."""
    if dst.exists():
        return
    with atomic_path(dst) as tmp:
        tmp.unlink()
        try:
            if not link:
                raise OSError
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
