"""pix2pixHD: official keys and goldens, losses as the official code weighs them, training and generation."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError
from methods.base import PRESETS
from methods.pix2pixhd import (
    Encoder,
    GlobalGenerator,
    LocalEnhancer,
    MultiscaleDiscriminator,
    Pix2PixHDConfig,
    Pix2PixHDMethod,
    generator_input_nc,
    instance_average,
)
from tests.parity.runner import assert_same_keys, check_case

OPTS = Path(__file__).parent / "official_opts"


# --- official keys and shapes --------------------------------------------------------------------
@pytest.mark.parametrize(
    "manifest, build",
    [
        ("pix2pixHD_cityscapes-512p_G", lambda: GlobalGenerator(36)),
        ("pix2pixHD_cityscapes-512p-feat_G", lambda: GlobalGenerator(39)),
        ("pix2pixHD_cityscapes-1024p_G", lambda: LocalEnhancer(36, ngf=32)),
        ("pix2pixHD_cityscapes-512p_D", lambda: MultiscaleDiscriminator(39)),
        ("pix2pixHD_cityscapes-512p-feat_D", lambda: MultiscaleDiscriminator(39)),
        ("pix2pixHD_cityscapes-1024p_D", lambda: MultiscaleDiscriminator(39, num_D=3)),
        ("pix2pixHD_cityscapes-512p-feat_E", lambda: Encoder(3, 3, ngf=16)),
    ],
)
def test_keys_match_official(manifest: str, build) -> None:
    with torch.device("meta"):  # shapes only: no memory, no init
        net = build()
    assert_same_keys(net, manifest)


def test_cityscapes_preset_input_channels() -> None:
    """The preset's channel arithmetic gives the official 36 (labels + edge) and 39 (+ 3 features)."""
    cfg = PRESETS["pix2pixhd", "cityscapes"]
    assert generator_input_nc(cfg, 35) == 36
    assert generator_input_nc(replace(cfg, instance_feat=True), 35) == 39


def test_cityscapes_preset_equals_official_options() -> None:
    official = json.loads((OPTS / "pix2pixhd.json").read_text())
    cfg = PRESETS["pix2pixhd", "cityscapes"]
    same_name = [
        "netG",
        "ngf",
        "n_downsample_global",
        "n_blocks_global",
        "n_blocks_local",
        "n_local_enhancers",
        "niter_fix_global",
        "norm",
        "no_instance",
        "instance_feat",
        "feat_num",
        "nef",
        "n_downsample_E",
        "ndf",
        "num_D",
        "n_layers_D",
        "lambda_feat",
        "no_ganFeat_loss",
        "no_vgg_loss",
        "lr",
        "beta1",
        "niter",
        "niter_decay",
        "no_flip",
    ]
    for name in same_name:
        assert getattr(cfg, name) == official[name], name
    assert (cfg.load_size, cfg.crop_size, cfg.batch_size) == (official["loadSize"], official["fineSize"], 1)
    assert cfg.preprocess_mode == official["resize_or_crop"] == "scale_width"
    assert cfg.gan_mode == ("original" if official["no_lsgan"] else "ls")


# --- golden forward cases ------------------------------------------------------------------------
def test_golden_discriminator() -> None:
    check_case("pix2pixhd_cityscapes_D", lambda: MultiscaleDiscriminator(39), "netD")


@pytest.mark.slow
def test_golden_generator() -> None:
    check_case("pix2pixhd_cityscapes_G", lambda: GlobalGenerator(36), "netG")


def test_perturbed_weight_fails_golden() -> None:
    """The comparison is sharp: a relative 1e-3 change of one tensor of the full-resolution scale fails it."""
    with pytest.raises(AssertionError):
        check_case(
            "pix2pixhd_cityscapes_D",
            lambda: MultiscaleDiscriminator(39),
            "netD",
            perturb="scale1_layer0.0.weight",
        )


