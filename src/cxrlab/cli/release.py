"""``cxrlab consensus``, ``cxrlab split``, ``cxrlab export``, ``cxrlab import``, ``cxrlab stats ...``.

Each command works on a workspace, or on plain release files when they are given (``--annotations``,
``--image-labels``, ``--nih`` ...): no workspace is needed then.
"""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import (
    SEED_MAX,
    MaxUnpackedOpt,
    SchedulerOpt,
    WorkersOpt,
    WorkspaceOpt,
    batch_executor,
    cli_errors,
    err,
    out,
    print_report,
    progress,
)


class BadRowsChoice(StrEnum):
    """What to do with malformed CSV rows."""

    raise_ = "raise"
    warn = "warn"


stats_app = typer.Typer(help="Release statistics: Table 2, Figures 3-4, NIH co-occurrence.", no_args_is_help=True)
import_app = typer.Typer(help="Import a public release (VinDr, NIH) into the workspace.", no_args_is_help=True)


class BoxMethod(StrEnum):
    """Consensus of boxes."""

    wbf = "wbf"
    majority = "majority"


class LabelSource(StrEnum):
    """Where the labels of a workspace release come from (``cxrlab.export.LABEL_SOURCES``)."""

    readers = "readers"
    report = "report"


class SplitMethod(StrEnum):
    """How to split."""

    random = "random"
    stratified = "stratified"
    group = "group"


class Table2Format(StrEnum):
    """Table 2 output."""

    md = "md"
    csv = "csv"
    json = "json"
    html = "html"


class CoocFormat(StrEnum):
    """Co-occurrence output."""

    csv = "csv"
    json = "json"
    png = "png"


AnnotationsOpt = Annotated[
    list[Path] | None,
    typer.Option("--annotations", "-a", help="annotations_*.csv[.gz] (VinDr layout or the challenge's train.csv); "
                 "repeat for train and test."),
]
LabelsOpt = Annotated[
    list[Path] | None, typer.Option("--image-labels", "-l", help="image_labels_*.csv[.gz]; repeatable.")
]
NihOpt = Annotated[Path | None, typer.Option("--nih", help="NIH Data_Entry_2017.csv[.gz] (2017 or 2020 variant).")]
BBoxOpt = Annotated[Path | None, typer.Option("--bbox-list", help="NIH BBox_List_2017.csv[.gz].")]
MetaOpt = Annotated[
    Path | None, typer.Option("--meta", help="CSV of image_id + rows/columns, age, sex, year, file size.")
]
DicomDirOpt = Annotated[
    list[Path] | None, typer.Option("--dicom-dir", help="Folder of <image_id>.dicom files (headers read).")
]
SchemaOpt = Annotated[
    str | None, typer.Option("--schema", help="vindr-cxr, vindr-pcxr or nih14 (default: guessed from names).")
]
BadRowsOpt = Annotated[
    BadRowsChoice, typer.Option("--bad-rows", help="raise: stop at malformed rows; warn: skip and list them.")
]
ThresholdOpt = Annotated[
    float, typer.Option(min=0.0, max=1.0, help="Positive when > this share of readers (2 of 3; ties negative).")
]


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("consensus")(consensus)
    app.command("split")(split)
    app.command("export")(export)
    app.add_typer(stats_app, name="stats")
    app.add_typer(import_app, name="import")


def _files_given(*values: object) -> bool:
    return any(bool(v) for v in values)


def _load(annotations, image_labels, nih=None, bbox=None, meta=None, dicom_dirs=None, schema=None,  # noqa: ANN001
          bad_rows=BadRowsChoice.raise_):  # noqa: ANN001, ANN202
    from cxrlab.ingest.release import load_release_files

    tables = load_release_files(
        annotations=annotations or (), image_labels=image_labels or (), nih=nih, bbox_list=bbox, meta=meta,
        dicom_dirs=dicom_dirs or (), schema=schema, on_bad_rows=bad_rows.value,
    )
    for where, reason in tables.problems[:20]:
        err.print(f"[yellow]skipped {where}[/]: {reason}", highlight=False)
    if len(tables.problems) > 20:
        err.print(f"... and {len(tables.problems) - 20} more skipped rows")
    return tables


