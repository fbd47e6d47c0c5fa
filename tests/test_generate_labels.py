"""Labels-only generation: `bench generate --checkpoint C --labels DIR` synthesises a folder of label maps with no
photos and no split; training data only where a method needs it (OASIS statistics, RESAIL's database, SEAN's
style), each said in one line."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench import api
from bench.checkpoint_io import save_checkpoint
from bench.cli import cli
from bench.datasets import SYNTHETIC_SPEC, write_synthetic
from bench.training.trainer import _checkpoint_payload

SPADE_TINY = {"max_iters": "1", "ngf": "2", "spade_hidden": "4", "ndf": "2", "batch_size": "2", "crop_size": "32",
              "load_size": "32"}
OASIS_TINY = {"max_iters": "1", "channels_G": "2", "spade_hidden": "4", "z_dim": "4", "channels_D": "2",
              "batch_size": "2", "bn_stat_batches": "1"}


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=64, n_train=2, n_val=3, seed=6, workers=1)


@pytest.fixture(scope="module")
def labels(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The validation label maps alone, in a folder of their own: no photos anywhere near them."""
    folder = tmp_path_factory.mktemp("maps")
    shutil.copytree(tree / "val_label", folder / "labels")
    shutil.copytree(tree / "val_inst", folder / "instances")
    return folder


@pytest.fixture(scope="module")
def spade_ckpt(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.train("spade", "synthetic", tmp_path_factory.mktemp("spade"), data_root=tree, overrides=SPADE_TINY,
                     device="cpu", progress=False).checkpoint


@pytest.fixture(scope="module")
def oasis_ckpt(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return api.train("oasis", "synthetic", tmp_path_factory.mktemp("oasis"), data_root=tree, overrides=OASIS_TINY,
                     device="cpu", progress=False).checkpoint


def _untrained(method: str, cfg: object, path: Path) -> Path:
    """A sisbench checkpoint of a freshly built model (for what needs no training to check)."""
    from methods import load_method

    model = load_method(method)(cfg, SYNTHETIC_SPEC, "cpu", seed=1)
    return save_checkpoint(path, _checkpoint_payload(model, {}, 0, 1, {}, "synthetic"))


def _generate(*args: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["generate", "--device", "cpu", *args])


def _images(folder: Path) -> dict[str, np.ndarray]:
    return {p.name: np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))}


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


# --- SPADE -----------------------------------------------------------------------------------------------
def test_spade_labels_only_equals_split_generation(spade_ckpt: Path, labels: Path, tree: Path, tmp_path: Path) -> None:
    result = _generate("--checkpoint", str(spade_ckpt), "--labels", str(labels / "labels"), "--instances",
                       str(labels / "instances"), "--out", str(tmp_path / "lo"), "--batch-size", "2")
    assert result.exit_code == 0, result.output
    split = _generate("--checkpoint", str(spade_ckpt), "--data-root", str(tree), "--out", str(tmp_path / "split"))
    assert split.exit_code == 0, split.output
    lo, ref = _images(tmp_path / "lo"), _images(tmp_path / "split")
    assert sorted(lo) == ["val_00000.png", "val_00001.png", "val_00002.png"] == sorted(ref)
    for name in lo:  # maps resized 64 -> 32 as the checkpoint's evaluation preprocessing says
        assert lo[name].shape == (32, 32, 3) and np.array_equal(lo[name], ref[name]), name


def test_spade_needs_its_instance_maps(spade_ckpt: Path, labels: Path, tmp_path: Path) -> None:
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--labels", str(labels / "labels"), "--out",
                                     str(tmp_path / "o")))
    assert "reads instance maps" in line and "--instances DIR" in line


def test_option_conflicts_refused_in_one_line(spade_ckpt: Path, labels: Path, tmp_path: Path) -> None:
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--labels", str(labels / "labels"), "--split",
                                     "train", "--out", str(tmp_path / "o")))
    assert "--split" in line and "--labels" in line
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--instances", str(labels / "instances"),
                                     "--out", str(tmp_path / "o")))
    assert "go with --labels DIR" in line


def test_bad_label_id_refused_in_one_line(spade_ckpt: Path, labels: Path, tmp_path: Path) -> None:
    bad = Path(shutil.copytree(labels / "labels", tmp_path / "bad"))
    ids = np.asarray(Image.open(bad / "val_00002.png")).copy()
    ids[0, :3] = (9, 9, 42)
    Image.fromarray(ids).save(bad / "val_00002.png")
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--labels", str(bad), "--instances",
                                     str(labels / "instances"), "--out", str(tmp_path / "o")))
    assert "val_00002.png" in line and "label ids 9, 42 are not classes" in line and "0..7" in line
    assert not list((tmp_path / "o").glob("*.png"))  # every map is checked before the first image is written


def test_wrong_format_label_refused_by_name(spade_ckpt: Path, labels: Path, tmp_path: Path) -> None:
    folder = Path(shutil.copytree(labels / "labels", tmp_path / "maps"))
    Image.open(folder / "val_00001.png").convert("RGB").save(folder / "extra.jpg")
    line = _one_line_error(_generate("--checkpoint", str(spade_ckpt), "--labels", str(folder), "--instances",
                                     str(labels / "instances"), "--out", str(tmp_path / "o")))
    assert "extra.jpg" in line


