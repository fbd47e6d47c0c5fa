"""CelebAMask-HQ evaluator: the face-parsing U-Net of switchablenorms/CelebAMask-HQ.

A re-implementation of ``face_parsing/unet.py`` ``unet()`` at commit 3f6c45d (defaults
``feature_scale=4, n_classes=19, is_deconv=True, in_channels=3, is_batchnorm=True``), the
"simple Unet" released with CelebAMask-HQ as ``model.pth``. Keys match that file (a state_dict
of the bare network, no ``module.`` prefix).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 19


class UNetConv2(nn.Module):
    """[Conv3x3 (with bias) -> BN -> ReLU] x 2; keys ``conv1.{0,1}.*``, ``conv2.{0,1}.*``."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(in_size, out_size, 3, 1, 1), nn.BatchNorm2d(out_size), nn.ReLU())
        self.conv2 = nn.Sequential(
            nn.Conv2d(out_size, out_size, 3, 1, 1), nn.BatchNorm2d(out_size), nn.ReLU()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.conv1(x))


class UNetUp(nn.Module):
    """2x transposed-conv upsampling, concat with the (padded) skip, then :class:`UNetConv2`."""

    def __init__(self, in_size: int, out_size: int) -> None:
        super().__init__()
        self.conv = UNetConv2(in_size, out_size)  # registered before ``up``, as in the file
        self.up = nn.ConvTranspose2d(in_size, out_size, kernel_size=2, stride=2)

    def forward(self, skip: torch.Tensor, below: torch.Tensor) -> torch.Tensor:
        up = self.up(below)
        # The official code pads the skip by half the size offset on every side (a no-op for
        # inputs that are multiples of 16, the only sizes where the shapes agree anyway).
        half = (up.shape[2] - skip.shape[2]) // 2
        skip = F.pad(skip, [half, half, half, half])
        return self.conv(torch.cat([skip, up], 1))


class UNet(nn.Module):
    """The CelebAMask-HQ face-parsing U-Net; filters 16/32/64/128/256, logits at input size."""

    def __init__(self, n_classes: int = NUM_CLASSES, in_channels: int = 3, feature_scale: int = 4) -> None:
        super().__init__()
        f = [c // feature_scale for c in (64, 128, 256, 512, 1024)]
        self.conv1 = UNetConv2(in_channels, f[0])
        self.maxpool1 = nn.MaxPool2d(kernel_size=2)
        self.conv2 = UNetConv2(f[0], f[1])
        self.maxpool2 = nn.MaxPool2d(kernel_size=2)
        self.conv3 = UNetConv2(f[1], f[2])
        self.maxpool3 = nn.MaxPool2d(kernel_size=2)
        self.conv4 = UNetConv2(f[2], f[3])
        self.maxpool4 = nn.MaxPool2d(kernel_size=2)
        self.center = UNetConv2(f[3], f[4])
        self.up_concat4 = UNetUp(f[4], f[3])
        self.up_concat3 = UNetUp(f[3], f[2])
        self.up_concat2 = UNetUp(f[2], f[1])
        self.up_concat1 = UNetUp(f[1], f[0])
        self.final = nn.Conv2d(f[0], n_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw class logits ``[B, 19, H, W]``; H and W must be multiples of 16."""
        conv1 = self.conv1(x)
        conv2 = self.conv2(self.maxpool1(conv1))
        conv3 = self.conv3(self.maxpool2(conv2))
        conv4 = self.conv4(self.maxpool3(conv3))
        center = self.center(self.maxpool4(conv4))
        up4 = self.up_concat4(conv4, center)
        up3 = self.up_concat3(conv3, up4)
        up2 = self.up_concat2(conv2, up3)
        up1 = self.up_concat1(conv1, up2)
        return self.final(up1)
