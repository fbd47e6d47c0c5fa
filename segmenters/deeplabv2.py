"""COCO-Stuff evaluator: DeepLab v2 (ResNet-101, ASPP) in the MSC wrapper, from kazuto1011/deeplab-pytorch.

A re-implementation of ``libs.models.DeepLabV2_ResNet101_MSC(n_classes=182)`` at commit 4219467
(Chen et al., "DeepLab", TPAMI 2017), the network SPADE and its successors use to score
COCO-Stuff images. Keys match the released ``deeplabv2_resnet101_msc-cocostuff164k-100000.pth``,
a state_dict of the MSC module: ``base.layer{1..5}.*`` and ``base.aspp.c{0..3}.*``.

The ResNet is the MSRA/Caffe variant: the stride sits on the first 1x1 conv of a bottleneck, the
stem max-pool uses ``ceil_mode=True`` (so 128 px -> 17 px output, not 16), and layer4/layer5 are
dilated (2 and 4) instead of strided, giving output stride 8.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 182


class ConvBnReLU(nn.Sequential):
    """Conv (no bias) -> BN(eps 1e-5, momentum 0.001) [-> ReLU]; keys ``conv.*``, ``bn.*``."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int,
        stride: int,
        padding: int,
        dilation: int,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.add_module("conv", nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation, bias=False))
        self.add_module("bn", nn.BatchNorm2d(out_ch, eps=1e-5, momentum=1 - 0.999))
        if relu:
            self.add_module("relu", nn.ReLU())


class Bottleneck(nn.Module):
    """MSRA bottleneck: ``reduce`` (1x1, strided) -> ``conv3x3`` (dilated) -> ``increase``."""

    expansion = 4

    def __init__(self, in_ch: int, out_ch: int, stride: int, dilation: int, downsample: bool) -> None:
        super().__init__()
        mid_ch = out_ch // self.expansion
        self.reduce = ConvBnReLU(in_ch, mid_ch, 1, stride, 0, 1, True)
        self.conv3x3 = ConvBnReLU(mid_ch, mid_ch, 3, 1, dilation, dilation, True)
        self.increase = ConvBnReLU(mid_ch, out_ch, 1, 1, 0, 1, False)
        self.shortcut: nn.Module = (
            ConvBnReLU(in_ch, out_ch, 1, stride, 0, 1, False) if downsample else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.increase(self.conv3x3(self.reduce(x)))
        h += self.shortcut(x)
        return F.relu(h)


class ResLayer(nn.Sequential):
    """``block1..blockN``; only the first block downsamples and has a projection shortcut."""

    def __init__(self, n_layers: int, in_ch: int, out_ch: int, stride: int, dilation: int) -> None:
        super().__init__()
        for i in range(n_layers):
            self.add_module(
                f"block{i + 1}",
                Bottleneck(
                    in_ch=in_ch if i == 0 else out_ch,
                    out_ch=out_ch,
                    stride=stride if i == 0 else 1,
                    dilation=dilation,
                    downsample=i == 0,
                ),
            )


class Stem(nn.Sequential):
    """7x7/2 conv + 3x3/2 max-pool with ``ceil_mode=True`` (differs from MSRA and FAIR ResNets)."""

    def __init__(self, out_ch: int) -> None:
        super().__init__()
        self.add_module("conv1", ConvBnReLU(3, out_ch, 7, 2, 3, 1))
        self.add_module("pool", nn.MaxPool2d(3, 2, 1, ceil_mode=True))


class ASPP(nn.Module):
    """DeepLab v2 ASPP: the **sum** of parallel dilated 3x3 convs straight to class scores."""

    def __init__(self, in_ch: int, out_ch: int, rates: Sequence[int]) -> None:
        super().__init__()
        for i, rate in enumerate(rates):
            self.add_module(f"c{i}", nn.Conv2d(in_ch, out_ch, 3, 1, padding=rate, dilation=rate, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # summed in registration order, as the official sum([...]) does (its leading 0 + t is exact)
        first, *rest = self.children()
        out: torch.Tensor = first(x)
        for stage in rest:
            out = out + stage(x)
        return out


class DeepLabV2(nn.Sequential):
    """Dilated ResNet + ASPP, output stride 8 (ceil-style)."""

    def __init__(
        self,
        n_classes: int = NUM_CLASSES,
        n_blocks: Sequence[int] = (3, 4, 23, 3),
        atrous_rates: Sequence[int] = (6, 12, 18, 24),
    ) -> None:
        super().__init__()
        ch = [64 * 2**p for p in range(6)]
        self.add_module("layer1", Stem(ch[0]))
        self.add_module("layer2", ResLayer(n_blocks[0], ch[0], ch[2], 1, 1))
        self.add_module("layer3", ResLayer(n_blocks[1], ch[2], ch[3], 2, 1))
        self.add_module("layer4", ResLayer(n_blocks[2], ch[3], ch[4], 1, 2))
        self.add_module("layer5", ResLayer(n_blocks[3], ch[4], ch[5], 1, 4))
        self.add_module("aspp", ASPP(ch[5], n_classes, atrous_rates))


class MSC(nn.Module):
    """Multi-scale inputs: pixel-wise max of the logits for the 1.0x, 0.5x and 0.75x inputs.

    The smaller inputs are made with ``F.interpolate(x, scale_factor=p)``, not with an explicit
    size: the two differ whenever ``H * p`` is not an integer, and the official code uses the
    former.
    """

    def __init__(self, base: nn.Module, scales: Sequence[float] = (0.5, 0.75)) -> None:
        super().__init__()
        self.base = base
        self.scales = tuple(scales)

    def pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The base logits for each input scale, ``[1.0, *scales]``, before any resizing."""
        out = [self.base(x)]
        for p in self.scales:
            out.append(self.base(F.interpolate(x, scale_factor=p, mode="bilinear", align_corners=False)))
        return out

    @staticmethod
    def merge(pyramid: Sequence[torch.Tensor]) -> torch.Tensor:
        """Resize every scale's logits to the 1.0x size and take the element-wise max."""
        size = pyramid[0].shape[2:]
        resized = [pyramid[0]] + [
            F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in pyramid[1:]
        ]
        return torch.max(torch.stack(resized), dim=0)[0]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Eval-mode output: raw logits at 1/8 of the input (the train-mode list is not needed)."""
        return self.merge(self.pyramid(x))


def deeplabv2_resnet101_msc(n_classes: int = NUM_CLASSES) -> MSC:
    """``DeepLabV2_ResNet101_MSC``: the architecture of the released COCO-Stuff 164k model."""
    return MSC(DeepLabV2(n_classes, (3, 4, 23, 3), (6, 12, 18, 24)), scales=(0.5, 0.75))
