"""SEAN (Zhu et al., "SEAN: Image Synthesis with Semantic Region-Adaptive Normalization", CVPR 2020).

Module and attribute names follow ZPdesu/SEAN @ 04c7536 (``Zencoder``, ``ace_0``, ``fc_mu{j}``,
``Spade``, ``noise_var``) so its released ``latest_net_G.pth`` loads strictly. Differences from the
official code, none of which changes the function it computes:

* any number of classes: one ``fc_mu{j}`` per style class (the official code hard-codes 19);
* the per-image, per-class Python loops of the style encoder's region pooling and of every ACE's
  style broadcasting are batched tensor operations (``style_impl``). The default ``"fused"`` never
  builds the 512-channel style map: ``conv_gamma`` is linear, so convolving the broadcast map equals
  convolving the one-hot mask with per-image kernels ``W ⊗ relu(fc_mu_j(s_j))`` (C input channels
  instead of 512). ``"batched"`` builds the map with one matmul over the one-hot mask; ``"loop"`` is
  the official per-image per-class loop, kept for tests and benchmarks;
* style codes can be passed in (``style_codes=``) instead of being encoded, for style transfer,
  per-region swaps and interpolation (``encode_styles``, ``swap_regions``, ``interpolate``);
* the noise is drawn per image from a given generator when one is passed (batch-size independent).

Ablation switches of the paper's Table 3 (``SEANConfig.style_encoder``, ``noise``, ``downsampling``)
are documented on the config.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError
from methods.base import METHODS, noise_generator, preset
from methods.common.architecture import leaky
from methods.common.discriminator import MultiscaleDiscriminator
from methods.common.labels import dontcare_channel_first, one_hot, spade_ids
from methods.common.losses import GANMode
from methods.common.normalization import (
    SPADE,
    ParamFreeNorm,
    blend_modulate,
    fused_conv,
    modulate,
    spectral_conv,
)
from methods.common.normalization import param_free_norm as make_param_free_norm
from methods.common.onehot import LabelMap, OneHotConv, conv_labels, label_input, onehot_conv2d, resize_labels
from methods.common.perf import SpeedConfig, adam, apply_speed_options
from methods.spade import SPADEMethod, init_weights, latent_size

StyleImpl = Literal["fused", "batched", "loop"]
StyleEncoderPlacement = Literal["unified", "resblk", "sean"]
STYLE_IMPLS: tuple[str, ...] = ("fused", "batched", "loop")
StyleKernelImpl = Literal["matmul", "einsum"]


@dataclass(frozen=True, kw_only=True)
class SEANConfig(SpeedConfig):
    """SEAN's options under their official names, plus the ablation switches of the paper's Table 3.

    Ablations (our reading of Sec. 4 / Table 3 of the paper, mapped onto the official code):

    * ``style_encoder`` — where the per-region style codes that modulate the ACE layers come from.
      There is always one style encoder (``Zencoder``) producing the style matrix ST [B, C, 512]; what
      varies is how many sets of per-style transformations ``fc_mu{j}`` ("per style convolution",
      Fig. 3) turn ST into the codes a SEAN normalization broadcasts:

      - ``"sean"`` (official, "SEAN-level encoders"): every ACE owns its ``fc_mu{j}``, so every SEAN
        normalization sees its own style codes (keys ``<block>.ace_k.fc_mu{j}``);
      - ``"resblk"`` ("ResBlk-level encoders"): one ``fc_mu{j}`` set per SEAN ResBlk, shared by its
        ``ace_0``/``ace_1``/``ace_s`` (keys ``<block>.fc_mu{j}``);
      - ``"unified"`` ("unified encoder"): one ``fc_mu{j}`` set in the generator; all ACE layers use
        the same style code set (keys ``fc_mu{j}``).

      Each ACE keeps its own ``conv_gamma``/``conv_beta`` and blending weights in every variant.
    * ``noise`` — the learnable per-channel noise added before the parameter-free norm (off: no
      ``noise_var`` parameters and no noise).
    * ``downsampling`` — the style encoder's bottleneck: on (official) = two stride-2 convs and one
      stride-2 transposed conv, codes at H/2; off = the same layers with stride 1, codes at H.
    """

    # generator
    ngf: int = 64
    # ACE's own parameter-free norm and its inner SPADE's (both syncbatch officially)
    param_free_norm: ParamFreeNorm = "syncbatch"
    spectral_G: bool = True
    spade_hidden: int = 128  # hard-coded 128 officially; smaller only for tiny presets
    num_upsampling_layers: Literal["normal", "more"] = "normal"  # the official forward never runs up_4
    init_type: Literal["xavier", "normal", "kaiming", "orthogonal", "none"] = "xavier"
    init_variance: float = 0.02
    # style
    style_length: int = 512  # hard-coded 512 in the official ACE; smaller only for tiny presets
    style_ngf: int = 32  # Zencoder width (official Zencoder(3, 512) with its default ngf=32)
    style_encoder: StyleEncoderPlacement = "sean"
    noise: bool = True
    downsampling: bool = True
    style_impl: StyleImpl = "fused"  # same function, different speed (see the module docstring)
    # the per-image kernels of the fused formulation: "matmul" against the weight as stored (2x faster on
    # CPU), "einsum" (the arithmetic before issue 17). Same function, float rounding differs.
    style_kernel: StyleKernelImpl = "matmul"
    # 19 classes: the one-hot convolutions are already cheap, and the gather measured no faster on CPU
    # (bench/perf/vs_official.py, 256x256, 1 thread: forward 0.95x, forward+backward 1.00x); "gather" is
    # available for hardware where it wins
    onehot_conv: OneHotConv = "dense"
    # input channels
    contain_dontcare_label: bool = False
    no_instance: bool = True
    # discriminator (n_layers_D 3, every conv stride 2)
    ndf: int = 64
    num_D: int = 2
    n_layers_D: int = 3
    spectral_D: bool = True
    # losses: hinge GAN, feature matching, VGG; no KL
    gan_mode: GANMode = "hinge"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    no_ganFeat_loss: bool = False
    no_vgg_loss: bool = False
    vgg_weights: str | None = None
    # pixel L1 to the real image: not an official option (0 = off, as officially); the synthetic
    # preset's stand-in for the VGG loss, whose ImageNet weights cannot be downloaded here
    lambda_l1: float = 0.0
    # optimiser: with TTUR (default) G lr/2, D lr*2 and betas hard-coded to (0, 0.9) as the official
    # create_optimizers; beta1/beta2 (official defaults 0.5/0.999) apply only with no_TTUR
    lr: float = 0.0002
    beta1: float = 0.5
    beta2: float = 0.999
    no_TTUR: bool = False
    D_steps_per_G: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.style_length < 1 or self.style_ngf < 1:
            raise ValueError("style_length and style_ngf must be >= 1")
        if self.crop_size // 2 ** {"normal": 5, "more": 6}[self.num_upsampling_layers] < 1:
            raise ValueError(
                f"crop_size {self.crop_size} is too small for num_upsampling_layers={self.num_upsampling_layers!r}"
            )


# ---------------------------------------------------------------------------------------------------
# Style math: region pooling, per-class projection, broadcasting + gamma/beta convolutions


def _region_mask(segmap: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Membership as the official ``segmap.bool()`` (nonzero = inside), as a float mask."""
    return segmap.ne(0).to(dtype)


