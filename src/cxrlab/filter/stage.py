"""The filter stage (``cxrlab filter run``): ``deidentified`` -> ``accepted``, ``filtered_out`` or
``needs_verification``.

Header rules first (:func:`cxrlab.filter.rules.check_header`, catalog columns only); the images they keep then go
to the model when one is given (:class:`cxrlab.filter.model.FilterModel`, run in the executor's workers: decode,
render, network), which decides each one (:func:`cxrlab.filter.model.decide`). From the same decode each worker
writes the image's triage thumbnail, ``thumbs/<image_id>.jpg`` (:mod:`cxrlab.dicom.thumbnail`), so that the
grid triage page never decodes a full-size file again. A seeded random sample of the
images the model accepts (:data:`DEFAULT_AUDIT_FRACTION`) waits for verification too, so that what the model
misses can be estimated (VinDr-CXR data descriptor, "Data filtering": readers verify case by case and remove what
the algorithm missed).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cxrlab.catalog.models import Event, FilterScore, Image, ImageState
from cxrlab.catalog.workspace import Workspace
from cxrlab.dicom.io import read_dataset, read_pixels
from cxrlab.dicom.thumbnail import THUMB_FOLDER, render_thumbnail, thumbnail_path, write_thumbnail
from cxrlab.errors import FileError
from cxrlab.filter.classes import AUDIT
from cxrlab.filter.model import DEFAULT_THRESHOLD, FilterModel, Prediction, decide
from cxrlab.filter.render import IMAGE_SUFFIXES, input_from_dataset, load_input
from cxrlab.filter.rules import FilterRules, check_header
from cxrlab.runtime.executor import Executor, batches
from cxrlab.runtime.files import remove_stale_temporaries
from cxrlab.runtime.report import ProgressCallback, StageReport

__all__ = ["DEFAULT_AUDIT_FRACTION", "audit_draw", "run_filter", "score_and_thumb", "score_file", "workspace_model"]

#: Fraction of the images the model accepts that are drawn for verification anyway (the audit sample).
DEFAULT_AUDIT_FRACTION = 0.02
#: Images per catalog transaction.
BATCH = 64

#: Models loaded in this process (a worker loads each model once), by path, modification time and size: a model
#: replaced at the same path is loaded again.
_MODELS: dict[tuple[str, int, int], FilterModel] = {}


def workspace_model(ws: Workspace) -> Path | None:
    """The workspace's own model, ``models/filter.onnx``, when it exists."""
    path = ws.path("models", "filter.onnx")
    return path if path.is_file() else None


