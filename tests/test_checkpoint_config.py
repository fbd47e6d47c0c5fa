"""Checkpoints carry their config: generate needs no --set, --set is an override checked against the checkpoint,
official opt.txt/opt.pkl files are read (a hostile pickle refused without running it)."""

from __future__ import annotations

import argparse
import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench import api
from bench.checkpoint_config import resolve_checkpoint, spec_identity
from bench.checkpoint_io import load_checkpoint, save_checkpoint
from bench.cli import cli
from bench.datasets import SYNTHETIC_SPEC, write_synthetic
from bench.errors import CheckpointError
from methods.checkpoints import find_option_file, load_opt_pkl, parse_opt_txt, read_official_options
from methods.spade import SPADEConfig, SPADEMethod

TINY = {"max_iters": "1", "ngf": "2", "spade_hidden": "4", "ndf": "2", "batch_size": "2", "crop_size": "32",
        "load_size": "32"}


def _flags(values: dict[str, str]) -> list[str]:
    return [x for k, v in values.items() for x in ("--set", f"{k}={v}")]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=64, n_train=2, n_val=3, seed=5, workers=1)


@pytest.fixture(scope="module")
def spade_ckpt(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("spade")
    return api.train("spade", "synthetic", out, data_root=tree, overrides=TINY, device="cpu", progress=False).checkpoint


def _generate(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["generate", "--device", "cpu", *args])


def _images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


# --- sisbench checkpoints ----------------------------------------------------------------------------
def test_checkpoint_stores_config_and_dataset_identity(spade_ckpt: Path) -> None:
    data = load_checkpoint(spade_ckpt)
    assert data["config"]["ngf"] == 2 and data["config"]["crop_size"] == 32
    assert data["dataset_spec"] == spec_identity(SYNTHETIC_SPEC)
    assert data["dataset_spec"]["num_classes"] == 8 and data["dataset_spec"]["ignore_index"] == 255
    assert data["classes"] == list(SYNTHETIC_SPEC.class_names)


def test_no_set_flags_equal_the_training_flags(spade_ckpt: Path, tree: Path, tmp_path: Path) -> None:
    plain = _generate("--checkpoint", str(spade_ckpt), "--data-root", str(tree), "--out", str(tmp_path / "a"))
    assert plain.exit_code == 0, plain.output
    flagged = _generate("--method", "spade", "--dataset", "synthetic", "--checkpoint", str(spade_ckpt), "--data-root",
                        str(tree), "--out", str(tmp_path / "b"), *_flags(TINY))
    assert flagged.exit_code == 0, flagged.output
    a, b = _images(tmp_path / "a"), _images(tmp_path / "b")
    assert sorted(a) == ["val_00000.png", "val_00001.png", "val_00002.png"]
    assert all(img.shape == (32, 32, 3) for img in a.values())  # the checkpoint's crop_size, not the preset's 64
    assert all(np.array_equal(a[k], b[k]) for k in a)


def test_shape_changing_override_refused_in_one_line(spade_ckpt: Path, tree: Path, tmp_path: Path) -> None:
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--data-root", str(tree), "--out",
                                     str(tmp_path / "o"), "--set", "ngf=4"))
    assert "--set ngf=4 changes the networks" in line and "trained with ngf=2" in line and "netG." in line
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--data-root", str(tree), "--out",
                                     str(tmp_path / "o"), "--set", "no_instance=true"))
    assert "no_instance" in line and "input channels" in line
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").glob("*.png"))


def test_method_and_dataset_checked_against_the_checkpoint(spade_ckpt: Path, tree: Path, tmp_path: Path) -> None:
    line = _one_line_error(_generate("--method", "oasis", "--checkpoint", str(spade_ckpt), "--out", str(tmp_path / "o")))
    assert "for method 'spade', not 'oasis'" in line
    line = _one_line_error(_generate("--dataset", "cityscapes", "--checkpoint", str(spade_ckpt), "--out",
                                     str(tmp_path / "o")))
    assert "trained on dataset 'synthetic' with 8 classes" in line and "35 classes" in line


