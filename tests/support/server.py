"""The one way the tests (and ``bench/``) start a server: ``cxrlab serve`` (or ``cxrlab demo``) in its own process
group on a free port of 127.0.0.1, ready once ``/health`` answers 200, stopped with its whole group on exit."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from cxrlab.catalog.workspace import Workspace

__all__ = ["Server", "free_port", "start_server"]


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now (the kernel's choice for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A running server: its base URL, its process (the leader of its own process group) and its output file."""

    url: str
    proc: subprocess.Popen
    log: Path

    def output(self) -> str:
        """Everything the process wrote so far (stdout and stderr)."""
        return self.log.read_text(errors="replace")

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> None:
        """Send *sig* to the whole process group (uvicorn workers included) and wait for the leader."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
        self.proc.wait(timeout=30)


@contextlib.contextmanager
def start_server(
    workspace: Workspace | Path | str, *options: str, command: str = "serve", timeout: float = 60.0,
    log: Path | None = None,
) -> Iterator[Server]:
    """Run ``cxrlab COMMAND -w WORKSPACE --port PORT *OPTIONS`` until the block ends.

    Parameters
    ----------
    workspace : Workspace or path
        The workspace to serve (for ``demo``: the folder the demo builds).
    *options : str
        More command-line options, e.g. ``"--workers", "2"``.
    command : str
        ``serve`` or ``demo`` (which builds its workspace first, hence a longer *timeout*).
    timeout : float
        Seconds to wait for ``/health``; RuntimeError with the process output when it exits or the time runs out.
    log : Path, optional
        Where stdout and stderr go (a temporary file by default, deleted on exit). A file, not a pipe: a pipe
        nobody reads blocks a talkative server.

    Yields
    ------
    Server
        Stopped with SIGTERM to its process group on exit (unless the test already stopped or killed it).
    """
    root = workspace.root if isinstance(workspace, Workspace) else Path(workspace)
    port = free_port()
    with contextlib.ExitStack() as stack:
        if log is None:
            log = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cxrlab-server-"))) / "server.log"
        out = stack.enter_context(log.open("w"))
        proc = subprocess.Popen(
            [sys.executable, "-m", "cxrlab.cli.main", command, "-w", str(root), "--port", str(port), *options],
            stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        server = Server(f"http://127.0.0.1:{port}", proc, log)
        try:
            _wait_healthy(server, timeout)
            yield server
        finally:
            server.stop()


def _wait_healthy(server: Server, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        if server.proc.poll() is not None:
            raise RuntimeError(f"the server exited with code {server.proc.returncode}:\n{server.output()[-4000:]}")
        try:
            if httpx.get(f"{server.url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"the server did not answer /health within {timeout:.0f} s:\n{server.output()[-4000:]}")
        time.sleep(0.2)
