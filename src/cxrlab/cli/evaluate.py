"""``cxrlab evaluate detection|classification|localization|validate``: score plain files, no workspace."""

from __future__ import annotations

import json
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import SEED_MAX, MaxUnpackedOpt, cli_errors, err, out, progress

app = typer.Typer(help="Benchmark scores as the public challenge and the papers computed them.", no_args_is_help=True)


class Format(StrEnum):
    """Output formats."""

    TABLE = "table"
    JSON = "json"


class MetricChoice(StrEnum):
    """Detection metrics: mirrors ``cxrlab.evaluate.Metric``, kept here so ``--help`` does not import numpy."""

    KAGGLE = "kaggle"
    VOC = "voc"
    COCO = "coco"


FormatOpt = Annotated[Format, typer.Option("--format", "-f", help="table (Rich) or json (stdout).")]
GtOpt = Annotated[Path, typer.Option("--gt", help="Ground truth CSV.")]
PredOpt = Annotated[Path, typer.Option("--pred", help="Predictions CSV.")]
ClassesOpt = Annotated[
    str, typer.Option("--classes", help="Class ids of the submission: vindr-cxr-challenge, vindr-cxr, vindr-pcxr.")
]
MetaOpt = Annotated[Path | None, typer.Option("--meta", help="Image sizes CSV: image_id,width,height.")]


def _fmt(v: float | None, digits: int = 4) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _print_json(data: dict) -> None:
    typer.echo(json.dumps(data, indent=2))


def _read_ids(path: Path | None) -> list[str] | None:
    from cxrlab.evaluate import EvaluationError

    if path is None:
        return None
    if not path.is_file():
        raise EvaluationError(f"{path}: image id list not found")
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _show_problems(problems: list, name: str, *, limit: int = 50) -> int:  # noqa: ANN001 - list[Problem]
    """Print problems on stderr; return the number of errors."""
    from cxrlab.evaluate import Severity

    for p in problems[:limit]:
        colour = "red" if p.severity is Severity.ERROR else "yellow"
        err.print(f"[{colour}]{p.format(name)}[/]", highlight=False, markup=True)
    if len(problems) > limit:
        err.print(f"... and {len(problems) - limit} more problem(s)")
    return sum(p.severity is Severity.ERROR for p in problems)


