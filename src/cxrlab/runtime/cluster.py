"""Batch work on a Dask cluster: :class:`DaskExecutor`, the workspace check, and a local cluster to try it.

:class:`DaskExecutor` keeps the contract of :meth:`cxrlab.runtime.Executor.map` (results in input order, bounded
in-flight work, items in chunks, the function and its constant arguments sent to each worker once) but runs the
chunks as tasks of a Dask distributed scheduler (``dask scheduler`` + ``dask worker`` on any number of hosts). The
caller stays the only catalog writer: results stream back to the driver process, which records them.

Dask itself does the distribution: the function and its arguments are scattered to every worker once
(``Client.scatter(..., broadcast=True)``) and each chunk task refers to them by key; a worker lost mid-batch has
its tasks rerun by the scheduler on the others. Stages write their files to a temporary name and rename them
(:mod:`cxrlab.runtime.files`), so a task run twice never leaves a half file, and the driver records each item once,
in input order.

Needs the ``[dask]`` extra (``pip install 'cxrlab[dask]'``); every worker needs cxrlab installed (the same
version) and the workspace (and the input folders) mounted at the same path as the driver.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager, suppress
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cxrlab.errors import CxrlabError

if TYPE_CHECKING:  # pragma: no cover
    from distributed import Client, LocalCluster

__all__ = [
    "IN_FLIGHT_PER_THREAD",
    "MIN_CHUNK",
    "MIN_IN_FLIGHT",
    "ClusterError",
    "DaskExecutor",
    "SchedulerUnavailableError",
    "dask_available",
    "start_local_cluster",
]

T = TypeVar("T")
R = TypeVar("R")

#: Fewest items per Dask task. A task costs the scheduler and the network about a millisecond, which is a
#: large share of a small file's few milliseconds; 8 items per task keep that under ~5 % (bench/scale.py) while
#: a lost worker costs at most a few chunks to rerun.
MIN_CHUNK = 8

#: Chunks in flight per worker thread, and at least :data:`MIN_IN_FLIGHT` in all: a task's round trip through the
#: scheduler takes 1-2 ms on an idle machine but tens of ms on a loaded one (bench/scale.py), and the window must
#: cover it so workers never wait for the driver.
IN_FLIGHT_PER_THREAD = 4
MIN_IN_FLIGHT = 16

#: Seconds to wait for the scheduler to answer, and then for at least one worker.
CONNECT_TIMEOUT = 10.0

#: The loggers Dask writes connection failures to; quiet while connecting, so a missing scheduler is one line.
_DASK_LOGGERS = ("distributed", "distributed.client", "distributed.comm", "distributed.core", "tornado")


class ClusterError(CxrlabError):
    """The cluster cannot run the batch (no worker, a worker that cannot see the workspace, Dask missing)."""

    default_message = "the Dask cluster cannot run this batch"


class SchedulerUnavailableError(ClusterError):
    """No Dask scheduler answers at the address given (exit code 2)."""

    default_message = "no Dask scheduler answers"
    exit_code = 2


def dask_available() -> bool:
    """True when ``distributed`` imports (the ``[dask]`` extra is installed)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        return False
    return True


def _require_dask() -> None:
    if not dask_available():
        raise ClusterError("running on a Dask cluster needs the dask extra: pip install 'cxrlab[dask]'")


@contextmanager
def _quiet_dask() -> Iterator[None]:
    """Silence Dask's own log lines (connection retries, tracebacks) for the duration."""
    saved = [(lg, lg.level) for lg in map(logging.getLogger, _DASK_LOGGERS)]
    for lg, _ in saved:
        lg.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def _run_chunk(task: tuple[Callable[..., Any], tuple[Any, ...]], chunk: list[Any]) -> list[Any]:
    """Worker: apply the scattered ``(fn, args)`` to every item of *chunk*."""
    fn, args = task
    return [fn(item, *args) for item in chunk]


def _probe_paths(checks: list[tuple[str, str | None]]) -> list[str]:
    """Worker: the paths of *checks* this worker cannot see. A check is ``(folder, token)``: with a token, the
    folder must hold ``.cxrlab-cluster-<token>`` (written by the driver: the same folder, not a namesake)."""
    missing = []
    for folder, token in checks:
        ok = Path(folder).is_dir() and (token is None or Path(folder, f".cxrlab-cluster-{token}").is_file())
        if not ok:
            missing.append(folder)
    return missing


