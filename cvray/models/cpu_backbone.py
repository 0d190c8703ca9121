"""The demo / CPU backbone: a narrow ResNet-style network with a 4-level FPN, in plain torch.

Why it exists: nothing can be downloaded on the machines cvray's demo and CI run on, so the
embedded default trains from random initialisation on 2 CPU cores. MobileNetV3-Large (built for
pretrained ImageNet weights) is hard to train from scratch and, at the demo's 128 px input, its
two FPN levels both sit at stride 32 (4x4 cells) while most synthetic objects are 7-40 px wide.
This backbone keeps four levels at strides 4 / 8 / 16 / 32 (32x32 ... 4x4 cells at 128 px), uses
GroupNorm (batch sizes of 2-8 images per worker), and is small enough that a Mask R-CNN on it
takes a few hundred milliseconds per step on one core.

It is the demo and CI backbone only. Real data keeps torchvision's ResNet-50-FPN (or Detectron2)
with pretrained weights; see ``docs/training.md``.

Example::

    body = SmallResNet(widths=(32, 48, 64, 96, 128))
    [f.shape for f in body(torch.zeros(1, 3, 128, 128)).values()]
    # -> [1, 48, 32, 32], [1, 64, 16, 16], [1, 96, 8, 8], [1, 128, 4, 4]
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

__all__ = ["SmallResNet", "SMALL_RESNET_WIDTHS"]

# stem, then the four stages whose outputs feed the FPN (strides 4, 8, 16, 32)
SMALL_RESNET_WIDTHS: tuple[int, ...] = (32, 48, 64, 96, 128)


def _conv(cin: int, cout: int, stride: int, norm: Callable[[int], nn.Module]) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, 1, bias=False), norm(cout), nn.ReLU(inplace=True))


class BasicBlock(nn.Module):
    """ResNet's basic block (two 3x3 convs + identity), stride 1, constant width."""

    def __init__(self, channels: int, norm: Callable[[int], nn.Module]):
        super().__init__()
        self.conv1 = _conv(channels, channels, 1, norm)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.norm2 = norm(channels)
        nn.init.zeros_(self.norm2.weight)  # each block starts as the identity (Goyal et al. 2017)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(x + self.norm2(self.conv2(self.conv1(x))))


class SmallResNet(nn.Module):
    """Stem (stride 2) + four stages, each a strided 3x3 conv and ``blocks`` basic blocks.

    ``forward`` returns an ordered dict ``{"0": C2, "1": C3, "2": C4, "3": C5}`` (strides 4 to 32),
    the layout torchvision's ``BackboneWithFPN`` expects from its body.
    """

    def __init__(self, widths: tuple[int, ...] = SMALL_RESNET_WIDTHS, blocks: int = 1,
                 norm: Callable[[int], nn.Module] = nn.BatchNorm2d):
        super().__init__()
        if len(widths) != 5:
            raise ValueError(f"SmallResNet takes 5 widths (stem + 4 stages), got {widths}")
        self.stem = _conv(3, widths[0], 2, norm)
        # children named and registered in forward order: torchvision's IntermediateLayerGetter
        # (inside BackboneWithFPN) runs them in that order and taps layer1..layer4
        for k, (cin, cout) in enumerate(zip(widths[:-1], widths[1:]), start=1):
            self.add_module(f"layer{k}", nn.Sequential(
                _conv(cin, cout, 2, norm), *[BasicBlock(cout, norm) for _ in range(blocks)]))
        self.out_channels_list = list(widths[1:])
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        x = self.stem(x)
        out: OrderedDict[str, torch.Tensor] = OrderedDict()
        for i in range(4):
            x = getattr(self, f"layer{i + 1}")(x)
            out[str(i)] = x
        return out
