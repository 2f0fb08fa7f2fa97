"""The scoring queue and its worker: claims, leases, scores outside the requests.

``create_app`` builds one :class:`ScoringWorker` per server process and its lifespan starts and stops it.
Uploads call :meth:`ScoringWorker.notify`; the thread wakes, claims ``queued`` submissions from the catalog
(:func:`claim_next`, one conditional ``UPDATE``, so the workers of
``cxrlab serve --workers N`` never score one submission twice) and scores them.

Work queued through another process (an upload answered by another server process of ``--workers N``, the CLI's
label upload) cannot call :meth:`~ScoringWorker.notify` here, so every ``check_seconds`` (1 s) the thread also
looks at the queue itself: one ``SELECT id ... WHERE state = 'queued' ORDER BY id LIMIT 1`` on an idle queue,
cheap on SQLite and PostgreSQL alike, and no extra service (a PostgreSQL ``LISTEN``/``NOTIFY`` would answer a
little sooner on one backend only). Every ``poll_seconds`` it also takes back the claims of dead workers
(:func:`requeue_stale`): a submission left in ``scoring`` by a killed
server is scored again after the restart.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cxrlab.benchmark.benchmarks import PRIVATE, PUBLIC, _now, image_parts
from cxrlab.catalog.db import transaction
from cxrlab.catalog.models import (
    Benchmark,
    Submission,
    SubmissionState,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.evaluate import (
    GroundTruth,
    get_class_list,
    parse_predictions,
    read_annotations,
    read_submission,
    score_submission,
)

__all__ = [
    "LEASE",
    "ScoringWorker",
    "claim_next",
    "requeue_stale",
    "score_claimed",
    "score_pending",
    "worker_name",
]

log = logging.getLogger(__name__)

#: A ``scoring`` claim older than this is taken back from its worker (one submission scores in about a second).
LEASE = timedelta(minutes=15)
FAILED_MESSAGE = "scoring failed on the server ({kind}); the administrators can find the details in its log"


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def worker_name() -> str:
    """``host:pid:tag``: who holds a claim (the tag tells two workers of one process apart)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _claim_is_dead(claimed_by: str | None) -> bool:
    """A claim of a process on this host that no longer runs (a killed server)."""
    host, _, rest = (claimed_by or "").partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's process
        return False
    return False


def requeue_stale(session: Session, *, now: datetime | None = None, lease: timedelta = LEASE) -> int:
    """Put back in the queue the ``scoring`` submissions a dead worker left behind.

    A claim is dead when its process on this host is gone (a killed server: found at once on restart), or
    when it is older than *lease* (a worker on another host that died). A live worker's claim is left alone,
    so several server processes (``cxrlab serve --workers N``) never score one submission twice.

    Returns
    -------
    int
        Submissions re-queued.
    """
    now = now or _now()
    rows = session.execute(
        select(Submission.id, Submission.claimed_by, Submission.claimed_at)
        .where(Submission.state == SubmissionState.SCORING)
    ).all()
    stale = [(sid, by) for sid, by, at in rows if at is None or at < now - lease or _claim_is_dead(by)]
    if not stale:
        session.rollback()  # end the read transaction
        return 0
    n = 0
    with transaction(session):
        for sid, by in stale:
            n += session.execute(
                update(Submission)
                .where(Submission.id == sid, Submission.state == SubmissionState.SCORING,
                       Submission.claimed_by.is_(None) if by is None else Submission.claimed_by == by)
                .values(state=SubmissionState.QUEUED, claimed_by=None, claimed_at=None)
                .execution_options(synchronize_session=False)
            ).rowcount
    if n:
        log.info("re-queued %d submission(s) left in scoring by a stopped worker", n)
    return n


def claim_next(session: Session, *, worker: str, now: datetime | None = None) -> int | None:
    """Claim the oldest ``queued`` submission for *worker*; its id, or None when the queue is empty.

    The claim is ``UPDATE ... SET state='scoring' WHERE id = :id AND state = 'queued'``: of two workers that
    picked the same row, exactly one updates it (PostgreSQL re-checks the condition after the first commits;
    SQLite has one writer), and the other moves on to the next row.
    """
    while True:
        sid = session.scalar(
            select(Submission.id).where(Submission.state == SubmissionState.QUEUED).order_by(Submission.id).limit(1)
        )
        if sid is None:
            session.rollback()
            return None
        with transaction(session):
            won = session.execute(
                update(Submission)
                .where(Submission.id == sid, Submission.state == SubmissionState.QUEUED)
                .values(state=SubmissionState.SCORING, claimed_by=worker, claimed_at=now or _now())
                .execution_options(synchronize_session=False)
            ).rowcount
        if won == 1:
            return sid


