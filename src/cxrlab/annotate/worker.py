"""The scoring worker of the web app: a thread that scores leaderboard submissions outside the requests.

``create_app`` builds one :class:`ScoringWorker` per server process and its lifespan starts and stops it.
Uploads call :meth:`ScoringWorker.notify`; the thread wakes, claims ``queued`` submissions from the catalog
(:func:`~cxrlab.annotate.services.leaderboard.claim_next`, one conditional ``UPDATE``, so the workers of
``cxrlab serve --workers N`` never score one submission twice) and scores them.

Work queued through another process (an upload answered by another server process of ``--workers N``, the CLI's
label upload) cannot call :meth:`~ScoringWorker.notify` here, so every ``check_seconds`` (1 s) the thread also
looks at the queue itself: one ``SELECT id ... WHERE state = 'queued' ORDER BY id LIMIT 1`` on an idle queue,
cheap on SQLite and PostgreSQL alike, and no extra service (a PostgreSQL ``LISTEN``/``NOTIFY`` would answer a
little sooner on one backend only). Every ``poll_seconds`` it also takes back the claims of dead workers
(:func:`~cxrlab.annotate.services.leaderboard.requeue_stale`): a submission left in ``scoring`` by a killed
server is scored again after the restart.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from cxrlab.annotate.services import leaderboard
from cxrlab.catalog.workspace import Workspace

__all__ = ["ScoringWorker"]

log = logging.getLogger(__name__)


class ScoringWorker:
    """Background scoring for one server process.

    Parameters
    ----------
    workspace : Workspace
    poll_seconds : float
        Time between two looks for the claims of dead workers.
    check_seconds : float
        Longest sleep between two looks at the queue when nobody calls :meth:`notify` (what another process
        queued waits at most this long).
    """

    def __init__(self, workspace: Workspace, *, poll_seconds: float = 30.0, check_seconds: float = 1.0) -> None:
        self.workspace = workspace
        self.poll_seconds = poll_seconds
        self.check_seconds = check_seconds
        self.name = leaderboard.worker_name()
        self._wake: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread (a first pass re-queues dead claims and scores what is waiting)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cxrlab-scoring", daemon=True)
            self._thread.start()

    def notify(self) -> None:
        """Wake the thread: a submission was queued."""
        self._wake.put(None)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the submission being scored (if any) and wait for the thread."""
        if self._thread is not None:
            self._stop.set()
            self._wake.put(None)
            self._thread.join(timeout)
            self._thread = None

    def run_once(self) -> int:
        """Re-queue dead claims, then score every queued submission; returns how many were scored."""
        with self.workspace.sessions() as session:
            leaderboard.requeue_stale(session)
        return self.score_queued()

    def score_queued(self) -> int:
        """Score every queued submission (nothing but one cheap query when the queue is empty)."""
        with self.workspace.sessions() as session:
            return leaderboard.score_pending(session, self.workspace, worker=self.name, stop=self._stop.is_set)

    def _run(self) -> None:
        next_full = 0.0
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_full:
                    next_full = time.monotonic() + self.poll_seconds
                    self.run_once()
                else:
                    self.score_queued()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the thread; retried on the next wake
                log.exception("scoring worker pass failed")
            try:
                self._wake.get(timeout=self.check_seconds)
                while True:  # several uploads may have woken us: one pass serves them all
                    self._wake.get_nowait()
            except queue.Empty:
                pass
