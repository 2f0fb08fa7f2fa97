"""``cxrlab annotate record|simulate``: record readers' labels from a script or simulate readers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import WorkspaceOpt, cli_errors, out, print_report

app = typer.Typer(
    help="Record readers' labels (the web labeling tool comes with `cxrlab serve`).", no_args_is_help=True
)


@app.command("record")
def record(
    readings: Annotated[Path, typer.Argument(help="JSON list of {image_id, rad_id, labels, boxes}.")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Record readings from a JSON file; every reading passes the QC rules or the whole file is refused."""
    from cxrlab.annotate.services.readings import load_readings, record_reading
    from cxrlab.catalog import open_workspace, session_scope
    from cxrlab.schemas import get_schema

    with cli_errors():
        ws = open_workspace(workspace)
        items = load_readings(readings)
        schema = get_schema(ws.settings.schema)
        with session_scope(ws.sessions) as session:
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
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Simulate blinded readers on every accepted image (demo and tests only)."""
    from cxrlab.annotate.services.readings import simulate_readers
    from cxrlab.catalog import open_workspace

    with cli_errors():
        report = simulate_readers(open_workspace(workspace), readers=readers, seed=seed)
    print_report(report)
