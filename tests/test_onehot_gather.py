"""One-hot convolutions as gathers (issue 17): outputs and gradients equal the dense convolution's, for the
layer itself (padding, stride, constants, tail channels, per-image kernels) and for every method's generator
with its dontcare and instance-edge channels; the speed options keep the state_dict and the numerics."""

from __future__ import annotations

import copy
from dataclasses import replace
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import methods.common.onehot as onehot
from bench.config import apply_overrides
from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError
from methods import load_method
from methods.common.losses import feature_matching_loss, gan_loss
from methods.common.normalization import SPADE, FP32SpectralNorm, SpectralConv2d, spectral_conv
from methods.common.onehot import LabelMap, as_label_map, onehot_conv2d, onehot_ids, set_onehot_conv
from methods.common.perf import adam

SPEC = DatasetSpec.tiny(num_classes=5, image_size=(32, 32))
SPEC64 = DatasetSpec.tiny(num_classes=5, image_size=(64, 64))


# --- the layer ------------------------------------------------------------------------------------------
def _dense_reference(lm: LabelMap, w: torch.Tensor, b: torch.Tensor, *, s: int, p: int, mode: str) -> torch.Tensor:
    x = lm.dense(torch.float64)
    if mode == "reflect":
        x, p = F.pad(x, (p, p, p, p), mode="reflect"), 0
    if w.dim() == 5:
        return torch.cat([F.conv2d(x[i : i + 1], w[i], b, stride=s, padding=p) for i in range(x.shape[0])])
    return F.conv2d(x, w, b, stride=s, padding=p)


@pytest.mark.parametrize(
    "case",
    [
        dict(),  # SPADE's mlp_shared: 3x3, zero padding 1
        dict(P=3),  # OASIS: noise constants before the one-hot block
        dict(Q=1),  # instance-edge channel after it (requires grad: convolved densely, added)
        dict(Q=1, edge=True),  # a binary edge channel without grad: folded into the ids (2K classes)
        dict(Q=1, edge=True, P=2, k=7, p=3, mode="reflect"),
        dict(Q=1, edge=True, per_image=True),
        dict(P=2, Q=2),
        dict(k=7, p=3, mode="reflect", Q=1),  # pix2pixHD's ReflectionPad2d(3) + conv7
        dict(k=3, p=0, s=2, reduce="mean"),  # RESAIL's conv_s + global average pool
        dict(k=3, p=1, s=2, Q=1, reduce="mean"),
        dict(k=4, p=1, s=2),  # even kernel with stride
        dict(k=5, p=4),  # padding wider than the kernel's half: no tap is always valid, bias added apart
        dict(per_image=True, P=2, Q=1),  # SEAN's per-image style kernels
    ],
)
def test_gather_equals_dense_convolution_and_gradients(case: dict[str, Any]) -> None:
    g = torch.Generator().manual_seed(0)
    b, k_cls, h, w = 2, 6, 9, 11
    P, Q, k, s, p = case.get("P", 0), case.get("Q", 0), case.get("k", 3), case.get("s", 1), case.get("p", 1)
    mode, reduce = case.get("mode", "zeros"), case.get("reduce", "none")
    ids = torch.randint(0, k_cls, (b, h, w), generator=g)
    const = torch.randn(b, P, generator=g, dtype=torch.float64).requires_grad_() if P else None
    tail = (torch.rand(b, Q, h, w, generator=g, dtype=torch.float64) > 0.5).double() if Q else None
    if tail is not None and not case.get("edge"):
        tail.requires_grad_()
    lm = LabelMap(ids, k_cls, const=const, tail=tail)
    assert (lm.folded() is not None) == bool(case.get("edge"))
    shape = ((b,) if case.get("per_image") else ()) + (5, P + k_cls + Q, k, k)
    weight = torch.randn(*shape, generator=g, dtype=torch.float64).requires_grad_()
    bias = torch.randn(5, generator=g, dtype=torch.float64).requires_grad_()
    out = onehot_conv2d(lm, weight, bias, stride=s, padding=p, padding_mode=mode, reduce=reduce)  # type: ignore[arg-type]
    ref = _dense_reference(lm, weight, bias, s=s, p=p, mode=mode)
    if reduce == "mean":
        ref = ref.mean(dim=(2, 3), keepdim=True)
    torch.testing.assert_close(out, ref, rtol=1e-12, atol=1e-12)
    probe = torch.randn(ref.shape, generator=g, dtype=torch.float64)
    leaves = [t for t in (weight, bias, const, tail) if t is not None and t.requires_grad]
    for got, want in zip(torch.autograd.grad((out * probe).sum(), leaves),
                         torch.autograd.grad((ref * probe).sum(), leaves)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_bias_goes_into_an_always_valid_tap_or_is_added() -> None:
    """With zero padding 1 every output sees the centre tap; with padding 4 on a 5x5 kernel no tap is
    inside for all outputs, so the bias must be added separately (a zero-weight conv returns the bias)."""
    ids = torch.zeros(1, 4, 4, dtype=torch.long)
    lm = LabelMap(ids, 2)
    for k, p in ((3, 1), (5, 4)):
        out = onehot_conv2d(lm, torch.zeros(3, 2, k, k), torch.tensor([1.0, 2.0, 3.0]), padding=p)
        assert torch.equal(out, torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1).expand_as(out))


