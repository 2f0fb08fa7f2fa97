"""Input and output schemas of the REST API.

Output schemas are where blinding is enforced (STYLE.md, "Thin shells"): ``TaskOut`` carries the caller's own
marks only; readers' marks appear only in ``ReviewOut``, which only a review task's own reviewer receives.
No schema carries a file path, a SOP Instance UID or a patient key. The leaderboard's schemas are built by
``benchmark_out``, ``submission_out`` and ``leaderboard_out``, which leave private scores out (null) until the
benchmark is closed.

Request models take JSON types as they are (``StrictBool``/``StrictInt``/``StrictFloat``: ``0`` is not
``false``, ``true`` is not 1) and bound every integer to what the catalog's INTEGER columns hold on every backend
(:data:`~cxrlab.catalog.models.INT_MAX`; PostgreSQL's INTEGER is 32-bit). What a schema can say (a non-empty
comment, a reason from the list) it says, so a schema-valid request is refused only by rules that depend on the
data. The error models (``ErrorOut`` ...) and :func:`errors` document every error status in the OpenAPI.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt
from sqlalchemy.orm import Session

from cxrlab import benchmark as lb
from cxrlab.annotate.marks import Box, Marks
from cxrlab.annotate.reasons import NOTE_MAX_CHARS, UNUSABLE_CODES, UNUSABLE_REASONS, reason_title
from cxrlab.annotate.reviews import ReviewView
from cxrlab.annotate.tasks import TaskView, unusable_reason
from cxrlab.benchmark import Board, BoardEntry, reveal_private
from cxrlab.catalog.models import (
    INT_MAX,
    Benchmark,
    BenchmarkState,
    ImageState,
    Submission,
    SubmissionState,
    TaskKind,
    TaskState,
    User,
    UserRole,
)

#: A count, version or seed sent in a body: a JSON integer from 0 to the largest INTEGER of every backend.
CatalogInt = Annotated[StrictInt, Field(ge=0, le=INT_MAX)]

# --- errors ------------------------------------------------------------------------------------------------


class ImagePublic(BaseModel):
    """What the API tells about an image: non-identifying metadata only."""

    model_config = ConfigDict(from_attributes=True)

    image_id: str
    state: ImageState | None = Field(description=(
        "Catalog state; admins only (null for everyone else: it would tell a reader how far the image's other "
        "readers are, or that an image was decided before)"))
    rows: int | None = None
    columns: int | None = None
    modality: str | None = None
    view_position: str | None = None
    sex: str | None = None
    age_years: float | None = None


class ErrorOut(BaseModel):
    """An error; ``detail`` says what is wrong (never repeating free text that was sent)."""

    detail: str


class RuleErrorOut(ErrorOut):
    """A QC rule refused the marks; ``rule`` names it."""

    rule: str


class ConflictOut(ErrorOut):
    """The item changed meanwhile or is in a state that refuses this; reload it."""

    current_version: int | None = Field(default=None, description="The version to reload")
    rule: str | None = Field(default=None, description="The rule that refuses the change, if one does")


class UploadErrorOut(ErrorOut):
    """The validator refused an upload."""

    problems: list[str] = Field(description="name:line: severity: message")
    submission_id: int | None = Field(description="The invalid submission recorded for it (submissions only)")


class FieldErrorOut(BaseModel):
    """Where and why a request is malformed (the value sent is never repeated)."""

    loc: list[str | int]
    msg: str
    type: str
    ctx: dict[str, Any] | None = None


class ValidationErrorOut(BaseModel):
    detail: list[FieldErrorOut]


#: The body and the default description of each error status the API answers (``create_app`` maps the errors).
ERROR_RESPONSES: dict[int, tuple[Any, str]] = {
    400: (ErrorOut, "Refused by a rule of the service; detail says which"),
    401: (ErrorOut, "Not logged in, or the session ended"),
    403: (ErrorOut, "The role may not do this, or a cookie-authenticated write lacks X-CXRLab-CSRF"),
    404: (ErrorOut, "Not found, or not visible to the caller"),
    409: (ConflictOut, "Conflict: the item changed meanwhile or its state refuses this"),
    413: (ErrorOut, "The upload is too large"),
    422: (ValidationErrorOut, "The request is malformed"),
    429: (ErrorOut, "Too many requests; Retry-After says when to try again"),
    500: (ErrorOut, "The stored image file could not be read or decoded (the server log names it)"),
}


def error(status: int, description: str | None = None, model: Any = None) -> dict[str, Any]:
    """One documented error response of a route: its body *model* and *description* (defaults per status)."""
    default_model, default_description = ERROR_RESPONSES[status]
    return {"model": model or default_model, "description": description or default_description}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a router or route: each status with its default body and description."""
    return {status: error(status) for status in statuses}