def test_native_size_follows_the_generator(spade_ckpt: Path, labels: Path, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    args = ["--checkpoint", str(spade_ckpt), "--labels", str(labels / "labels"), "--instances",
            str(labels / "instances"), "--native-size"]
    line = _one_line_error(_generate(*args, "--out", str(tmp_path / "a")))  # SPADE draws crop_size (32) images
    assert "would generate 32x32 (WxH) images for 64x64" in line
    with caplog.at_level(logging.WARNING):  # crop_size only sets SPADE's first feature map: weights keep their shapes
        result = _generate(*args, "--out", str(tmp_path / "b"), "--set", "crop_size=64")
    assert result.exit_code == 0, result.output
    assert {img.shape for img in _images(tmp_path / "b").values()} == {(64, 64, 3)}
    assert any("crop_size 32 -> 64" in r.getMessage() for r in caplog.records)


# --- OASIS -----------------------------------------------------------------------------------------------
def test_oasis_labels_only(oasis_ckpt: Path, labels: Path, tree: Path, tmp_path: Path,
                           caplog: pytest.LogCaptureFixture) -> None:
    base = ["--checkpoint", str(oasis_ckpt), "--labels", str(labels / "labels")]
    with caplog.at_level(logging.INFO):
        result = _generate(*base, "--out", str(tmp_path / "a"))
    assert result.exit_code == 0, result.output
    said = [r.getMessage() for r in caplog.records if "BatchNorm statistics" in r.getMessage()]
    assert len(said) == 1 and str(labels / "labels") in said[0] and "--data-root" in said[0]
    a = _images(tmp_path / "a")
    assert len(a) == 3 and all(img.shape == (64, 64, 3) for img in a.values())
    assert _generate(*base, "--out", str(tmp_path / "a2")).exit_code == 0
    assert all(np.array_equal(a[k], v) for k, v in _images(tmp_path / "a2").items())  # seeded: reproducible
    assert _generate(*base, "--out", str(tmp_path / "s1"), "--seed", "1").exit_code == 0
    assert any(not np.array_equal(a[k], v) for k, v in _images(tmp_path / "s1").items())  # 3D noise follows --seed
    # with the training split the statistics are the official ones: the same images as generating the split
    assert _generate(*base, "--data-root", str(tree), "--out", str(tmp_path / "t")).exit_code == 0
    split = _generate("--checkpoint", str(oasis_ckpt), "--data-root", str(tree), "--out", str(tmp_path / "split"))
    assert split.exit_code == 0, split.output
    t, ref = _images(tmp_path / "t"), _images(tmp_path / "split")
    assert sorted(t) == sorted(ref) and all(np.array_equal(t[k], ref[k]) for k in t)


# --- what needs training data or photos ---------------------------------------------------------------------
def test_resail_says_it_needs_data_root(labels: Path, tmp_path: Path) -> None:
    from methods.resail.model import RESAILConfig

    cfg = RESAILConfig(ngf=4, spade_hidden=8, style_length=8, ndf=4, crop_size=64, load_size=64,
                       preprocess_mode="fixed", conv_s_padding=1, no_vgg_loss=True, batch_size=2, topk=3)
    ckpt = _untrained("resail", cfg, tmp_path / "resail.pth")
    line = _one_line_error(_generate("--checkpoint", str(ckpt), "--labels", str(labels / "labels"), "--instances",
                                     str(labels / "instances"), "--out", str(tmp_path / "o")))
    assert "training split's database" in line and "--data-root DIR" in line


def test_sean_style_from_a_photo(labels: Path, tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from methods.sean import SEANConfig

    cfg = SEANConfig(preprocess_mode="fixed", ngf=2, spade_hidden=4, ndf=2, crop_size=32, load_size=32,
                     style_length=4, style_ngf=2, no_vgg_loss=True, batch_size=2, init_variance=0.5,
                     param_free_norm="batch", no_instance=True)
    ckpt = _untrained("sean", cfg, tmp_path / "sean.pth")
    base = ["--checkpoint", str(ckpt), "--labels", str(labels / "labels")]
    with caplog.at_level(logging.INFO):
        assert _generate(*base, "--out", str(tmp_path / "zero")).exit_code == 0
    assert any("zero style code" in r.getMessage() for r in caplog.records)
    photo = tree / "val_img" / "val_00000.png"
    result = _generate(*base, "--out", str(tmp_path / "photo"), "--style-from", str(photo))
    assert result.exit_code == 0, result.output
    split = _generate("--checkpoint", str(ckpt), "--data-root", str(tree), "--out", str(tmp_path / "split"),
                      "--style-from", "val_00000")
    assert split.exit_code == 0, split.output
    zero, styled, ref = _images(tmp_path / "zero"), _images(tmp_path / "photo"), _images(tmp_path / "split")
    # the style photo's own map takes exactly its own styles, as in split generation; and the photo matters
    assert np.array_equal(styled["val_00000.png"], ref["val_00000.png"])
    assert not np.array_equal(styled["val_00000.png"], zero["val_00000.png"])
    line = _one_line_error(_generate(*base, "--out", str(tmp_path / "x"), "--style-from", str(photo),
                                     "--interpolate", "0.5"))
    assert "no photo of their own" in line
    line = _one_line_error(_generate(*base, "--out", str(tmp_path / "y"), "--style-from", str(tmp_path / "nope.jpg")))
    assert "no such photo" in line
