"""OASIS: official keys and goldens, N+1 loss and LabelMix, EMA with BatchNorm re-estimation, seeded noise."""

from __future__ import annotations

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError
from methods.base import PRESETS
from methods.oasis import (
    OASISConfig,
    OASISDiscriminator,
    OASISGenerator,
    OASISMethod,
    class_balancing_weights,
    labelmix_mask,
    n1_cross_entropy,
    semantic_nc,
)
from tests.parity.runner import assert_same_keys, check_case

OPTS = Path(__file__).parent / "official_opts"
# dataset → (classes in our DatasetSpec, generator kwargs); OASIS semantic_nc = 151, 183, 35
DATASETS = {
    "ade20k": (150, {}),
    "coco": (182, {}),
    "cityscapes": (35, {"crop_size": 512, "aspect_ratio": 2.0}),
}


# --- official keys, presets and goldens ----------------------------------------------------------
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_keys_match_official(dataset: str) -> None:
    n_classes, kw = DATASETS[dataset]
    nc = semantic_nc(PRESETS["oasis", dataset], n_classes)
    with torch.device("meta"):  # shapes only
        g, d = OASISGenerator(nc, **kw), OASISDiscriminator(nc)
    assert_same_keys(g, f"OASIS_{dataset}_G")
    assert_same_keys(d, f"OASIS_{dataset}_D")


@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_presets_equal_official_options(dataset: str) -> None:
    official = json.loads((OPTS / f"oasis_{dataset}.json").read_text())
    cfg = PRESETS["oasis", dataset]
    for name in (
        "channels_G",
        "param_free_norm",
        "spade_ks",
        "no_spectral_norm",
        "no_3dnoise",
        "z_dim",
        "no_EMA",
        "EMA_decay",
        "lr_g",
        "lr_d",
        "beta1",
        "beta2",
        "channels_D",
        "add_vgg_loss",
        "lambda_vgg",
        "no_balancing_inloss",
        "no_labelmix",
        "lambda_labelmix",
        "no_flip",
    ):
        assert getattr(cfg, name) == official[name], name
    assert cfg.niter == official["num_epochs"] and cfg.niter_decay == 0
    assert cfg.batch_size == {"ade20k": 32, "coco": 32, "cityscapes": 20}[dataset]  # scripts/train_*.sh
    assert cfg.bn_stat_batches == 50


def test_golden_discriminator() -> None:
    check_case("oasis_ade20k_D", lambda: OASISDiscriminator(151), "netD")


def test_perturbed_weight_fails_golden() -> None:
    with pytest.raises(AssertionError):
        check_case(
            "oasis_ade20k_D", lambda: OASISDiscriminator(151), "netD", perturb="body_up.5.conv_s.weight_orig"
        )


@pytest.mark.slow
@pytest.mark.parametrize(
    "case, nc, kw", [("oasis_ade20k_G", 151, {}), ("oasis_cityscapes_G", 35, DATASETS["cityscapes"][1])]
)
def test_golden_generator(case: str, nc: int, kw: dict) -> None:
    check_case(case, lambda: OASISGenerator(nc, **kw), "netG")


def test_explicit_z_equals_the_official_global_draw() -> None:
    """forward(label) draws torch.randn(B, z_dim) from the global RNG exactly as the official forward."""
    torch.manual_seed(0)
    g = OASISGenerator(5, channels_G=2, spade_hidden=4, crop_size=64, z_dim=3).train()
    g2 = copy.deepcopy(g)  # a forward in train mode updates SN vectors and BN statistics
    label = torch.zeros(2, 5, 64, 64).scatter_(1, torch.randint(0, 5, (2, 1, 64, 64)), 1.0)
    torch.manual_seed(7)
    implicit = g(label)
    torch.manual_seed(7)
    explicit = g2(label, torch.randn(2, 3))
    torch.testing.assert_close(implicit, explicit, rtol=0, atol=0)