def test_unregistered_dataset_uses_the_stored_classes(spade_ckpt: Path, tmp_path: Path) -> None:
    data = load_checkpoint(spade_ckpt)
    data["dataset"] = "my-scenes"
    data["dataset_spec"] = {**data["dataset_spec"], "name": "my-scenes"}
    moved = save_checkpoint(tmp_path / "moved.pth", {k: v for k, v in data.items() if k not in ("format", "version")})
    rc = resolve_checkpoint(moved)
    assert rc.spec.name == "my-scenes" and rc.spec.class_names == SYNTHETIC_SPEC.class_names
    assert rc.cfg.ngf == 2 and rc.format == "sisbench"


# --- the load_size-only difference (the size of the generated images) --------------------------------
@pytest.fixture(scope="module")
def p2p_ckpt(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    # pix2pixHD is fully convolutional: its output follows the input, so the resize decides the image size
    out = tmp_path_factory.mktemp("p2p")
    overrides = {"max_iters": "1", "ngf": "4", "n_downsample_global": "2", "n_blocks_global": "1", "ndf": "4",
                 "n_layers_D": "2", "batch_size": "2", "preprocess_mode": "scale_width", "load_size": "32",
                 "crop_size": "32"}
    return api.train("pix2pixhd", "synthetic", out, data_root=tree, overrides=overrides, device="cpu",
                     progress=False).checkpoint


def test_load_size_only_difference_uses_the_checkpoints(p2p_ckpt: Path, tree: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    # the synthetic preset would resize to 64 (load_size 64): before, that gave 64x64 images with exit 0
    result = _generate("--checkpoint", str(p2p_ckpt), "--data-root", str(tree), "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    assert {img.shape for img in _images(tmp_path / "a").values()} == {(32, 32, 3)}
    with caplog.at_level(logging.WARNING):
        result = _generate("--checkpoint", str(p2p_ckpt), "--data-root", str(tree), "--out", str(tmp_path / "b"),
                           "--set", "load_size=64")
    assert result.exit_code == 0, result.output
    assert {img.shape for img in _images(tmp_path / "b").values()} == {(64, 64, 3)}
    assert any("overrides the checkpoint's configuration: load_size 32 -> 64" in r.getMessage() for r in caplog.records)


# --- official checkpoints: opt.txt / opt.pkl -------------------------------------------------------------
SPADE_OPT_TXT = """----------------- Options ---------------
             aspect_ratio: 1.0
                batchSize: 4                             \t[default: 1]
                     name: label2coco                    \t[default: label2coco]
                      ngf: 2                             \t[default: 64]
                   norm_G: spectralspadebatch3x3         \t[default: spectralinstance]
               no_instance: False
             spade_hidden: 4
                 gpu_ids: 0,1                           \t[default: 0]
                  which_epoch: latest
                    z_dim: 256
           init_variance: 0.02
                     lr: 0.0002
----------------- End -------------------
"""


def test_parse_opt_txt_both_official_formats() -> None:
    spade = parse_opt_txt(SPADE_OPT_TXT)
    assert spade["batchSize"] == 4 and spade["ngf"] == 2 and spade["no_instance"] is False
    assert spade["norm_G"] == "spectralspadebatch3x3" and spade["name"] == "label2coco"
    assert spade["lr"] == 0.0002 and spade["which_epoch"] == "latest" and "Options" not in spade
    p2p = parse_opt_txt("------------ Options -------------\nbatchSize: 1\nfineSize: 512\nlabel_nc: 35\n"
                        "resize_or_crop: scale_width\ninstance_feat: False\nload_features: None\n")
    assert p2p == {"batchSize": 1, "fineSize": 512, "label_nc": 35, "resize_or_crop": "scale_width",
                   "instance_feat": False, "load_features": None}


@pytest.mark.parametrize("protocol", [0, 2, pickle.HIGHEST_PROTOCOL])
def test_opt_pkl_namespace_loads(tmp_path: Path, protocol: int) -> None:
    path = tmp_path / "opt.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(ngf=32, norm_G="spectralspadesyncbatch3x3", gpu_ids=[0, 1],
                                                     no_instance=True, crop=(256, 256)), protocol=protocol))
    assert load_opt_pkl(path) == {"ngf": 32, "norm_G": "spectralspadesyncbatch3x3", "gpu_ids": [0, 1],
                                  "no_instance": True, "crop": (256, 256)}


