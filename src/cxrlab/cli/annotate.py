"""``cxrlab annotate assign|suggest|status|gold|quality|record|simulate``: hand images to blinded readers and
reviewers (with gold-standard tasks mixed in, and a detector's boxes as suggestions when asked), show progress,
mark gold images, score readers on them, record readers' labels from a script or simulate readers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import SEED_MAX, WorkspaceOpt, cli_errors, ml_errors, out, print_report, progress

app = typer.Typer(
    help="Record readers' labels (the web labeling tool comes with `cxrlab serve`).", no_args_is_help=True
)


@app.command("record")
def record(
    readings: Annotated[Path, typer.Argument(help="JSON list of {image_id, rad_id, labels, boxes}.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Record readings from a JSON file; every reading passes the QC rules or the whole file is refused."""
    from cxrlab.annotate.readings import load_readings, record_reading
    from cxrlab.catalog import open_workspace
    from cxrlab.schemas import get_schema

    with cli_errors():
        ws = open_workspace(workspace)
        items = load_readings(readings)
        schema = get_schema(ws.settings.schema)
        with ws.transaction() as session:
            for i, item in enumerate(items):
                try:
                    record_reading(session, schema, item)
                except Exception as exc:
                    raise type(exc)(f"{readings}: entry {i}: {exc}") from None
    out.print(f"recorded {len(items)} reading(s)")


@app.command("simulate")
def simulate(
    workspace: WorkspaceOpt = None,
    readers: Annotated[int, typer.Option(min=1, help="Readers per image.")] = 3,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Random seed.")] = 0,
) -> None:
    """Simulate blinded readers on every accepted image (demo and tests only)."""
    from cxrlab.annotate.readings import simulate_readers
    from cxrlab.catalog import open_workspace

    with cli_errors():
        report = simulate_readers(open_workspace(workspace), readers=readers, seed=seed)
    print_report(report)


ProjectOpt = Annotated[str, typer.Option("--project", "-p", help="Project name.")]


@app.command("assign")
def assign(
    project: ProjectOpt,
    workspace: WorkspaceOpt = None,
    schema: Annotated[str, typer.Option(help="Preset schema of a new project: vindr-cxr, vindr-pcxr, nih14.")] = "",
    schema_file: Annotated[Path | None, typer.Option(help="Custom YAML schema of a new project.")] = None,
    readers: Annotated[int, typer.Option(min=1, help="Readers per image (new project).")] = 3,
    reviewers: Annotated[int, typer.Option(min=1, help="Reviewers per test image (new project).")] = 2,
    test_fraction: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of unsplit images put in test.")] = 0.0,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Seed of the per-reader shuffle (new project).")] = 0,
    reader: Annotated[list[str] | None, typer.Option(help="Only these annotators (repeat).")] = None,
    reviewer: Annotated[list[str] | None, typer.Option(help="Only these reviewers (repeat).")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Assign at most this many images.")] = None,
    gold_rate: Annotated[float, typer.Option(min=0.0, max=0.5, help=(
        "Share of each reader's tasks that are gold-standard tasks, mixed in unseen (mark gold images first with "
        "`cxrlab annotate gold`)."))] = 0.0,
    suggest: Annotated[Path | None, typer.Option(help=(
        "Model-assisted reading: offer the boxes of this detector run (`cxrlab train detector`) to the readers "
        "as suggestions, and predict the project's images now. Off by default: suggestions bias readers."))] = None,
) -> None:
    """Assign accepted images: N blinded readers each (own seeded order); test images also get reviewers.
    Creates the project on first use."""
    from cxrlab.annotate.assignment import assign_images
    from cxrlab.annotate.projects import create_project, get_project_by_name
    from cxrlab.catalog import open_workspace
    from cxrlab.errors import NotFoundError
    from cxrlab.schemas import load_schema_yaml

    with ml_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            model = None
            try:
                proj = get_project_by_name(session, project)
            except NotFoundError:
                yaml_text = None
                if schema_file is not None:
                    load_schema_yaml(schema_file)  # validate with the file name in messages
                    yaml_text = schema_file.read_text(encoding="utf-8")
                proj = create_project(session, name=project, schema=schema or ws.settings.schema,
                                      schema_yaml=yaml_text, readers_per_image=readers,
                                      reviewers_per_test=reviewers, seed=seed)
                out.print(f"created project {proj.name!r} (schema {proj.schema_name})")
            if suggest is not None:
                from cxrlab.models.suggest import check_suggest_run

                model = check_suggest_run(suggest, proj)  # refused before anything is assigned
            report = assign_images(session, project=proj, test_fraction=test_fraction, readers=reader,
                                   reviewers=reviewer, limit=limit, gold_rate=gold_rate, author="cli")
            print_report(report)
            if suggest is not None:
                _suggest(ws, session, proj, suggest, model)
            elif proj.suggest_model_sha256 and report.counts:
                _predict_new(ws, session, proj)


def _predict_new(ws, session, proj) -> None:  # noqa: ANN001 - workspace, session, project
    """Predict the images just assigned to *proj*, whose suggestions are on; a run that cannot be used now is a
    warning (the server's worker predicts them once it can), never a failed assignment."""
    from cxrlab.cli.common import err
    from cxrlab.errors import CxrlabError
    from cxrlab.models.suggest import predict_suggestions

    try:
        with progress("suggest") as on_progress:
            report = predict_suggestions(session, ws, project=proj, on_progress=on_progress)
    except (CxrlabError, ImportError) as exc:
        err.print(f"[yellow]warning:[/] model suggestions not predicted now: {exc}", highlight=False)
        return
    print_report(report)


