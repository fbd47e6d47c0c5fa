"""Speed paths of issue 17 that must not change numerics: each is compared with the plain computation it
replaces (outputs and gradients, on small inputs), bit for bit where the path claims it."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from methods.common.normalization import SPADE, SpectralConv2d, blend_modulate, modulate, spectral_conv
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


# --- spectral norm: the division moved to the output (spectral_after_conv) ---------------------------------
def _sn_pair(bias: bool, k: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(0)
    ref = spectral_conv(torch.nn.Conv2d(8, 6, k, padding=k // 2, bias=bias))
    with torch.no_grad():
        if bias:
            ref.bias.normal_()
    fast = copy.deepcopy(ref)
    fast.spectral_after_conv = True
    return ref, fast


@pytest.mark.parametrize("bias,k,train", [(True, 3, True), (False, 1, True), (True, 3, False)])
def test_spectral_after_conv_equals_weight_division(bias: bool, k: int, train: bool) -> None:
    ref, fast = _sn_pair(bias, k)
    assert isinstance(fast, SpectralConv2d) and isinstance(fast, torch.nn.Conv2d)
    assert list(fast.state_dict()) == list(ref.state_dict())
    x = torch.randn(2, 8, 2, 2, generator=torch.Generator().manual_seed(2))
    assert fast.divides_output(x)
    results = []
    for net in (ref, fast):
        net.train(train)
        leaf = x.clone().requires_grad_()
        out = net(leaf)
        out.backward(torch.randn(out.shape, generator=torch.Generator().manual_seed(1)))
        results.append((out.detach(), leaf.grad, {n: p.grad for n, p in net.named_parameters()},
                        {n: b.clone() for n, b in net.named_buffers()}))
    (o0, g0, p0, b0), (o1, g1, p1, b1) = results
    torch.testing.assert_close(o1, o0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(g1, g0, rtol=1e-5, atol=1e-6)
    for n in p0:
        torch.testing.assert_close(p1[n], p0[n], rtol=1e-5, atol=1e-6, msg=n)
    for n in b0:  # the power iteration updated u and v identically
        assert torch.equal(b1[n], b0[n]), n


def test_spectral_after_conv_gradient_against_float64_autograd() -> None:
    """The hand-written backward (sigma's gradient included) against autograd on the reference maths."""
    _, fast = _sn_pair(True, 3)
    fast.eval()  # fixed u, v
    x = torch.randn(1, 8, 3, 2, generator=torch.Generator().manual_seed(3))
    g = torch.randn(1, 6, 3, 2, generator=torch.Generator().manual_seed(4))
    leaf = x.clone().requires_grad_()
    fast(leaf).backward(g)
    w = fast.weight_orig.detach().double().requires_grad_()
    b = fast.bias.detach().double().requires_grad_()
    x64 = x.double().requires_grad_()
    sigma = torch.dot(fast.weight_u.double(), torch.mv(w.view(6, -1), fast.weight_v.double()))
    F.conv2d(x64, w / sigma, b, padding=1).backward(g.double())
    torch.testing.assert_close(leaf.grad.double(), x64.grad, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fast.weight_orig.grad.double(), w.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(fast.bias.grad.double(), b.grad, rtol=1e-5, atol=1e-6)


def test_spectral_after_conv_keeps_weight_division_for_large_outputs() -> None:
    ref, fast = _sn_pair(True, 3)
    x = torch.randn(1, 8, 16, 16)  # 256 positions > 8 * 3 * 3 weight columns
    assert not fast.divides_output(x)
    assert torch.equal(ref(x), fast(x))


def test_spectral_after_conv_config_field_reaches_the_layers() -> None:
    from bench.config import resolve
    from bench.datasets import DATASETS
    from methods import load_method

    cfg = resolve("spade", "synthetic", {"spectral_after_conv": True})
    m = load_method("spade")(cfg, DATASETS.get("synthetic"), torch.device("cpu"))
    convs = [mod for mod in m.nets["netG"].modules() if isinstance(mod, SpectralConv2d)]
    assert convs and all(c.spectral_after_conv for c in convs)


def test_blend_modulate_is_the_expression_bit_for_bit() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 4, 5, 6, generator=g)
    style, spade = torch.randn(2, 8, 5, 6, generator=g), torch.randn(2, 8, 5, 6, generator=g)
    a_g, a_b = torch.sigmoid(torch.randn(1, generator=g)), torch.sigmoid(torch.randn(1, generator=g))

    def ref(x_, s_, m_, ag, ab):  # noqa: ANN001, ANN202 - SEAN's ACE expression
        gamma = ag * s_[:, :4] + (1 - ag) * m_[:, :4]
        beta = ab * s_[:, 4:] + (1 - ab) * m_[:, 4:]
        return x_ * (1 + gamma) + beta

    out_r, grads_r = _grads(ref, x, style, spade, a_g, a_b)
    out_f, grads_f = _grads(blend_modulate, x, style, spade, a_g, a_b)
    assert torch.equal(out_r, out_f)
    for a, b in zip(grads_r, grads_f):
        assert torch.equal(a, b)


def test_style_kernels_equal_einsum_with_gradients() -> None:
    from methods.sean import style_kernels

    g = torch.Generator().manual_seed(0)
    mu, w = torch.randn(2, 3, 5, generator=g), torch.randn(4, 5, 3, 3, generator=g)
    out_f, grads_f = _grads(style_kernels, mu, w)
    out_r, grads_r = _grads(lambda m, w_: torch.einsum("bcs,oskl->bockl", m, w_), mu, w)
    torch.testing.assert_close(out_f, out_r, rtol=1e-5, atol=1e-6)
    for a, b in zip(grads_f, grads_r):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_spectral_after_conv_keeps_module_weight_readable() -> None:
    """Code that reads ``conv.weight`` after a forward (legacy exports) gets torch's ``W / sigma``."""
    ref, fast = _sn_pair(True, 3)
    x = torch.randn(1, 8, 2, 2)
    for net in (ref, fast):
        net.train()
        net(x)
    assert "weight" not in fast.__dict__
    assert torch.equal(fast.weight, ref.weight)
    fast.eval(), ref.eval()
    fast(x), ref(x)
    assert torch.equal(fast.weight, ref.weight)


def test_style_kernel_einsum_is_einsum_bit_for_bit() -> None:
    from methods.sean import style_kernels

    g = torch.Generator().manual_seed(1)
    mu, w = torch.randn(2, 3, 5, generator=g), torch.randn(4, 5, 3, 3, generator=g)
    assert torch.equal(style_kernels(mu, w, "einsum"), torch.einsum("bcs,oskl->bockl", mu, w))


@pytest.mark.parametrize("method", ["spade", "sean", "oasis", "resail"])
def test_synthetic_presets_keep_the_baseline_arithmetic(method: str) -> None:
    """The synthetic presets pin the arithmetic the drift baseline and the README's synthetic figures were
    measured with (spectral norm dividing the weight; SEAN's einsum kernels); the paper presets take SEAN's
    faster kernels (spectral_after_conv is opt-in everywhere), and the config reaches the layers."""
    from bench.config import resolve
    from bench.datasets import DATASETS
    from methods import load_method
    from methods.sean import ACE

    paper = {"spade": "ade20k", "sean": "celebamask", "oasis": "ade20k", "resail": "ade20k"}[method]
    assert resolve(method, paper, {}).spectral_after_conv is False
    cfg = resolve(method, "synthetic", {})
    assert cfg.spectral_after_conv is False
    if method == "sean":
        assert cfg.style_kernel == "einsum" and resolve("sean", paper, {}).style_kernel == "matmul"
        for kernel in ("einsum", "matmul"):
            m = load_method("sean")(resolve("sean", "synthetic", {"style_kernel": kernel}), DATASETS.get("synthetic"),
                                    torch.device("cpu"))
            aces = [mod for mod in m.nets["netG"].modules() if isinstance(mod, ACE)]
            assert aces and all(a.style_kernel == kernel for a in aces)
