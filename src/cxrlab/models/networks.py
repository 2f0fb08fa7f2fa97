"""The baseline networks in plain torch (torchvision is not a dependency; no weights are ever downloaded).

Not for direct use: :mod:`cxrlab.models.train` imports it, and importing it imports torch (the ``[ml]`` extra).
Every network maps a one-channel image ``(N, 1, S, S)`` to a feature map (:meth:`Classifier.features`), pools it
globally by log-sum-exp (ChestX-ray8 section 4, "Global Pooling Layer": between average and max pooling, so a small
finding in a few cells of the map is not averaged away; :data:`LSE_R` here) and applies one linear layer per label,
so class activation maps (Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016) are
the linear layer applied to the map.

* ``small``: the filter CNN's residual trunk (:mod:`cxrlab.filter.network`, ResNet-18 basic blocks, widths
  16-128), about 0.3 M parameters: the CPU baseline and the learning test's network.
* ``resnet50``: He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Table 1 (bottleneck blocks
  3-4-6-3, widths 256-2048), the architecture of the VinDr-CXR classification baselines' family.
* ``densenet121``: Huang et al., "Densely Connected Convolutional Networks", CVPR 2017, Table 1 (growth 32, blocks
  6-12-24-16, bottleneck 4k, compression 0.5), CheXNet's network (Rajpurkar et al. 2017) on ChestX-ray14.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from cxrlab.filter.network import WIDTHS, BasicBlock, conv_bn
from cxrlab.models.train import ARCHS

__all__ = ["ARCHS", "LSE_R", "Classifier", "ExportWrapper", "build", "lse_pool"]

#: Sharpness r of the log-sum-exp pooling (r -> 0: average pooling; r -> infinity: max pooling).
LSE_R = 10.0


def lse_pool(x: torch.Tensor, r: float = LSE_R) -> torch.Tensor:
    """Log-sum-exp pooling of ``(N, C, h, w)`` to ``(N, C)``: ``log(mean(exp(r * x))) / r`` (ChestX-ray8 eq. 1)."""
    flat = x.flatten(2)
    return (torch.logsumexp(r * flat, dim=2) - math.log(flat.shape[2])) / r

class _SmallTrunk(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        widths = WIDTHS["small"]
        layers: list[nn.Module] = [conv_bn(in_channels, widths[0], 2), nn.MaxPool2d(2)]
        c = widths[0]
        for i, w in enumerate(widths):
            layers.append(BasicBlock(c, w, 1 if i == 0 else 2))
            c = w
        self.body = nn.Sequential(*layers)
        self.channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _Bottleneck(nn.Module):
    """ResNet bottleneck: 1x1 reduce, 3x3 (stride here, as in ResNet v1.5), 1x1 expand x4, shortcut."""

    def __init__(self, cin: int, mid: int, stride: int) -> None:
        super().__init__()
        cout = mid * 4
        self.body = nn.Sequential(conv_bn(cin, mid, 1, kernel=1), conv_bn(mid, mid, stride),
                                  conv_bn(mid, cout, 1, relu=False, kernel=1))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class _ResNet50Trunk(nn.Module):
    def __init__(self, in_channels: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                   nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        c = 64
        for i, (mid, n) in enumerate(zip((64, 128, 256, 512), (3, 4, 6, 3), strict=True)):
            for j in range(n):
                layers.append(_Bottleneck(c, mid, 2 if (j == 0 and i > 0) else 1))
                c = mid * 4
        self.body = nn.Sequential(*layers)
        self.channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class _DenseLayer(nn.Module):
    def __init__(self, cin: int, growth: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, 4 * growth, 1, bias=False),
                                  nn.BatchNorm2d(4 * growth), nn.ReLU(inplace=True),
                                  nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class _DenseNet121Trunk(nn.Module):
    def __init__(self, in_channels: int, growth: int = 32) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False), nn.BatchNorm2d(64),
                                   nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1)]
        c = 64
        for i, n in enumerate((6, 12, 24, 16)):
            for _ in range(n):
                layers.append(_DenseLayer(c, growth))
                c += growth
            if i < 3:  # transition: compression 0.5, 2x2 average pooling
                layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True), nn.Conv2d(c, c // 2, 1, bias=False),
                           nn.AvgPool2d(2)]
                c //= 2
        layers += [nn.BatchNorm2d(c), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)
        self.channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


_TRUNKS = {"small": _SmallTrunk, "resnet50": _ResNet50Trunk, "densenet121": _DenseNet121Trunk}


class Classifier(nn.Module):
    """A trunk, log-sum-exp pooling (:func:`lse_pool`), dropout and one logit per label.

    Parameters
    ----------
    arch : str
        One of :data:`ARCHS`.
    n_labels : int
        Number of labels (outputs).
    in_channels : int, optional
        Image channels (1: grey levels).
    """

    def __init__(self, arch: str, n_labels: int, in_channels: int = 1) -> None:
        super().__init__()
        if arch not in _TRUNKS:
            raise ValueError(f"unknown architecture {arch!r} (choose from {', '.join(ARCHS)})")
        self.trunk = _TRUNKS[arch](in_channels)
        self.dropout = nn.Dropout(0.2)
        self.fc = nn.Linear(self.trunk.channels, n_labels)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map ``(N, C, h, w)`` of images standardised one by one (zero mean, unit variance:
        films differ in brightness and contrast by device and window, findings by local contrast)."""
        flat = x.flatten(1)
        mean = flat.mean(1)[:, None, None, None]
        std = flat.std(1)[:, None, None, None]
        return self.trunk((x - mean) / (std + 1e-3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(lse_pool(self.features(x))))


class ExportWrapper(nn.Module):
    """What the ONNX file computes: one probability per label (sigmoid of the logits) and the class activation
    maps ``(N, labels, h, w)``.

    The map of label k is the label's linear weights applied to the last feature map at every cell,
    ``M_k(x, y) = sum_c w_kc f_c(x, y)`` (Zhou et al. 2016, section 2, without the bias; ChestX-ray8 section 3.2,
    "Global Pooling Layer and Prediction Layer": the activations of the transition layer, S x S x D, multiplied by
    the weights of the prediction layer, D x C), so ``cxrlab cam`` needs no torch: it reads this second output
    (:mod:`cxrlab.models.cam`).
    """

    def __init__(self, net: Classifier) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.net.features(x)
        logits = self.net.fc(lse_pool(feats))  # dropout is the identity in eval mode
        cam = F.conv2d(feats, self.net.fc.weight[:, :, None, None])
        return torch.sigmoid(logits), cam


def build(arch: str, n_labels: int) -> Classifier:
    """A freshly initialised :class:`Classifier` (default torch initialisation under the caller's seed)."""
    return Classifier(arch, n_labels)
