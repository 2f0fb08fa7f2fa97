"""Training the filter model (plain torch, the ``[ml]`` extra) and saving it as ONNX + JSON sidecar.

Two sources of examples:

* :func:`train_on_phantoms` -- a bootstrap model from generated phantoms (:mod:`cxrlab.dicom.phantom`, which plants
  the outliers the seeds filter: lateral views, other body parts, children, low-quality films), so that a new site
  and the demo have a model before anyone verified anything. Phantoms are drawings, not radiographs: such a model
  learns the phantoms' shapes and is no evidence about real films (the filter guide gives its figures on real
  images).
* :func:`train_on_workspace` -- the workspace's human decisions (:func:`cxrlab.filter.verify.training_decisions`).

Torch is imported only inside these functions. The ONNX file and its sidecar are each written atomically
(:func:`cxrlab.runtime.files.atomic_write_bytes`); the sidecar records the classes, the input, the training data
counts, the validation metrics, the versions and the ONNX file's SHA-256 (:mod:`cxrlab.filter.model` checks it).
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.catalog.workspace import Workspace
from cxrlab.errors import CxrlabError, FileError
from cxrlab.filter.classes import AGE_CLASSES, VIEW_CLASSES
from cxrlab.filter.exceptions import NoTrainingDataError
from cxrlab.filter.model import MODEL_FORMAT
from cxrlab.filter.render import CHANNELS, INPUT_SIZE, input_from_dataset, load_input
from cxrlab.runtime.executor import Executor, default_workers
from cxrlab.runtime.onnx import export_onnx

__all__ = [
    "DEFAULT_EPOCHS",
    "PHANTOM_CLASSES",
    "PHANTOM_SIZE_RANGE",
    "TRAIN_HINT",
    "is_available",
    "labels_for",
    "phantom_examples",
    "train_on_phantoms",
    "train_on_workspace",
]

#: What to install for training.
TRAIN_HINT = "training the filter model needs the ML extra (torch, onnx): pip install 'cxrlab[ml]'"
#: Epochs when none are given.
DEFAULT_EPOCHS = 8
#: Side lengths of the phantoms drawn for training (the model sees 256 px; bigger phantoms only cost time).
PHANTOM_SIZE_RANGE = (320, 768)
#: The phantom outlier of each example, cycling with its index: a third adult frontal chests, a sixth of each
#: outlier (``None`` is an adult frontal chest).
PHANTOM_CLASSES: tuple[str | None, ...] = (None, "lateral", None, "other_body_part", "pediatric", "low_quality")
#: Every this-many-th example (by index) is held out for validation.
VAL_EVERY = 5
#: Examples per optimisation step.
BATCH_SIZE = 32

Progress = Callable[[int, int], None]


def is_available() -> bool:
    """Whether training can run: torch, onnx (the exporter) and onnxruntime are installed (nothing is imported)."""
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("torch", "onnx", "onnxruntime"))


def labels_for(klass: str, population: str) -> tuple[int, float]:
    """The (view index, age target) of a class; the age target is -1 when the example says nothing about age.

    Parameters
    ----------
    klass : str
        ``frontal_chest`` (a frontal chest of *population*), a view class, ``pediatric`` or ``adult`` (a frontal
        chest of that age group).
    population : {"adult", "pediatric", "any"}
        Who ``frontal_chest`` examples are.

    Returns
    -------
    (int, float)
        Index into :data:`VIEW_CLASSES` and 1.0 (pediatric), 0.0 (adult) or -1.0 (unknown).
    """
    if klass == "pediatric":
        return 0, 1.0
    if klass == "adult":
        return 0, 0.0
    if klass == "frontal_chest":
        return 0, {"adult": 0.0, "pediatric": 1.0}.get(population, -1.0)
    return VIEW_CLASSES.index(klass), -1.0


def _phantom_item(item: tuple[int, int], size_range: tuple[int, int]) -> np.ndarray:
    """Worker: draw phantom *index* of *seed* and return the model's input for it."""
    from cxrlab.dicom.phantom import generate_phantom

    seed, index = item
    outlier = PHANTOM_CLASSES[index % len(PHANTOM_CLASSES)]
    ds, _ = generate_phantom(np.random.default_rng([seed, index]), index, size_range=size_range, outlier=outlier)
    return input_from_dataset(ds)


