"""Model-assisted reading (issue 16): a project names a detector run, and the viewer offers the detector's boxes
on each image as dashed suggestions that the reader accepts with one key, edits, or ignores.

MONAI Label's main feature is the same loop (a model's labels as a starting point the annotator corrects); VinDr
Lab had none. Suggestions bias readers (an accepted box is anchored on the model's), so they are **off by
default**: an admin turns them on per project (``cxrlab annotate assign --suggest RUN/``, ``cxrlab annotate suggest``
or the project's admin page), and every box accepted from a suggestion records it (``source = "suggestion"``,
the model's SHA-256 and the score: :class:`cxrlab.annotate.marks.Box`), in the audit events and the project's
JSON export, so a study can measure the bias. Blinding still holds: a suggestion is the model's, never another
reader's.

Predictions are made once per image and model (the ``suggestions`` table is keyed by image and the model's
SHA-256), with onnxruntime (:class:`~cxrlab.models.predict.DetectorModel`: the image rendered as in training),
never in a request: ``cxrlab annotate assign --suggest`` predicts the project's images after assigning them, and
the web server's :class:`SuggestionWorker` (a thread) predicts the rest, first the images a viewer asked for;
the API answers ``pending`` until an image's boxes are stored.

Importing this module imports neither torch nor onnxruntime (the detector is loaded when used).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cxrlab.annotate.images import deid_file
from cxrlab.annotate.projects import project_schema
from cxrlab.annotate.readings import MIN_BOX_PX
from cxrlab.annotate.tasks import get_task
from cxrlab.annotate.writes import insert_events, transaction
from cxrlab.catalog.models import Image, Project, Suggestion, Task, TaskKind, User
from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError, NotFoundError
from cxrlab.runtime.report import StageReport

__all__ = ["MAX_SUGGESTIONS", "MIN_SUGGESTION_SCORE", "SuggestionWorker", "TaskSuggestions", "check_suggest_run",
           "predict_suggestions", "set_suggest_run", "suggestion_counts", "task_suggestions"]

log = logging.getLogger(__name__)

#: The boxes stored per image: the detector's best, at most this many, each of at least this score (the
#: detector's own floor, :data:`cxrlab.models.predict.MIN_SCORE`, keeps up to 100 faint boxes: too many to read).
MAX_SUGGESTIONS, MIN_SUGGESTION_SCORE = 10, 0.05
#: Score decimals stored.
_DECIMALS = 4


def check_suggest_run(run: str | os.PathLike[str], project: Project, *, threads: int = 1) -> Any:
    """Load the detector run *run* for *project*, or refuse it with a message naming the folder and the reason.

    The run must be a detector run (``cxrlab train detector``: ``model.onnx`` + ``model.json`` of format
    ``cxrlab-detector/1``, its SHA-256 and shapes checked) and each of its classes must be a local label of the
    project's schema (classes are matched by name: a suggestion becomes a box of that label).

    Returns
    -------
    DetectorModel
        The loaded model (``sha256``, ``classes``).

    Raises
    ------
    CxrlabError
        No such folder, not a detector run, a refused model, or a class outside the project's local labels.
    """
    from cxrlab.models.predict import DetectorModel

    path = Path(run)
    try:
        folder = path.is_dir()
    except (OSError, ValueError):  # a name the system refuses (e.g. a NUL byte)
        folder = False
    if not folder:
        raise CxrlabError(f"{path}: no such run folder (a folder of `cxrlab train detector`)")
    model = DetectorModel(path, threads=threads)
    schema = project_schema(project)
    local = {lb.name for lb in schema.local}
    strange = [c for c in model.classes if c not in local]
    if strange:
        raise CxrlabError(f"{path}: refused for project {project.name!r}: class(es) {', '.join(map(repr, strange))} "
                          f"of the detector are not local labels of its schema {schema.name}")
    return model


def set_suggest_run(
    session: Session, *, project: Project, run: str | os.PathLike[str] | None, author: str = "cli", model: Any = None
) -> Project:
    """Turn model suggestions on for *project* with the detector run *run* (checked by
    :func:`check_suggest_run`, unless its loaded *model* is given), or off (``run=None``). A ``project.suggest``
    event names *author*, the run folder and the model's SHA-256.

    Raises
    ------
    CxrlabError
        As :func:`check_suggest_run`.
    """
    if run is None:
        path, sha = None, None
    else:
        model = model if model is not None else check_suggest_run(run, project)
        path, sha = str(Path(run).resolve()), model.sha256
    with transaction(session):
        project.suggest_run, project.suggest_model_sha256 = path, sha
        insert_events(session, [{"image_pk": None, "stage": "admin", "action": "project.suggest", "author": author,
                                 "detail": {"project": project.name, "run": path, "model": sha}}])
    return project


def _missing(project: Project):  # noqa: ANN202 - a SQL expression
    """Images of *project* without stored boxes of its current model."""
    done = exists().where(Suggestion.image_pk == Image.id, Suggestion.model_sha256 == project.suggest_model_sha256)
    mine = select(Task.image_pk).where(Task.project_id == project.id).scalar_subquery()
    return Image.id.in_(mine) & ~done


def suggestion_counts(session: Session, *, project: Project) -> dict[str, int]:
    """``{"images", "predicted", "failed", "pending"}`` of *project*'s images for its current model (all 0 when
    suggestions are off)."""
    mine = select(Task.image_pk).where(Task.project_id == project.id).distinct()
    images = len(session.scalars(mine).all())
    if not project.suggest_model_sha256:
        return {"images": images, "predicted": 0, "failed": 0, "pending": 0}
    rows = session.execute(select(Suggestion.error).where(Suggestion.image_pk.in_(mine),
                                                          Suggestion.model_sha256 == project.suggest_model_sha256))
    errors = [e for (e,) in rows]
    failed = sum(e is not None for e in errors)
    return {"images": images, "predicted": len(errors) - failed, "failed": failed, "pending": images - len(errors)}


def _boxes(model: Any, path: Path) -> list[dict[str, Any]]:
    """The stored form of the detector's boxes on *path* (:data:`MAX_SUGGESTIONS` best of score >=
    :data:`MIN_SUGGESTION_SCORE` and at least :data:`~cxrlab.annotate.readings.MIN_BOX_PX` wide and high, original
    pixels rounded to 0.1)."""
    # a box the QC rules would refuse (narrower than MIN_BOX_PX) could not be accepted: not offered
    found = [d for d in model.detect(path)
             if d[1] >= MIN_SUGGESTION_SCORE and min(d[4] - d[2], d[5] - d[3]) >= MIN_BOX_PX][:MAX_SUGGESTIONS]
    return [{"class_name": model.classes[c], "score": round(score, _DECIMALS), "x_min": round(x0, 1),
             "y_min": round(y0, 1), "x_max": round(x1, 1), "y_max": round(y1, 1)}
            for c, score, x0, y0, x1, y1 in found]


def predict_suggestions(
    session: Session,
    workspace: Workspace,
    *,
    project: Project,
    model: Any = None,
    first: list[int] | None = None,
    limit: int | None = None,
    stop: Callable[[], bool] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> StageReport:
    """Predict and store the boxes of *project*'s images that have none for its current model yet.

    Each image is predicted once per model: images with a stored row (boxes, or the error that kept them from
    being predicted) are passed over, and a row another process stored meanwhile wins (the unique key). Each
    image is stored in its own short write transaction, after the prediction (nothing slow under the lock).

    Parameters
    ----------
    model : DetectorModel, optional
        The project's loaded detector (default: loaded from ``project.suggest_run``).
    first : list of int, optional
        Image primary keys to predict before the others (the ones a viewer asked for).
    limit : int, optional
        Predict at most this many images.
    stop : callable, optional
        Checked between images: True ends the pass.

    Returns
    -------
    StageReport
        Counts ``predicted``, ``failed`` (unreadable images; the reason names the image id) and ``boxes``.

    Raises
    ------
    CxrlabError
        Suggestions are off for *project*, the run was refused, or its model is not the one set (the run's
        ``model.onnx`` changed since: set the run again).
    """
    t0 = time.perf_counter()
    report = StageReport("suggest")
    if not project.suggest_run or not project.suggest_model_sha256:
        raise CxrlabError(f"project {project.name!r} has no model suggestions (set a detector run first)")
    if model is None:
        model = check_suggest_run(project.suggest_run, project)
    if model.sha256 != project.suggest_model_sha256:
        raise CxrlabError(f"{project.suggest_run}: its model.onnx changed since it was set for project "
                          f"{project.name!r}; set the run again")
    todo = list(session.execute(select(Image.id, Image.image_id, Image.deid_path).where(_missing(project))
                                .order_by(Image.id)))
    if first:
        ahead = set(first)
        todo.sort(key=lambda r: r[0] not in ahead)  # stable: the asked-for images first, then by id
    if limit is not None:
        todo = todo[:limit]
    for done, (pk, image_id, deid_path) in enumerate(todo, start=1):
        if stop is not None and stop():
            report.notes.append("stopped")
            break
        t1 = time.perf_counter()
        boxes: list[dict[str, Any]] = []
        error = None
        try:
            boxes = _boxes(model, deid_file(workspace, Image(image_id=image_id, deid_path=deid_path)))
        except (CxrlabError, OSError, ValueError) as exc:  # FileError and NotFoundError are CxrlabErrors
            error = f"image {image_id}: cannot be read ({type(exc).__name__})"
            report.problems.append((image_id or str(pk), type(exc).__name__))
        try:
            with transaction(session):
                session.add(Suggestion(image_pk=pk, model_sha256=model.sha256, boxes=boxes, error=error,
                                       seconds=round(time.perf_counter() - t1, 4)))
        except IntegrityError:  # another process stored it first: it stays the one row
            report.counts["already"] += 1
            continue
        report.counts["failed" if error else "predicted"] += 1
        report.counts["boxes"] += len(boxes)
        if on_progress:
            on_progress(done, len(todo))
    report.seconds = time.perf_counter() - t0
    return report


@dataclass
class TaskSuggestions:
    """What the viewer gets for one read task: ``status`` ``pending`` (not predicted yet), ``ready`` (``boxes``)
    or ``failed``; the model's SHA-256; and the image's primary key (for the worker, never sent)."""

    status: str
    model: str
    boxes: list[dict[str, Any]]
    image_pk: int


def task_suggestions(session: Session, *, user: User, task_id: int) -> TaskSuggestions:
    """The model's suggestions on the image of *user*'s own read task *task_id*.

    Blinding: only the caller's own read task is found (anyone else's is "not found"), and only the model's
    boxes are returned, never a reader's. Review tasks get none (reviewers settle readers' marks; a model's
    boxes there would be a fourth, unrecorded reader). Gold-standard tasks get them like any task, or the reader
    could tell one apart.

    Raises
    ------
    NotFoundError
        Not the caller's read task, or the task's project has no model suggestions.
    """
    view = get_task(session, user=user, task_id=task_id, kind=TaskKind.READ)
    model = view.project.suggest_model_sha256
    if not model:
        raise NotFoundError(f"project {view.project.name!r} has no model suggestions")
    row = session.execute(select(Suggestion.boxes, Suggestion.error).where(
        Suggestion.image_pk == view.task.image_pk, Suggestion.model_sha256 == model)).first()
    if row is None:
        return TaskSuggestions("pending", model, [], view.task.image_pk)
    boxes, error = row
    return TaskSuggestions("failed" if error else "ready", model, list(boxes or []), view.task.image_pk)


class SuggestionWorker:
    """Background predictions for one server process: a thread that predicts the images of every project with
    suggestions on, first the images viewers asked for (:meth:`notify`), one image at a time, outside requests.

    A detector is loaded once per run and model (one onnxruntime thread). A run that cannot be loaded, or whose
    model changed since it was set, is logged once and skipped until the setting changes.

    Parameters
    ----------
    workspace : Workspace
    poll_seconds : float
        Longest sleep between two looks for projects with images left to predict when nobody calls
        :meth:`notify` (a project turned on by another process waits at most this long).
    """

    def __init__(self, workspace: Workspace, *, poll_seconds: float = 30.0) -> None:
        self.workspace = workspace
        self.poll_seconds = poll_seconds
        self._wake: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        self._asked: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._models: dict[tuple[str, str], Any] = {}
        self._refused: dict[tuple[str, str], str] = {}

    def start(self) -> None:
        """Start the thread (its first pass predicts what is waiting)."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="cxrlab-suggestions", daemon=True)
            self._thread.start()

    def notify(self, image_pk: int | None = None) -> None:
        """Wake the thread: a viewer asked for image *image_pk* (predicted first), or a setting changed."""
        self._wake.put(image_pk)

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the image being predicted (if any) and wait for the thread."""
        if self._thread is not None:
            self._stop.set()
            self._wake.put(None)
            self._thread.join(timeout)
            self._thread = None

    def _model(self, project: Project) -> Any:
        key = (project.suggest_run or "", project.suggest_model_sha256 or "")
        if key in self._refused:
            return None
        if key not in self._models:
            try:
                model = check_suggest_run(key[0], project)
                if model.sha256 != key[1]:
                    raise CxrlabError(f"{key[0]}: its model.onnx changed since it was set; set the run again")
            except (CxrlabError, ImportError) as exc:
                self._refused[key] = str(exc)
                log.warning("model suggestions of project %r are unavailable: %s", project.name, exc)
                return None
            self._models[key] = model
        return self._models[key]

    def run_once(self) -> int:
        """Predict every image waiting in every project with suggestions on, the asked-for images first; returns
        how many were stored. A new request ends the pass early (the next pass starts with it)."""
        first, self._asked = sorted(self._asked), set()
        stored = 0
        with self.workspace.sessions() as session:
            on = list(session.scalars(select(Project).where(Project.suggest_model_sha256.is_not(None))
                                      .order_by(Project.id)))
            for project in on:
                if self._interrupted():
                    break
                model = self._model(project)
                if model is None:
                    continue
                report = predict_suggestions(session, self.workspace, project=project, model=model, first=first,
                                             stop=self._interrupted)
                stored += report.counts["predicted"] + report.counts["failed"]
        return stored

    def _interrupted(self) -> bool:
        """Between two images: True on shutdown, or when a viewer asked for an image meanwhile."""
        self._drain()
        return self._stop.is_set() or bool(self._asked)

    def _drain(self) -> bool:
        """Take in every wake-up; True when there was one."""
        woke = False
        while True:
            try:
                pk = self._wake.get_nowait()
            except queue.Empty:
                return woke
            woke = True
            if pk is not None:
                self._asked.add(pk)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001 - a database hiccup must not end the thread; retried on the next wake
                log.exception("suggestion worker pass failed")
            if self._drain() or self._asked:
                continue  # asked meanwhile: another pass at once
            try:
                pk = self._wake.get(timeout=self.poll_seconds)
            except queue.Empty:
                continue
            if pk is not None:
                self._asked.add(pk)
