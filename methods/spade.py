"""SPADE / GauGAN (Park et al., "Semantic Image Synthesis with Spatially-Adaptive Normalization", CVPR 2019).

Module and attribute names follow NVlabs/SPADE so its released ``latest_net_G.pth`` files load strictly.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from methods.base import METHODS, Method, noise_generator, preset
from methods.common.architecture import SPADEResnetBlock, leaky
from methods.common.discriminator import MultiscaleDiscriminator
from methods.common.labels import dontcare_channel_first, instance_edges, one_hot, spade_ids
from methods.common.losses import GANMode, feature_matching_loss, gan_loss, kld_loss
from methods.common.normalization import ParamFreeNorm, instance_norm_conv
from methods.common.onehot import LabelMap, OneHotConv, conv_labels, label_input
from methods.common.perf import SpeedConfig, adam, apply_speed_options, channels_last_inputs

UpsamplingLayers = Literal["normal", "more", "most"]


@dataclass(frozen=True, kw_only=True)
class SPADEConfig(SpeedConfig):
    """SPADE's options (``options/base_options.py``, ``train_options.py``) under their official names.

    ``norm_G='spectralspadesyncbatch3x3'`` is split into ``spectral_G`` and ``param_free_norm``. The speed
    fields (``onehot_conv``, ``fuse_gamma_beta``, ``bf16``, ...) are :class:`~methods.common.perf.SpeedConfig`'s.
    """

    # generator
    ngf: int = 64
    param_free_norm: ParamFreeNorm = "syncbatch"
    spectral_G: bool = True
    spade_hidden: int = 128  # hard-coded 128 in the official code; smaller only for tiny presets
    num_upsampling_layers: UpsamplingLayers = "normal"
    use_vae: bool = False
    z_dim: int = 256
    init_type: Literal["xavier", "normal", "kaiming", "orthogonal", "none"] = "xavier"
    init_variance: float = 0.02
    # input channels
    contain_dontcare_label: bool = False
    no_instance: bool = True
    # discriminator
    ndf: int = 64
    num_D: int = 2
    n_layers_D: int = 4
    spectral_D: bool = True
    # losses
    gan_mode: GANMode = "hinge"
    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    lambda_kld: float = 0.05
    no_ganFeat_loss: bool = False
    no_vgg_loss: bool = False
    vgg_weights: str | None = None  # path to vgg19-dcbb9e9d.pth; default: the weights cache
    # pixel L1 to the real image: not an official option (0 = off, as officially); a stand-in for the
    # VGG loss in the CPU presets, where the VGG19 weights cannot be downloaded
    lambda_l1: float = 0.0
    # optimiser (TTUR: G lr/2, D lr*2, betas (0, 0.9))
    lr: float = 0.0002
    beta1: float = 0.0
    beta2: float = 0.9
    no_TTUR: bool = False
    D_steps_per_G: int = 1

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_vae and self.crop_size < 64:
            raise ValueError("use_vae needs crop_size >= 64 (the encoder flattens a 4x4 map)")
        if self.crop_size // 2 ** {"normal": 5, "more": 6, "most": 7}[self.num_upsampling_layers] < 1:
            raise ValueError(f"crop_size {self.crop_size} is too small for num_upsampling_layers={self.num_upsampling_layers!r}")


def init_weights(net: nn.Module, init_type: str = "xavier", gain: float = 0.02) -> None:
    """The official ``BaseNetwork.init_weights``.

    For spectral-norm convs the official code initialises ``module.weight``, which right after
    ``spectral_norm`` shares storage with ``weight_orig``: so ``weight_orig`` gets the xavier init too.
    """
    if init_type == "none":
        return
    for m in net.modules():
        name = type(m).__name__
        params = getattr(m, "_parameters", {})
        w = params.get("weight")
        if w is None:
            w = params.get("weight_orig")
        if "BatchNorm2d" in name:
            if w is not None:
                nn.init.normal_(w, 1.0, gain)
            if params.get("bias") is not None:
                nn.init.constant_(m.bias, 0.0)
        elif ("Conv" in name or "Linear" in name) and w is not None:
            if init_type == "normal":
                nn.init.normal_(w, 0.0, gain)
            elif init_type == "xavier":
                nn.init.xavier_normal_(w, gain=gain)
            elif init_type == "kaiming":
                nn.init.kaiming_normal_(w, a=0, mode="fan_in")
            elif init_type == "orthogonal":
                nn.init.orthogonal_(w, gain=gain)
            if params.get("bias") is not None:
                nn.init.constant_(m.bias, 0.0)


def latent_size(crop_size: int, aspect_ratio: float, num_upsampling_layers: UpsamplingLayers) -> tuple[int, int]:
    """``(sh, sw)`` of the first feature map: crop / 2^num_up, height by the aspect ratio."""
    num_up = {"normal": 5, "more": 6, "most": 7}[num_upsampling_layers]
    sw = crop_size // (2**num_up)
    return round(sw / aspect_ratio), sw


class SPADEGenerator(nn.Module):
    """SPADE generator: fc → head_0 → G_middle_0/1 → up_0..up_3 (→ up_4 for ``most``) → conv_img.

    ``onehot_nc`` is the number of leading one-hot channels of the input (classes + dontcare; None: all
    channels, or all but a trailing instance-edge channel). With ``onehot_conv="gather"`` (attribute, see
    :func:`methods.common.onehot.set_onehot_conv`) and an exactly one-hot input, ``fc`` and every SPADE
    ``mlp_shared`` are gathers over the class ids; any other input takes the dense path.
    """

    onehot_conv: OneHotConv = "gather"

    def __init__(
        self,
        semantic_nc: int,
        *,
        ngf: int = 64,
        crop_size: int = 256,
        aspect_ratio: float = 1.0,
        num_upsampling_layers: UpsamplingLayers = "normal",
        use_vae: bool = False,
        z_dim: int = 256,
        spectral: bool = True,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_hidden: int = 128,
        block: type[SPADEResnetBlock] = SPADEResnetBlock,
        block_kwargs: dict[str, Any] | None = None,
        onehot_nc: int | None = None,
    ) -> None:
        super().__init__()
        nf = ngf
        self.onehot_nc = onehot_nc
        self.use_vae, self.z_dim, self.num_upsampling_layers = use_vae, z_dim, num_upsampling_layers
        self.sh, self.sw = latent_size(crop_size, aspect_ratio, num_upsampling_layers)
        if use_vae:
            self.fc = nn.Linear(z_dim, 16 * nf * self.sw * self.sh)
        else:
            self.fc = nn.Conv2d(semantic_nc, 16 * nf, 3, padding=1)
        kw = dict(spectral=spectral, param_free_norm=param_free_norm, spade_hidden=spade_hidden)
        kw.update(block_kwargs or {})
        self.head_0 = block(16 * nf, 16 * nf, semantic_nc, **kw)
        self.G_middle_0 = block(16 * nf, 16 * nf, semantic_nc, **kw)
        self.G_middle_1 = block(16 * nf, 16 * nf, semantic_nc, **kw)
        self.up_0 = block(16 * nf, 8 * nf, semantic_nc, **kw)
        self.up_1 = block(8 * nf, 4 * nf, semantic_nc, **kw)
        self.up_2 = block(4 * nf, 2 * nf, semantic_nc, **kw)
        self.up_3 = block(2 * nf, 1 * nf, semantic_nc, **kw)
        final_nc = nf
        if num_upsampling_layers == "most":
            self.up_4 = block(1 * nf, nf // 2, semantic_nc, **kw)
            final_nc = nf // 2
        self.conv_img = nn.Conv2d(final_nc, 3, 3, padding=1)
        self.up = nn.Upsample(scale_factor=2)

    def forward(
        self, seg: torch.Tensor | LabelMap, z: torch.Tensor | None = None, *extra: torch.Tensor
    ) -> torch.Tensor:
        """Image ``[B, 3, H, W]`` in [-1, 1] for a label map ``seg`` [B, semantic_nc, H, W] (dense or
        :class:`LabelMap`); ``z`` [B, z_dim] with ``use_vae`` (drawn from the global RNG if None)."""
        seg = label_input(seg, self.onehot_conv, self.onehot_nc)
        if self.use_vae:
            if z is None:
                z = torch.randn(seg.shape[0], self.z_dim, dtype=torch.float32, device=seg.device)
            x = self.fc(z).view(-1, self.fc.out_features // (self.sh * self.sw), self.sh, self.sw)
        elif isinstance(seg, LabelMap):
            x = conv_labels(self.fc, seg.resized((self.sh, self.sw)))
        else:
            x = self.fc(F.interpolate(seg, size=(self.sh, self.sw)))
        x = self.head_0(x, seg, *extra)
        x = self.up(x)
        x = self.G_middle_0(x, seg, *extra)
        if self.num_upsampling_layers in ("more", "most"):
            x = self.up(x)
        x = self.G_middle_1(x, seg, *extra)
        for name in ("up_0", "up_1", "up_2", "up_3"):
            x = self.up(x)
            x = getattr(self, name)(x, seg, *extra)
        if self.num_upsampling_layers == "most":
            x = self.up(x)
            x = self.up_4(x, seg, *extra)
        return torch.tanh(self.conv_img(leaky(x)))


class ConvEncoder(nn.Module):
    """SPADE's VAE image encoder: six stride-2 SN convs + InstanceNorm, then ``fc_mu``/``fc_var``."""

    def __init__(self, *, ngf: int = 64, crop_size: int = 256, z_dim: int = 256, spectral: bool = True) -> None:
        super().__init__()
        ndf = ngf
        chans = [3, ndf, ndf * 2, ndf * 4, ndf * 8, ndf * 8] + ([ndf * 8] if crop_size >= 256 else [])
        for i in range(len(chans) - 1):
            conv = nn.Conv2d(chans[i], chans[i + 1], 3, stride=2, padding=1)
            self.add_module(f"layer{i + 1}", instance_norm_conv(conv, spectral=spectral))
        self.n_layers = len(chans) - 1
        self.so = s0 = 4
        self.fc_mu = nn.Linear(ndf * 8 * s0 * s0, z_dim)
        self.fc_var = nn.Linear(ndf * 8 * s0 * s0, z_dim)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.size(2) != 256 or x.size(3) != 256:
            x = F.interpolate(x, size=(256, 256), mode="bilinear")
        x = self.layer1(x)
        for i in range(2, self.n_layers + 1):
            x = getattr(self, f"layer{i}")(leaky(x))
        x = leaky(x).reshape(x.size(0), -1)
        return self.fc_mu(x), self.fc_var(x)


