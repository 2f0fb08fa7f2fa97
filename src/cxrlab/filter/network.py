"""The outlier CNN in plain torch (training only: inference runs its ONNX export on onnxruntime).

Not for direct use: :mod:`cxrlab.filter.train` imports it, and importing it imports torch (the ``[ml]`` extra).

A small residual network (He et al., "Deep Residual Learning for Image Recognition", 2016: the basic block of
ResNet-18) sized for CPU work: a stride-2 stem and a max-pool take the 256 px input to 64 px, four stages of one
basic block each (stride 2 from the second) end at 8 px, then global average pooling and two heads: the view
softmax (:data:`~cxrlab.filter.classes.VIEW_CLASSES`) and the age sigmoid (probability of ``pediatric``). At the
default width (16, 32, 64, 128) it costs about 66 million multiply-adds per 256 px image, the order of
MobileNetV3-small (56 M at 224 px), with 0.3 M parameters; the ``tiny`` width (8, 16, 32, 64) a quarter of that.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["WIDTHS", "BasicBlock", "CxrFilterNet", "ExportWrapper", "conv_bn"]

#: Channel widths of the four stages, by name.
WIDTHS: dict[str, tuple[int, int, int, int]] = {"tiny": (8, 16, 32, 64), "small": (16, 32, 64, 128)}


def conv_bn(cin: int, cout: int, stride: int, *, relu: bool = True, kernel: int = 3) -> nn.Sequential:
    """Convolution (no bias, "same" padding), batch norm and (by default) ReLU."""
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(cout)]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions and a shortcut (1x1 when the shape changes)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.a = conv_bn(cin, cout, stride)
        self.b = conv_bn(cout, cout, 1, relu=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.b(self.a(x)) + self.shortcut(x))


class CxrFilterNet(nn.Module):
    """Two-headed classifier: view logits ``(N, n_view)`` and the pediatric logit ``(N,)``.

    Parameters
    ----------
    n_view : int
        Number of view classes.
    widths : tuple of int
        Channels of the four stages (:data:`WIDTHS`).
    in_channels : int, optional
        Input channels (:data:`cxrlab.filter.render.CHANNELS`).
    """

    def __init__(self, n_view: int, widths: tuple[int, ...] = WIDTHS["small"], in_channels: int = 2) -> None:
        super().__init__()
        self.stem = nn.Sequential(conv_bn(in_channels, widths[0], 2), nn.MaxPool2d(2))
        blocks, c = [], widths[0]
        for i, w in enumerate(widths):
            blocks.append(BasicBlock(c, w, 1 if i == 0 else 2))
            c = w
        self.blocks = nn.Sequential(*blocks)
        self.dropout = nn.Dropout(0.2)
        self.view = nn.Linear(c, n_view)
        self.age = nn.Linear(c, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1)
        h = self.dropout(h)
        return self.view(h), self.age(h).squeeze(1)


class ExportWrapper(nn.Module):
    """What the ONNX file computes: view probabilities (softmax) and the pediatric probability (sigmoid)."""

    def __init__(self, net: CxrFilterNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        view, age = self.net(x)
        return torch.softmax(view, dim=1), torch.sigmoid(age)