def test_discriminator_order_is_reversed() -> None:
    """result[0] is the full-resolution scale and comes from the highest-numbered modules."""
    torch.manual_seed(0)
    d = MultiscaleDiscriminator(4, ndf=4, n_layers=2, num_D=3)
    x = torch.randn(1, 4, 32, 32)
    out = d(x)
    assert [o[-1].shape[-1] for o in out] == [11, 7, 5]  # full, 1/2, 1/4 resolution
    with torch.no_grad():
        d.scale2_layer0[0].weight.zero_()
    assert not torch.equal(d(x)[0][-1], out[0][-1])
    assert torch.equal(d(x)[1][-1], out[1][-1])


# --- building blocks ---------------------------------------------------------------------------
def test_instance_average_matches_loop_and_has_gradient() -> None:
    torch.manual_seed(0)
    feat = torch.randn(2, 3, 6, 7, requires_grad=True)
    inst = torch.randint(0, 4, (2, 1, 6, 7))
    inst[1] += 1000  # ids need not be small or shared between images
    out = instance_average(feat, inst)
    expected = feat.detach().clone()
    for b in range(2):
        for i in inst[b].unique():
            mask = inst[b, 0] == i
            for c in range(3):
                expected[b, c][mask] = feat[b, c][mask].mean()
    torch.testing.assert_close(out, expected)
    out.sum().backward()
    assert feat.grad is not None and torch.isfinite(feat.grad).all()


def test_local_enhancer_output_size() -> None:
    g = LocalEnhancer(5, ngf=4, n_downsample_global=2, n_blocks_global=1, n_blocks_local=1)
    assert g(torch.randn(1, 5, 32, 48)).shape == (1, 3, 32, 48)


# --- method --------------------------------------------------------------------------------------
SPEC = DatasetSpec.tiny(num_classes=5, image_size=(32, 32))


def tiny_batch(b: int = 2, seed: int = 0, size: int = 32) -> dict:
    g = torch.Generator().manual_seed(seed)
    label = (
        torch.randint(0, 5, (b, 1, 4, 4), generator=g)
        .repeat_interleave(size // 4, 2)
        .repeat_interleave(size // 4, 3)
    )
    label[:, :, :3, :5] = 255  # unlabeled pixels → the dontcare channel
    instance = label * 1000 + torch.randint(0, 3, (b, 1, 1, 1), generator=g)
    image = torch.rand(b, 3, size, size, generator=g) * 2 - 1
    return {"image": image, "label": label, "instance": instance, "id": [str(i) for i in range(b)]}


def tiny(**kw) -> Pix2PixHDMethod:
    torch.manual_seed(0)
    return Pix2PixHDMethod(replace(Pix2PixHDMethod.tiny_config(), contain_dontcare_label=True, **kw), SPEC)


def test_losses_follow_official_weighting() -> None:
    """G_GAN_Feat = Σ_scales Σ_layers L1 · λ_feat · 4/(n_layers_D+1) / num_D; GAN losses sum over scales."""
    m = tiny()
    data = m.prepare(tiny_batch())
    losses = m.generator_loss(data)
    fake = data["_fake"]
    d = m.nets["netD"]
    with torch.no_grad():
        pf = d(torch.cat((data["input_label"], fake), 1))
        pr = d(torch.cat((data["input_label"], data["image"]), 1))
    cfg = m.cfg
    fm = sum(
        F.l1_loss(f, r) * cfg.lambda_feat * 4.0 / (cfg.n_layers_D + 1) / cfg.num_D
        for fs, rs in zip(pf, pr)
        for f, r in zip(fs[:-1], rs[:-1])
    )
    torch.testing.assert_close(losses["G_GAN_Feat"].detach(), fm)
    torch.testing.assert_close(
        losses["G_GAN"].detach(), sum(F.mse_loss(s[-1], torch.ones_like(s[-1])) for s in pf)
    )
    d_losses = m.discriminator_loss(data)
    torch.testing.assert_close(
        d_losses["D_fake"].detach(), 0.5 * sum(F.mse_loss(s[-1], torch.zeros_like(s[-1])) for s in pf)
    )
    assert "_fake" not in data  # consumed: the D step reuses the fake of the G step, as the official forward


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"instance_feat": True, "nef": 4, "n_downsample_E": 2, "gan_mode": "hinge"},
        {"netG": "local", "gan_mode": "original"},
    ],
)
def test_training_step_changes_weights(kw: dict) -> None:
    m = tiny(**kw)
    opts = m.optimizers()
    before = {k: [p.detach().clone() for p in n.parameters()] for k, n in m.nets.items()}
    for it in range(1):
        m.learning_rates(it / 10)
        data = m.prepare(tiny_batch(seed=it))
        for group, fn in (("G", m.generator_loss), ("D", m.discriminator_loss)):
            opts[group].zero_grad(set_to_none=True)
            total = sum(fn(data).values())
            assert torch.isfinite(total)
            total.backward()
            opts[group].step()
    for k, net in m.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters())), k


