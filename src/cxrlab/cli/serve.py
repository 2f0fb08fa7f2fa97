"""``cxrlab serve`` and ``cxrlab demo``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cxrlab.cli.common import SEED_MAX, WorkersOpt, WorkspaceOpt, cli_errors, multi_progress, out, print_report

HostOpt = Annotated[str, typer.Option(help="Address to bind (serve other hosts behind an HTTPS proxy).")]
PortOpt = Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")]


def register(app: typer.Typer) -> None:
    """Attach these commands to the root app."""
    app.command("serve")(serve)
    app.command("demo")(demo)


def serve(
    workspace: WorkspaceOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
    secure_cookies: Annotated[
        bool, typer.Option("--secure-cookies", help="Mark the session cookie Secure (when served over HTTPS).")
    ] = False,
    forwarded_allow_ips: Annotated[
        str | None,
        typer.Option(help="Comma-separated addresses of the reverse proxies whose X-Forwarded-For/-Proto headers "
                     "are trusted (e.g. 127.0.0.1). Default: none, the connection's own address counts."),
    ] = None,
) -> None:
    """Serve the labeling tool and its REST API (/docs, /health)."""
    from cxrlab.catalog import open_workspace
    from cxrlab.web.server import serve as run_server

    with cli_errors():
        ws = open_workspace(workspace)
    out.print(f"serving {ws.root} on http://{host}:{port}")
    run_server(ws, host=host, port=port, workers=workers, secure_cookies=secure_cookies,
               forwarded_allow_ips=forwarded_allow_ips)


def demo(
    workspace: Annotated[Path, typer.Option("--workspace", "-w", help="Demo workspace folder.")] = Path(
        "demo-workspace"
    ),
    n: Annotated[int, typer.Option("-n", min=1, help="Phantom images.")] = 60,
    seed: Annotated[int, typer.Option(min=0, max=SEED_MAX, help="Random seed.")] = 0,
    workers: WorkersOpt = None,
    host: HostOpt = "127.0.0.1",
    port: PortOpt = 8000,
    no_serve: Annotated[bool, typer.Option("--no-serve", help="Build the workspace and stop.")] = False,
) -> None:
    """Build a demo workspace from phantoms, run the whole pipeline and serve the web app."""
    from cxrlab.demo import DEMO_USERS, build_demo, demo_users
    from cxrlab.export.release import release_contents
    from cxrlab.runtime import Executor

    with cli_errors(), multi_progress() as add:
        ws, reports = build_demo(workspace, n=n, seed=seed, executor=Executor(workers), on_stage=add)
    for report in reports:
        print_report(report)
    release = ws.path("exports", "demo")
    out.print(f"\nrelease written to {release}: {release_contents(release)}", markup=False, highlight=False)
    out.print(release.joinpath("table2.md").read_text(), markup=False, highlight=False)
    with cli_errors():
        passwords = demo_users(ws)
    out.print("\n[bold]demo users (demo only: passwords are new at every run)[/]")
    for name, password in passwords.items():
        out.print(f"demo user {name} ({DEMO_USERS[name]}): password {password}", highlight=False)
    out.print(f"log in at http://{host}:{port}/login; API docs at http://{host}:{port}/docs", highlight=False)
    out.file.flush()
    if not no_serve:
        serve(workspace=ws.root, host=host, port=port, workers=1)
