"""The filter model at inference: an ONNX file and its JSON sidecar, run with onnxruntime (no torch).

A model is two files: ``MODEL.onnx`` and ``MODEL.json`` beside it (:func:`sidecar_path`), written by
:mod:`cxrlab.filter.train`. Loading checks, in this order, that both files are readable, that the sidecar's
classes are cxrlab's (:data:`~cxrlab.filter.classes.VIEW_CLASSES`, :data:`~cxrlab.filter.classes.AGE_CLASSES`),
that the ONNX file's SHA-256 is the sidecar's, that onnxruntime accepts it, and that its inputs and outputs have
the sidecar's shapes. Anything else is refused with one line (:class:`~cxrlab.filter.exceptions.ModelError`).

Inference is deterministic: no test-time augmentation (the seeds' public code used random TTA, so its decisions
changed between runs), one image per run of the network (an image's output never depends on what else is in a
batch), fixed onnxruntime thread counts (``intra_op_num_threads``, ``inter_op_num_threads = 1``, sequential
execution) and ``use_deterministic_compute``. The same file gives the same probabilities on every run.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.filter.classes import AGE_CLASSES, VIEW_CLASSES, population_outlier
from cxrlab.filter.exceptions import ModelError
from cxrlab.filter.render import CHANNELS, INPUT_SIZE
from cxrlab.runtime.onnx import deterministic_session, load_checked, sidecar_path

__all__ = [
    "DEFAULT_THRESHOLD",
    "MODEL_FORMAT",
    "ML_HINT",
    "FilterModel",
    "Prediction",
    "decide",
    "is_available",
    "sidecar_path",
]

#: ``format`` of the sidecar.
MODEL_FORMAT = "cxrlab-filter-model/1"
#: Confidence a decision needs; below it the image waits for a human (``needs_verification``).
DEFAULT_THRESHOLD = 0.8
#: What to install for inference (onnxruntime) and training (torch, onnx).
ML_HINT = "the filter model needs the ML extra: pip install 'cxrlab[ml]'"
#: Decimal places kept of every probability (outputs are formatted from the rounded values).
PROB_DECIMALS = 6


def is_available() -> bool:
    """Whether onnxruntime (inference) can be imported, without importing it."""
    return importlib.util.find_spec("onnxruntime") is not None


@dataclass(frozen=True)
class Prediction:
    """The model's output for one image.

    Attributes
    ----------
    view : tuple of float
        Probabilities of :data:`VIEW_CLASSES` (sum 1).
    pediatric : float
        Probability that the patient is a child (younger than 10 years, VinDr-PCXR).
    """

    view: tuple[float, ...]
    pediatric: float

    def probabilities(self) -> dict[str, float]:
        """One probability per class name: the view classes, then ``pediatric``."""
        return {**dict(zip(VIEW_CLASSES, self.view, strict=True)), "pediatric": self.pediatric}


@dataclass(frozen=True)
class Decision:
    """What the filter does with one image.

    Attributes
    ----------
    klass : str
        ``frontal_chest`` or one of :data:`~cxrlab.filter.classes.OUTLIER_CLASSES`.
    confidence : float
        The class's score (see :func:`decide`).
    decision : str
        ``accepted``, ``filtered_out`` or ``needs_verification``.
    reason : str or None
        The class for ``filtered_out``; why a human must look for ``needs_verification``.
    """

    klass: str
    confidence: float
    decision: str
    reason: str | None


def decide(
    pred: Prediction,
    *,
    population: str = "adult",
    threshold: float = DEFAULT_THRESHOLD,
    header_age_known: bool = False,
) -> Decision:
    """Turn a :class:`Prediction` into a class and a decision.

    The scores of ``frontal_chest`` (of the right age group), ``lateral``, ``other_body_part``, ``low_quality``
    and the age group that is wrong for *population* (``pediatric`` in an adult set, ``adult`` in a pediatric one,
    VinDr-PCXR "Data filtering") sum to 1: a frontal chest's probability is split by the age head. The class is the
    highest score (ties go to the earlier class). Below *threshold* the image ``needs_verification``; a confident
    frontal chest is ``accepted``; a confident outlier is ``filtered_out`` with the class as reason, except that a
    wrong age group is only sent to verification when the header gave an age (the header rules already kept it,
    and the model's age estimate is weaker evidence than (0010,1010) *Patient's Age*).

    Parameters
    ----------
    pred : Prediction
        The model output.
    population : {"adult", "pediatric", "any"}
        The workspace population.
    threshold : float
        Confidence needed for an automatic decision, in (0, 1].
    header_age_known : bool
        Whether the header gave the patient's age.

    Returns
    -------
    Decision
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    wrong = population_outlier(population)
    p_wrong = 0.0
    if wrong == "pediatric":
        p_wrong = pred.pediatric
    elif wrong == "adult":
        p_wrong = 1.0 - pred.pediatric
    frontal = pred.view[0]
    scores = {"frontal_chest": frontal * (1.0 - p_wrong)}
    scores.update(zip(VIEW_CLASSES[1:], pred.view[1:], strict=True))
    if wrong is not None:
        scores[wrong] = frontal * p_wrong
    klass = max(scores, key=lambda k: scores[k])  # dicts keep order: ties go to the earlier class
    conf = round(float(scores[klass]), PROB_DECIMALS)
    if conf < threshold:
        return Decision(klass, conf, "needs_verification", f"uncertain: {klass} {conf:.2f}")
    if klass == "frontal_chest":
        return Decision(klass, conf, "accepted", None)
    if klass == wrong and header_age_known:
        return Decision(klass, conf, "needs_verification", f"model says {klass}; the header age does not")
    return Decision(klass, conf, "filtered_out", klass)