#: A 422 that is either a malformed request or a QC rule.
QC_422 = error(422, "Malformed, or a QC rule is broken: detail says which, rule names it",
               ValidationErrorOut | RuleErrorOut)

# --- auth and users ------------------------------------------------------------------------------------------


class LoginIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(max_length=1024)


class UserOut(BaseModel):
    """A user as the API shows it (never the password hash)."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    role: UserRole
    rad_id: str | None = Field(None, description="Reader id (annotators only)")
    active: bool


class LoginOut(BaseModel):
    user: UserOut
    expires_at: datetime
    csrf_header: str = Field(description="Send this header with value 1 on cookie-authenticated writes")


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: datetime
    user: UserOut


class UserIn(BaseModel):
    username: str = Field(max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: UserRole


class UserPatch(BaseModel):
    active: StrictBool | None = Field(default=None, description="false disables the user (not the last admin)")
    password: str | None = Field(default=None, min_length=8, max_length=1024)


# --- projects ------------------------------------------------------------------------------------------------


class ProjectIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    schema_name: str = Field(default="vindr-cxr", description="Preset: vindr-cxr, vindr-pcxr or nih14")
    schema_yaml: str | None = Field(default=None, description="A custom schema (YAML); overrides schema_name")
    readers_per_image: StrictInt = Field(default=3, ge=1, le=20)
    reviewers_per_test: StrictInt = Field(default=2, ge=1, le=10)
    seed: CatalogInt = 0


class ProjectOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    schema_name: str
    readers_per_image: int
    reviewers_per_test: int
    suggestions: bool = Field(default=False, description=(
        "Model-assisted reading is on: the viewer offers a detector's boxes as suggestions"))

    @classmethod
    def of(cls, project: Any) -> ProjectOut:
        out = cls.model_validate(project)
        out.suggestions = bool(project.suggest_model_sha256)
        return out


class SuggestIn(BaseModel):
    run: str | None = Field(min_length=1, max_length=4096, description=(
        "A detector run folder on the server (`cxrlab train detector`); its classes must be local labels of the "
        "project's schema. null turns suggestions off"))


class SuggestOut(BaseModel):
    """A project's model-assisted reading setting and how far its images are predicted."""

    run: str | None = Field(description="The detector run folder (null: suggestions are off)")
    model: str | None = Field(description="SHA-256 of its model.onnx when it was set")
    images: int
    predicted: int
    failed: int = Field(description="Images the model could not read")
    pending: int = Field(description="Images waiting for the background worker")


class SuggestionBoxOut(BaseModel):
    id: str = Field(description="sug-<k>: the id a box accepted from this suggestion takes")
    class_name: str
    score: float
    x_min: float
    y_min: float
    x_max: float
    y_max: float


class SuggestionsOut(BaseModel):
    """The model's boxes on the image of the caller's own read task (never another reader's marks)."""

    status: Literal["pending", "ready", "failed"] = Field(description=(
        "pending: not predicted yet (ask again in a moment); failed: the model could not read the image"))
    model: str = Field(description="SHA-256 of the model")
    boxes: list[SuggestionBoxOut]


class LabelOut(BaseModel):
    number: int
    name: str
    kind: Literal["local", "global"]
    definition: str