def test_generate_shape_range_and_batch_independence() -> None:
    m = tiny()
    m.train_mode(False)
    batch = tiny_batch(b=3, seed=4)
    out = m.generate(m.prepare(batch), [0, 1, 2])
    assert out.shape == (3, 3, 32, 32) and out.abs().max() <= 1
    one = {k: v[1:2] for k, v in batch.items()}
    torch.testing.assert_close(m.generate(m.prepare(one), [1]), out[1:2], atol=1e-6, rtol=1e-5)


def test_instance_feat_generation_uses_the_real_image() -> None:
    m = tiny(instance_feat=True, nef=4, n_downsample_E=2)
    assert m.needs_reference_image and m.generator_keys() == ["netG", "netE"]
    m.train_mode(False)
    a, b = tiny_batch(seed=1), tiny_batch(seed=1)
    b["image"] = -a["image"]
    assert not torch.equal(m.generate(m.prepare(a), [0, 1]), m.generate(m.prepare(b), [0, 1]))


def test_learning_rate_decays_linearly_and_global_part_can_be_fixed() -> None:
    m = Pix2PixHDMethod(
        replace(Pix2PixHDMethod.tiny_config(), netG="local", niter=2, niter_decay=4, niter_fix_global=1), SPEC
    )
    assert m.learning_rates(0.5) == {"G": 2e-4, "D": 2e-4}
    assert not any(p.requires_grad for p in m.nets["netG"].model.parameters())
    assert all(p.requires_grad for p in m.nets["netG"].model1_1.parameters())
    assert m.learning_rates(4.0)["G"] == pytest.approx(1e-4)
    assert all(p.requires_grad for p in m.nets["netG"].model.parameters())
    assert m.learning_rates(7.0)["D"] == 0.0


def test_size_not_divisible_is_refused() -> None:
    m = tiny()
    batch = {k: v[..., :30, :32] if k != "id" else v for k, v in tiny_batch().items()}
    with pytest.raises(ConfigError, match="divisible by 4"):
        m.prepare(batch)


def test_synthetic_preset_builds_and_runs() -> None:
    from bench.datasets.synthetic import SYNTHETIC_SPEC

    cfg = PRESETS["pix2pixhd", "synthetic"]
    assert isinstance(cfg, Pix2PixHDConfig) and cfg.no_vgg_loss
    m = Pix2PixHDMethod(cfg, SYNTHETIC_SPEC)
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.rand(2, 3, 64, 64, generator=g) * 2 - 1,
        "label": torch.randint(0, SYNTHETIC_SPEC.num_classes, (2, 1, 64, 64), generator=g),
        "instance": torch.randint(0, 3, (2, 1, 64, 64), generator=g),
    }
    losses = m.generator_loss(m.prepare(batch))
    assert all(torch.isfinite(v) for v in losses.values())


def test_input_follows_the_dataset_channel_order() -> None:
    """A dataset that asks for the official ADE20K order ("other" in channel 0) gets it here too."""
    label = torch.tensor([[0, 3], [255, 4]]).view(1, 1, 2, 2)
    plain = tiny(no_instance=True).input_label(label, None)
    assert plain[0].argmax(0).tolist() == [[0, 3], [5, 4]]
    torch.manual_seed(0)
    spec = replace(SPEC, ignore_index=255, extra={"dontcare_channel_first": True})
    m = Pix2PixHDMethod(replace(Pix2PixHDMethod.tiny_config(), contain_dontcare_label=True, no_instance=True), spec)
    assert m.input_label(label, None)[0].argmax(0).tolist() == [[1, 4], [0, 5]]