def phantom_examples(
    n: int,
    *,
    seed: int = 0,
    size_range: tuple[int, int] = PHANTOM_SIZE_RANGE,
    executor: Executor | None = None,
    on_progress: Progress | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Draw *n* phantoms (:data:`PHANTOM_CLASSES` in turn) and render them for the model.

    Parameters
    ----------
    n : int
        Number of phantoms.
    seed : int, optional
        Phantom ``index`` of *seed* is drawn from ``numpy.random.default_rng([seed, index])``: a held-out seed gives
        other phantoms.
    size_range : (int, int), optional
        Phantom side lengths.
    executor : Executor, optional
        Where the phantoms are drawn (default: every core).
    on_progress : callable, optional
        ``on_progress(done, n)``.

    Returns
    -------
    (numpy.ndarray, list of str)
        Inputs ``(n, 2, 256, 256)`` and each one's class (``frontal_chest``, ``lateral``, ``other_body_part``,
        ``low_quality`` or ``pediatric``).
    """
    if n < 1:
        raise ValueError("the number of phantoms must be >= 1")
    executor = executor or Executor()
    x = np.empty((n, len(CHANNELS), INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for done, ((_, i), arr) in enumerate(
        executor.map(_phantom_item, [(seed, i) for i in range(n)], tuple(size_range), chunksize=4), start=1
    ):
        x[i] = arr
        if on_progress:
            on_progress(done, n)
    classes = [PHANTOM_CLASSES[i % len(PHANTOM_CLASSES)] or "frontal_chest" for i in range(n)]
    return x, classes


def _torch():  # noqa: ANN202 - the torch module
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{TRAIN_HINT} ({exc})") from exc
    return torch


def _augment(torch, xb, gen):  # noqa: ANN001, ANN202 - torch tensors
    """Random horizontal flips, a gamma per image and a shift of up to 8 px (training only)."""
    n = xb.shape[0]
    flip = torch.rand(n, generator=gen) < 0.5
    xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
    gamma = torch.exp((torch.rand(n, generator=gen) - 0.5) * 0.6)
    xb = xb.clamp(0, 1) ** gamma[:, None, None, None]
    dy, dx = (int(v) for v in torch.randint(-8, 9, (2,), generator=gen))
    return torch.roll(xb, shifts=(dy, dx), dims=(2, 3))


def _fit(
    x: np.ndarray,
    view: np.ndarray,
    age: np.ndarray,
    *,
    epochs: int,
    seed: int,
    width: str,
    threads: int,
    on_progress: Progress | None,
) -> tuple[Any, dict[str, Any]]:
    """Train the network; return it (eval mode) and the validation metrics."""
    torch = _torch()
    from cxrlab.filter.network import WIDTHS, CxrFilterNet

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    idx = np.arange(len(x))
    val = idx[idx % VAL_EVERY == VAL_EVERY - 1] if len(x) >= 2 * VAL_EVERY else idx[:0]
    train = np.setdiff1d(idx, val)
    xt, vt, at = torch.from_numpy(x), torch.from_numpy(view), torch.from_numpy(age)
    net = CxrFilterNet(len(VIEW_CLASSES), WIDTHS[width])
    steps_per_epoch = max(1, -(-len(train) // BATCH_SIZE))
    total = epochs * steps_per_epoch
    opt = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=total, pct_start=0.2)
    counts = np.bincount(view[train], minlength=len(VIEW_CLASSES)).astype(np.float32)
    weights = torch.from_numpy(counts.sum() / np.maximum(counts, 1.0) / len(VIEW_CLASSES))
    step = 0
    net.train()
    for _ in range(epochs):
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        for b in range(0, len(order), BATCH_SIZE):
            sel = torch.from_numpy(order[b : b + BATCH_SIZE])
            if len(sel) < 2:  # batch norm needs two examples
                continue
            xb = _augment(torch, xt[sel], gen)
            out_view, out_age = net(xb)
            loss = torch.nn.functional.cross_entropy(out_view, vt[sel], weight=weights)
            known = at[sel] >= 0
            if bool(known.any()):
                loss = loss + torch.nn.functional.binary_cross_entropy_with_logits(out_age[known], at[sel][known])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            if on_progress:
                on_progress(step, total)
    net.eval()
    metrics: dict[str, Any] = {"validation_examples": int(len(val))}
    if len(val):
        with torch.no_grad():
            pv, pa = [], []
            for b in range(0, len(val), 64):
                o_v, o_a = net(xt[torch.from_numpy(val[b : b + 64])])
                pv.append(o_v.argmax(1).numpy())
                pa.append(torch.sigmoid(o_a).numpy())
        pred, p_age = np.concatenate(pv), np.concatenate(pa)
        k = len(VIEW_CLASSES)
        cm = np.zeros((k, k), dtype=int)
        np.add.at(cm, (view[val], pred), 1)
        known = age[val] >= 0
        metrics.update({
            "confusion_matrix": {"labels": list(VIEW_CLASSES), "rows": "true class", "columns": "predicted class",
                                 "counts": cm.tolist()},
            "view_accuracy": round(float(np.trace(cm) / max(1, cm.sum())), 4),
            "age_accuracy": round(float(((p_age[known] >= 0.5) == (age[val][known] >= 0.5)).mean()), 4)
            if known.any() else None,
            "age_examples": int(known.sum()),
        })
    return net, metrics


def _export(net: Any, out: Path, meta: dict[str, Any]) -> dict[str, Any]:
    """Write the ONNX file and then its sidecar (each atomically); return the sidecar."""
    torch = _torch()
    import cxrlab
    from cxrlab.filter.network import ExportWrapper

    side = {
        "format": MODEL_FORMAT,
        "classes": list(VIEW_CLASSES),
        "age_classes": list(AGE_CLASSES),
        "input": {"name": "image", "layout": "NCHW", "size": INPUT_SIZE, "channels": list(CHANNELS),
                  "window": "full range and auto 1-99% of each image (cxrlab.dicom.display presets), "
                            "MONOCHROME1 inverted, area-averaged to 256 x 256"},
        "outputs": {"view": "softmax over classes", "pediatric": "sigmoid: probability of age < 10 years"},
        **meta,
        "versions": {"torch": torch.__version__, "cxrlab": cxrlab.__version__},
    }
    return export_onnx(ExportWrapper(net), torch.zeros(1, len(CHANNELS), INPUT_SIZE, INPUT_SIZE), out, side,
                       input_names=["image"], output_names=["view", "pediatric"], hint=TRAIN_HINT)


@contextlib.contextmanager
def _threads(n: int | None):  # noqa: ANN202
    torch = _torch()
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, n or min(2, default_workers())))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _train(
    x: np.ndarray, classes: Sequence[str], out: Path, *, population: str, epochs: int, seed: int, width: str,
    threads: int | None, on_progress: Progress | None, source: dict[str, Any],
) -> dict[str, Any]:
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    pairs = [labels_for(k, population) for k in classes]
    view = np.array([p[0] for p in pairs], dtype=np.int64)
    age = np.array([p[1] for p in pairs], dtype=np.float32)
    t0 = time.perf_counter()
    with _threads(threads):
        net, metrics = _fit(x, view, age, epochs=epochs, seed=seed, width=width, threads=threads or 0,
                            on_progress=on_progress)
        n_params = sum(int(p.numel()) for p in net.parameters())
        meta = {
            "network": {"name": "cxr-filter-resnet", "width": width, "parameters": n_params},
            "training": {**source, "examples": len(classes), "counts": dict(sorted(Counter(classes).items())),
                         "epochs": epochs, "seed": seed, "population": population,
                         "seconds": round(time.perf_counter() - t0, 1)},
            "metrics": metrics,
        }
        return _export(net, Path(out), meta)


def train_on_phantoms(
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    epochs: int = DEFAULT_EPOCHS,
    width: str = "small",
    threads: int | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, Any]:
    """Train a bootstrap model on *n* generated phantoms and save it to *out* (+ sidecar).

    Parameters
    ----------
    out : str or pathlib.Path
        The ``.onnx`` file to write.
    n : int
        Number of phantoms (:func:`phantom_examples`; a fifth are held out for validation).
    seed : int, optional
        Seed of the phantoms and of the training.
    epochs : int, optional
        Passes over the training phantoms.
    width : {"small", "tiny"}, optional
        Network width (:data:`cxrlab.filter.network.WIDTHS`); ``tiny`` trains about four times faster.
    threads : int, optional
        Torch threads (default: up to 2).
    executor : Executor, optional
        Where the phantoms are drawn.
    on_progress : callable, optional
        ``on_progress(step_name)`` returns a progress callback for ``phantoms`` and ``train``.

    Returns
    -------
    dict
        The sidecar written (metrics, counts, SHA-256).

    Raises
    ------
    ImportError
        torch or onnx is missing (:data:`TRAIN_HINT`).
    """
    _torch()
    progress = on_progress or (lambda _name: None)
    x, classes = phantom_examples(n, seed=seed, executor=executor, on_progress=progress("phantoms"))
    return _train(x, classes, Path(out), population="adult", epochs=epochs, seed=seed, width=width,
                  threads=threads, on_progress=progress("train"),
                  source={"source": "phantoms", "phantoms": n, "phantom_size_range": list(PHANTOM_SIZE_RANGE)})


def _load_item(path: Path) -> np.ndarray | str:
    """Worker: the model's input for one file, or the PHI-free reason it could not be read."""
    try:
        return load_input(path)
    except FileError as exc:
        return exc.reason
    except Exception as exc:  # noqa: BLE001 - one bad file never stops the batch
        return f"could not be rendered ({type(exc).__name__})"


