"""pix2pixHD (Wang et al., "High-Resolution Image Synthesis and Semantic Manipulation with Conditional GANs", CVPR 2018).

Module names follow NVIDIA/pix2pixHD (``models/networks.py``): ``model.{i}`` indices of the global generator's
``nn.Sequential``, ``model1_1``/``model1_2`` of the local enhancer, and the discriminator's ``scale{i}_layer{j}``,
so the released ``latest_net_G.pth`` loads strictly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError
from methods.base import METHODS, Method, preset
from methods.common.labels import dontcare_channel_first, instance_edges, one_hot, spade_ids
from methods.common.losses import GANMode, feature_matching_loss, gan_loss
from methods.common.onehot import LabelMap, OneHotConv, as_label_map, label_input, reflect_conv_labels
from methods.common.perf import SpeedConfig, adam, apply_speed_options, channels_last_inputs

NormKind = Literal["instance", "batch"]


@dataclass(frozen=True, kw_only=True)
class Pix2PixHDConfig(SpeedConfig):
    """pix2pixHD's options (``options/base_options.py``, ``train_options.py``) under their official names.

    ``gan_mode`` replaces ``--no_lsgan``: ``"ls"`` is the default LSGAN, ``"original"`` what ``--no_lsgan``
    selects (BCE), ``"hinge"`` is our addition. ``contain_dontcare_label`` is not a pix2pixHD option: it adds
    SPADE's extra channel for unlabeled pixels, which ADE20K and COCO-Stuff need (the official code only
    supports Cityscapes, whose labelIds cover every pixel).
    """

    # generator
    netG: Literal["global", "local"] = "global"  # noqa: N815 - official name
    ngf: int = 64
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_blocks_local: int = 3
    n_local_enhancers: int = 1
    niter_fix_global: int = 0  # epochs during which only the local enhancer trains
    norm: NormKind = "instance"
    # input channels
    no_instance: bool = False
    contain_dontcare_label: bool = False
    # instance-wise feature encoder
    instance_feat: bool = False
    feat_num: int = 3
    nef: int = 16
    n_downsample_E: int = 4  # noqa: N815
    # discriminator
    ndf: int = 64
    num_D: int = 2  # noqa: N815
    n_layers_D: int = 3  # noqa: N815
    # losses
    gan_mode: GANMode = "ls"
    lambda_feat: float = 10.0  # weights both feature matching and the VGG loss, as the official code
    no_ganFeat_loss: bool = False  # noqa: N815
    no_vgg_loss: bool = False
    vgg_weights: str | None = None
    # optimiser: Adam, equal lr for G and D, linear decay over niter_decay epochs
    lr: float = 0.0002
    beta1: float = 0.5
    # schedule (official: 100 + 100 epochs, batch size 1)
    niter: int = 100
    niter_decay: int = 100

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.netG not in ("global", "local"):
            raise ConfigError(f"netG must be 'global' or 'local', got {self.netG!r}")
        if self.norm not in ("instance", "batch"):
            raise ConfigError(f"norm must be 'instance' or 'batch', got {self.norm!r}")
        if self.n_local_enhancers < 1 and self.netG == "local":
            raise ConfigError("netG='local' needs n_local_enhancers >= 1")
        if self.num_D < 1 or self.n_layers_D < 1:
            raise ConfigError(f"num_D and n_layers_D must be >= 1, got {self.num_D}, {self.n_layers_D}")

    @property
    def size_multiple(self) -> int:
        """Height and width must be multiples of this (each downsampling halves them exactly)."""
        extra = self.n_local_enhancers if self.netG == "local" else 0
        return 2 ** (self.n_downsample_global + extra)


def norm_layer(kind: NormKind, nc: int) -> nn.Module:
    """The official ``get_norm_layer``: InstanceNorm without affine parameters, or affine BatchNorm."""
    return nn.InstanceNorm2d(nc, affine=False) if kind == "instance" else nn.BatchNorm2d(nc, affine=True)


def weights_init(net: nn.Module) -> None:
    """The official ``weights_init``: conv (and transposed conv) weights ~ N(0, 0.02); biases keep torch's init."""
    for m in net.modules():
        name = type(m).__name__
        if "Conv" in name:
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif "BatchNorm2d" in name and getattr(m, "weight", None) is not None:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class ResnetBlock(nn.Module):
    """Reflect-pad → conv3x3 → norm → ReLU → reflect-pad → conv3x3 → norm, plus identity (``conv_block``)."""

    def __init__(self, dim: int, norm: NormKind = "instance", activation: nn.Module | None = None) -> None:
        super().__init__()
        act = activation if activation is not None else nn.ReLU(True)
        self.conv_block = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            norm_layer(norm, dim),
            act,
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, 3),
            norm_layer(norm, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


def _down_up_layers(
    nc: int, ngf: int, n_down: int, norm: NormKind, act: nn.Module, n_blocks: int
) -> list[nn.Module]:
    """The shared body of the global generator and the feature encoder (indices define the official keys)."""
    layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(nc, ngf, 7), norm_layer(norm, ngf), act]
    for i in range(n_down):
        m = 2**i
        layers += [
            nn.Conv2d(ngf * m, ngf * m * 2, 3, stride=2, padding=1),
            norm_layer(norm, ngf * m * 2),
            act,
        ]
    layers += [ResnetBlock(ngf * 2**n_down, norm, act) for _ in range(n_blocks)]
    for i in range(n_down):
        m = 2 ** (n_down - i)
        layers += [
            nn.ConvTranspose2d(ngf * m, ngf * m // 2, 3, stride=2, padding=1, output_padding=1),
            norm_layer(norm, ngf * m // 2),
            act,
        ]
    return layers


def _run_first_conv(layers: nn.Sequential, seg: LabelMap) -> torch.Tensor:
    """``layers(seg.dense())`` for a Sequential that starts ``ReflectionPad2d`` → ``Conv2d``: the pair is one
    gather over the class ids (:func:`~methods.common.onehot.reflect_conv_labels`), the rest runs as usual."""
    h = reflect_conv_labels(layers[0], layers[1], seg)  # type: ignore[arg-type]
    for layer in list(layers)[2:]:
        h = layer(h)
    return h


class GlobalGenerator(nn.Module):
    """G1: conv7 → ``n_downsampling`` stride-2 convs → ``n_blocks`` ResnetBlocks → transposed convs → conv7 → tanh.

    ``onehot_nc`` leading input channels are one-hot labels (None: all, or all but a trailing edge channel);
    with ``onehot_conv="gather"`` and an exactly one-hot input the first ``ReflectionPad2d(3)`` → ``Conv2d(7)``
    is a gather over the class ids (the edge and feature channels stay an ordinary convolution, added).
    """

    onehot_conv: OneHotConv = "gather"

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        *,
        ngf: int = 64,
        n_downsampling: int = 4,
        n_blocks: int = 9,
        norm: NormKind = "instance",
        onehot_nc: int | None = None,
    ) -> None:
        super().__init__()
        self.onehot_nc = onehot_nc
        act = nn.ReLU(True)  # one shared in-place module, as the official code (it has no state)
        layers = _down_up_layers(input_nc, ngf, n_downsampling, norm, act, n_blocks)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor | LabelMap) -> torch.Tensor:
        """``[B, input_nc, H, W]`` label map (dense or :class:`LabelMap`) → ``[B, 3, H, W]`` in [-1, 1]."""
        seg = label_input(x, self.onehot_conv, self.onehot_nc)
        if isinstance(seg, LabelMap):
            return _run_first_conv(self.model, seg)
        return self.model(seg)


