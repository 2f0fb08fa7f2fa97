"""Benchmarks on hidden test labels: create, list, open/close, the hidden labels and the test images' sizes,
and the public/private split of the test images (the rules are in :mod:`cxrlab.benchmark`)."""

from __future__ import annotations

import hashlib
import io
import logging
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from cxrlab.annotate.writes import lock_row
from cxrlab.benchmark.errors import InvalidUploadError, UploadTooLargeError
from cxrlab.catalog.db import one_or_not_found, transaction
from cxrlab.catalog.models import (
    Benchmark,
    BenchmarkImage,
    BenchmarkState,
    Submission,
    SubmissionState,
    User,
)
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import ConflictError, CxrlabError
from cxrlab.evaluate import (
    CHALLENGE,
    EvaluationError,
    Metric,
    get_class_list,
    read_annotations,
    read_meta,
)
from cxrlab.evaluate.detection import check_metric
from cxrlab.runtime.files import atomic_write_bytes
from cxrlab.runtime.unpack import CorruptStreamError, UnpackedTooLargeError, format_size, unpack_bytes

__all__ = [
    "MAX_CSV_BYTES",
    "MAX_UPLOAD_BYTES",
    "LabelsReport",
    "SizesReport",
    "create_benchmark",
    "get_benchmark",
    "get_benchmark_by_name",
    "image_parts",
    "list_benchmarks",
    "part_counts",
    "read_upload",
    "remove_sizes",
    "reveal_private",
    "set_state",
    "split_parts",
    "upload_labels",
    "upload_sizes",
]

log = logging.getLogger(__name__)

#: Largest upload accepted, as sent (CSV or gzip).
MAX_UPLOAD_BYTES = 50 * 2**20
#: Largest CSV accepted once decompressed (a gzip upload may not unpack to more).
MAX_CSV_BYTES = 256 * 2**20
PUBLIC, PRIVATE = "public", "private"


def _now() -> datetime:
    return datetime.now(UTC)


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
    return one_or_not_found(session, select(Benchmark).where(Benchmark.id == benchmark_id), f"benchmark {benchmark_id}")


def get_benchmark_by_name(session: Session, name: str) -> Benchmark:
    """Benchmark called *name* (for the CLI), else ``NotFoundError``."""
    return one_or_not_found(session, select(Benchmark).where(Benchmark.name == name), f"benchmark {name!r}")


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


def named_upload(data: bytes, name: str) -> io.BytesIO:
    """An in-memory file that :mod:`cxrlab.evaluate` names *name* in its messages (never a server path)."""
    buf = io.BytesIO(data)
    buf.name = name  # type: ignore[attr-defined]
    return buf


def clean_filename(filename: str | None, default: str) -> str:
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
    name = clean_filename(filename, "annotations_test.csv")
    text = read_upload(data, what="label file", name=name)
    try:
        truth = read_annotations(named_upload(text, name), classes=get_class_list(benchmark.classes),
                                 meta=stored_sizes(workspace, benchmark))
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
    name = clean_filename(filename, "image-sizes.csv")
    text = read_upload(data, what="size file", name=name)
    try:
        sizes = read_meta(named_upload(text, name))
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


def stored_sizes(workspace: Workspace, benchmark: Benchmark) -> io.BytesIO | None:
    """The stored sizes as an in-memory file (messages never show a server path), or None without any."""
    try:
        return named_upload(sizes_file(workspace, benchmark).read_bytes(), "image-sizes.csv")
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
