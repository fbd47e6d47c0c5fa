"""Normalization layers shared by the SPADE family (SPADE, SEAN, OASIS, RESAIL)."""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm

ParamFreeNorm = Literal["instance", "batch", "syncbatch"]


def param_free_norm(kind: ParamFreeNorm, num_features: int) -> nn.Module:
    """The non-affine normalization applied before spatially-adaptive modulation.

    ``syncbatch`` is a plain ``BatchNorm2d`` on one device (identical state_dict to the official
    SynchronizedBatchNorm2d); ``bench.training`` converts it with ``nn.SyncBatchNorm`` under DDP.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(num_features, affine=False)
    if kind in ("batch", "syncbatch"):
        return nn.BatchNorm2d(num_features, affine=False)
    raise ValueError(f"unknown param-free norm {kind!r}; expected instance, batch or syncbatch")


class SPADE(nn.Module):
    """Spatially-adaptive denormalization (Park et al., CVPR 2019, Eq. 1).

    ``x_hat * (1 + gamma(m)) + beta(m)`` where ``m`` is the segmentation map nearest-resized to ``x``.
    Attribute names follow the official code so released checkpoints load strictly.
    """

    norm_attr = "param_free_norm"  # OASIS names it ``first_norm``

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        *,
        hidden: int = 128,
        kernel: int = 3,
        param_free_norm: ParamFreeNorm = "syncbatch",
    ) -> None:
        super().__init__()
        setattr(self, self.norm_attr, globals()["param_free_norm"](param_free_norm, norm_nc))
        pad = kernel // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel, padding=pad)

    def modulation(self, segmap: torch.Tensor, size: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gamma, beta)`` predicted from the segmentation map at ``size``."""
        seg = F.interpolate(segmap, size=size, mode="nearest")
        actv = self.mlp_shared(seg)
        return self.mlp_gamma(actv), self.mlp_beta(actv)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:
        normalized = getattr(self, self.norm_attr)(x)
        gamma, beta = self.modulation(segmap, x.shape[2:])
        return normalized * (1 + gamma) + beta


def spectral_conv(conv: nn.Module, enabled: bool = True) -> nn.Module:
    """Wrap with the classic hook-based spectral norm (keys ``weight_orig/_u/_v``, as the releases)."""
    return spectral_norm(conv) if enabled else conv


def instance_norm_conv(conv: nn.Conv2d, *, spectral: bool = True) -> nn.Sequential:
    """The official ``spectralinstance`` layer: SN conv without bias, then InstanceNorm(affine=False)."""
    conv = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False
    )
    return nn.Sequential(spectral_conv(conv, spectral), nn.InstanceNorm2d(conv.out_channels, affine=False))
