"""``cxrlab consensus``, ``cxrlab export``, ``cxrlab stats table2``."""

from __future__ import annotations

from typing import Annotated

import typer

from cxrlab.cli.common import WorkspaceOpt, cli_errors, out, print_report

stats_app = typer.Typer(help="Release statistics.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("consensus")(consensus)
    app.command("export")(export)
    app.add_typer(stats_app, name="stats")


def consensus(
    workspace: WorkspaceOpt = None,
    threshold: Annotated[
        float, typer.Option(min=0.0, max=1.0, help="Positive when > this share of readers.")
    ] = 0.5,
) -> None:
    """Majority vote of the readers' image labels (2 of 3 by default)."""
    from cxrlab.catalog import open_workspace
    from cxrlab.consensus import run_consensus

    with cli_errors():
        report = run_consensus(open_workspace(workspace), threshold=threshold)
    print_report(report)


def export(
    tag: Annotated[str, typer.Argument(help="Release name: exports/<tag>/.")] = "v1",
    workspace: WorkspaceOpt = None,
) -> None:
    """Write a release: train/<image_id>.dicom, annotations_train.csv, image_labels_train.csv, Table 2."""
    from cxrlab.catalog import open_workspace
    from cxrlab.export import export_release

    with cli_errors():
        report = export_release(open_workspace(workspace), tag)
    print_report(report)


@stats_app.command("table2")
def table2(
    tag: Annotated[str, typer.Argument(help="Release to read (exports/<tag>/table2.md).")] = "v1",
    workspace: WorkspaceOpt = None,
) -> None:
    """Print Table 2 (Markdown) of an exported release."""
    from cxrlab.catalog import open_workspace
    from cxrlab.errors import CxrlabError

    with cli_errors():
        path = open_workspace(workspace).path("exports", tag, "table2.md")
        if not path.exists():
            raise CxrlabError(f"{path}: not found (run `cxrlab export {tag}` first)")
        out.print(path.read_text(), markup=False, highlight=False)
