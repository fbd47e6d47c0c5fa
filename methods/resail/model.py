"""RESAIL (Shi et al., "Retrieval-based Spatially Adaptive Normalization for Semantic Image Synthesis",
CVPR 2022): the SPADE generator with every normalization replaced by SIN, which blends SPADE's
label-conditioned modulation with one predicted from a guidance image; a two-stream SESAME
discriminator; training on a distorted ground truth and on retrieved guidance.

Module names follow Shi-Yupeng/RESAIL-For-SIS so its ``state_dict`` keys match the official ones.
The released training loop cannot train (it ``continue``s before any step); this one follows what it
was written to do (``models/pix2pix_model.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import ConfigError
from methods.base import METHODS, preset
from methods.common.discriminator import MultiscaleDiscriminator
from methods.common.labels import dontcare_channel_first, instance_edges, one_hot, spade_ids
from methods.common.losses import feature_matching_loss, gan_loss
from methods.common.normalization import SPADE, ParamFreeNorm, fused_pair, instance_norm_conv
from methods.common.onehot import LabelMap, conv_labels, resize_labels
from methods.common.perf import apply_speed_options
from methods.resail.distortion import distorted_ground_truth
from methods.resail.retrieval import (
    Retrieval,
    SegmentDB,
    _to_uint8,
    ensure_database,
    guidance_from,
    retrieve_batch,
    to_tensor,
)
from methods.spade import SPADEConfig, SPADEGenerator, SPADEMethod, init_weights, latent_size


@dataclass(frozen=True, kw_only=True)
class RESAILConfig(SPADEConfig):
    """RESAIL's options under their official names (it extends SPADE's), plus retrieval/distortion knobs.

    ``norm_way=""`` (every norm is SIN) and ``netD=sesamemultiscale`` are the only official choices here.
    """

    # generator
    label_nc: int | None = None  # class channels before dontcare/edge; None = the dataset's classes
    style_length: int = 128  # SIN's guidance-branch width (hard-coded 128 officially)
    conv_s_padding: int = 0  # official 0; its 3x3 stride-2 label conv needs maps >= 3 px, so tiny crops use 1
    # retrieval (official ``topk``; the 0.9 area share is hard-coded there)
    topk: int = 10
    preserved_ratio: float = 0.9
    database_root: str | None = None  # dataset whose train split is indexed; default: the batch's dataset
    database_max_images: int | None = None  # index only the first N training images
    retrieval_device: str | None = None  # where segments are scored; default: the method's device
    # distorted ground truth (official constants)
    resolution_min: float = 0.5
    warp_points: int = 10
    warp_moved: int = 3
    warp_ratio: float = 0.22
    # losses
    no_retrieval_loss: bool = False
    segloss: bool = False  # class-balanced CE through a frozen segmenter (``RESAILMethod.set_segmenter``)
    lambda_seg: float = 5.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.use_vae:
            raise ValueError("RESAIL has no VAE encoder; use_vae must be false")
        if self.topk < 1:
            raise ValueError(f"topk must be >= 1, got {self.topk}")
        if not 0 < self.preserved_ratio <= 1:
            raise ValueError(f"preserved_ratio must be in (0, 1], got {self.preserved_ratio}")
        if not 0 < self.resolution_min <= 1:
            raise ValueError(f"resolution_min must be in (0, 1], got {self.resolution_min}")
        if self.warp_moved > self.warp_points or self.warp_points < 3:
            raise ValueError("need warp_points >= 3 and warp_moved <= warp_points")
        sh, sw = latent_size(self.crop_size, self.aspect_ratio, self.num_upsampling_layers)
        if min(sh, sw) < 2:
            raise ValueError(
                f"crop_size {self.crop_size} gives a {sh}x{sw} first feature map; SIN's instance norms need at "
                "least 2x2 (crop_size >= 64 with num_upsampling_layers='normal')"
            )
        if min(sh, sw) + 2 * self.conv_s_padding < 3:
            raise ValueError(
                f"crop_size {self.crop_size} gives a {sh}x{sw} first feature map, too small for SIN's 3x3 "
                "label conv; set conv_s_padding=1 (or a larger crop_size)"
            )


class AdaIN(nn.Module):
    """Adaptive instance norm with externally given scale and shift (official ``AdaIN``; no parameters)."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        # affine-free and untracked, so num_features is unused; the official code passes norm_nc * 2, which
        # is not the channel count it sees (torch warns on every call), so we pass the real one
        self.instance_norm = nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)

    def forward(self, x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
        return scale * self.instance_norm(x) + shift


class SIN(SPADE):
    """RESAIL's normalization (paper Sec. 3.2; official ``SIN``).

    Guidance branch: conv1 → AdaIN → relu → conv2 → AdaIN → relu → conv3 → conv_gamma/conv_beta, where
    both AdaINs take their scale/shift from the globally pooled label map (``conv_s``, ``conv_s2``).
    SPADE branch: ``mlp_shared`` → ``mlp_gamma``/``mlp_beta`` (inherited). The two are blended by the
    learnable ``sigmoid(blending_gamma)``/``sigmoid(blending_beta)``, then modulate the param-free norm.

    With a :class:`~methods.common.onehot.LabelMap` the label convolutions are gathers: ``mlp_shared``, and
    ``conv_s`` followed by the global average pool as one gather-mean (no ``conv_s`` output map is formed).
    With ``fuse_gamma_beta`` each γ/β pair is one convolution over the concatenated weights.
    """

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        *,
        hidden: int = 128,
        style_length: int = 128,
        kernel: int = 3,
        param_free_norm: ParamFreeNorm = "syncbatch",
        conv_s_padding: int = 0,
    ) -> None:
        super().__init__(norm_nc, label_nc, hidden=hidden, kernel=kernel, param_free_norm=param_free_norm)
        L, pw = style_length, kernel // 2  # noqa: N806
        self.style_length = L
        self.blending_gamma = nn.Parameter(torch.zeros(1))
        self.blending_beta = nn.Parameter(torch.zeros(1))
        self.conv1 = nn.Conv2d(3, L, 3, 1, padding=1)
        self.adaIn1 = AdaIN(L)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(L, L, 3, 1, padding=1)
        self.adaIn2 = AdaIN(L)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(L, L, 3, 1, padding=1)
        self.conv_s = nn.Conv2d(label_nc, 2 * L, 3, 2, padding=conv_s_padding)
        self.pool_s = nn.AdaptiveAvgPool2d(1)
        self.conv_s2 = nn.Conv2d(2 * L, 2 * L, 1, 1)
        self.conv_gamma = nn.Conv2d(L, norm_nc, kernel_size=kernel, padding=pw)
        self.conv_beta = nn.Conv2d(L, norm_nc, kernel_size=kernel, padding=pw)

    def forward(  # type: ignore[override]
        self, x: torch.Tensor, segmap: torch.Tensor | LabelMap, guidance: torch.Tensor
    ) -> torch.Tensor:
        """``x`` [B, norm_nc, H, W] modulated by the label map (dense or :class:`LabelMap`) and ``guidance``
        [B, 3, h, w] (bilinearly resized to ``x``)."""
        normalized = self.param_free_norm(x)
        size = x.shape[2:]
        guide = F.interpolate(guidance, size=size, mode="bilinear", align_corners=False)
        seg = resize_labels(segmap, size)
        L = self.style_length  # noqa: N806
        if isinstance(seg, LabelMap):
            c1 = conv_labels(self.conv_s, seg, reduce="mean")
        else:
            c1 = self.pool_s(self.conv_s(seg))
        c2 = self.conv_s2(c1)
        f = self.relu1(self.adaIn1(self.conv1(guide), c1[:, :L], c1[:, L:]))
        f = self.relu2(self.adaIn2(self.conv2(f), c2[:, :L], c2[:, L:]))
        middle = self.conv3(f)
        actv = self.shared(seg, size)
        gamma_g, beta_g = fused_pair(self.conv_gamma, self.conv_beta, middle, self.fuse_gamma_beta)
        gamma_m, beta_m = fused_pair(self.mlp_gamma, self.mlp_beta, actv, self.fuse_gamma_beta)
        a_g, a_b = torch.sigmoid(self.blending_gamma), torch.sigmoid(self.blending_beta)
        gamma = a_g * gamma_g + (1 - a_g) * gamma_m
        beta = a_b * beta_g + (1 - a_b) * beta_m
        return normalized * (1 + gamma) + beta


