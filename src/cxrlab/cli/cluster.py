"""``cxrlab cluster local``: a Dask cluster on this machine, for trying ``--scheduler`` before a real one."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from cxrlab.cli.common import cli_errors, out

app = typer.Typer(help="Dask clusters for the batch commands' --scheduler option.", no_args_is_help=True)


@app.command("local")
def cluster_local(
    workers: Annotated[int, typer.Option("--workers", "-j", min=1, max=512,
                                         help="Worker processes (one thread each).")] = 2,
    port: Annotated[int, typer.Option(min=0, max=65535, help="Scheduler port (0: any free port).")] = 8786,
    dashboard_port: Annotated[int, typer.Option(min=0, max=65535, help="Dashboard port (0: any free port).")] = 8787,
) -> None:
    """Start a Dask LocalCluster on 127.0.0.1 (needs the \\[dask] extra), print its address and dashboard URL, and
    run until Ctrl-C. Give the address to a batch command: --scheduler tcp://127.0.0.1:8786."""
    from cxrlab.runtime.cluster import start_local_cluster

    with cli_errors():
        cluster = start_local_cluster(workers, port=port, dashboard_port=dashboard_port)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        out.print(f"scheduler: {cluster.scheduler_address}", highlight=False)
        out.print(f"dashboard: {cluster.dashboard_link}", highlight=False)
        out.print(f"{workers} worker(s); use --scheduler {cluster.scheduler_address} or "
                  f"CXRLAB_SCHEDULER={cluster.scheduler_address}; Ctrl-C stops", highlight=False)
        stop.wait()
    finally:
        cluster.close()
    out.print("cluster stopped")