def consensus(
    workspace: WorkspaceOpt = None,
    annotations: AnnotationsOpt = None,
    image_labels: LabelsOpt = None,
    method: Annotated[BoxMethod, typer.Option(help="wbf: every fused box; majority: boxes drawn by a majority "
                                              "of readers.")] = BoxMethod.wbf,
    iou: Annotated[float, typer.Option("--iou", min=0.0, max=1.0, help="Box fusion IoU threshold.")] = 0.4,
    skip_box_thr: Annotated[float, typer.Option(help="Ignore boxes scoring below this.")] = 0.0,
    threshold: ThresholdOpt = 0.5,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Consensus rows (annotations_test.csv "
                                                "layout).")] = None,
    labels_out: Annotated[Path | None, typer.Option(help="Consensus labels (image_labels_test.csv layout).")] = None,
    agreement: Annotated[Path | None, typer.Option(help="Write inter-reader agreement (JSON).")] = None,
    scores: Annotated[bool, typer.Option("--scores", help="Add score and votes columns to -o.")] = False,
    schema: SchemaOpt = None,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Aggregate readers: majority vote of labels and weighted boxes fusion of boxes.

    With --annotations (no workspace): cxrlab consensus --annotations A.csv --method wbf --iou 0.4 -o OUT.csv
    """
    if not _files_given(annotations, image_labels):
        from cxrlab.catalog import open_workspace
        from cxrlab.consensus import run_consensus

        with cli_errors(max_unpacked=max_unpacked):
            report = run_consensus(open_workspace(workspace), threshold=threshold, iou_thr=iou,
                                   skip_box_thr=skip_box_thr)
        print_report(report)
        return
    import json

    from cxrlab.consensus import agreement_report, consensus_tables
    from cxrlab.errors import CxrlabError
    from cxrlab.export.vindr import annotation_rows, label_rows, write_frame
    from cxrlab.runtime.files import atomic_write_text

    with cli_errors(max_unpacked=max_unpacked):
        if output is None and labels_out is None and agreement is None:
            raise CxrlabError("say where to write: -o OUT.csv, --labels-out or --agreement")
        tables = _load(annotations, image_labels, schema=schema, bad_rows=bad_rows)
        result = consensus_tables(tables, method=method.value, iou_thr=iou, skip_box_thr=skip_box_thr,
                                  threshold=threshold)
        if output is not None:
            rows = annotation_rows(result, consensus=True)
            if scores:
                extra = result.consensus_boxes.reset_index(drop=True)
                rows = _with_scores(rows, extra, result.schema.no_finding)
            write_frame(output, rows)
            out.print(f"{len(rows)} consensus rows -> {output}")
        if labels_out is not None:
            lab = label_rows(result, consensus=True)
            write_frame(labels_out, lab)
            out.print(f"{len(lab)} consensus label rows -> {labels_out}")
        if agreement is not None:
            rep = agreement_report(tables.reader_labels, tables.reader_boxes, schema=tables.schema, iou_thr=iou)
            atomic_write_text(agreement, json.dumps(rep.to_dict(), indent=2, default=str) + "\n")
            out.print(f"agreement -> {agreement}")


def _with_scores(rows, boxes, no_finding):  # noqa: ANN001, ANN202
    """Add ``score, votes`` to consensus rows (box rows in the same order as annotation_rows produced them)."""
    import numpy as np

    from cxrlab.export.vindr import format_coords

    key = boxes.assign(**{c: format_coords(boxes[c].to_numpy(dtype=float)) for c in ("x_min", "y_min",
                                                                                    "x_max", "y_max")})
    key = key[["image_id", "class_name", "x_min", "y_min", "x_max", "y_max", "score", "votes"]]
    key = key.drop_duplicates(["image_id", "class_name", "x_min", "y_min", "x_max", "y_max"])
    merged = rows.merge(key, on=["image_id", "class_name", "x_min", "y_min", "x_max", "y_max"], how="left")
    merged["score"] = np.round(merged["score"].astype(float), 4)
    merged["votes"] = merged["votes"].astype("Int64")
    return merged


def split(
    workspace: WorkspaceOpt = None,
    test_size: Annotated[float, typer.Option("--test-size", help="Test images: a count (1397) or a fraction "
                                             "(0.2).")] = 0.2,
    method: Annotated[SplitMethod, typer.Option(help="random, stratified (multilabel) or group (by patient).")]
    = SplitMethod.stratified,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Random seed.")] = 0,
    resplit: Annotated[bool, typer.Option(help="Split again images that already have a split.")] = False,
    annotations: AnnotationsOpt = None,
    image_labels: LabelsOpt = None,
    nih: NihOpt = None,
    schema: SchemaOpt = None,
    threshold: ThresholdOpt = 0.5,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Folder for train_val_list.txt, "
                                                "test_list.txt, split.csv (file mode).")] = None,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Split labeled images into train and test (sets Image.split), or split release files into list files."""
    if not _files_given(annotations, image_labels, nih):
        from cxrlab.catalog import open_workspace
        from cxrlab.split import run_split

        with cli_errors(max_unpacked=max_unpacked):
            report = run_split(open_workspace(workspace), test_size=test_size, seed=seed, method=method.value,
                               resplit=resplit)
        print_report(report)
        return
    import pandas as pd

    from cxrlab.consensus import image_positives
    from cxrlab.errors import CxrlabError
    from cxrlab.split import split_images, split_summary, write_split_lists

    with cli_errors(max_unpacked=max_unpacked):
        if output is None:
            raise CxrlabError("file mode needs -o DIR for the list files")
        tables = _load(annotations, image_labels, nih=nih, schema=schema, bad_rows=bad_rows)
        ids = list(tables.images["image_id"])
        labels = image_positives(tables, ids, threshold=threshold)
        groups = None
        if "patient_id" in tables.images:
            groups = pd.Series(tables.images["patient_id"].to_numpy(), index=tables.images["image_id"])
        if method == SplitMethod.group and (groups is None or groups.isna().all()):
            raise CxrlabError("a group split needs patient ids (NIH Patient ID, or --meta with patient_id)")
        try:
            result = split_images(ids, test_size=test_size, seed=seed, method=method.value, labels=labels,
                                  groups=groups)
        except ValueError as exc:
            raise CxrlabError(str(exc)) from None
        counts = write_split_lists(result, output)
        summary = split_summary(labels, result)
        frequent = summary.loc[summary["positives"] >= 10]
    out.print(f"train {counts['train']}, test {counts['test']} -> {output}")
    if len(frequent):
        out.print(f"largest prevalence gap (labels with >= 10 positives): {frequent['diff_pp'].max():.2f} "
                  "percentage points")