class SchemaOut(BaseModel):
    name: str
    no_finding: str | None
    local: list[LabelOut]
    global_: list[LabelOut] = Field(alias="global")

    model_config = ConfigDict(populate_by_name=True)


class AssignIn(BaseModel):
    test_fraction: StrictFloat = Field(default=0.0, ge=0.0, le=1.0)
    gold_rate: StrictFloat = Field(default=0.0, ge=0.0, le=0.5, description=(
        "Share of each reader's read tasks that are gold-standard tasks (mixed in with the new tasks)"))
    readers: list[str] | None = None
    reviewers: list[str] | None = None
    limit: CatalogInt | None = Field(default=None, ge=1)
    image_ids: list[str] | None = Field(default=None, description="Only these images")


class AssignOut(BaseModel):
    counts: dict[str, int]
    notes: list[str]


# --- marks, tasks ----------------------------------------------------------------------------------------------


class BoxIO(BaseModel):
    """A box in pixels of the original image (x to the right, y down; origin at the top-left corner)."""

    id: str = Field(default="", max_length=64, description="Stable id; the server makes one when empty")
    class_name: str = Field(max_length=128)
    x_min: StrictFloat
    y_min: StrictFloat
    x_max: StrictFloat
    y_max: StrictFloat
    source: Literal["suggestion"] | None = Field(default=None, description=(
        "'suggestion': the reader accepted this box from the model's suggestions (send it with the id sug-<k> of "
        "suggestion k when the box is created); null: drawn by the reader. Fixed when the box is created: later "
        "saves keep it whatever they send"))
    model: str | None = Field(default=None, max_length=64, description=(
        "SHA-256 of the model of an accepted suggestion (set by the server; ignored in requests)"))
    score: float | None = Field(default=None, description=(
        "The model's score of an accepted suggestion (set by the server; ignored in requests)"))


class MarksIO(BaseModel):
    labels: list[str] = Field(default_factory=list, max_length=200)
    boxes: list[BoxIO] = Field(default_factory=list, max_length=500)
    comment: str | None = Field(default=None, max_length=4000)

    def to_marks(self) -> Marks:
        return Marks(list(self.labels), [Box(**b.model_dump()) for b in self.boxes], self.comment)

    @classmethod
    def of(cls, marks: Marks) -> MarksIO:
        return cls(labels=marks.labels, boxes=[BoxIO(**b.as_dict()) for b in marks.boxes], comment=marks.comment)


class SaveIn(MarksIO):
    version: CatalogInt = Field(description="The task version this save starts from (409 when stale)")
    cause: Literal["edit", "undo", "redo"] = Field(default="edit", description=(
        "Why the save was sent: an edit, or the viewer's undo/redo (a new version like any edit; kept in the "
        "audit rows)"))


class VersionIn(BaseModel):
    version: CatalogInt = Field(description="The task version the request starts from (409 when stale)")


class UnusableIn(BaseModel):
    version: CatalogInt
    reason: Literal[UNUSABLE_CODES] = Field(description="One of: " + ", ".join(  # type: ignore[valid-type]
        f"{r.code} ({r.title})" for r in UNUSABLE_REASONS))
    note: str | None = Field(default=None, max_length=NOTE_MAX_CHARS, description=(
        "Optional free text. It may hold PHI: it stays in the tool (the task's own reader sees it) and leaves "
        "it only in an export that asks for free text"))


class ImageBrief(BaseModel):
    image_id: str
    rows: int | None
    columns: int | None


class TaskOut(BaseModel):
    """A task as its own user sees it: the image and the user's own marks, nothing of other readers."""

    id: int
    project_id: int
    kind: TaskKind
    state: TaskState
    version: int
    image: ImageBrief
    marks: MarksIO
    reason: str | None = Field(default=None, description="Unusable reason code")
    reason_title: str | None = None
    note: str | None = Field(default=None, description="The unusable note (free text) of this user's own task")
    submitted_at: datetime | None = None
    frozen: str | None = Field(default=None, description=(
        "A submitted read that can no longer be reopened: why (rule read_frozen: its image's review is open or "
        "finished, or a release holds it); null when it can be reopened, and for every other task"))


