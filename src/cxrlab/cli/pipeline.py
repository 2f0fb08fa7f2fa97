"""``cxrlab init``, ``cxrlab ingest folder``, ``cxrlab deid run``, ``cxrlab filter run``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import WorkersOpt, WorkspaceOpt, cli_errors, out, print_report, progress

ingest_app = typer.Typer(help="Bring DICOM files into the workspace.", no_args_is_help=True)
deid_app = typer.Typer(help="De-identify ingested images.", no_args_is_help=True)
filter_app = typer.Typer(help="Set outliers aside.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("init")(init)
    app.add_typer(ingest_app, name="ingest")
    app.add_typer(deid_app, name="deid")
    app.add_typer(filter_app, name="filter")


def init(
    workspace: Annotated[Path, typer.Argument(help="Folder to create (or complete).")],
    schema: Annotated[str, typer.Option(help="Label schema: vindr-cxr, vindr-pcxr or nih14.")] = "vindr-cxr",
    population: Annotated[str, typer.Option(help="adult, pediatric or any.")] = "adult",
    database_url: Annotated[
        str, typer.Option(help="SQLAlchemy URL (default: SQLite in the workspace).")
    ] = "",
) -> None:
    """Create a workspace: settings, catalog (migrated), secret key and stage folders."""
    from cxrlab.catalog import Settings, init_workspace
    from cxrlab.schemas import get_schema

    with cli_errors():
        try:
            get_schema(schema)
        except KeyError as exc:
            raise typer.BadParameter(str(exc.args[0]), param_hint="--schema") from None
        ws = init_workspace(
            workspace, settings=Settings(schema=schema, population=population, database_url=database_url)
        )
    out.print(
        f"workspace ready: {ws.root} (catalog {ws.database_url.split('://')[0]}, schema {ws.settings.schema})"
    )


@ingest_app.command("folder")
def ingest_folder_cmd(
    path: Annotated[Path, typer.Argument(help="Folder (searched recursively) or a single file.")],
    workspace: WorkspaceOpt = None,
    workers: WorkersOpt = None,
) -> None:
    """Ingest DICOM files: non-DICOM files are skipped, duplicates ignored, bad files quarantined."""
    from cxrlab.catalog import open_workspace
    from cxrlab.ingest import ingest_folder
    from cxrlab.runtime import Executor

    with cli_errors():
        ws = open_workspace(workspace)
        with progress("ingest") as cb:
            report = ingest_folder(ws, path, executor=Executor(workers), on_progress=cb)
    print_report(report)


@deid_app.command("run")
def deid_run(workspace: WorkspaceOpt = None, workers: WorkersOpt = None) -> None:
    """De-identify every ingested image with the workspace profile (VinDr 25-tag keep-list)."""
    from cxrlab.catalog import open_workspace
    from cxrlab.deid import run_deid
    from cxrlab.runtime import Executor

    with cli_errors():
        ws = open_workspace(workspace)
        with progress("deid") as cb:
            report = run_deid(ws, executor=Executor(workers), on_progress=cb)
    print_report(report)


@filter_app.command("run")
def filter_run(
    workspace: WorkspaceOpt = None,
    population: Annotated[
        str | None, typer.Option(help="adult, pediatric or any (default: workspace).")
    ] = None,
) -> None:
    """Apply the header rules (modality, body part, view, age) to de-identified images."""
    from cxrlab.catalog import open_workspace
    from cxrlab.filter import FilterRules, run_filter

    with cli_errors():
        ws = open_workspace(workspace)
        try:
            rules = FilterRules(population=population or ws.settings.population)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--population") from None
        with progress("filter") as cb:
            report = run_filter(ws, rules=rules, on_progress=cb)
    print_report(report)
