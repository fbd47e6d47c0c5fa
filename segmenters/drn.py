"""Cityscapes evaluator: DRN-D-105 segmentation network (``DRNSeg``) from fyu/drn.

A re-implementation of ``segment.DRNSeg('drn_d_105', 19)`` at commit d75db2e (Yu, Koltun and
Funkhouser, "Dilated Residual Networks", CVPR 2017), the network pix2pixHD, SPADE and their
successors use to score Cityscapes images. Keys match the released
``drn-d-105_ms_cityscapes.pth``: ``base.{0..8}.*`` (``layer0..layer8`` of the classification DRN
with ``avgpool``/``fc`` dropped), ``seg.*`` and the fixed bilinear upsampler ``up.weight``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

NUM_CLASSES = 19

# drn_d_105 = DRN(Bottleneck, [1, 1, 3, 4, 23, 3, 1, 1], arch='D')
DRN_D_105_LAYERS = (1, 1, 3, 4, 23, 3, 1, 1)
DRN_CHANNELS = (16, 32, 64, 128, 256, 512, 512, 512)


class Bottleneck(nn.Module):
    """DRN bottleneck: stride on the 3x3 conv, which alone carries the dilation."""

    expansion = 4

    def __init__(
        self,
        inplanes: int,
        planes: int,
        stride: int = 1,
        downsample: nn.Module | None = None,
        dilation: int = 1,
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(
            planes, planes, kernel_size=3, stride=stride, padding=dilation, dilation=dilation, bias=False
        )
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        out += residual
        return self.relu(out)


class _DRNBuilder:
    """Builds the stages of a DRN-D the way ``drn.DRN.__init__`` does, tracking ``inplanes``."""

    def __init__(self, inplanes: int) -> None:
        self.inplanes = inplanes

    def conv_layers(self, channels: int, convs: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        """DRN-D's plain conv stages (``_make_conv_layers``): [conv3x3, BN, ReLU] x convs."""
        modules: list[nn.Module] = []
        for i in range(convs):
            modules += [
                nn.Conv2d(
                    self.inplanes,
                    channels,
                    kernel_size=3,
                    stride=stride if i == 0 else 1,
                    padding=dilation,
                    dilation=dilation,
                    bias=False,
                ),
                nn.BatchNorm2d(channels),
                nn.ReLU(inplace=True),
            ]
            self.inplanes = channels
        return nn.Sequential(*modules)

    def res_layer(self, planes: int, blocks: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
        """Residual stages (``_make_layer`` with ``new_level=False`` for the dilated ones).

        With ``new_level=False`` the first block uses the full dilation as well, and the
        bottleneck only reads the second dilation entry, so every block has ``dilation``.
        """
        out_planes = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self.inplanes != out_planes:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, out_planes, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(out_planes),
            )
        modules = [Bottleneck(self.inplanes, planes, stride, downsample, dilation=dilation)]
        self.inplanes = out_planes
        modules += [Bottleneck(out_planes, planes, dilation=dilation) for _ in range(1, blocks)]
        return nn.Sequential(*modules)


def drn_d_base(
    layers: Sequence[int] = DRN_D_105_LAYERS, channels: Sequence[int] = DRN_CHANNELS
) -> nn.Sequential:
    """``layer0..layer8`` of a DRN-D as one ``nn.Sequential`` (output stride 8, 512 channels)."""
    b = _DRNBuilder(channels[0])
    layer0 = nn.Sequential(
        nn.Conv2d(3, channels[0], kernel_size=7, stride=1, padding=3, bias=False),
        nn.BatchNorm2d(channels[0]),
        nn.ReLU(inplace=True),
    )
    return nn.Sequential(
        layer0,
        b.conv_layers(channels[0], layers[0], stride=1),
        b.conv_layers(channels[1], layers[1], stride=2),
        b.res_layer(channels[2], layers[2], stride=2),
        b.res_layer(channels[3], layers[3], stride=2),
        b.res_layer(channels[4], layers[4], dilation=2),
        b.res_layer(channels[5], layers[5], dilation=4),
        b.conv_layers(channels[6], layers[6], dilation=2),
        b.conv_layers(channels[7], layers[7], dilation=1),
    )


def bilinear_up_kernel(channels: int, size: int = 16) -> torch.Tensor:
    """The bilinear kernel ``segment.fill_up_weights`` writes into ``up`` (shape [C, 1, k, k]).

    Only used to initialise a fresh network; the released file carries ``up.weight`` and it is
    loaded from there.
    """
    f = math.ceil(size / 2)
    c = (2 * f - 1 - f % 2) / (2.0 * f)
    ramp = torch.tensor([1 - math.fabs(i / f - c) for i in range(size)], dtype=torch.float64)
    kernel = (ramp[:, None] * ramp[None, :]).to(torch.float32)
    return kernel.expand(channels, 1, size, size).clone()


class DRNSeg(nn.Module):
    """DRN-D base + 1x1 classifier + fixed x8 transposed-conv upsampler + log-softmax."""

    def __init__(self, classes: int = NUM_CLASSES, layers: Sequence[int] = DRN_D_105_LAYERS) -> None:
        super().__init__()
        self.base = drn_d_base(layers)
        self.seg = nn.Conv2d(DRN_CHANNELS[-1], classes, kernel_size=1, bias=True)
        self.up = nn.ConvTranspose2d(
            classes, classes, 16, stride=8, padding=4, output_padding=0, groups=classes, bias=False
        )
        with torch.no_grad():
            self.up.weight.copy_(bilinear_up_kernel(classes))
        self.up.weight.requires_grad_(False)  # as in the official code; still a saved parameter

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return ``(log-probabilities at the input size, logits at 1/8)`` as ``DRNSeg`` does.

        The output is exactly ``H x W`` only when both are multiples of 8.
        """
        logits = self.seg(self.base(x))
        return torch.log_softmax(self.up(logits), dim=1), logits