def export(
    tag: Annotated[str, typer.Argument(help="Release name: exports/<tag>/ (or the folder name with -o).")] = "v1",
    workspace: WorkspaceOpt = None,
    fmt: Annotated[list[str] | None, typer.Option("--format", "-f", help="Extra formats: coco, yolo, nih, json, "
                                                  "png, sr (DICOM SR per image; repeatable).")] = None,
    png_size: Annotated[int | None, typer.Option(help="Long side of the PNG copies (with --format png).")] = None,
    boxes: Annotated[str, typer.Option(help="Boxes for COCO/YOLO: consensus or readers.")] = "consensus",
    copy: Annotated[bool, typer.Option("--copy", help="Copy image files instead of hard-linking them.")] = False,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing release with this tag.")] = False,
    threshold: ThresholdOpt = 0.5,
    vindr: Annotated[Path | None, typer.Option("--from-vindr", help="Export a VinDr release folder instead of "
                                               "a workspace.")] = None,
    nih_dir: Annotated[Path | None, typer.Option("--from-nih", help="Export an NIH release folder instead of a "
                                                 "workspace.")] = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Parent folder of the release (file "
                                                "mode).")] = None,
    source: Annotated[LabelSource, typer.Option(help="Labels of a workspace release: readers (their readings and "
                                                "consensus) or report (mined from the radiology reports: cxrlab "
                                                "reports label).")] = LabelSource.readers,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Write a versioned release: train/ and test/ images, the four CSVs, Table 2, manifest, extra formats."""
    from cxrlab.errors import CxrlabError
    from cxrlab.export.release import release_contents

    formats = tuple(fmt or ())
    with cli_errors(max_unpacked=max_unpacked):
        if vindr is None and nih_dir is None:
            from cxrlab.catalog import open_workspace
            from cxrlab.export import run_export

            ws = open_workspace(workspace)
            with batch_executor(workers, scheduler, paths=(ws.root,)) as executor, progress("export") as cb:
                report = run_export(ws, tag, formats=formats, link=not copy, png_size=png_size, box_source=boxes,
                                    threshold=threshold, overwrite=overwrite, source=source.value,
                                    executor=executor, on_progress=cb)
            written = ws.path("exports", tag)
        else:
            from cxrlab.export.release import check_tag, write_release
            from cxrlab.ingest.release import load_release_files

            if source is not LabelSource.readers:
                raise CxrlabError("--source report exports a workspace's report labels (not with --from-vindr or "
                                  "--from-nih)")
            if output is None:
                raise CxrlabError("file mode needs -o PARENT_DIR (the release is written to PARENT_DIR/<tag>)")
            check_tag(tag)
            tables = load_release_files(vindr_dir=vindr, nih_dir=nih_dir)
            shared = tuple(p for p in (vindr, nih_dir, output) if p is not None)
            with batch_executor(workers, scheduler, paths=shared) as executor, progress("export") as cb:
                report = write_release(tables, output / tag, formats=formats, link=not copy, png_size=png_size,
                                       box_source=boxes, threshold=threshold, overwrite=overwrite,
                                       executor=executor, on_progress=cb)
            written = output / tag
    print_report(report, executor=executor)
    with cli_errors():
        out.print(f"release written to {written}: {release_contents(written)}", markup=False, highlight=False)


ImportCopyOpt = Annotated[bool, typer.Option("--copy", help="Copy image files instead of hard-linking them.")]


def _import(
    workspace: Path | None, copy: bool, bad_rows: BadRowsChoice, max_unpacked: str | None, **where: Path
) -> None:
    """Read a public release (``vindr_dir=`` or ``nih_dir=``) and import it into the workspace."""
    from cxrlab.catalog import open_workspace
    from cxrlab.ingest.release import import_release, load_release_files

    with cli_errors(max_unpacked=max_unpacked):
        ws = open_workspace(workspace)
        schema = {"schema": ws.settings.schema} if "vindr_dir" in where else {}
        tables = load_release_files(**where, **schema, on_bad_rows=bad_rows.value)
        report = import_release(ws, tables, link=not copy)
    print_report(report)


@import_app.command("vindr")
def import_vindr(
    folder: Annotated[Path, typer.Argument(help="Release folder: annotations_*.csv, image_labels_*.csv, "
                                           "train/, test/.")],
    workspace: WorkspaceOpt = None,
    copy: ImportCopyOpt = False,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Import a VinDr-CXR / VinDr-PCXR release (train: readings; test: consensus kept as review decisions)."""
    _import(workspace, copy, bad_rows, max_unpacked, vindr_dir=folder)