# --- losses ------------------------------------------------------------------------------------------
def test_class_balancing_by_hand() -> None:
    # B=1, 1x6 pixels; classes 0 (unknown), 1 (x3), 2 (x1), 3 absent: BHW / (2 present * count)
    ids = torch.tensor([[[0, 0, 1, 1, 1, 2]]])
    w = class_balancing_weights(ids, 4)
    torch.testing.assert_close(w, torch.tensor([[[0.0, 0.0, 1.0, 1.0, 1.0, 3.0]]]))


def test_n1_loss_targets() -> None:
    ids = torch.tensor([[[1, 2], [2, 0]]])
    good_real = torch.full((1, 4, 2, 2), -10.0).scatter_(1, (ids + 1).unsqueeze(1), 10.0)  # class c+1 wins
    good_fake = torch.full((1, 4, 2, 2), -10.0)
    good_fake[:, 0] = 10.0  # channel 0 = fake
    assert n1_cross_entropy(good_real, ids, for_real=True) < 1e-6
    assert n1_cross_entropy(good_real, ids, for_real=False) > 10
    assert n1_cross_entropy(good_fake, ids, for_real=False) < 1e-6
    # the unknown pixel (id 0) carries weight 0 when balanced, 1 otherwise
    bad_unknown = good_real.clone()
    bad_unknown[0, :, 1, 1] = torch.tensor([10.0, -10, -10, -10])
    assert n1_cross_entropy(bad_unknown, ids, for_real=True) < 1e-6
    assert n1_cross_entropy(bad_unknown, ids, for_real=True, balance=False) > 1


def test_labelmix_mask_is_constant_per_class() -> None:
    torch.manual_seed(0)
    ids = torch.randint(0, 6, (3, 8, 8))
    mask = labelmix_mask(ids)
    assert mask.shape == (3, 1, 8, 8)
    for c in range(6):
        assert mask[:, 0][ids == c].unique().numel() == 1
    assert {0.0, 1.0} == set(torch.cat([labelmix_mask(ids).unique() for _ in range(5)]).tolist())


# --- method ------------------------------------------------------------------------------------------
SPEC = DatasetSpec.tiny(num_classes=5, image_size=(64, 64))


def tiny_batch(b: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 5, (b, 1, 4, 4), generator=g).repeat_interleave(16, 2).repeat_interleave(16, 3)
    label[:, :, :5, :7] = 255
    return {
        "image": torch.rand(b, 3, 64, 64, generator=g) * 2 - 1,
        "label": label,
        "id": [str(i) for i in range(b)],
    }


def tiny(**kw) -> OASISMethod:
    torch.manual_seed(0)
    return OASISMethod(replace(OASISMethod.tiny_config(), **kw), SPEC)


def test_label_conventions() -> None:
    label = torch.tensor([[[[0, 4, 255]]]])
    assert tiny().label_ids(label).tolist() == [[[1, 5, 0]]]
    m = OASISMethod.__new__(OASISMethod)  # label_ids only needs cfg and spec
    m.cfg, m.spec = replace(OASISMethod.tiny_config(), label_shift=False), SPEC
    assert m.label_ids(label).tolist() == [[[0, 4, 0]]] and m.semantic_nc == 5


def test_training_step_and_ema() -> None:
    m = tiny(EMA_decay=0.9)
    opts = m.optimizers()
    g0 = [p.detach().clone() for p in m.nets["netG"].parameters()]
    d0 = [p.detach().clone() for p in m.nets["netD"].parameters()]
    ema0 = [p.detach().clone() for p in m.nets["netEMA"].parameters()]
    data = m.prepare(tiny_batch())
    for group, fn in (("G", m.generator_loss), ("D", m.discriminator_loss)):
        opts[group].zero_grad(set_to_none=True)
        losses = fn(data)
        assert all(torch.isfinite(v) for v in losses.values())
        sum(losses.values()).backward()
        opts[group].step()
    assert set(losses) == {"D_fake", "D_real", "D_LabelMix"}
    m.after_step(0)
    g1 = list(m.nets["netG"].parameters())
    assert any(not torch.equal(a, b) for a, b in zip(g0, g1))
    assert any(not torch.equal(a, b) for a, b in zip(d0, m.nets["netD"].parameters()))
    for e0, e1, g in zip(ema0, m.nets["netEMA"].parameters(), g1):
        torch.testing.assert_close(e1, 0.9 * e0 + 0.1 * g.detach())
    assert m.ema_stats_stale and not any(p.requires_grad for p in m.nets["netEMA"].parameters())


