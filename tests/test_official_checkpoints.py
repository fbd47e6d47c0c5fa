"""Official checkpoint files (SPADE, pix2pixHD, OASIS) and sisbench checkpoints load strictly, or fail in one line."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.checkpoint_io import save_checkpoint
from bench.datasets.spec import DatasetSpec
from bench.errors import CheckpointError
from methods.base import PRESETS
from methods.checkpoints import load_official
from methods.oasis import OASISMethod
from methods.pix2pixhd import Pix2PixHDMethod
from methods.spade import SPADEMethod
from tests.parity.fill import fill_

SPEC = DatasetSpec.tiny(num_classes=5, image_size=(32, 32))


def build(cls, cfg=None, spec=SPEC, seed: int = 0):
    torch.manual_seed(seed)
    return cls(cfg or cls.tiny_config(), spec)


def filled(cls, net: str, cfg=None, spec=SPEC):
    """A method whose ``net`` holds the parity fill (distinct from any fresh init)."""
    m = build(cls, cfg, spec, seed=1)
    fill_(m.nets[net].state_dict())
    return m


def assert_same_state(a: torch.nn.Module, b: torch.nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k


def test_spade_pretrained_generator(tmp_path: Path) -> None:
    src = filled(SPADEMethod, "netG")
    path = tmp_path / "ade20k_pretrained" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(src.nets["netG"].state_dict(), path)
    dst = build(SPADEMethod)
    report = load_official(dst, path)
    assert (
        report["format"] == "official" and report["nets"] == ["netG"] and not report["stripped_module_prefix"]
    )
    assert_same_state(dst.nets["netG"], src.nets["netG"])


def test_dataparallel_prefix_is_removed(tmp_path: Path) -> None:
    src = filled(Pix2PixHDMethod, "netG")
    path = tmp_path / "latest_net_G.pth"
    torch.save(OrderedDict(("module." + k, v) for k, v in src.nets["netG"].state_dict().items()), path)
    dst = build(Pix2PixHDMethod)
    assert load_official(dst, path)["stripped_module_prefix"]
    assert_same_state(dst.nets["netG"], src.nets["netG"])


def test_pix2pixhd_local_enhancer_and_its_hint(tmp_path: Path) -> None:
    local = replace(Pix2PixHDMethod.tiny_config(), netG="local", ngf=4)
    src = filled(Pix2PixHDMethod, "netG", local)
    path = tmp_path / "label2city_1024p" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(src.nets["netG"].state_dict(), path)
    dst = build(Pix2PixHDMethod, local)
    load_official(dst, path)
    assert_same_state(dst.nets["netG"], src.nets["netG"])
    with pytest.raises(CheckpointError, match="LocalEnhancer: --set netG=local --set ngf=4") as e:
        load_official(build(Pix2PixHDMethod), path)
    assert "\n" not in str(e.value)


def test_oasis_ema_generator_and_discriminator_files(tmp_path: Path) -> None:
    models = tmp_path / "oasis_ade20k_pretrained" / "models"
    models.mkdir(parents=True)
    src = filled(OASISMethod, "netEMA")
    fill_(src.nets["netD"].state_dict())
    torch.save(src.nets["netEMA"].state_dict(), models / "best_EMA.pth")
    torch.save(src.nets["netD"].state_dict(), models / "best_D.pth")
    dst = build(OASISMethod)
    g_before = {k: v.clone() for k, v in dst.nets["netG"].state_dict().items()}
    report = load_official(dst, models / "best_EMA.pth")
    assert report["nets"] == ["netEMA"] and report["copied_to"] == []
    assert_same_state(dst.nets["netEMA"], src.nets["netEMA"])
    assert all(torch.equal(v, dst.nets["netG"].state_dict()[k]) for k, v in g_before.items())
    assert dst.ema_stats_stale is False  # released EMA files hold re-estimated BatchNorm statistics
    assert load_official(dst, models / "best_D.pth")["nets"] == ["netD"]
    assert_same_state(dst.nets["netD"], src.nets["netD"])


def test_oasis_generator_file_also_fills_the_ema(tmp_path: Path) -> None:
    src = filled(OASISMethod, "netG")
    path = tmp_path / "latest_G.pth"
    torch.save(src.nets["netG"].state_dict(), path)
    dst = build(OASISMethod)
    assert load_official(dst, path)["copied_to"] == ["netEMA"]
    assert_same_state(dst.nets["netG"], src.nets["netG"])
    assert_same_state(dst.nets["netEMA"], src.nets["netG"])


def test_unnamed_file_is_assigned_by_its_keys(tmp_path: Path) -> None:
    src = filled(Pix2PixHDMethod, "netD")
    path = tmp_path / "weights.pth"
    torch.save(src.nets["netD"].state_dict(), path)
    dst = build(Pix2PixHDMethod)
    assert load_official(dst, path)["nets"] == ["netD"]
    assert_same_state(dst.nets["netD"], src.nets["netD"])


def test_sisbench_checkpoint(tmp_path: Path) -> None:
    src = filled(OASISMethod, "netG")
    fill_(src.nets["netEMA"].state_dict())
    path = save_checkpoint(
        tmp_path / "latest.pth",
        {"method": "oasis", "dataset": "tiny", "nets": {k: v.state_dict() for k, v in src.nets.items()}},
    )
    dst = build(OASISMethod)
    report = load_official(dst, path)
    assert report["format"] == "sisbench" and sorted(report["nets"]) == ["netD", "netEMA", "netG"]
    for k in src.nets:
        assert_same_state(dst.nets[k], src.nets[k])
    assert dst.ema_stats_stale  # our checkpoints keep EMA'd statistics until before_generate
    with pytest.raises(CheckpointError, match="method 'oasis', not 'spade'"):
        load_official(build(SPADEMethod), path)


def test_legacy_spectral_norm_layout_is_converted(tmp_path: Path) -> None:
    """PyTorch < 1.0 files hold ``weight_orig``, ``weight_u`` and the normalised ``weight`` but no ``weight_v``
    (and no BatchNorm ``num_batches_tracked``); torch's load hooks rebuild them and the output is unchanged."""
    cfg = replace(
        SPADEMethod.tiny_config(), ngf=2, spade_hidden=4
    )  # the hook solves one small system per SN conv
    src = build(SPADEMethod, cfg, seed=3)
    g = src.nets["netG"]
    sem = torch.zeros(2, 5, 32, 32).scatter_(1, torch.randint(0, 5, (2, 1, 32, 32)), 1.0)
    with torch.no_grad():
        g.train()(sem)  # power iterations: u, v and the derived weights as a trained file has them
    legacy = {}
    for k, v in g.state_dict().items():
        if k.endswith("weight_v") or k.endswith("num_batches_tracked"):
            continue
        legacy[k] = v.clone()
    sn_modules = [n for n, m in g.named_modules() if hasattr(m, "weight_orig")]
    assert sn_modules
    for name in sn_modules:
        legacy[f"{name}.weight"] = g.get_submodule(name).weight.detach().clone()
    path = tmp_path / "latest_net_G.pth"
    torch.save(legacy, path)  # a plain dict: no spectral-norm version metadata, as the old files
    dst = build(SPADEMethod, cfg)
    report = load_official(dst, path)
    assert report["legacy_spectral_norm"] == len(sn_modules)
    g.eval(), dst.nets["netG"].eval()
    with torch.no_grad():
        torch.testing.assert_close(dst.nets["netG"](sem), g(sem), rtol=1e-4, atol=1e-5)


