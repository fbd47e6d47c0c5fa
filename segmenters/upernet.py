"""ADE20K evaluator: ResNet-101 + UPerNet from CSAILVision/semantic-segmentation-pytorch.

A re-implementation of ``config/ade20k-resnet101-upernet.yaml`` at commit 8f27c9b (= PyPI
``mit-semseg==1.0.0``), the network SPADE and its successors use to score ADE20K images.
Module attribute names follow the official code so that the two released files,
``encoder_epoch_50.pth`` and ``decoder_epoch_50.pth``, load with ``strict=True`` into
:attr:`UPerNet101.encoder` and :attr:`UPerNet101.decoder`.

Two details matter for exact parity:

* The encoder is CSAIL's own ResNet-101, not torchvision's: a three-conv "deep stem"
  (3->64 stride 2, 64->64, 64->128) and ``inplanes = 128`` entering ``layer1``.
* Every BatchNorm is CSAIL's ``SynchronizedBatchNorm2d`` (eps 1e-5, momentum 0.001), which
  registers three private buffers next to the standard ones; they sit in the released
  state_dicts but are never read at inference (see :class:`CSAILBatchNorm2d`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 150

# The buffers CSAIL's SynchronizedBatchNorm2d adds; a loader may treat them as optional.
SYNCBN_PRIVATE_BUFFERS = ("_tmp_running_mean", "_tmp_running_var", "_running_iter")


class CSAILBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the state_dict layout of CSAIL's ``SynchronizedBatchNorm2d``.

    In eval mode the official layer calls ``F.batch_norm`` with the running statistics, which is
    exactly what ``nn.BatchNorm2d`` does, so only the key layout needs reproducing: the three
    private buffers ``_tmp_running_mean``, ``_tmp_running_var`` and ``_running_iter`` follow the
    standard five entries, in that order.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.001) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.register_buffer("_tmp_running_mean", torch.zeros(num_features))
        self.register_buffer("_tmp_running_var", torch.ones(num_features))
        self.register_buffer("_running_iter", torch.ones(1))


def conv3x3_bn_relu(in_planes: int, out_planes: int, stride: int = 1) -> nn.Sequential:
    """3x3 conv (no bias) + BN + ReLU; keys ``0.weight``, ``1.*`` as in the official helper."""
    return nn.Sequential(
        nn.Conv2d(in_planes, out_planes, kernel_size=3, stride=stride, padding=1, bias=False),
        CSAILBatchNorm2d(out_planes),
        nn.ReLU(inplace=True),
    )


class Bottleneck(nn.Module):
    """ResNet bottleneck with the stride on the 3x3 conv (CSAIL / torchvision v1.5 style)."""

    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None
    ) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = CSAILBatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = CSAILBatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = CSAILBatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        out += residual
        return self.relu(out)


class ResNetEncoder(nn.Module):
    """CSAIL's ResNet (deep stem, no dilation), returning the four stage outputs.

    Official: ``mit_semseg.models.models.Resnet(resnet101())`` -- the original network without
    ``avgpool``/``fc``. Strides 4/8/16/32 for ``layer1..layer4``.
    """

    def __init__(self, layers: Sequence[int] = (3, 4, 23, 3)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = CSAILBatchNorm2d(64)
        self.relu1 = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn2 = CSAILBatchNorm2d(64)
        self.relu2 = nn.ReLU(inplace=True)
        self.conv3 = nn.Conv2d(64, 128, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn3 = CSAILBatchNorm2d(128)
        self.relu3 = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self._inplanes = 128  # the deep stem ends at 128 channels, not torchvision's 64
        self.layer1 = self._make_layer(64, layers[0], stride=1)
        self.layer2 = self._make_layer(128, layers[1], stride=2)
        self.layer3 = self._make_layer(256, layers[2], stride=2)
        self.layer4 = self._make_layer(512, layers[3], stride=2)

    def _make_layer(self, planes: int, blocks: int, stride: int) -> nn.Sequential:
        out_planes = planes * Bottleneck.expansion
        downsample = None
        if stride != 1 or self._inplanes != out_planes:
            downsample = nn.Sequential(
                nn.Conv2d(self._inplanes, out_planes, kernel_size=1, stride=stride, bias=False),
                CSAILBatchNorm2d(out_planes),
            )
        modules = [Bottleneck(self._inplanes, planes, stride, downsample)]
        self._inplanes = out_planes
        modules += [Bottleneck(out_planes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Return ``[C2, C3, C4, C5]`` (the official ``return_feature_maps=True`` output)."""
        x = self.relu1(self.bn1(self.conv1(x)))
        x = self.relu2(self.bn2(self.conv2(x)))
        x = self.relu3(self.bn3(self.conv3(x)))
        x = self.maxpool(x)
        feats = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = layer(x)
            feats.append(x)
        return feats