class LocalEnhancer(nn.Module):
    """G = {G1, G2}: the global generator (without its last 3 layers) on a 2x-downsampled input, whose features
    are summed with the local branch's ``model{n}_1`` and refined by ``model{n}_2`` (paper Sec. 3.2).

    The full-resolution branch's first convolution is a gather with ``onehot_conv="gather"`` (see
    :class:`GlobalGenerator`); the downsampled inputs are averages, not one-hot, and stay dense.
    """

    onehot_conv: OneHotConv = "gather"

    def __init__(
        self,
        input_nc: int,
        output_nc: int = 3,
        *,
        ngf: int = 32,
        n_downsample_global: int = 4,
        n_blocks_global: int = 9,
        n_local_enhancers: int = 1,
        n_blocks_local: int = 3,
        norm: NormKind = "instance",
        onehot_nc: int | None = None,
    ) -> None:
        super().__init__()
        self.n_local_enhancers = n_local_enhancers
        self.onehot_nc = onehot_nc
        ngf_global = ngf * 2**n_local_enhancers
        g1 = GlobalGenerator(
            input_nc,
            output_nc,
            ngf=ngf_global,
            n_downsampling=n_downsample_global,
            n_blocks=n_blocks_global,
            norm=norm,
        )
        self.model = nn.Sequential(*list(g1.model)[:-3])  # drop pad, final conv and tanh
        for n in range(1, n_local_enhancers + 1):
            nf = ngf * 2 ** (n_local_enhancers - n)
            down = [
                nn.ReflectionPad2d(3),
                nn.Conv2d(input_nc, nf, 7),
                norm_layer(norm, nf),
                nn.ReLU(True),
                nn.Conv2d(nf, nf * 2, 3, stride=2, padding=1),
                norm_layer(norm, nf * 2),
                nn.ReLU(True),
            ]
            up: list[nn.Module] = [ResnetBlock(nf * 2, norm) for _ in range(n_blocks_local)]
            up += [
                nn.ConvTranspose2d(nf * 2, nf, 3, stride=2, padding=1, output_padding=1),
                norm_layer(norm, nf),
                nn.ReLU(True),
            ]
            if n == n_local_enhancers:
                up += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
            setattr(self, f"model{n}_1", nn.Sequential(*down))
            setattr(self, f"model{n}_2", nn.Sequential(*up))

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor | LabelMap) -> torch.Tensor:
        """``[B, input_nc, H, W]`` label map (dense or :class:`LabelMap`) → ``[B, 3, H, W]`` in [-1, 1]."""
        seg = label_input(x, self.onehot_conv, self.onehot_nc)
        dense = x.dense() if isinstance(x, LabelMap) else x
        pyramid = [dense]
        for _ in range(self.n_local_enhancers):
            pyramid.append(self.downsample(pyramid[-1]))
        out = self.model(pyramid[-1])
        for n in range(1, self.n_local_enhancers + 1):
            level = self.n_local_enhancers - n
            first = getattr(self, f"model{n}_1")
            if level == 0 and isinstance(seg, LabelMap):
                h = _run_first_conv(first, seg)
            else:
                h = first(pyramid[level])
            out = getattr(self, f"model{n}_2")(h + out)
        return out