def _suggest(ws, session, proj, run: Path | None, model) -> None:  # noqa: ANN001 - workspace, session, project, model
    """Set *proj*'s detector run (None: off) and predict its images now (a progress bar on stderr)."""
    from cxrlab.models.suggest import predict_suggestions, set_suggest_run

    set_suggest_run(session, project=proj, run=run, author="cli", model=model)
    if run is None:
        out.print(f"model suggestions off for project {proj.name!r}")
        return
    out.print(f"model suggestions on for project {proj.name!r}: {proj.suggest_run} (model "
              f"{proj.suggest_model_sha256[:12]})")
    with progress("suggest") as on_progress:
        report = predict_suggestions(session, ws, project=proj, model=model, on_progress=on_progress)
    print_report(report)


@app.command("suggest")
def suggest_run(
    project: ProjectOpt,
    run: Annotated[Path | None, typer.Argument(help="A detector run folder (`cxrlab train detector`).")] = None,
    workspace: WorkspaceOpt = None,
    off: Annotated[bool, typer.Option("--off", help="Turn model suggestions off.")] = False,
) -> None:
    """Model-assisted reading: offer a detector run's boxes to the project's readers as dashed suggestions they
    accept with one key (A), and predict the project's images now; --off turns them off. Off by default, since
    suggestions bias readers; every accepted box is recorded as a suggestion."""
    from cxrlab.annotate.projects import get_project_by_name
    from cxrlab.catalog import open_workspace
    from cxrlab.errors import CxrlabError

    with ml_errors():
        if (run is None) == (not off):
            raise CxrlabError("give a detector run folder, or --off")
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            proj = get_project_by_name(session, project)
            model = None
            if run is not None:
                from cxrlab.models.suggest import check_suggest_run

                model = check_suggest_run(run, proj)
            _suggest(ws, session, proj, run, model)


@app.command("gold")
def gold(
    project: ProjectOpt,
    image_ids: Annotated[list[str] | None, typer.Argument(help="Decided images to mark (or unmark).")] = None,
    workspace: WorkspaceOpt = None,
    source: Annotated[str, typer.Option(help="consensus, or reader:<rad_id> for an expert's read.")] = "consensus",
    remove: Annotated[bool, typer.Option("--remove", help="Stop using these images as gold.")] = False,
) -> None:
    """Mark decided images as gold standard (their consensus or an expert's read), or list the gold images.
    `annotate assign --gold-rate` then mixes them into readers' queues."""
    from rich.table import Column, Table

    from cxrlab.annotate.gold import list_gold, mark_gold, unmark_gold
    from cxrlab.annotate.projects import get_project_by_name
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            proj = get_project_by_name(session, project)
            if image_ids:
                change = unmark_gold if remove else mark_gold
                kwargs = {} if remove else {"source": source}
                print_report(change(session, project=proj, image_ids=image_ids, author="cli", **kwargs))
            rows = list_gold(session, project=proj)
    table = Table("source", "labels", "boxes", "reads", "open", title=f"{project}: gold images", title_justify="left")
    table.columns.insert(0, Column("image_id", overflow="fold"))  # a full id, never cut with an ellipsis
    for g in rows:
        table.add_row(g["image_id"], g["source"], ", ".join(g["labels"]), str(g["boxes"]), str(g["reads"]),
                      str(g["open"]))
    out.print(table)


@app.command("quality")
def quality(
    project: ProjectOpt,
    workspace: WorkspaceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full scores as JSON.")] = False,
) -> None:
    """Score each reader on the gold images: per-label sensitivity/specificity and box F1 at IoU 0.4."""
    import json

    from rich.table import Table

    from cxrlab.annotate.projects import get_project_by_name
    from cxrlab.catalog import open_workspace
    from cxrlab.consensus import reader_quality

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            data = reader_quality(session, project=get_project_by_name(session, project))
    if as_json:
        out.print_json(json.dumps(data))
        return
    fmt = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    table = Table("reader", "user", "gold reads", "mean sensitivity", "mean specificity",
                  f"box F1 @ IoU {data['box_iou']}", "boxes (gold/reader/matched)",
                  title=f"{project}: readers on {data['gold_images']} gold image(s)", title_justify="left")
    for r in data["readers"]:
        b = r["boxes"]
        table.add_row(r["rad_id"], r["username"], str(r["images"]), fmt(r["mean_sensitivity"]),
                      fmt(r["mean_specificity"]), fmt(b["f1"]), f"{b['gold']}/{b['reader']}/{b['matched']}")
    out.print(table)


@app.command("status")
def status(project: ProjectOpt, workspace: WorkspaceOpt = None) -> None:
    """Progress of a project per split and per reader."""
    from rich.table import Table

    from cxrlab.annotate.progress import progress
    from cxrlab.annotate.projects import get_project_by_name
    from cxrlab.catalog import open_workspace

    with cli_errors():
        ws = open_workspace(workspace)
        with ws.sessions() as session:
            data = progress(session, project=get_project_by_name(session, project))
    table = Table("split", "images", "read tasks", "reviews", title=f"{project}: per split", title_justify="left")
    for split, s in sorted(data["splits"].items()):
        fmt = lambda d: ", ".join(f"{k} {v}" for k, v in sorted(d.items()))  # noqa: E731
        table.add_row(split, str(s["images"]), fmt(s["tasks"]), fmt(s["reviews"]))
    out.print(table)
    table = Table("reader", "user", "role", "tasks", "last day", title="per reader", title_justify="left")
    for r in data["readers"]:
        tasks = "; ".join(f"{k}: " + ", ".join(f"{s} {n}" for s, n in sorted(v.items())) for k, v in r["tasks"].items())
        table.add_row(r["rad_id"], r["username"], r["role"], tasks, str(r["last_day"]))
    out.print(table)
    out.print(f"unusable: {len(data['unusable'])}; submitted in all: {data['throughput']['submitted']}")
