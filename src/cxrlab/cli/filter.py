"""``cxrlab filter run|train|predict|queue|verify``: set outliers aside (header rules, then the filter model)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import (
    SEED_MAX,
    SchedulerOpt,
    WorkersOpt,
    WorkspaceOpt,
    batch_executor,
    cli_errors,
    err,
    ml_errors,
    multi_progress,
    out,
    print_report,
)

app = typer.Typer(help="Set outliers aside: header rules, the filter model, verification.", no_args_is_help=True)

PopulationOpt = Annotated[str | None, typer.Option(help="adult, pediatric or any (default: the workspace's; "
                                                   "adult without a workspace).")]
ThresholdOpt = Annotated[float, typer.Option(min=0.01, max=1.0, help="Confidence the model needs to decide alone; "
                                             "below it the image needs verification.")]


def _check_population(population: str | None) -> None:
    if population is not None and population not in ("adult", "pediatric", "any"):
        raise typer.BadParameter("adult, pediatric or any", param_hint="--population")


@app.command("run")
def filter_run(
    workspace: WorkspaceOpt = None,
    population: PopulationOpt = None,
    model: Annotated[Path | None, typer.Option(help="Filter model (.onnx with its .json sidecar; default: the "
                                               "workspace's models/filter.onnx when it exists).")] = None,
    no_model: Annotated[bool, typer.Option("--no-model", help="Header rules only.")] = False,
    threshold: ThresholdOpt = 0.8,
    audit: Annotated[float, typer.Option(min=0.0, max=1.0, help="Fraction of the model's accepted images sent to "
                                         "verification anyway.")] = 0.02,
    audit_seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the audit sample.")] = 0,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Decide every de-identified image: header rules (modality, body part, view, age), then the model: accepted,
    filtered_out (with the class as reason) or needs_verification (uncertain, or in the audit sample)."""
    from cxrlab.catalog import open_workspace
    from cxrlab.filter import FilterRules, run_filter, workspace_model

    _check_population(population)
    with ml_errors():
        ws = open_workspace(workspace)
        rules = FilterRules(population=population or ws.settings.population)
        chosen = None if no_model else (model or workspace_model(ws))
        shared = (ws.root,) if chosen is None else (ws.root, Path(chosen).parent)
        with batch_executor(workers, scheduler, paths=shared) as executor, multi_progress() as add:
            report = run_filter(ws, rules=rules, model=chosen, threshold=threshold, audit_fraction=audit,
                                audit_seed=audit_seed, executor=executor, on_progress=add("filter"))
    if chosen is None:
        report.notes.append("no filter model: header rules only (train one with cxrlab filter train)")
    print_report(report, executor=executor)


@app.command("train")
def filter_train(
    output: Annotated[Path, typer.Option("--output", "-o", help="The .onnx file to write (its .json sidecar is "
                                         "written beside it).")],
    phantoms: Annotated[int | None, typer.Option(min=10, max=1_000_000, help="Train a bootstrap model on N "
                                                 "generated phantoms instead of the workspace's decisions.")] = None,
    workspace: WorkspaceOpt = None,
    epochs: Annotated[int, typer.Option(min=1, max=1000, help="Passes over the training examples.")] = 8,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the phantoms and of training.")] = 0,
    width: Annotated[str, typer.Option(help="Network width: small, or tiny (about 4x faster).")] = "small",
    threads: Annotated[int | None, typer.Option(min=1, max=256, help="Torch threads (default: up to 2).")] = None,
    workers: WorkersOpt = None,
) -> None:
    """Train the filter model (needs the \\[ml] extra): on N phantoms (--phantoms), or on the workspace's human
    decisions (verifications, readers' unusable reason codes, images readers labeled)."""
    from cxrlab.runtime import Executor

    if width not in ("small", "tiny"):
        raise typer.BadParameter("small or tiny", param_hint="--width")
    with ml_errors(), multi_progress() as add:
        if phantoms is not None:
            from cxrlab.filter.train import train_on_phantoms

            side = train_on_phantoms(output, phantoms, seed=seed, epochs=epochs, width=width, threads=threads,
                                     executor=Executor(workers), on_progress=add)
        else:
            from cxrlab.catalog import open_workspace
            from cxrlab.filter.train import train_on_workspace

            side = train_on_workspace(open_workspace(workspace), output, epochs=epochs, seed=seed, width=width,
                                      threads=threads, executor=Executor(workers), on_progress=add)
    _print_training(output, side)


