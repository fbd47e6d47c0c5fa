"""Normalization layers shared by the SPADE family (SPADE, SEAN, OASIS, RESAIL)."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import spectral_norm
from torch.nn.utils.spectral_norm import SpectralNorm

from methods.common.onehot import LabelMap, conv_labels

ParamFreeNorm = Literal["instance", "batch", "syncbatch"]


def param_free_norm(kind: ParamFreeNorm, num_features: int) -> nn.Module:
    """The non-affine normalization applied before spatially-adaptive modulation.

    ``syncbatch`` is a plain ``BatchNorm2d`` on one device (identical state_dict to the official
    SynchronizedBatchNorm2d); ``bench.training`` converts it with ``nn.SyncBatchNorm`` under DDP.
    """
    if kind == "instance":
        return nn.InstanceNorm2d(num_features, affine=False)
    if kind in ("batch", "syncbatch"):
        return nn.BatchNorm2d(num_features, affine=False)
    raise ValueError(f"unknown param-free norm {kind!r}; expected instance, batch or syncbatch")


class SPADE(nn.Module):
    """Spatially-adaptive denormalization (Park et al., CVPR 2019, Eq. 1).

    ``x_hat * (1 + gamma(m)) + beta(m)`` where ``m`` is the segmentation map nearest-resized to ``x``.
    Attribute names follow the official code so released checkpoints load strictly.

    ``segmap`` is a dense ``[B, label_nc, H, W]`` tensor or a :class:`~methods.common.onehot.LabelMap`
    (then ``mlp_shared``'s convolution is a gather, see :mod:`methods.common.onehot`). With
    ``fuse_gamma_beta`` (default) ``mlp_gamma`` and ``mlp_beta`` run as one convolution with ``2 x norm_nc``
    outputs whose weight is the concatenation of theirs, so the activation is read once; their
    parameters and state_dict keys are unchanged.
    """

    norm_attr = "param_free_norm"  # OASIS names it ``first_norm``
    fuse_gamma_beta = True

    def __init__(
        self,
        norm_nc: int,
        label_nc: int,
        *,
        hidden: int = 128,
        kernel: int = 3,
        param_free_norm: ParamFreeNorm = "syncbatch",
    ) -> None:
        super().__init__()
        setattr(self, self.norm_attr, globals()["param_free_norm"](param_free_norm, norm_nc))
        pad = kernel // 2
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, hidden, kernel, padding=pad), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(hidden, norm_nc, kernel, padding=pad)
        self.mlp_beta = nn.Conv2d(hidden, norm_nc, kernel, padding=pad)

    def shared(self, segmap: torch.Tensor | LabelMap, size: tuple[int, int] | torch.Size) -> torch.Tensor:
        """``relu(mlp_shared(m))`` for the map nearest-resized to ``size``: ``[B, hidden, *size]``."""
        if isinstance(segmap, LabelMap):
            return F.relu(conv_labels(self.mlp_shared[0], segmap.resized(size)))
        return self.mlp_shared(F.interpolate(segmap, size=size, mode="nearest"))

    def modulation(
        self, segmap: torch.Tensor | LabelMap, size: tuple[int, int] | torch.Size
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(gamma, beta)``, each ``[B, norm_nc, *size]``, predicted from the segmentation map at ``size``."""
        return fused_pair(self.mlp_gamma, self.mlp_beta, self.shared(segmap, size), self.fuse_gamma_beta)

    def forward(self, x: torch.Tensor, segmap: torch.Tensor | LabelMap) -> torch.Tensor:
        normalized = getattr(self, self.norm_attr)(x)
        if self.fuse_gamma_beta:
            actv = self.shared(segmap, x.shape[2:])
            both = fused_conv(self.mlp_gamma, self.mlp_beta, actv)
            if both is not None and both.shape[1] == 2 * normalized.shape[1]:
                return modulate(normalized, both)
            gamma, beta = _split(both, self.mlp_gamma, self.mlp_beta, actv)
        else:
            gamma, beta = self.modulation(segmap, x.shape[2:])
        return normalized * (1 + gamma) + beta


def fused_conv(conv_a: nn.Conv2d, conv_b: nn.Conv2d, x: torch.Tensor) -> torch.Tensor | None:
    """``cat([conv_a(x), conv_b(x)], 1)`` as one convolution over the concatenated weights, or None when
    the two cannot be fused (a forward pre-hook such as spectral norm, or only one of them has a bias).

    ``conv_a``, ``conv_b``: same geometry, ``O_a`` and ``O_b`` outputs; ``x`` [B, C, H, W] → [B, O_a + O_b, H', W'].
    """
    if conv_a._forward_pre_hooks or conv_b._forward_pre_hooks or (conv_a.bias is None) != (conv_b.bias is None):
        return None
    weight = torch.cat([conv_a.weight, conv_b.weight])
    bias = None if conv_a.bias is None else torch.cat([conv_a.bias, conv_b.bias])  # type: ignore[list-item]
    return conv_a._conv_forward(x, weight, bias)


def _split(
    both: torch.Tensor | None, conv_a: nn.Conv2d, conv_b: nn.Conv2d, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    if both is None:
        return conv_a(x), conv_b(x)
    return both[:, : conv_a.out_channels], both[:, conv_a.out_channels :]


def fused_pair(
    conv_a: nn.Conv2d, conv_b: nn.Conv2d, x: torch.Tensor, fuse: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(conv_a(x), conv_b(x))``; with ``fuse`` as one convolution over the concatenated weights.

    The two convolutions must have the same geometry (SPADE's γ/β, SEAN's and RESAIL's style γ/β). The
    outputs are channel slices of one tensor; gradients reach both modules' own parameters.
    """
    return _split(fused_conv(conv_a, conv_b, x) if fuse else None, conv_a, conv_b, x)


class _Modulate(torch.autograd.Function):
    """``x * (1 + gb[:, :C]) + gb[:, C:]`` whose backward writes the gradient of ``gb`` as one tensor.

    Autograd's version of the same expression on two channel slices of ``gb`` builds the slice gradients
    as two zero-filled ``gb``-sized tensors and adds them (SliceBackward0: two fills, two copies and an
    add, measured 6-7% of SPADE's forward+backward at 256x256 on CPU). Same operations in the same order
    otherwise, so outputs and gradients are bit-identical to autograd's.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, gb: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        scale = gb[:, :c] + 1
        out = x * scale
        out += gb[:, c:]
        ctx.save_for_backward(x, scale)
        ctx.gb_dtype = gb.dtype
        cl = gb.dim() == 4 and gb.is_contiguous(memory_format=torch.channels_last) and not gb.is_contiguous()
        ctx.gb_format = torch.channels_last if cl else torch.contiguous_format
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        x, scale = ctx.saved_tensors
        c = x.shape[1]
        grad_x = grad_gb = None
        if ctx.needs_input_grad[0]:
            grad_x = (grad * scale).to(x.dtype)
        if ctx.needs_input_grad[1]:
            b, _, h, w = grad.shape
            grad_gb = grad.new_empty((b, 2 * c, h, w), dtype=ctx.gb_dtype).contiguous(memory_format=ctx.gb_format)
            torch.mul(grad, x, out=grad_gb[:, :c])
            grad_gb[:, c:].copy_(grad)
        return grad_x, grad_gb


def modulate(x: torch.Tensor, gamma_beta: torch.Tensor) -> torch.Tensor:
    """SPADE's ``x * (1 + gamma) + beta`` for ``gamma_beta`` = ``cat([gamma, beta], 1)``.

    Args:
        x: ``[B, C, H, W]`` float, the normalized activation.
        gamma_beta: ``[B, 2C, H, W]`` float (the fused γ/β convolution's output, :func:`fused_conv`).

    Returns:
        ``[B, C, H, W]``, bit-identical to the expression on the two channel halves, as are the gradients.
    """
    return _Modulate.apply(x, gamma_beta)


class _BlendModulate(torch.autograd.Function):
    """SEAN's ``x * (1 + a_g * gs + (1 - a_g) * gm) + (a_b * bs + (1 - a_b) * bm)`` with ``gs, bs`` and
    ``gm, bm`` the channel halves of two tensors, the gradient of each written as one tensor.

    The operations (and autograd's reductions for ``a_g``/``a_b``: ``sum_to_size``) are those autograd
    runs for the expression, in the same order, so outputs and gradients are bit-identical; what is
    saved are the zero-filled slice gradients and their adds (SliceBackward0) and the intermediate
    ``gamma``/``beta`` tensors kept for backward.
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, style: torch.Tensor, spade: torch.Tensor, a_g: torch.Tensor,
                a_b: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        gs, bs, gm, bm = style[:, :c], style[:, c:], spade[:, :c], spade[:, c:]
        one_minus_g, one_minus_b = 1 - a_g, 1 - a_b
        scale = a_g * gs
        scale += one_minus_g * gm
        scale += 1
        beta = a_b * bs
        beta += one_minus_b * bm
        out = x * scale
        out += beta
        ctx.save_for_backward(x, style, spade, a_g, a_b, scale)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        x, style, spade, a_g, a_b, scale = ctx.saved_tensors
        c = x.shape[1]
        gs, bs, gm, bm = style[:, :c], style[:, c:], spade[:, :c], spade[:, c:]
        need_x, need_s, need_m, need_ag, need_ab = ctx.needs_input_grad
        grad_x = grad * scale if need_x else None
        grad_gamma = grad * x
        grad_s = grad_m = grad_ag = grad_ab = None
        if need_s:
            grad_s = torch.empty_like(style)
            torch.mul(grad_gamma, a_g, out=grad_s[:, :c])
            torch.mul(grad, a_b, out=grad_s[:, c:])
        if need_m:
            grad_m = torch.empty_like(spade)
            torch.mul(grad_gamma, 1 - a_g, out=grad_m[:, :c])
            torch.mul(grad, 1 - a_b, out=grad_m[:, c:])
        if need_ag:
            grad_ag = (grad_gamma * gs).sum_to_size(a_g.shape) + -(grad_gamma * gm).sum_to_size(a_g.shape)
        if need_ab:
            grad_ab = (grad * bs).sum_to_size(a_b.shape) + -(grad * bm).sum_to_size(a_b.shape)
        return grad_x, grad_s, grad_m, grad_ag, grad_ab


def blend_modulate(x: torch.Tensor, style: torch.Tensor, spade: torch.Tensor, a_g: torch.Tensor,
                   a_b: torch.Tensor) -> torch.Tensor:
    """SEAN's blended modulation ``x * (1 + a_g γ_s + (1 - a_g) γ_m) + a_b β_s + (1 - a_b) β_m``.

    Args:
        x: ``[B, C, H, W]`` float32, the normalized activation.
        style: ``[B, 2C, H, W]``, ``cat([γ_s, β_s], 1)``; ``spade``: ``[B, 2C, H, W]``, ``cat([γ_m, β_m], 1)``.
        a_g, a_b: ``[1]`` blending weights (``sigmoid(blending_gamma)``, ``sigmoid(blending_beta)``).

    Returns:
        ``[B, C, H, W]``; values and gradients bit-identical to the expression (:class:`_BlendModulate`).
    """
    return _BlendModulate.apply(x, style, spade, a_g, a_b)


class _SpectralDivide(torch.autograd.Function):
    """``W / sigma`` with ``sigma = u . (W v)`` (u, v constants), with a fused backward.

    ``dL/dW = g / sigma - <g, W> / sigma^2 * u v^T``: three passes over the weight where autograd's
    division, dot and ``mv`` backward take about seven and three temporaries. Forward values are those of
    torch's ``SpectralNorm.compute_weight`` bit for bit; gradients equal up to float summation order.
    """

    @staticmethod
    def forward(ctx: object, weight: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        w_mat = weight.reshape(weight.shape[0], -1)
        sigma = torch.dot(u, torch.mv(w_mat, v))
        ctx.save_for_backward(weight, u, v, sigma)  # type: ignore[attr-defined]
        return weight / sigma

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        weight, u, v, sigma = ctx.saved_tensors  # type: ignore[attr-defined]
        if grad.is_contiguous() and weight.is_contiguous():
            inner = torch.dot(grad.view(-1), weight.view(-1))
        else:
            inner = (grad * weight).sum()
        out = grad / sigma
        coeff = -inner / (sigma * sigma)
        if out.is_contiguous():
            out.view(out.shape[0], -1).addr_(u, v, alpha=coeff)  # type: ignore[arg-type]
        else:
            out.add_(torch.outer(u, v).view(weight.shape) * coeff)
        return out, None, None


class FP32SpectralNorm(SpectralNorm):
    """torch's hook-based spectral norm whose power iteration runs in float32 under autocast, with a fused
    backward for ``weight_orig / sigma`` (:class:`_SpectralDivide`).

    Under ``torch.autocast`` the ``mv``/``dot`` of the power iteration would run in bfloat16/float16; the
    official models were trained with it in float32, so the hook leaves autocast for it (issue 17).
    Same keys (``weight_orig``, ``weight_u``, ``weight_v``) and the same values without autocast.
    """

    def power_iteration(
        self, module: nn.Module, do_power_iteration: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(weight_orig, u, v)`` after torch's power iteration (dim 0; ``u``/``v`` updated in place as torch
        does, and cloned when iterated so that autograd sees constants)."""
        weight = getattr(module, self.name + "_orig")
        u = getattr(module, self.name + "_u")
        v = getattr(module, self.name + "_v")
        weight_mat = self.reshape_weight_to_matrix(weight)
        if do_power_iteration:
            with torch.no_grad():
                for _ in range(self.n_power_iterations):
                    v = F.normalize(torch.mv(weight_mat.t(), u), dim=0, eps=self.eps, out=v)
                    u = F.normalize(torch.mv(weight_mat, v), dim=0, eps=self.eps, out=u)
                if self.n_power_iterations > 0:
                    u = u.clone(memory_format=torch.contiguous_format)
                    v = v.clone(memory_format=torch.contiguous_format)
        return weight, u, v

    def compute_weight(self, module: nn.Module, do_power_iteration: bool) -> torch.Tensor:
        """torch's ``SpectralNorm.compute_weight`` (dim 0) with the division as :class:`_SpectralDivide`."""
        if self.dim != 0:
            return super().compute_weight(module, do_power_iteration)
        return _SpectralDivide.apply(*self.power_iteration(module, do_power_iteration))

    def __call__(self, module: nn.Module, inputs: object) -> None:
        device = getattr(module, self.name + "_orig").device.type
        if isinstance(module, SpectralConv2d):
            module._sn_uv = None
            module.__dict__.pop("_sn_lazy", None)
            if module.divides_output(inputs[0]) and self.dim == 0 and not torch.is_autocast_enabled(device):  # type: ignore[index]
                # the forward convolves with weight_orig and divides its output (SpectralConv2d.forward);
                # module.weight becomes lazy: computed as before (bit for bit) only if something reads it
                _, u, v = self.power_iteration(module, module.training)
                module._sn_uv = (u, v)
                module.__dict__.pop(self.name, None)
                module._sn_lazy = (u, v) if module.training else (u.clone(), v.clone())
                return
        if torch.is_autocast_enabled(device):
            with torch.autocast(device_type=device, enabled=False):
                super().__call__(module, inputs)
        else:
            super().__call__(module, inputs)


class _SpectralConv(torch.autograd.Function):
    """``conv2d(x, W) / sigma + bias`` with ``sigma = u . (W v)`` (u, v constants): the spectral-norm
    convolution ``conv2d(x, W / sigma, bias)`` with the division moved to the output.

    Where the output is smaller than the weight (SPADE's 1024-channel blocks at 8x8-32x32) this replaces
    the passes over the weight (``W / sigma`` forward; ``<g_W, W>``, ``/ sigma``, rank-1 update backward) by
    passes over the output. Gradients (``g`` of the output, ``z = conv2d(x, W) / sigma``):
    ``dx = conv_bwd_input(g / sigma, W)``,
    ``dW = conv_bwd_weight(x, g / sigma) - (<g, z> / sigma) u v^T``, ``dbias = sum g``: the same function
    as the reference, values equal up to float rounding (not bit for bit).

    Shapes: ``x`` [B, C, H, W] float32; ``weight`` [O, C, kh, kw]; ``bias`` [O] or None; ``u`` [O];
    ``v`` [C * kh * kw]. Returns [B, O, Ho, Wo].
    """

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, u: torch.Tensor,
                v: torch.Tensor, conv: tuple[Any, Any, Any, int]) -> torch.Tensor:
        stride, padding, dilation, groups = conv
        sigma = torch.dot(u, torch.mv(weight.reshape(weight.shape[0], -1), v))
        z = F.conv2d(x, weight, None, stride, padding, dilation, groups).div_(sigma)
        out = z if bias is None else z + bias.view(1, -1, 1, 1)
        ctx.save_for_backward(x, weight, u, v, sigma, z)
        ctx.conv = conv
        ctx.has_bias = bias is not None
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[Any, ...]:
        x, weight, u, v, sigma, z = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conv
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        gx = gw = gb = None
        if need_x or need_w:
            gx, gw, _ = torch.ops.aten.convolution_backward(
                grad / sigma, x, weight, None, list(stride), list(padding), list(dilation), False, [0, 0], groups,
                [need_x, need_w, False],
            )
        if need_w:
            if grad.is_contiguous() and z.is_contiguous():
                inner = torch.dot(grad.view(-1), z.view(-1))
            else:
                inner = (grad * z).sum()
            coeff = -inner / sigma
            if gw.is_contiguous():
                gw.view(gw.shape[0], -1).addr_(u, v, alpha=coeff)  # type: ignore[arg-type]
            else:
                gw.add_(torch.outer(u, v).view(weight.shape) * coeff)
        if need_b and ctx.has_bias:
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb, None, None, None


class SpectralConv2d(nn.Conv2d):
    """The ``nn.Conv2d`` class of a :func:`spectral_conv` (same parameters, buffers and keys).

    With ``spectral_after_conv`` (set by :func:`methods.common.perf.apply_speed_options` from the config,
    where it defaults on; off on a bare module)
    a float32 forward whose output is not larger than the weight (``B x Ho x Wo <= C x kh x kw``, zero
    padding) convolves with ``weight_orig`` and divides the output by sigma (:class:`_SpectralConv`)
    instead of convolving with ``weight_orig / sigma``; the hook (:class:`FP32SpectralNorm`) still runs
    the power iteration and updates ``weight_u``/``weight_v`` exactly as before. Changes float rounding
    only (recorded as a config field). ``self.weight`` (``weight_orig / sigma``) is then computed only
    when read, with the same values as torch's hook would have set.
    """

    spectral_after_conv = False
    _sn_uv: tuple[torch.Tensor, torch.Tensor] | None = None

    def __getattr__(self, name: str) -> Any:
        # after a divide-the-output forward, ``weight`` (W / sigma, as torch's hook sets it) is computed on
        # first access from that forward's u, v, then cached until the next forward
        lazy = self.__dict__.get("_sn_lazy")
        if name == "weight" and lazy is not None:
            weight = _SpectralDivide.apply(self.weight_orig, *lazy)
            self.__dict__["weight"] = weight
            del self.__dict__["_sn_lazy"]
            return weight
        return super().__getattr__(name)

    def divides_output(self, x: Any) -> bool:
        """Whether the forward on ``x`` [B, C, H, W] takes the divide-the-output path."""
        if not self.spectral_after_conv or not isinstance(x, torch.Tensor) or x.dim() != 4:
            return False
        if self.padding_mode != "zeros" or isinstance(self.padding, str) or x.dtype != torch.float32:
            return False
        positions = x.shape[0]
        for n, k, s, p, d in zip(x.shape[2:], self.kernel_size, self.stride, self.padding, self.dilation):
            positions *= (n + 2 * p - d * (k - 1) - 1) // s + 1
        return positions <= self.weight_orig.shape[1:].numel()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        uv, self._sn_uv = self._sn_uv, None
        if uv is None:
            return super().forward(x)
        return _SpectralConv.apply(x, self.weight_orig, self.bias, uv[0], uv[1],
                                   (self.stride, self.padding, self.dilation, self.groups))


def spectral_conv(conv: nn.Module, enabled: bool = True) -> nn.Module:
    """Wrap with the classic hook-based spectral norm (keys ``weight_orig/_u/_v``, as the releases).

    The hook is a :class:`FP32SpectralNorm` (still an ``isinstance`` of torch's ``SpectralNorm``, so
    ``remove_spectral_norm`` and the state_dict hooks work as before); an ``nn.Conv2d`` becomes a
    :class:`SpectralConv2d` (a subclass with the same state).
    """
    if not enabled:
        return conv
    conv = spectral_norm(conv)
    for hook in conv._forward_pre_hooks.values():
        if type(hook) is SpectralNorm:
            hook.__class__ = FP32SpectralNorm
    if type(conv) is nn.Conv2d:
        conv.__class__ = SpectralConv2d
    return conv


def instance_norm_conv(conv: nn.Conv2d, *, spectral: bool = True) -> nn.Sequential:
    """The official ``spectralinstance`` layer: SN conv without bias, then InstanceNorm(affine=False)."""
    conv = nn.Conv2d(
        conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, bias=False
    )
    return nn.Sequential(spectral_conv(conv, spectral), nn.InstanceNorm2d(conv.out_channels, affine=False))