def region_average(codes: torch.Tensor, segmap: torch.Tensor, impl: StyleImpl = "fused") -> torch.Tensor:
    """Region-wise average pooling: ``[B, S, h, w]`` codes → ``[B, C, S]`` mean code per class.

    ``segmap`` [B, C, H, W] is nearest-resized to the codes; classes without pixels get zeros.
    """
    seg = F.interpolate(segmap, size=codes.shape[2:], mode="nearest")
    if impl == "loop":  # the official Zencoder loop
        b, s = codes.shape[:2]
        out = codes.new_zeros(b, seg.shape[1], s)
        mask = seg.bool()
        for i in range(b):
            for j in range(seg.shape[1]):
                area = int(mask[i, j].sum())
                if area > 0:
                    out[i, j] = codes[i].masked_select(mask[i, j]).reshape(s, area).mean(1)
        return out
    m = _region_mask(seg, codes.dtype).flatten(2)  # B, C, N
    sums = torch.bmm(m, codes.flatten(2).transpose(1, 2))  # B, C, S
    return sums / m.sum(2, keepdim=True).clamp_min(1.0)


def add_style_projections(owner: nn.Module, num_classes: int, style_length: int) -> None:
    """``owner.fc_mu0 .. fc_mu{C-1}``: one Linear per class (official names, so checkpoints load)."""
    for j in range(num_classes):
        owner.add_module(f"fc_mu{j}", nn.Linear(style_length, style_length))


def project_styles(
    owner: nn.Module, codes: torch.Tensor, classes: torch.Tensor | None = None
) -> torch.Tensor:
    """``relu(fc_mu_j(codes[:, j]))`` for the given classes as one batched matmul → ``[B, len(classes), S]``.

    ``codes`` is ``[B, C, S]`` for all classes; ``classes`` (long indices, default all) selects which.
    """
    ids = range(codes.shape[1]) if classes is None else classes.tolist()
    fcs = [getattr(owner, f"fc_mu{j}") for j in ids]
    if not fcs:
        return codes.new_zeros(codes.shape[0], 0, codes.shape[2])
    weight = torch.stack([fc.weight for fc in fcs])  # C', S_out, S_in
    bias = torch.stack([fc.bias for fc in fcs]).unsqueeze(2)  # C', S_out, 1
    sel = codes if classes is None else codes.index_select(1, classes)
    # one bmm over classes with the weights as stored ([out, in]), so no weight transpose is copied
    out = torch.baddbmm(bias, weight, sel.permute(1, 2, 0))  # C', S_out, B
    return F.relu(out.permute(2, 0, 1))


def project_styles_loop(owner: nn.Module, codes: torch.Tensor) -> torch.Tensor:
    """Per image and class ``relu(fc_mu_j(code))`` (the official formulation; for tests)."""
    out = torch.zeros_like(codes)
    for i in range(codes.shape[0]):
        for j in range(codes.shape[1]):
            out[i, j] = F.relu(getattr(owner, f"fc_mu{j}")(codes[i][j]))
    return out


def style_kernels(mu: torch.Tensor, weight: torch.Tensor, impl: StyleKernelImpl = "matmul") -> torch.Tensor:
    """Per-image kernels ``K[b, o, j] = sum_s weight[o, s] mu[b, j, s]``: ``einsum("bcs,oskl->bockl")``.

    ``mu`` [B, C', S], ``weight`` [O, S, kh, kw] → [B, O, C', kh, kw]. ``impl="matmul"``: one ``matmul`` per
    image against the weight as stored ([O, S, kh*kw], batched over O); ``"einsum"`` first copies the weight
    to [S, O, kh, kw] (measured 2x slower forward+backward for SEAN's 1024x512x3x3 style convolutions on
    CPU). Same function; the float rounding differs (config field ``style_kernel``).
    """
    if impl == "einsum":
        return torch.einsum("bcs,oskl->bockl", mu, weight)
    o, s, kh, kw = weight.shape
    w = weight.reshape(o, s, kh * kw)
    return torch.stack([torch.matmul(m, w) for m in mu.unbind(0)]).view(mu.shape[0], o, mu.shape[1], kh, kw)


