"""OASIS (Schönfeld, Sushko et al., "You Only Need Adversarial Supervision for Semantic Image Synthesis", ICLR 2021).

Module names follow boschresearch/OASIS (``body.{i}``, ``first_norm``, ``body_down``/``body_up``,
``layer_up_last``) so its released ``*_EMA.pth`` / ``*_G.pth`` files load strictly.

Label convention (``methods.common.labels.oasis_ids``): channel 0 is "unknown" (unlabeled pixels) and gets
weight 0 in the loss; real classes are shifted by +1. On Cityscapes OASIS uses the raw labelIds instead,
where labelId 0 ("unlabeled") plays the unknown class (``label_shift=False`` in that preset).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError, DataError
from methods.base import METHODS, Method, noise_generator, preset
from methods.common.architecture import SPADEResnetBlock, leaky
from methods.common.labels import one_hot
from methods.common.losses import fp32_loss
from methods.common.normalization import SPADE, ParamFreeNorm, spectral_conv
from methods.common.onehot import LabelMap, OneHotConv, conv_labels, label_input, resize_labels
from methods.common.perf import SpeedConfig, adam, apply_speed_options, channels_last_inputs

#: G's channel multipliers of ``channels_G`` (official ``self.channels``): 6 blocks, 5 upsamplings
G_MULTS = (16, 16, 16, 8, 4, 2, 1)


@dataclass(frozen=True, kw_only=True)
class OASISConfig(SpeedConfig):
    """OASIS's options (``config.py``) under their official names, with the per-dataset defaults of
    ``set_dataset_default_lm`` applied by the presets below.

    ``channels_D`` is unused by the official code (its D widths are hard-coded 128..512); here the widths are
    ``channels_D`` × (2, 2, 4, 4, 8, 8), which gives the official network at the default 64 and lets the
    synthetic preset shrink D. ``num_epochs`` is :attr:`niter` (OASIS has no learning-rate decay).
    """

    # generator
    channels_G: int = 64  # noqa: N815 - official name
    param_free_norm: ParamFreeNorm = "syncbatch"
    spade_ks: int = 3
    spade_hidden: int = 128  # hard-coded 128 officially; smaller only for tiny/synthetic presets
    no_spectral_norm: bool = False
    no_3dnoise: bool = False
    z_dim: int = 64
    # EMA generator
    no_EMA: bool = False  # noqa: N815
    EMA_decay: float = 0.9999  # noqa: N815
    bn_stat_batches: int = 50  # forward passes re-estimating netEMA's BatchNorm statistics (official: 50)
    # labels
    label_shift: bool = True  # +1 shift with 0 = unknown; False: raw ids, class 0 is the unknown one
    # discriminator
    channels_D: int = 64  # noqa: N815
    # losses
    no_balancing_inloss: bool = False
    no_labelmix: bool = False
    lambda_labelmix: float = 10.0
    add_vgg_loss: bool = False
    lambda_vgg: float = 10.0
    vgg_weights: str | None = None
    # optimiser: Adam, betas (0, 0.999), no decay
    lr_g: float = 0.0001
    lr_d: float = 0.0004
    beta1: float = 0.0
    beta2: float = 0.999
    # schedule
    niter: int = 200  # official num_epochs
    niter_decay: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 0.0 <= self.EMA_decay < 1.0:
            raise ConfigError(f"EMA_decay must be in [0, 1), got {self.EMA_decay}")
        if self.niter_decay:
            raise ConfigError("OASIS has no learning-rate decay: niter_decay must be 0 (niter is num_epochs)")
        if self.crop_size % 64:
            # G upsamples 5 times from crop/32; D's U-Net pools 6 times
            raise ConfigError(
                f"OASIS needs crop_size divisible by 64 (D pools 6 times), got {self.crop_size}"
            )
        if self.spade_ks % 2 == 0:
            raise ConfigError(f"spade_ks must be odd, got {self.spade_ks}")


def semantic_nc(cfg: OASISConfig, num_classes: int) -> int:
    """One-hot channels: the unknown class 0, then the dataset's classes (or the raw ids without shift)."""
    return num_classes + int(cfg.label_shift)


def latent_size(crop_size: int, aspect_ratio: float) -> tuple[int, int]:
    """``(h, w)`` of the first feature map: crop / 2^5, height by the aspect ratio."""
    w = crop_size // 2 ** (len(G_MULTS) - 2)
    return round(w / aspect_ratio), w