def train_on_workspace(
    ws: Workspace,
    out: str | Path,
    *,
    epochs: int = DEFAULT_EPOCHS,
    seed: int = 0,
    width: str = "small",
    threads: int | None = None,
    executor: Executor | None = None,
    on_progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, Any]:
    """Train on the workspace's human decisions (:func:`cxrlab.filter.verify.training_decisions`).

    Parameters
    ----------
    ws : Workspace
        The workspace.
    out, epochs, seed, width, threads, executor, on_progress
        As for :func:`train_on_phantoms` (progress steps ``render`` and ``train``).

    Returns
    -------
    dict
        The sidecar written.

    Raises
    ------
    NoTrainingDataError
        No decision names a model class, or all of them name the same one.
    """
    from cxrlab.filter.verify import training_decisions

    _torch()
    with ws.sessions() as session:
        found = training_decisions(session, population=ws.settings.population)
    if not found:
        raise NoTrainingDataError(
            "no human decisions to train on: verify images (state needs_verification) or let readers set images "
            "aside with a reason code first, or train a bootstrap model with --phantoms N"
        )
    if len({labels_for(d.klass, ws.settings.population)[0] for d in found}) < 2:
        raise NoTrainingDataError(f"the {len(found)} human decision(s) all name one view class: a classifier needs "
                                  "at least two")
    progress = on_progress or (lambda _name: None)
    cb = progress("render")
    x = np.empty((len(found), len(CHANNELS), INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    keep: list[int] = []
    items = [ws.root / d.path for d in found]
    for i, (_, arr) in enumerate((executor or Executor()).map(_load_item, items, chunksize=4)):
        if isinstance(arr, np.ndarray):
            x[len(keep)] = arr
            keep.append(i)
        if cb:
            cb(i + 1, len(items))
    if not keep:
        raise CxrlabError("none of the decided images could be read")
    chosen = [found[i] for i in keep]
    return _train(
        x[: len(keep)], [d.klass for d in chosen], Path(out), population=ws.settings.population, epochs=epochs,
        seed=seed, width=width, threads=threads, on_progress=progress("train"),
        source={"source": "workspace", "decisions": dict(sorted(Counter(d.source for d in chosen).items())),
                "unreadable": len(found) - len(keep)},
    )