class UPerNetDecoder(nn.Module):
    """UPerNet head (Xiao et al., ECCV 2018): PPM on C5, FPN top-down path, fusion at 1/4.

    Official: ``mit_semseg.models.models.UPerNet(num_class=150, fc_dim=2048, use_softmax=True,
    fpn_dim=512)``; the config's builder passes ``fpn_dim=512`` (the class default is 256).
    """

    def __init__(
        self,
        num_class: int = NUM_CLASSES,
        fc_dim: int = 2048,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        fpn_inplanes: Sequence[int] = (256, 512, 1024, 2048),
        fpn_dim: int = 512,
    ) -> None:
        super().__init__()
        self.ppm_pooling = nn.ModuleList(nn.AdaptiveAvgPool2d(s) for s in pool_scales)
        self.ppm_conv = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(fc_dim, 512, kernel_size=1, bias=False),
                CSAILBatchNorm2d(512),
                nn.ReLU(inplace=True),
            )
            for _ in pool_scales
        )
        self.ppm_last_conv = conv3x3_bn_relu(fc_dim + len(pool_scales) * 512, fpn_dim)
        self.fpn_in = nn.ModuleList(
            nn.Sequential(
                nn.Conv2d(c, fpn_dim, kernel_size=1, bias=False),
                CSAILBatchNorm2d(fpn_dim),
                nn.ReLU(inplace=True),
            )
            for c in fpn_inplanes[:-1]
        )
        # the extra Sequential level reproduces the official key names fpn_out.i.0.{0,1}.*
        self.fpn_out = nn.ModuleList(
            nn.Sequential(conv3x3_bn_relu(fpn_dim, fpn_dim)) for _ in fpn_inplanes[:-1]
        )
        self.conv_last = nn.Sequential(
            conv3x3_bn_relu(len(fpn_inplanes) * fpn_dim, fpn_dim),
            nn.Conv2d(fpn_dim, num_class, kernel_size=1),
        )

    def forward(self, conv_out: Sequence[torch.Tensor]) -> torch.Tensor:
        """Return the class logits at the resolution of ``conv_out[0]`` (1/4 of the input)."""
        conv5 = conv_out[-1]
        size5 = conv5.shape[2:]
        ppm_out = [conv5]
        for pool, conv in zip(self.ppm_pooling, self.ppm_conv):
            pooled = F.interpolate(pool(conv5), size5, mode="bilinear", align_corners=False)
            ppm_out.append(conv(pooled))
        f = self.ppm_last_conv(torch.cat(ppm_out, 1))

        fpn_features = [f]
        for i in reversed(range(len(conv_out) - 1)):
            lateral = self.fpn_in[i](conv_out[i])
            f = lateral + F.interpolate(f, size=lateral.shape[2:], mode="bilinear", align_corners=False)
            fpn_features.append(self.fpn_out[i](f))
        fpn_features.reverse()  # [P2, P3, P4, P5]

        out_size = fpn_features[0].shape[2:]
        fusion = [fpn_features[0]] + [
            F.interpolate(p, out_size, mode="bilinear", align_corners=False) for p in fpn_features[1:]
        ]
        return self.conv_last(torch.cat(fusion, 1))


def logits_to_probs(logits: torch.Tensor, seg_size: tuple[int, int]) -> torch.Tensor:
    """The official inference tail: bilinear resize to ``segSize``, then softmax over classes."""
    up = F.interpolate(logits, size=seg_size, mode="bilinear", align_corners=False)
    return F.softmax(up, dim=1)


class UPerNet101(nn.Module):
    """Encoder + decoder, the counterpart of the official ``SegmentationModule`` at inference.

    ``encoder`` and ``decoder`` hold the two released files; this wrapper has no weights of its
    own, so ``state_dict()`` keys are the file keys prefixed with ``encoder.`` / ``decoder.``.
    """

    def __init__(self, num_class: int = NUM_CLASSES) -> None:
        super().__init__()
        self.encoder = ResNetEncoder()
        self.decoder = UPerNetDecoder(num_class=num_class)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """Pre-softmax class scores at 1/4 of the input resolution."""
        return self.decoder(self.encoder(x))

    def forward(self, x: torch.Tensor, seg_size: tuple[int, int]) -> torch.Tensor:
        """Softmax probabilities at ``seg_size`` (official ``segmentation_module(.., segSize=)``)."""
        return logits_to_probs(self.logits(x), seg_size)