def semantic_nc(cfg: SPADEConfig, num_classes: int) -> int:
    """Input channels: classes (+ dontcare) (+ instance edge)."""
    return num_classes + int(cfg.contain_dontcare_label) + int(not cfg.no_instance)


@METHODS.register("spade")
class SPADEMethod(Method):
    """SPADE with hinge GAN, feature matching, VGG perceptual and (with ``use_vae``) KL losses."""

    name = "spade"
    config_cls = SPADEConfig
    paper = "Park et al., CVPR 2019"
    cfg: SPADEConfig

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.cfg.use_vae

    def build_networks(self) -> dict[str, nn.Module]:
        cfg, nc = self.cfg, semantic_nc(self.cfg, self.spec.num_classes)
        netG = SPADEGenerator(
            nc,
            ngf=cfg.ngf,
            crop_size=cfg.crop_size,
            aspect_ratio=cfg.aspect_ratio,
            num_upsampling_layers=cfg.num_upsampling_layers,
            use_vae=cfg.use_vae,
            z_dim=cfg.z_dim,
            spectral=cfg.spectral_G,
            param_free_norm=cfg.param_free_norm,
            spade_hidden=cfg.spade_hidden,
            onehot_nc=self.spec.num_classes + int(cfg.contain_dontcare_label),
        )
        netD = MultiscaleDiscriminator(
            nc + 3, num_D=cfg.num_D, ndf=cfg.ndf, n_layers=cfg.n_layers_D, spectral=cfg.spectral_D
        )
        nets: dict[str, nn.Module] = {"netG": netG, "netD": netD}
        if cfg.use_vae:
            nets["netE"] = ConvEncoder(ngf=cfg.ngf, crop_size=cfg.crop_size, z_dim=cfg.z_dim)
        for net in nets.values():
            init_weights(net, cfg.init_type, cfg.init_variance)
        apply_speed_options(nets, cfg, self.name)
        return nets

    def generator_keys(self) -> list[str]:
        return ["netG", "netE"] if self.cfg.use_vae else ["netG"]

    def _lrs(self, lr: float) -> tuple[float, float]:
        return (lr, lr) if self.cfg.no_TTUR else (lr / 2, lr * 2)

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.cfg
        g_params = list(self.nets["netG"].parameters())
        if cfg.use_vae:
            g_params += list(self.nets["netE"].parameters())
        betas = (0.5, 0.999) if cfg.no_TTUR and (cfg.beta1, cfg.beta2) == (0.0, 0.9) else (cfg.beta1, cfg.beta2)
        lr_g, lr_d = self._lrs(cfg.lr)
        return {
            "G": adam(g_params, lr=lr_g, betas=betas, cfg=cfg),
            "D": adam(self.nets["netD"].parameters(), lr=lr_d, betas=betas, cfg=cfg),
        }

    def learning_rates(self, epoch: float) -> dict[str, float] | None:
        cfg = self.cfg
        if cfg.niter_decay <= 0 or epoch < cfg.niter:
            lr = cfg.lr
        else:
            lr = cfg.lr * max(0.0, 1.0 - (epoch - cfg.niter) / cfg.niter_decay)
        lr_g, lr_d = self._lrs(lr)
        return {"G": lr_g, "D": lr_d}

    # --- inputs ---------------------------------------------------------------------------------
    def input_semantics(self, label: torch.Tensor, instance: torch.Tensor | None) -> torch.Tensor:
        cfg, spec = self.cfg, self.spec
        ids = spade_ids(
            label,
            num_classes=spec.num_classes,
            ignore_index=spec.ignore_index,
            dontcare=cfg.contain_dontcare_label,
            dontcare_first=dontcare_channel_first(spec),
        )
        sem = one_hot(ids, spec.num_classes + int(cfg.contain_dontcare_label))
        if not cfg.no_instance:
            if instance is None:
                raise ValueError("this configuration uses instance edges but the batch has no instance map")
            sem = torch.cat((sem, instance_edges(instance)), dim=1)
        return sem

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        label = batch["label"].to(self.device)
        instance = batch.get("instance")
        instance = instance.to(self.device) if instance is not None else None
        data = dict(batch)
        data["semantics"] = self.input_semantics(label, instance)
        data["image"] = batch["image"].to(self.device) if "image" in batch else None
        return channels_last_inputs(data, self.cfg, ("semantics", "image"))

    # --- losses ---------------------------------------------------------------------------------
    def _fake(self, data: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor | None]:
        kld = None
        z = None
        if self.cfg.use_vae:
            mu, logvar = self.nets["netE"](data["image"])
            std = torch.exp(0.5 * logvar)
            z = torch.randn_like(std) * std + mu
            kld = kld_loss(mu, logvar) * self.cfg.lambda_kld
        return self.nets["netG"](data["semantics"], z), kld

    def _discriminate(self, sem: torch.Tensor, fake: torch.Tensor, real: torch.Tensor):  # noqa: ANN202
        # fake and real go through D in one batch, as the official code (BatchNorm-free D, but same order)
        d_in = torch.cat([torch.cat([sem, fake], 1), torch.cat([sem, real], 1)], 0)
        out = self.nets["netD"](d_in)
        n = fake.size(0)
        return [[t[:n] for t in scale] for scale in out], [[t[n:] for t in scale] for scale in out]

    def generator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        fake, kld = self._fake(data)
        pred_fake, pred_real = self._discriminate(data["semantics"], fake, data["image"])
        losses = {"GAN": gan_loss(pred_fake, True, mode=cfg.gan_mode, for_discriminator=False)}
        if kld is not None:
            losses["KLD"] = kld
        if not cfg.no_ganFeat_loss:
            losses["GAN_Feat"] = feature_matching_loss(pred_fake, pred_real, weight=cfg.lambda_feat)
        if not cfg.no_vgg_loss:
            losses["VGG"] = self.vgg(fake, data["image"]) * cfg.lambda_vgg
        if cfg.lambda_l1 > 0:
            losses["L1"] = F.l1_loss(fake, data["image"]) * cfg.lambda_l1
        return losses

    def discriminator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            fake, _ = self._fake(data)
        pred_fake, pred_real = self._discriminate(data["semantics"], fake.detach(), data["image"])
        return {
            "D_Fake": gan_loss(pred_fake, False, mode=self.cfg.gan_mode),
            "D_real": gan_loss(pred_real, True, mode=self.cfg.gan_mode),
        }

    # --- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, data: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        z = None
        if self.cfg.use_vae:
            z = torch.stack(
                [torch.randn(self.cfg.z_dim, generator=noise_generator(s)) for s in seeds]
            ).to(self.device)
        return self.nets["netG"](data["semantics"], z)

    @classmethod
    def tiny_config(cls) -> SPADEConfig:
        return SPADEConfig(ngf=4, spade_hidden=8, ndf=4, crop_size=32, load_size=32, no_vgg_loss=True, batch_size=2)


