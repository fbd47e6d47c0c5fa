"""Multi-scale PatchGAN discriminators of the SPADE family (after pix2pixHD)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from methods.common.normalization import instance_norm_conv


class NLayerDiscriminator(nn.Module):
    """PatchGAN with ``n_layers_D`` conv stages (modules ``model0..model{n}``, as the official code).

    SPADE: ``n_layers_D=4``, the last middle conv has stride 1. SEAN: ``n_layers_D=3`` and every middle
    conv has stride 2 (``stride_last=2``). Middle convs use the ``spectralinstance`` norm.
    """

    def __init__(
        self, input_nc: int, *, ndf: int = 64, n_layers: int = 4, stride_last: int = 1, spectral: bool = True
    ) -> None:
        super().__init__()
        kw, padw = 4, int(math.ceil((4 - 1.0) / 2))
        nf = ndf
        stages: list[list[nn.Module]] = [
            [nn.Conv2d(input_nc, nf, kw, stride=2, padding=padw), nn.LeakyReLU(0.2, False)]
        ]
        for n in range(1, n_layers):
            nf_prev, nf = nf, min(nf * 2, 512)
            stride = stride_last if n == n_layers - 1 else 2
            conv = nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=padw)
            stages.append([instance_norm_conv(conv, spectral=spectral), nn.LeakyReLU(0.2, False)])
        stages.append([nn.Conv2d(nf, 1, kw, stride=1, padding=padw)])
        for i, stage in enumerate(stages):
            self.add_module(f"model{i}", nn.Sequential(*stage))
        self.n_stages = len(stages)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """All stage outputs; the last is the patch prediction, the others feed feature matching."""
        results = []
        for i in range(self.n_stages):
            x = getattr(self, f"model{i}")(x)
            results.append(x)
        return results


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` PatchGANs on successively 2x average-pooled inputs (``discriminator_0`` = full size)."""

    def __init__(self, input_nc: int, *, num_D: int = 2, **kwargs: int | bool) -> None:  # noqa: N803
        super().__init__()
        self.num_D = num_D
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", NLayerDiscriminator(input_nc, **kwargs))  # type: ignore[arg-type]

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, kernel_size=3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for i in range(self.num_D):
            results.append(getattr(self, f"discriminator_{i}")(x))
            if i != self.num_D - 1:
                x = self.downsample(x)
        return results