def test_one_hot_detection() -> None:
    ids = torch.randint(0, 4, (2, 1, 6, 6), generator=torch.Generator().manual_seed(0))
    x = torch.zeros(2, 4, 6, 6).scatter_(1, ids, 1.0)
    assert torch.equal(onehot_ids(x), ids[:, 0])
    soft = x.clone()
    soft[0, :, 0, 0] = 0.25  # a soft pixel
    assert onehot_ids(soft) is None
    empty = x.clone()
    empty[1, :, 3, 3] = 0  # a pixel without a class
    assert onehot_ids(empty) is None
    two = x.clone()
    two[0, :, 2, 2] = 1  # two classes at once
    assert onehot_ids(two) is None
    signed = x.clone()
    signed[0, :2, 1, 1] = torch.tensor([1.0, -1.0]) if signed[0, 0, 1, 1] == 1 else torch.tensor([-1.0, 1.0])
    assert onehot_ids(signed) is None
    nan = x.clone()
    nan[0, 0, 0, 0] = float("nan")
    assert onehot_ids(nan) is None
    assert onehot_ids(x.clone().requires_grad_()) is None  # the gather has no input gradient
    edge = (torch.rand(2, 1, 6, 6) > 0.5).float()
    lm = as_label_map(torch.cat([x, edge], 1))  # channel count unknown: all, then all but the last
    assert lm is not None and lm.num_classes == 4 and torch.equal(lm.tail, edge)
    assert as_label_map(torch.cat([x, edge], 1), 3) is None  # the first 3 channels are not one-hot


def test_resized_label_map_equals_resized_dense_map() -> None:
    ids = torch.randint(0, 7, (2, 13, 17), generator=torch.Generator().manual_seed(1))
    edge = (torch.rand(2, 1, 13, 17, generator=torch.Generator().manual_seed(2)) > 0.5).float()
    lm = LabelMap(ids, 7, tail=edge)
    for size in ((4, 4), (26, 34), (8, 16), (13, 17)):
        assert torch.equal(lm.resized(size).dense(), F.interpolate(lm.dense(), size=size, mode="nearest"))
    assert lm.resized((4, 4)) is lm.resized((4, 4))  # cached for the layers of one forward