def fused_style_modulation(
    mu: torch.Tensor, mask: torch.Tensor, convs: Sequence[nn.Conv2d], *, split: bool = True,
    kernel_impl: StyleKernelImpl = "matmul",
) -> list[torch.Tensor] | torch.Tensor:
    """``conv(Σ_j mu_j ⊗ mask_j)`` for each conv, without building the S-channel style map.

    By linearity the conv of the broadcast map equals a conv of the C-channel mask with per-image
    kernels ``K_b[o, j] = Σ_s W[o, s] mu[b, j, s]`` (zero padding maps to zero padding), computed as
    one grouped convolution over the batch. ``split=False``: the one ``[B, sum O_i, H, W]`` tensor.
    """
    b, c, h, w = mask.shape
    bias = torch.cat([cv.bias for cv in convs])  # type: ignore[misc]
    o, (kh, kw) = bias.shape[0], convs[0].kernel_size
    if c == 0:  # no style region at all: the style map is zero, only the bias remains
        out = bias.view(1, o, 1, 1).expand(b, o, h, w)
    else:
        # kernels per conv, then concatenated: they are C/S times smaller than the weights
        kernels = torch.cat([style_kernels(mu, cv.weight, kernel_impl) for cv in convs], dim=1)
        out = F.conv2d(
            mask.reshape(1, b * c, h, w),
            kernels.reshape(b * o, c, kh, kw),
            padding=convs[0].padding,
            groups=b,
        )
        out = out.view(b, o, h, w) + bias.view(1, o, 1, 1)
    return list(out.split([cv.out_channels for cv in convs], dim=1)) if split else out


def gathered_style_modulation(
    mu: torch.Tensor, classes: LabelMap, convs: Sequence[nn.Conv2d], *, split: bool = True,
    kernel_impl: StyleKernelImpl = "matmul",
) -> list[torch.Tensor] | torch.Tensor:
    """:func:`fused_style_modulation` with the mask given as ids: ``classes`` holds, per pixel, the index
    of its class among the ``C'`` present ones (``LabelMap.subset``); ``mu`` is ``[B, C', S]``.

    The per-image kernels ``K_b[o, j] = Σ_s W[o, s] mu[b, j, s]`` are gathered by class id
    (:func:`~methods.common.onehot.onehot_conv2d` with one kernel per image) → ``[B, O_i, H, W]`` per conv,
    or with ``split=False`` the one ``[B, sum O_i, H, W]`` tensor they are channel slices of.
    """
    bias = torch.cat([cv.bias for cv in convs])  # type: ignore[misc]
    kernels = torch.cat([style_kernels(mu, cv.weight, kernel_impl) for cv in convs], dim=1)
    out = onehot_conv2d(classes, kernels, bias, padding=convs[0].padding)  # type: ignore[arg-type]
    return list(out.split([cv.out_channels for cv in convs], dim=1)) if split else out


