"""SQLAlchemy 2 models of the catalog: one row per image, its state, and every human or stage decision.

The catalog keeps only non-identifying metadata (docs, "The workspace"): the original SOP Instance UID is
kept to recognise duplicates and to build the private mapping to ``image_id``; it is never exported. The
identifiers that link an image to its radiology report (Accession Number, Study Instance UID) are kept only as
keyed hashes; the reports' text (PHI) is kept in ``reports`` and never leaves the catalog.
"""

from __future__ import annotations

import enum
from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = [
    "INT_MAX",
    "REVIEW_METHOD",
    "AuthSession",
    "Base",
    "Benchmark",
    "BenchmarkImage",
    "BenchmarkState",
    "CollectInstance",
    "CollectState",
    "CollectStudy",
    "ConsensusBox",
    "ConsensusLabel",
    "Event",
    "FilterScore",
    "GoldStandard",
    "Image",
    "ImageState",
    "Project",
    "QuarantineItem",
    "RadiologyReport",
    "Reading",
    "ReadingBox",
    "ReadingLabel",
    "Redaction",
    "ReportLabel",
    "Review",
    "ReviewComment",
    "Submission",
    "SubmissionState",
    "Suggestion",
    "Task",
    "TaskKind",
    "TaskState",
    "UTCDateTime",
    "UidMap",
    "User",
    "UserRole",
]


#: ``method`` of ``consensus_labels`` / ``consensus_boxes`` rows decided by people (the labeling platform's
#: review, or an imported release's consensus): automatic stages never overwrite them.
REVIEW_METHOD = "review"


#: The largest value of an ``Integer`` column on every backend: PostgreSQL's INTEGER is 32-bit (SQLite's is 64).
#: Request models bound every integer that reaches the catalog by it.
INT_MAX = 2**31 - 1