def instance_average(feat: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
    """Replace every pixel's features by the mean over its instance (per image), differentiably.

    Equals the official ``Encoder.forward`` loop over ``np.unique(inst)``, vectorised with ``index_add_``.
    """
    b, c, h, w = feat.shape
    inst = instance.reshape(b, h * w).long()
    offset = torch.arange(b, device=inst.device)[:, None] * (int(inst.max()) + 1)  # ids per image
    _, group = torch.unique(inst + offset, return_inverse=True)
    group = group.reshape(-1)
    n_groups = int(group.max()) + 1
    flat = feat.permute(0, 2, 3, 1).reshape(b * h * w, c)
    sums = flat.new_zeros(n_groups, c).index_add_(0, group, flat)
    counts = flat.new_zeros(n_groups).index_add_(0, group, flat.new_ones(group.numel()))
    means = sums / counts[:, None]
    return means[group].reshape(b, h, w, c).permute(0, 3, 1, 2).contiguous()


class Encoder(nn.Module):
    """E: the instance-wise feature encoder (``--instance_feat``), an encoder-decoder whose output is averaged
    over every instance so that each object gets one low-dimensional feature vector (paper Sec. 3.4)."""

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        *,
        ngf: int = 16,
        n_downsampling: int = 4,
        norm: NormKind = "instance",
    ) -> None:
        super().__init__()
        self.output_nc = output_nc
        layers = _down_up_layers(input_nc, ngf, n_downsampling, norm, nn.ReLU(True), 0)
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, image: torch.Tensor, instance: torch.Tensor) -> torch.Tensor:
        return instance_average(self.model(image), instance)