def test_before_generate_reestimates_ema_batchnorm_once() -> None:
    m = tiny(bn_stat_batches=3)
    m.train_mode(False)
    bn = m.nets["netEMA"].body[0].norm_0.first_norm
    calls = []
    hook = m.nets["netEMA"].register_forward_hook(lambda *a: calls.append(1))
    before = bn.running_mean.clone()
    m.before_generate([tiny_batch(seed=s) for s in range(5)])
    assert len(calls) == 3 and not torch.equal(before, bn.running_mean)
    assert not m.nets["netEMA"].training  # the caller's eval mode is restored
    m.before_generate([tiny_batch()])
    assert len(calls) == 3  # fresh statistics: nothing to do
    hook.remove()


def test_before_generate_accepts_a_dataset_and_is_reproducible() -> None:
    samples = [
        {k: (v[0] if k != "id" else v[0]) for k, v in tiny_batch(b=1, seed=s).items()} for s in range(4)
    ]

    class DS:
        def __len__(self) -> int:
            return len(samples)

        def __getitem__(self, i: int) -> dict:
            return samples[i]

    stats = []
    for _ in range(2):
        m = tiny(bn_stat_batches=2)
        m.before_generate(DS())
        stats.append(m.nets["netEMA"].body[2].norm_1.first_norm.running_var.clone())
    torch.testing.assert_close(stats[0], stats[1], rtol=0, atol=0)


def test_generate_is_seeded_per_image() -> None:
    m = tiny()
    m.train_mode(False)
    batch = tiny_batch(b=3, seed=3)
    data = m.prepare(batch)
    rng = torch.get_rng_state()
    out = m.generate(data, [10, 11, 12])
    assert torch.equal(rng, torch.get_rng_state())  # never the global RNG
    assert out.shape == (3, 3, 64, 64) and out.abs().max() <= 1
    one = m.prepare({k: v[2:3] for k, v in batch.items()})
    torch.testing.assert_close(
        m.generate(one, [12]), out[2:3], atol=1e-6, rtol=1e-5
    )  # batch-size independent
    torch.testing.assert_close(m.generate(data, [10, 11, 12]), out, rtol=0, atol=0)
    assert not torch.allclose(m.generate(data, [20, 21, 22]), out)  # another seed, another sample
    assert m.stochastic and m.generator_keys() == ["netEMA"]


def test_wrong_size_and_config_are_refused() -> None:
    m = tiny()
    with pytest.raises(ConfigError, match="64x64"):
        m.prepare({k: v[..., :32, :32] if k != "id" else v for k, v in tiny_batch().items()})
    with pytest.raises(ConfigError, match="divisible by 64"):
        OASISConfig(crop_size=96)


def test_synthetic_preset_runs_a_step() -> None:
    from bench.datasets.synthetic import SYNTHETIC_SPEC

    m = OASISMethod(PRESETS["oasis", "synthetic"], SYNTHETIC_SPEC)
    g = torch.Generator().manual_seed(0)
    batch = {
        "image": torch.rand(2, 3, 64, 64, generator=g) * 2 - 1,
        "label": torch.randint(0, SYNTHETIC_SPEC.num_classes, (2, 1, 64, 64), generator=g),
    }
    assert all(torch.isfinite(v) for v in m.discriminator_loss(m.prepare(batch)).values())