@import_app.command("nih")
def import_nih(
    folder: Annotated[Path, typer.Argument(help="Folder with Data_Entry_2017*.csv, BBox_List_2017.csv, lists, "
                                           "images*/.")],
    workspace: WorkspaceOpt = None,
    copy: ImportCopyOpt = False,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Import NIH ChestX-ray14 (labels and boxes kept as consensus; the workspace schema must be nih14)."""
    _import(workspace, copy, bad_rows, max_unpacked, nih_dir=folder)


def _table2_sets(tables, threshold: float, split: str | None):  # noqa: ANN001, ANN202
    from cxrlab.stats import table2_from_tables

    titles = {"train": "Training set", "test": "Test set"}
    splits = [split] if split else (tables.splits or [None])
    return [(titles.get(s, s or "All images"), table2_from_tables(tables, s, threshold=threshold)) for s in splits]


@stats_app.command("table2")
def table2(
    tag: Annotated[str | None, typer.Argument(help="Release of the workspace (exports/<tag>/).")] = None,
    workspace: WorkspaceOpt = None,
    annotations: AnnotationsOpt = None,
    image_labels: LabelsOpt = None,
    meta: MetaOpt = None,
    dicom_dir: DicomDirOpt = None,
    nih: NihOpt = None,
    fmt: Annotated[Table2Format, typer.Option("--format", help="md, csv, json or html.")] = Table2Format.md,
    split_: Annotated[str | None, typer.Option("--split", help="Only this split (train/test).")] = None,
    threshold: ThresholdOpt = 0.5,
    schema: SchemaOpt = None,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Print Table 2 (the seeds' layout) of CSV files, or of a workspace release.

    cxrlab stats table2 --annotations A.csv --image-labels L.csv --format json
    """
    with cli_errors(max_unpacked=max_unpacked):
        if _files_given(annotations, image_labels, nih, dicom_dir):
            from cxrlab.stats import render_table2

            tables = _load(annotations, image_labels, nih=nih, meta=meta, dicom_dirs=dicom_dir, schema=schema,
                           bad_rows=bad_rows)
            text = render_table2(_table2_sets(tables, threshold, split_), fmt.value)
        else:
            text = _release_table2(workspace, tag or "v1", fmt.value)
    sys.stdout.write(text)


def _release_table2(workspace: Path | None, tag: str, fmt: str) -> str:
    import json

    from cxrlab.catalog import open_workspace
    from cxrlab.errors import CxrlabError
    from cxrlab.stats import render_table2
    from cxrlab.stats.table2 import Table2

    path = open_workspace(workspace).path("exports", tag, "table2.json")
    if not path.exists():
        raise CxrlabError(f"{path}: not found (run `cxrlab export {tag}` first)")
    data = json.loads(path.read_text())
    sets = data.get("sets", [{"title": "Training set", **data}])
    fields = set(Table2.__dataclass_fields__)
    columns = [(s.get("title", "Training set"), Table2(**{k: v for k, v in s.items() if k in fields})) for s in sets]
    return render_table2(columns, fmt)


@stats_app.command("figures")
def figures(
    output: Annotated[Path, typer.Option("-o", "--output", help="Folder for figure3_findings.* and "
                                         "figure4_diseases.*.")],
    annotations: AnnotationsOpt = None,
    image_labels: LabelsOpt = None,
    nih: NihOpt = None,
    split_: Annotated[str | None, typer.Option("--split", help="Split to draw (default: train when present).")]
    = None,
    min_count: Annotated[int, typer.Option(help="Leave out labels with fewer images (the seed: 10).")] = 10,
    threshold: ThresholdOpt = 0.5,
    schema: SchemaOpt = None,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Figures 3 and 4: bar charts of findings and diseases (PNG and SVG)."""
    from cxrlab.stats import label_figures, table2_from_tables

    with cli_errors(max_unpacked=max_unpacked):
        tables = _load(annotations, image_labels, nih=nih, schema=schema, bad_rows=bad_rows)
        which = split_ or ("train" if "train" in tables.splits else None)
        table = table2_from_tables(tables, which, threshold=threshold)
        paths = label_figures(table, output, min_count=min_count,
                              title_set=f"{which} set" if which else "dataset")
    for p in paths:
        out.print(str(p))


@stats_app.command("cooccurrence")
def cooccurrence_cmd(
    nih: Annotated[Path, typer.Option("--nih", help="NIH Data_Entry_2017.csv[.gz].")],
    fmt: Annotated[CoocFormat, typer.Option("--format", help="csv, json or png.")] = CoocFormat.csv,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="File to write (required for png).")]
    = None,
    bad_rows: BadRowsOpt = BadRowsChoice.raise_,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """The NIH README's co-occurrence matrix: 14 x 14, diagonal = label alone, last row = totals."""
    from cxrlab.errors import CxrlabError
    from cxrlab.ingest import read_data_entry
    from cxrlab.runtime.files import atomic_write_text
    from cxrlab.schemas import get_schema
    from cxrlab.stats import cooccurrence, cooccurrence_figure, render_cooccurrence

    with cli_errors(max_unpacked=max_unpacked):
        entries, problems = read_data_entry(nih, on_bad_rows=bad_rows.value)
        for line, reason in problems[:20]:
            err.print(f"[yellow]skipped {nih}:{line}[/]: {reason}", highlight=False)
        matrix = cooccurrence(entries, get_schema("nih14").names)
        if fmt == CoocFormat.png:
            if output is None:
                raise CxrlabError("--format png needs -o FILE.png")
            cooccurrence_figure(matrix, str(output))
            out.print(str(output))
            return
        text = render_cooccurrence(matrix, fmt.value)
        if output is not None:
            atomic_write_text(output, text)
            out.print(str(output))
            return
    sys.stdout.write(text)