# --- presets: the official options per dataset (tests/official_opts/spade_*.json) ---------------
_OFFICIAL = dict(preprocess_mode="resize_and_crop", load_size=286, crop_size=256, niter=50, niter_decay=0)
preset("spade", "ade20k", SPADEConfig(**_OFFICIAL, contain_dontcare_label=True, no_instance=True))
preset("spade", "coco", SPADEConfig(**_OFFICIAL, contain_dontcare_label=True, no_instance=False))
preset(
    "spade",
    "cityscapes",
    SPADEConfig(
        preprocess_mode="fixed",
        load_size=512,
        crop_size=512,
        aspect_ratio=2.0,
        batch_size=16,
        num_upsampling_layers="more",
        contain_dontcare_label=False,
        no_instance=False,
    ),
)
preset(
    "spade",
    "celebamask",
    SPADEConfig(preprocess_mode="resize_and_crop", load_size=256, crop_size=256, no_instance=True),
)
# Synthetic: small widths so training finishes in minutes on 2 CPU cores. The VGG loss is off because
# its ImageNet weights cannot be downloaded here (turn it on with --set no_vgg_loss=false).
# spectral_after_conv (opt-in everywhere, methods/common/perf.py) is pinned off on the synthetic presets of every
# method: it changes float rounding, and the drift baseline (baselines/spade_synthetic.json) and the README's
# synthetic figures were measured without it.
preset(
    "spade",
    "synthetic",
    SPADEConfig(
        preprocess_mode="fixed",
        load_size=64,
        crop_size=64,
        ngf=8,
        spade_hidden=16,
        ndf=16,
        n_layers_D=3,
        param_free_norm="batch",
        no_instance=False,
        no_vgg_loss=True,
        batch_size=8,
        niter=0,
        max_iters=600,
        checkpoint_every=200,
        spectral_after_conv=False,
    ),
)
# Your own dataset (bench.datasets.user): SPADE's `--dataset_mode custom` defaults (data/custom_dataset.py):
# resize_and_crop 286 -> 256 (256 at test), batch 1, 50 epochs, no decay; label_nc comes from the data. One
# departure, made per dataset by bench.datasets.user.adapt_config (recorded in the config): the official
# contain_dontcare_label=False / no_instance=False need the user to pass the matching flags (unlabeled pixels
# otherwise fail in scatter_, a missing --instance_dir in __getitem__); here the dontcare channel is on when the
# labels hold the ignore id, and instance edges when the dataset has train_inst/ and val_inst/.
preset("spade", "custom", SPADEConfig(**_OFFICIAL, contain_dontcare_label=False, no_instance=True))
