"""Speed paths of issue 17 that must not change numerics: each is compared with the plain computation it
replaces (outputs and gradients, on small inputs), bit for bit where the path claims it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from methods.common.normalization import SPADE, modulate
from methods.common.onehot import LabelMap, _GatherRows, onehot_conv2d


def _grads(fn, *inputs: torch.Tensor, seed: int = 1) -> tuple[torch.Tensor, list[torch.Tensor]]:
    leaves = [t.detach().clone().requires_grad_() for t in inputs]
    out = fn(*leaves)
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    out.backward(g)
    return out.detach(), [t.grad for t in leaves]


@pytest.mark.parametrize("b", [1, 3])
def test_gather_rows_channels_first_is_the_permuted_copy_bit_for_bit(b: int) -> None:
    g = torch.Generator().manual_seed(0)
    ho, wo, o, rows, taps = 5, 7, 6, 20, 9
    table = torch.randn(rows, o, generator=g)
    idx = torch.randint(0, rows, (b * ho * wo, taps), generator=g, dtype=torch.int32)

    def ref(t: torch.Tensor) -> torch.Tensor:
        return _GatherRows.apply(t, idx).view(b, ho, wo, o).permute(0, 3, 1, 2).contiguous()

    def fast(t: torch.Tensor) -> torch.Tensor:
        return _GatherRows.apply(t, idx, (b, ho, wo))

    out_r, (g_r,) = _grads(ref, table)
    out_f, (g_f,) = _grads(fast, table)
    assert out_f.is_contiguous() and out_f.shape == (b, o, ho, wo)
    assert torch.equal(out_r, out_f) and torch.equal(g_r, g_f)
    # a channels-last gradient (no transpose needed) gives the same table gradient
    leaf = table.clone().requires_grad_()
    fast(leaf).backward(torch.randn(b, o, ho, wo, generator=torch.Generator().manual_seed(1))
                        .contiguous(memory_format=torch.channels_last))
    assert torch.equal(leaf.grad, g_f)


def test_onehot_conv2d_channels_first_output_matches_dense() -> None:
    g = torch.Generator().manual_seed(0)
    lm = LabelMap(torch.randint(0, 5, (2, 9, 11), generator=g), 5)
    w, bias = torch.randn(4, 5, 3, 3, generator=g), torch.randn(4, generator=g)
    out, (gw, gb) = _grads(lambda w_, b_: onehot_conv2d(lm, w_, b_, padding=1), w, bias)
    ref, (rw, rb) = _grads(lambda w_, b_: F.conv2d(lm.dense(), w_, b_, padding=1), w, bias)
    assert out.is_contiguous()
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gw, rw, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(gb, rb, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("channels_last", [False, True])
def test_modulate_is_the_expression_bit_for_bit(channels_last: bool) -> None:
    g = torch.Generator().manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    x = torch.randn(2, 4, 5, 6, generator=g).contiguous(memory_format=fmt)
    gb = torch.randn(2, 8, 5, 6, generator=g).contiguous(memory_format=fmt)
    out_r, (gx_r, ggb_r) = _grads(lambda a, c: a * (1 + c[:, :4]) + c[:, 4:], x, gb)
    out_f, (gx_f, ggb_f) = _grads(modulate, x, gb)
    assert torch.equal(out_r, out_f) and torch.equal(gx_r, gx_f) and torch.equal(ggb_r, ggb_f)
    if channels_last:
        assert ggb_f.is_contiguous(memory_format=torch.channels_last)


def test_spade_layer_fused_equals_unfused_bit_for_bit() -> None:
    torch.manual_seed(0)
    layer = SPADE(6, 5, hidden=8, param_free_norm="batch")
    seg = LabelMap(torch.randint(0, 5, (2, 8, 8)), 5)
    x = torch.randn(2, 6, 8, 8)
    results = []
    for fuse in (False, True):
        layer.fuse_gamma_beta = fuse
        layer.zero_grad(set_to_none=True)
        leaf = x.clone().requires_grad_()
        out = layer(leaf, seg)
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
        results.append((out.detach(), leaf.grad, {n: p.grad.clone() for n, p in layer.named_parameters()}))
    (o0, g0, p0), (o1, g1, p1) = results
    torch.testing.assert_close(o1, o0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-6)
    for n in p0:
        torch.testing.assert_close(p1[n], p0[n], rtol=1e-5, atol=1e-5, msg=n)