class _Evil:
    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):  # noqa: ANN204
        return (os.system, (f"touch {self.target}",))


class _EvalEvil:
    def __reduce__(self):  # noqa: ANN204
        return (eval, ("__import__('os').getcwd()",))


def test_malicious_opt_pkl_refused_without_running(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    path = tmp_path / "opt.pkl"
    path.write_bytes(pickle.dumps(argparse.Namespace(ngf=_Evil(str(marker)))))
    with pytest.raises(CheckpointError) as e:
        load_opt_pkl(path)
    msg = str(e.value)
    assert "refused to unpickle" in msg and ("posix.system" in msg or "os.system" in msg or "nt.system" in msg)
    assert "\n" not in msg and not marker.exists()
    path.write_bytes(pickle.dumps(_EvalEvil()))
    with pytest.raises(CheckpointError, match="builtins.eval"):
        load_opt_pkl(path)
    path.write_bytes(pickle.dumps(torch.nn.Identity()))  # a class of a library: refused too
    with pytest.raises(CheckpointError, match="refused to unpickle"):
        load_opt_pkl(path)


def test_option_file_beside_or_above_models(tmp_path: Path) -> None:
    (tmp_path / "run" / "models").mkdir(parents=True)
    (tmp_path / "run" / "opt.txt").write_text("channels_G: 16\n")
    assert find_option_file(tmp_path / "run" / "models" / "best_EMA.pth") == tmp_path / "run" / "opt.txt"
    (tmp_path / "run" / "models" / "opt.pkl").write_bytes(pickle.dumps(argparse.Namespace(channels_G=8)))
    opts = read_official_options(tmp_path / "run" / "models" / "best_EMA.pth")
    assert opts is not None and opts.values == {"channels_G": 8}
    assert find_option_file(tmp_path / "elsewhere.pth") is None


@pytest.fixture(scope="module")
def official(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bare SPADE state_dict as the official code saves it, trained with the options of SPADE_OPT_TXT."""
    folder = tmp_path_factory.mktemp("label2coco")
    cfg = SPADEConfig(preprocess_mode="fixed", load_size=64, crop_size=64, ngf=2, spade_hidden=4,
                      param_free_norm="batch", no_instance=False)
    model = SPADEMethod(cfg, SYNTHETIC_SPEC, seed=3)
    torch.save(model.nets["netG"].state_dict(), folder / "latest_net_G.pth")
    return folder / "latest_net_G.pth"


def test_official_checkpoint_reads_opt_txt_and_reports_mismatches(official: Path, tree: Path, tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    args = ["--method", "spade", "--dataset", "synthetic", "--checkpoint", str(official), "--data-root", str(tree)]
    without = _generate(*args, "--out", str(tmp_path / "a"))  # the preset (ngf 8) does not fit the file
    assert "does not fit" in _one_line_error(without)
    (official.parent / "opt.txt").write_text(SPADE_OPT_TXT)
    try:
        with caplog.at_level(logging.WARNING):
            result = _generate(*args, "--out", str(tmp_path / "b"))
        assert result.exit_code == 0, result.output
        warnings = [r.getMessage() for r in caplog.records if "opt.txt differs from sisbench's spade/synthetic preset"
                    in r.getMessage()]
        assert len(warnings) == 1, [r.getMessage() for r in caplog.records]
        assert "ngf=2 (preset 8)" in warnings[0] and "spade_hidden=4 (preset 16)" in warnings[0]
        assert "batch_size=4 (preset 8)" in warnings[0] and "spectral_G" not in warnings[0]  # both spectral
        assert len(_images(tmp_path / "b")) == 3
        line = _one_line_error(_generate("--checkpoint", str(official), "--out", str(tmp_path / "c")))
        assert "official checkpoint" in line and "--method and --dataset" in line
    finally:
        (official.parent / "opt.txt").unlink()
