"""Write a versioned release folder from :class:`~cxrlab.schemas.ReleaseTables` (a workspace or public files).

``exports/<tag>/`` mirrors the seeds' public releases (docs, "The workspace" and "File formats
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
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from cxrlab import __version__
from cxrlab.catalog.models import REVIEW_METHOD, ImageState
from cxrlab.catalog.release import add_events, load_release, set_release_fields
from cxrlab.catalog.reports import load_report_labels
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.export.coco import write_coco
from cxrlab.export.nih import write_nih
from cxrlab.export.vindr import ANNOTATION_COLUMNS, write_vindr_csvs
from cxrlab.export.yolo import write_yolo
from cxrlab.reports.vocabulary import release_schema_name
from cxrlab.runtime.executor import Executor
from cxrlab.runtime.files import atomic_link_or_copy, atomic_path, atomic_write_text, sha256_file
from cxrlab.runtime.report import ProgressCallback, StageReport
from cxrlab.schemas import BOX_COLUMNS, ReleaseTables, get_schema
from cxrlab.stats.table2 import render_table2, table2_from_tables

__all__ = [
    "FORMATS",
    "LABEL_SOURCES",
    "REPORT_RAD_ID",
    "majority_boxes",
    "release_json",
    "report_tables_from_workspace",
    "run_export",
    "tables_from_workspace",
    "write_release",
]

#: Optional formats besides the VinDr CSVs (always written).
FORMATS = ("coco", "yolo", "nih", "json", "png", "sr")
#: Where the labels of a workspace release come from: the ``readers`` (their readings, the consensus) or the
#: ``report`` (labels mined from the radiology reports, ``cxrlab reports label``).
LABEL_SOURCES = ("readers", "report")
#: The ``rad_id`` of report labels in a release's per-reader rows: the report is the image's one "reader".
REPORT_RAD_ID = "report"
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
    label_source: str = "readers",
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
        split lists), ``json`` (``release.json``, full fidelity), ``png`` (``images/<split>/<stem>.png``),
        ``sr`` (``sr/<split>/<image_id>.dcm``: one DICOM Comprehensive 3D SR per DICOM image, :mod:`cxrlab.export.sr`;
        needs the ``[pacs]`` extra).
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
    label_source : {"readers", "report"}
        Where the labels of *tables* came from, for the manifest (:data:`LABEL_SOURCES`).

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
                        on_progress=on_progress, tag=out.name)
        _write_manifest(tables, work, out.name, counts, formats=formats, profile=profile, threshold=threshold,
                        box_source=box_source, label_source=label_source)
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
    on_progress: ProgressCallback | None, tag: str,
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
    if "sr" in formats:
        counts["sr_files"] = _write_srs(tables, out, paths, tag=tag, threshold=threshold, report=report)
    return counts


def _write_srs(tables: ReleaseTables, out: Path, paths: pd.DataFrame, *, tag: str, threshold: float,
               report: StageReport) -> int:
    """``sr/<split>/<image_id>.dcm`` for every image whose file is DICOM: its consensus boxes and its global
    labels (positive by the consensus, or the readers' majority for images without one)."""
    from cxrlab.consensus.vote import image_positives

    try:
        import highdicom  # noqa: F401 - the check that the extra is installed

        from cxrlab.export.sr import SrBox, contents_from_tables, write_srs
    except ImportError:
        raise CxrlabError("--format sr needs the pacs extra (highdicom): pip install 'cxrlab[pacs]'") from None
    boxes: dict[str, list[SrBox]] = {}
    for rec in tables.consensus_boxes[["image_id", "class_name", *BOX_COLUMNS]].to_dict("records"):
        boxes.setdefault(rec["image_id"], []).append(
            SrBox(rec["class_name"], *(float(rec[c]) for c in BOX_COLUMNS)))
    names = tables.schema.names
    pos = image_positives(tables, threshold=threshold)
    positives = {iid: [n for n, v in zip(names, row, strict=True) if v == 1]
                 for iid, row in zip(pos["image_id"], pos[names].to_numpy(), strict=True)}
    dicom = paths.loc[[Path(str(p)).suffix.lower() in (".dicom", ".dcm") for p in paths["path"]]] if len(paths) \
        else paths
    for iid in sorted(set(tables.images["image_id"]) - set(dicom["image_id"])):
        report.problems.append((str(iid), "no SR: not a DICOM image"))
    contents = contents_from_tables(boxes, positives, dicom["image_id"])
    written = 0
    global_labels = [lb.name for lb in tables.schema.global_]
    for split, group in dicom.groupby("split"):
        items = [(iid, Path(p), contents[iid]) for iid, p in zip(group["image_id"], group["path"], strict=True)]
        written += write_srs(items, out / "sr" / str(split), tag=tag, global_labels=global_labels,
                             problems=report.problems)
    return written


def _write_manifest(
    tables: ReleaseTables, out: Path, tag: str, counts: dict[str, int], *, formats: Sequence[str],
    profile: str | None, threshold: float, box_source: str, label_source: str = "readers",
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
        "label_source": label_source,
        "consensus": {"label_vote": f"positive when > {threshold:g} of readers", "boxes": box_source}
        if label_source == "readers" else
        {"labels": "mined from the radiology reports (cxrlab reports label); uncertain counted as negative",
         "rad_id": REPORT_RAD_ID, "known_labels": tables.known_labels},
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
    """The labeled images of a workspace as :class:`ReleaseTables`, sorted by ``image_id``.

    Images without a split are in ``train``. Consensus boxes are those drawn by more than *threshold* of the
    image's readers (``votes``), plus every box a reviewer decided (``method == "review"``).

    Raises
    ------
    CxrlabError
        No labeled image.
    """
    with ws.sessions() as session:
        tables = load_release(session, get_schema(ws.settings.schema), root=ws.root)
    if tables.images.empty:
        raise CxrlabError("nothing to export: no labeled images (run the labeling and consensus first)")
    images = tables.images.sort_values("image_id").reset_index(drop=True)
    images["split"] = [s or "train" for s in images["split"]]
    tables.images = images
    tables.consensus_boxes = majority_boxes(tables.consensus_boxes, tables.reader_labels, threshold=threshold)
    return tables


def report_tables_from_workspace(ws: Workspace) -> tuple[ReleaseTables, list[str]]:
    """The report labels of a workspace (``cxrlab reports label``) as :class:`ReleaseTables`, by ``image_id``.

    The images are those with report labels that a release may show (past the filter:
    :data:`cxrlab.catalog.reports.REPORT_RELEASE_STATES`); images without a split are in ``train``. The label
    schema is the one the vocabulary fills (:func:`cxrlab.reports.release_schema_name`); a label is 1 when the
    report says so, else 0 (an uncertain -1 counts as 0, ChestX-ray8's rule). Each image has one per-reader row
    (``rad_id`` :data:`REPORT_RAD_ID`) and the same values as its final labels (``consensus_labels``); there are
    no boxes. The readers' labels and the consensus are not read.

    Returns
    -------
    tables : ReleaseTables
        ``source`` is ``workspace reports``; ``known_labels`` the schema's labels the vocabulary gave.
    notes : list of str
        What the release leaves out (images not past the filter, labels outside the schema).

    Raises
    ------
    CxrlabError
        No image past the filter has report labels.
    """
    with ws.sessions() as session:
        rows = load_report_labels(session, root=ws.root)
    notes = []
    if rows.withheld:
        notes.append(f"{rows.withheld} image(s) with report labels left out: not de-identified and accepted by the "
                     "filter yet")
    if rows.images.empty:
        raise CxrlabError("nothing to export: no accepted image has report labels (run `cxrlab reports import` "
                          "and `cxrlab reports label -w` after `cxrlab filter run`)")
    vocabularies = sorted(set(rows.labels["schema"]))
    if len(vocabularies) != 1:
        raise CxrlabError(f"report labels of several vocabularies ({', '.join(vocabularies)}): run "
                          "`cxrlab reports label -w` again")
    schema = get_schema(release_schema_name(vocabularies[0]))
    names = schema.names
    positive = (rows.labels.pivot(index="image_id", columns="label", values="value") == 1).astype(int)
    outside = [n for n in positive.columns if n not in names]
    if outside:
        notes.append(f"labels not in schema {schema.name} left out: {', '.join(outside)}")
    known = [n for n in names if n in positive.columns]
    final = positive.reindex(index=rows.images["image_id"], columns=names, fill_value=0).reset_index()
    final.columns.name = None
    images = rows.images.assign(split=[s or "train" for s in rows.images["split"]])
    readers = final.copy()
    readers.insert(1, "rad_id", REPORT_RAD_ID)
    tables = ReleaseTables(schema=schema, images=images, reader_labels=readers, consensus_labels=final,
                           known_labels=known, source="workspace reports")
    return tables, notes


def majority_boxes(boxes: pd.DataFrame, reader_labels: pd.DataFrame, *, threshold: float = 0.5) -> pd.DataFrame:
    """The consensus boxes a release shows: those drawn by more than *threshold* of the image's readers
    (``votes``), and every box a reviewer decided (``method == "review"``).

    Parameters
    ----------
    boxes : DataFrame
        ``image_id, class_name, x_min, y_min, x_max, y_max, score, votes, method``.
    reader_labels : DataFrame
        One row per reader per image (the readers an image's ``votes`` are out of).

    Returns
    -------
    DataFrame
        ``image_id, class_name, x_min, y_min, x_max, y_max, score, votes``.
    """
    if len(boxes):
        n_readers = reader_labels.groupby("image_id").size()
        need = threshold * boxes["image_id"].map(n_readers).fillna(0).to_numpy()
        keep = (boxes["method"] == REVIEW_METHOD).to_numpy() | (boxes["votes"].to_numpy() > need)
        boxes = boxes.loc[keep]
    return boxes[["image_id", "class_name", *BOX_COLUMNS, "score", "votes"]].reset_index(drop=True)


def run_export(
    ws: Workspace,
    tag: str,
    *,
    formats: Sequence[str] = (),
    link: bool = True,
    png_size: int | None = None,
    box_source: str = "consensus",
    threshold: float = 0.5,
    overwrite: bool = False,
    source: str = "readers",
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Write ``exports/<tag>/`` from every labeled image of the workspace and mark them released.

    Train images (``Image.split`` empty or ``train``) get one CSV row per reader; test images the consensus
    (run ``cxrlab consensus`` first). See :func:`write_release` for the options.

    With *source* ``report`` the labels are those mined from the radiology reports instead
    (:func:`report_tables_from_workspace`): every accepted image with report labels, one row per image with
    ``rad_id`` ``report``, no boxes, ``Finding Labels`` of the NIH layout from them. Such a release of weak
    labels changes no image's state or split (the images stay available for reading); an ``exported`` event
    records it.

    Raises
    ------
    CxrlabError
        Invalid tag or source, nothing labeled, no consensus yet, or the tag exists (without *overwrite*).
    """
    check_tag(tag)
    if source not in LABEL_SOURCES:
        raise CxrlabError(f"unknown label source {source!r} (one of {', '.join(LABEL_SOURCES)})")
    if source == "report":
        return _export_report_labels(ws, tag, formats=formats, link=link, png_size=png_size, overwrite=overwrite,
                                     executor=executor, on_progress=on_progress)
    tables = tables_from_workspace(ws, threshold=threshold)
    if tables.consensus_labels.empty:
        raise CxrlabError("no consensus labels: run `cxrlab consensus` before exporting")
    report = write_release(
        tables, ws.path("exports", tag), formats=formats, link=link, png_size=png_size, box_source=box_source,
        threshold=threshold, profile=ws.settings.deid_profile, overwrite=overwrite, executor=executor,
        on_progress=on_progress,
    )
    split = pd.Series(tables.images["split"].to_numpy(), index=tables.images["image_id"])
    with ws.transaction() as session:
        set_release_fields(session, split, state=ImageState.RELEASED)
        add_events(session, split.index, stage="export", action="released", detail={"tag": tag})
    report.counts["images"] = len(split)
    return report


def _export_report_labels(
    ws: Workspace, tag: str, *, formats: Sequence[str], link: bool, png_size: int | None, overwrite: bool,
    executor: Executor | None, on_progress: ProgressCallback | None,
) -> StageReport:
    """:func:`run_export` with ``source="report"``."""
    tables, notes = report_tables_from_workspace(ws)
    report = write_release(
        tables, ws.path("exports", tag), formats=formats, link=link, png_size=png_size, box_source="consensus",
        profile=ws.settings.deid_profile, overwrite=overwrite, label_source="report", executor=executor,
        on_progress=on_progress,
    )
    report.notes.extend(notes)
    ids = tables.images["image_id"]
    with ws.transaction() as session:
        add_events(session, ids, stage="export", action="exported", detail={"tag": tag, "source": "report"})
    report.counts["images"] = len(ids)
    return report


def release_contents(out: Path) -> str:
    """What a release folder holds, from its ``manifest.json``: every top-level file by name, then each folder
    with its number of files (e.g. ``annotations_train.csv, ..., manifest.json; train/ 45 files``).

    Raises
    ------
    CxrlabError
        *out* has no readable manifest (not a release written by cxrlab).
    """
    try:
        files = json.loads((Path(out) / "manifest.json").read_text())["files"]
    except (OSError, ValueError, KeyError) as exc:
        raise CxrlabError(f"{out}: no readable manifest.json ({type(exc).__name__})") from None
    top = sorted(name for name in files if "/" not in name) + ["manifest.json"]
    folders: dict[str, int] = {}
    for name in files:
        if "/" in name:
            folder = name.split("/", 1)[0]
            folders[folder] = folders.get(folder, 0) + 1
    parts = [", ".join(top)]
    if folders:
        parts.append(", ".join(f"{f}/ {n} file{'s' if n != 1 else ''}" for f, n in sorted(folders.items())))
    return "; ".join(parts)
