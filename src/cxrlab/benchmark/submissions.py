"""Submissions to a benchmark: validated at once, counted against the daily limit per user and UTC day, queued
for scoring (the rules are in :mod:`cxrlab.benchmark`)."""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cxrlab.annotate.writes import lock_row
from cxrlab.benchmark.benchmarks import (
    _now,
    clean_filename,
    image_parts,
    named_upload,
    read_upload,
    stored_sizes,
)
from cxrlab.benchmark.errors import DailyLimitError, InvalidUploadError
from cxrlab.catalog.db import transaction
from cxrlab.catalog.models import (
    Benchmark,
    BenchmarkState,
    Submission,
    SubmissionState,
    User,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import ConflictError, NotFoundError
from cxrlab.evaluate import (
    EvaluationError,
    Problem,
    Severity,
    get_class_list,
    validate_submission,
)
from cxrlab.runtime.files import atomic_write_bytes

__all__ = [
    "get_submission",
    "list_submissions",
    "submissions_today",
    "submit",
]

log = logging.getLogger(__name__)

#: Validator messages kept per submission (the rest are counted in one last line).
MAX_MESSAGES = 50
#: Submissions that count against the daily limit (``invalid`` ones do not).
COUNTED = (SubmissionState.QUEUED, SubmissionState.SCORING, SubmissionState.SCORED, SubmissionState.FAILED)


def _day_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def submissions_today(session: Session, *, benchmark: Benchmark, user: User, now: datetime | None = None) -> int:
    """Submissions of *user* to *benchmark* that count against the daily limit since 00:00 UTC."""
    start = _day_start(now or _now())
    return session.scalar(
        select(func.count(Submission.id)).where(
            Submission.benchmark_id == benchmark.id, Submission.user_id == user.id,
            Submission.created_at >= start, Submission.state.in_(COUNTED),
        )
    ) or 0


def _check_limit(session: Session, benchmark: Benchmark, user: User, now: datetime) -> None:
    used = submissions_today(session, benchmark=benchmark, user=user, now=now)
    if used >= benchmark.daily_limit:
        wait = int((_day_start(now) + timedelta(days=1) - now).total_seconds()) + 1
        raise DailyLimitError(
            f"daily limit reached: {used} of {benchmark.daily_limit} submission(s) to {benchmark.name!r} today "
            f"(UTC); the next one is accepted after 00:00 UTC, in {wait // 3600} h {wait % 3600 // 60} min",
            retry_after=wait,
        )


def _messages(problems: Sequence[Problem], name: str) -> list[str]:
    """Errors first, then warnings, each ``name:line: severity: message``; at most :data:`MAX_MESSAGES`."""
    ordered = sorted(problems, key=lambda p: p.severity is not Severity.ERROR)
    lines = [p.format(name) for p in ordered]
    if len(lines) > MAX_MESSAGES:
        lines = [*lines[:MAX_MESSAGES], f"... and {len(lines) - MAX_MESSAGES} more problem(s)"]
    return lines


def _require_open(benchmark: Benchmark) -> None:
    if benchmark.state is not BenchmarkState.OPEN:
        raise ConflictError(f"benchmark {benchmark.name!r} is closed; it takes no more submissions")
    if not benchmark.gt_path:
        raise ConflictError(f"benchmark {benchmark.name!r} has no test labels yet; it takes no submissions")


def submit(
    session: Session,
    workspace: Workspace,
    *,
    benchmark: Benchmark,
    user: User,
    data: bytes,
    filename: str | None = None,
    now: datetime | None = None,
) -> Submission:
    """Validate a submission and queue it for scoring.

    Parameters
    ----------
    data : bytes
        ``image_id,PredictionString`` as CSV or gzip (:data:`MAX_UPLOAD_BYTES` at most).
    filename : str, optional
        The name the user gave the file; messages use it.

    Returns
    -------
    Submission
        ``queued``, with the validator's warnings as ``messages``.

    Raises
    ------
    ConflictError
        The benchmark is closed or has no labels yet.
    DailyLimitError
        The user's daily limit for this benchmark is reached.
    InvalidUploadError
        The validator found errors: the submission is recorded as ``invalid`` with every message (its
        ``submission_id`` is on the exception) and does not count against the daily limit.
    UploadTooLargeError
        The upload is too large.
    """
    now = now or _now()
    _require_open(benchmark)
    _check_limit(session, benchmark, user, now)  # early answer; checked again under the lock below
    name = clean_filename(filename, "submission.csv")
    sha = hashlib.sha256(data).hexdigest()
    suffix = ".csv.gz" if data[:2] == b"\x1f\x8b" else ".csv"
    try:
        text = read_upload(data, what="submission", name=name)
        gt_ids = [i for ids in image_parts(session, benchmark).values() for i in ids]
        problems = validate_submission(named_upload(text, name), gt_image_ids=gt_ids,
                                       classes=get_class_list(benchmark.classes),
                                       meta=stored_sizes(workspace, benchmark))
        messages = _messages(problems, name)
        errors = sum(p.severity is Severity.ERROR for p in problems)
    except InvalidUploadError as exc:
        messages, errors = [f"{name}: error: {p}" for p in exc.problems], 1
    except EvaluationError as exc:  # not a readable CSV at all
        messages, errors = [f"{exc}"], 1
    if errors:
        with transaction(session):
            sub = Submission(benchmark_id=benchmark.id, user_id=user.id, filename=name, path=None, sha256=sha,
                             size=len(data), state=SubmissionState.INVALID, messages=messages, created_at=now)
            session.add(sub)
        raise InvalidUploadError(f"{name}: {errors} error(s); the submission was not accepted",
                                 problems=messages, submission_id=sub.id)
    rel = f"benchmarks/{benchmark.id}/submissions/{uuid.uuid4().hex}{suffix}"
    atomic_write_bytes(workspace.path(rel), data, mode=0o600)
    try:
        with transaction(session):
            lock_row(session, User, user.id)  # one user's concurrent uploads count one after the other
            _check_limit(session, benchmark, user, now)
            sub = Submission(benchmark_id=benchmark.id, user_id=user.id, filename=name, path=rel, sha256=sha,
                             size=len(data), state=SubmissionState.QUEUED, messages=messages, created_at=now)
            session.add(sub)
    except BaseException:
        workspace.path(rel).unlink(missing_ok=True)
        raise
    return sub


def list_submissions(session: Session, *, benchmark: Benchmark, user: User, limit: int = 200) -> list[Submission]:
    """The submissions of *user* to *benchmark*, newest first (a user never sees another user's)."""
    return list(session.scalars(
        select(Submission).where(Submission.benchmark_id == benchmark.id, Submission.user_id == user.id)
        .order_by(Submission.id.desc()).limit(limit)
    ))


def get_submission(session: Session, *, benchmark: Benchmark, user: User, submission_id: int) -> Submission:
    """One submission of *user* to *benchmark*; another user's (or an unknown one) is ``NotFoundError``."""
    sub = session.get(Submission, submission_id)
    if sub is None or sub.benchmark_id != benchmark.id or sub.user_id != user.id:
        raise NotFoundError(f"submission {submission_id} not found")
    return sub
