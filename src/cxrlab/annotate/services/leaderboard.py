"""The leaderboard: benchmarks on hidden test labels, submissions, their background scoring and the rankings.

The seeds keep the test labels for "benchmarking machine learning algorithms" (VinDr-CXR data descriptor,
"Background & Summary"; its test set of 3,000 images was scored in the VinBigData challenge with the
``image_id,PredictionString`` submissions of DESIGN.md, "Formats"). The rules, all enforced here:

- An admin creates a benchmark (metric ``kaggle|voc|coco``, IoU, class list, seed, public fraction, daily
  limit) and uploads its hidden labels in the ``annotations_test.csv`` layout. The file is kept under the
  workspace at ``benchmarks/<id>/gt-<sha256>.csv`` (mode 0600) and never served; its SHA-256 is in the row.
- The test images are split once, by the seed, into a public and a private part (:func:`split_parts`) and the
  split is stored; replacing the labels keeps the part of every image that stays and re-scores every submission.
- Any logged-in user (admin, annotator or reviewer; a researcher gets an annotator account, which shows no
  image without a task) uploads a submission. It is validated at once with
  :func:`cxrlab.evaluate.validate_submission`; a submission with errors is recorded as ``invalid`` with the
  validator's messages (its file is not kept) and refused, and does not count against the daily limit.
- The admin may also give the test images' sizes (``image_id,width,height``, :func:`upload_sizes`; the
  VinDr-CXR test labels have none, the DICOM headers' Columns and Rows do). They are kept beside the labels at
  ``benchmarks/<id>/image-sizes.csv`` (no catalog column: the file's presence is the setting) and, while they
  are there, the validator refuses boxes that leave the image by more than 1 px.
- At most ``daily_limit`` counted submissions (queued, scoring, scored or failed) per user and benchmark per
  UTC day.
- Scoring never runs in a request: a background worker (:mod:`cxrlab.annotate.worker`) claims ``queued``
  submissions with a conditional ``UPDATE`` (:func:`claim_next`), scores the public and private parts from one
  parse with :func:`cxrlab.evaluate.score_submission`, and stores both scores.
- Private scores and the private ranking leave the server only when the benchmark is closed
  (:func:`reveal_private`); the output schemas drop them before.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import socket
import uuid
from collections import Counter
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from cxrlab.annotate.errors import (
    ConflictError,
    DailyLimitError,
    InvalidUploadError,
    NotFoundError,
    UploadTooLargeError,
)
from cxrlab.annotate.services.unit import lock_row, transaction
from cxrlab.catalog.models import (
    Benchmark,
    BenchmarkImage,
    BenchmarkState,
    Submission,
    SubmissionState,
    User,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError
from cxrlab.evaluate import (
    CHALLENGE,
    EvaluationError,
    GroundTruth,
    Metric,
    Problem,
    Severity,
    get_class_list,
    parse_predictions,
    read_annotations,
    read_meta,
    read_submission,
    score_submission,
    validate_submission,
)
from cxrlab.evaluate.detection import check_metric
from cxrlab.runtime.files import atomic_write_bytes
from cxrlab.runtime.unpack import CorruptStreamError, UnpackedTooLargeError, format_size, unpack_bytes

__all__ = [
    "MAX_CSV_BYTES",
    "MAX_UPLOAD_BYTES",
    "Board",
    "BoardEntry",
    "LabelsReport",
    "SizesReport",
    "claim_next",
    "create_benchmark",
    "get_benchmark",
    "get_benchmark_by_name",
    "get_submission",
    "image_parts",
    "leaderboard",
    "list_benchmarks",
    "list_submissions",
    "part_counts",
    "read_upload",
    "requeue_stale",
    "remove_sizes",
    "reveal_private",
    "score_claimed",
    "score_pending",
    "set_state",
    "split_parts",
    "submissions_today",
    "submit",
    "upload_labels",
    "upload_sizes",
    "worker_name",
]

log = logging.getLogger(__name__)

#: Largest upload accepted, as sent (CSV or gzip).
MAX_UPLOAD_BYTES = 50 * 2**20
#: Largest CSV accepted once decompressed (a gzip upload may not unpack to more).
MAX_CSV_BYTES = 256 * 2**20
#: Validator messages kept per submission (the rest are counted in one last line).
MAX_MESSAGES = 50
#: A ``scoring`` claim older than this is taken back from its worker (one submission scores in about a second).
LEASE = timedelta(minutes=15)
PUBLIC, PRIVATE = "public", "private"
#: Submissions that count against the daily limit (``invalid`` ones do not).
COUNTED = (SubmissionState.QUEUED, SubmissionState.SCORING, SubmissionState.SCORED, SubmissionState.FAILED)
FAILED_MESSAGE = "scoring failed on the server ({kind}); the administrators can find the details in its log"


def _now() -> datetime:
    return datetime.now(UTC)


def _finite(value: float | None) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


# --- benchmarks ------------------------------------------------------------------------------------------------


def create_benchmark(
    session: Session,
    *,
    name: str,
    metric: Metric | str = Metric.KAGGLE,
    iou: float | None = None,
    classes: str = CHALLENGE.name,
    seed: int | None = None,
    public_fraction: float = 0.5,
    daily_limit: int = 5,
    description: str | None = None,
    created_by: User | None = None,
) -> Benchmark:
    """Create an open benchmark (its hidden labels come with :func:`upload_labels`).

    Parameters
    ----------
    metric : Metric or str
        ``kaggle`` (the challenge's community mAP@0.4), ``voc`` or ``coco`` (see :mod:`cxrlab.evaluate`).
    iou : float, optional
        IoU threshold in (0, 1); the metric's default when None.
    classes : str
        Class list of the submissions' class ids (``vindr-cxr-challenge``, ``vindr-cxr``, ``vindr-pcxr``).
    seed : int, optional
        Seed of the public/private split; a random one when None. It is shown to admins only: with it and the
        released test image ids anyone could tell which images are private.
    public_fraction : float
        Share of the test images scored on the public leaderboard, in (0, 1).
    daily_limit : int
        Submissions a user may make to this benchmark per UTC day.

    Raises
    ------
    CxrlabError
        Name empty, too long or taken; unknown metric or class list; IoU, fraction or limit out of range.
    """
    name = name.strip()
    if not name or len(name) > 64:
        raise CxrlabError("benchmark name must have 1 to 64 characters")
    metric = check_metric(metric, iou)  # EvaluationError (a CxrlabError) says what is wrong
    get_class_list(classes)  # and names the known class lists
    if not 0.0 < public_fraction < 1.0:
        raise CxrlabError(f"public fraction must be between 0 and 1, got {public_fraction}")
    if daily_limit < 1:
        raise CxrlabError("daily limit must be at least 1")
    with transaction(session):
        if session.scalar(select(Benchmark.id).where(Benchmark.name == name)) is not None:
            raise CxrlabError(f"benchmark {name!r} exists already")
        benchmark = Benchmark(
            name=name, description=description or None, metric=metric.value, iou=iou, classes=classes,
            seed=secrets.randbelow(2**31) if seed is None else seed, public_fraction=public_fraction,
            daily_limit=daily_limit, state=BenchmarkState.OPEN, created_by=created_by.id if created_by else None,
        )
        session.add(benchmark)
    return benchmark


def get_benchmark(session: Session, benchmark_id: int) -> Benchmark:
    """Benchmark *benchmark_id*, else ``NotFoundError``."""
    benchmark = session.get(Benchmark, benchmark_id)
    if benchmark is None:
        raise NotFoundError(f"benchmark {benchmark_id} not found")
    return benchmark


def get_benchmark_by_name(session: Session, name: str) -> Benchmark:
    """Benchmark called *name* (for the CLI), else ``NotFoundError``."""
    benchmark = session.scalar(select(Benchmark).where(Benchmark.name == name))
    if benchmark is None:
        raise NotFoundError(f"benchmark {name!r} not found")
    return benchmark


def list_benchmarks(session: Session) -> list[Benchmark]:
    """Every benchmark, newest first (any logged-in user may see them)."""
    return list(session.scalars(select(Benchmark).order_by(Benchmark.id.desc())))


def set_state(session: Session, *, benchmark: Benchmark, state: BenchmarkState | str) -> Benchmark:
    """Close a benchmark (no more submissions; private scores and ranking shown to all) or reopen it."""
    state = BenchmarkState(state)
    with transaction(session):
        benchmark.state = state
        benchmark.closed_at = _now() if state is BenchmarkState.CLOSED else None
    return benchmark


def reveal_private(benchmark: Benchmark) -> bool:
    """Whether private scores may leave the server: only once the benchmark is closed."""
    return benchmark.state is BenchmarkState.CLOSED


# --- hidden labels and the public/private split ----------------------------------------------------------------


def split_parts(
    image_ids: Sequence[str], *, seed: int, fraction: float, existing: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Assign each test image to the ``public`` or ``private`` part.

    ``round(fraction * n)`` images are public (at least one in each part when there are two or more images).
    Images in *existing* keep their part, so replacing the labels (a corrected box, added images) never moves an
    image between the leaderboards; the new images are shuffled with ``numpy.random.default_rng(seed)`` in
    sorted order and fill the parts up to the target. The same ids, seed and fraction always give the same split.
    """
    ids = sorted(set(image_ids))
    n = len(ids)
    target = min(max(round(fraction * n), 1), n - 1) if n >= 2 else n
    kept = {i: p for i, p in (existing or {}).items() if i in set(ids) and p in (PUBLIC, PRIVATE)}
    new = [i for i in ids if i not in kept]
    order = np.random.default_rng(seed).permutation(len(new))
    n_public = min(max(target - sum(p == PUBLIC for p in kept.values()), 0), len(new))
    parts = dict(kept)
    for rank, k in enumerate(order):
        parts[new[k]] = PUBLIC if rank < n_public else PRIVATE
    return parts


def read_upload(data: bytes, *, what: str, name: str | None = None, max_bytes: int | None = None) -> bytes:
    """The CSV bytes of an upload: as sent, or unpacked when it starts with the gzip magic number (streamed
    through :func:`cxrlab.runtime.unpack.unpack_bytes`, which stops at *max_bytes*, default
    :data:`MAX_CSV_BYTES`).

    Raises
    ------
    UploadTooLargeError
        More than :data:`MAX_UPLOAD_BYTES` sent or *max_bytes* unpacked.
    InvalidUploadError
        Empty, or a broken gzip stream.
    """
    max_bytes = MAX_CSV_BYTES if max_bytes is None else max_bytes
    label = f"{name}: the {what}" if name else f"the {what}"
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadTooLargeError(f"{label} is larger than {format_size(MAX_UPLOAD_BYTES)}")
    if not data:
        raise InvalidUploadError(f"{label} is empty", problems=[f"{label} is empty"])
    if len(data) > max_bytes:
        raise UploadTooLargeError(f"{label} is larger than {format_size(max_bytes)}")
    try:
        text = unpack_bytes(data, path=name or what, limit=max_bytes)
    except UnpackedTooLargeError:
        raise UploadTooLargeError(f"{label} unpacks to more than {format_size(max_bytes)}") from None
    except CorruptStreamError:
        msg = f"{label} starts like a gzip file but cannot be unpacked"
        raise InvalidUploadError(msg, problems=[msg]) from None
    return text


def _named(data: bytes, name: str) -> io.BytesIO:
    """An in-memory file that :mod:`cxrlab.evaluate` names *name* in its messages (never a server path)."""
    buf = io.BytesIO(data)
    buf.name = name  # type: ignore[attr-defined]
    return buf


def _clean_filename(filename: str | None, default: str) -> str:
    name = Path((filename or "").replace("\\", "/")).name.strip()
    name = "".join(ch for ch in name if ch.isprintable())[:255]
    return name or default


@dataclass
class LabelsReport:
    """What :func:`upload_labels` did."""

    benchmark: Benchmark
    images: int
    public: int
    private: int
    boxes: int
    rescored: int
    notes: list[str] = field(default_factory=list)


def upload_labels(
    session: Session, workspace: Workspace, *, benchmark: Benchmark, data: bytes, filename: str | None = None
) -> LabelsReport:
    """Store (or replace) the hidden test labels of *benchmark* and split its images into public and private.

    Parameters
    ----------
    data : bytes
        ``annotations_test.csv`` (seeds' layout: ``image_id, class_name, x_min, y_min, x_max, y_max``; a
        "No finding" row has empty coordinates), as CSV or gzip.

    Raises
    ------
    ConflictError
        The benchmark is closed (reopen it first).
    InvalidUploadError
        The file cannot be read as ground truth (the message names the line; a box outside the image sizes
        given with :func:`upload_sizes`, or beyond 65,535 px, included), or holds fewer than 2 images.
    """
    if benchmark.state is BenchmarkState.CLOSED:
        raise ConflictError(f"benchmark {benchmark.name!r} is closed; reopen it before replacing its labels")
    name = _clean_filename(filename, "annotations_test.csv")
    text = read_upload(data, what="label file", name=name)
    try:
        truth = read_annotations(_named(text, name), classes=get_class_list(benchmark.classes),
                                 meta=_stored_sizes(workspace, benchmark))
    except EvaluationError as exc:
        raise InvalidUploadError(str(exc), problems=[str(exc)]) from None
    if len(truth.image_ids) < 2:
        msg = f"{name}: {len(truth.image_ids)} test image(s); a benchmark needs at least 2 (public and private)"
        raise InvalidUploadError(msg, problems=[msg])
    sha = hashlib.sha256(text).hexdigest()
    rel = f"benchmarks/{benchmark.id}/gt-{sha[:16]}.csv"
    atomic_write_bytes(workspace.path(rel), text, mode=0o600)
    old = benchmark.gt_path
    with transaction(session):
        lock_row(session, Benchmark, benchmark.id)
        existing = dict(session.execute(
            select(BenchmarkImage.image_id, BenchmarkImage.part).where(BenchmarkImage.benchmark_id == benchmark.id)
        ).all())
        parts = split_parts(truth.image_ids.tolist(), seed=benchmark.seed, fraction=benchmark.public_fraction,
                            existing=existing)
        session.execute(delete(BenchmarkImage).where(BenchmarkImage.benchmark_id == benchmark.id))
        session.execute(insert(BenchmarkImage), [{"benchmark_id": benchmark.id, "image_id": i, "part": p}
                                                 for i, p in parts.items()])
        benchmark.gt_path, benchmark.gt_sha256, benchmark.gt_uploaded_at = rel, sha, _now()
        # Scores against the old labels are stale: score everything again (a claim in progress is dropped).
        rescored = session.execute(
            update(Submission)
            .where(Submission.benchmark_id == benchmark.id,
                   Submission.state.in_((SubmissionState.SCORED, SubmissionState.FAILED, SubmissionState.SCORING)))
            .values(state=SubmissionState.QUEUED, public_score=None, private_score=None, per_class=None,
                    scored_at=None, claimed_by=None, claimed_at=None)
            .execution_options(synchronize_session=False)
        ).rowcount
    if old and old != rel:
        workspace.path(old).unlink(missing_ok=True)
    n_public = sum(p == PUBLIC for p in parts.values())
    notes = [f"{n} row(s) of class {c!r} are not scored by class list {benchmark.classes}"
             for c, n in sorted(truth.dropped.items())]
    return LabelsReport(benchmark, len(parts), n_public, len(parts) - n_public, len(truth.cls), rescored, notes)


def sizes_file(workspace: Workspace, benchmark: Benchmark) -> Path:
    """Where the image sizes of *benchmark* are kept (the file may not exist)."""
    return workspace.path(f"benchmarks/{benchmark.id}/image-sizes.csv")


@dataclass
class SizesReport:
    """What :func:`upload_sizes` did: sizes read, test images without one, sizes of images not in the test set."""

    images: int
    test_images_without_size: int
    not_test_images: int
    notes: list[str] = field(default_factory=list)


def upload_sizes(
    session: Session, workspace: Workspace, *, benchmark: Benchmark, data: bytes, filename: str | None = None
) -> SizesReport:
    """Store (or replace) the image sizes the validator checks submitted boxes against.

    Parameters
    ----------
    data : bytes
        ``image_id,width,height`` (or ``image_id,columns,rows``, DICOM's names), as CSV or gzip; read with
        :func:`cxrlab.evaluate.formats.read_meta`. Submissions validated from now on report a box beyond its
        image by more than :data:`cxrlab.evaluate.validate.TOLERANCE` px as an error; those already accepted are
        not validated again (scoring does not use sizes).

    Raises
    ------
    InvalidUploadError
        The file is not a size table (missing columns, a size that is not a positive number: the message names
        the line), or gives no size to any test image.
    """
    name = _clean_filename(filename, "image-sizes.csv")
    text = read_upload(data, what="size file", name=name)
    try:
        sizes = read_meta(_named(text, name))
    except EvaluationError as exc:
        raise InvalidUploadError(str(exc), problems=[str(exc)]) from None
    test_ids = {i for ids in image_parts(session, benchmark).values() for i in ids}
    session.rollback()  # end the read transaction
    given = set(sizes.index)
    without, extra = len(test_ids - given), len(given - test_ids)
    if test_ids and without == len(test_ids):
        msg = f"{name}: none of the {len(test_ids)} test images has a size here (image ids differ?)"
        raise InvalidUploadError(msg, problems=[msg])
    # written as read_meta read it (first row of a repeated id, canonical column names): the validator rereads it
    atomic_write_bytes(sizes_file(workspace, benchmark), sizes.rename_axis("image_id").to_csv().encode(), mode=0o600)
    notes = []
    if without:
        notes.append(f"{without} test image(s) have no size: their boxes are checked for negative coordinates only")
    if extra:
        notes.append(f"{extra} size(s) of images that are not test images are ignored")
    if not test_ids:
        notes.append("the benchmark has no test labels yet")
    return SizesReport(len(sizes), without, extra, notes)


def _stored_sizes(workspace: Workspace, benchmark: Benchmark) -> io.BytesIO | None:
    """The stored sizes as an in-memory file (messages never show a server path), or None without any."""
    try:
        return _named(sizes_file(workspace, benchmark).read_bytes(), "image-sizes.csv")
    except FileNotFoundError:
        return None


def remove_sizes(workspace: Workspace, *, benchmark: Benchmark) -> bool:
    """Forget the image sizes of *benchmark* (boxes are checked for negative coordinates only); whether there
    were any."""
    path = sizes_file(workspace, benchmark)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    return existed


def image_parts(session: Session, benchmark: Benchmark) -> dict[str, list[str]]:
    """The image ids of each part, ``{"public": [...], "private": [...]}`` (never sent to non-admins)."""
    parts: dict[str, list[str]] = {PUBLIC: [], PRIVATE: []}
    for image_id, part in session.execute(
        select(BenchmarkImage.image_id, BenchmarkImage.part).where(BenchmarkImage.benchmark_id == benchmark.id)
    ):
        parts.setdefault(part, []).append(image_id)
    return parts


def part_counts(session: Session, benchmark: Benchmark) -> dict[str, int]:
    """Images per part, ``{"public": n, "private": m}``."""
    counts = {PUBLIC: 0, PRIVATE: 0}
    counts.update(session.execute(
        select(BenchmarkImage.part, func.count()).where(BenchmarkImage.benchmark_id == benchmark.id)
        .group_by(BenchmarkImage.part)
    ).all())
    return counts


# --- submissions -----------------------------------------------------------------------------------------------


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
    name = _clean_filename(filename, "submission.csv")
    sha = hashlib.sha256(data).hexdigest()
    suffix = ".csv.gz" if data[:2] == b"\x1f\x8b" else ".csv"
    try:
        text = read_upload(data, what="submission", name=name)
        gt_ids = [i for ids in image_parts(session, benchmark).values() for i in ids]
        problems = validate_submission(_named(text, name), gt_image_ids=gt_ids,
                                       classes=get_class_list(benchmark.classes),
                                       meta=_stored_sizes(workspace, benchmark))
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


# --- the rankings ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BoardEntry:
    """One user's line on a leaderboard: the submission with the user's best public score."""

    rank: int
    username: str
    submission_id: int
    public_score: float
    private_score: float | None
    submitted_at: datetime
    entries: int


@dataclass
class Board:
    """The public ranking, and the private one once the benchmark is closed (None before)."""

    benchmark: Benchmark
    public: list[BoardEntry]
    private: list[BoardEntry] | None


def leaderboard(session: Session, *, benchmark: Benchmark) -> Board:
    """Rank users by their best public score; ties go to the earlier submission.

    Each user is represented by the submission with the best public score (the earliest among equals), as a
    participant picks a final submission without seeing private scores. Once the benchmark is closed the same
    submissions are ranked again by their private scores (ties again to the earlier one; a part without ground
    truth of any scored class has no score and goes last). Before that, private scores are None here.
    """
    rows = session.execute(
        select(Submission.id, Submission.public_score, Submission.private_score, Submission.created_at,
               User.username)
        .join(User, User.id == Submission.user_id)
        .where(Submission.benchmark_id == benchmark.id, Submission.state == SubmissionState.SCORED,
               Submission.public_score.is_not(None))
        .order_by(Submission.public_score.desc(), Submission.created_at, Submission.id)
    ).all()
    entries = Counter(r.username for r in rows)
    best: dict[str, tuple] = {}
    for r in rows:
        best.setdefault(r.username, r)
    reveal = reveal_private(benchmark)

    def line(rank: int, r: tuple) -> BoardEntry:
        return BoardEntry(rank, r.username, r.id, r.public_score, r.private_score if reveal else None,
                          r.created_at, entries[r.username])

    public = [line(k + 1, r) for k, r in enumerate(best.values())]
    private = None
    if reveal:
        order = sorted(best.values(), key=lambda r: (r.private_score is None, -(r.private_score or 0.0),
                                                     r.created_at, r.id))
        private = [line(k + 1, r) for k, r in enumerate(order)]
    return Board(benchmark, public, private)


# --- background scoring ----------------------------------------------------------------------------------------


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