class OASISSPADE(SPADE):
    """OASIS's SPADE layer: identical maths, the param-free norm is named ``first_norm``."""

    norm_attr = "first_norm"


class OASISGenerator(nn.Module):
    """fc on the downsampled (noise, label) map → body.0..5 SPADE ResBlks (2x nearest upsampling after the
    first five) → conv_img → tanh. With 3D noise a 64-d z per image is replicated over the image and
    concatenated BEFORE the one-hot channels; that map feeds fc and every SPADE layer.

    With ``onehot_conv="gather"`` and an exactly one-hot ``label``, the map is a
    :class:`~methods.common.onehot.LabelMap` whose constants are z: ``fc`` and every ``mlp_shared`` gather
    weight rows, z's contribution folded into them per image (exact: a constant map convolves to a
    per-tap constant, zero padding included).
    """

    onehot_conv: OneHotConv = "gather"

    def __init__(
        self,
        semantic_nc: int,
        *,
        channels_G: int = 64,  # noqa: N803
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        z_dim: int = 64,
        no_3dnoise: bool = False,
        spectral: bool = True,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_ks: int = 3,
        spade_hidden: int = 128,
    ) -> None:
        super().__init__()
        self.z_dim = 0 if no_3dnoise else z_dim
        self.init_h, self.init_w = latent_size(crop_size, aspect_ratio)
        cond_nc = semantic_nc + self.z_dim
        ch = [m * channels_G for m in G_MULTS]

        def norm(nc: int) -> nn.Module:
            return OASISSPADE(
                nc, cond_nc, hidden=spade_hidden, kernel=spade_ks, param_free_norm=param_free_norm
            )

        self.body = nn.ModuleList(
            SPADEResnetBlock(ch[i], ch[i + 1], cond_nc, spectral=spectral, norm=norm)
            for i in range(len(ch) - 1)
        )
        self.conv_img = nn.Conv2d(ch[-1], 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)
        self.fc = nn.Conv2d(cond_nc, ch[0], 3, padding=1)

    def forward(self, label: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """``label``: one-hot [B, semantic_nc, H, W]; ``z``: [B, z_dim], drawn from the global RNG if None.

        The official forward always draws ``torch.randn(B, z_dim)`` itself; with ``z=None`` we draw it the
        same way (so the golden cases replay), and ``generate`` passes a seeded z instead.
        """
        const = None
        if self.z_dim:
            b = label.shape[0]
            if z is None:
                z = torch.randn(b, self.z_dim, dtype=torch.float32, device=label.device)
            const = z.to(torch.float32 if isinstance(label, LabelMap) else label.dtype).view(b, self.z_dim)
        seg = label_input(label, self.onehot_conv, label.shape[1], const=const)
        x = conv_labels(self.fc, resize_labels(seg, (self.init_h, self.init_w)))
        for i, block in enumerate(self.body):
            x = block(x, seg)
            if i < len(self.body) - 1:
                x = self.up(x)
        return torch.tanh(self.conv_img(leaky(x)))


class ResidualBlockD(nn.Module):
    """The official ``residual_block_D``: pre-activation SN convs, down (AvgPool after the convs) or up
    (nearest 2x before the first conv), learned 1x1 shortcut when widths differ."""

    def __init__(
        self, fin: int, fout: int, up_or_down: int, *, first: bool = False, spectral: bool = True
    ) -> None:
        super().__init__()
        self.up_or_down, self.first = up_or_down, first
        self.learned_shortcut = fin != fout
        conv1 = spectral_conv(nn.Conv2d(fin, fout, 3, 1, 1), spectral)
        if first:
            self.conv1 = nn.Sequential(conv1)
        elif up_or_down > 0:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2, False), nn.Upsample(scale_factor=2), conv1)
        else:
            self.conv1 = nn.Sequential(nn.LeakyReLU(0.2, False), conv1)
        self.conv2 = nn.Sequential(
            nn.LeakyReLU(0.2, False), spectral_conv(nn.Conv2d(fout, fout, 3, 1, 1), spectral)
        )
        if self.learned_shortcut:
            self.conv_s = spectral_conv(nn.Conv2d(fin, fout, 1, 1, 0), spectral)

    def sample(self, x: torch.Tensor) -> torch.Tensor:
        if self.up_or_down > 0:
            return F.interpolate(x, scale_factor=2, mode="nearest")
        if self.up_or_down < 0:
            return F.avg_pool2d(x, 2)
        return x

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        # first block: pool, then conv; others: (up,) conv, (pool): pooling commutes with a 1x1 conv up to
        # rounding, so keep the official order for parity
        if self.first:
            if self.up_or_down < 0:
                x = self.sample(x)
            return self.conv_s(x) if self.learned_shortcut else x
        if self.up_or_down > 0:
            x = self.sample(x)
        if self.learned_shortcut:
            x = self.conv_s(x)
        if self.up_or_down < 0:
            x = self.sample(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dx = self.conv2(self.conv1(x))
        if self.up_or_down < 0:
            dx = self.sample(dx)
        return self.shortcut(x) + dx


class OASISDiscriminator(nn.Module):
    """U-Net segmenter over the image only: per-pixel logits for N+1 classes (channel 0 = fake).

    Encoder ``body_down`` 3 → 2c, 2c, 4c, 4c, 8c, 8c (c = ``channels_D``, 64 officially → 128..512); decoder
    ``body_up`` with the encoder features concatenated as skips; ``layer_up_last`` 1x1 conv without SN.
    """

    def __init__(self, semantic_nc: int, *, channels_D: int = 64, spectral: bool = True) -> None:  # noqa: N803
        super().__init__()
        c = channels_D
        ch = [3, 2 * c, 2 * c, 4 * c, 4 * c, 8 * c, 8 * c]
        n = len(ch) - 1
        self.body_down = nn.ModuleList(
            ResidualBlockD(ch[i], ch[i + 1], -1, first=i == 0, spectral=spectral) for i in range(n)
        )
        ups = [ResidualBlockD(ch[-1], ch[-2], 1, spectral=spectral)]
        ups += [ResidualBlockD(2 * ch[-1 - i], ch[-2 - i], 1, spectral=spectral) for i in range(1, n - 1)]
        ups.append(ResidualBlockD(2 * ch[1], c, 1, spectral=spectral))
        self.body_up = nn.ModuleList(ups)
        self.layer_up_last = nn.Conv2d(c, semantic_nc + 1, 1, 1, 0)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x, skips = image, []
        for block in self.body_down:
            x = block(x)
            skips.append(x)
        x = self.body_up[0](x)
        for i in range(1, len(self.body_down)):
            x = self.body_up[i](torch.cat((skips[-i - 1], x), dim=1))
        return self.layer_up_last(x)


def init_weights(net: nn.Module, gain: float = 0.02) -> None:
    """The official ``init_networks``: xavier_normal(gain 0.02) for conv/linear weights, zero biases, N(1, 0.02)
    for affine BatchNorm scales.

    It runs right after construction, when a spectral-norm conv's ``weight`` attribute still shares its
    storage with ``weight_orig`` (``SpectralNorm.apply`` stores ``weight.data``), so the official call
    initialises ``weight_orig``; we write ``weight_orig`` directly.
    """
    for m in net.modules():
        name = type(m).__name__
        params = m._parameters
        w = params.get("weight_orig", params.get("weight"))
        if "BatchNorm2d" in name:
            if w is not None:
                nn.init.normal_(w, 1.0, gain)
            if params.get("bias") is not None:
                nn.init.zeros_(params["bias"])
        elif ("Conv" in name or "Linear" in name) and w is not None:
            nn.init.xavier_normal_(w, gain=gain)
            if params.get("bias") is not None:
                nn.init.zeros_(params["bias"])


# --- losses ------------------------------------------------------------------------------------------
def class_balancing_weights(ids: torch.Tensor, num_channels: int) -> torch.Tensor:
    """Per-pixel weights ``BHW / (n_present * count_c)`` of the pixel's class; 0 for class 0 (unknown).

    The official ``get_class_balancing`` with ``contain_dontcare_label`` (every OASIS dataset): inverse
    class frequency in the batch, normalised so that present classes weigh 1 on average.
    """
    counts = torch.bincount(ids.reshape(-1), minlength=num_channels).to(torch.float32)
    counts[0] = 0
    present = (counts > 0).sum()
    coeff = torch.where(counts > 0, ids.numel() / (present * counts.clamp_min(1)), torch.zeros_like(counts))
    return coeff[ids]


@fp32_loss
def n1_cross_entropy(
    logits: torch.Tensor, ids: torch.Tensor, *, for_real: bool, balance: bool = True
) -> torch.Tensor:
    """OASIS's (N+1)-class adversarial loss: target ``c+1`` for real pixels (class-balanced), 0 for fake."""
    if for_real:
        loss = F.cross_entropy(logits, ids + 1, reduction="none")
        if balance:
            loss = loss * class_balancing_weights(ids, logits.shape[1] - 1)
        return loss.mean()
    return F.cross_entropy(logits, torch.zeros_like(ids), reduction="none").mean()


def labelmix_mask(ids: torch.Tensor) -> torch.Tensor:
    """LabelMix mask [B,1,H,W]: every class present in the batch goes wholly to the real (1) or fake (0) image.

    The official ``generate_labelmix`` relabels in place class by class, so a class-0 region that drew 1 is
    relabelled again with class 1's coin; we draw one coin per class independently, as the paper describes.
    """
    coins = torch.randint(0, 2, (int(ids.max()) + 1,), device=ids.device)
    return coins[ids].unsqueeze(1).float()


@fp32_loss
def labelmix_loss(
    out_mixed: torch.Tensor, out_real: torch.Tensor, out_fake: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """LabelMix consistency: MSE between D(mixed image) and the same mix of D(real) and D(fake) [B,N+1,H,W]."""
    return F.mse_loss(out_mixed, mask * out_real + (1 - mask) * out_fake)


@METHODS.register("oasis")
class OASISMethod(Method):
    """OASIS: (N+1)-class segmentation discriminator, LabelMix, 3D noise, EMA generator; no VGG by default."""

    name = "oasis"
    config_cls = OASISConfig
    paper = "Schönfeld, Sushko et al., ICLR 2021"
    cfg: OASISConfig

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return not self.cfg.no_3dnoise

    @property
    def semantic_nc(self) -> int:
        return semantic_nc(self.cfg, self.spec.num_classes)

    def build_networks(self) -> dict[str, nn.Module]:
        cfg = self.cfg
        netG = OASISGenerator(
            self.semantic_nc,
            channels_G=cfg.channels_G,
            crop_size=cfg.crop_size,
            aspect_ratio=cfg.aspect_ratio,
            z_dim=cfg.z_dim,
            no_3dnoise=cfg.no_3dnoise,
            spectral=not cfg.no_spectral_norm,
            param_free_norm=cfg.param_free_norm,
            spade_ks=cfg.spade_ks,
            spade_hidden=cfg.spade_hidden,
        )
        netD = OASISDiscriminator(
            self.semantic_nc, channels_D=cfg.channels_D, spectral=not cfg.no_spectral_norm
        )
        for net in (netG, netD):
            init_weights(net)
        nets: dict[str, nn.Module] = {"netG": netG, "netD": netD}
        if not cfg.no_EMA:
            nets["netEMA"] = copy.deepcopy(netG).requires_grad_(False)
        apply_speed_options(nets, cfg, self.name)
        #: whether netEMA's BatchNorm statistics lag behind its weights (EMA'd, not measured)
        self.ema_stats_stale = True
        return nets

    @property
    def generating_net(self) -> str:
        """OASIS generates with the EMA generator (``mode == "generate"``), or netG with ``no_EMA``."""
        return "netG" if self.cfg.no_EMA else "netEMA"

    def generator_keys(self) -> list[str]:
        return [self.generating_net]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.cfg
        betas = (cfg.beta1, cfg.beta2)
        return {
            "G": adam(self.nets["netG"].parameters(), lr=cfg.lr_g, betas=betas, cfg=cfg),
            "D": adam(self.nets["netD"].parameters(), lr=cfg.lr_d, betas=betas, cfg=cfg),
        }

    # --- inputs ---------------------------------------------------------------------------------
    def label_ids(self, label: torch.Tensor) -> torch.Tensor:
        """Dataset ids → OASIS ids [B,H,W]: 0 = unknown, classes 1..N (or the raw ids without shift)."""
        ignore = self.spec.ignore_index
        ids = label + 1 if self.cfg.label_shift else label.clone()
        if ignore is not None:
            ids[label == ignore] = 0
        if int(ids.max()) >= self.semantic_nc or int(ids.min()) < 0:
            raise DataError(
                f"label ids outside 0..{self.spec.num_classes - 1} (and ignore {ignore}) for dataset "
                f"{self.spec.name!r}: the label maps do not follow this dataset's class list"
            )
        return ids[:, 0]

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        h, w = batch["label"].shape[-2:]
        want = (latent_size(self.cfg.crop_size, self.cfg.aspect_ratio)[0] * 32, self.cfg.crop_size)
        if (h, w) != want:
            raise ConfigError(
                f"OASIS generates {want[0]}x{want[1]} images (crop_size {self.cfg.crop_size}, aspect_ratio "
                f"{self.cfg.aspect_ratio}) but the batch is {h}x{w}; set crop_size/aspect_ratio to the data size"
            )
        ids = self.label_ids(batch["label"].to(self.device))
        data = dict(batch)
        data["ids"] = ids
        data["semantics"] = one_hot(ids.unsqueeze(1), self.semantic_nc)
        data["image"] = batch["image"].to(self.device) if batch.get("image") is not None else None
        return channels_last_inputs(data, self.cfg, ("semantics", "image"))

    # --- losses ---------------------------------------------------------------------------------
    def _adv(self, logits: torch.Tensor, ids: torch.Tensor, for_real: bool) -> torch.Tensor:
        return n1_cross_entropy(logits, ids, for_real=for_real, balance=not self.cfg.no_balancing_inloss)

    def generator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        fake = self.nets["netG"](data["semantics"])  # z from the (seeded) training RNG, as officially
        losses = {"G_adv": self._adv(self.nets["netD"](fake), data["ids"], True)}
        if cfg.add_vgg_loss:
            losses["G_VGG"] = cfg.lambda_vgg * self.vgg(fake, data["image"])
        return losses

    def discriminator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg, netD, ids, real = self.cfg, self.nets["netD"], data["ids"], data["image"]
        with torch.no_grad():
            fake = self.nets["netG"](data["semantics"])
        # three separate D calls, as the official code: each runs one spectral-norm power iteration
        out_fake = netD(fake)
        out_real = netD(real)
        losses = {"D_fake": self._adv(out_fake, ids, False), "D_real": self._adv(out_real, ids, True)}
        if not cfg.no_labelmix:
            mask = labelmix_mask(ids)
            out_mixed = netD(mask * real + (1 - mask) * fake)
            losses["D_LabelMix"] = cfg.lambda_labelmix * labelmix_loss(out_mixed, out_real, out_fake, mask)
        return losses

    def after_step(self, iteration: int) -> None:
        """EMA of netG's whole state_dict (weights, SN vectors and BN buffers), as ``update_EMA``."""
        if self.cfg.no_EMA:
            return
        decay = self.cfg.EMA_decay
        with torch.no_grad():
            g = self.nets["netG"].state_dict()
            for key, t in self.nets["netEMA"].state_dict().items():
                if t.is_floating_point():
                    t.mul_(decay).add_(g[key], alpha=1 - decay)
                else:
                    t.copy_(g[key])
        self.ema_stats_stale = True

    # --- generation -----------------------------------------------------------------------------
    def before_generate(self, batches: Any = None) -> None:
        """Re-estimate netEMA's BatchNorm statistics: ``bn_stat_batches`` forward passes in train mode.

        The EMA of running statistics does not describe the EMA weights, so the official ``update_EMA``
        runs 50 training batches through netEMA before every FID, image dump or save. ``batches`` is a
        map-style dataset (its first samples are batched by ``batch_size``, in order) or an iterable of
        collated batches; only the label maps are used. Noise comes from fixed seeds, so the result is
        reproducible. Skipped when the statistics are fresh (after a previous call, or for an official
        release file, which was saved right after the official re-estimation).
        """
        if self.cfg.no_EMA or batches is None or not self.ema_stats_stale:
            return
        net = self.nets["netEMA"]
        was_training = net.training
        net.train()
        n = 0
        with torch.no_grad():
            for batch in self._stat_batches(batches):
                sem = self.prepare(batch)["semantics"]
                seeds = range(n * sem.shape[0], (n + 1) * sem.shape[0])
                net(sem, self._noise(seeds, offset=2**40))  # offset: never the seeds of generated images
                n += 1
        net.train(was_training)
        if n:
            self.ema_stats_stale = False

    def _stat_batches(self, source: Any) -> Iterable[dict[str, Any]]:
        limit = self.cfg.bn_stat_batches
        if (
            hasattr(source, "__getitem__")
            and hasattr(source, "__len__")
            and not isinstance(source, list | tuple)
        ):
            from bench.training.trainer import collate

            bs = self.cfg.batch_size
            for k in range(min(limit, -(-len(source) // bs))):
                yield collate([source[i] for i in range(k * bs, min(len(source), (k + 1) * bs))])
            return
        for k, batch in enumerate(source):
            if k >= limit:
                return
            yield batch

    def _noise(self, seeds: Iterable[int], offset: int = 0) -> torch.Tensor | None:
        if self.cfg.no_3dnoise:
            return None
        z = [torch.randn(self.cfg.z_dim, generator=noise_generator(offset + s)) for s in seeds]
        return torch.stack(z).to(self.device)

    @torch.no_grad()
    def generate(self, data: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        """Images from the EMA generator; image i's z comes from ``noise_generator(seeds[i])`` only.

        K samples of one label map: call K times with K different seeds per image (e.g. ``seed + k``).
        """
        if len(seeds) != data["semantics"].shape[0]:
            raise ValueError(
                f"generate needs one seed per image: {len(seeds)} seeds for {data['semantics'].shape[0]}"
            )
        return self.nets[self.generating_net](data["semantics"], self._noise(seeds))

    @classmethod
    def tiny_config(cls) -> OASISConfig:
        return OASISConfig(
            channels_G=2,
            spade_hidden=8,
            z_dim=4,
            channels_D=2,
            crop_size=64,
            load_size=64,
            batch_size=2,
            bn_stat_batches=2,
        )


# --- presets: the official options per dataset (tests/official_opts/oasis_*.json, scripts/train_*.sh) -------
# Data as the OASIS dataloaders: ADE20K / COCO-Stuff resized to 286 and randomly cropped to 256 (256 for
# evaluation), Cityscapes resized to 256x512 without crop. Batch sizes are the training scripts' values.
_COMMON = dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, batch_size=32)
preset(
    "oasis", "ade20k", OASISConfig(**_COMMON, niter=200, lr_g=0.0001, EMA_decay=0.9999, lambda_labelmix=10.0)
)
preset(
    "oasis", "coco", OASISConfig(**_COMMON, niter=100, lr_g=0.0001, EMA_decay=0.9999, lambda_labelmix=10.0)
)
preset(
    "oasis",
    "cityscapes",
    OASISConfig(
        preprocess_mode="fixed",
        load_size=512,
        crop_size=512,
        aspect_ratio=2.0,
        batch_size=20,
        niter=200,
        lr_g=0.0004,
        EMA_decay=0.999,
        lambda_labelmix=5.0,
        label_shift=False,  # raw labelIds 0..34: semantic_nc 35 with labelId 0 as the unknown class
    ),
)
# Synthetic: small widths so training takes minutes on 2 CPU cores. Deviations from the official options,
# all for the short run: z_dim 16 (the 64 noise channels feed every SPADE layer and would dominate the cost),
# EMA decay 0.99 (0.9999 averages over ~10k iterations, so after a few hundred the EMA would still be mostly
# the random init), and 20 batches (not 50) to re-estimate the EMA's BatchNorm statistics. An iteration costs
# ~1.8x SPADE's synthetic one (three D passes for D_fake, D_real and LabelMix), hence fewer iterations.
preset(
    "oasis",
    "synthetic",
    OASISConfig(
        preprocess_mode="fixed",
        load_size=64,
        crop_size=64,
        channels_G=8,
        spade_hidden=16,
        z_dim=16,
        channels_D=8,
        param_free_norm="batch",
        batch_size=8,
        lr_g=0.0004,
        lr_d=0.0004,
        EMA_decay=0.99,
        bn_stat_batches=20,
        niter=0,
        max_iters=400,
        checkpoint_every=200,
        spectral_after_conv=False,  # as SPADE's synthetic preset (see there)
    ),
)
# Your own dataset: OASIS has no loader for it; its ADE20K/COCO-Stuff options (resize 286 -> random 256 crop,
# batch 32, lr_g 1e-4, EMA 0.9999, LabelMix 10) with ADE20K's 200 epochs. Unlabeled pixels go to OASIS's unknown
# class 0 (label_shift), as in every OASIS dataset; OASIS reads no instance maps.
preset(
    "oasis", "custom", OASISConfig(**_COMMON, niter=200, lr_g=0.0001, EMA_decay=0.9999, lambda_labelmix=10.0)
)