def _print_training(output: Path, side: dict) -> None:
    from rich.table import Table

    m = side.get("metrics") or {}
    counts = ", ".join(f"{k} {v}" for k, v in side["training"]["counts"].items())
    out.print(f"trained on {side['training']['examples']} example(s) ({counts}) in {side['training']['seconds']} s",
              highlight=False)
    cm = m.get("confusion_matrix")
    if cm:
        table = Table(title="validation confusion matrix (rows: true class, columns: predicted)", title_justify="left")
        table.add_column("")
        for label in cm["labels"]:
            table.add_column(label, justify="right")
        for label, row in zip(cm["labels"], cm["counts"], strict=True):
            table.add_row(label, *(str(v) for v in row))
        out.print(table)
        age = m.get("age_accuracy")
        age_text = f", age group accuracy {age:.3f} on {m['age_examples']}" if age is not None else ""
        out.print(f"view accuracy {m['view_accuracy']:.3f} on {m['validation_examples']} held-out example(s)"
                  f"{age_text}", highlight=False)
    else:
        out.print("too few examples to hold any out: no validation figures")
    out.print(f"model -> {output} (sha256 {side['sha256'][:12]}), sidecar -> {output.with_suffix('.json')}",
              highlight=False)


@app.command("predict")
def filter_predict(
    model: Annotated[Path, typer.Argument(help="Filter model (.onnx with its .json sidecar).")],
    paths: Annotated[list[Path], typer.Argument(help="DICOM or PNG files, or folders (searched recursively).")],
    fmt: Annotated[str, typer.Option("--format", help="csv or json.")] = "csv",
    population: PopulationOpt = None,
    threshold: ThresholdOpt = 0.8,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    workers: WorkersOpt = None,
) -> None:
    """Print the model's class, one probability per class and the decision for every file (no workspace needed).
    Other files inside a folder are skipped and counted; two runs give the same bytes."""
    from cxrlab.filter.predict import format_rows, predict_files
    from cxrlab.runtime import Executor
    from cxrlab.runtime.files import atomic_write_text

    if fmt not in ("csv", "json"):
        raise typer.BadParameter("csv or json", param_hint="--format")
    _check_population(population)
    with ml_errors():
        with multi_progress() as add:
            result = predict_files(model, paths, population=population or "adult", threshold=threshold,
                                   executor=Executor(workers), on_progress=add("predict"))
        text = format_rows(result.rows, fmt)
        if output is not None:
            atomic_write_text(output, text)
    if output is None:
        typer.echo(text, nl=False)
    for name, reason in result.problems:
        err.print(f"[yellow]{name}[/]: {reason}", highlight=False)
    if result.skipped:
        err.print(f"skipped {result.skipped} file(s) that are neither DICOM nor PNG", highlight=False)


QueueOpt = Annotated[str, typer.Option("--queue", help="filter (needs_verification), text (held for burned-in "
                                        "text) or unusable (set aside by readers).")]


def _check_queue(queue: str) -> None:
    from cxrlab.filter.triage import QUEUES

    if queue not in QUEUES:
        raise typer.BadParameter(", ".join(QUEUES), param_hint="--queue")


