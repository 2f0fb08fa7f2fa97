"""A real Dask cluster for tests and ``bench/scale.py``: ``dask scheduler`` and ``dask worker`` processes (the dask
CLI of the ``[dask]`` extra) on free ports of 127.0.0.1, each worker in its own process group so a test can kill
one with SIGKILL (its nanny included: the worker is gone for good, as when a host dies)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.server import free_port

__all__ = ["DaskCluster", "dask_cli", "start_dask_cluster"]

READY_TIMEOUT = 60.0
#: The repository root: on the workers' PYTHONPATH, so functions defined in test modules unpickle there.
ROOT = Path(__file__).resolve().parents[2]


def dask_cli() -> str | None:
    """The ``dask`` command beside this interpreter (or on PATH), or None without the ``[dask]`` extra."""
    beside = Path(sys.executable).parent / "dask"
    return str(beside) if beside.is_file() else shutil.which("dask")


@dataclass
class DaskCluster:
    """A running scheduler and its workers (each ``Popen`` leads its own process group)."""

    address: str
    scheduler: subprocess.Popen
    folder: Path
    workers: list[subprocess.Popen] = field(default_factory=list)

    def add_worker(self) -> subprocess.Popen:
        """Start one more single-thread worker and wait until the scheduler counts it."""
        from distributed import Client

        n = len(self.workers)
        log = open(self.folder / f"worker{n}.log", "wb")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(
            [dask_cli(), "worker", self.address, "--nthreads", "1", "--nworkers", "1", "--host", "127.0.0.1",
             "--no-dashboard", "--local-directory", str(self.folder / f"w{n}"), "--name", f"w{n}"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=_env(),
        )
        log.close()
        self.workers.append(proc)
        alive = sum(p.poll() is None for p in self.workers)
        with Client(self.address, timeout=READY_TIMEOUT, set_as_default=False) as client:
            client.wait_for_workers(alive, timeout=READY_TIMEOUT)
        return proc

    def worker_address(self, proc: subprocess.Popen) -> str:
        """The scheduler's address of the worker started as *proc* (by its ``--name``)."""
        from distributed import Client

        name = f"w{self.workers.index(proc)}"
        with Client(self.address, timeout=READY_TIMEOUT, set_as_default=False) as client:
            for addr, info in client.scheduler_info()["workers"].items():
                if info.get("name") == name:
                    return addr
        raise LookupError(name)

    def kill(self, proc: subprocess.Popen, sig: signal.Signals = signal.SIGKILL) -> None:
        """Send *sig* to *proc*'s whole process group (nanny and worker) and wait for it."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    def stop(self) -> None:
        """Stop every worker, then the scheduler."""
        for proc in [*self.workers, self.scheduler]:
            if proc.poll() is None:
                self.kill(proc, signal.SIGTERM)


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{path}" if path else str(ROOT)}


def _wait_port(port: int, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dask scheduler exited ({proc.returncode}):\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise RuntimeError(f"dask scheduler not listening after {READY_TIMEOUT:.0f}s")


@contextlib.contextmanager
def start_dask_cluster(workers: int = 2) -> Iterator[DaskCluster]:
    """Run ``dask scheduler`` and *workers* single-thread ``dask worker`` processes until the block ends."""
    cli = dask_cli()
    if cli is None:
        raise RuntimeError("the dask command is missing: pip install 'cxrlab[dask]'")
    folder = Path(tempfile.mkdtemp(prefix="cxrlab-dask-"))
    port = free_port()
    log = folder / "scheduler.log"
    with open(log, "wb") as fh:
        scheduler = subprocess.Popen(
            [cli, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0",
             "--no-show"],
            stdout=fh, stderr=subprocess.STDOUT, start_new_session=True,
        )
    cluster = DaskCluster(f"tcp://127.0.0.1:{port}", scheduler, folder)
    try:
        _wait_port(port, scheduler, log)
        for _ in range(workers):
            cluster.add_worker()
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(folder, ignore_errors=True)
