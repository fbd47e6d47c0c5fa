"""The interface every method implements; the generic trainer and generator drive it."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar

import torch
from torch import nn

from bench.datasets.spec import DatasetSpec
from bench.registry import Registry

#: config fields that size a network: 0 builds a network with no channels (an error deep inside torch)
_WIDTHS = frozenset({"ngf", "ndf", "spade_hidden", "num_D", "n_layers_D", "channels_G", "channels_D", "style_length",
                     "style_ngf", "feat_num", "nef"})


@dataclass(frozen=True, kw_only=True)
class MethodConfig:
    """Options every method has: data preprocessing and the training schedule.

    Method configs subclass this and add their official options under the official names.
    """

    # data (official names: preprocess_mode, load_size, crop_size, aspect_ratio, no_flip)
    preprocess_mode: str = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    aspect_ratio: float = 1.0
    no_flip: bool = False
    # schedule
    batch_size: int = 1
    niter: int = 50  # epochs at the initial learning rate
    niter_decay: int = 0  # epochs of linear decay to 0
    max_iters: int | None = None  # overrides the epoch schedule when set (short runs, CI)
    checkpoint_every: int = 1000  # iterations between checkpoints
    print_every: int = 10
    amp: bool = False  # mixed precision (CUDA only)
    deterministic: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, int) and not isinstance(v, bool) and f.name not in ("max_iters",) and v < 0:
                raise ValueError(f"{f.name} must be >= 0, got {v}")
            if isinstance(v, float) and not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v}")
            if f.name.startswith("lr") and isinstance(v, int | float) and not v > 0:
                raise ValueError(f"{f.name} (a learning rate) must be > 0, got {v}")
            if f.name in ("beta1", "beta2") and isinstance(v, int | float) and not 0.0 <= v < 1.0:
                raise ValueError(f"{f.name} (an Adam beta) must be in [0, 1), got {v}")
            if f.name in _WIDTHS and isinstance(v, int) and v < 1:
                raise ValueError(f"{f.name} (a network width or count) must be >= 1, got {v}")
        if not self.aspect_ratio > 0:
            raise ValueError(f"aspect_ratio must be > 0, got {self.aspect_ratio}")
        if self.crop_size < 1 or self.load_size < 1:
            raise ValueError(f"crop_size and load_size must be >= 1, got {self.crop_size} and {self.load_size}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        if self.max_iters is not None and self.max_iters < 0:
            raise ValueError("max_iters must be >= 0")


class Method(ABC):
    """A semantic image synthesis method: its networks, losses and how it generates.

    The trainer calls, per iteration: ``prepare`` → ``generator_loss`` (backward, step G) →
    ``discriminator_loss`` (backward, step D) → ``after_step`` (EMA and the like).
    """

    name: ClassVar[str]
    config_cls: ClassVar[type[MethodConfig]]
    paper: ClassVar[str] = ""
    #: whether ``generate`` needs the real image (SEAN's style, RESAIL's reference guidance)
    needs_reference_image: ClassVar[bool] = False
    #: whether ``generate`` draws random noise (so ``--samples K`` gives K different outputs)
    stochastic: ClassVar[bool] = False

    def __init__(
        self, cfg: MethodConfig, spec: DatasetSpec, device: str | torch.device = "cpu", *, seed: int = 0
    ) -> None:
        self.cfg = cfg
        self.spec = spec
        self.device = torch.device(device)
        self.seed = seed
        # initial weights depend on the seed only, never on what ran before in the process
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            nets = self.build_networks()
        self.nets: dict[str, nn.Module] = {k: v.to(self.device) for k, v in nets.items()}

    # --- construction -------------------------------------------------------------------------
    @abstractmethod
    def build_networks(self) -> dict[str, nn.Module]:
        """All networks by their official short names (``netG``, ``netD``, ``netE``, ``netEMA``)."""

    @abstractmethod
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """``{"G": ..., "D": ...}``; the keys match the loss groups below."""

    def learning_rates(self, epoch: float) -> dict[str, float] | None:
        """Learning rates for an (fractional) epoch, or None to keep them constant."""
        return None

    # --- training -----------------------------------------------------------------------------
    @abstractmethod
    def prepare(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a collated batch to the device and build the network inputs (one-hot, edges)."""

    @abstractmethod
    def generator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named generator losses for one batch; the trainer sums them."""

    @abstractmethod
    def discriminator_loss(self, data: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Named discriminator losses for one batch; the trainer sums them."""

    @cached_property
    def vgg(self) -> nn.Module:
        """The VGG19 perceptual loss (``cfg.vgg_weights``), built on first use: configs that never call it
        never need its ImageNet weights."""
        from methods.common.losses import VGGLoss

        return VGGLoss(getattr(self.cfg, "vgg_weights", None)).to(self.device)

    # --- what a configuration needs (read by the preflight before any long work) ------------------
    def reads_instances(self) -> bool:
        """Whether training or generation reads instance maps (SPADE-family ``no_instance=False``)."""
        return not bool(getattr(self.cfg, "no_instance", True))

    def uses_vgg_loss(self) -> bool:
        """Whether training computes the VGG19 perceptual loss (and so needs its ImageNet weights)."""
        if hasattr(self.cfg, "add_vgg_loss"):  # OASIS: off unless asked for
            return bool(self.cfg.add_vgg_loss)
        return not bool(getattr(self.cfg, "no_vgg_loss", True))

    def bind_data(self, train_root: Any, *, train_set: Any = None, progress: bool = True) -> None:  # noqa: B027
        """Attach what a method takes from the training split beyond batches (RESAIL's retrieval database).

        Called once by the orchestration after the preflight, before training or generation.
        """

    def after_step(self, iteration: int) -> None:  # noqa: B027 - optional hook
        """Hook after both updates (EMA)."""

    def before_generate(self, batches: Any) -> None:  # noqa: B027 - optional hook
        """Hook before evaluation (OASIS re-estimates BatchNorm statistics of its EMA generator)."""

    # --- generation ---------------------------------------------------------------------------
    @abstractmethod
    def generate(self, data: dict[str, Any], seeds: list[int]) -> torch.Tensor:
        """Images in [-1, 1] for a prepared batch; noise for image i is drawn from ``seeds[i]`` only."""

    def generator_keys(self) -> list[str]:
        """Networks needed for generation (saved in exports and loaded from official checkpoints)."""
        return ["netG"]

    def train_mode(self, mode: bool = True) -> None:
        for net in self.nets.values():
            net.train(mode)

    @classmethod
    def tiny_config(cls) -> MethodConfig:
        """A configuration small enough for sub-second CPU tests."""
        raise NotImplementedError


METHODS: Registry[type[Method]] = Registry("method")
#: one frozen preset per (method, dataset), mirroring the official options for that dataset
PRESETS: dict[tuple[str, str], MethodConfig] = {}


def preset(method: str, dataset: str, cfg: MethodConfig) -> MethodConfig:
    key = (method, dataset)
    if key in PRESETS:
        raise ValueError(f"preset {key} defined twice")
    PRESETS[key] = cfg
    return cfg


def noise_generator(seed: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Per-image generator: noise depends only on (run seed, image index), never on the batch."""
    return torch.Generator(device=device).manual_seed(seed)