@app.command("queue")
def filter_queue(
    workspace: WorkspaceOpt = None,
    queue: QueueOpt = "filter",
    limit: Annotated[int, typer.Option(min=1, max=10_000, help="Images to list.")] = 48,
) -> None:
    """List the images waiting for a human in one queue (image id, why, the model's class and confidence, the
    candidate text boxes), and the counts of every queue; the web app's /triage page shows the same."""
    from rich.table import Table

    from cxrlab.catalog import open_workspace
    from cxrlab.filter.triage import queue_counts, triage_page

    _check_queue(queue)
    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            items = triage_page(session, ws, queue, limit=limit)
            counts = queue_counts(session)
    out.print("waiting: " + ", ".join(f"{q} {n}" for q, n in counts.items()), highlight=False)
    if not items:
        out.print(f"no image is waiting in the {queue} queue")
        return
    table = Table(title=queue, title_justify="left")
    table.add_column("image_id", no_wrap=True, min_width=32)
    for column in ("why", "class", "boxes"):
        table.add_column(column)
    for it in items:
        klass = f"{it.klass} {it.confidence:.2f}" if it.klass and it.confidence is not None else (it.klass or "")
        table.add_row(it.image_id, it.why, klass, " ".join(",".join(map(str, b)) for b in it.boxes))
    out.print(table)


def _parse_boxes(boxes: list[str] | None) -> list[list[int]] | None:
    if not boxes:
        return None
    parsed = []
    for box in boxes:
        try:
            values = [int(v) for v in box.split(",")]
        except ValueError:
            values = []
        if len(values) != 4:
            raise typer.BadParameter("X0,Y0,X1,Y1 (integers, stored pixels)", param_hint="--box")
        parsed.append(values)
    return parsed


@app.command("verify")
def filter_verify(
    image_ids: Annotated[list[str], typer.Argument(help="Image ids (as in the workspace's images/ folder).")],
    author: Annotated[str, typer.Option(help="Who decided (kept on the event).")],
    accept: Annotated[bool, typer.Option("--accept", help="filter queue: a frontal chest of the population.")] = False,
    outlier: Annotated[str | None, typer.Option(help="filter queue: an outlier: lateral, other_body_part, "
                                                "low_quality, pediatric or adult.")] = None,
    text: Annotated[str | None, typer.Option(help="text queue: release (no PHI), redact (the candidate boxes, or "
                                             "--box) or discard.")] = None,
    box: Annotated[list[str] | None, typer.Option(help="With --text redact: a box X0,Y0,X1,Y1 in stored pixels "
                                                  "(repeat).")] = None,
    set_aside: Annotated[str | None, typer.Option("--set-aside", help="unusable queue: confirm, or return (to the "
                                                  "reading queue).")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Record a human decision on images waiting in a triage queue (an event with its author): the same functions
    as the web app's /triage page."""
    from sqlalchemy import select

    from cxrlab.annotate.setaside import decide_set_aside
    from cxrlab.catalog import Image, open_workspace
    from cxrlab.errors import NotFoundError
    from cxrlab.filter.triage import record_text_decision
    from cxrlab.filter.verify import record_verification

    if sum((accept, outlier is not None, text is not None, set_aside is not None)) != 1:
        raise typer.BadParameter("give exactly one of --accept, --outlier REASON, --text ACTION, --set-aside ACTION")
    if box and text != "redact":
        raise typer.BadParameter("--box goes with --text redact")
    boxes = _parse_boxes(box)
    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            for image_id in image_ids:
                pk = session.scalar(select(Image.id).where(Image.image_id == image_id))
                if pk is None:
                    raise NotFoundError(f"no image {image_id} in the workspace")
                try:
                    if text is not None:
                        img = record_text_decision(session, ws, image_pk=pk, action=text, author=author, boxes=boxes)
                    elif set_aside is not None:
                        img = decide_set_aside(session, image_pk=pk, action=set_aside, author=author)
                    else:
                        img = record_verification(session, image_pk=pk, action="accept" if accept else "outlier",
                                                  reason=outlier, author=author)
                except ValueError as exc:
                    raise typer.BadParameter(str(exc)) from None
                out.print(f"{image_id}: {img.state.value}", highlight=False)