@lru_cache(maxsize=4)
def _ground_truth(path: str, sha256: str, classes: str) -> GroundTruth:
    """The parsed hidden labels, cached by content (the path changes with the SHA-256 on every upload)."""
    return read_annotations(path, classes=get_class_list(classes))


def _scores(
    truth: GroundTruth, submission: Path, *, metric: str, iou: float | None, parts: Mapping[str, Collection[str]]
) -> dict:
    frame, name = read_submission(submission)
    predictions = parse_predictions(frame, name=name)  # one parse for both parts
    values: dict = {"public_score": None, "private_score": None, "per_class": {}}
    for part in (PUBLIC, PRIVATE):
        if parts.get(part):
            result = score_submission(truth, predictions, metric=metric, iou=iou, image_ids=parts[part],
                                      classes=truth.classes)
            values[f"{part}_score"] = _finite(result.mAP)
            values["per_class"][part] = {k: _finite(v) for k, v in result.per_class.items()}
    return values


def score_claimed(session: Session, workspace: Workspace, *, submission_id: int, worker: str) -> SubmissionState | None:
    """Score a submission claimed by *worker* and store its public and private scores.

    Any error becomes ``failed`` with a message naming only the kind of error (the details go to the log).
    The result is stored only while the claim is still *worker*'s: when the labels were replaced meanwhile
    (the submission went back to the queue) the result is dropped.

    Returns
    -------
    SubmissionState or None
        ``scored`` or ``failed``; None when the claim was lost.
    """
    sub = session.get(Submission, submission_id, populate_existing=True)  # fresh rows, never the identity map's
    if sub is None:
        return None
    benchmark = session.get(Benchmark, sub.benchmark_id, populate_existing=True)
    parts = image_parts(session, benchmark)
    gt_path, gt_sha, classes = benchmark.gt_path, benchmark.gt_sha256, benchmark.classes
    metric, iou, path, messages = benchmark.metric, benchmark.iou, sub.path, list(sub.messages or [])
    session.rollback()  # no transaction stays open during the slow part
    try:
        if not gt_path or not path:
            raise CxrlabError("nothing to score: labels or file missing")
        truth = _ground_truth(str(workspace.path(gt_path)), gt_sha or "", classes)
        values = _scores(truth, workspace.path(path), metric=metric, iou=iou, parts=parts)
        state = SubmissionState.SCORED
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the submission, the server keeps going
        log.exception("scoring submission %d failed", submission_id)
        values = {"messages": [*messages, FAILED_MESSAGE.format(kind=type(exc).__name__)]}
        state = SubmissionState.FAILED
    with transaction(session):
        kept = session.execute(
            update(Submission)
            .where(Submission.id == submission_id, Submission.state == SubmissionState.SCORING,
                   Submission.claimed_by == worker)
            .values(state=state, scored_at=_now(), claimed_by=None, claimed_at=None, **values)
            .execution_options(synchronize_session=False)
        ).rowcount
    session.expire_all()
    return state if kept else None


def score_pending(
    session: Session, workspace: Workspace, *, worker: str, stop: Callable[[], bool] = lambda: False
) -> int:
    """Claim and score queued submissions until none is left (or *stop* says so); returns how many were scored."""
    done = 0
    while not stop():
        sid = claim_next(session, worker=worker)
        if sid is None:
            break
        if score_claimed(session, workspace, submission_id=sid, worker=worker) is not None:
            done += 1
    return done


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
        self.name = worker_name()
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
            requeue_stale(session)
        return self.score_queued()

    def score_queued(self) -> int:
        """Score every queued submission (nothing but one cheap query when the queue is empty)."""
        with self.workspace.sessions() as session:
            return score_pending(session, self.workspace, worker=self.name, stop=self._stop.is_set)

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