def broadcast_styles(mu: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The style map ``[B, S, H, W]``: each pixel gets the code of its class (one matmul over the mask)."""
    b, c, h, w = mask.shape
    return torch.bmm(mu.transpose(1, 2), mask.reshape(b, c, h * w)).view(b, mu.shape[2], h, w)


class StyleInput(NamedTuple):
    """What flows from the generator to the ACE layers.

    ``codes`` is the raw style matrix ``[B, C, S]`` (``projected=False``) or the already projected
    ``relu(fc_mu_j(.))`` codes of the classes in ``classes`` (``projected=True``, shape
    ``[B, len(classes), S]``; ``classes`` are the classes present in the batch, long indices).
    """

    codes: torch.Tensor
    classes: torch.Tensor
    projected: bool


# ---------------------------------------------------------------------------------------------------
# Networks


class Zencoder(nn.Module):
    """SEAN's style encoder: conv → 2 stride-2 convs → stride-2 transposed conv → conv+tanh, then
    region-wise average pooling of the H/2 code map into one code per class (zeros if absent).

    ``downsampling=False`` keeps the same layers at stride 1 (codes at full resolution; ablation).
    The official code gives the InstanceNorm after the transposed conv ``ngf*mult/2`` features while
    the tensor has ``ngf*mult*2``; non-affine InstanceNorm has no state, so we give it the true count.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 512,
        *,
        ngf: int = 32,
        n_downsampling: int = 2,
        downsampling: bool = True,
    ) -> None:
        super().__init__()
        self.output_nc = output_nc
        self.impl: StyleImpl = "fused"
        stride = 2 if downsampling else 1
        model: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(input_nc, ngf, 3, padding=0),
            nn.InstanceNorm2d(ngf),
            nn.LeakyReLU(0.2, False),
        ]
        for i in range(n_downsampling):
            mult = 2**i
            model += [
                nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=stride, padding=1),
                nn.InstanceNorm2d(ngf * mult * 2),
                nn.LeakyReLU(0.2, False),
            ]
        mult = 2**n_downsampling
        model += [
            nn.ConvTranspose2d(
                ngf * mult, ngf * mult * 2, 3, stride=stride, padding=1, output_padding=stride - 1
            ),
            nn.InstanceNorm2d(ngf * mult * 2),
            nn.LeakyReLU(0.2, False),
            nn.ReflectionPad2d(1),
            nn.Conv2d(ngf * mult * 2, output_nc, 3, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*model)

    def forward(self, input: torch.Tensor, segmap: torch.Tensor) -> torch.Tensor:  # noqa: A002 - official keyword
        """``[B, 3, H, W]`` image and ``[B, C, H, W]`` one-hot style classes → style matrix ``[B, C, S]``."""
        return region_average(self.model(input), segmap, self.impl)


class ACE(nn.Module):
    """SEAN normalization (the official ``ACE``): noise → param-free norm → blended modulation.

    ``out = norm(x + noise) * (1 + a_g γ_s + (1 - a_g) γ_spade) + (a_b β_s + (1 - a_b) β_spade)`` with
    ``a = sigmoid(blending_*)`` (init 0), ``γ_s, β_s = conv_gamma/conv_beta`` of the style map that holds
    ``relu(fc_mu_j(ST_j))`` in the pixels of class j, and ``γ_spade, β_spade`` from the inner ``Spade``
    (whose own ``param_free_norm`` exists in the state_dict but is never called). With
    ``use_rgb=False`` (the last ResBlk) only the SPADE branch is used; its blending parameters exist
    but get no gradient, so they are frozen (``requires_grad=False``) to keep DDP happy.
    """

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        *,
        style_nc: int,
        style_length: int = 512,
        use_rgb: bool = True,
        owns_projections: bool = True,
        noise: bool = True,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_hidden: int = 128,
    ) -> None:
        super().__init__()
        self.use_rgb, self.style_nc, self.style_length = use_rgb, style_nc, style_length
        self.owns_projections = use_rgb and owns_projections
        self.impl: StyleImpl = "fused"
        self.style_kernel: StyleKernelImpl = "matmul"  # set from the config (SEANConfig.style_kernel)
        self.Spade = SPADE(norm_nc, label_nc, hidden=spade_hidden, param_free_norm=param_free_norm)
        self.blending_gamma = nn.Parameter(torch.zeros(1), requires_grad=use_rgb)
        self.blending_beta = nn.Parameter(torch.zeros(1), requires_grad=use_rgb)
        self.noise_var = nn.Parameter(torch.zeros(norm_nc)) if noise else None
        self.param_free_norm = make_param_free_norm(param_free_norm, norm_nc)
        if use_rgb:
            if self.owns_projections:
                add_style_projections(self, style_nc, style_length)
            self.conv_gamma = nn.Conv2d(style_length, norm_nc, 3, padding=1)
            self.conv_beta = nn.Conv2d(style_length, norm_nc, 3, padding=1)

    def add_noise(self, x: torch.Tensor, gens: Sequence[torch.Generator] | None) -> torch.Tensor:
        """``x + r * noise_var`` with one N(0, 1) value per pixel shared by all channels.

        Drawn as the official ``randn(B, W, H, 1)`` then transposed, so the global RNG gives the same
        noise; with ``gens``, image i draws from ``gens[i]`` only.
        """
        if self.noise_var is None:
            return x
        b, c, h, w = x.shape
        if gens is None:
            r = torch.randn(b, w, h, 1, device=x.device, dtype=x.dtype)
        else:
            r = torch.cat([torch.randn(1, w, h, 1, generator=g, device=g.device) for g in gens])
            r = r.to(x.device, x.dtype)
        return x + r.transpose(1, 3) * self.noise_var.view(1, c, 1, 1)

    def style_modulation(
        self, segmap: torch.Tensor | LabelMap, style: StyleInput, *, joint: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor] | torch.Tensor:
        """``(γ_s, β_s)`` from the style codes and the (resized) style-class part of the segmap.

        With a :class:`LabelMap` (``onehot_conv="gather"``) and the fused formulation, the per-image
        kernels are gathered by class id instead of convolving the ``C``-channel mask. With ``joint`` the
        fused and gathered formulations return the single ``[B, 2 x norm_nc, H, W]`` tensor
        ``cat([γ_s, β_s], 1)``.
        """
        if isinstance(segmap, LabelMap):
            if self.impl == "fused" and style.classes.numel():
                mu = style.codes if style.projected else project_styles(self, style.codes, style.classes)
                out = gathered_style_modulation(mu, segmap.subset(style.classes), [self.conv_gamma, self.conv_beta],
                                                split=not joint, kernel_impl=self.style_kernel)
                return out if joint else (out[0], out[1])
            segmap = segmap.dense()[:, segmap.num_const : segmap.num_const + self.style_nc]
        if self.impl == "loop":
            return self._style_modulation_loop(segmap, style)
        mask = _region_mask(segmap.index_select(1, style.classes), segmap.dtype)
        if style.projected:
            mu = style.codes
        else:
            mu = project_styles(self, style.codes, style.classes)
        if self.impl == "fused":
            out = fused_style_modulation(mu, mask, [self.conv_gamma, self.conv_beta], split=not joint,
                                         kernel_impl=self.style_kernel)
            return out if joint else (out[0], out[1])
        middle = broadcast_styles(mu, mask)
        return self.conv_gamma(middle), self.conv_beta(middle)

    def _style_modulation_loop(
        self, segmap: torch.Tensor, style: StyleInput
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The official per-image per-class ``masked_scatter_`` loop."""
        b, _, h, w = segmap.shape
        middle = torch.zeros((b, self.style_length, h, w), device=segmap.device, dtype=segmap.dtype)
        mask = segmap.bool()
        slot = {int(c): k for k, c in enumerate(style.classes.tolist())}
        for i in range(b):
            for j in range(segmap.shape[1]):
                area = int(mask[i, j].sum())
                if area > 0:
                    if style.projected:
                        mu = style.codes[i, slot[j]]
                    else:
                        mu = F.relu(getattr(self, f"fc_mu{j}")(style.codes[i][j]))
                    middle[i].masked_scatter_(
                        mask[i, j], mu.reshape(self.style_length, 1).expand(self.style_length, area)
                    )
        return self.conv_gamma(middle), self.conv_beta(middle)

    def forward(
        self,
        x: torch.Tensor,
        segmap: torch.Tensor | LabelMap,
        style: StyleInput | None = None,
        noise: Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        normalized = self.param_free_norm(self.add_noise(x, noise))
        size = x.shape[2:]
        segmap = resize_labels(segmap, size)
        spade = self.Spade
        # with fused γ/β: each (γ, β) pair stays one [B, 2C, H, W] tensor and the modulation is one
        # autograd Function (modulate / blend_modulate: bit-identical, no slice gradients)
        joint = (
            fused_conv(spade.mlp_gamma, spade.mlp_beta, spade.shared(segmap, size)) if spade.fuse_gamma_beta else None
        )
        if joint is not None and joint.shape[1] != 2 * normalized.shape[1]:
            joint = None
        if not self.use_rgb:
            if joint is not None:
                return modulate(normalized, joint)
            gamma, beta = spade.modulation(segmap, size)
            return normalized * (1 + gamma) + beta
        if style is None:
            raise ValueError("this SEAN normalization needs style codes")
        style_seg = segmap if isinstance(segmap, LabelMap) else segmap[:, : self.style_nc]
        style_out = self.style_modulation(style_seg, style, joint=joint is not None)
        a_g, a_b = torch.sigmoid(self.blending_gamma), torch.sigmoid(self.blending_beta)
        if joint is not None and isinstance(style_out, torch.Tensor):
            return blend_modulate(normalized, style_out, joint, a_g, a_b)
        gamma_s, beta_s = style_out
        if joint is not None:
            gamma, beta = joint[:, : normalized.shape[1]], joint[:, normalized.shape[1] :]
        else:
            gamma, beta = spade.modulation(segmap, size)
        gamma = a_g * gamma_s + (1 - a_g) * gamma
        beta = a_b * beta_s + (1 - a_b) * beta
        return normalized * (1 + gamma) + beta


class SEANResnetBlock(nn.Module):
    """SEAN ResBlk: the SPADE ResBlk with ``ace_0``/``ace_1``/``ace_s`` (official names) as norms."""

    def __init__(
        self,
        fin: int,
        fout: int,
        semantic_nc: int,
        *,
        style_nc: int,
        style_length: int = 512,
        use_rgb: bool = True,
        placement: StyleEncoderPlacement = "sean",
        noise: bool = True,
        spectral: bool = True,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_hidden: int = 128,
    ) -> None:
        super().__init__()
        self.learned_shortcut = fin != fout
        self.projects = use_rgb and placement == "resblk"
        fmiddle = min(fin, fout)
        self.conv_0 = spectral_conv(nn.Conv2d(fin, fmiddle, 3, padding=1), spectral)
        self.conv_1 = spectral_conv(nn.Conv2d(fmiddle, fout, 3, padding=1), spectral)
        if self.learned_shortcut:
            self.conv_s = spectral_conv(nn.Conv2d(fin, fout, 1, bias=False), spectral)
        if self.projects:
            add_style_projections(self, style_nc, style_length)

        def ace(nc: int) -> ACE:
            return ACE(
                nc,
                semantic_nc,
                style_nc=style_nc,
                style_length=style_length,
                use_rgb=use_rgb,
                owns_projections=placement == "sean",
                noise=noise,
                param_free_norm=param_free_norm,
                spade_hidden=spade_hidden,
            )

        self.ace_0 = ace(fin)
        self.ace_1 = ace(fmiddle)
        if self.learned_shortcut:
            self.ace_s = ace(fin)

    def forward(
        self,
        x: torch.Tensor,
        seg: torch.Tensor,
        style: StyleInput,
        noise: Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        if self.projects and not style.projected:
            if self.ace_0.impl == "loop":
                mu = project_styles_loop(self, style.codes).index_select(1, style.classes)
            else:
                mu = project_styles(self, style.codes, style.classes)
            style = StyleInput(mu, style.classes, True)
        x_s = self.conv_s(self.ace_s(x, seg, style, noise)) if self.learned_shortcut else x
        dx = self.conv_0(leaky(self.ace_0(x, seg, style, noise)))
        dx = self.conv_1(leaky(self.ace_1(dx, seg, style, noise)))
        return x_s + dx


class SEANGenerator(nn.Module):
    """SEAN generator: ``Zencoder`` → style matrix; fc → head_0 → G_middle_0/1 → up_0..up_3 → conv_img.

    ``up_3`` is a plain SPADE ResBlk (``use_rgb=False``), as officially. ``semantic_nc`` counts every
    input channel (classes, dontcare, instance edges); the first ``style_nc`` of them are the style
    classes (one ``fc_mu{j}`` each); the instance-edge channel feeds only the SPADE branches.

    With ``onehot_conv="gather"`` and an exactly one-hot style block, the label map flows as a
    :class:`~methods.common.onehot.LabelMap`: ``fc``, every ``mlp_shared`` and the fused style γ/β gather
    weight rows by class id.
    """

    onehot_conv: OneHotConv = "gather"

    def __init__(
        self,
        semantic_nc: int,
        *,
        style_nc: int | None = None,
        ngf: int = 64,
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        num_upsampling_layers: Literal["normal", "more"] = "normal",
        style_length: int = 512,
        style_ngf: int = 32,
        style_encoder: StyleEncoderPlacement = "sean",
        noise: bool = True,
        downsampling: bool = True,
        spectral: bool = True,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_hidden: int = 128,
        style_impl: StyleImpl = "fused",
    ) -> None:
        super().__init__()
        nf = ngf
        self.style_nc = semantic_nc if style_nc is None else style_nc
        self.placement, self.num_upsampling_layers = style_encoder, num_upsampling_layers
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
        self.Zencoder = Zencoder(3, style_length, ngf=style_ngf, downsampling=downsampling)
        if style_encoder == "unified":
            add_style_projections(self, self.style_nc, style_length)
        self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)
        kw: dict[str, Any] = dict(
            style_nc=self.style_nc,
            style_length=style_length,
            placement=style_encoder,
            noise=noise,
            spectral=spectral,
            param_free_norm=param_free_norm,
            spade_hidden=spade_hidden,
        )
        self.head_0 = SEANResnetBlock(16 * nf, 16 * nf, semantic_nc, **kw)
        self.G_middle_0 = SEANResnetBlock(16 * nf, 16 * nf, semantic_nc, **kw)
        self.G_middle_1 = SEANResnetBlock(16 * nf, 16 * nf, semantic_nc, **kw)
        self.up_0 = SEANResnetBlock(16 * nf, 8 * nf, semantic_nc, **kw)
        self.up_1 = SEANResnetBlock(8 * nf, 4 * nf, semantic_nc, **kw)
        self.up_2 = SEANResnetBlock(4 * nf, 2 * nf, semantic_nc, **kw)
        self.up_3 = SEANResnetBlock(2 * nf, 1 * nf, semantic_nc, use_rgb=False, **kw)
        self.conv_img = nn.Conv2d(nf, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        set_style_impl(self, style_impl)

    @property
    def impl(self) -> StyleImpl:
        return self.Zencoder.impl

    def style_input(self, style_codes: torch.Tensor, seg: torch.Tensor | LabelMap) -> StyleInput:
        """The classes present in the batch, and the codes projected once if the encoder is unified."""
        if isinstance(seg, LabelMap):
            classes = seg.present()
        else:
            classes = seg[:, : self.style_nc].ne(0).flatten(2).any(2).any(0).nonzero().flatten()
        if self.placement != "unified":
            return StyleInput(style_codes, classes, False)
        if self.impl == "loop":
            mu = project_styles_loop(self, style_codes).index_select(1, classes)
        else:
            mu = project_styles(self, style_codes, classes)
        return StyleInput(mu, classes, True)

    def forward(
        self,
        input: torch.Tensor,  # noqa: A002 - official positional name
        rgb_img: torch.Tensor | None = None,
        *,
        style_codes: torch.Tensor | None = None,
        noise: Sequence[torch.Generator] | None = None,
    ) -> torch.Tensor:
        """Image for a segmentation ``input`` [B, semantic_nc, H, W] in the style of ``rgb_img``.

        ``style_codes`` [B, style_nc, style_length] replaces the encoder (style transfer, editing);
        ``noise`` holds one generator per image (None: the global RNG, as officially).
        """
        seg = label_input(input, self.onehot_conv, self.style_nc)
        if style_codes is None:
            if rgb_img is None:
                raise ValueError("SEAN needs a style image (rgb_img) or style_codes")
            dense = input if isinstance(input, torch.Tensor) else input.dense()
            style_codes = self.Zencoder(input=rgb_img, segmap=dense[:, : self.style_nc])
        style = self.style_input(style_codes, seg)
        x = conv_labels(self.fc, resize_labels(seg, (self.sh, self.sw)))
        x = self.head_0(x, seg, style, noise)
        x = self.up(x)
        x = self.G_middle_0(x, seg, style, noise)
        if self.num_upsampling_layers == "more":
            x = self.up(x)
        x = self.G_middle_1(x, seg, style, noise)
        for name in ("up_0", "up_1", "up_2", "up_3"):
            x = self.up(x)
            x = getattr(self, name)(x, seg, style, noise)
        return torch.tanh(self.conv_img(leaky(x)))


def set_style_impl(net: nn.Module, impl: StyleImpl) -> None:
    """Switch every Zencoder/ACE in ``net`` between the fused, batched and loop formulations."""
    if impl not in STYLE_IMPLS:
        raise ConfigError(f"style_impl {impl!r}: expected one of {', '.join(STYLE_IMPLS)}")
    for m in net.modules():
        if isinstance(m, ACE | Zencoder):
            m.impl = impl


# ---------------------------------------------------------------------------------------------------
# Method


@METHODS.register("sean")
class SEANMethod(SPADEMethod):
    """SEAN: reconstruction training (style from the ground-truth image), hinge GAN + FM + VGG.

    Inputs, discriminator calls and losses are SPADE's (same code lineage), so they are inherited.
    ``data["style_codes"]`` ([B, C, S], e.g. from :func:`encode_styles`) overrides the encoder in
    :meth:`generate`.
    """

    name = "sean"
    config_cls = SEANConfig
    paper = "Zhu et al., CVPR 2020"
    needs_reference_image = True
    cfg: SEANConfig  # type: ignore[assignment]

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.cfg.noise

    @property
    def style_nc(self) -> int:
        """Style classes: the dataset's classes (+ the dontcare channel when the config has one)."""
        return self.spec.num_classes + int(self.cfg.contain_dontcare_label)

    def build_networks(self) -> dict[str, nn.Module]:
        cfg = self.cfg
        nc = self.style_nc + int(not cfg.no_instance)
        netG = SEANGenerator(
            nc,
            style_nc=self.style_nc,
            ngf=cfg.ngf,
            crop_size=cfg.crop_size,
            aspect_ratio=cfg.aspect_ratio,
            num_upsampling_layers=cfg.num_upsampling_layers,
            style_length=cfg.style_length,
            style_ngf=cfg.style_ngf,
            style_encoder=cfg.style_encoder,
            noise=cfg.noise,
            downsampling=cfg.downsampling,
            spectral=cfg.spectral_G,
            param_free_norm=cfg.param_free_norm,
            spade_hidden=cfg.spade_hidden,
            style_impl=cfg.style_impl,
        )
        netD = MultiscaleDiscriminator(
            nc + 3,
            num_D=cfg.num_D,
            ndf=cfg.ndf,
            n_layers=cfg.n_layers_D,
            stride_last=2,
            spectral=cfg.spectral_D,
        )
        nets: dict[str, nn.Module] = {"netG": netG, "netD": netD}
        for net in nets.values():
            init_weights(net, cfg.init_type, cfg.init_variance)
        for m in netG.modules():
            if isinstance(m, ACE):
                m.style_kernel = cfg.style_kernel
        apply_speed_options(nets, cfg, self.name)
        return nets

    def generator_keys(self) -> list[str]:
        return ["netG"]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.cfg
        betas = (cfg.beta1, cfg.beta2) if cfg.no_TTUR else (0.0, 0.9)  # hard-coded with TTUR, officially
        lr_g, lr_d = self._lrs(cfg.lr)
        g_params = [p for p in self.nets["netG"].parameters() if p.requires_grad]
        return {
            "G": adam(g_params, lr=lr_g, betas=betas, cfg=cfg),
            "D": adam(self.nets["netD"].parameters(), lr=lr_d, betas=betas, cfg=cfg),
        }

    def style_segmap(self, label: torch.Tensor) -> torch.Tensor:
        """One-hot ``[B, style_nc, H, W]`` of the style classes for an id map ``[B, 1, H, W]``."""
        ids = spade_ids(
            label.to(self.device),
            num_classes=self.spec.num_classes,
            ignore_index=self.spec.ignore_index,
            dontcare=self.cfg.contain_dontcare_label,
            dontcare_first=dontcare_channel_first(self.spec),
        )
        return one_hot(ids, self.style_nc)

    def _fake(self, data: dict[str, Any]) -> tuple[torch.Tensor, None]:
        # reconstruction: the style comes from the ground-truth image itself
        return self.nets["netG"](data["semantics"], data["image"]), None

    @torch.no_grad()
    def generate(self, data: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        codes = data.get("style_codes")
        sem = data["semantics"]
        if codes is not None:
            codes = codes.to(self.device)
            want = (sem.shape[0], self.style_nc, self.cfg.style_length)
            if tuple(codes.shape) != want:
                raise ConfigError(
                    f"style_codes have shape {tuple(codes.shape)}, expected {want} (batch, classes, style_length)"
                )
        elif data.get("image") is None:
            raise ConfigError(
                "SEAN generates from a style image: the batch has no 'image' (or pass 'style_codes')"
            )
        gens = [noise_generator(s) for s in seeds] if self.cfg.noise else None
        return self.nets["netG"](sem, data.get("image"), style_codes=codes, noise=gens)

    @classmethod
    def tiny_config(cls) -> SEANConfig:
        return SEANConfig(ngf=4, spade_hidden=8, ndf=4, crop_size=32, load_size=32, style_length=8, style_ngf=4,
                          no_vgg_loss=True, batch_size=2)  # fmt: skip


# ---------------------------------------------------------------------------------------------------
# Style control: encode, swap per region, interpolate (the CLI's --style-from/--swap-regions/--interpolate)


@torch.no_grad()
def encode_styles(method: SEANMethod, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-region style codes ``[B, C, S]`` of ``images`` [B, 3, H, W] in [-1, 1] with id maps ``labels``
    [B, 1, H, W]. Classes absent from an image get a zero code (SEAN then uses ``relu(fc_mu_j.bias)``)."""
    if images.shape[0] != labels.shape[0] or images.shape[2:] != labels.shape[2:]:
        raise ConfigError(
            f"images {tuple(images.shape)} and labels {tuple(labels.shape)} must have the same batch and size"
        )
    netG = method.nets["netG"]
    return netG.Zencoder(input=images.to(method.device), segmap=method.style_segmap(labels))


def _class_index(classes: Iterable[int], num: int) -> list[int]:
    ids = [int(c) for c in classes]
    bad = [c for c in ids if not 0 <= c < num]
    if bad:
        raise ConfigError(f"class ids {bad} are out of range: the style codes have classes 0..{num - 1}")
    return ids


def _check_pair(codes_a: torch.Tensor, codes_b: torch.Tensor) -> None:
    if (
        codes_a.dim() != 3
        or codes_a.shape[1:] != codes_b.shape[1:]
        or codes_b.shape[0] not in (1, codes_a.shape[0])
    ):
        raise ConfigError(
            f"style codes of shape {tuple(codes_a.shape)} and {tuple(codes_b.shape)} do not match "
            "(expected [B, classes, style_length], the second with batch B or 1)"
        )


def swap_regions(codes_a: torch.Tensor, codes_b: torch.Tensor, classes: Iterable[int]) -> torch.Tensor:
    """``codes_a`` with the codes of ``classes`` taken from ``codes_b`` (batch B or 1, broadcast)."""
    _check_pair(codes_a, codes_b)
    ids = _class_index(classes, codes_a.shape[1])
    out = codes_a.clone()
    out[:, ids] = codes_b[:, ids].to(out).expand(out.shape[0], len(ids), out.shape[2])
    return out


def interpolate(
    codes_a: torch.Tensor, codes_b: torch.Tensor, t: float, classes: Iterable[int] | None = None
) -> torch.Tensor:
    """``(1 - t) a + t b``, for all classes or only ``classes`` (t = 0 gives a, t = 1 gives b)."""
    _check_pair(codes_a, codes_b)
    t = float(t)
    if not torch.isfinite(torch.tensor(t)):
        raise ConfigError(f"interpolation weight t must be finite, got {t}")
    mixed = torch.lerp(codes_a, codes_b.to(codes_a).expand_as(codes_a), t)
    if classes is None:
        return mixed
    return swap_regions(codes_a, mixed, classes)


def with_fallback(codes: torch.Tensor, fallback: torch.Tensor) -> torch.Tensor:
    """``codes`` with the rows of absent classes (all-zero codes) taken from ``fallback``.

    For ``--style-from``: a class the style image lacks keeps the target image's own style instead of
    SEAN's zero-code default ``relu(fc_mu_j.bias)``.
    """
    _check_pair(codes, fallback)
    absent = (codes == 0).all(dim=2, keepdim=True)
    return torch.where(absent, fallback.to(codes).expand_as(codes), codes)


def class_ids(spec: DatasetSpec, names: Iterable[str | int]) -> list[int]:
    """Class names or ids (``["hair", "skin"]``, ``["13"]``) → ids, with the known names on error."""
    out = []
    for n in names:
        s = str(n).strip()
        if s.isdigit():
            out.append(int(s))
        elif s in spec.class_names:
            out.append(spec.class_names.index(s))
        else:
            raise ConfigError(
                f"unknown class {s!r} for dataset {spec.name!r}; known: {', '.join(spec.class_names)}"
            )
    return _class_index(out, spec.num_classes)


# --- presets -------------------------------------------------------------------------------------
# fmt: off
# CelebAMask-HQ: the README's training command (--load_size 256 --crop_size 256 --label_nc 19
# --no_instance --batchSize 32 on 4 GPUs), 50 + 50 epochs, TTUR with betas (0, 0.9).
preset("sean", "celebamask", SEANConfig(
    preprocess_mode="resize_and_crop", load_size=256, crop_size=256, no_instance=True, batch_size=32,
    niter=50, niter_decay=50,
))
# The other datasets were never released; the authors trained them for 50 epochs (SEAN issue #8).
# Same structure as SPADE's presets for these datasets (dontcare channel, instance edges).
_OTHER = dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, niter=50, niter_decay=0)
preset("sean", "ade20k", SEANConfig(**_OTHER, contain_dontcare_label=True, no_instance=True))
preset("sean", "coco", SEANConfig(**_OTHER, contain_dontcare_label=True, no_instance=False))
preset("sean", "cityscapes", SEANConfig(
    preprocess_mode="fixed", load_size=512, crop_size=512, aspect_ratio=2.0, num_upsampling_layers="more",
    contain_dontcare_label=False, no_instance=False, niter=50, niter_decay=0,
))
# Synthetic: SPADE's synthetic widths and schedule (600 iterations, batch 8), a 32-d style. Two departures
# from the official options, both measured on this preset (PSNR on 96 val images after 600 iterations):
# * VGG is off (its ImageNet weights cannot be downloaded here; --set no_vgg_loss=false turns it on) and
#   a pixel L1 (lambda_l1=100) stands in for it as the reconstruction term: L1 weight 10 / 30 / 100 (init 1.0) gave
#   15.9 / 16.7 / 17.8 dB (the GAN terms alone paint textures that cost PSNR);
# * init_variance 1.0 instead of 0.02: at 0.02 the style path (Zencoder → fc_mu → conv_gamma, three
#   layers initialised near 0) barely moves the output in 600 iterations (own style 16.21 dB vs another
#   image's 16.08 at 300 iterations); at 1.0 the styles matter (16.84 vs 15.94).
preset("sean", "synthetic", SEANConfig(
    preprocess_mode="fixed", load_size=64, crop_size=64, ngf=8, spade_hidden=16, style_length=32, style_ngf=8,
    ndf=16, param_free_norm="batch", no_instance=False, no_vgg_loss=True, lambda_l1=100.0, init_variance=1.0,
    batch_size=8, niter=0, max_iters=600, checkpoint_every=200,
    spectral_after_conv=False, style_kernel="einsum",  # the arithmetic of the README grid (see SPADE's preset)
))
# Your own dataset: SEAN ships only `--dataset_mode custom` (tests/official_opts/sean_custom.json): resize_and_crop
# 286 -> 256, batch 1, 50 + 50 epochs, no_instance, no dontcare channel; the dontcare channel is switched on when
# the labels hold the ignore id (bench.datasets.user.adapt_config), and instance maps are read when present (the
# official options would take an --instance_dir too).
preset("sean", "custom", SEANConfig(
    preprocess_mode="resize_and_crop", load_size=286, crop_size=256, niter=50, niter_decay=50,
    contain_dontcare_label=False, no_instance=True,
))
# fmt: on
