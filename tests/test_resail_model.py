"""RESAIL networks: official keys/shapes and golden cases; the method's training and generation."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.datasets.spec import DatasetSpec
from methods.base import PRESETS
from methods.resail.model import (
    SIN,
    RESAILConfig,
    RESAILGenerator,
    RESAILMethod,
    SesameMultiscaleDiscriminator,
    class_balanced_ce,
    semantic_nc,
)
from methods.resail.retrieval import build_database
from tests.parity.runner import assert_same_keys, check_case
from tests.test_resail_retrieval import THING, blob_label, blob_samples

OPTS = Path(__file__).parent / "official_opts"

# settings.sh: ade20k --label_nc 151 (no dontcare), coco --label_nc 183 + dontcare, cityscapes 35, all
# --no_instance; cityscapes is 512x256 with 'more' upsampling.
G_BUILDERS = {
    "ade20k": lambda: RESAILGenerator(151),
    "coco": lambda: RESAILGenerator(184),
    "cityscapes": lambda: RESAILGenerator(35, crop_size=512, aspect_ratio=2.0, num_upsampling_layers="more"),
}
D_BUILDERS = {
    "ade20k": lambda: SesameMultiscaleDiscriminator(154),
    "coco": lambda: SesameMultiscaleDiscriminator(187),
    "cityscapes": lambda: SesameMultiscaleDiscriminator(38),
}


@pytest.mark.parametrize("config", sorted(G_BUILDERS))
def test_generator_keys_match_official(config: str) -> None:
    assert_same_keys(G_BUILDERS[config](), f"RESAIL_{config}_G")


@pytest.mark.parametrize("config", sorted(D_BUILDERS))
def test_discriminator_keys_match_official(config: str) -> None:
    assert_same_keys(D_BUILDERS[config](), f"RESAIL_{config}_D")


def test_discriminator_golden_case() -> None:
    check_case("resail_ade20k_D", D_BUILDERS["ade20k"], "netD")  # the file's looser atol (2e-3)


def test_discriminator_perturbed_weight_fails_golden() -> None:
    with pytest.raises(AssertionError):
        check_case("resail_ade20k_D", D_BUILDERS["ade20k"], "netD", perturb="discriminator_1.sem_sequence.0.0.weight")


@pytest.mark.slow
def test_generator_golden_case() -> None:
    check_case("resail_ade20k_G", G_BUILDERS["ade20k"], "netG")


@pytest.mark.slow
def test_generator_perturbed_weight_fails_golden() -> None:
    with pytest.raises(AssertionError):
        check_case("resail_ade20k_G", G_BUILDERS["ade20k"], "netG", perturb="up_1.conv_0.weight_orig")


def test_sin_uses_guidance_and_label_map() -> None:
    torch.manual_seed(0)
    sin = SIN(8, 5, hidden=8, style_length=4, param_free_norm="instance", conv_s_padding=1)
    with torch.no_grad():
        sin.conv_gamma.weight.normal_()
    x = torch.randn(2, 8, 6, 6)
    seg = torch.zeros(2, 5, 12, 12)
    seg[:, 1] = 1
    g = torch.rand(2, 3, 12, 12)
    base = sin(x, seg, g)
    assert not torch.allclose(base, sin(x, seg, torch.rand(2, 3, 12, 12)))
    seg2 = torch.zeros_like(seg)
    seg2[:, 2] = 1
    assert not torch.allclose(base, sin(x, seg2, g))
    with torch.no_grad():  # blending toward SPADE only: the guidance no longer matters
        sin.blending_gamma.fill_(-1e4)
        sin.blending_beta.fill_(-1e4)
    assert torch.allclose(sin(x, seg, g), sin(x, seg, torch.rand(2, 3, 12, 12)))


def test_generator_output_depends_on_the_guidance(one_thread) -> None:
    torch.manual_seed(0)
    g = RESAILGenerator(6, ngf=4, spade_hidden=8, style_length=4, crop_size=64, conv_s_padding=1).train()
    seg = torch.zeros(2, 6, 64, 64)
    seg[:, 1] = 1
    a = g(seg, params={"retrieval_image": torch.rand(2, 3, 64, 64)})
    b = g(seg, guidance=torch.rand(2, 3, 64, 64))
    assert a.shape == (2, 3, 64, 64) and (a - b).abs().mean() > 1e-3 * a.abs().mean()


def test_config_checks() -> None:
    with pytest.raises(ValueError, match="conv_s_padding"):
        RESAILConfig(crop_size=64, load_size=64)  # 2x2 first map, official conv_s padding 0
    with pytest.raises(ValueError, match="use_vae"):
        RESAILConfig(use_vae=True)
    RESAILConfig(crop_size=64, load_size=64, conv_s_padding=1)


def test_presets_follow_the_official_settings() -> None:
    ade = DatasetSpec(name="ade20k", class_names=tuple(f"c{i}" for i in range(150)))
    coco = DatasetSpec(name="coco", class_names=tuple(f"c{i}" for i in range(182)))
    city = DatasetSpec(name="cityscapes", class_names=tuple(f"c{i}" for i in range(35)), ignore_index=None)
    for name, spec, manifest in (("ade20k", ade, "ade20k"), ("coco", coco, "coco"), ("cityscapes", city, "cityscapes")):
        cfg = PRESETS["resail", name]
        official = json.loads((Path(__file__).parent / "parity" / "manifests" / f"RESAIL_{manifest}_G.json").read_text())
        opts = official["options"]
        # ade20k: official label_nc 151 counts "other" (0) as a class; ours maps unlabeled to a dontcare channel
        assert semantic_nc(cfg, spec.num_classes) == opts["semantic_nc"], name
        for key in ("crop_size", "aspect_ratio", "num_upsampling_layers", "no_instance", "ngf", "ndf", "num_D",
                    "n_layers_D", "lambda_feat", "lambda_vgg", "niter", "niter_decay", "lr", "load_size",
                    "preprocess_mode", "beta1", "beta2", "no_TTUR"):
            assert getattr(cfg, key) == opts[key], (name, key)
        assert cfg.batch_size == opts["batchSize"] and cfg.topk == opts["topk"]
    assert json.loads((OPTS / "resail_ade20k.json").read_text())["topk"] == PRESETS["resail", "ade20k"].topk


def test_class_balanced_ce_weights_classes_equally() -> None:
    label = torch.zeros(1, 1, 2, 4, dtype=torch.long)
    label[0, 0, 0, 0] = 1  # class 1: 1 px, class 0: 6 px, one unlabeled
    label[0, 0, 1, 3] = 255
    logits = torch.zeros(1, 3, 2, 4)
    logits[:, 1] = 2.0  # wrong for class-0 pixels, right for the class-1 pixel
    ce = torch.nn.functional.cross_entropy(logits, label[:, 0].clamp(max=2), reduction="none")
    # weight: 7 labeled px / (2 classes x count) → class 0: 7/12, class 1: 7/2; mean over all 8 px
    want = (ce[0, 0, 0] * 7 / 2 + ce[0][label[0, 0] == 0].sum() * 7 / 12) / 8
    assert torch.allclose(class_balanced_ce(logits, label, 255), want)


# --- the method ------------------------------------------------------------------------------------


@pytest.fixture
def one_thread(_isolated_threads: None):  # noqa: ANN201
    """The tiny networks run faster on one thread: their many small ops gain nothing from a second one,
    and on a busy 2-core machine two threads were measured 15x slower (spinning OpenMP workers)."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