class MultiscaleDiscriminator(nn.Module):
    """pix2pixHD's multi-scale PatchGAN with official names ``scale{i}_layer{j}``.

    The numbering is reversed: ``result[0]`` comes from the highest-numbered scale on the full-resolution
    input and ``result[-1]`` from ``scale0`` on the most downsampled one (``forward`` of the official code).
    Each scale: conv4 s2 + LReLU; ``n_layers - 1`` × (conv4 s2 + norm + LReLU); conv4 s1 + norm + LReLU;
    conv4 s1 to one channel. All convs have biases; there is no spectral norm.
    """

    def __init__(
        self,
        input_nc: int,
        *,
        ndf: int = 64,
        n_layers: int = 3,
        num_D: int = 2,
        norm: NormKind = "instance",  # noqa: N803
    ) -> None:
        super().__init__()
        self.num_D, self.n_layers = num_D, n_layers
        kw, pad = 4, int(math.ceil((4 - 1.0) / 2))
        for i in range(num_D):
            nf = ndf
            stages: list[list[nn.Module]] = [
                [nn.Conv2d(input_nc, nf, kw, stride=2, padding=pad), nn.LeakyReLU(0.2, True)]
            ]
            for n in range(1, n_layers + 1):
                nf_prev, nf = nf, min(nf * 2, 512)
                stride = 2 if n < n_layers else 1
                stages.append(
                    [
                        nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=pad),
                        norm_layer(norm, nf),
                        nn.LeakyReLU(0.2, True),
                    ]
                )
            # (--no_lsgan appends a Sigmoid here officially; our "original" mode applies BCE to logits)
            stages.append([nn.Conv2d(nf, 1, kw, stride=1, padding=pad)])
            for j, stage in enumerate(stages):
                setattr(self, f"scale{i}_layer{j}", nn.Sequential(*stage))
        self.n_stages = len(stages)

    @staticmethod
    def downsample(x: torch.Tensor) -> torch.Tensor:
        return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for i in range(self.num_D):
            scale = self.num_D - 1 - i
            feats, h = [], x
            for j in range(self.n_stages):
                h = getattr(self, f"scale{scale}_layer{j}")(h)
                feats.append(h)
            results.append(feats)
            if i != self.num_D - 1:
                x = self.downsample(x)
        return results


def label_nc(cfg: Pix2PixHDConfig, num_classes: int) -> int:
    """One-hot channels: classes (+ SPADE's dontcare channel)."""
    return num_classes + int(cfg.contain_dontcare_label)


def generator_input_nc(cfg: Pix2PixHDConfig, num_classes: int) -> int:
    """G input: one-hot (+ instance edge) (+ ``feat_num`` encoded features), in that order."""
    return label_nc(cfg, num_classes) + int(not cfg.no_instance) + (cfg.feat_num if cfg.instance_feat else 0)