class NextOut(BaseModel):
    tasks: list[TaskOut] = Field(description="The next open tasks in queue order: show the first, prefetch the rest")
    remaining: int
    counts: dict[str, int]


# --- reviews ---------------------------------------------------------------------------------------------------


class ReaderMarks(BaseModel):
    rad_id: str
    marks: MarksIO


class CommentOut(BaseModel):
    username: str
    text: str
    at: datetime


class ReviewOut(BaseModel):
    task: TaskOut
    review_state: Literal["waiting", "open", "finalized", "unusable"]
    version: int = Field(description="Version of the shared proposal (send it with edits and approvals)")
    readers: list[ReaderMarks]
    suggestion: MarksIO | None
    proposal: MarksIO
    reviewers: list[str]
    approvals: dict[str, int] = Field(description="reviewer -> proposal version approved")
    comments: list[CommentOut]


class ApproveIn(BaseModel):
    version: CatalogInt


class CommentIn(BaseModel):
    text: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="Not blank")


def task_out(view: TaskView, frozen: str | None = None) -> TaskOut:
    """The output schema of a task from the service's view of it (*frozen*: why a submitted read can no longer
    be reopened, :func:`cxrlab.annotate.history.freeze_reasons`). Nothing in it tells a gold-standard task from
    another."""
    t, img = view.task, view.image
    code, note = unusable_reason(t)
    return TaskOut(
        id=t.id, project_id=t.project_id, kind=t.kind, state=t.state, version=t.version,
        image=ImageBrief(image_id=img.image_id or "", rows=img.rows, columns=img.columns),
        marks=MarksIO.of(view.marks), reason=code, reason_title=reason_title(code), note=note,
        submitted_at=t.submitted_at, frozen=frozen,
    )


def review_out(view: ReviewView) -> ReviewOut:
    """The output schema of a review task (readers' marks included: only its reviewer gets this)."""
    task = TaskOut(
        id=view.task.id, project_id=view.task.project_id, kind=view.task.kind, state=view.task.state,
        version=view.task.version,
        image=ImageBrief(image_id=view.image.image_id or "", rows=view.image.rows, columns=view.image.columns),
        marks=MarksIO(), submitted_at=view.task.submitted_at,
    )
    return ReviewOut(
        task=task, review_state=view.review.state, version=view.review.version,
        readers=[ReaderMarks(rad_id=r, marks=MarksIO.of(m)) for r, m in view.readers],
        suggestion=MarksIO.of(view.suggestion) if view.suggestion is not None else None,
        proposal=MarksIO.of(view.proposal), reviewers=view.reviewers, approvals=view.approvals,
        comments=[CommentOut(username=u, text=t, at=a) for u, t, a in view.comments],
    )


# --- dashboard -------------------------------------------------------------------------------------------------


class SplitProgress(BaseModel):
    images: int
    tasks: dict[str, int] = Field(description="read tasks per state")
    reviews: dict[str, int] = Field(description="reviews per state (test split)")


class ReaderProgress(BaseModel):
    username: str
    rad_id: str | None = Field(description="Reader id (annotators only)")
    role: UserRole
    tasks: dict[str, dict[str, int]] = Field(description="kind (read|review) -> state -> count")
    last_hour: int
    last_day: int
    median_seconds: float | None = Field(description="median time between the reader's submissions")


class Throughput(BaseModel):
    submitted: int
    last_hour: int
    last_day: int


class UnusableOut(BaseModel):
    image_id: str
    rad_id: str
    reason: str | None = Field(description="Reason code (the free-text note is never shown here)")
    reason_title: str | None = None
    at: datetime


class ProgressOut(BaseModel):
    project: str
    splits: dict[str, SplitProgress]
    readers: list[ReaderProgress]
    throughput: Throughput
    unusable: list[UnusableOut]
    gold: dict[str, int] = Field(description="gold-standard read tasks per state (not in the splits' counts)")