class RESAILGenerator(SPADEGenerator):
    """SPADE's generator with :class:`SIN` in every residual block; the guidance image is the extra input.

    ``forward(seg, z=None, params={"retrieval_image": g})`` is the official call; ``guidance=g`` works too.
    """

    def __init__(
        self,
        semantic_nc: int,
        *,
        style_length: int = 128,
        conv_s_padding: int = 0,
        param_free_norm: ParamFreeNorm = "syncbatch",
        spade_hidden: int = 128,
        **kwargs: Any,
    ) -> None:
        def sin(nc: int) -> nn.Module:
            return SIN(nc, semantic_nc, hidden=spade_hidden, style_length=style_length,
                       param_free_norm=param_free_norm, conv_s_padding=conv_s_padding)

        super().__init__(semantic_nc, param_free_norm=param_free_norm, spade_hidden=spade_hidden,
                         block_kwargs={"norm": sin}, **kwargs)

    def forward(  # type: ignore[override]
        self,
        seg: torch.Tensor,
        z: torch.Tensor | None = None,
        params: dict[str, torch.Tensor] | None = None,
        *,
        guidance: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if guidance is None:
            if not params or "retrieval_image" not in params:
                raise ValueError("RESAILGenerator needs a guidance image (guidance=... or params['retrieval_image'])")
            guidance = params["retrieval_image"]
        return super().forward(seg, z, guidance)


class SesameNLayerDiscriminator(nn.Module):
    """SESAME's two-stream PatchGAN (official ``SesameNLayerDiscriminator``).

    The label map and the image run through separate conv stacks (``sem_sequence``, ``img_sequence``);
    before the last conv the image features are fused as ``x + x * sem.sum(1)``. Returns the image
    branch's features (the last one before fusion) and the final map.
    """

    def __init__(self, input_nc: int, *, ndf: int = 64, n_layers: int = 4, spectral: bool = True) -> None:
        super().__init__()
        kw, padw = 4, int(math.ceil((4 - 1.0) / 2))
        branches = []
        nf = ndf
        for in_nc in (input_nc - 3, 3):
            nf = ndf
            seq: list[nn.Module] = [nn.Sequential(nn.Conv2d(in_nc, nf, kw, stride=2, padding=padw), nn.LeakyReLU(0.2, False))]
            for n in range(1, n_layers):
                nf_prev, nf = nf, min(nf * 2, 512)
                stride = 1 if n == n_layers - 1 else 2
                conv = nn.Conv2d(nf_prev, nf, kw, stride=stride, padding=padw)
                seq.append(nn.Sequential(instance_norm_conv(conv, spectral=spectral), nn.LeakyReLU(0.2, False)))
            branches.append(seq)
        self.sem_sequence = nn.Sequential(*branches[0])
        self.img_sequence = nn.ModuleList(branches[1] + [nn.Sequential(nn.Conv2d(nf, 1, kw, stride=1, padding=padw))])

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        img, sem = x[:, -3:], x[:, :-3]
        sem_features = self.sem_sequence(sem)
        results = []
        h = img
        for block in self.img_sequence[:-1]:
            h = block(h)
            results.append(h)
        fused = h + h * sem_features.sum(1, keepdim=True)
        results.append(self.img_sequence[-1](fused))
        return results


class SesameMultiscaleDiscriminator(nn.Module):
    """``num_D`` SESAME discriminators on successively 2x average-pooled inputs."""

    def __init__(self, input_nc: int, *, num_D: int = 2, **kwargs: Any) -> None:  # noqa: N803
        super().__init__()
        self.num_D = num_D
        for i in range(num_D):
            self.add_module(f"discriminator_{i}", SesameNLayerDiscriminator(input_nc, **kwargs))

    def forward(self, x: torch.Tensor) -> list[list[torch.Tensor]]:
        results = []
        for i in range(self.num_D):
            results.append(getattr(self, f"discriminator_{i}")(x))
            if i != self.num_D - 1:
                x = MultiscaleDiscriminator.downsample(x)
        return results


def semantic_nc(cfg: RESAILConfig, num_classes: int) -> int:
    """Input channels: class channels (``label_nc``) (+ dontcare) (+ instance edge)."""
    return _label_nc(cfg, num_classes) + int(cfg.contain_dontcare_label) + int(not cfg.no_instance)


def _label_nc(cfg: RESAILConfig, num_classes: int) -> int:
    if cfg.label_nc is None:
        return num_classes
    if cfg.label_nc < num_classes:
        raise ConfigError(f"label_nc={cfg.label_nc} is below the dataset's {num_classes} classes; unset it")
    return cfg.label_nc


def database_for(
    cfg: RESAILConfig, spec: Any, root: str | Path, *, device: str | torch.device = "cpu", progress: bool = True,
    rebuild: bool = False,
) -> SegmentDB:
    """The cached database of ``root``'s train split as ``cfg`` uses it (``bench resail index`` builds this).

    Samples are preprocessed as for evaluation (``cfg``'s resize and centred crop, no flip), so database
    crops have the scale of the label maps they are retrieved for.
    """
    from bench.datasets.transforms import Preprocess

    pre = Preprocess(preprocess_mode=cfg.preprocess_mode, load_size=cfg.load_size, crop_size=cfg.crop_size,  # type: ignore[arg-type]
                     aspect_ratio=cfg.aspect_ratio, no_flip=True)
    return ensure_database(root, spec, preprocess=pre, preserved_ratio=cfg.preserved_ratio,
                           max_images=cfg.database_max_images, k=cfg.topk, device=device, progress=progress,
                           rebuild=rebuild)


def class_balanced_ce(logits: torch.Tensor, label: torch.Tensor, ignore_index: int | None) -> torch.Tensor:
    """Official ``balance_label`` + ``balanced_NLLloss2d``: per-pixel CE weighted by inverse class frequency.

    A class's weight is ``pixels / (present classes x its pixels)``, so every present class contributes
    equally; unlabeled pixels weigh 0.
    """
    target = label[:, 0].long()
    if logits.shape[2:] != target.shape[1:]:
        logits = F.interpolate(logits, size=target.shape[1:], mode="bilinear", align_corners=False)
    valid = target != ignore_index if ignore_index is not None else torch.ones_like(target, dtype=torch.bool)
    t = torch.where(valid, target, torch.zeros_like(target))
    counts = torch.bincount(t[valid], minlength=logits.shape[1]).float()
    present = (counts > 0).sum().clamp_min(1)
    coeff = valid.sum() / (present * counts.clamp_min(1))
    weight = coeff[t] * valid
    loss = F.cross_entropy(logits, t, reduction="none")
    return (loss * weight).mean()


@METHODS.register("resail")
class RESAILMethod(SPADEMethod):
    """RESAIL: distorted-GT branch (hinge GAN + feature matching + VGG), retrieval branch (GAN only).

    Guidance comes from a :class:`~methods.resail.retrieval.SegmentDB` of the training split: set
    ``method.database`` (e.g. ``ensure_database(root, spec)``), or set ``database_root``, or let
    ``prepare`` find the dataset root from the batch's label paths (``ROOT/<split>_label/x.png``) and
    build or load the cached database of ``ROOT``'s train split on first use.
    """

    name = "resail"
    config_cls = RESAILConfig
    paper = "Shi et al., CVPR 2022"
    cfg: RESAILConfig

    def build_networks(self) -> dict[str, nn.Module]:
        cfg = self.cfg
        nc = semantic_nc(cfg, self.spec.num_classes)
        netG = RESAILGenerator(
            nc,
            ngf=cfg.ngf,
            crop_size=cfg.crop_size,
            aspect_ratio=cfg.aspect_ratio,
            num_upsampling_layers=cfg.num_upsampling_layers,
            spectral=cfg.spectral_G,
            param_free_norm=cfg.param_free_norm,
            spade_hidden=cfg.spade_hidden,
            style_length=cfg.style_length,
            conv_s_padding=cfg.conv_s_padding,
            onehot_nc=_label_nc(cfg, self.spec.num_classes) + int(cfg.contain_dontcare_label),
        )
        netD = SesameMultiscaleDiscriminator(
            nc + 3, num_D=cfg.num_D, ndf=cfg.ndf, n_layers=cfg.n_layers_D, spectral=cfg.spectral_D
        )
        for net in (netG, netD):
            init_weights(net, cfg.init_type, cfg.init_variance)
        self.database: SegmentDB | None = None
        self.seg_net: nn.Module | None = None
        nets: dict[str, nn.Module] = {"netG": netG, "netD": netD}
        apply_speed_options(nets, cfg, self.name)
        return nets

    def set_segmenter(self, net: nn.Module) -> None:
        """Frozen segmenter for ``segloss``: maps images in [-1, 1] to class logits ``[B, C, h, w]``."""
        net.eval().requires_grad_(False)
        self.seg_net = net.to(self.device)

    # --- inputs ---------------------------------------------------------------------------------
    def input_semantics(self, label: torch.Tensor, instance: torch.Tensor | None) -> torch.Tensor:
        cfg, spec = self.cfg, self.spec
        n = _label_nc(cfg, spec.num_classes)
        ids = spade_ids(label, num_classes=n, ignore_index=spec.ignore_index, dontcare=cfg.contain_dontcare_label,
                        dontcare_first=dontcare_channel_first(spec))
        sem = one_hot(ids, n + int(cfg.contain_dontcare_label))
        if not cfg.no_instance:
            if instance is None:
                raise ValueError("this configuration uses instance edges but the batch has no instance map")
            sem = torch.cat((sem, instance_edges(instance)), dim=1)
        return sem

    def _retrieval_device(self) -> torch.device:
        return torch.device(self.cfg.retrieval_device) if self.cfg.retrieval_device else self.device

    def get_database(self, batch: dict[str, Any] | None = None) -> SegmentDB:
        """The database in use: ``self.database``, else built/loaded for ``database_root`` or the batch's root."""
        if self.database is not None:
            return self.database
        root = Path(self.cfg.database_root) if self.cfg.database_root else None
        if root is None and batch is not None and batch.get("path"):
            folder = Path(batch["path"][0]).parent
            if folder.name.endswith("_label") and (folder.parent / "train_label").is_dir():
                root = folder.parent
        if root is None or not (root / "train_label").is_dir():
            raise ConfigError(
                "RESAIL needs the retrieval database of a training split: call method.bind_data(DATA_ROOT) "
                "(`bench train/run/generate` do, for any layout), or --set database_root=DATASET_ROOT"
            )
        self.database = database_for(self.cfg, self.spec, root, device=self._retrieval_device())
        return self.database

    def reads_instances(self) -> bool:
        """Instance edges (``no_instance=False``), and retrieval splits thing segments by instance."""
        return super().reads_instances() or bool(self.spec.has_instances)

    def bind_data(self, train_root: Any, *, train_set: Any = None, progress: bool = True) -> None:
        """Load (or build once, cached) the retrieval database of ``train_root``'s train split, any layout,
        and remember the split's label files, so a training sample never retrieves its own segments."""
        if self.database is None:
            from bench.datasets import open_split

            root = Path(self.cfg.database_root) if self.cfg.database_root else Path(train_root)
            self.database = database_for(self.cfg, self.spec, root, device=self._retrieval_device(),
                                         progress=progress)
            listing = open_split(self.spec, root, "train")
            self._indexed_labels = {str(Path(smp.label).resolve()) for smp in getattr(listing, "samples", [])}

    def before_generate(self, batches: Any) -> None:
        """Load the database of the dataset being generated from, when it is in the custom layout."""
        root = getattr(batches, "root", None)
        if self.database is None and not self.cfg.database_root and root is not None:
            if (Path(root) / "train_label").is_dir():
                self.database = database_for(self.cfg, self.spec, root, device=self._retrieval_device())

    def _exclusions(self, db: SegmentDB, batch: dict[str, Any], n: int) -> list[int]:
        """Per sample, the database image it is (so it cannot retrieve its own segments), or -1.

        A sample is a database image when its label file is one the database indexed: the files listed by
        :meth:`bind_data` (any layout), else ``ROOT/<split>_label/`` of the custom layout.
        """
        root, split = db.meta.get("root"), db.meta.get("split", "train")
        paths, ids = batch.get("path"), batch.get("id")
        if not paths or not ids:
            return [-1] * n
        indexed = getattr(self, "_indexed_labels", None)
        if indexed:
            return [db.source_index(str(i)) if str(Path(p).resolve()) in indexed else -1 for p, i in zip(paths, ids)]
        if not root:
            return [-1] * n
        label_dir = Path(root) / f"{split}_label"
        return [
            db.source_index(str(i)) if Path(p).resolve().parent == label_dir else -1 for p, i in zip(paths, ids)
        ]

    def retrieve(self, batch: dict[str, Any]) -> tuple[SegmentDB, list[Retrieval]]:
        """Query segments of every label map in ``batch`` and their top-k database matches."""
        db = self.get_database(batch)
        label = batch["label"]
        labels = [lab[0].cpu().numpy() for lab in label]
        inst = batch.get("instance") if self.spec.has_instances else None
        instances = [i[0].cpu().numpy() for i in inst] if inst is not None else None
        retrievals = retrieve_batch(
            db, labels, instances, thing_classes=self.spec.thing_classes, ignore_index=self.spec.ignore_index,
            preserved_ratio=self.cfg.preserved_ratio, k=self.cfg.topk,
            exclude_images=self._exclusions(db, batch, len(labels)), device=self._retrieval_device(),
        )
        return db, retrievals

    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """One-hot input, the guidance image I^r and (training only) the distorted ground truth Ĩ^gt."""
        data = super().prepare(batch)
        db, retrievals = self.retrieve(batch)
        data["guidance"] = to_tensor([guidance_from(db, r) for r in retrievals]).to(self.device)
        if self.nets["netG"].training and data.get("image") is not None:
            cfg = self.cfg
            # drawn from torch's RNG so the trainer's seeding and checkpointed RNG state cover it
            rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item()))
            images = [_to_uint8(im) for im in batch["image"]]
            distorted = [
                distorted_ground_truth(im, r, db, rng, resolution=(cfg.resolution_min, 1.0), n_points=cfg.warp_points,
                                       n_moved=cfg.warp_moved, warp_ratio=cfg.warp_ratio)
                for im, r in zip(images, retrievals)
            ]
            data["distorted"] = to_tensor(distorted).to(self.device)
        return data

    # --- losses ---------------------------------------------------------------------------------
    def _G(self, sem: torch.Tensor, guidance: torch.Tensor) -> torch.Tensor:  # noqa: N802
        return self.nets["netG"](sem, guidance=guidance)

    def _D(self, sem: torch.Tensor, *images: torch.Tensor) -> list[list[list[torch.Tensor]]]:  # noqa: N802
        """D on several image batches in one pass (D has no batch statistics); outputs split back."""
        n = sem.size(0)
        out = self.nets["netD"](torch.cat([torch.cat([sem, im], 1) for im in images], 0))
        return [[[t[i * n : (i + 1) * n] for t in scale] for scale in out] for i in range(len(images))]

    def _seg_loss(self, fake: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        if self.seg_net is None:
            raise ConfigError("segloss=true needs a frozen segmenter: call method.set_segmenter(net) first")
        return class_balanced_ce(self.seg_net(fake), label.to(self.device), self.spec.ignore_index) * self.cfg.lambda_seg

    def _distorted(self, data: dict[str, Any]) -> torch.Tensor:
        if "distorted" not in data:
            raise ValueError("training needs the distorted ground truth: call prepare() with the networks in train mode")
        return data["distorted"]

    def generator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg, sem, real = self.cfg, data["semantics"], data["image"]
        fake = self._G(sem, self._distorted(data))
        fakes = [fake]
        if not cfg.no_retrieval_loss:
            fakes.append(self._G(sem, data["guidance"]))
        preds = self._D(sem, *fakes, real)
        pred_fake, pred_real = preds[0], preds[-1]
        losses = {"GAN": gan_loss(pred_fake, True, mode=cfg.gan_mode, for_discriminator=False)}
        if not cfg.no_ganFeat_loss:
            losses["GAN_Feat"] = feature_matching_loss(pred_fake, pred_real, weight=cfg.lambda_feat)
        if not cfg.no_vgg_loss:
            losses["VGG"] = self.vgg(fake, real) * cfg.lambda_vgg
        if cfg.segloss:
            losses["GAN_seg_loss_1"] = self._seg_loss(fake, data["label"])
        if not cfg.no_retrieval_loss:
            losses["GAN_for_retrieval_instance"] = gan_loss(preds[1], True, mode=cfg.gan_mode, for_discriminator=False)
            if cfg.segloss:
                losses["GAN_seg_loss_retrieval"] = self._seg_loss(fakes[1], data["label"])
        return losses

    def discriminator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        cfg, sem, real = self.cfg, data["semantics"], data["image"]
        with torch.no_grad():
            fakes = [self._G(sem, self._distorted(data))]
            if not cfg.no_retrieval_loss:
                fakes.append(self._G(sem, data["guidance"]))
        preds = self._D(sem, *[f.detach() for f in fakes], real)
        pred_real = preds[-1]
        losses = {
            "D_Fake": gan_loss(preds[0], False, mode=cfg.gan_mode),
            "D_real": gan_loss(pred_real, True, mode=cfg.gan_mode),
        }
        if not cfg.no_retrieval_loss:
            # the official code runs D on the real images once per branch, so the real term counts twice
            losses["D_Fake_for_retrieval"] = gan_loss(preds[1], False, mode=cfg.gan_mode)
            losses["D_real_retrieval"] = gan_loss(pred_real, True, mode=cfg.gan_mode)
        return losses

    # --- generation -----------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, data: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        """Deterministic: the retrieved guidance fixes the appearance (no noise is drawn)."""
        return self._G(data["semantics"], data["guidance"])

    @classmethod
    def tiny_config(cls) -> RESAILConfig:
        return RESAILConfig(ngf=4, spade_hidden=8, style_length=8, ndf=4, crop_size=64, load_size=64,
                            preprocess_mode="fixed", conv_s_padding=1, no_vgg_loss=True, batch_size=2, topk=3)


# --- presets: settings.sh of the official repo (tests/parity/manifests/RESAIL_*.json list its options) ---
_SCHEDULE = dict(niter=100, niter_decay=100)
preset("resail", "ade20k", RESAILConfig(
    preprocess_mode="resize_and_crop", load_size=286, crop_size=256, batch_size=8, contain_dontcare_label=True,
    no_instance=True, **_SCHEDULE,
))
preset("resail", "coco", RESAILConfig(
    preprocess_mode="resize_and_crop", load_size=286, crop_size=256, batch_size=3, label_nc=183,
    contain_dontcare_label=True, no_instance=True, **_SCHEDULE,
))
preset("resail", "cityscapes", RESAILConfig(
    preprocess_mode="fixed", load_size=512, crop_size=512, aspect_ratio=2.0, batch_size=3,
    num_upsampling_layers="more", contain_dontcare_label=False, no_instance=True, **_SCHEDULE,
))
# Synthetic: small widths so training finishes in minutes on 2 CPU cores; VGG off (its weights cannot be
# downloaded here). The 2x2 first feature map needs conv_s_padding=1. An iteration costs about 5 SPADE
# iterations (two generator passes, each with the guidance branch in every norm), hence fewer iterations
# than SPADE's 600. 500 training images (~5.6k segments) are indexed.
preset("resail", "synthetic", RESAILConfig(
    preprocess_mode="fixed", load_size=64, crop_size=64, ngf=16, spade_hidden=16, style_length=8, ndf=16,
    n_layers_D=3, param_free_norm="batch", conv_s_padding=1, no_instance=True, no_vgg_loss=True, batch_size=8,
    niter=0, max_iters=150, checkpoint_every=50, database_max_images=500,
    spectral_after_conv=False,  # as SPADE's synthetic preset (see there)
))
# Your own dataset: the ADE20K settings.sh options (resize_and_crop 286 -> 256, batch 8, 100 + 100 epochs,
# no instance maps) with the dontcare channel and instance edges following the data (bench.datasets.user).
preset("resail", "custom", RESAILConfig(
    preprocess_mode="resize_and_crop", load_size=286, crop_size=256, batch_size=8, contain_dontcare_label=False,
    no_instance=True, **_SCHEDULE,
))
