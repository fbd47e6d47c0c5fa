"""SEAN: official parity (keys, golden cases), formulation equivalence, any class count, style control,
ablation toggles, presets and official-checkpoint loading."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench.config import apply_overrides
from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError
from methods.base import PRESETS
from methods.checkpoints import load_official
from methods.common.discriminator import MultiscaleDiscriminator
from methods.sean import (
    ACE,
    SEANConfig,
    SEANGenerator,
    SEANMethod,
    Zencoder,
    broadcast_styles,
    class_ids,
    encode_styles,
    fused_style_modulation,
    interpolate,
    region_average,
    set_style_impl,
    swap_regions,
    with_fallback,
)
from tests.parity.fill import fill_
from tests.parity.runner import assert_same_keys, check_case, load_case

SPEC = DatasetSpec.tiny(num_classes=5, image_size=(32, 32))


def official_G(impl: str = "fused") -> SEANGenerator:
    return SEANGenerator(19, style_impl=impl)  # type: ignore[arg-type]


def official_D() -> MultiscaleDiscriminator:
    return MultiscaleDiscriminator(22, n_layers=3, stride_last=2)


# --- official parity ------------------------------------------------------------------------------
def test_keys_match_official_manifests() -> None:
    with torch.device("meta"):  # 267M parameters: shapes only
        assert_same_keys(official_G(), "SEAN_celebamaskhq_G")
    assert_same_keys(Zencoder(), "SEAN_celebamaskhq_Zencoder")
    assert_same_keys(official_D(), "SEAN_celebamaskhq_D")


def test_method_builds_official_discriminator() -> None:
    spec = DatasetSpec(name="celebamask", class_names=tuple(f"c{i}" for i in range(19)))
    with torch.device("meta"):
        m = SEANMethod(PRESETS["sean", "celebamask"], spec, device="meta")
    assert_same_keys(m.nets["netD"], "SEAN_celebamaskhq_D")
    assert_same_keys(m.nets["netG"], "SEAN_celebamaskhq_G")


def test_golden_discriminator() -> None:
    check_case("sean_celebamask_D", official_D, "netD")
    with pytest.raises(AssertionError):
        check_case("sean_celebamask_D", official_D, "netD", perturb="discriminator_1.model0.0.weight")


class _Holder(torch.nn.Module):
    """Gives the encoder the ``Zencoder.`` prefix it has inside the official G (fill_ is key-seeded)."""

    def __init__(self) -> None:
        super().__init__()
        self.Zencoder = Zencoder()


def test_golden_style_codes() -> None:
    """The style encoder + region pooling (loop and batched) give the G case's ``extra_outputs["style_codes"]``."""
    case = load_case("sean_celebamask_G")
    scope = {"torch": torch, "F": F, "inputs": case["inputs"]}
    exec(case["input_construction"], scope)  # noqa: S102 - trusted test data shipped in the repo
    rgb, seg = scope["rgb_img"], scope["input_semantics"]
    golden, tol = case["extra_outputs"]["style_codes"], case["tolerance"]
    holder = _Holder().train()
    fill_(holder.state_dict())
    with torch.no_grad():
        code_map = holder.Zencoder.model(rgb)  # the convs once; both poolings on the same map
        assert code_map.shape[2:] == (128, 128)  # H/2
        for impl in ("loop", "fused"):
            torch.testing.assert_close(
                region_average(code_map, seg, impl), golden, rtol=tol["rtol"], atol=tol["atol"]
            )
        absent = seg.flatten(2).sum(2) == 0
        assert absent.any() and (golden[absent] == 0).all()  # the case has one absent (image, class)
        t = holder.state_dict()["Zencoder.model.14.weight"]
        t.mul_(1 + 1e-3 * (torch.randint(0, 2, t.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1))
        perturbed = holder.Zencoder(input=rgb, segmap=seg)
    with pytest.raises(AssertionError):
        torch.testing.assert_close(perturbed, golden, rtol=tol["rtol"], atol=tol["atol"])


@pytest.mark.slow
def test_golden_generator() -> None:
    """267M parameters, batch 2 at 256x256: ~1-2 min on 2 cores (fill_ alone is ~40 s)."""
    check_case("sean_celebamask_G", official_G, "netG")


@pytest.mark.slow
def test_golden_generator_perturbed_fc_mu_fails() -> None:
    with pytest.raises(AssertionError):
        check_case("sean_celebamask_G", official_G, "netG", perturb="up_0.ace_1.fc_mu11.weight")


# --- the three formulations compute the same function -------------------------------------------
def _label_map(b: int, h: int, w: int, classes: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    lab = torch.randint(0, classes - 1, (b, 1, h // 8, w // 8), generator=g)
    lab = F.interpolate(lab.float(), size=(h, w), mode="nearest").long()
    lab[0][lab[0] == 2] = 0  # class 2 is absent from image 0
    lab[1, 0, 5, 7] = classes - 1  # a one-pixel region, lost at low resolutions
    return lab


@pytest.mark.parametrize("placement", ["sean", "resblk", "unified"])
def test_loop_batched_fused_equal(placement: str) -> None:
    """Forward output and every parameter gradient agree across the formulations (train mode, noise on)."""
    classes, size = 7, 32
    torch.manual_seed(0)
    net = SEANGenerator(
        classes + 1,
        style_nc=classes,
        ngf=4,
        crop_size=size,
        style_length=16,
        style_ngf=4,
        spade_hidden=8,
        style_encoder=placement,
        param_free_norm="batch",  # type: ignore[arg-type]
    ).train()
    fill_(net.state_dict())
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, ACE) and m.noise_var is not None:
                m.noise_var.fill_(0.3)
    lab = _label_map(2, size, size, classes)
    seg = torch.cat([torch.zeros(2, classes, size, size).scatter_(1, lab, 1.0), (lab == 1).float()], 1)
    img = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(5)) * 2 - 1
    probe = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(6))
    results = {}
    for impl in ("loop", "batched", "fused"):
        g = copy.deepcopy(net)  # spectral norm and BatchNorm update buffers in place
        set_style_impl(g, impl)  # type: ignore[arg-type]
        gens = [torch.Generator().manual_seed(10), torch.Generator().manual_seed(11)]
        out = g(seg, img, noise=gens)
        (out * probe).sum().backward()
        grads = {k: p.grad.clone() for k, p in g.named_parameters() if p.grad is not None}
        results[impl] = (out.detach(), grads)
    ref_out, ref_grads = results["loop"]
    assert ref_out.std() > 0.1  # filled weights: O(1) activations, so the comparison is meaningful
    for impl in ("batched", "fused"):
        out, grads = results[impl]
        torch.testing.assert_close(out, ref_out, rtol=1e-4, atol=1e-5)
        # the loop leaves .grad None for the fc_mu of classes absent at a layer's resolution (zero elsewhere);
        # atol: gradients that are zero in exact arithmetic (conv biases right before a norm) are rounding
        gmax = max(g.abs().max() for g in ref_grads.values())
        for k in ref_grads.keys() | grads.keys():
            mine, ref = grads.get(k), ref_grads.get(k)
            mine = torch.zeros_like(ref) if mine is None else mine
            ref = torch.zeros_like(mine) if ref is None else ref
            torch.testing.assert_close(
                mine, ref, rtol=1e-4, atol=1e-6 * float(gmax), msg=lambda m, k=k: f"{k}: {m}"
            )


def test_region_average_matches_loop_and_hand_example() -> None:
    codes = torch.randn(2, 6, 8, 8)
    seg = torch.zeros(2, 4, 16, 16).scatter_(1, _label_map(2, 16, 16, 4), 1.0)
    torch.testing.assert_close(region_average(codes, seg, "fused"), region_average(codes, seg, "loop"))
    codes = torch.arange(4.0).view(1, 1, 2, 2)  # [[0, 1], [2, 3]]
    seg = torch.tensor([[[[1.0, 1], [0, 0]], [[0, 0], [1, 1]], [[0, 0], [0, 0]]]])
    assert region_average(codes, seg).flatten().tolist() == [0.5, 2.5, 0.0]  # absent class: zero


def test_fused_modulation_is_the_conv_of_the_broadcast_map() -> None:
    mu = torch.randn(2, 3, 5)
    mask = torch.zeros(2, 3, 9, 9).scatter_(1, torch.randint(0, 3, (2, 1, 9, 9)), 1.0)
    convs = [torch.nn.Conv2d(5, 4, 3, padding=1), torch.nn.Conv2d(5, 2, 3, padding=1)]
    fused = fused_style_modulation(mu, mask, convs)
    dense = broadcast_styles(mu, mask)
    for f, c in zip(fused, convs):
        torch.testing.assert_close(f, c(dense), rtol=1e-5, atol=1e-6)


# --- any number of classes -------------------------------------------------------------------------
@pytest.mark.parametrize("classes", [3, 35, 151])
def test_any_class_count_keeps_official_names(classes: int) -> None:
    with torch.device("meta"):
        net = SEANGenerator(classes + 1, style_nc=classes)  # + instance edge (no style of its own)
    keys = net.state_dict().keys()
    for j in range(classes):
        assert f"up_2.ace_0.fc_mu{j}.weight" in keys
    assert f"up_2.ace_0.fc_mu{classes}.weight" not in keys
    assert net.state_dict()["up_2.ace_0.Spade.mlp_shared.0.weight"].shape[1] == classes + 1


# --- the method: training, generation, style control ----------------------------------------------
def _batch(b: int = 2, seed: int = 0, size: int = 32, classes: int = 5) -> dict:
    g = torch.Generator().manual_seed(seed)
    lab = F.interpolate(
        torch.randint(0, classes, (b, 1, 4, 4), generator=g).float(), size=(size, size)
    ).long()
    return {
        "image": torch.rand(b, 3, size, size, generator=g) * 2 - 1,
        "label": lab,
        "instance": lab * 7,
        "id": [str(i) for i in range(b)],
        "path": [""] * b,
    }


def _method(**kw) -> SEANMethod:
    torch.manual_seed(0)
    return SEANMethod(replace(SEANMethod.tiny_config(), **kw), SPEC)


def _first(batch: dict) -> dict:
    return {k: v[:1] for k, v in batch.items()}


def test_training_steps_change_weights_and_losses_are_finite() -> None:
    m = _method(no_instance=False)  # with the instance-edge channel (SPADE branches only)
    opt = m.optimizers()
    data = m.prepare(_batch())
    before = {k: v.detach().clone() for k, v in m.nets["netG"].named_parameters()}
    for _ in range(2):
        losses = m.generator_loss(data)
        assert set(losses) == {"GAN", "GAN_Feat"} and all(torch.isfinite(v) for v in losses.values())
        opt["G"].zero_grad()
        sum(losses.values()).backward()
        opt["G"].step()
        d_losses = m.discriminator_loss(data)
        assert set(d_losses) == {"D_Fake", "D_real"}
        opt["D"].zero_grad()
        sum(d_losses.values()).backward()
        opt["D"].step()
    after = dict(m.nets["netG"].named_parameters())
    for key in (
        "Zencoder.model.1.weight",
        "up_0.ace_0.fc_mu1.weight",
        "up_0.ace_0.noise_var",
        "up_0.ace_0.blending_gamma",
    ):
        assert not torch.equal(before[key], after[key]), key
    # the last block is SPADE-only: its blending weights exist (official keys) but are frozen
    assert torch.equal(before["up_3.ace_0.blending_gamma"], after["up_3.ace_0.blending_gamma"])


def test_pixel_l1_is_off_by_default_and_weighted_when_on() -> None:
    """``lambda_l1`` (the CPU presets' stand-in for VGG): absent at 0 (official), λ·mean|fake - real| otherwise."""
    data = _method().prepare(_batch())
    fixed = torch.linspace(-1, 1, data["image"].numel()).view_as(data["image"])
    for lam in (0.0, 2.5):
        m = _method(lambda_l1=lam)
        m._fake = lambda _data: (fixed, None)  # type: ignore[method-assign]
        losses = m.generator_loss(data)
        if lam == 0:
            assert "L1" not in losses
        else:
            torch.testing.assert_close(losses["L1"], lam * (fixed - data["image"]).abs().mean())
    assert PRESETS[("sean", "celebamask")].lambda_l1 == 0.0  # official presets keep the official losses


def _noisy_eval(m: SEANMethod) -> SEANMethod:
    """Train-mode passes first (spectral-norm vectors, BatchNorm running stats), then noise on, eval."""
    data = m.prepare(_batch(seed=9))
    with torch.no_grad():
        for _ in range(5):
            m.nets["netG"](data["semantics"], data["image"])
        for mod in m.nets["netG"].modules():
            if isinstance(mod, ACE) and mod.noise_var is not None:
                mod.noise_var.fill_(0.05)
    m.train_mode(False)
    return m


def test_generate_shape_range_seeds_and_batch_independence() -> None:
    m = _noisy_eval(_method())
    batch = _batch()
    out = m.generate(m.prepare(batch), [1, 2])
    assert out.shape == (2, 3, 32, 32) and out.abs().max() <= 1
    alone = m.generate(m.prepare(_first(batch)), [1])
    torch.testing.assert_close(alone, out[:1], rtol=1e-5, atol=1e-6)
    again = m.generate(m.prepare(batch), [1, 2])
    assert torch.equal(again, out)
    other = m.generate(m.prepare(batch), [3, 2])
    assert not torch.allclose(other[0], out[0]) and torch.allclose(other[1], out[1], atol=1e-6)
    assert m.stochastic and not _method(noise=False).stochastic


def test_style_codes_override_and_style_control() -> None:
    m = _method()
    fill_(m.nets["netG"].state_dict())  # O(1) activations, so a style change is visible
    m = _noisy_eval(m)
    batch = _batch()
    data = m.prepare(batch)
    codes = encode_styles(m, batch["image"], batch["label"])
    assert codes.shape == (2, 5, 8)
    torch.testing.assert_close(m.generate({**data, "style_codes": codes}, [1, 2]), m.generate(data, [1, 2]))
    # image 0 with the styles of image 1: differs from the reconstruction
    flipped = m.generate({**data, "style_codes": codes.flip(0)}, [1, 2])
    assert (flipped[0] - m.generate(data, [1, 2])[0]).abs().mean() > 1e-3  # exactly 0 if styles were ignored
    # generation from codes alone needs no image
    assert m.generate({**data, "image": None, "style_codes": codes}, [1, 2]).shape == (2, 3, 32, 32)
    with pytest.raises(ConfigError, match="expected"):
        m.generate({**data, "style_codes": codes[:, :3]}, [1, 2])
    with pytest.raises(ConfigError, match="image"):
        m.generate({**data, "image": None}, [1, 2])


def test_swap_and_interpolate() -> None:
    a, b = torch.randn(2, 5, 8), torch.randn(1, 5, 8)
    s = swap_regions(a, b, [1, 3])
    assert torch.equal(s[:, [1, 3]], b[:, [1, 3]].expand(2, 2, 8)) and torch.equal(
        s[:, [0, 2, 4]], a[:, [0, 2, 4]]
    )
    assert torch.equal(interpolate(a, b, 0.0), a)
    torch.testing.assert_close(interpolate(a, b, 1.0), b.expand_as(a))
    half = interpolate(a, b, 0.5, classes=[2])
    torch.testing.assert_close(half[:, 2], (a[:, 2] + b[:, 2]) / 2)
    assert torch.equal(half[:, [0, 1, 3, 4]], a[:, [0, 1, 3, 4]])
    with pytest.raises(ConfigError, match="out of range"):
        swap_regions(a, b, [5])
    with pytest.raises(ConfigError, match="do not match"):
        swap_regions(a, torch.randn(2, 4, 8), [0])
    c = a.clone()
    c[0, 2] = 0  # class 2 absent from image 0 of the style source
    fb = with_fallback(c, b)
    assert (
        torch.equal(fb[0, 2], b[0, 2])
        and torch.equal(fb[1], a[1])
        and torch.equal(fb[0, [0, 1, 3, 4]], a[0, [0, 1, 3, 4]])
    )
    assert class_ids(SPEC, ["class4", "1"]) == [4, 1]
    with pytest.raises(ConfigError, match="known: class0"):
        class_ids(SPEC, ["hair"])


# --- ablation toggles, presets, optimisers ----------------------------------------------------------
def test_style_encoder_placement_keys() -> None:
    keys = {p: set(_method(style_encoder=p).nets["netG"].state_dict()) for p in ("sean", "resblk", "unified")}
    assert "up_0.ace_1.fc_mu4.weight" in keys["sean"] and not any(k.startswith("fc_mu") for k in keys["sean"])
    assert "up_0.fc_mu4.weight" in keys["resblk"] and not any(".ace_1.fc_mu" in k for k in keys["resblk"])
    assert "fc_mu4.weight" in keys["unified"] and not any(".fc_mu" in k for k in keys["unified"])
    for ks in keys.values():
        assert not any(k.startswith("up_3.") and "fc_mu" in k for k in ks)


def test_noise_and_downsampling_toggles() -> None:
    assert not any("noise_var" in k for k in _method(noise=False).nets["netG"].state_dict())
    img = torch.zeros(1, 3, 32, 32)
    assert _method().nets["netG"].Zencoder.model(img).shape[2:] == (16, 16)
    assert _method(downsampling=False).nets["netG"].Zencoder.model(img).shape[2:] == (32, 32)
    cfg = apply_overrides(
        SEANMethod.tiny_config(), {"noise": "off", "downsampling": "on", "style_encoder": "unified"}
    )
    assert (cfg.noise, cfg.downsampling, cfg.style_encoder) == (False, True, "unified")
    with pytest.raises(ConfigError):
        apply_overrides(cfg, {"style_encoder": "global"})


def test_presets_and_optimisers() -> None:
    for ds in ("celebamask", "ade20k", "coco", "cityscapes", "synthetic"):
        assert isinstance(PRESETS["sean", ds], SEANConfig)
    cm = PRESETS["sean", "celebamask"]
    assert (cm.load_size, cm.crop_size, cm.no_instance, cm.niter, cm.niter_decay) == (256, 256, True, 50, 50)
    assert (cm.style_encoder, cm.noise, cm.downsampling, cm.style_length) == ("sean", True, True, 512)
    assert PRESETS["sean", "synthetic"].no_vgg_loss
    opt = _method().optimizers()
    assert [g["betas"] for g in (opt["G"].param_groups[0], opt["D"].param_groups[0])] == [(0.0, 0.9)] * 2
    assert (opt["G"].param_groups[0]["lr"], opt["D"].param_groups[0]["lr"]) == (0.0001, 0.0004)
    opt = _method(no_TTUR=True).optimizers()
    assert opt["G"].param_groups[0]["betas"] == (0.5, 0.999) and opt["G"].param_groups[0]["lr"] == 0.0002
    assert SEANMethod.needs_reference_image


# --- official checkpoint layout ------------------------------------------------------------------------
def test_official_checkpoint_layout_loads_strictly(tmp_path: Path) -> None:
    src = _method()
    fill_(src.nets["netG"].state_dict())
    path = tmp_path / "CelebA-HQ_pretrained" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(src.nets["netG"].state_dict(), path)
    dst = _method()
    assert load_official(dst, path)["nets"] == ["netG"]
    for k, v in src.nets["netG"].state_dict().items():
        assert torch.equal(dst.nets["netG"].state_dict()[k], v), k


@pytest.mark.slow
def test_official_size_checkpoint_loads_strictly(tmp_path: Path) -> None:
    """The released CelebA-HQ_pretrained/latest_net_G.pth layout: 19 classes, official width (1 GB)."""
    spec = DatasetSpec(name="celebamask", class_names=tuple(f"c{i}" for i in range(19)))
    cfg = replace(PRESETS["sean", "celebamask"], init_type="none")
    torch.manual_seed(1)
    sd = SEANMethod(cfg, spec).nets["netG"].state_dict()
    path = tmp_path / "CelebA-HQ_pretrained" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(sd, path)
    torch.manual_seed(2)
    dst = SEANMethod(cfg, spec)
    load_official(dst, path)
    loaded = dst.nets["netG"].state_dict()
    assert loaded.keys() == sd.keys() and all(
        torch.equal(loaded[k], sd[k]) for k in ("up_1.ace_0.fc_mu18.weight", "Zencoder.model.14.weight")
    )


def test_style_channels_follow_the_official_ade20k_channel_order() -> None:
    """ADE20K's official channel order ("other" first) applies to the style one-hot as to the input, so the
    codes encoded for style control sit in the rows the generator's ``fc_mu{j}`` expect."""
    spec = replace(SPEC, ignore_index=255, extra={"dontcare_channel_first": True})
    torch.manual_seed(0)
    m = SEANMethod(replace(SEANMethod.tiny_config(), contain_dontcare_label=True), spec)
    label = torch.tensor([[0, 3], [255, 4]]).view(1, 1, 2, 2)
    style = m.style_segmap(label)
    assert style.shape == (1, 6, 2, 2)
    assert style[0].argmax(0).tolist() == [[1, 4], [0, 5]]  # unlabeled → channel 0, class k → k + 1
    assert torch.equal(style, m.input_semantics(label, None)[:, : m.style_nc])
    plain = SEANMethod(replace(SEANMethod.tiny_config(), contain_dontcare_label=True), replace(spec, extra={}))
    assert plain.style_segmap(label)[0].argmax(0).tolist() == [[0, 3], [5, 4]]  # SPADE's default: dontcare last
