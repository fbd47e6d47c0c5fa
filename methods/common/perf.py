"""Speed options every method config carries (issue 17), and the helpers that apply them.

None of them changes a parameter name or the checkpoint layout:

* ``onehot_conv`` — ``"gather"``: convolutions over one-hot label maps are gathers of weight rows
  (:mod:`methods.common.onehot`); ``"dense"``: ordinary convolutions, as the official code. Same outputs
  and gradients up to float summation order.
* ``fuse_gamma_beta`` — SPADE's ``mlp_gamma``/``mlp_beta`` (and SIN's ``conv_gamma``/``conv_beta``) as one
  convolution over the concatenated weights.
* ``bf16`` — training under ``torch.autocast(dtype=bfloat16)`` on CUDA, without loss scaling; spectral
  norm's power iteration (:class:`~methods.common.normalization.FP32SpectralNorm`) and the losses
  (:mod:`methods.common.losses`) stay float32. Ignored on CPU.
* ``spectral_after_conv`` — spectral-norm convolutions whose output is no larger than their weight
  (SPADE's 1024-channel blocks at 8x8-32x32) convolve with the raw weight and divide the output by sigma
  instead of dividing the weight (:class:`~methods.common.normalization.SpectralConv2d`); same function,
  float rounding differs. Float32 only (off under autocast). Measured 6% faster SPADE ADE20K
  forward+backward at 256x256 on CPU (one thread). **Opt-in** (``--set spectral_after_conv=true``): the
  path taken depends on the batch size, and with it on, 2 DDP ranks x batch 2 no longer match one process
  x batch 4 within float rounding (``tests/test_ddp_training.py``: 4% relative on ``netG.fc.weight``
  after 3 SGD steps), which is not understood yet; single-process outputs and gradients match the
  weight-division path (``tests/test_speed_paths.py``).
* ``channels_last`` — networks and their image-shaped inputs in channels-last memory format.
* ``fused_adam`` — ``torch.optim.Adam(fused=True)`` (one kernel for all parameters).
* ``compile`` — ``nn.Module.compile()`` of every network (opt-in); the first call, which compiles, is
  timed and logged (:data:`COMPILE_SECONDS`).

The config is recorded in every run record, so are these fields.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from bench.errors import ConfigError
from methods.base import MethodConfig
from methods.common.onehot import OneHotConv, modules_with, set_onehot_conv

log = logging.getLogger(__name__)

#: seconds of the first (compiling) call of each compiled network, by ``"<method>.<net>"``
COMPILE_SECONDS: dict[str, float] = {}


@dataclass(frozen=True, kw_only=True)
class SpeedConfig(MethodConfig):
    """The speed fields shared by every method config (see the module docstring).

    ``onehot_conv`` defaults to ``"gather"``, measured faster on CPU than the dense convolution for SPADE,
    OASIS, pix2pixHD and RESAIL (``python -m bench.perf.vs_official``, 256x256, one thread; the figures
    against the official code are in the README's "Speed benchmarks"); SEAN (19 classes, gather no faster)
    keeps ``"dense"``. The GPU options default off: they change float-level numerics (bf16) or cost
    start-up time (compile).
    """

    onehot_conv: OneHotConv = "gather"
    fuse_gamma_beta: bool = True
    spectral_after_conv: bool = False  # opt-in: see the module docstring (DDP equivalence)
    bf16: bool = False
    channels_last: bool = False
    fused_adam: bool = False
    compile: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.bf16 and self.amp:
            raise ConfigError("amp (float16 autocast) and bf16 exclude each other; set one of them")


def apply_speed_options(nets: dict[str, nn.Module], cfg: Any, method: str = "") -> None:
    """Apply ``cfg``'s ``onehot_conv``, ``fuse_gamma_beta``, ``spectral_after_conv``, ``channels_last`` and
    ``compile`` to ``nets``.

    Called at the end of ``build_networks`` (after an EMA copy is made, so the copy is compiled too).
    """
    for name, net in nets.items():
        set_onehot_conv(net, getattr(cfg, "onehot_conv", "gather"))
        for m in modules_with(net, "fuse_gamma_beta"):
            m.fuse_gamma_beta = bool(getattr(cfg, "fuse_gamma_beta", True))
        for m in modules_with(net, "spectral_after_conv"):
            m.spectral_after_conv = bool(getattr(cfg, "spectral_after_conv", False))
        if getattr(cfg, "channels_last", False):
            net.to(memory_format=torch.channels_last)
        if getattr(cfg, "compile", False):
            compile_timed(net, f"{method}.{name}" if method else name)


def compile_timed(net: nn.Module, key: str) -> None:
    """``net.compile()`` (parameter names unchanged), logging how long its first, compiling call takes."""
    net.compile()
    compiled = net._compiled_call_impl

    def first_call(*args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        out = compiled(*args, **kwargs)
        COMPILE_SECONDS[key] = time.perf_counter() - t0
        net._compiled_call_impl = compiled
        log.info("torch.compile: first call of %s took %.1f s (compilation included)", key, COMPILE_SECONDS[key])
        return out

    net._compiled_call_impl = first_call


def adam(params: Iterable[torch.nn.Parameter], *, lr: float, betas: tuple[float, float], cfg: Any) -> torch.optim.Adam:
    """``torch.optim.Adam`` with ``fused=True`` when ``cfg.fused_adam`` (same update, one kernel)."""
    return torch.optim.Adam(params, lr=lr, betas=betas, fused=True if getattr(cfg, "fused_adam", False) else None)


def channels_last_inputs(data: dict[str, Any], cfg: Any, keys: Iterable[str]) -> dict[str, Any]:
    """``data`` with its 4-D tensors under ``keys`` in channels-last format when ``cfg.channels_last``."""
    if getattr(cfg, "channels_last", False):
        for k in keys:
            t = data.get(k)
            if isinstance(t, torch.Tensor) and t.dim() == 4:
                data[k] = t.contiguous(memory_format=torch.channels_last)
    return data
