"""Training the baseline classifier (plain torch, the ``[ml]`` extra): a run folder, resumable, seeded.

The labels are a release's image-level labels (``image_labels_*.csv``: the schema's label names in seed order,
what ``cxrlab evaluate classification`` scores), fused over readers by majority (VinDr-CXR, Table 2's counts), or
NIH ChestX-ray14's 14 findings for an NIH root. The loss is binary cross-entropy with each label's positives
weighted by ``negatives / positives`` of the training split (capped at :data:`MAX_POS_WEIGHT`), the usual answer to
rare labels (ChestX-ray8 section 4.2 weights its loss the same way, by the share of positives and negatives).
Every fifth training image (by index) is held out for validation; the best epoch is the one of least validation
loss.

A run folder holds ``config.json``, ``metrics.csv`` and ``metrics.png`` (one row/point per epoch), ``last.pt``
(every epoch: network, optimiser and AMP scaler states) and ``best.pt``, and ``model.onnx`` + ``model.json`` (the
best epoch, exported for onnxruntime: :func:`cxrlab.runtime.onnx.export_onnx`, the filter model's format with
the classes, input size and window). Every file is written atomically. ``resume=True`` continues from
``last.pt``: each epoch reseeds torch from ``(seed, epoch)``, so a resumed run computes the epochs an
uninterrupted run would have. Nothing is ever downloaded: training starts from scratch or from a user's weights
file (*init*).
"""

from __future__ import annotations

import csv
import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from cxrlab.errors import CxrlabError
from cxrlab.runtime.files import atomic_write_bytes, atomic_write_text

__all__ = ["ARCHS", "CAM_OUTPUT", "CLASSIFIER_FORMAT", "MAX_POS_WEIGHT", "TRAIN_HINT", "VAL_EVERY", "check_run",
           "export_classifier", "fit", "open_release", "split_indices", "train_classifier"]

#: Architectures (:mod:`cxrlab.models.networks`).
ARCHS = ("small", "resnet50", "densenet121")
#: ``format`` of the ONNX sidecar.
CLASSIFIER_FORMAT = "cxrlab-classifier/1"
#: Name of the classifier's second ONNX output, the class activation maps
#: (:class:`cxrlab.models.networks.ExportWrapper`; runs exported before it have only ``probabilities``).
CAM_OUTPUT = "cam"
#: ``format`` of a detector's ONNX sidecar (:mod:`cxrlab.models.detector`).
DETECTOR_FORMAT = "cxrlab-detector/1"
#: What to install.
TRAIN_HINT = "training needs the ML extra (torch, onnx): pip install 'cxrlab[ml]'"
#: Every this-many-th training image (by index) is held out for validation.
VAL_EVERY = 5
#: Largest positive weight of a label in the loss.
MAX_POS_WEIGHT = 50.0
#: Columns of ``metrics.csv``.
METRIC_COLUMNS = ("epoch", "train_loss", "val_loss", "val_mean_auc", "lr", "seconds")

Progress = Callable[[int, int], None]


def _torch():  # noqa: ANN202 - the torch module
    try:
        import torch
    except ImportError as exc:
        raise ImportError(f"{TRAIN_HINT} ({exc})") from exc
    return torch


def open_release(root: str | os.PathLike[str], *, size: int, window: str, cache_dir: Path | None) -> Any:
    """The training split of *root*: a cxrlab export (``manifest.json``), a VinDr-layout release, or an NIH
    ChestX-ray14 root (``Data_Entry_2017*.csv``).

    Raises
    ------
    CxrlabError
        *root* is not a folder, or holds neither layout.
    """
    from cxrlab.datasets import NIHDataset, ReleaseDataset, VinDrDataset

    root = Path(root)
    if not root.is_dir():
        raise CxrlabError(f"{root}: release folder not found")
    kw = {"size": size, "window": window, "cache_dir": cache_dir}
    if any(root.glob("Data_Entry_2017*.csv*")):
        return NIHDataset(root, split="train", bbox=False, **kw)
    if (root / "manifest.json").is_file():  # a cxrlab export: the manifest names the label schema
        return ReleaseDataset(root, split="train", labels="majority", **kw)
    return VinDrDataset(root, split="train", labels="majority", **kw)