# --- gold-standard tasks and reader quality -----------------------------------------------------------------


class GoldIn(BaseModel):
    image_ids: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=10000)
    source: str = Field(default="consensus", max_length=64, pattern=r"^(consensus|reader:\S{1,32})$",
                        description="consensus (the image's consensus rows) or reader:<rad_id> (an expert's read)")


class GoldImageOut(BaseModel):
    image_id: str
    source: str
    author: str
    created_at: datetime
    labels: list[str] = Field(description="The decided labels")
    boxes: int = Field(description="Decided boxes")
    reads: int = Field(description="Gold reads submitted")
    open: int = Field(description="Gold tasks still in readers' queues")


class GoldReportOut(BaseModel):
    counts: dict[str, int]
    gold: list[GoldImageOut]


class LabelScore(BaseModel):
    tp: int
    fn: int
    tn: int
    fp: int
    sensitivity: float | None = Field(description="TP / (TP + FN); null without a gold positive")
    specificity: float | None = Field(description="TN / (TN + FP); null without a gold negative")


class BoxScore(BaseModel):
    gold: int
    reader: int
    matched: int = Field(description="one-to-one matches of the same class at IoU >= box_iou")
    f1: float | None = Field(description="2 matched / (gold + reader); null when neither drew a box")


class ReaderQuality(BaseModel):
    rad_id: str
    username: str
    images: int = Field(description="gold reads scored")
    labels: dict[str, LabelScore]
    boxes: BoxScore
    mean_sensitivity: float | None
    mean_specificity: float | None


class QualityOut(BaseModel):
    project: str
    gold_images: int
    box_iou: float
    readers: list[ReaderQuality]


class PairAgreement(BaseModel):
    rad_a: str
    rad_b: str
    images: int = Field(description="images both read")
    matched: int = Field(description="box pairs of the same class with IoU >= box_iou")
    boxes_a: int
    boxes_b: int
    f1: float | None


class AgreementOut(BaseModel):
    project: str
    images: int = Field(description="images with at least 2 submitted reads")
    fleiss_kappa: dict[str, float | None] = Field(description="per label; null where undefined")
    box_iou: float
    box_agreement: list[PairAgreement]


# --- leaderboard -----------------------------------------------------------------------------------------------


class BenchmarkIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=2000)
    metric: Literal["kaggle", "voc", "coco"] = "kaggle"
    iou: StrictFloat | None = Field(default=None, gt=0.0, lt=1.0, description="IoU threshold (default: the metric's)")
    classes: str = Field(default="vindr-cxr-challenge",
                         description="Class ids of the submissions: vindr-cxr-challenge, vindr-cxr or vindr-pcxr")
    seed: CatalogInt | None = Field(default=None, description="Seed of the public/private split (default: random)")
    public_fraction: StrictFloat = Field(default=0.5, gt=0.0, lt=1.0)
    daily_limit: StrictInt = Field(default=5, ge=1, le=1000, description="Submissions per user per UTC day")


class BenchmarkOut(BaseModel):
    """A benchmark; ``seed`` only for admins (with it, the released test ids tell which images are private)."""

    id: int
    name: str
    description: str | None
    metric: str
    iou: float | None
    classes: str
    public_fraction: float
    daily_limit: int
    state: BenchmarkState
    has_labels: bool
    public_images: int
    private_images: int
    created_at: datetime
    closed_at: datetime | None
    seed: int | None = Field(default=None, description="Admins only")
    submissions_today: int = Field(description="The caller's submissions counted against today's (UTC) limit")


class LabelsOut(BaseModel):
    benchmark: BenchmarkOut
    images: int
    boxes: int = Field(description="ground-truth rows scored (boxes, and 'No finding' as one box each)")
    rescored: int = Field(description="submissions queued again for scoring against the new labels")
    notes: list[str]


