"""Convolutions over one-hot label maps computed as gathers of weight columns (issue 17).

A convolution whose input is a one-hot label map is, per output pixel, the sum over the kernel taps of
one weight column each: the column of the class found under that tap. So instead of ``C_in x k^2``
multiply-adds per output channel it needs ``k^2`` row reads. We compute it with
:func:`torch.nn.functional.embedding_bag` (``mode="sum"``) over a table whose row ``t * (K + 1) + 1 + c``
is the weight of tap ``t`` for class ``c`` and row ``t * (K + 1)`` is zero (zero padding), the bias folded
into a tap that no output position loses to padding. The backward is a scatter-add of the output gradient
into those rows, one ``index_add_`` per tap (hand-written: embedding_bag's own backward sorts all
``N x k^2`` indices and measured 1.6x (3x3) to 2.8x (7x7) slower on CPU). Outputs and gradients
equal the dense convolution's up to float summation order (``tests/test_onehot_gather.py``); the
parameters, their names and the checkpoint layout are those of the ordinary ``nn.Conv2d``.

A :class:`LabelMap` carries the class ids of the one-hot block plus the channels that are not one-hot:
``const``, per-image constants before the block (OASIS's 3D noise ``z``, folded into the table per
image, which is exact because a constant map convolves to a per-tap constant), and ``tail``, dense
channels after it (the instance-edge channel, pix2pixHD's instance features), convolved ordinarily and
added. Nearest resizing is done on the ids (one channel instead of ``K``) with the same
``F.interpolate`` call as the dense path, so it selects the same source pixels.

The dense path stays available (``onehot_conv="dense"`` on every generator and method config).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

OneHotConv = Literal["gather", "dense"]
ONEHOT_CONV_MODES: tuple[str, ...] = ("gather", "dense")
PaddingMode = Literal["zeros", "reflect"]


class LabelMap:
    """A ``[B, P + K + Q, H, W]`` network input held as ids: ``P`` constants, ``K`` one-hot, ``Q`` dense.

    Args:
        ids: ``[B, H, W]`` int64 class index in ``[0, K)`` of every pixel's one-hot block.
        num_classes: ``K``, the number of one-hot channels.
        const: ``[B, P]`` float, channels constant over the image that come *before* the one-hot block
            (OASIS's noise), or None.
        tail: ``[B, Q, H, W]`` float, channels that come *after* the one-hot block (instance edges), or None.

    Resized maps and the tap indices of every kernel geometry are cached on the object, which lives for
    one forward pass: the SPADE layers at one resolution share them.
    """

    def __init__(
        self, ids: torch.Tensor, num_classes: int, *, const: torch.Tensor | None = None,
        tail: torch.Tensor | None = None,
    ) -> None:
        if ids.dim() != 3:
            raise ValueError(f"ids must be [B, H, W], got shape {tuple(ids.shape)}")
        self.ids = ids.long()
        self.num_classes = int(num_classes)
        self.const = const
        self.tail = tail
        self._resized: dict[tuple[int, int], LabelMap] = {}
        self._taps: dict[tuple[Any, ...], tuple[torch.Tensor, int, int]] = {}
        self._subsets: dict[tuple[int, ...], LabelMap] = {}
        self._folded: LabelMap | None | bool = False  # not computed yet

    # --- shape ----------------------------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(B, P + K + Q, H, W)``, the shape of the dense tensor this map stands for."""
        b, h, w = self.ids.shape
        return (b, self.num_const + self.num_classes + self.num_tail, h, w)

    @property
    def size(self) -> tuple[int, int]:
        return (int(self.ids.shape[1]), int(self.ids.shape[2]))

    @property
    def num_const(self) -> int:
        return 0 if self.const is None else int(self.const.shape[1])

    @property
    def num_tail(self) -> int:
        return 0 if self.tail is None else int(self.tail.shape[1])

    @property
    def device(self) -> torch.device:
        return self.ids.device

    # --- conversions ----------------------------------------------------------------------------------
    def resized(self, size: tuple[int, int] | torch.Size) -> LabelMap:
        """This map nearest-resized to ``size`` (``F.interpolate(..., mode="nearest")`` on the ids), cached."""
        key = (int(size[0]), int(size[1]))
        if key == self.size:
            return self
        hit = self._resized.get(key)
        if hit is None:
            # float32 holds ids exactly (< 2^24); the same kernel as the dense path picks the same pixels
            ids = F.interpolate(self.ids[:, None].float(), size=key, mode="nearest")[:, 0].long()
            tail = None if self.tail is None else F.interpolate(self.tail, size=key, mode="nearest")
            hit = LabelMap(ids, self.num_classes, const=self.const, tail=tail)
            self._resized[key] = hit
        return hit

    def dense(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """The ``[B, P + K + Q, H, W]`` tensor this map stands for (constants, one-hot, tail)."""
        b, h, w = self.ids.shape
        parts = []
        if self.const is not None:
            parts.append(self.const.to(dtype).view(b, -1, 1, 1).expand(b, self.num_const, h, w))
        onehot = torch.zeros(b, self.num_classes, h, w, dtype=dtype, device=self.device)
        parts.append(onehot.scatter_(1, self.ids[:, None], 1.0))
        if self.tail is not None:
            parts.append(self.tail.to(dtype))
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def with_const(self, const: torch.Tensor | None) -> LabelMap:
        """The same map with per-image constant channels ``const`` [B, P] put before the one-hot block."""
        out = LabelMap(self.ids, self.num_classes, const=const, tail=self.tail)
        out._taps = self._taps  # tap indices do not depend on the constants
        return out

    def folded(self) -> LabelMap | None:
        """With a single binary tail channel (instance edges): the map of ids ``c + K * edge`` over ``2K``
        classes, so that the edge's convolution is part of the gather (:func:`onehot_conv2d`); else None."""
        if self._folded is False:
            t = self.tail
            ok = t is not None and t.shape[1] == 1 and not t.requires_grad and bool(((t == 0) | (t == 1)).all())
            self._folded = (
                LabelMap(self.ids + self.num_classes * t[:, 0].long(), 2 * self.num_classes, const=self.const)  # type: ignore[index]
                if ok else None
            )
        return self._folded  # type: ignore[return-value]

    def with_tail(self, extra: torch.Tensor) -> LabelMap:
        """The same map with ``extra`` [B, Q', H, W] appended after its tail (pix2pixHD's instance features)."""
        tail = extra if self.tail is None else torch.cat((self.tail.to(extra.dtype), extra), dim=1)
        out = LabelMap(self.ids, self.num_classes, const=self.const, tail=tail)
        out._taps = self._taps
        return out

    def subset(self, classes: torch.Tensor) -> LabelMap:
        """The one-hot block restricted to ``classes`` (sorted int64 indices that include every class present),
        renumbered ``0..len(classes)-1``; no constants or tail. Equals ``dense()[:, P + classes]``. Cached."""
        key = tuple(int(c) for c in classes.tolist())
        hit = self._subsets.get(key)
        if hit is None:
            lut = torch.full((self.num_classes,), -1, dtype=torch.long, device=self.device)
            lut[classes.to(self.device)] = torch.arange(len(key), device=self.device)
            hit = LabelMap(lut[self.ids], len(key))
            self._subsets[key] = hit
        return hit

    def present(self) -> torch.Tensor:
        """Sorted int64 indices of the classes that occur in the batch (``torch.unique`` of the ids)."""
        return torch.unique(self.ids)

    # --- tap indices ----------------------------------------------------------------------------------
    def taps(
        self, kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int], mode: PaddingMode
    ) -> tuple[torch.Tensor, int, int]:
        """``([B, Ho, Wo, T] int32, Ho, Wo)``: ``t * (K + 1) + 1 + class`` under tap ``t`` of each output,
        ``t * (K + 1)`` where the tap falls on zero padding (the tap's zero row of the table).

        Taps are in the weight's ``(ky, kx)`` row-major order; ``mode="reflect"`` reflects the ids (a
        reflected one-hot map is the one-hot map of the reflected ids).
        """
        key = (kernel, stride, padding, mode)
        hit = self._taps.get(key)
        if hit is not None:
            return hit
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        b, h, w = self.ids.shape
        ho, wo = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if ho < 1 or wo < 1:
            raise ValueError(f"a {kh}x{kw} kernel with padding {padding} does not fit a {h}x{w} label map")
        if mode == "reflect":
            if ph >= h or pw >= w:
                raise ValueError(f"reflect padding {padding} needs a label map larger than {h}x{w}")
            rows = _reflect_index(h, ph, self.device)
            cols = _reflect_index(w, pw, self.device)
            padded = (self.ids + 1).to(torch.int32).index_select(1, rows).index_select(2, cols)
        else:
            padded = F.pad((self.ids + 1).to(torch.int32), (pw, pw, ph, ph), value=0)
        padded = padded.contiguous()
        hp, wp = padded.shape[1:]
        # every (output position, tap) as one strided view (F.unfold for integer maps), plus the tap offsets
        windows = padded.as_strided((b, ho, wo, kh, kw), (hp * wp, sh * wp, sw, wp, 1))
        offsets = torch.arange(kh * kw, dtype=torch.int32, device=self.device).view(kh, kw) * (self.num_classes + 1)
        if torch.compiler.is_compiling():  # out= on a strided view confuses inductor's layout
            taps = (windows + offsets).reshape(b, ho, wo, kh * kw)
        else:  # one pass writing the [B, Ho, Wo, T] layout directly
            out = torch.empty((b, ho, wo, kh, kw), dtype=torch.int32, device=self.device)
            taps = torch.add(windows, offsets, out=out).view(b, ho, wo, kh * kw)
        hit = (taps, ho, wo)
        self._taps[key] = hit
        return hit


def _reflect_index(n: int, pad: int, device: torch.device) -> torch.Tensor:
    """Source index of every position of a reflect-padded axis (``nn.ReflectionPad2d``'s order)."""
    i = torch.arange(-pad, n + pad, device=device)
    i = i.abs()
    return torch.where(i > n - 1, 2 * (n - 1) - i, i)


# --- recognising a one-hot input ----------------------------------------------------------------------
def onehot_ids(x: torch.Tensor) -> torch.Tensor | None:
    """``[B, H, W]`` int64 ids if ``x`` [B, K, H, W] is exactly one-hot (one 1 per pixel, zeros elsewhere).

    None for anything else (soft or resized-bilinear maps, NaN, a tensor that requires grad, integer
    dtypes), so callers fall back to the dense convolution and compute the same function.
    """
    if x.dim() != 4 or x.shape[1] == 0 or x.requires_grad or not x.is_floating_point():
        return None
    top, ids = x.max(dim=1)
    if not bool((top == 1).all()):
        return None
    if not bool((torch.count_nonzero(x, dim=1) == 1).all()):
        return None
    return ids


def as_label_map(
    seg: torch.Tensor | LabelMap, num_classes: int | None = None, *, const: torch.Tensor | None = None
) -> LabelMap | None:
    """``seg`` [B, C, H, W] as a :class:`LabelMap` whose one-hot block is its first ``num_classes`` channels.

    ``num_classes=None`` tries all ``C`` channels, then the first ``C - 1`` (a trailing instance-edge
    channel); the remaining channels become the dense ``tail``. Returns None when the block is not exactly
    one-hot (then the caller uses the dense path). A :class:`LabelMap` is returned as it is.
    """
    if isinstance(seg, LabelMap):
        return seg if const is None else seg.with_const(const)
    c = seg.shape[1] if seg.dim() == 4 else 0
    candidates = [num_classes] if num_classes is not None else [c, c - 1]
    for k in candidates:
        if k is None or not 0 < k <= c:
            continue
        ids = onehot_ids(seg[:, :k])
        if ids is not None:
            tail = seg[:, k:] if k < c else None
            return LabelMap(ids, k, const=const, tail=tail)
    return None


# --- the gather convolution ---------------------------------------------------------------------------
def _pair(v: int | tuple[int, ...]) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _always_valid_tap(kernel: tuple[int, int], stride: tuple[int, int], padding: tuple[int, int],
                      size: tuple[int, int], out: tuple[int, int], mode: PaddingMode) -> int | None:
    """A tap that falls inside the image for every output position (the bias goes into its rows)."""
    if mode == "reflect":
        return 0
    valid = []
    for k, s, p, n, o in zip(kernel, stride, padding, size, out):
        valid.append([t for t in range(k) if t - p >= 0 and (o - 1) * s + t - p <= n - 1])
    if not valid[0] or not valid[1]:
        return None
    ky = min(valid[0], key=lambda t: abs(t - kernel[0] // 2))
    kx = min(valid[1], key=lambda t: abs(t - kernel[1] // 2))
    return ky * kernel[1] + kx


def _table(weight: torch.Tensor, lm: LabelMap, bias: torch.Tensor | None, bias_tap: int | None) -> torch.Tensor:
    """``[(B x) T x (K + 1), O]``: per tap a zero row, then per class the weight column (+ constants, + bias)."""
    p, k = lm.num_const, lm.num_classes
    per_image = weight.dim() == 5  # [B, O, C, kh, kw]: one kernel per image (SEAN's style convolution)
    w = weight[..., p : p + k, :, :]
    o = w.shape[-4]
    t = w.shape[-2] * w.shape[-1]
    rows = w.flatten(-2).movedim(-1, -3).transpose(-1, -2)  # [(B,) T, K, O]
    extra = None  # [(B,) T, 1, O] added to every class row of a tap
    if lm.const is not None and p:
        wc = weight[..., :p, :, :].flatten(-2)  # [(B,) O, P, T]
        c = lm.const.to(weight.dtype)
        extra = (torch.einsum("bp,bopt->bto", c, wc) if per_image else torch.einsum("bp,opt->bto", c, wc))[:, :, None]
    if bias is not None and bias_tap is not None:
        bias_rows = torch.zeros(t, 1, o, dtype=weight.dtype, device=weight.device)
        bias_rows = bias_rows.index_copy(0, torch.tensor([bias_tap], device=weight.device),
                                         bias.view(1, 1, o).to(weight.dtype))
        extra = bias_rows if extra is None else extra + bias_rows
    if extra is not None:
        rows = rows + extra
    rows = F.pad(rows, (0, 0, 1, 0))  # the zero row of every tap (padding)
    return rows.reshape(-1, o)  # per image (per-image kernels or constants): one block per image


def _channels_last(weight: torch.Tensor) -> bool:
    """Whether the network runs channels-last (its conv weights are, and not trivially so)."""
    return weight.dim() == 4 and weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous()


def _indices(taps: torch.Tensor, table_rows: int, per_image: bool) -> torch.Tensor:
    """Bag indices ``[N, T]`` into the table (per-image tables: the image's block offset added)."""
    b = taps.shape[0]
    if per_image:
        offset = (torch.arange(b, device=taps.device) * (table_rows // b)).view(b, 1, 1, 1)
        taps = taps + offset
    return taps.reshape(-1, taps.shape[-1])


class _GatherRows(torch.autograd.Function):
    """``out[n] = sum_t table[idx[n, t]]`` (``embedding_bag`` sum); backward: one ``index_add_`` per tap.

    ``table`` [R, O] float, ``idx`` [B * Ho * Wo, T] int32/int64. With ``shape=(B, Ho, Wo)`` the result is
    returned channels-first, ``[B, O, Ho, Wo]`` contiguous, converted by one 2-D transpose per image (and
    the gradient back the same way): bit-for-bit the ``permute(0, 3, 1, 2).contiguous()`` of the rows, but
    copy_'s blocked 2-D transpose measured 2.5-5x faster on CPU than that 4-D permuted copy (issue 17).
    Without ``shape`` the result is the ``[B * Ho * Wo, O]`` rows.
    """

    @staticmethod
    def forward(ctx: Any, table: torch.Tensor, idx: torch.Tensor, shape: tuple[int, int, int] | None = None) -> torch.Tensor:
        ctx.save_for_backward(idx)
        ctx.rows = table.shape[0]
        ctx.shape = shape
        rows = F.embedding_bag(idx, table, mode="sum")
        if shape is None:
            return rows
        b, ho, wo = shape
        hw, o = ho * wo, rows.shape[1]
        out = rows.new_empty(b, o, hw)
        for i in range(b):
            out[i].copy_(rows[i * hw : (i + 1) * hw].t())
        return out.view(b, o, ho, wo)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor | None, None, None]:
        if not ctx.needs_input_grad[0]:
            return None, None, None
        (idx,) = ctx.saved_tensors
        if ctx.shape is None:
            grad = grad.contiguous()
        elif grad.is_contiguous():  # [B, O, Ho, Wo] -> [B * Ho * Wo, O], one 2-D transpose per image
            b, ho, wo = ctx.shape
            hw, o = ho * wo, grad.shape[1]
            g = grad.view(b, o, hw)
            rows = grad.new_empty(b * hw, o)
            for i in range(b):
                rows[i * hw : (i + 1) * hw].copy_(g[i].t())
            grad = rows
        else:  # any other layout (channels-last: already the rows' order, then no copy)
            grad = grad.permute(0, 2, 3, 1).reshape(-1, grad.shape[1]).contiguous()
        out = grad.new_zeros(ctx.rows, grad.shape[1])
        # contiguous int64 index rows: measured 1.3x faster than strided columns, 1.1x than int32
        for column in idx.t().to(torch.long, memory_format=torch.contiguous_format):
            out.index_add_(0, column, grad)
        return out, None, None


def _row_counts(idx: torch.Tensor, b: int, rows: int) -> torch.Tensor:
    """``[B, rows]``: how often each table row is gathered per image (float, for a matmul)."""
    flat = idx.reshape(b, -1).long()
    counts = torch.zeros(b, rows, dtype=torch.float32, device=idx.device)
    return counts.scatter_add_(1, flat, torch.ones_like(flat, dtype=torch.float32))


def onehot_conv2d(
    lm: LabelMap,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    padding_mode: PaddingMode = "zeros",
    reduce: Literal["none", "mean"] = "none",
) -> torch.Tensor:
    """``conv2d(lm.dense(), weight, bias)`` computed as a gather of weight rows (no groups, no dilation).

    Args:
        lm: The input, ``P`` constants + ``K`` one-hot + ``Q`` dense channels at ``[B, ., H, W]``.
        weight: ``[O, P + K + Q, kh, kw]``, or ``[B, O, P + K + Q, kh, kw]`` for one kernel per image.
        bias: ``[O]`` or None.
        stride, padding: As ``nn.Conv2d``; ``padding_mode`` ``"zeros"`` or ``"reflect"`` (the latter is
            ``nn.ReflectionPad2d`` followed by an unpadded conv, as pix2pixHD's first layer).
        reduce: ``"mean"`` returns the spatial mean ``[B, O, 1, 1]`` of the output (conv then global
            average pooling, RESAIL's ``conv_s`` + ``pool_s``) without forming the output map.

    Returns:
        ``[B, O, Ho, Wo]`` in the dtype of ``weight``, in the memory format of ``weight`` (values equal the
        dense convolution's up to float summation order), or ``[B, O, 1, 1]`` with ``reduce="mean"``.

    Raises:
        ValueError: The channel counts of ``weight`` and ``lm`` differ, or the kernel does not fit.
    """
    per_image = weight.dim() == 5
    o, cin, kh, kw = weight.shape[-4:]
    if cin != lm.shape[1]:
        raise ValueError(f"weight has {cin} input channels but the label map has {lm.shape[1]}")
    folded = lm.folded() if lm.tail is not None else None
    if folded is not None:  # class c with edge e is class c + K * e, whose weight is W_c + e * W_edge
        p, k = lm.num_const, lm.num_classes
        w_cls, w_edge = weight[..., p : p + k, :, :], weight[..., p + k :, :, :]
        weight = torch.cat([weight[..., :p, :, :], w_cls, w_cls + w_edge], dim=-3)
        lm = folded
    kernel, stride, padding = (kh, kw), _pair(stride), _pair(padding)
    taps, ho, wo = lm.taps(kernel, stride, padding, padding_mode)
    bias_tap = _always_valid_tap(kernel, stride, padding, lm.size, (ho, wo), padding_mode)
    table = _table(weight, lm, bias, bias_tap)
    needs_table_per_image = per_image or (lm.const is not None and lm.num_const > 0)
    idx = _indices(taps, table.shape[0], needs_table_per_image)
    b = taps.shape[0]
    if reduce == "mean":  # the mean of the gathered sums = (row histogram) @ table / positions
        counts = _row_counts(idx, b, table.shape[0]).to(table.dtype)
        out = (counts @ table / (ho * wo)).view(b, o, 1, 1)
    else:
        if _channels_last(weight):
            out = _GatherRows.apply(table, idx).view(b, ho, wo, o).permute(0, 3, 1, 2)
        else:
            # the gather writes channels-last; a channels-first network would otherwise convert its
            # weights to channels-last in every following convolution (measured: 4x more copying)
            out = _GatherRows.apply(table, idx, (b, ho, wo))
    if bias is not None and bias_tap is None:
        out = out + bias.view(1, o, 1, 1)
    if lm.tail is not None:
        wt = weight[..., lm.num_const + lm.num_classes :, :, :]
        tail = lm.tail.to(weight.dtype)
        if padding_mode == "reflect":
            tail = F.pad(tail, (padding[1], padding[1], padding[0], padding[0]), mode="reflect")
            pad_arg: tuple[int, int] = (0, 0)
        else:
            pad_arg = padding
        if per_image:
            y = F.conv2d(tail.reshape(1, -1, *tail.shape[2:]), wt.reshape(-1, *wt.shape[2:]), stride=stride,
                         padding=pad_arg, groups=b).view(b, o, ho, wo)
        else:
            y = F.conv2d(tail, wt, stride=stride, padding=pad_arg)
        out = out + (y.mean(dim=(2, 3), keepdim=True) if reduce == "mean" else y)
    return out


def conv_labels(
    conv: nn.Conv2d, seg: torch.Tensor | LabelMap, *, padding_mode: PaddingMode | None = None,
    reduce: Literal["none", "mean"] = "none",
) -> torch.Tensor:
    """``conv(seg)``: a gather when ``seg`` is a :class:`LabelMap`, the module itself on a dense tensor.

    ``padding_mode="reflect"`` with an unpadded ``conv`` and ``padding`` taken from a preceding
    ``nn.ReflectionPad2d`` is handled by :func:`reflect_conv_labels`.
    """
    if not isinstance(seg, LabelMap):
        out = conv(seg)
        return out.mean(dim=(2, 3), keepdim=True) if reduce == "mean" else out
    if conv.groups != 1 or conv.dilation != (1, 1) or conv._forward_pre_hooks:
        out = conv(seg.dense(conv.weight.dtype))  # spectral norm or grouped: keep the module's own path
        return out.mean(dim=(2, 3), keepdim=True) if reduce == "mean" else out
    mode: PaddingMode = padding_mode or ("reflect" if conv.padding_mode == "reflect" else "zeros")
    if conv.padding_mode not in ("zeros", "reflect"):
        return conv(seg.dense(conv.weight.dtype))
    return onehot_conv2d(seg, conv.weight, conv.bias, stride=conv.stride, padding=conv.padding,  # type: ignore[arg-type]
                         padding_mode=mode, reduce=reduce)


def reflect_conv_labels(pad: nn.ReflectionPad2d, conv: nn.Conv2d, seg: LabelMap) -> torch.Tensor:
    """``conv(pad(seg.dense()))`` as one gather (pix2pixHD's ``ReflectionPad2d(3)`` → ``Conv2d(k=7)``)."""
    p = pad.padding
    if len(set(p)) != 1 or conv.padding != (0, 0) or conv._forward_pre_hooks or conv.groups != 1:
        return conv(pad(seg.dense(conv.weight.dtype)))
    return onehot_conv2d(seg, conv.weight, conv.bias, stride=conv.stride, padding=p[0], padding_mode="reflect")


def modules_with(net: nn.Module, attr: str) -> Iterator[nn.Module]:
    """Every submodule of ``net`` (itself included) that has the attribute ``attr``."""
    return (m for m in net.modules() if hasattr(m, attr))


def label_input(
    seg: torch.Tensor | LabelMap, mode: str, num_classes: int | None = None, *, const: torch.Tensor | None = None
) -> torch.Tensor | LabelMap:
    """What a generator passes to its layers: a :class:`LabelMap` in ``"gather"`` mode when ``seg``'s first
    ``num_classes`` channels (None: all or all but the last) are exactly one-hot, else a dense tensor.

    ``const`` ([B, P]) are per-image constant channels to put before the one-hot block (OASIS's noise);
    in the dense result they are expanded over the image and concatenated first, as the official code.
    """
    if mode == "gather":
        lm = as_label_map(seg, num_classes, const=const)
        if lm is not None:
            return lm
    if isinstance(seg, LabelMap):
        return (seg if const is None else seg.with_const(const)).dense(
            const.dtype if const is not None and const.is_floating_point() else torch.float32
        )
    if const is not None:
        b, _, h, w = seg.shape
        return torch.cat((const.to(seg.dtype).view(b, -1, 1, 1).expand(b, const.shape[1], h, w), seg), dim=1)
    return seg


def resize_labels(seg: torch.Tensor | LabelMap, size: tuple[int, int] | torch.Size) -> torch.Tensor | LabelMap:
    """Nearest resize of a dense map or a :class:`LabelMap` (the official ``F.interpolate(seg, size)``)."""
    if isinstance(seg, LabelMap):
        return seg.resized(size)
    return F.interpolate(seg, size=size, mode="nearest")


def set_onehot_conv(net: nn.Module, mode: str) -> None:
    """Switch every generator in ``net`` between ``"gather"`` and ``"dense"`` one-hot convolutions.

    Raises:
        ConfigError: ``mode`` is not one of ``gather``, ``dense``.
    """
    if mode not in ONEHOT_CONV_MODES:
        from bench.errors import ConfigError

        raise ConfigError(f"onehot_conv {mode!r}: expected one of {', '.join(ONEHOT_CONV_MODES)}")
    for m in modules_with(net, "onehot_conv"):
        m.onehot_conv = mode