def audit_draw(image_id: str, seed: int = 0) -> float:
    """A uniform number in [0, 1) fixed by the image id and *seed*: the same image is drawn on every run and in
    any order (SHA-256 of ``"<seed>:<image_id>"``)."""
    digest = hashlib.sha256(f"{seed}:{image_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def _model(path: str, threads: int) -> FilterModel:
    st = Path(path).stat()
    key = (path, st.st_mtime_ns, st.st_size)
    model = _MODELS.get(key)
    if model is None:
        _MODELS.clear()
        model = _MODELS[key] = FilterModel(path, threads=threads)
    return model


def score_file(path: str | Path, model_path: str | Path, threads: int = 1) -> Prediction | str:
    """Worker: the model's :class:`Prediction` for one file, or the PHI-free reason it could not be read.

    The model is loaded once per process. Never raises for a bad image file (one bad file never stops a batch).
    """
    model = _model(str(model_path), threads)
    try:
        return model.predict(load_input(path))
    except FileError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return f"could not be rendered for the model ({type(exc).__name__})"


def score_and_thumb(
    item: tuple[str | Path, str | Path | None], model_path: str | Path, threads: int = 1
) -> tuple[Prediction | str, bool]:
    """Worker: :func:`score_file` of ``item[0]``, and its thumbnail written to ``item[1]`` from the same decode.

    Returns ``(prediction or reason, thumbnail written)``. A DICOM file is read and decoded once, for both the
    model's input and the thumbnail (:func:`cxrlab.dicom.thumbnail.render_thumbnail`); a PNG, or no thumbnail
    path, is :func:`score_file` alone. A thumbnail that cannot be rendered or written is only missing (the triage
    page renders it when asked); it never changes the decision. Never raises for a bad image file.
    """
    path, thumb = Path(item[0]), item[1]
    if thumb is None or path.suffix.lower() in IMAGE_SUFFIXES:
        return score_file(path, model_path, threads), False
    model = _model(str(model_path), threads)
    try:
        ds = read_dataset(path)
        prediction = model.predict(input_from_dataset(ds, path=path))  # decodes; pydicom keeps the pixels
    except FileError as exc:
        return exc.reason, False
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return f"could not be rendered for the model ({type(exc).__name__})", False
    try:
        write_thumbnail(thumb, render_thumbnail(read_pixels(ds, path=path), ds))
        written = True
    except Exception:  # noqa: BLE001 - a missing thumbnail is rendered on demand; the decision stands
        written = False
    return prediction, written


def run_filter(
    ws: Workspace,
    *,
    rules: FilterRules | None = None,
    model: str | Path | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    audit_fraction: float = DEFAULT_AUDIT_FRACTION,
    audit_seed: int = 0,
    executor: Executor | None = None,
    on_progress: ProgressCallback | None = None,
) -> StageReport:
    """Decide every ``deidentified`` image; idempotent and resumable (decided images are not revisited).

    Parameters
    ----------
    ws : Workspace
        The workspace.
    rules : FilterRules, optional
        Header rules (default: the workspace population).
    model : path, optional
        A filter model (``.onnx`` with its sidecar). Without one, the images the header rules keep are accepted.
    threshold : float, optional
        Confidence the model needs to decide alone (:func:`cxrlab.filter.model.decide`).
    audit_fraction : float, optional
        Fraction of the model's accepted images sent to verification anyway (0 turns the audit off).
    audit_seed : int, optional
        Seed of the audit draw (:func:`audit_draw`).
    executor : Executor, optional
        Workers for decode, render and model (default: every core). Each worker runs onnxruntime on one thread.
    on_progress : callable, optional
        ``on_progress(done, total)``.

    Returns
    -------
    StageReport
        Counts per decision (``audit`` counts the sampled images among ``needs_verification``).

    Raises
    ------
    ModelError
        The model cannot be used (checked before any image changes).
    """
    t0 = time.perf_counter()
    if not 0.0 <= audit_fraction <= 1.0:
        raise ValueError("audit_fraction must be in [0, 1]")
    rules = rules or FilterRules(population=ws.settings.population)
    loaded = FilterModel(model) if model is not None else None
    report = StageReport("filter")
    to_score: list[tuple[int, str, str, bool]] = []
    with ws.transaction() as session:
        images = session.scalars(
            select(Image).where(Image.state == ImageState.DEIDENTIFIED).order_by(Image.id)
        ).all()
        if not images:
            report.notes.append("no de-identified image is waiting for the filter")
        for n, img in enumerate(images, start=1):
            reason = check_header(modality=img.modality, body_part=img.body_part, view_position=img.view_position,
                                  age_years=img.age_years, rules=rules)
            if reason is None and loaded is not None and img.deid_path:
                to_score.append((img.id, img.image_id or str(img.id), img.deid_path, img.age_years is not None))
                continue
            img.state = ImageState.FILTERED_OUT if reason else ImageState.ACCEPTED
            img.state_reason = reason
            session.add(Event(image_pk=img.id, stage="filter", action=img.state.value,
                              detail={"reason": reason, "by": "header"}))
            report.counts[img.state.value] += 1
            if reason:
                report.problems.append((img.image_id or str(img.id), reason))
            if on_progress and loaded is None:
                on_progress(n, len(images))
    if loaded is not None:
        remove_stale_temporaries(ws.path(THUMB_FOLDER))  # of a killed run (never a thumbnail's name)
        report.notes.append(f"model {loaded.short_id} ({loaded.path.name}), threshold {threshold:g}, "
                            f"audit {audit_fraction:.1%}")
        _score(ws, loaded, to_score, report, executor or Executor(), population=rules.population, threshold=threshold,
               audit_fraction=audit_fraction, audit_seed=audit_seed, on_progress=on_progress)
    report.seconds = time.perf_counter() - t0
    return report


def _score(
    ws: Workspace,
    model: FilterModel,
    items: list[tuple[int, str, str, bool]],
    report: StageReport,
    executor: Executor,
    *,
    population: str,
    threshold: float,
    audit_fraction: float,
    audit_seed: int,
    on_progress: ProgressCallback | None,
) -> None:
    """Run the model over *items* in the executor and record each decision (one transaction per batch)."""
    folder = ws.path(THUMB_FOLDER)
    work = [(ws.root / rel, _thumb_for(folder, image_id)) for _, image_id, rel, _ in items]
    results = executor.map(score_and_thumb, work, str(model.path), 1, chunksize=2)
    pairs = ((item, res) for item, (_, res) in zip(items, results, strict=True))
    missing = 0
    for batch in batches(pairs, BATCH, total=len(items), on_progress=on_progress):
        with ws.transaction() as session:
            for (pk, image_id, _rel, age_known), (result, written) in batch:
                missing += not written
                _record(session, pk, image_id, age_known, result, model, report, population=population,
                        threshold=threshold, audit_fraction=audit_fraction, audit_seed=audit_seed)
    if missing:
        report.notes.append(f"{missing} triage thumbnail(s) not written (rendered when the triage page asks)")


def _thumb_for(folder: Path, image_id: str) -> Path | None:
    """Where the thumbnail of *image_id* goes, or None when the id cannot name a file (no thumbnail then)."""
    try:
        return thumbnail_path(folder, image_id)
    except ValueError:
        return None


def _record(
    session: Session,
    pk: int,
    image_id: str,
    age_known: bool,
    result: Prediction | str,
    model: FilterModel,
    report: StageReport,
    *,
    population: str,
    threshold: float,
    audit_fraction: float,
    audit_seed: int,
) -> None:
    img = session.get(Image, pk)
    if img is None or img.state != ImageState.DEIDENTIFIED:  # decided by someone else meanwhile
        return
    detail: dict[str, Any] = {"by": "model", "model": model.short_id}
    if isinstance(result, str):
        img.state, img.state_reason = ImageState.NEEDS_VERIFICATION, f"not readable by the model: {result}"
        report.problems.append((image_id, result))
        detail["reason"] = img.state_reason
        report.counts[img.state.value] += 1
        session.add(Event(image_pk=pk, stage="filter", action=img.state.value, detail=detail))
        return
    d = decide(result, population=population, threshold=threshold, header_age_known=age_known)
    state, reason, audit = ImageState(d.decision), d.reason, False
    if state == ImageState.ACCEPTED and audit_fraction > 0 and audit_draw(image_id, audit_seed) < audit_fraction:
        state, reason, audit = ImageState.NEEDS_VERIFICATION, AUDIT, True
        report.counts["audit"] += 1
    img.state, img.state_reason = state, reason
    probs = result.probabilities()
    score = session.scalars(select(FilterScore).where(FilterScore.image_pk == pk)).first() or FilterScore(image_pk=pk)
    score.model_sha256, score.klass, score.confidence = model.sha256, d.klass, d.confidence
    score.probabilities, score.decision, score.audit = probs, d.decision, audit
    session.add(score)
    detail.update({"reason": reason, "class": d.klass, "confidence": d.confidence, "audit": audit})
    session.add(Event(image_pk=pk, stage="filter", action=state.value, detail=detail))
    report.counts[state.value] += 1
