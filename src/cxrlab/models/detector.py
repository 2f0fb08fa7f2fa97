"""The baseline detector: a one-stage anchor-free detector in plain torch, CenterNet-style (Zhou, Wang and
Krähenbühl, "Objects as Points", arXiv:1904.07850, 2019), for the local (boxed) labels of a release.

Importing this module imports torch (the ``[ml]`` extra); :mod:`cxrlab.models` imports it only when a detector is
trained. The network is one of the classifier's backbones (:mod:`cxrlab.models.networks`: ``small``, ``resnet50``,
``densenet121``) with a light top-down neck (the
stride-32 and stride-16 maps upsampled and added to the stride-8 map, as a feature pyramid does) and three heads
on the stride-:data:`STRIDE` map, one value per cell:

* a class heatmap (one channel per class, sigmoid): the target is an elliptical Gaussian around each box's
  centre, with standard deviations of :data:`GAUSS_ALPHA` / 6 of the box's width and height (TTFNet's choice, Liu
  et al. AAAI 2020; CenterNet's radius rule gives much the same) and 1 at the centre's cell; the loss is
  CenterNet's penalty-reduced focal loss (its eq. 1, alpha 2, beta 4), divided by the number of boxes;
* the box's width and height in cells, and the sub-cell offset of its centre, both trained by L1 at the centre's
  cell only (CenterNet's weights: 0.1 for the size, 1 for the offset).

The ONNX export computes the map ``(N, classes + 4, h, w)``: heatmap probabilities, then ``w, h, dx, dy``.
Decoding (peaks of the heatmap, boxes, per-class NMS) runs in numpy after onnxruntime
(:func:`cxrlab.models.predict.decode_detections`), so the graph stays a plain convolutional network.

Training shares the classifier's loop, run folder, checkpoints and export (:func:`cxrlab.models.train.fit`,
:func:`~cxrlab.models.train.export_best`); the best epoch is the one of least validation loss.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from cxrlab.errors import CxrlabError
from cxrlab.filter.network import conv_bn
from cxrlab.models.networks import _TRUNKS, ARCHS
from cxrlab.models.train import (
    DETECTOR_FORMAT,
    VAL_EVERY,
    _batch,
    _device,
    _load_init,
    augment_shift,
    check_run,
    export_best,
    fit,
    open_release,
    split_indices,
)

__all__ = ["DETECTOR_ARCHS", "DETECTOR_FORMAT", "STRIDE", "Detector", "detector_targets", "train_detector"]

#: Backbones the detector is built on: the classifier's (:data:`cxrlab.models.networks.ARCHS`).
DETECTOR_ARCHS = ARCHS
#: Pixels per cell of the output map.
STRIDE = 8
#: Gaussian size factor of the heatmap target (TTFNet's alpha).
GAUSS_ALPHA = 0.54
#: Loss weights of the size and offset heads (CenterNet).
SIZE_WEIGHT, OFFSET_WEIGHT = 0.1, 1.0
NECK = 64
#: The keyword options :func:`train_detector` shares with :func:`cxrlab.models.train_classifier`, with defaults.
OPTIONS: dict[str, Any] = {"window": "file", "init": None, "resume": False, "threads": None, "device": None,
                           "cache_dir": None, "on_progress": None}


def _pyramid(body: nn.Sequential) -> list[tuple[int, int]]:
    """Where a trunk's layers reach strides 8, 16 and 32: for each, the index just past the last layer at that
    stride and its channel count (a feature pyramid's levels C3-C5, Lin et al. 2017). Found by running a blank image
    through the layers, so any trunk of :data:`ARCHS` (ResNet stages, DenseNet blocks and transitions) is split
    without a table of indices."""
    side = 64
    x = torch.zeros(1, 1, side, side)
    last: dict[int, tuple[int, int]] = {}
    with torch.no_grad():
        was = body.training
        body.eval()
        for i, layer in enumerate(body):
            x = layer(x)
            last[side // x.shape[-1]] = (i + 1, int(x.shape[1]))
        body.train(was)
    if not {8, 16, 32} <= set(last):
        raise ValueError("the trunk has no stride-8, -16 and -32 stages")
    return [last[8], last[16], last[32]]


def _stage(layers: list[nn.Module]) -> nn.Module:
    """*layers* as one module: the layer itself when there is one (the ``small`` trunk's stages are single blocks,
    and the keys of its detectors' checkpoints, ``s16.*``, stay what they were), else a Sequential."""
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


class Detector(nn.Module):
    """A classifier's trunk (split at strides 8, 16, 32 by :func:`_pyramid`), a top-down neck to stride
    :data:`STRIDE`, and heatmap / size / offset heads.

    Parameters
    ----------
    arch : str
        One of :data:`DETECTOR_ARCHS`.
    n_classes : int
        Number of box classes.
    """

    def __init__(self, arch: str, n_classes: int) -> None:
        super().__init__()
        if arch not in DETECTOR_ARCHS:
            raise ValueError(f"unknown detector architecture {arch!r} (choose from {', '.join(DETECTOR_ARCHS)})")
        # The classifier's trunk, its layers shared with stem / s16 / s32: a classifier's weights of the same
        # architecture (--init its best.pt) start the backbone, since their state_dict keys (trunk.body.*) are the same.
        self.trunk = _TRUNKS[arch](1)
        (i8, c8), (i16, c16), (_, c32) = _pyramid(self.trunk.body)
        body = list(self.trunk.body)
        self.stem = nn.Sequential(*body[:i8])
        self.s16, self.s32 = _stage(body[i8:i16]), _stage(body[i16:])
        self.lat8, self.lat16, self.lat32 = (nn.Conv2d(c, NECK, 1) for c in (c8, c16, c32))
        self.smooth = conv_bn(NECK, NECK, 1)
        self.heat = nn.Sequential(conv_bn(NECK, NECK, 1), nn.Conv2d(NECK, n_classes, 1))
        self.reg = nn.Sequential(conv_bn(NECK, NECK, 1), nn.Conv2d(NECK, 4, 1))
        nn.init.constant_(self.heat[-1].bias, -2.19)  # prior 0.1 (CenterNet)
        self.n_classes = n_classes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw map ``(N, classes + 4, H / 8, W / 8)``: heatmap logits, then width, height, dx, dy (cells)."""
        flat = x.flatten(1)
        x = (x - flat.mean(1)[:, None, None, None]) / (flat.std(1)[:, None, None, None] + 1e-3)
        f8 = self.stem(x)
        f16 = self.s16(f8)
        f32 = self.s32(f16)
        p16 = self.lat16(f16) + F.interpolate(self.lat32(f32), size=f16.shape[-2:], mode="nearest")
        p8 = self.lat8(f8) + F.interpolate(p16, size=f8.shape[-2:], mode="nearest")
        p8 = self.smooth(p8)
        return torch.cat([self.heat(p8), self.reg(p8)], 1)


class DetectorExport(nn.Module):
    """What the ONNX file computes: the map with sigmoid heatmap probabilities (decoding is left to numpy)."""

    def __init__(self, net: Detector) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        c = self.net.n_classes
        return torch.cat([torch.sigmoid(out[:, :c]), out[:, c:]], 1)


def detector_targets(boxes: list[list[tuple[int, float, float, float, float]]], n_classes: int, side: int,
                     shift: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Targets of a batch: heatmap ``(N, C, h, w)``, regression ``(N, 4, h, w)`` and its mask ``(N, 1, h, w)``.

    *boxes* holds per image ``(class, x0, y0, x1, y1)`` in the input frame (pixels of the *side* x *side*
    image); *shift* ``(dy, dx)`` moves them as the augmentation moved the image.
    """
    h = w = side // STRIDE
    heat = np.zeros((len(boxes), n_classes, h, w), np.float32)
    reg = np.zeros((len(boxes), 4, h, w), np.float32)
    mask = np.zeros((len(boxes), 1, h, w), np.float32)
    ys, xs = np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]
    dy, dx = shift
    for n, img in enumerate(boxes):
        for c, x0, y0, x1, y1 in img:
            x0, x1 = np.clip([x0 + dx, x1 + dx], 0, side)
            y0, y1 = np.clip([y0 + dy, y1 + dy], 0, side)
            bw, bh = (x1 - x0) / STRIDE, (y1 - y0) / STRIDE
            if bw <= 0 or bh <= 0:
                continue
            cx, cy = (x0 + x1) / 2 / STRIDE, (y0 + y1) / 2 / STRIDE
            ix, iy = min(int(cx), w - 1), min(int(cy), h - 1)
            sx, sy = max(GAUSS_ALPHA * bw / 6, 0.5), max(GAUSS_ALPHA * bh / 6, 0.5)
            g = np.exp(-((xs - ix) ** 2) / (2 * sx * sx) - ((ys - iy) ** 2) / (2 * sy * sy))
            heat[n, c] = np.maximum(heat[n, c], g)
            reg[n, :, iy, ix] = (bw, bh, cx - ix, cy - iy)
            mask[n, 0, iy, ix] = 1.0
    return heat, reg, mask


def detection_loss(out: torch.Tensor, heat: torch.Tensor, reg: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """CenterNet's loss: penalty-reduced focal loss on the heatmap (alpha 2, beta 4) per box, plus L1 of size
    (x :data:`SIZE_WEIGHT`) and offset (x :data:`OFFSET_WEIGHT`) at the boxes' centre cells."""
    c = heat.shape[1]
    logits = out[:, :c].float()
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    n = pos.sum().clamp(min=1.0)
    pos_loss = (torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_loss = (torch.log(1 - p) * p ** 2 * (1 - heat) ** 4 * (1 - pos)).sum()
    focal = -(pos_loss + neg_loss) / n
    r = out[:, c:].float()
    nm = mask.sum().clamp(min=1.0)
    size = (torch.abs(r[:, :2] - reg[:, :2]) * mask).sum() / nm
    offset = (torch.abs(r[:, 2:] - reg[:, 2:]) * mask).sum() / nm
    return focal + SIZE_WEIGHT * size + OFFSET_WEIGHT * offset


def train_detector(
    release: str | os.PathLike[str],
    run: str | os.PathLike[str],
    *,
    arch: str = "small",
    size: int = 512,
    epochs: int = 10,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    **options: Any,
) -> dict[str, Any]:
    """Train the detector on the boxes of *release*'s training split (fused over readers by weighted boxes
    fusion, :class:`cxrlab.datasets.VinDrDataset`'s default) and write the run folder *run*.

    The classes are the schema's local labels that have at least one box in the training split, in schema
    order; the sidecar records each one's class id in the release's ``annotations_*.csv`` (and "No finding"'s),
    the ids ``cxrlab predict`` writes. Parameters as :func:`cxrlab.models.train_classifier` (*options*: its
    ``window``, ``init``, ``resume``, ``threads``, ``device``, ``cache_dir``, ``on_progress``); *size* must be a
    multiple of :data:`STRIDE` x 4 and *arch* one of :data:`DETECTOR_ARCHS`.

    Returns
    -------
    dict
        The ONNX sidecar written.

    Raises
    ------
    CxrlabError
        As the classifier's, plus a release without boxes or without a label schema of local labels.
    """
    if arch not in DETECTOR_ARCHS:
        raise CxrlabError(f"unknown detector architecture {arch!r} (choose from {', '.join(DETECTOR_ARCHS)})")
    if epochs < 1 or size < 64 or size % (4 * STRIDE) or batch_size < 2:
        raise CxrlabError(f"epochs must be >= 1, size a multiple of {4 * STRIDE} (>= 64) and batch size >= 2")
    unknown = set(options) - set(OPTIONS)
    if unknown:
        raise TypeError(f"train_detector() got unexpected keyword argument(s): {', '.join(sorted(unknown))}")
    window, init, resume, threads, device, cache_dir, on_progress = (options.get(k, d) for k, d in OPTIONS.items())
    run = Path(run)
    check_run(run, resume=resume, init=init)
    ds = open_release(release, size=size, window=window,
                      cache_dir=Path(cache_dir) if cache_dir is not None else run / "cache")
    if len(ds) < 2 * VAL_EVERY:
        raise CxrlabError(f"{release}: {len(ds)} training image(s); at least {2 * VAL_EVERY} are needed")
    schema = getattr(ds, "schema", None)
    local = [lb.name for lb in schema.local] if schema is not None else []
    targets = [ds.target(i, (size, size))["boxes"] for i in range(len(ds))]
    present = {b["label"] for t in targets for b in t}
    classes = [n for n in local if n in present]
    if not classes:
        raise CxrlabError(f"{release}: no box of a local label in the training split; nothing to detect")
    col = {n: i for i, n in enumerate(classes)}
    boxes = [[(col[b["label"]], b["x_min"], b["y_min"], b["x_max"], b["y_max"]) for b in t if b["label"] in col]
             for t in targets]
    class_ids = {n: schema.class_id(n) for n in classes}
    no_finding = schema.class_id(schema.no_finding) if schema.no_finding else None
    config = {"task": "detector", "release": str(Path(release).resolve()), "arch": arch, "size": size,
              "window": window, "epochs": epochs, "batch_size": batch_size, "lr": lr, "seed": seed,
              "classes": classes, "schema": schema.name, "class_ids": class_ids, "no_finding_id": no_finding,
              "init": str(init) if init else None, "images": len(ds),
              "boxes": sum(len(b) for b in boxes)}
    dev = _device(torch, device)
    if threads:
        torch.set_num_threads(int(threads))
    train, val = split_indices(len(ds))
    torch.manual_seed(seed)
    net = Detector(arch, len(classes)).to(dev)
    if init is not None:
        _load_init(torch, net, Path(init))

    def batch_loss(sel: np.ndarray, x: torch.Tensor, shift: tuple[int, int]) -> torch.Tensor:
        heat, reg, mask = (torch.from_numpy(a).to(dev) for a in
                           detector_targets([boxes[int(i)] for i in sel], len(classes), size, shift))
        return detection_loss(net(x.to(dev)), heat, reg, mask)

    def step_loss(sel: np.ndarray, gen: Any) -> torch.Tensor:
        x, shift = augment_shift(torch, torch.from_numpy(_batch(ds, sel)), gen)
        return batch_loss(sel, x, shift)

    def validate() -> tuple[float, None]:
        net.eval()
        total = 0.0
        with torch.no_grad():
            for b in range(0, len(val), batch_size):
                sel = val[b:b + batch_size]
                total += float(batch_loss(sel, torch.from_numpy(_batch(ds, sel)), (0, 0))) * len(sel)
        return total / max(1, len(val)), None

    rows = fit(torch, run, config, net, train, step_loss, validate, dev=dev, resume=resume, metric=None,
               loss_name="focal + L1", on_progress=on_progress)
    side = {"format": DETECTOR_FORMAT, "classes": classes, "schema": schema.name, "class_ids": class_ids,
            "no_finding_id": no_finding, "stride": STRIDE,
            "outputs": {"map": f"(n, classes + 4, size/{STRIDE}, size/{STRIDE}): per-cell heatmap probability of "
                               "each class, then box width and height and the centre's offset dx, dy, in cells"}}
    return export_best(torch, run, config, rows, Detector(arch, len(classes)), DetectorExport, side,
                       output_names=["map"])