class SizesOut(BaseModel):
    """What an upload of image sizes did."""

    images: int = Field(description="sizes read")
    test_images_without_size: int = Field(description="their boxes are checked for negative coordinates only")
    not_test_images: int = Field(description="sizes of images outside the test set (ignored)")
    notes: list[str]


class SubmissionOut(BaseModel):
    """One of the caller's submissions. Private score and private per-class AP are null until the benchmark is
    closed."""

    id: int
    benchmark_id: int
    filename: str
    size: int
    sha256: str
    state: SubmissionState
    messages: list[str] = Field(description="The validator's messages (name:line: severity: message)")
    public_score: float | None
    private_score: float | None = Field(description="null until the benchmark is closed")
    per_class: dict[str, dict[str, float | None]] | None = Field(
        description="part (public; private once closed) -> class name -> AP (null: no ground truth)")
    created_at: datetime
    scored_at: datetime | None


class BoardEntryOut(BaseModel):
    rank: int
    username: str
    public_score: float
    private_score: float | None = Field(description="null until the benchmark is closed")
    submitted_at: datetime
    entries: int = Field(description="the user's scored submissions")


class LeaderboardOut(BaseModel):
    benchmark: BenchmarkOut
    public: list[BoardEntryOut] = Field(description="best public score per user; ties to the earlier submission")
    private: list[BoardEntryOut] | None = Field(
        description="the same submissions ranked by private score; null until the benchmark is closed")


def benchmark_out(benchmark: Benchmark, *, counts: dict[str, int], user: User, today: int) -> BenchmarkOut:
    """The output schema of a benchmark for *user* (``seed`` for admins only)."""
    return BenchmarkOut(
        id=benchmark.id, name=benchmark.name, description=benchmark.description, metric=benchmark.metric,
        iou=benchmark.iou, classes=benchmark.classes, public_fraction=benchmark.public_fraction,
        daily_limit=benchmark.daily_limit, state=benchmark.state, has_labels=bool(benchmark.gt_path),
        public_images=counts.get("public", 0), private_images=counts.get("private", 0),
        created_at=benchmark.created_at, closed_at=benchmark.closed_at,
        seed=benchmark.seed if user.role is UserRole.ADMIN else None, submissions_today=today,
    )


def benchmark_view(session: Session, benchmark: Benchmark, user: User) -> BenchmarkOut:
    """*benchmark* as *user* sees it (image counts per part, the caller's submissions today)."""
    return benchmark_out(benchmark, counts=lb.part_counts(session, benchmark), user=user,
                         today=lb.submissions_today(session, benchmark=benchmark, user=user))


def submission_out(sub: Submission, benchmark: Benchmark) -> SubmissionOut:
    """The output schema of a submission; private parts only when the benchmark is closed."""
    reveal = reveal_private(benchmark)
    per_class = {k: v for k, v in (sub.per_class or {}).items() if reveal or k == "public"}
    return SubmissionOut(
        id=sub.id, benchmark_id=sub.benchmark_id, filename=sub.filename, size=sub.size, sha256=sub.sha256,
        state=sub.state, messages=list(sub.messages or []), public_score=sub.public_score,
        private_score=sub.private_score if reveal else None, per_class=per_class or None,
        created_at=sub.created_at, scored_at=sub.scored_at,
    )


def _entry(e: BoardEntry, reveal: bool) -> BoardEntryOut:
    return BoardEntryOut(rank=e.rank, username=e.username, public_score=e.public_score,
                         private_score=e.private_score if reveal else None, submitted_at=e.submitted_at,
                         entries=e.entries)


def leaderboard_out(board: Board, benchmark: BenchmarkOut) -> LeaderboardOut:
    """The output schema of a leaderboard: private scores and ranking only for a closed benchmark (the service
    leaves them out too; this is the second lock)."""
    reveal = benchmark.state is BenchmarkState.CLOSED
    private = [_entry(e, reveal) for e in board.private] if reveal and board.private is not None else None
    return LeaderboardOut(benchmark=benchmark, public=[_entry(e, reveal) for e in board.public], private=private)
