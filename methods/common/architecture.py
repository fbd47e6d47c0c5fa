"""Residual blocks shared by the SPADE-family generators."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from methods.common.normalization import SPADE, ParamFreeNorm, spectral_conv

NormFactory = Callable[[int], nn.Module]


def leaky(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 2e-1)


class SPADEResnetBlock(nn.Module):
    """SPADE ResBlk (Park et al. 2019, Fig. 4): pre-activation, spectral-norm convs, learned shortcut.

    ``norm`` builds the normalization for a channel count; it defaults to :class:`SPADE` and is replaced
    by RESAIL's guided normalization. Extra positional arguments of ``forward`` go to every norm.
    """

    def __init__(
        self,
        fin: int,
        fout: int,
        semantic_nc: int,
        *,
        spectral: bool = True,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_hidden: int = 128,
        norm: NormFactory | None = None,
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        fmiddle = min(fin, fout)
        self.conv_0 = spectral_conv(nn.Conv2d(fin, fmiddle, 3, padding=1), spectral)
        self.conv_1 = spectral_conv(nn.Conv2d(fmiddle, fout, 3, padding=1), spectral)
        if self.learned_shortcut:
            self.conv_s = spectral_conv(nn.Conv2d(fin, fout, 1, bias=False), spectral)
        if norm is None:

            def norm(nc: int) -> nn.Module:
                return SPADE(nc, semantic_nc, hidden=spade_hidden, param_free_norm=param_free_norm)

        self.norm_0 = norm(fin)
        self.norm_1 = norm(fmiddle)
        if self.learned_shortcut:
            self.norm_s = norm(fin)

    def shortcut(self, x: torch.Tensor, seg: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        return self.conv_s(self.norm_s(x, seg, *extra)) if self.learned_shortcut else x

    def forward(self, x: torch.Tensor, seg: torch.Tensor, *extra: torch.Tensor) -> torch.Tensor:
        x_s = self.shortcut(x, seg, *extra)
        dx = self.conv_0(leaky(self.norm_0(x, seg, *extra)))
        dx = self.conv_1(leaky(self.norm_1(dx, seg, *extra)))
        return x_s + dx