SIZE = 64  # the smallest crop SIN supports (a 2x2 first feature map)
SPEC = DatasetSpec(name="blobs", class_names=tuple(f"c{i}" for i in range(6)), native_size=(SIZE, SIZE),
                   has_instances=True, thing_classes=(THING,))


def _cfg(**kw) -> RESAILConfig:
    base = dataclasses.replace(RESAILMethod.tiny_config(), contain_dontcare_label=True)
    return dataclasses.replace(base, **kw)


def _batch(samples: list[dict], paths: list[str] | None = None) -> dict:
    out = {k: torch.stack([s[k] for s in samples]) for k in ("image", "label", "instance")}
    out["id"] = [s["id"] for s in samples]
    out["path"] = paths or [f"/nowhere/{s['id']}.png" for s in samples]
    return out


@pytest.fixture(scope="module")
def database():
    return build_database(blob_samples(24, size=SIZE), thing_classes=(THING,), ignore_index=255, k=3, progress=False)


def _method(database, **kw) -> RESAILMethod:
    torch.manual_seed(0)
    m = RESAILMethod(_cfg(**kw), SPEC)
    m.database = database
    return m


def test_training_steps_are_finite_and_update_both_networks(database, one_thread) -> None:
    m = _method(database)
    opt = m.optimizers()
    m.train_mode(True)
    before = {k: [p.detach().clone() for p in net.parameters()] for k, net in m.nets.items()}
    names = set()
    for it in range(2):
        data = m.prepare(_batch(blob_samples(2, seed=it + 50, size=SIZE)))
        assert data["guidance"].shape == data["distorted"].shape == (2, 3, SIZE, SIZE)
        assert data["guidance"].abs().max() <= 1 and not torch.equal(data["guidance"], data["distorted"])
        for group, fn in (("G", m.generator_loss), ("D", m.discriminator_loss)):
            opt[group].zero_grad()
            losses = fn(data)
            names |= set(losses)
            total = sum(losses.values())
            assert torch.isfinite(total)
            total.backward()
            opt[group].step()
    assert {"GAN", "GAN_Feat", "GAN_for_retrieval_instance", "D_Fake", "D_real", "D_Fake_for_retrieval"} <= names
    for k, net in m.nets.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], net.parameters())), k