def utcnow() -> datetime:
    """Timezone-aware now, stored as UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A point in time, stored as UTC and read back timezone-aware in UTC on every backend.

    SQLite has no time zone type: ``DateTime(timezone=True)`` stores the UTC wall time and reads it back naive,
    while PostgreSQL's ``timestamptz`` reads back in the session's time zone. Both come back as UTC here, so every
    reader (the API's ``...Z`` timestamps, expiry and lease comparisons) sees one kind of value. A naive value
    bound to a query is taken as UTC (what :func:`utcnow` and SQLite give).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)

    process_result_value = process_bind_param


class ImageState(enum.StrEnum):
    """Catalog image states: the stage an image has reached (see the docs, "Image states")."""

    INGESTED = "ingested"
    DEIDENTIFIED = "deidentified"
    FLAGGED_TEXT = "flagged_text"
    FILTERED_OUT = "filtered_out"
    #: The filter model was not sure, or the image was drawn into the audit sample of the accepted (migration 0011).
    NEEDS_VERIFICATION = "needs_verification"
    ACCEPTED = "accepted"
    ASSIGNED = "assigned"
    LABELED = "labeled"
    REVIEWED = "reviewed"
    RELEASED = "released"


class Base(DeclarativeBase):
    """Declarative base of every catalog table."""


class Image(Base):
    """One ingested DICOM instance and its non-identifying metadata."""

    __tablename__ = "images"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    image_id: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    patient_key: Mapped[str | None] = mapped_column(String(64), index=True)
    raw_sha256: Mapped[str] = mapped_column(String(64))
    raw_path: Mapped[str] = mapped_column(Text)
    deid_path: Mapped[str | None] = mapped_column(Text)
    state: Mapped[ImageState] = mapped_column(
        Enum(ImageState, native_enum=False, length=20, values_callable=lambda e: [m.value for m in e]),
        default=ImageState.INGESTED,
        index=True,
    )
    state_reason: Mapped[str | None] = mapped_column(Text)
    split: Mapped[str | None] = mapped_column(String(16))
    sex: Mapped[str | None] = mapped_column(String(1))
    age_years: Mapped[float | None] = mapped_column(Float)
    study_year: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    pixel_spacing_row: Mapped[float | None] = mapped_column(Float)
    pixel_spacing_col: Mapped[float | None] = mapped_column(Float)
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    view_position: Mapped[str | None] = mapped_column(String(16))
    manufacturer: Mapped[str | None] = mapped_column(String(64))
    photometric: Mapped[str | None] = mapped_column(String(16))
    transfer_syntax: Mapped[str | None] = mapped_column(String(64))
    file_size: Mapped[int | None] = mapped_column(Integer)
    deid_file_size: Mapped[int | None] = mapped_column(Integer)
    #: Where the instance came from, without PHI (migration 0008): ``folder <root given>``,
    #: ``pacs <AE>@<host>:<port>``, ``dicomweb <URL without credentials>`` or ``listen <calling AE>``.
    origin: Mapped[str | None] = mapped_column(Text)
    #: Keyed hashes (:func:`cxrlab.dicom.metadata.identifier_key`) of the original (0008,0050) *Accession Number*
    #: and (0020,000D) *Study Instance UID*, taken before de-identification (migration 0009): how ``cxrlab
    #: reports import`` finds the images of a report. The identifiers themselves are not kept; never exported.
    accession_key: Mapped[str | None] = mapped_column(String(32), index=True)
    study_key: Mapped[str | None] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    readings: Mapped[list[Reading]] = relationship(back_populates="image", cascade="all, delete-orphan")


class Event(Base):
    """Audit row: what a stage or a person did to an image, and when."""

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int | None] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    stage: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(64))
    detail: Mapped[dict | None] = mapped_column(JSON)
    author: Mapped[str] = mapped_column(String(64), default="system")
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class FilterScore(Base):
    """The filter model's output for one image (migration 0011): the last model run on it wins.

    ``probabilities`` maps each class name (the view classes and ``pediatric``) to its probability; ``klass`` is
    the class the filter decided on and ``decision`` what it did (``accepted``, ``filtered_out``,
    ``needs_verification``); ``audit`` marks an accepted image drawn into the random audit sample. The
    verification queue reads these to show why an image waits; nothing here is identifying.
    """

    __tablename__ = "filter_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), unique=True)
    model_sha256: Mapped[str] = mapped_column(String(64))
    klass: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float] = mapped_column(Float)
    probabilities: Mapped[dict] = mapped_column(JSON)
    decision: Mapped[str] = mapped_column(String(20))
    audit: Mapped[bool] = mapped_column(Boolean, default=False)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuarantineItem(Base):
    """An input that failed a stage; the reason never contains PHI."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("sha256", "stage", name="uq_quarantine_sha_stage"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(32))
    sha256: Mapped[str] = mapped_column(String(64))
    source_path: Mapped[str] = mapped_column(Text)
    stored_path: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Reading(Base):
    """One reader's complete read of one image (image-level labels plus boxes)."""

    __tablename__ = "readings"
    __table_args__ = (UniqueConstraint("image_pk", "rad_id", name="uq_reading_image_reader"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    rad_id: Mapped[str] = mapped_column(String(32))
    schema: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str | None] = mapped_column(Text)
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    image: Mapped[Image] = relationship(back_populates="readings")
    labels: Mapped[list[ReadingLabel]] = relationship(cascade="all, delete-orphan")
    boxes: Mapped[list[ReadingBox]] = relationship(cascade="all, delete-orphan")


class ReadingLabel(Base):
    """A positive image-level label in a reading (absent label = 0)."""

    __tablename__ = "reading_labels"
    __table_args__ = (UniqueConstraint("reading_id", "label", name="uq_reading_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_id: Mapped[int] = mapped_column(ForeignKey("readings.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128))


class ReadingBox(Base):
    """A bounding box for a local label, in pixel coordinates of the original image."""

    __tablename__ = "reading_boxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reading_id: Mapped[int] = mapped_column(ForeignKey("readings.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(128))
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)