# --- every method's generator: gather == dense, outputs and gradients -----------------------------------
def _batch(spec: DatasetSpec, size: tuple[int, int], seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    h, w = size
    label = torch.randint(0, spec.num_classes, (2, 1, h, w), generator=g)
    label[:, :, : h // 4, : w // 3] = 255  # unlabeled pixels: the dontcare channel (or OASIS's class 0)
    inst = torch.randint(0, 3, (2, 1, h // 8, w // 8), generator=g)
    inst = F.interpolate(inst.float(), size=(h, w)).long()  # blocky instances: real edges
    return {"label": label, "instance": inst, "image": torch.rand(2, 3, h, w, generator=g) * 2 - 1,
            "id": ["a", "b"], "path": ["", ""]}


def _forward(name: str, method: Any, data: dict[str, Any]) -> torch.Tensor:
    net = method.nets["netG"]
    torch.manual_seed(7)  # SEAN's noise and OASIS's z come from the global RNG: the same for both paths
    if name == "sean":
        return net(data["semantics"], data["image"])
    if name == "oasis":
        z_dtype = torch.float32 if data.get("_float") else torch.float64
        return net(data["semantics"], torch.randn(2, method.cfg.z_dim, dtype=z_dtype))
    if name == "pix2pixhd":
        return net(method._generator_input(data))
    if name == "resail":
        return net(data["semantics"], guidance=data["image"])
    return net(data["semantics"])


METHOD_CASES = {
    "spade": (SPEC, dict(contain_dontcare_label=True, no_instance=False)),
    "sean": (SPEC, dict(contain_dontcare_label=True, no_instance=False)),
    "oasis": (SPEC64, dict()),
    "pix2pixhd": (SPEC, dict(contain_dontcare_label=True, no_instance=False)),
    "pix2pixhd-feat": (SPEC, dict(contain_dontcare_label=True, no_instance=False, instance_feat=True, nef=4,
                                  n_downsample_E=2)),
    "resail": (SPEC64, dict(contain_dontcare_label=True, no_instance=False)),
}


def _build(case: str, mode: str) -> tuple[str, Any, dict[str, Any]]:
    name = case.split("-")[0]
    spec, over = METHOD_CASES[case]
    cls = load_method(name)
    cfg = apply_overrides(cls.tiny_config(), {**over, "onehot_conv": mode})
    method = cls(cfg, spec)
    batch = _batch(spec, (cfg.crop_size, cfg.crop_size))
    # RESAIL: SPADE's inputs without the retrieval database (the guidance is given directly)
    prepare = super(cls, method).prepare if name == "resail" else method.prepare  # type: ignore[misc]
    data = prepare(batch)
    for net in method.nets.values():
        net.double()
    for k, v in list(data.items()):
        if isinstance(v, torch.Tensor) and v.is_floating_point():
            data[k] = v.double()
    return name, method, data


@pytest.mark.parametrize("case", sorted(METHOD_CASES))
def test_method_generator_gather_equals_dense(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Same seed → same weights; float64 so that only summation order differs (1e-10)."""
    calls = {"n": 0}
    real = onehot.onehot_conv2d

    def counting(*args: Any, **kwargs: Any) -> torch.Tensor:
        calls["n"] += 1
        return real(*args, **kwargs)

    results = {}
    for mode in ("dense", "gather"):
        monkeypatch.setattr(onehot, "onehot_conv2d", counting)
        calls["n"] = 0
        name, method, data = _build(case, mode)
        assert method.nets["netG"].onehot_conv == mode
        net = method.nets["netG"].train()
        out = _forward(name, method, data)
        probe = torch.randn(out.shape, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
        (out * probe).sum().backward()
        grads = {k: p.grad.clone() for k, p in net.named_parameters() if p.grad is not None}
        if "netE" in method.nets:
            grads.update({f"E.{k}": p.grad.clone() for k, p in method.nets["netE"].named_parameters()})
        results[mode] = (out.detach(), grads, calls["n"])
    (out_d, grads_d, n_dense), (out_g, grads_g, n_gather) = results["dense"], results["gather"]
    assert n_dense == 0 and n_gather > 0  # the gather path really ran (no silent dense fallback)
    torch.testing.assert_close(out_g, out_d, rtol=1e-10, atol=1e-10)
    assert grads_g.keys() == grads_d.keys() and len(grads_d) > 0
    for k in grads_d:
        torch.testing.assert_close(grads_g[k], grads_d[k], rtol=1e-9, atol=1e-10, msg=lambda m, k=k: f"{k}: {m}")


@pytest.mark.parametrize("case", ["spade", "sean", "oasis", "pix2pixhd-feat", "resail"])
def test_gather_runs_under_bf16_autocast(case: str) -> None:
    """The dtype plumbing of the gather under autocast (CPU here; tests/test_gpu_speed.py does CUDA):
    bf16 activations, float32 tables, gradients reach the weights and are finite."""
    name, method, data = _build(case, "gather")
    for net in method.nets.values():
        net.float()
    data = {k: v.float() if isinstance(v, torch.Tensor) and v.is_floating_point() else v for k, v in data.items()}
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = _forward(name, method, {**data, "_float": True})
    assert out.dtype == torch.bfloat16
    out.float().mean().backward()
    grads = [p.grad for p in method.nets["netG"].parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def test_spade_float32_within_float_tolerance() -> None:
    """In float32 the two paths differ only by summation order: well inside the goldens' 1e-4/3e-5."""
    from methods.spade import SPADEGenerator

    torch.manual_seed(0)
    net = SPADEGenerator(8, ngf=4, spade_hidden=8, crop_size=64)
    ids = torch.randint(0, 7, (2, 1, 8, 8))
    seg = torch.zeros(2, 7, 64, 64).scatter_(1, F.interpolate(ids.float(), size=(64, 64)).long(), 1.0)
    seg = torch.cat([seg, (torch.rand(2, 1, 64, 64) > 0.9).float()], 1)  # dontcare-free 7 + edge
    outs = []
    for mode in ("dense", "gather"):
        n = copy.deepcopy(net)
        set_onehot_conv(n, mode)
        outs.append(n(seg))
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-4, atol=3e-5)


def test_dense_inputs_that_are_not_one_hot_take_the_dense_path() -> None:
    """A soft label map (e.g. bilinearly resized) gives the dense convolution's result in gather mode."""
    from methods.spade import SPADEGenerator

    torch.manual_seed(0)
    net = SPADEGenerator(5, ngf=4, spade_hidden=8, crop_size=32).eval()
    soft = torch.softmax(torch.randn(1, 5, 32, 32), dim=1)
    dense = copy.deepcopy(net)
    set_onehot_conv(dense, "dense")
    torch.testing.assert_close(net(soft), dense(soft), rtol=0, atol=0)


# --- config fields and the other speed options ------------------------------------------------------------
def test_config_switches_and_refusals() -> None:
    from methods.spade import SPADEConfig, SPADEMethod

    cfg = SPADEMethod.tiny_config()
    assert cfg.onehot_conv == "gather" and cfg.fuse_gamma_beta and not (cfg.bf16 or cfg.channels_last)
    assert not cfg.spectral_after_conv  # opt-in (DDP equivalence; methods/common/perf.py)
    fast = SPADEMethod(apply_overrides(cfg, {"spectral_after_conv": "true"}), SPEC)
    assert all(m.spectral_after_conv for m in fast.nets["netG"].modules() if isinstance(m, SpectralConv2d))
    dense = SPADEMethod(apply_overrides(cfg, {"onehot_conv": "dense", "fuse_gamma_beta": "false",
                                              "spectral_after_conv": "false"}), SPEC)
    assert dense.nets["netG"].onehot_conv == "dense"
    assert not any(m.fuse_gamma_beta for m in dense.nets["netG"].modules() if isinstance(m, SPADE))
    assert not any(m.spectral_after_conv for m in dense.nets["netG"].modules() if isinstance(m, SpectralConv2d))
    with pytest.raises(ConfigError, match="onehot_conv"):
        apply_overrides(cfg, {"onehot_conv": "sparse"})
    with pytest.raises(ConfigError, match="exclude each other"):
        replace(cfg, amp=True, bf16=True)
    with pytest.raises(ConfigError, match="expected one of gather, dense"):
        set_onehot_conv(nn.Linear(1, 1), "sparse")
    assert isinstance(SPADEConfig(), SPADEConfig)


def test_fused_gamma_beta_keeps_keys_and_values() -> None:
    torch.manual_seed(0)
    layer = SPADE(6, 4, hidden=5, param_free_norm="instance").double()
    keys = set(layer.state_dict())
    assert {"mlp_gamma.weight", "mlp_beta.weight", "mlp_shared.0.weight"} <= keys
    x = torch.randn(2, 6, 8, 8, dtype=torch.float64)
    seg = torch.zeros(2, 4, 8, 8, dtype=torch.float64).scatter_(1, torch.randint(0, 4, (2, 1, 8, 8)), 1.0)
    outs, grads = [], []
    for fuse in (False, True):
        layer.fuse_gamma_beta = fuse
        layer.zero_grad()
        out = layer(x, seg)
        out.square().sum().backward()
        outs.append(out)
        grads.append([p.grad.clone() for p in layer.parameters()])
    torch.testing.assert_close(outs[1], outs[0], rtol=1e-12, atol=1e-12)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    assert set(layer.state_dict()) == keys


def test_spectral_norm_power_iteration_stays_float32_under_autocast() -> None:
    torch.manual_seed(0)
    a = spectral_conv(nn.Conv2d(8, 16, 3, padding=1))
    b = copy.deepcopy(a)
    assert any(isinstance(h, FP32SpectralNorm) for h in a._forward_pre_hooks.values())
    x = torch.randn(1, 8, 6, 6)
    a(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        y = b(x)
    assert y.dtype == torch.bfloat16  # the convolution itself runs in bf16
    assert b.weight.dtype == torch.float32
    torch.testing.assert_close(b.weight, a.weight, rtol=0, atol=0)  # W / sigma bit-identical
    torch.testing.assert_close(b.weight_u, a.weight_u, rtol=0, atol=0)
    nn.utils.remove_spectral_norm(b)  # still recognised as torch's SpectralNorm


def test_losses_run_in_float32_under_autocast() -> None:
    torch.manual_seed(0)
    pred = [[torch.randn(2, 4, 3, 3), torch.randn(2, 1, 3, 3)] for _ in range(2)]
    real = [[torch.randn(2, 4, 3, 3), torch.randn(2, 1, 3, 3)] for _ in range(2)]
    low = [[t.bfloat16() for t in s] for s in pred]
    low_real = [[t.bfloat16() for t in s] for s in real]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        g = gan_loss(low, True, mode="hinge", for_discriminator=False)
        fm = feature_matching_loss(low, low_real, weight=10.0)
    up = [[t.float() for t in s] for s in low]
    assert g.dtype == fm.dtype == torch.float32
    torch.testing.assert_close(g, gan_loss(up, True, mode="hinge", for_discriminator=False), rtol=0, atol=0)
    torch.testing.assert_close(fm, feature_matching_loss(up, [[t.float() for t in s] for s in low_real], weight=10.0),
                               rtol=0, atol=0)


def test_fused_adam_gives_the_same_update() -> None:
    torch.manual_seed(0)
    nets = [nn.Linear(5, 3) for _ in range(2)]
    nets[1].load_state_dict(nets[0].state_dict())
    opts = [adam(n.parameters(), lr=1e-2, betas=(0.0, 0.9), cfg=type("C", (), {"fused_adam": f})())
            for n, f in zip(nets, (False, True))]
    assert opts[1].defaults["fused"] is True
    x = torch.randn(4, 5)
    for _ in range(3):
        for n, o in zip(nets, opts):
            o.zero_grad()
            n(x).square().sum().backward()
            o.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_channels_last_method_runs_a_step_with_the_same_keys() -> None:
    from methods.spade import SPADEMethod

    cfg = apply_overrides(SPADEMethod.tiny_config(), {"channels_last": "true", "no_instance": "false",
                                                      "contain_dontcare_label": "true"})
    method = SPADEMethod(cfg, SPEC)
    conv = method.nets["netG"].up_0.conv_0
    assert conv.weight_orig.is_contiguous(memory_format=torch.channels_last)
    data = method.prepare(_batch(SPEC, (32, 32)))
    assert data["semantics"].is_contiguous(memory_format=torch.channels_last)
    losses = method.generator_loss(data)
    sum(losses.values()).backward()
    assert all(torch.isfinite(v) for v in losses.values())
    plain = SPADEMethod(apply_overrides(cfg, {"channels_last": "false"}), SPEC)
    assert method.nets["netG"].state_dict().keys() == plain.nets["netG"].state_dict().keys()