def test_retrieval_loss_can_be_turned_off(database, one_thread) -> None:
    m = _method(database, no_retrieval_loss=True)
    m.train_mode(True)
    data = m.prepare(_batch(blob_samples(2, seed=3, size=SIZE)))
    assert set(m.generator_loss(data)) == {"GAN", "GAN_Feat"}
    assert set(m.discriminator_loss(data)) == {"D_Fake", "D_real"}


def test_segloss_needs_a_segmenter_and_then_adds_a_term(database, one_thread) -> None:
    from bench.errors import ConfigError

    m = _method(database, segloss=True)
    m.train_mode(True)
    data = m.prepare(_batch(blob_samples(2, seed=3, size=SIZE)))
    with pytest.raises(ConfigError, match="set_segmenter"):
        m.generator_loss(data)
    m.set_segmenter(torch.nn.Conv2d(3, 6, 1))
    losses = m.generator_loss(data)
    assert torch.isfinite(losses["GAN_seg_loss_1"]) and torch.isfinite(losses["GAN_seg_loss_retrieval"])


def test_generate_is_batch_size_independent_and_uses_on_the_fly_guidance(database, one_thread) -> None:
    m = _method(database)
    m.train_mode(False)
    samples = blob_samples(3, seed=77, size=SIZE)  # label maps that are not in the database
    batch = _batch(samples)
    data = m.prepare(batch)
    assert "distorted" not in data  # evaluation needs no real image
    out = m.generate(data, [0, 1, 2])
    assert out.shape == (3, 3, SIZE, SIZE) and out.abs().max() <= 1
    single = m.generate(m.prepare(_batch(samples[1:2])), [1])
    assert torch.allclose(out[1:2], single, atol=1e-5)
    # an edited map: the painted region changes the guidance, hence the image
    label = samples[0]["label"].clone()
    label[0, 5:25, 5:25] = 3
    edited = m.prepare(_batch([{**samples[0], "label": label}]))
    assert not torch.equal(edited["guidance"][0], data["guidance"][0])


def test_training_batch_cannot_retrieve_its_own_image(database, tmp_path, one_thread) -> None:
    m = _method(database)
    database.meta["root"] = str(tmp_path.resolve())
    (tmp_path / "train_label").mkdir(exist_ok=True)
    samples = blob_samples(24, size=SIZE)[:2]  # the database's own first two images
    own = _batch(samples, [str(tmp_path / "train_label" / f"{s['id']}.png") for s in samples])
    other = _batch(samples)
    _, r_own = m.retrieve(own)
    _, r_other = m.retrieve(other)
    for i in range(2):
        assert not np.isin(database.image_index[r_own[i].matches[r_own[i].matches >= 0]], [i]).any()
        assert np.isin(database.image_index[r_other[i].matches[:, 0]], [i]).any()  # finds itself when not excluded
    del database.meta["root"]


def test_database_is_found_from_the_batch_paths(tmp_path, bench_cache, one_thread) -> None:
    from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
    from bench.datasets.transforms import Preprocess

    root = write_synthetic(tmp_path / "syn", n_train=4, n_val=2, workers=1)
    cfg = dataclasses.replace(RESAILMethod.tiny_config(), topk=2, contain_dontcare_label=True)
    m = RESAILMethod(cfg, SYNTHETIC_SPEC)
    val = open_split(SYNTHETIC_SPEC, root, "val", Preprocess.fixed((64, 64)))
    batch = _batch([val[0], val[1]], [val[0]["path"], val[1]["path"]])
    m.train_mode(False)
    data = m.prepare(batch)
    assert m.database is not None and len(m.database.sources) == 4 and data["guidance"].shape == (2, 3, 64, 64)
    fresh = RESAILMethod(cfg, SYNTHETIC_SPEC)
    fresh.train_mode(False)
    from bench.errors import ConfigError

    with pytest.raises(ConfigError, match="database_root"):
        fresh.prepare(_batch(blob_samples(1, size=SIZE)))  # an arbitrary label map and no database
    fresh.before_generate(val)  # what `bench generate` calls: the dataset's root gives the database
    out = fresh.generate(fresh.prepare(_batch(blob_samples(1, size=SIZE))), [0])
    assert fresh.database is not None and out.shape == (1, 3, 64, 64)


def test_blob_maps_have_things_and_stuff() -> None:
    label, inst = blob_label(np.random.default_rng(0))
    assert (label == THING).any() and inst.max() >= 1 and (label <= 1).any()