def _refuse(path: Path, why: str) -> ModelError:
    return ModelError(f"{path}: {why}")


def _check_sidecar(path: Path, meta: dict[str, Any]) -> dict[str, Any]:
    if list(meta.get("classes") or []) != list(VIEW_CLASSES) or list(meta.get("age_classes") or []) != list(
        AGE_CLASSES
    ):
        raise _refuse(
            path,
            "refused: the model's classes do not match cxrlab's "
            f"({', '.join(VIEW_CLASSES)}; age {', '.join(AGE_CLASSES)})",
        )
    inp = meta.get("input") or {}
    if inp.get("size") != INPUT_SIZE or list(inp.get("channels") or []) != list(CHANNELS):
        raise _refuse(path, f"refused: the model expects another input than {INPUT_SIZE} px {' + '.join(CHANNELS)}")
    return meta


class FilterModel:
    """A loaded, checked filter model.

    Parameters
    ----------
    path : str or pathlib.Path
        The ``.onnx`` file (its sidecar beside it).
    threads : int, optional
        onnxruntime intra-op threads (inter-op is always 1). Keep 1 in worker processes.

    Raises
    ------
    ModelError
        Missing, corrupt or mismatched files (one line, naming the file).
    ImportError
        onnxruntime is not installed (:data:`ML_HINT`).
    """

    def __init__(self, path: str | Path, *, threads: int = 1) -> None:
        self.path = Path(path)
        data, meta, self.sha256 = load_checked(self.path, fmt=MODEL_FORMAT, what="a filter model", refuse=_refuse)
        self.meta = _check_sidecar(self.path, meta)
        self._session = deterministic_session(data, threads=threads, path=self.path, refuse=_refuse, hint=ML_HINT)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        shapes_ok = (
            len(inputs) == 1
            and list(inputs[0].shape[1:]) == [len(CHANNELS), INPUT_SIZE, INPUT_SIZE]
            and [o.name for o in outputs] == ["view", "pediatric"]
            and outputs[0].shape[-1] == len(VIEW_CLASSES)
        )
        if not shapes_ok:
            raise _refuse(self.path, "refused: its inputs or outputs do not match the classes of its sidecar")
        self._input = inputs[0].name
        self.threads = int(threads)

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the ONNX file's SHA-256 (how events and reports name the model)."""
        return self.sha256[:12]

    def predict(self, x: np.ndarray) -> Prediction:
        """Run the network on one input (:func:`cxrlab.filter.render.load_input`).

        Parameters
        ----------
        x : numpy.ndarray
            float32 ``(2, INPUT_SIZE, INPUT_SIZE)``.

        Returns
        -------
        Prediction
            Probabilities rounded to :data:`PROB_DECIMALS` places.
        """
        batch = np.ascontiguousarray(x, dtype=np.float32)[None]
        view, ped = self._session.run(None, {self._input: batch})
        v = tuple(round(float(p), PROB_DECIMALS) for p in np.asarray(view).reshape(-1))
        p = float(np.asarray(ped).reshape(-1)[0])
        if not all(math.isfinite(a) for a in (*v, p)):
            raise ModelError(f"{self.path}: the model returned a non-finite probability")
        return Prediction(v, round(p, PROB_DECIMALS))

    def predict_batch(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the network on a batch ``(N, 2, S, S)`` at once (throughput measurements; not used for decisions,
        whose outputs must not depend on the batch)."""
        view, ped = self._session.run(None, {self._input: np.ascontiguousarray(x, dtype=np.float32)})
        return np.asarray(view), np.asarray(ped).reshape(-1)
