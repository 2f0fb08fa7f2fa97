"""The ``cxrlab`` command: one Typer sub-app per stage, each command a thin call into the library."""

from __future__ import annotations

import typer

from cxrlab.cli import (
    annotate,
    cluster,
    collect,
    dicom_tools,
    evaluate,
    leaderboard,
    models,
    pipeline,
    release,
    reports,
    serve,
    users,
)
from cxrlab.cli import filter as filter_cli

app = typer.Typer(
    name="cxrlab",
    help="Turn a chest X-ray archive into a released, benchmarked dataset.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)
pipeline.register(app)
app.add_typer(filter_cli.app, name="filter")
dicom_tools.register(app)
release.register(app)
serve.register(app)
collect.register(app)
app.add_typer(annotate.app, name="annotate")
app.add_typer(users.app, name="users")
app.add_typer(evaluate.app, name="evaluate")
app.add_typer(leaderboard.app, name="leaderboard")
app.add_typer(reports.app, name="reports")
app.add_typer(cluster.app, name="cluster")
models.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