def _worker_host() -> str:
    return socket.gethostname()


class DaskExecutor:
    """Run a function over many items on a Dask distributed cluster, with :meth:`Executor.map`'s contract.

    The connection is opened by :meth:`connect` (or the first :meth:`map`) and closed by :meth:`close`; use the
    executor as a context manager. The scheduler's workers should run one thread each (``dask worker
    --nthreads 1 --nworkers <cores>``): the per-file work is Python and holds the GIL.

    Parameters
    ----------
    address : str
        The scheduler, e.g. ``tcp://10.0.0.1:8786``.
    min_chunk : int
        Fewest items per task (:data:`MIN_CHUNK`); a stage's own larger ``chunksize`` wins.
    timeout : float
        Seconds to wait for the scheduler, then for a first worker.

    Raises
    ------
    SchedulerUnavailableError
        Nothing answers at *address* (or it is not a scheduler address).
    ClusterError
        The ``[dask]`` extra is missing, or the scheduler has no worker after *timeout*.
    """

    def __init__(self, address: str, *, min_chunk: int = MIN_CHUNK, timeout: float = CONNECT_TIMEOUT) -> None:
        if min_chunk < 1:
            raise ValueError(f"min_chunk must be >= 1, got {min_chunk}")
        self.address = address
        self.min_chunk = min_chunk
        self.timeout = timeout
        self._client: Client | None = None
        #: Worker threads of the cluster when connected (the in-flight bound is twice this, in chunks).
        self.workers = 0

    # -- connection ---------------------------------------------------------------------------------------------

    def connect(self) -> Client:
        """Open the client (once) and wait for a first worker; return it."""
        if self._client is not None:
            return self._client
        _require_dask()
        from distributed import Client

        _probe_tcp(self.address, self.timeout)
        with _quiet_dask():
            try:
                client = Client(self.address, timeout=self.timeout, set_as_default=False)
            except (OSError, TimeoutError, ValueError) as exc:
                raise SchedulerUnavailableError(
                    f"no Dask scheduler answers at {self.address} ({_reason(exc)})"
                ) from None
        try:
            client.wait_for_workers(1, timeout=self.timeout)
        except (OSError, TimeoutError) as exc:
            client.close()
            raise ClusterError(f"the Dask scheduler at {self.address} has no worker ({_reason(exc)})") from None
        self._client = client
        self.workers = sum(client.nthreads().values())
        return client

    def close(self) -> None:
        """Close the client (the cluster itself keeps running)."""
        if self._client is not None:
            with _quiet_dask(), suppress(Exception):
                self._client.close()
            self._client = None

    def __enter__(self) -> DaskExecutor:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        """What the summary table says about where the work ran."""
        n = self.workers
        return f"Dask {self.address} ({n} worker thread{'s' if n != 1 else ''})"

    # -- the workspace check ------------------------------------------------------------------------------------

    def check_paths(self, paths: Sequence[Path | str]) -> None:
        """Make sure every worker sees every folder of *paths* at the same path as this process.

        A folder this process can write to is proved the same folder (not a namesake on the worker's disk) by a
        marker file written here and looked for there; a read-only one (an input folder) must exist; for a path
        not made yet (an output folder), its nearest existing parent is checked. Run before a batch, so a worker
        that cannot see the workspace fails the run at once instead of every file.

        Raises
        ------
        ClusterError
            Naming the first path and the workers (address and host) that cannot see it.
        """
        client = self.connect()
        checks: list[tuple[str, str | None]] = []
        markers: list[Path] = []
        for p in paths:
            folder = Path(p).resolve()
            while not folder.is_dir() and folder != folder.parent:
                folder = folder.parent
            token: str | None = None
            if os.access(folder, os.W_OK):
                token = uuid.uuid4().hex
                marker = folder / f".cxrlab-cluster-{token}"
                marker.write_bytes(b"")
                markers.append(marker)
            checks.append((str(folder), token))
        try:
            with _quiet_dask():
                missing: dict[str, list[str]] = client.run(_probe_paths, checks)
                hosts: dict[str, str] = client.run(_worker_host)
        finally:
            for marker in markers:
                marker.unlink(missing_ok=True)
        for folder, _ in checks:
            blind = sorted(w for w, m in missing.items() if folder in m)
            if blind:
                who = ", ".join(f"{w} (host {hosts.get(w, '?')})" for w in blind)
                raise ClusterError(f"{folder}: not visible to Dask worker {who}; mount the shared folder at the "
                                   f"same path on every worker host")

    # -- map ------------------------------------------------------------------------------------------------------

    def map(
        self, fn: Callable[..., R], items: Iterable[T], *args: Any, chunksize: int = 1
    ) -> Iterator[tuple[T, R]]:
        """Yield ``(item, fn(item, *args))`` in the order of *items*, running chunks on the cluster.

        *fn* and *args* are scattered to every worker once (``broadcast=True``); each task carries a chunk of at
        least :attr:`min_chunk` items and refers to them by key. At most ``4 * workers`` chunks (and at least 16) are
        in flight.
        A worker lost mid-batch has its tasks rerun elsewhere by the scheduler; *fn* must then be safe to run twice
        on an item (every stage writes to a temporary name and renames). As with :class:`Executor`, *fn* catches
        its own per-item errors; one escaping it stops the batch.
        """
        if chunksize < 1:
            raise ValueError(f"chunksize must be >= 1, got {chunksize}")
        size = max(chunksize, self.min_chunk)
        client = self.connect()
        name = getattr(fn, "__name__", "task").strip("_") or "task"
        run = uuid.uuid4().hex[:8]
        [task] = client.scatter([(fn, args)], broadcast=True, hash=False)
        window = max(IN_FLIGHT_PER_THREAD * self.workers, MIN_IN_FLIGHT)
        source = iter(items)
        pending: deque[tuple[list[T], Any]] = deque()
        n = 0
        try:
            while True:
                # Top the window up with one call, then collect the head and every finished future behind it
                # with one more: each call is a hand-off to the client's event loop thread, which costs a
                # millisecond or more, far more than bookkeeping one chunk.
                chunks = [c for c in (list(islice(source, size)) for _ in range(window - len(pending))) if c]
                if chunks:
                    keys = [f"cxrlab-{name}-{run}-{n + i}" for i in range(len(chunks))]
                    n += len(chunks)
                    futures = client.map(_run_chunk, [task] * len(chunks), chunks, key=keys, pure=False)
                    pending.extend(zip(chunks, futures, strict=True))
                if not pending:
                    return
                ready = [pending.popleft()]
                while pending and pending[0][1].done():
                    ready.append(pending.popleft())
                results = client.gather([fut for _chunk, fut in ready])
                for (chunk, fut), result in zip(ready, results, strict=True):
                    fut.release()
                    yield from zip(chunk, result, strict=True)
        finally:
            for _chunk, fut in pending:
                fut.cancel()
            pending.clear()
            task.release()