def _batch(ds: Any, idx: np.ndarray) -> np.ndarray:
    return np.stack([ds.load(int(i)) for i in idx])[:, None].astype(np.float32, copy=False)


def _augment(torch, xb, gen):  # noqa: ANN001, ANN202 - torch tensors
    """A gamma per image and a shift of up to 1/32 of the side (no flips: the heart is on the left)."""
    return augment_shift(torch, xb, gen)[0]


def augment_shift(torch, xb, gen):  # noqa: ANN001, ANN202 - torch tensors
    """:func:`_augment` that also returns the shift ``(dy, dx)`` in pixels (the detector moves its boxes by it)."""
    n = xb.shape[0]
    gamma = torch.exp((torch.rand(n, generator=gen) - 0.5) * 0.4)
    xb = xb.clamp(0, 1) ** gamma[:, None, None, None]
    m = max(1, xb.shape[-1] // 32)
    dy, dx = (int(v) for v in torch.randint(-m, m + 1, (2,), generator=gen))
    return torch.roll(xb, shifts=(dy, dx), dims=(2, 3)), (dy, dx)


def _mean_auc(y: np.ndarray, p: np.ndarray) -> float | None:
    try:
        from sklearn.metrics import roc_auc_score
    except ImportError:
        return None
    aucs = [roc_auc_score(y[:, j], p[:, j]) for j in range(y.shape[1]) if 0 < y[:, j].sum() < len(y)]
    return round(float(np.mean(aucs)), 4) if aucs else None


def _save(torch, path: Path, state: dict[str, Any]) -> None:  # noqa: ANN001
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(path, buf.getvalue())


def _plot(rows: list[dict[str, Any]], out: Path, *, metric: str | None = "val_mean_auc",
          loss_name: str = "weighted BCE") -> None:
    """``metrics.png``: training and validation loss (and the validation *metric*, in [0, 1]) by epoch; skipped
    without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return
    ep = [r["epoch"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=100)
    ax.plot(ep, [r["train_loss"] for r in rows], "o-", label="train loss")
    ax.plot(ep, [r["val_loss"] for r in rows], "s-", label="validation loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel(loss_name)
    aucs = [r.get(metric) for r in rows] if metric else []
    if any(a not in (None, "") for a in aucs):
        ax2 = ax.twinx()
        ax2.plot(ep, [float("nan") if a in (None, "") else a for a in aucs], "^--", color="tab:green",
                 label=f"validation {metric.removeprefix('val_').replace('_', ' ')}")
        ax2.set_ylabel(metric.removeprefix("val_").replace("_", " "))
        ax2.set_ylim(0, 1)
    ax.legend(loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(out, buf.getvalue())


def _write_metrics(run: Path, rows: list[dict[str, Any]], *, metric: str | None = "val_mean_auc",
                   loss_name: str = "weighted BCE") -> None:
    columns = [c for c in METRIC_COLUMNS if c != "val_mean_auc"]
    if metric:
        columns.insert(3, metric)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r[k] for k in columns})
    atomic_write_text(run / "metrics.csv", buf.getvalue())
    _plot(rows, run / "metrics.png", metric=metric, loss_name=loss_name)


def _device(torch, want: str | None):  # noqa: ANN001, ANN202
    if want:
        return torch.device(want)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def train_classifier(
    release: str | os.PathLike[str],
    run: str | os.PathLike[str],
    *,
    arch: str = "small",
    size: int = 512,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    window: str = "file",
    init: str | os.PathLike[str] | None = None,
    resume: bool = False,
    threads: int | None = None,
    device: str | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    on_progress: Callable[[str], Progress | None] | None = None,
) -> dict[str, Any]:
    """Train a multi-label classifier on *release*'s training split and write the run folder *run*.

    Parameters
    ----------
    release : path
        A VinDr-layout release or cxrlab export (``image_labels_train.csv``), or an NIH ChestX-ray14 root.
    run : path
        The run folder (created; must be empty or absent unless *resume*).
    arch : {"small", "resnet50", "densenet121"}
        :data:`cxrlab.models.networks.ARCHS`.
    size : int
        Input side in pixels (images are resized to a square).
    epochs : int
        Total epochs (with *resume*: up to this many, counting those done).
    batch_size, lr : int, float
        Examples per step and AdamW's peak learning rate (cosine decay over the run, one warm-up epoch).
    seed : int
        Seed of the split, the order, the augmentations and the initialisation.
    window : {"file", "full", "auto"}
        The display window (:data:`cxrlab.datasets.WINDOWS`); recorded in the sidecar for ``cxrlab predict``.
    init : path, optional
        A ``state_dict`` (or a cxrlab checkpoint) to start from; layers whose shape differs (the label head) keep
        their fresh initialisation. Nothing is downloaded.
    resume : bool
        Continue from ``run/last.pt``.
    threads : int, optional
        Torch CPU threads (default: torch's).
    device : str, optional
        ``cuda``, ``cpu``, ... (default: CUDA when available). AMP (float16 autocast) on CUDA only.
    cache_dir : path, optional
        The image cache (default ``run/cache``): epoch 2 on reads memory-mapped arrays, no decoding.
    on_progress : callable, optional
        ``on_progress(label) -> on_progress(done, total)`` per epoch (label ``epoch k/N``).

    Returns
    -------
    dict
        The ONNX sidecar written (classes, input, metrics of the best epoch, SHA-256).

    Raises
    ------
    CxrlabError
        Missing or unreadable release, unknown architecture, a run folder in use without *resume*, a resume
        without a checkpoint or with another configuration.
    ImportError
        torch or onnx is missing (:data:`TRAIN_HINT`).
    """
    if arch not in ARCHS:
        raise CxrlabError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
    if epochs < 1 or size < 32 or batch_size < 2:
        raise CxrlabError("epochs must be >= 1, size >= 32 and batch size >= 2")
    torch = _torch()
    from cxrlab.models.networks import ExportWrapper, build

    run = Path(run)
    check_run(run, resume=resume, init=init)
    ds = open_release(release, size=size, window=window,
                      cache_dir=Path(cache_dir) if cache_dir is not None else run / "cache")
    if len(ds) < 2 * VAL_EVERY:
        raise CxrlabError(f"{release}: {len(ds)} training image(s); at least {2 * VAL_EVERY} are needed")
    classes = list(ds.label_names)
    schema = getattr(ds, "schema", None)
    config = {"task": "classifier", "release": str(Path(release).resolve()), "arch": arch, "size": size,
              "window": window, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "classes": classes, "schema": schema.name if schema is not None else None,
              "init": str(init) if init else None, "images": len(ds)}
    dev = _device(torch, device)
    if threads:
        torch.set_num_threads(int(threads))

    y = ds.label_matrix().astype(np.float32)
    train, val = split_indices(len(ds))
    pos = y[train].sum(0)
    pos_weight = torch.from_numpy(np.clip((len(train) - pos) / np.maximum(pos, 1.0), 1.0, MAX_POS_WEIGHT)
                                  .astype(np.float32)).to(dev)
    torch.manual_seed(seed)
    net = build(arch, len(classes)).to(dev)
    if init is not None:
        _load_init(torch, net, Path(init))
    loss_fn = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)

    def step_loss(sel: np.ndarray, gen: Any) -> Any:
        xb = _augment(torch, torch.from_numpy(_batch(ds, sel)), gen).to(dev)
        return loss_fn(net(xb), torch.from_numpy(y[sel]).to(dev))

    def validate() -> tuple[float, float | None]:
        val_loss, probs = _evaluate(torch, net, ds, val, y, loss_fn, dev, batch_size)
        return val_loss, _mean_auc(y[val], probs)

    rows = fit(torch, run, config, net, train, step_loss, validate, dev=dev, resume=resume,
               on_progress=on_progress)
    return _export(torch, run, config, rows, ExportWrapper, build)


def split_indices(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train, val)`` indices of *n* training images: every :data:`VAL_EVERY`-th (by index) is validation."""
    idx = np.arange(n)
    return idx[idx % VAL_EVERY != VAL_EVERY - 1], idx[idx % VAL_EVERY == VAL_EVERY - 1]


def check_run(run: Path, *, resume: bool, init: str | os.PathLike[str] | None) -> None:
    """Refuse a run folder in use without *resume*, a resume without ``last.pt`` and a missing *init* file."""
    if resume and not (run / "last.pt").is_file():
        raise CxrlabError(f"{run / 'last.pt'}: no checkpoint to resume from")
    if not resume and run.exists() and any(p.name != "cache" for p in run.iterdir()):
        raise CxrlabError(f"{run}: the run folder is not empty (pass --resume to continue it, or another -o)")
    if init is not None and not Path(init).is_file():
        raise CxrlabError(f"{init}: weights file not found")


#: Configuration keys a resumed run must share with its checkpoint.
RESUME_KEYS = ("task", "arch", "size", "window", "classes", "batch_size", "seed")


def fit(
    torch: Any,
    run: Path,
    config: dict[str, Any],
    net: Any,
    train: np.ndarray,
    step_loss: Callable[[np.ndarray, Any], Any],
    validate: Callable[[], tuple[float, float | None]],
    *,
    dev: Any,
    resume: bool,
    metric: str | None = "val_mean_auc",
    loss_name: str = "weighted BCE",
    on_progress: Callable[[str], Progress | None] | None = None,
) -> list[dict[str, Any]]:
    """The training loop shared by the classifier and the detector: AdamW (one warm-up epoch, then cosine decay
    to 5 % of ``config["lr"]``), AMP on CUDA, per-epoch reseeding from ``(seed, epoch)``, ``best.pt`` (least
    validation loss), ``last.pt``, ``config.json``, ``metrics.csv`` and ``metrics.png``, all written atomically.

    Parameters
    ----------
    torch : module
        torch.
    run : Path
        The run folder (checked by :func:`check_run`).
    config : dict
        ``epochs``, ``batch_size``, ``lr``, ``seed`` and the keys of :data:`RESUME_KEYS`; written to
        ``config.json``.
    net : torch.nn.Module
        The network, initialised under the seed, on *dev*.
    train : ndarray
        Training indices.
    step_loss : callable
        ``step_loss(indices, generator) -> loss`` of one batch (training mode, under autocast; the generator
        draws the augmentations).
    validate : callable
        ``validate() -> (val_loss, metric or None)`` (the network is put in eval mode by it).
    dev : torch.device
        The device (AMP when CUDA).
    resume : bool
        Continue from ``run/last.pt`` (refused when the configuration differs in :data:`RESUME_KEYS`).
    metric, loss_name : str
        The validation metric's column of ``metrics.csv`` (None: no column) and the loss's name on the plot.
    on_progress : callable, optional
        ``on_progress(label) -> on_progress(done, total)`` per epoch.

    Returns
    -------
    list of dict
        The rows of ``metrics.csv``.
    """
    epochs, batch_size, lr, seed = config["epochs"], config["batch_size"], config["lr"], config["seed"]
    amp = dev.type == "cuda"
    last = run / "last.pt"
    opt = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    steps = max(1, -(-len(train) // batch_size))
    rows: list[dict[str, Any]] = []
    start, best = 1, float("inf")
    if resume:
        state = _read_checkpoint(torch, last)
        old = state.get("config", {})
        changed = [k for k in RESUME_KEYS if old.get(k, "classifier" if k == "task" else None) != config.get(k)]
        if changed:
            raise CxrlabError(f"{last}: the run was trained with another {', '.join(changed)}; start a new run")
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        scaler.load_state_dict(state["scaler"])
        rows, best, start = state["metrics"], state["best_val_loss"], state["epoch"] + 1
    run.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run / "config.json", json.dumps(config, indent=2) + "\n")
    total_steps = epochs * steps
    progress = on_progress or (lambda _label: None)

    def lr_at(step: int) -> float:  # one warm-up epoch, then cosine to 5 % of the peak
        if step < steps:
            return lr * (step + 1) / steps
        t = (step - steps) / max(1, total_steps - steps)
        return float(lr * (0.05 + 0.95 * 0.5 * (1 + np.cos(np.pi * min(1.0, t)))))

    for epoch in range(start, epochs + 1):
        t0 = time.perf_counter()
        torch.manual_seed(seed * 100_003 + epoch)  # dropout; a resumed epoch draws what it would have drawn
        gen = torch.Generator().manual_seed(seed * 100_003 + epoch)
        order = train[torch.randperm(len(train), generator=gen).numpy()]
        cb = progress(f"epoch {epoch}/{epochs}")
        net.train()
        total = 0.0
        for b in range(steps):
            sel = order[b * batch_size:(b + 1) * batch_size]
            if len(sel) < 2:  # batch norm needs two examples
                continue
            for g in opt.param_groups:
                g["lr"] = lr_at((epoch - 1) * steps + b)
            with torch.autocast(dev.type, dtype=torch.float16, enabled=amp):
                loss = step_loss(sel, gen)
            opt.zero_grad()
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            total += float(loss.detach()) * len(sel)
            if cb:
                cb(b + 1, steps)
        val_loss, value = validate()
        row = {"epoch": epoch, "train_loss": round(total / len(train), 5), "val_loss": round(val_loss, 5)}
        if metric:
            row[metric] = value
        row |= {"lr": float(f"{opt.param_groups[0]['lr']:.3g}"), "seconds": round(time.perf_counter() - t0, 1)}
        rows.append(row)
        if val_loss < best:
            best = val_loss
            _save(torch, run / "best.pt", {"model": net.state_dict(), "epoch": epoch, "config": config})
        _save(torch, last, {"model": net.state_dict(), "optimizer": opt.state_dict(), "scaler": scaler.state_dict(),
                            "epoch": epoch, "metrics": rows, "best_val_loss": best, "config": config})
        _write_metrics(run, rows, metric=metric, loss_name=loss_name)
    return rows


def _evaluate(torch, net, ds, val, y, loss_fn, dev, batch_size):  # noqa: ANN001, ANN202
    net.eval()
    out = []
    with torch.no_grad():
        for b in range(0, len(val), batch_size):
            out.append(net(torch.from_numpy(_batch(ds, val[b:b + batch_size])).to(dev)).float().cpu())
    logits = torch.cat(out)
    loss = float(loss_fn(logits.to(dev), torch.from_numpy(y[val]).to(dev)))
    return loss, torch.sigmoid(logits).numpy()


def _read_checkpoint(torch, path: Path) -> dict[str, Any]:  # noqa: ANN001
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises many kinds for a bad file
        raise CxrlabError(f"{path}: not a readable checkpoint ({type(exc).__name__})") from None
    if not isinstance(state, dict) or "model" not in state:
        raise CxrlabError(f"{path}: not a cxrlab checkpoint")
    return state


def _load_init(torch, net, path: Path) -> None:  # noqa: ANN001
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        raise CxrlabError(f"{path}: not a readable weights file ({type(exc).__name__})") from None
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]
    if not isinstance(state, dict):
        raise CxrlabError(f"{path}: not a state_dict")
    own = net.state_dict()
    keep = {k: v for k, v in state.items() if k in own and getattr(v, "shape", None) == own[k].shape}
    if not keep:
        raise CxrlabError(f"{path}: no layer matches the {type(net).__name__} being trained")
    net.load_state_dict(keep, strict=False)


def export_classifier(run: str | os.PathLike[str]) -> dict[str, Any]:
    """Export a classifier run's ``best.pt`` again to ``model.onnx`` + ``model.json`` (``cxrlab train export``):
    what a run trained by an older cxrlab needs for ``cxrlab cam`` (its ONNX file has no ``cam`` output). Reads
    ``config.json`` and the metrics of ``last.pt``; the release is not needed.

    Raises
    ------
    CxrlabError
        Not a classifier run folder (no ``config.json``, another task, or no ``best.pt``/``last.pt``).
    ImportError
        torch or onnx is missing (:data:`TRAIN_HINT`).
    """
    run = Path(run)
    try:
        config = json.loads((run / "config.json").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        raise CxrlabError(f"{run / 'config.json'}: not found or not valid JSON (a run folder of cxrlab train "
                          "classifier holds it)") from None
    if not isinstance(config, dict) or config.get("task", "classifier") != "classifier":
        raise CxrlabError(f"{run}: not a classifier run (its config.json names task {config.get('task')!r})"
                          if isinstance(config, dict) else f"{run / 'config.json'}: not a run configuration")
    torch = _torch()
    from cxrlab.models.networks import ExportWrapper, build

    rows = _read_checkpoint(torch, run / "last.pt").get("metrics") or []
    return _export(torch, run, config, rows, ExportWrapper, build)


def _export(torch, run: Path, config: dict[str, Any], rows, wrapper, build) -> dict[str, Any]:  # noqa: ANN001
    net = build(config["arch"], len(config["classes"]))
    side = {"format": CLASSIFIER_FORMAT, "classes": config["classes"], "schema": config.get("schema"),
            "outputs": {"probabilities": "sigmoid: one probability per class",
                        CAM_OUTPUT: "class activation maps (n, classes, h, w): each class's linear weights applied "
                                    "to the last feature map, before pooling (cxrlab cam)"}}
    return export_best(torch, run, config, rows, net, wrapper, side, output_names=["probabilities", CAM_OUTPUT])


def export_best(torch: Any, run: Path, config: dict[str, Any], rows: list[dict[str, Any]], net: Any,
                wrapper: Callable[[Any], Any], sidecar: dict[str, Any], *, output_names: list[str]) -> dict[str, Any]:
    """Export the best epoch (``run/best.pt`` loaded into the fresh *net*, wrapped by *wrapper*) to
    ``run/model.onnx`` + ``model.json``: *sidecar* (``format``, ``classes``, ``outputs``, ...) plus what every
    cxrlab run records (input size and window, network, training, the best epoch's metrics, versions)."""
    import cxrlab
    from cxrlab.runtime.onnx import export_onnx

    best = _read_checkpoint(torch, run / "best.pt")
    net.load_state_dict(best["model"])
    net = net.cpu().eval()
    size = config["size"]
    side = {
        **{k: sidecar[k] for k in ("format", "classes") if k in sidecar},
        "input": {"name": "image", "layout": "NCHW", "size": size, "channels": 1, "window": config["window"],
                  "pixels": "cxrlab.datasets.load_image: display pipeline, [0, 1], 1 white, resized to a square"},
        **{k: v for k, v in sidecar.items() if k not in ("format", "classes")},
        "network": {"arch": config["arch"], "parameters": sum(int(p.numel()) for p in net.parameters())},
        "training": {"epochs": len(rows), "best_epoch": best["epoch"], "seed": config["seed"],
                     "images": config["images"]},
        "metrics": next(r for r in rows if r["epoch"] == best["epoch"]),
        "versions": {"torch": torch.__version__, "cxrlab": cxrlab.__version__},
    }
    return export_onnx(wrapper(net), torch.zeros(1, 1, size, size), run / "model.onnx", side,
                       input_names=["image"], output_names=output_names, hint=TRAIN_HINT)