@METHODS.register("pix2pixhd")
class Pix2PixHDMethod(Method):
    """pix2pixHD: LSGAN + multi-scale feature matching (× 4/(n_layers_D+1)) + VGG perceptual loss."""

    name = "pix2pixhd"
    config_cls = Pix2PixHDConfig
    paper = "Wang et al., CVPR 2018"
    cfg: Pix2PixHDConfig

    @property
    def needs_reference_image(self) -> bool:  # type: ignore[override]
        # with --instance_feat we generate from the features encoded from the real image (official
        # --use_encoded_image); the k-means feature sampling of encode_features.py is not implemented
        return self.cfg.instance_feat

    def build_networks(self) -> dict[str, nn.Module]:
        cfg, n = self.cfg, self.spec.num_classes
        g_in = generator_input_nc(cfg, n)
        if cfg.netG == "global":
            netG: nn.Module = GlobalGenerator(
                g_in,
                ngf=cfg.ngf,
                n_downsampling=cfg.n_downsample_global,
                n_blocks=cfg.n_blocks_global,
                norm=cfg.norm,
                onehot_nc=label_nc(cfg, n),
            )
        else:
            netG = LocalEnhancer(
                g_in,
                ngf=cfg.ngf,
                n_downsample_global=cfg.n_downsample_global,
                n_blocks_global=cfg.n_blocks_global,
                n_local_enhancers=cfg.n_local_enhancers,
                n_blocks_local=cfg.n_blocks_local,
                norm=cfg.norm,
                onehot_nc=label_nc(cfg, n),
            )
        d_in = label_nc(cfg, n) + int(not cfg.no_instance) + 3
        nets: dict[str, nn.Module] = {
            "netG": netG,
            "netD": MultiscaleDiscriminator(
                d_in, ndf=cfg.ndf, n_layers=cfg.n_layers_D, num_D=cfg.num_D, norm=cfg.norm
            ),
        }
        if cfg.instance_feat:
            nets["netE"] = Encoder(
                3, cfg.feat_num, ngf=cfg.nef, n_downsampling=cfg.n_downsample_E, norm=cfg.norm
            )
        for net in nets.values():
            weights_init(net)
        apply_speed_options(nets, cfg, self.name)
        self._global_frozen = False
        return nets

    def reads_instances(self) -> bool:
        """Instance edges (``no_instance=False``) or instance-wise features (``instance_feat``)."""
        return super().reads_instances() or bool(self.cfg.instance_feat)

    def generator_keys(self) -> list[str]:
        return ["netG", "netE"] if self.cfg.instance_feat else ["netG"]

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        cfg = self.cfg
        g_params = list(self.nets["netG"].parameters())
        if cfg.instance_feat:
            g_params += list(self.nets["netE"].parameters())
        betas = (cfg.beta1, 0.999)
        return {
            "G": adam(g_params, lr=cfg.lr, betas=betas, cfg=cfg),
            "D": adam(self.nets["netD"].parameters(), lr=cfg.lr, betas=betas, cfg=cfg),
        }

    def learning_rates(self, epoch: float) -> dict[str, float] | None:
        cfg = self.cfg
        if cfg.netG == "local":
            # The official code trains only the local enhancer for niter_fix_global epochs (an optimiser over
            # its parameters only). We get the same updates by freezing the global part; it is called here
            # because the trainer reports the epoch through this hook, every iteration.
            self._freeze_global(epoch < cfg.niter_fix_global)
        if cfg.niter_decay <= 0 or epoch < cfg.niter:
            lr = cfg.lr
        else:
            lr = cfg.lr * max(0.0, 1.0 - (epoch - cfg.niter) / cfg.niter_decay)
        return {"G": lr, "D": lr}

    def _freeze_global(self, frozen: bool) -> None:
        if frozen != self._global_frozen:
            self.nets["netG"].model.requires_grad_(not frozen)
            self._global_frozen = frozen

    # --- inputs ---------------------------------------------------------------------------------
    def input_label(self, label: torch.Tensor, instance: torch.Tensor | None) -> torch.Tensor:
        """One-hot labels, then the instance-edge channel (``encode_input``)."""
        cfg, spec = self.cfg, self.spec
        ids = spade_ids(
            label,
            num_classes=spec.num_classes,
            ignore_index=spec.ignore_index,
            dontcare=cfg.contain_dontcare_label,
            dontcare_first=dontcare_channel_first(spec),
        )
        sem = one_hot(ids, label_nc(cfg, spec.num_classes))
        if not cfg.no_instance:
            if instance is None:
                raise ConfigError(
                    "pix2pixhd uses instance edges (no_instance=False) but the batch has no instance map"
                )
            sem = torch.cat((sem, instance_edges(instance)), dim=1)
        return sem

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        label = batch["label"].to(self.device)
        m = self.cfg.size_multiple
        if label.shape[-2] % m or label.shape[-1] % m:
            raise ConfigError(
                f"pix2pixhd needs height and width divisible by {m} (2^downsamplings), got {tuple(label.shape[-2:])}; "
                "change crop_size/load_size or n_downsample_global"
            )
        instance = batch.get("instance")
        instance = instance.to(self.device) if instance is not None else None
        data = dict(batch)
        data["input_label"] = self.input_label(label, instance)
        data["instance"] = instance
        data["image"] = batch["image"].to(self.device) if batch.get("image") is not None else None
        return channels_last_inputs(data, self.cfg, ("input_label", "image"))

    def _generator_input(self, data: dict[str, Any]) -> torch.Tensor | LabelMap:
        if not self.cfg.instance_feat:
            return data["input_label"]
        if data.get("image") is None or data.get("instance") is None:
            raise ConfigError(
                "pix2pixhd with instance_feat encodes the real image: the batch needs 'image' and 'instance'"
            )
        feat = self.nets["netE"](data["image"], data["instance"])
        if self.cfg.onehot_conv == "gather":
            # the features require grad, so their concatenation would hide that the labels are one-hot
            lm = as_label_map(data["input_label"], label_nc(self.cfg, self.spec.num_classes))
            if lm is not None:
                return lm.with_tail(feat)
        return torch.cat((data["input_label"], feat), dim=1)

    # --- losses ---------------------------------------------------------------------------------
    def _gan(self, pred: list[list[torch.Tensor]], real: bool, for_discriminator: bool) -> torch.Tensor:
        # the official GANLoss *sums* over scales; the shared gan_loss averages them
        mode = self.cfg.gan_mode
        return gan_loss(pred, real, mode=mode, for_discriminator=for_discriminator) * len(pred)

    def generator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg, netD = self.cfg, self.nets["netD"]
        fake = self.nets["netG"](self._generator_input(data))
        # The official forward computes D's loss on this same fake (before G's step); keep it for
        # discriminator_loss so that the two updates see what the official ones see.
        data["_fake"] = fake.detach()
        pred_fake = netD(torch.cat((data["input_label"], fake), dim=1))
        losses = {"G_GAN": self._gan(pred_fake, True, for_discriminator=False)}
        if not cfg.no_ganFeat_loss:
            with torch.no_grad():
                pred_real = netD(torch.cat((data["input_label"], data["image"]), dim=1))
            weight = cfg.lambda_feat * 4.0 / (cfg.n_layers_D + 1)
            losses["G_GAN_Feat"] = feature_matching_loss(pred_fake, pred_real, weight=weight)
        if not cfg.no_vgg_loss:
            losses["G_VGG"] = self.vgg(fake, data["image"]) * cfg.lambda_feat
        return losses

    def discriminator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        fake = data.pop("_fake", None)
        if fake is None:
            with torch.no_grad():
                fake = self.nets["netG"](self._generator_input(data))
        netD = self.nets["netD"]
        pred_fake = netD(torch.cat((data["input_label"], fake.detach()), dim=1))
        pred_real = netD(torch.cat((data["input_label"], data["image"]), dim=1))
        # loss_D = (D_fake + D_real) * 0.5 (train.py)
        return {
            "D_fake": 0.5 * self._gan(pred_fake, False, for_discriminator=True),
            "D_real": 0.5 * self._gan(pred_real, True, for_discriminator=True),
        }

    # --- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, data: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        """Deterministic: pix2pixHD has no noise input, so ``seeds`` are not used."""
        return self.nets["netG"](self._generator_input(data))

    @classmethod
    def tiny_config(cls) -> Pix2PixHDConfig:
        return Pix2PixHDConfig(
            ngf=4,
            n_downsample_global=2,
            n_blocks_global=1,
            ndf=4,
            n_layers_D=2,
            crop_size=32,
            load_size=32,
            no_vgg_loss=True,
            batch_size=2,
            niter=1,
            niter_decay=1,
        )