def _probe_tcp(address: str, timeout: float) -> None:
    """Fail at once when nothing listens at a ``tcp://host:port`` address (Dask's client would retry until its
    timeout); other schemes (``tls://``, ``inproc://``) are left to Dask."""
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme != "tcp":
        return
    try:
        host, port = parts.hostname, parts.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise SchedulerUnavailableError(f"{address}: not a scheduler address (tcp://host:port)")
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise SchedulerUnavailableError(f"no Dask scheduler answers at {address} ({_reason(exc)})") from None


def _reason(exc: BaseException) -> str:
    """A short reason for a connection failure (Dask's messages repeat the address and a long traceback)."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if "Timed out" in text or isinstance(exc, TimeoutError):
        return "timed out"
    if "Connection refused" in text or isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return text[:200]


def start_local_cluster(workers: int, *, host: str = "127.0.0.1", port: int = 8786,
                        dashboard_port: int = 8787) -> LocalCluster:
    """Start a :class:`distributed.LocalCluster` of *workers* single-thread worker processes on *host*.

    For trying the cluster path on one machine (``cxrlab cluster local``); the caller closes it.
    """
    _require_dask()
    from distributed import LocalCluster

    try:
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host=host,
                            scheduler_port=port, dashboard_address=f"{host}:{dashboard_port}")
    except OSError as exc:
        raise ClusterError(f"cannot start a local Dask cluster on {host}:{port} ({_reason(exc)})") from None