def test_wrong_dataset_gives_one_line(tmp_path: Path) -> None:
    """A Cityscapes SPADE generator (35 labelIds + edge = 36 channels) loaded into an ADE20K config (151)."""
    small = dict(ngf=4, spade_hidden=8, ndf=4, crop_size=64, load_size=64)
    cityscapes = DatasetSpec(
        name="cityscapes", class_names=tuple(f"c{i}" for i in range(35)), has_instances=True
    )
    ade20k = DatasetSpec(name="ade20k", class_names=tuple(f"c{i}" for i in range(150)))
    src = filled(SPADEMethod, "netG", replace(PRESETS["spade", "cityscapes"], **small), cityscapes)
    path = tmp_path / "cityscapes_pretrained" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(src.nets["netG"].state_dict(), path)
    dst = build(SPADEMethod, replace(PRESETS["spade", "ade20k"], **small), ade20k)
    with pytest.raises(CheckpointError) as e:
        load_official(dst, path)
    msg = str(e.value)
    assert "\n" not in msg
    for part in (
        "0 missing keys",
        "0 unexpected",
        "another shape",
        "'ade20k'",
        "semantic_nc 151",
        "take 36 label channels",
        "--dataset",
    ):
        assert part in msg, (part, msg)


def test_missing_and_unexpected_keys_are_listed(tmp_path: Path) -> None:
    src = filled(SPADEMethod, "netG")
    sd = src.nets["netG"].state_dict()
    sd["extra.weight"] = torch.zeros(1)
    del sd["conv_img.bias"]
    path = tmp_path / "latest_net_G.pth"
    torch.save(sd, path)
    with pytest.raises(
        CheckpointError, match=r"1 missing keys \(conv_img.bias\), 1 unexpected \(extra.weight\)"
    ):
        load_official(build(SPADEMethod), path)


def test_refused_files(tmp_path: Path) -> None:
    m = build(SPADEMethod)
    enc = tmp_path / "latest_net_E.pth"
    torch.save({"layer1.0.weight": torch.zeros(1)}, enc)
    with pytest.raises(CheckpointError, match="holds netE"):
        load_official(m, enc)
    junk = tmp_path / "junk.pth"
    torch.save({"epoch": 3}, junk)
    with pytest.raises(CheckpointError, match="not a state_dict"):
        load_official(m, junk)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        load_official(m, tmp_path / "absent.pth")