# --- presets ---------------------------------------------------------------------------------------
# Cityscapes: label2city_512p, i.e. all TrainOptions defaults (tests/official_opts/pix2pixhd.json): labelIds
# (35) + instance edges, images scaled to width 1024 (1024x512). The released 1024p generator is a local
# enhancer: load it with --set netG=local --set ngf=32 --set num_D=3 --set preprocess_mode=none.
preset(
    "pix2pixhd",
    "cityscapes",
    Pix2PixHDConfig(preprocess_mode="scale_width", load_size=1024, crop_size=512, aspect_ratio=2.0),
)
# ADE20K and COCO-Stuff are not supported by the official repo. These follow how SPADE's paper retrained
# pix2pixHD on them: SPADE's data options (286 → random 256 crop, dontcare channel; instance edges on COCO
# only), with pix2pixHD's own networks, losses and schedule.
_SPADE_DATA = dict(
    preprocess_mode="resize_and_crop", load_size=286, crop_size=256, contain_dontcare_label=True
)
preset("pix2pixhd", "ade20k", Pix2PixHDConfig(**_SPADE_DATA, no_instance=True))
preset("pix2pixhd", "coco", Pix2PixHDConfig(**_SPADE_DATA, no_instance=False))
# Synthetic: small widths so training finishes in minutes on 2 CPU cores; VGG off (its ImageNet weights
# cannot be downloaded here: --set no_vgg_loss=false with the vgg19 weights in the cache). An iteration
# costs about half of SPADE's synthetic one, hence more iterations for the same time.
preset(
    "pix2pixhd",
    "synthetic",
    Pix2PixHDConfig(
        preprocess_mode="fixed",
        load_size=64,
        crop_size=64,
        ngf=16,
        n_downsample_global=3,
        n_blocks_global=3,
        ndf=16,
        num_D=2,
        n_layers_D=3,
        no_vgg_loss=True,
        batch_size=8,
        lr=0.0002,
        niter=0,
        niter_decay=0,
        max_iters=1000,
        checkpoint_every=250,
        # at 64x64 with ngf 16 the 7x7 gather's fixed costs exceed the tiny dense convolution: `bench speed`
        # measured G forward 31-33 ms dense vs 40-42 ms gather (batch 8, 2 threads); at the paper's 512x256
        # the gather wins (1.13x forward, 1.11x forward+backward)
        onehot_conv="dense",
    ),
)
# Your own dataset (bench.datasets.user): pix2pixHD's aligned dataset reads this very layout ({train,val}_{label,
# img,inst}), but its scale_width 1024 -> 512 defaults are Cityscapes-sized. As for ADE20K/COCO, SPADE's custom data
# options (resize_and_crop 286 -> 256) with pix2pixHD's own networks, losses and 100 + 100 epoch schedule; the
# dontcare channel and instance edges follow the data (bench.datasets.user.adapt_config).
preset("pix2pixhd", "custom", Pix2PixHDConfig(preprocess_mode="resize_and_crop", load_size=286, crop_size=256,
                                              contain_dontcare_label=False, no_instance=True))
