"""Write a versioned release folder from :class:`~cxrlab.schemas.ReleaseTables` (a workspace or public files).

``exports/<tag>/`` mirrors the seeds' public releases (DESIGN.md, "Workspace" and "Formats we must write
exactly"): ``train/<image_id>.dicom`` and ``test/<image_id>.dicom`` (the de-identified files), the four VinDr
CSVs, ``table2.md``/``table2.json`` (training and test columns), optional formats, and ``manifest.json``:
counts, sha256 and size of every file, the CSV schemas, the label schema, the cxrlab version and the
de-identification profile used.

A release is built in a hidden sibling folder and renamed into place at the end, so ``exports/<tag>/`` is
either complete or absent; an existing tag is refused unless *overwrite* is set.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import select, update

from cxrlab import __version__
from cxrlab.catalog.models import (
    REVIEW_METHOD,
    ConsensusBox,
    ConsensusLabel,
    Event,
    Image,
    ImageState,
    Reading,
    ReadingBox,
    ReadingLabel,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.export.coco import write_coco
from cxrlab.export.nih import write_nih
from cxrlab.export.vindr import ANNOTATION_COLUMNS, write_vindr_csvs
from cxrlab.export.yolo import write_yolo
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import atomic_link_or_copy, atomic_path, atomic_write_text, sha256_file
from cxrlab.runtime.report import ProgressCallback, StageReport
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables, get_schema
from cxrlab.stats.table2 import render_table2, table2_from_tables

__all__ = ["FORMATS", "export_release", "release_json", "tables_from_workspace", "write_release"]

#: Optional formats besides the VinDr CSVs (always written).
FORMATS = ("coco", "yolo", "nih", "json", "png")
_TAG_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
_SPLIT_TITLES = {"train": "Training set", "test": "Test set"}


def check_tag(tag: str) -> None:
    """Refuse a release tag that is not a plain folder name."""
    if not tag or tag.startswith(".") or any(c not in _TAG_CHARS for c in tag):
        raise CxrlabError(f"invalid release tag {tag!r}: use letters, digits, '.', '_' or '-'")



def _png_copy(item: tuple[str, str, str], size: int | None) -> str | None:
    """Render one image to PNG (DICOM through the display pipeline; PNG/JPEG resized); returns an error."""
    src, dst, kind = item
    try:
        if kind == "dicom":
            from cxrlab.dicom.display import render_file

            render_file(src, dst, max_size=size)
        else:
            from PIL import Image as PILImage

            with PILImage.open(src) as im:
                im = im.convert("L")
                if size and max(im.size) > size:
                    scale = size / max(im.size)
                    im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))),
                                   PILImage.Resampling.BOX)
                with atomic_path(dst) as tmp:
                    im.save(tmp, format="PNG")
        return None
    except Exception as exc:  # noqa: BLE001 - one bad image never stops the export
        return f"cannot render to PNG ({type(exc).__name__})"


def release_json(tables: ReleaseTables, *, threshold: float = 0.5) -> dict:
    """Everything in one JSON-ready dict: schema, and per image its metadata, readings and consensus."""
    from cxrlab.consensus.vote import image_positives

    schema = tables.schema
    names = schema.names

    def clean(v: object) -> object:
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return v.item() if hasattr(v, "item") else v

    def boxes_of(df: pd.DataFrame, extra: Sequence[str]) -> dict[str, list]:
        out: dict[str, list] = {}
        cols = ["class_name", *BOX_COLUMNS, *[c for c in extra if c in df]]
        for rec in df[["image_id", *[c for c in cols if c in df]]].to_dict("records"):
            out.setdefault(rec.pop("image_id"), []).append({k: clean(v) for k, v in rec.items()})
        return out

    reader_boxes: dict[tuple, list] = {}
    for rec in tables.reader_boxes.to_dict("records"):
        key = (rec["image_id"], str(rec["rad_id"]))
        reader_boxes.setdefault(key, []).append({k: clean(rec[k]) for k in ("class_name", *BOX_COLUMNS)})
    readings: dict[str, list] = {}
    for rec in tables.reader_labels.to_dict("records"):
        key = (rec["image_id"], str(rec["rad_id"]))
        readings.setdefault(rec["image_id"], []).append(
            {"rad_id": key[1], "labels": [n for n in names if rec.get(n) == 1], "boxes": reader_boxes.get(key, [])}
        )
    cons_boxes = boxes_of(tables.consensus_boxes, ["score", "votes"])
    pos = image_positives(tables, threshold=threshold).set_index("image_id")
    positive = {iid: [n for n, v in zip(names, row, strict=True) if v == 1]
                for iid, row in zip(pos.index, pos[names].to_numpy(), strict=True)}
    images = []
    for rec in tables.images.sort_values("image_id").to_dict("records"):
        iid = rec["image_id"]
        meta = {k: clean(v) for k, v in rec.items() if k not in ("image_id", "path")}
        labels = positive.get(iid, [])
        images.append({"image_id": iid, **meta, "readings": readings.get(iid, []),
                       "consensus": {"labels": labels, "boxes": cons_boxes.get(iid, [])}})
    return {
        "schema": {
            "name": schema.name,
            "no_finding": schema.no_finding,
            "labels": [{"number": lb.number, "name": lb.name, "kind": lb.kind} for lb in schema.labels],
        },
        "known_labels": tables.known_labels,
        "images": images,
    }


def write_release(
    tables: ReleaseTables,
    out: str | Path,
    *,
    formats: Sequence[str] = (),
    link: bool = True,
    copy_images: bool = True,
    png_size: int | None = None,
    box_source: str = "consensus",
    threshold: float = 0.5,
    profile: str | None = None,
    overwrite: bool = False,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Write a release folder from *tables*.

    Parameters
    ----------
    out : path
        The release folder (created atomically: built beside it, then renamed).
    formats : sequence of str
        Any of :data:`FORMATS` besides the VinDr CSVs: ``coco`` (``coco/<split>.json``), ``yolo``
        (``labels/<split>/*.txt``, ``data.yaml``), ``nih`` (``nih/Data_Entry.csv``, ``nih/BBox_List.csv``,
        split lists), ``json`` (``release.json``, full fidelity), ``png`` (``images/<split>/<stem>.png``).
    link : bool
        Hard-link image files instead of copying them (falls back to a copy).
    copy_images : bool
        Place the image files (``<split>/<image_id>.dicom``, or the original name for PNG sources).
    png_size : int, optional
        Long side of the PNG copies (default: full size).
    box_source : {"consensus", "readers"}
        Boxes for COCO and YOLO.
    threshold : float
        Majority-vote threshold for labels computed from readers (Table 2, NIH ``Finding Labels``).
    profile : str, optional
        De-identification profile recorded in the manifest.
    overwrite : bool
        Replace an existing release folder.

    Raises
    ------
    CxrlabError
        Unknown format, or the folder exists and *overwrite* is false.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise CxrlabError(f"unknown export format(s) {', '.join(unknown)} (known: {', '.join(FORMATS)})")
    t0 = time.perf_counter()
    out = Path(out)
    if out.exists() and not overwrite:
        raise CxrlabError(f"{out}: release already exists (choose a new tag, or overwrite)")
    report = StageReport("export")
    work = out.parent / f".{out.name}.partial"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    try:
        counts = _write(tables, work, formats=formats, link=link, copy_images=copy_images, png_size=png_size,
                        box_source=box_source, threshold=threshold, report=report, executor=executor,
                        on_progress=on_progress)
        _write_manifest(tables, work, out.name, counts, formats=formats, profile=profile, threshold=threshold,
                        box_source=box_source)
        if out.exists():
            old = out.parent / f".{out.name}.old"
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
            os.replace(work, out)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(work, out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    report.counts.update(counts)
    report.notes.append(str(out))
    report.seconds = time.perf_counter() - t0
    return report


def _write(
    tables: ReleaseTables, out: Path, *, formats: Sequence[str], link: bool, copy_images: bool,
    png_size: int | None, box_source: str, threshold: float, report: StageReport, executor: Executor | None,
    on_progress: ProgressCallback | None,
) -> dict[str, int]:
    counts: dict[str, int] = {}
    images = tables.images.copy()
    if "split" not in images:
        images["split"] = "train"
    images["split"] = images["split"].fillna("train")
    tables.images = images
    for split in tables.splits:
        counts[f"images_{split}"] = int((images["split"] == split).sum())
    counts.update(write_vindr_csvs(tables, out, splits=tuple(tables.splits)))
    columns = [(_SPLIT_TITLES.get(s, s), table2_from_tables(tables, s, threshold=threshold)) for s in tables.splits]
    if columns:
        atomic_write_text(out / "table2.md", render_table2(columns, "md"))
        atomic_write_text(out / "table2.json", render_table2(columns, "json"))
    file_names: dict[str, str] = {}
    paths = images.dropna(subset=["path"]) if "path" in images else images.iloc[0:0]
    if copy_images and len(paths):
        for done, rec in enumerate(paths.to_dict("records"), start=1):
            src = Path(rec["path"])
            name = f"{rec['image_id']}.dicom" if src.suffix.lower() in (".dicom", ".dcm") else src.name
            rel = f"{rec['split']}/{name}"
            if src.is_file():
                atomic_link_or_copy(src, out / rel, link=link)
                file_names[rec["image_id"]] = rel
            else:
                report.problems.append((str(rec["image_id"]), "image file missing"))
            if on_progress:
                on_progress(done, len(paths))
        counts["image_files"] = len(file_names)
    if "png" in formats and len(paths):
        items, ids = [], []
        for rec in paths.to_dict("records"):
            src = Path(rec["path"])
            kind = "dicom" if src.suffix.lower() in (".dicom", ".dcm") else "raster"
            stem = Path(str(rec["image_id"])).stem
            items.append((str(src), str(out / "images" / rec["split"] / f"{stem}.png"), kind))
            ids.append(rec["image_id"])
        written = 0
        for (_item, err), iid in zip((executor or Executor()).map(_png_copy, items, png_size), ids, strict=True):
            if err:
                report.problems.append((str(iid), err))
            else:
                written += 1
        counts["png_files"] = written
    if "coco" in formats:
        counts.update(write_coco(tables, out, boxes=box_source, file_names=file_names or None))
    if "yolo" in formats:
        c, problems = write_yolo(tables, out, boxes=box_source)
        counts.update(c)
        report.problems.extend(problems)
    if "nih" in formats:
        counts.update(write_nih(tables, out, threshold=threshold))
    if "json" in formats:
        atomic_write_text(out / "release.json", json.dumps(release_json(tables, threshold=threshold)) + "\n")
    return counts


def _write_manifest(
    tables: ReleaseTables, out: Path, tag: str, counts: dict[str, int], *, formats: Sequence[str],
    profile: str | None, threshold: float, box_source: str,
) -> None:
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file() and p.name != "manifest.json":
            files[p.relative_to(out).as_posix()] = {"sha256": sha256_file(p), "bytes": p.stat().st_size}
    schema = tables.schema
    manifest = {
        "tag": tag,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "cxrlab_version": __version__,
        "source": tables.source,
        "deid_profile": profile,
        "label_schema": {
            "name": schema.name,
            "labels": [
                {"number": lb.number, "name": lb.name, "kind": lb.kind,
                 "class_id": schema.class_id(lb.name) if lb.kind == "local" else None}
                for lb in schema.labels
            ],
            "no_finding": schema.no_finding,
        },
        "consensus": {"label_vote": f"positive when > {threshold:g} of readers", "boxes": box_source},
        "formats": ["vindr", *formats],
        "csv_schemas": {
            "annotations_<split>.csv": ANNOTATION_COLUMNS,
            "image_labels_<split>.csv": ["image_id", "rad_id", *schema.names],
        },
        "counts": {"images": len(tables.images), **counts},
        "files": files,
    }
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=2) + "\n")


def tables_from_workspace(ws: Workspace, *, threshold: float = 0.5) -> ReleaseTables:
    """The labeled images of a workspace as :class:`ReleaseTables`.

    Consensus boxes are those drawn by more than *threshold* of the image's readers (``votes``), plus every
    box a reviewer decided (``method == "review"``).
    """
    schema = get_schema(ws.settings.schema)
    names = schema.names
    states = [ImageState.LABELED, ImageState.REVIEWED, ImageState.RELEASED]
    with ws.sessions() as session:
        imgs = session.execute(
            select(Image.id, Image.image_id, Image.split, Image.deid_path, Image.rows, Image.columns, Image.sex,
                   Image.age_years, Image.study_year, Image.deid_file_size, Image.file_size, Image.patient_key,
                   Image.view_position, Image.pixel_spacing_col, Image.pixel_spacing_row)
            .where(Image.state.in_(states))
            .order_by(Image.image_id)
        ).all()
        if not imgs:
            raise CxrlabError("nothing to export: no labeled images (run the labeling and consensus first)")
        images = pd.DataFrame(
            [
                {"pk": r[0], "image_id": r[1], "split": r[2] or "train",
                 "path": str(ws.root / r[3]) if r[3] else None, "rows": r[4], "columns": r[5], "sex": r[6],
                 "age_years": r[7], "study_year": r[8], "file_size": r[9] or r[10], "patient_id": r[11],
                 "view_position": r[12], "spacing_x": r[13], "spacing_y": r[14]}
                for r in imgs
            ]
        )
        pk_to_id = dict(zip(images["pk"], images["image_id"], strict=True))
        in_release = select(Image.id).where(Image.state.in_(states))
        reads = pd.DataFrame(
            session.execute(
                select(Reading.id, Reading.image_pk, Reading.rad_id).where(Reading.image_pk.in_(in_release))
            ).all(),
            columns=["reading", "pk", "rad_id"],
        )
        marks = pd.DataFrame(
            session.execute(
                select(ReadingLabel.reading_id, ReadingLabel.label)
                .join(Reading, Reading.id == ReadingLabel.reading_id)
                .where(Reading.image_pk.in_(in_release))
            ).all(),
            columns=["reading", "label"],
        )
        boxes = pd.DataFrame(
            session.execute(
                select(ReadingBox.reading_id, ReadingBox.class_name, ReadingBox.x_min, ReadingBox.y_min,
                       ReadingBox.x_max, ReadingBox.y_max)
                .join(Reading, Reading.id == ReadingBox.reading_id)
                .where(Reading.image_pk.in_(in_release))
                .order_by(ReadingBox.id)
            ).all(),
            columns=["reading", "class_name", *BOX_COLUMNS],
        )
        cons = pd.DataFrame(
            session.execute(
                select(ConsensusLabel.image_pk, ConsensusLabel.label, ConsensusLabel.positive)
                .where(ConsensusLabel.image_pk.in_(in_release))
            ).all(),
            columns=["pk", "label", "positive"],
        )
        cboxes = pd.DataFrame(
            session.execute(
                select(ConsensusBox.image_pk, ConsensusBox.class_name, ConsensusBox.x_min, ConsensusBox.y_min,
                       ConsensusBox.x_max, ConsensusBox.y_max, ConsensusBox.score, ConsensusBox.votes,
                       ConsensusBox.method)
                .where(ConsensusBox.image_pk.in_(in_release))
                .order_by(ConsensusBox.id)
            ).all(),
            columns=["pk", "class_name", *BOX_COLUMNS, "score", "votes", "method"],
        )
    reads["image_id"] = reads["pk"].map(pk_to_id)
    reads = reads.sort_values(["image_id", "rad_id"]).reset_index(drop=True)
    marked = pd.concat([marks, boxes[["reading", "class_name"]].rename(columns={"class_name": "label"})])
    wide = pd.crosstab(marked["reading"], marked["label"]).clip(upper=1) if len(marked) else pd.DataFrame()
    wide = wide.reindex(index=reads["reading"], columns=names, fill_value=0).fillna(0).astype(int)
    reader_labels = pd.concat([reads[["image_id", "rad_id"]], wide.reset_index(drop=True)], axis=1)
    rb = boxes.merge(reads[["reading", "image_id", "rad_id"]], on="reading")
    reader_boxes = rb[["image_id", "rad_id", "class_name", *BOX_COLUMNS]].sort_values(
        ["image_id", "rad_id"], kind="stable").reset_index(drop=True)
    if len(cons):
        consensus_labels = cons.pivot_table(index="pk", columns="label", values="positive", aggfunc="max")
        consensus_labels = consensus_labels.reindex(columns=names).fillna(0).astype(int)
        consensus_labels.insert(0, "image_id", [pk_to_id[pk] for pk in consensus_labels.index])
        consensus_labels = consensus_labels.reset_index(drop=True)
        consensus_labels.columns.name = None
    else:
        consensus_labels = None
    n_readers = reads.groupby("pk").size()
    if len(cboxes):
        need = threshold * cboxes["pk"].map(n_readers).fillna(0).to_numpy()
        keep = (cboxes["method"] == REVIEW_METHOD).to_numpy() | (cboxes["votes"].to_numpy() > need)
        cboxes = cboxes.loc[keep]
    cboxes = cboxes.assign(image_id=cboxes["pk"].map(pk_to_id))
    return ReleaseTables(
        schema=schema,
        images=images.drop(columns="pk"),
        reader_boxes=reader_boxes,
        reader_labels=reader_labels,
        consensus_boxes=cboxes[["image_id", "class_name", *BOX_COLUMNS, "score", "votes"]].reset_index(drop=True),
        consensus_labels=consensus_labels,
        source="workspace",
    )


def export_release(
    ws: Workspace,
    tag: str,
    *,
    formats: Sequence[str] = (),
    link: bool = True,
    png_size: int | None = None,
    box_source: str = "consensus",
    threshold: float = 0.5,
    overwrite: bool = False,
    executor: Executor | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> StageReport:
    """Write ``exports/<tag>/`` from every labeled image of the workspace and mark them released.

    Train images (``Image.split`` empty or ``train``) get one CSV row per reader; test images the consensus
    (run ``cxrlab consensus`` first). See :func:`write_release` for the options.

    Raises
    ------
    CxrlabError
        Invalid tag, nothing labeled, no consensus yet, or the tag exists (without *overwrite*).
    """
    check_tag(tag)
    tables = tables_from_workspace(ws, threshold=threshold)
    if tables.consensus_labels.empty:
        raise CxrlabError("no consensus labels: run `cxrlab consensus` before exporting")
    report = write_release(
        tables, ws.path("exports", tag), formats=formats, link=link, png_size=png_size, box_source=box_source,
        threshold=threshold, profile=ws.settings.deid_profile, overwrite=overwrite, executor=executor,
        on_progress=on_progress,
    )
    ids = list(tables.images["image_id"])
    splits = dict(zip(tables.images["image_id"], tables.images["split"], strict=True))
    with ws.sessions() as session:
        rows = [
            row
            for i in range(0, len(ids), 500)
            for row in session.execute(select(Image.id, Image.image_id).where(Image.image_id.in_(ids[i:i + 500])))
        ]
        for split in set(splits.values()):
            pks = [pk for pk, iid in rows if splits[iid] == split]
            for i in range(0, len(pks), 500):
                session.execute(update(Image).where(Image.id.in_(pks[i:i + 500]))
                                .values(state=ImageState.RELEASED, split=split))
        for i in range(0, len(rows), 500):
            session.execute(
                Event.__table__.insert(),
                [{"image_pk": pk, "stage": "export", "action": "released", "detail": {"tag": tag},
                  "author": "system", "at": datetime.now(UTC)} for pk, _ in rows[i:i + 500]],
            )
        session.commit()
    report.counts["images"] = len(ids)
    return report