@app.command("detection")
def detection(
    gt: GtOpt,
    pred: PredOpt,
    metric: Annotated[MetricChoice, typer.Option(help="kaggle (challenge), voc or coco.")] = MetricChoice.KAGGLE,
    iou: Annotated[
        float | None, typer.Option(help="IoU threshold (default 0.4; coco: 0.50:0.95 unless given).")
    ] = None,
    classes: ClassesOpt = "vindr-cxr-challenge",
    meta: MetaOpt = None,
    image_ids: Annotated[
        Path | None, typer.Option("--image-ids", help="Text file of image ids to score (public/private part).")
    ] = None,
    fmt: FormatOpt = Format.TABLE,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Detection mAP of an image_id,PredictionString submission against annotations_test.csv.

    The submission is validated first; any error stops with the list of problems (exit 1).
    """
    from rich.table import Table

    from cxrlab.evaluate import get_class_list, read_annotations, score_submission, validate_submission

    with cli_errors(max_unpacked=max_unpacked):
        class_list = get_class_list(classes)
        truth = read_annotations(gt, classes=class_list, meta=meta)
        problems = validate_submission(pred, gt_image_ids=set(truth.image_ids), meta=meta, classes=class_list)
        if _show_problems(problems, str(pred)):
            err.print(f"[red]error:[/] {pred}: fix the errors above (`cxrlab evaluate validate` lists them)")
            raise typer.Exit(code=1)
        result = score_submission(truth, pred, metric=metric.value, iou=iou, image_ids=_read_ids(image_ids))
    for note in result.notes:
        err.print(note, highlight=False)
    if fmt is Format.JSON:
        _print_json(result.to_dict())
        return
    ious = "0.50:0.95" if len(result.iou) > 1 else f"{result.iou[0]:g}"
    table = Table(title=f"{metric.value} mAP@{ious}", title_justify="left")
    table.add_column("class")
    table.add_column("gt boxes", justify="right")
    table.add_column("AP", justify="right")
    for name, ap in result.per_class.items():
        table.add_row(name, str(result.gt_per_class.get(name, 0)), _fmt(ap))
    table.add_section()
    table.add_row("[bold]mAP", str(result.gt_boxes), f"[bold]{_fmt(result.mAP)}")
    for key, value in result.extra.items():
        table.add_row(key, "", _fmt(value))
    out.print(table)
    out.print(f"{result.images} images, {result.predictions} predictions")


@app.command("classification")
def classification(
    gt: GtOpt,
    pred: PredOpt,
    threshold: Annotated[
        str, typer.Option(help="'youden' (per class) or a number: positive when probability >= threshold.")
    ] = "youden",
    n_boot: Annotated[int, typer.Option("--n-boot", min=0, help="Bootstrap resamples for the CI.")] = 1000,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Bootstrap seed.")] = 0,
    ci: Annotated[float, typer.Option(min=0.5, max=0.999, help="Interval level.")] = 0.95,
    fmt: FormatOpt = Format.TABLE,
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """Per-class AUC with a bootstrap CI, sensitivity, specificity and F1 (image_labels_test.csv vs PROBS.csv)."""
    from rich import box
    from rich.table import Table

    from cxrlab.evaluate import EvaluationError, score_classification

    with cli_errors(max_unpacked=max_unpacked):
        try:
            thr: float | str = threshold if threshold == "youden" else float(threshold)
        except ValueError:
            raise EvaluationError(f"--threshold must be 'youden' or a number, got {threshold!r}") from None
        with progress("bootstrap") as on_progress:
            result = score_classification(
                gt, pred, threshold=thr, n_boot=n_boot, seed=seed, ci=ci, on_progress=on_progress
            )
    for note in result.notes:
        err.print(note, highlight=False)
    if fmt is Format.JSON:
        _print_json(result.to_dict())
        return
    table = Table(
        title=f"classification: {result.images} images, threshold {result.threshold}",
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    table.add_column("label")
    for col in ("pos/neg", "AUC", f"{ci:.0%} CI", "thresh", "sens", "spec", "F1"):
        table.add_column(col, justify="right", no_wrap=True)
    for c in result.per_class:
        ci_text = "-" if c.ci_low is None else f"{c.ci_low:.3f}-{c.ci_high:.3f}"
        table.add_row(
            c.name,
            f"{c.positives}/{c.negatives}",
            _fmt(c.auc, 3),
            ci_text,
            _fmt(c.threshold, 3),
            _fmt(c.sensitivity, 3),
            _fmt(c.specificity, 3),
            _fmt(c.f1, 3),
        )
    table.add_section()
    table.add_row("[bold]mean AUC", "", f"[bold]{_fmt(result.mean_auc, 3)}")
    out.print(table)
    out.print(f"bootstrap: {result.n_boot} resamples, seed {result.seed}")


@app.command("localization")
def localization(
    gt: GtOpt, pred: PredOpt, fmt: FormatOpt = Format.TABLE, max_unpacked: MaxUnpackedOpt = None
) -> None:
    """NIH localization accuracy and average false positives at T(IoU) and T(IoBB) (ChestX-ray8, Table 4).

    Both files in the BBox_List_2017.csv layout: Image Index, Finding Label, x, y, w, h.
    """
    from rich import box
    from rich.table import Table

    from cxrlab.evaluate import score_localization

    with cli_errors(max_unpacked=max_unpacked):
        result = score_localization(gt, pred)
    for note in result.notes:
        err.print(note, highlight=False)
    if fmt is Format.JSON:
        _print_json(result.to_dict())
        return
    names = [*result.diseases, "mean"]
    for criterion, label in (("iou", "T(IoU)"), ("iobb", "T(IoBB)")):
        rows = result.table[criterion]
        for measure, title in (("acc", "accuracy (Acc.)"), ("afp", "average false positives per image (AFP)")):
            table = Table(title=f"{label}: {title}", title_justify="left", box=box.SIMPLE_HEAD)
            table.add_column("disease", no_wrap=True)
            for t in rows:
                table.add_column(f"{t:g}", justify="right")
            for name in names:
                table.add_row(name, *(f"{rows[t][name][measure]:.3f}" for t in rows))
            out.print(table)


@app.command("validate")
def validate(
    pred: Annotated[Path, typer.Argument(help="Submission CSV: image_id,PredictionString.")],
    gt: Annotated[
        Path | None, typer.Option("--gt", help="Ground truth (annotations_test.csv): checks missing/unknown images.")
    ] = None,
    meta: MetaOpt = None,
    classes: ClassesOpt = "vindr-cxr-challenge",
    max_unpacked: MaxUnpackedOpt = None,
) -> None:
    """List every problem of a submission with its line number; exit 1 when there is an error."""
    from cxrlab.evaluate import get_class_list, read_annotations, validate_submission

    with cli_errors(max_unpacked=max_unpacked):
        class_list = get_class_list(classes)
        ids = set(read_annotations(gt, classes=class_list, meta=meta).image_ids) if gt is not None else None
        problems = validate_submission(pred, gt_image_ids=ids, meta=meta, classes=class_list)
    errors = _show_problems(problems, str(pred), limit=1000)
    out.print(f"{pred}: {errors} error(s), {len(problems) - errors} warning(s)", highlight=False, soft_wrap=True)
    if errors:
        raise typer.Exit(code=1)
