"""Losses shared by the methods: GAN objectives, feature matching, VGG19 perceptual loss, KL."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import CheckpointError

GANMode = Literal["hinge", "ls", "original", "w"]
DOutputs = list[list[torch.Tensor]] | list[torch.Tensor] | torch.Tensor
_F = TypeVar("_F", bound=Callable[..., Any])


def _to_float(x: Any) -> Any:
    """Floating tensors (also inside lists/tuples) as float32; everything else unchanged."""
    if isinstance(x, torch.Tensor):
        return x.float() if x.is_floating_point() and x.dtype != torch.float32 else x
    if isinstance(x, list | tuple):
        return type(x)(_to_float(v) for v in x)
    return x


def _device_type(x: Any) -> str | None:
    if isinstance(x, torch.Tensor):
        return x.device.type
    if isinstance(x, list | tuple):
        for v in x:
            d = _device_type(v)
            if d is not None:
                return d
    return None


def fp32_loss(fn: _F) -> _F:
    """Run a loss in float32 outside autocast: bf16/fp16 network outputs are upcast first (issue 17).

    The official models were trained in float32; under ``bf16`` training only the networks run in
    reduced precision, the loss values and their first gradients do not.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        device = _device_type(args) or _device_type(list(kwargs.values()))
        if device is None or not torch.is_autocast_enabled(device):
            return fn(*_to_float(args), **{k: _to_float(v) for k, v in kwargs.items()})
        with torch.autocast(device_type=device, enabled=False):
            return fn(*_to_float(args), **{k: _to_float(v) for k, v in kwargs.items()})

    return wrapper  # type: ignore[return-value]


def _finals(pred: DOutputs) -> list[torch.Tensor]:
    """The final map of every scale (a multi-scale D returns a list of feature lists)."""
    if isinstance(pred, torch.Tensor):
        return [pred]
    return [p[-1] if isinstance(p, list | tuple) else p for p in pred]


@fp32_loss
def gan_loss(pred: DOutputs, target_is_real: bool, *, mode: GANMode, for_discriminator: bool = True) -> torch.Tensor:
    """GAN objective averaged over discriminator scales (SPADE ``GANLoss``; pix2pixHD uses ``ls``)."""
    losses = []
    for p in _finals(pred):
        if mode == "hinge":
            if for_discriminator:
                m = torch.clamp(p - 1 if target_is_real else -p - 1, max=0)
                losses.append(-m.mean())
            else:
                if not target_is_real:
                    raise ValueError("the generator's hinge loss is only defined for real targets")
                losses.append(-p.mean())
        elif mode == "ls":
            losses.append(F.mse_loss(p, torch.full_like(p, 1.0 if target_is_real else 0.0)))
        elif mode == "original":
            losses.append(F.binary_cross_entropy_with_logits(p, torch.full_like(p, 1.0 if target_is_real else 0.0)))
        elif mode == "w":
            losses.append(-p.mean() if target_is_real else p.mean())
        else:
            raise ValueError(f"unknown gan mode {mode!r}")
    return torch.stack(losses).mean()


@fp32_loss
def feature_matching_loss(
    pred_fake: list[list[torch.Tensor]], pred_real: list[list[torch.Tensor]], *, weight: float
) -> torch.Tensor:
    """L1 between D's intermediate features of fake and real, summed over layers, averaged over scales.

    SPADE uses ``weight = lambda_feat``; pix2pixHD additionally scales by ``4 / (n_layers_D + 1)``
    (the caller folds that into ``weight``).
    """
    num_d = len(pred_fake)
    total = pred_fake[0][0].new_zeros(())
    for fake_scale, real_scale in zip(pred_fake, pred_real):
        for f, r in zip(fake_scale[:-1], real_scale[:-1]):
            total = total + F.l1_loss(f, r.detach()) * weight / num_d
    return total


@fp32_loss
def kld_loss(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, var) || N(0, I)) summed over batch and dimensions, as the official code (not a mean)."""
    return -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


class VGG19Features(nn.Module):
    """relu1_1 .. relu5_1 of torchvision's VGG19 (the slices of pix2pixHD/SPADE's ``VGG19``)."""

    SLICES = ((0, 2), (2, 7), (7, 12), (12, 21), (21, 30))

    def __init__(self, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        from torchvision.models import vgg19

        net = vgg19(weights=None)
        if state_dict is not None:
            try:
                net.load_state_dict(state_dict, strict=True)
            except RuntimeError as e:
                first = str(e).strip().splitlines()[0]
                raise CheckpointError(f"VGG19 weights do not match torchvision's vgg19: {first}") from None
        features = net.features
        self.slices = nn.ModuleList(nn.Sequential(*features[a:b]) for a, b in self.SLICES)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> VGG19Features:  # frozen: always eval
        return super().train(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for s in self.slices:
            x = s(x)
            out.append(x)
        return out


class VGGLoss(nn.Module):
    """Perceptual loss: weighted L1 of VGG19 features, weights 1/32 .. 1 (pix2pixHD, SPADE).

    Inputs are in [-1, 1] as the generators produce them; the official code feeds them to VGG as they
    are (no ImageNet normalisation), and so do we, for parity with the released models.
    """

    WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)

    def __init__(self, weights_path: str | None = None, *, state_dict: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        if state_dict is None:
            from bench.weights import resolve

            path = resolve("vgg19", weights_path)
            state_dict = torch.load(path, map_location="cpu", weights_only=True)
        self.vgg = VGG19Features(state_dict)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx, fy = self.vgg(x), self.vgg(y)
        return _weighted_l1(fx, fy, self.WEIGHTS)


@fp32_loss
def _weighted_l1(fx: list[torch.Tensor], fy: list[torch.Tensor], weights: tuple[float, ...]) -> torch.Tensor:
    """``sum_i w_i * L1(fx_i, fy_i.detach())`` in float32 (VGG features may come from autocast)."""
    return sum(w * F.l1_loss(a, b.detach()) for w, a, b in zip(weights, fx, fy))  # type: ignore[return-value]