class ConsensusLabel(Base):
    """The aggregated image-level label (majority vote of readers, or a review decision)."""

    __tablename__ = "consensus_labels"
    __table_args__ = (
        UniqueConstraint("image_pk", "label", name="uq_consensus_image_label"),
        Index("ix_consensus_label", "label"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    label: Mapped[str] = mapped_column(String(128))
    positive: Mapped[int] = mapped_column(Integer)
    votes: Mapped[int] = mapped_column(Integer)
    readers: Mapped[int] = mapped_column(Integer)
    method: Mapped[str] = mapped_column(String(32), default="majority")


class ConsensusBox(Base):
    """An aggregated box of a local finding (box fusion of readers' boxes, or a reviewer's final box).

    These are the rows of the test set's ``annotations_test.csv`` (empty ``rad_id``: consensus), VinDr-CXR data
    descriptor, "Data Records".
    """

    __tablename__ = "consensus_boxes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    class_name: Mapped[str] = mapped_column(String(128))
    x_min: Mapped[float] = mapped_column(Float)
    y_min: Mapped[float] = mapped_column(Float)
    x_max: Mapped[float] = mapped_column(Float)
    y_max: Mapped[float] = mapped_column(Float)
    score: Mapped[float | None] = mapped_column(Float)
    votes: Mapped[int] = mapped_column(Integer, default=1)
    method: Mapped[str] = mapped_column(String(32), default="wbf")
    author: Mapped[str] = mapped_column(String(64), default="system")


class UidMap(Base):
    """Original identifier -> de-identified identifier (kind ``image_id`` or ``uid``).

    Stays in the workspace (or beside the key file for ``cxrlab deid folder``); never part of a release. Exported
    only by ``cxrlab deid export-mapping`` for the hospital's own records.
    """

    __tablename__ = "uid_map"

    original: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    new: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Redaction(Base):
    """Burned-in text boxes redacted in a de-identified image (stored pixel coordinates, margin included)."""

    __tablename__ = "redactions"

    image_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    boxes: Mapped[list] = mapped_column(JSON)
    transfer_syntax: Mapped[str] = mapped_column(String(64))
    reencoded: Mapped[bool] = mapped_column(default=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- the labeling tool (migration 0005) ----------------------------------------------------------------------


def _str_enum(cls: type[enum.Enum], length: int) -> Enum:
    return Enum(cls, native_enum=False, length=length, values_callable=lambda e: [m.value for m in e])


class UserRole(enum.StrEnum):
    """What a user of the labeling tool may do."""

    ADMIN = "admin"
    ANNOTATOR = "annotator"
    REVIEWER = "reviewer"
    #: Decides the triage queues (filter verification, burned-in text, images set aside); reads no image.
    VERIFIER = "verifier"


class User(Base):
    """A person who logs into the labeling tool; ``rad_id`` is the reader id written to ``Reading.rad_id``
    (annotators only: admins and reviewers read no image, so they have none)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[UserRole] = mapped_column(_str_enum(UserRole, 16))
    rad_id: Mapped[str | None] = mapped_column(String(32), unique=True, nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AuthSession(Base):
    """A login: a cookie session or a bearer token. Only the SHA-256 of the token is stored."""

    __tablename__ = "auth_sessions"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class Project(Base):
    """A labeling project: a label schema (preset name or custom YAML) and how images are read."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    schema_name: Mapped[str] = mapped_column(String(64))
    schema_yaml: Mapped[str | None] = mapped_column(Text)
    readers_per_image: Mapped[int] = mapped_column(Integer, default=3)
    reviewers_per_test: Mapped[int] = mapped_column(Integer, default=2)
    seed: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    #: Model-assisted reading (migration 0012): the detector run whose boxes the viewer offers as suggestions
    #: (its folder, resolved), and the SHA-256 of its ``model.onnx`` when it was set. Null: off (the default,
    #: since suggestions bias readers).
    suggest_run: Mapped[str | None] = mapped_column(Text)
    suggest_model_sha256: Mapped[str | None] = mapped_column(String(64))


class Suggestion(Base):
    """A detector's boxes on one image (migration 0012), computed once per image and model.

    ``boxes`` is a list of ``{"class_name", "score", "x_min", "y_min", "x_max", "y_max"}`` in pixels of the
    original image, by descending score; ``error`` says why an image could not be predicted (no PHI: the
    exception's kind and the image id, never a header value). Keyed by image and model SHA-256, so a new model
    predicts again and the same model never twice.
    """

    __tablename__ = "suggestions"
    __table_args__ = (UniqueConstraint("image_pk", "model_sha256", name="uq_suggestion_image_model"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    model_sha256: Mapped[str] = mapped_column(String(64))
    boxes: Mapped[list] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(Text)
    seconds: Mapped[float] = mapped_column(Float, default=0.0)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class TaskKind(enum.StrEnum):
    """``read``: one blinded reader labels one image; ``review``: one reviewer of a test image's consensus."""

    READ = "read"
    REVIEW = "review"


class TaskState(enum.StrEnum):
    """Life of a task: ``waiting`` (review before its reads are done) -> ``pending`` -> ``draft`` ->
    ``submitted``; ``unusable`` (the reader set the image aside) and ``cancelled`` (someone else did)."""

    WAITING = "waiting"
    PENDING = "pending"
    DRAFT = "draft"
    SUBMITTED = "submitted"
    UNUSABLE = "unusable"
    CANCELLED = "cancelled"


class Task(Base):
    """One user's work item on one image: a blinded read or a review.

    ``order_key`` orders the user's queue (a seeded shuffle per reader, VinDr-CXR data descriptor: "the images
    were randomly shuffled before being assigned"). ``draft`` holds the autosaved work (labels, boxes, comment);
    ``version`` grows on every save, and a save that names an older version is refused (optimistic locking).
    """

    __tablename__ = "tasks"
    __table_args__ = (
        UniqueConstraint("project_id", "image_pk", "user_id", "kind", name="uq_task_project_image_user_kind"),
        Index("ix_tasks_queue", "user_id", "state", "order_key"),
        Index("ix_tasks_project_image", "project_id", "image_pk"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[TaskKind] = mapped_column(_str_enum(TaskKind, 16))
    state: Mapped[TaskState] = mapped_column(_str_enum(TaskState, 16))
    order_key: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer, default=0)
    draft: Mapped[dict | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: A gold-standard read (migration 0010): a reader's read of an image already decided, scored against its
    #: :class:`GoldStandard` and kept out of the readings, the review, the consensus and every release. Never
    #: part of any answer a reader gets.
    gold: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class GoldStandard(Base):
    """The decided marks of a gold image of a project (migration 0010): what readers' gold reads are scored
    against (reader QA; CVAT's "ground truth jobs", Label Studio's ground-truth agreement).

    ``marks`` holds ``labels`` and ``boxes`` as :class:`cxrlab.annotate.marks.Marks` JSON (no comment);
    ``source`` says where they come from: ``consensus`` (the image's consensus rows) or ``reader:<rad_id>`` (an
    expert's read). ``author`` is the admin who marked it.
    """

    __tablename__ = "gold_standards"
    __table_args__ = (UniqueConstraint("project_id", "image_pk", name="uq_gold_project_image"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    marks: Mapped[dict] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(String(64))
    author: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Review(Base):
    """The two-stage review of one test image: the reviewers' shared proposal and their approvals.

    ``proposal`` (labels and boxes) starts as the suggested consensus and is edited by the reviewers under
    optimistic versioning; ``approvals`` maps user id to the proposal version approved. The review is final
    when every reviewer approved the current version (VinDr-CXR data descriptor: test labels are the consensus
    of the readers settled by senior reviewers).
    """

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("project_id", "image_pk", name="uq_review_project_image"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    project_id: Mapped[int] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    version: Mapped[int] = mapped_column(Integer, default=0)
    proposal: Mapped[dict | None] = mapped_column(JSON)
    approvals: Mapped[dict | None] = mapped_column(JSON)
    finalized_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ReviewComment(Base):
    """A reviewer's comment on a review (disagreement stays open with comments)."""

    __tablename__ = "review_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


# --- the leaderboard (migration 0006) ------------------------------------------------------------------------


class BenchmarkState(enum.StrEnum):
    """``open``: submissions accepted, public scores shown; ``closed``: final, private scores shown to all."""

    OPEN = "open"
    CLOSED = "closed"


class Benchmark(Base):
    """A benchmark on hidden test labels: how submissions are scored and how many a user may send per day.

    The hidden labels are a file under the workspace (``gt_path``, never served) identified by ``gt_sha256``.
    Their images are split once, by ``seed``, into a public part (scored on the public leaderboard) and a private
    part (shown when the benchmark is closed): :class:`BenchmarkImage`.
    """

    __tablename__ = "benchmarks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    description: Mapped[str | None] = mapped_column(Text)
    metric: Mapped[str] = mapped_column(String(16))
    iou: Mapped[float | None] = mapped_column(Float)
    classes: Mapped[str] = mapped_column(String(64))
    seed: Mapped[int] = mapped_column(Integer, default=0)
    public_fraction: Mapped[float] = mapped_column(Float)
    daily_limit: Mapped[int] = mapped_column(Integer)
    state: Mapped[BenchmarkState] = mapped_column(_str_enum(BenchmarkState, 16), default=BenchmarkState.OPEN)
    gt_path: Mapped[str | None] = mapped_column(Text)
    gt_sha256: Mapped[str | None] = mapped_column(String(64))
    gt_uploaded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class BenchmarkImage(Base):
    """One test image of a benchmark and its part, ``public`` or ``private`` (chosen once, by the seed)."""

    __tablename__ = "benchmark_images"

    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"), primary_key=True)
    image_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    part: Mapped[str] = mapped_column(String(16))


class SubmissionState(enum.StrEnum):
    """Life of a submission: ``queued`` -> ``scoring`` -> ``scored`` (or ``failed``); ``invalid`` when the
    validator refused the upload (kept with its messages, never scored)."""

    QUEUED = "queued"
    SCORING = "scoring"
    SCORED = "scored"
    INVALID = "invalid"
    FAILED = "failed"


class Submission(Base):
    """A user's predictions for a benchmark, its validation messages and its scores.

    ``private_score`` and the private half of ``per_class`` are stored as soon as they are computed but leave
    the server only when the benchmark is closed. ``claimed_by`` / ``claimed_at`` name the scoring worker
    (``host:pid``) that holds a ``scoring`` submission, so a restarted server can tell its dead claims from a
    live worker's.
    """

    __tablename__ = "submissions"
    __table_args__ = (
        Index("ix_submissions_benchmark_user", "benchmark_id", "user_id", "created_at"),
        Index("ix_submissions_state", "state"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    benchmark_id: Mapped[int] = mapped_column(ForeignKey("benchmarks.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    filename: Mapped[str] = mapped_column(String(255))
    path: Mapped[str | None] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    state: Mapped[SubmissionState] = mapped_column(_str_enum(SubmissionState, 16))
    messages: Mapped[list | None] = mapped_column(JSON)
    public_score: Mapped[float | None] = mapped_column(Float)
    private_score: Mapped[float | None] = mapped_column(Float)
    per_class: Mapped[dict | None] = mapped_column(JSON)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    scored_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


# --- collecting from a PACS or DICOMweb (migration 0008) -------------------------------------------------------


class CollectState(enum.StrEnum):
    """Progress of a study or instance found by a query: ``pending`` until retrieved, then ``done`` (every
    instance in the catalog or quarantined), ``vanished`` (the peer no longer has it) or ``failed`` (the peer
    answered a failure status; a rerun tries again)."""

    PENDING = "pending"
    DONE = "done"
    VANISHED = "vanished"
    FAILED = "failed"


class CollectStudy(Base):
    """A study that a query of ``source`` found (C-FIND or QIDO-RS), and how far its retrieval got.

    ``source`` names the peer without credentials (``pacs ORTHANC@10.0.0.5:104``, ``dicomweb https://...``);
    ``status`` is the last failure status the peer answered (``0xA702``, ``HTTP 404``) and ``reason`` the PHI-free
    text of it. The original Study Instance UID stays in the catalog like the SOP Instance UID: never exported.
    """

    __tablename__ = "collect_studies"
    __table_args__ = (UniqueConstraint("source", "study_uid", name="uq_collect_study_source_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    source: Mapped[str] = mapped_column(String(255), index=True)
    study_uid: Mapped[str] = mapped_column(String(64))
    state: Mapped[CollectState] = mapped_column(_str_enum(CollectState, 16), default=CollectState.PENDING)
    instances: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str | None] = mapped_column(Text)
    found_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CollectInstance(Base):
    """One instance of a :class:`CollectStudy` (an IMAGE-level C-FIND or QIDO-RS answer) and its state:
    ``pending`` until it is in the catalog (``done``) or quarantined (``failed``)."""

    __tablename__ = "collect_instances"
    __table_args__ = (
        UniqueConstraint("study_id", "sop_instance_uid", name="uq_collect_instance_study_sop"),
        Index("ix_collect_instances_sop", "sop_instance_uid"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("collect_studies.id", ondelete="CASCADE"), index=True)
    series_uid: Mapped[str] = mapped_column(String(64))
    sop_instance_uid: Mapped[str] = mapped_column(String(64))
    state: Mapped[CollectState] = mapped_column(_str_enum(CollectState, 16), default=CollectState.PENDING)


# --- radiology reports (migration 0009) -------------------------------------------------------------------


class RadiologyReport(Base):
    """One radiology report imported by ``cxrlab reports import``: its text by section (PHI) and the keyed hash
    of the identifier that links it to its images.

    The text never leaves the catalog: only the labels mined from it do (:class:`ReportLabel`). The report's own
    id is kept as a keyed hash too (``report_key``, what makes a re-import update instead of duplicate), and
    ``source`` says where it was read (``file:line``) for messages. ``match`` is ``accession`` or ``study-uid``:
    ``match_key`` is then compared with ``images.accession_key`` or ``images.study_key``.
    """

    __tablename__ = "reports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    report_key: Mapped[str] = mapped_column(String(32), unique=True)
    match: Mapped[str] = mapped_column(String(16))
    match_key: Mapped[str] = mapped_column(String(32), index=True)
    sections: Mapped[dict] = mapped_column(JSON)
    source: Mapped[str] = mapped_column(Text)
    imported_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class ReportLabel(Base):
    """An image-level label whose source is the report (``source = report``): 1, 0 or -1 (uncertain) per label
    of the vocabulary ``schema``, for every image linked to a labeled report.

    A label source of its own, beside the readers (``reading_labels``) and their consensus
    (``consensus_labels``): nothing that reads those tables sees these rows. ``reports`` is the number of
    reports the value was combined from (an image can belong to a study with an addendum). ``cxrlab reports
    label`` replaces every row on each run.
    """

    __tablename__ = "report_labels"
    __table_args__ = (UniqueConstraint("image_pk", "label", name="uq_report_label_image_label"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    image_pk: Mapped[int] = mapped_column(ForeignKey("images.id", ondelete="CASCADE"), index=True)
    schema: Mapped[str] = mapped_column(String(64))
    label: Mapped[str] = mapped_column(String(128))
    value: Mapped[int] = mapped_column(Integer)
    reports: Mapped[int] = mapped_column(Integer, default=1)
    labeled_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
