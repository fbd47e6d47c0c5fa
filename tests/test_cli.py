"""Bad input gets one line naming the file and the problem, and exit code 1 (never a traceback)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import cli
from bench.datasets import write_synthetic

TINY = ["--set", "max_iters=1", "--set", "ngf=2", "--set", "spade_hidden=4", "--set", "ndf=2",
        "--set", "batch_size=2", "--set", "crop_size=32", "--set", "load_size=32"]


@pytest.fixture(scope="module")
def clean_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=2, n_val=2, seed=1, workers=1)


@pytest.fixture
def tree(clean_tree: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(clean_tree, tmp_path / "tree"))


def _train(root: Path, tmp_path: Path, *extra: str):
    return CliRunner().invoke(cli, ["train", "--method", "spade", "--dataset", "synthetic", "--data-root", str(root),
                                    "--out", str(tmp_path / "out"), *TINY, *extra])


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    # progress bars share stderr; the error itself is exactly one line
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def test_clean_tree_trains(tree: Path, tmp_path: Path, bench_cache: Path) -> None:
    result = _train(tree, tmp_path)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "latest.pth").is_file()


def test_unknown_method_and_dataset(bench_cache: Path) -> None:
    line = _one_line_error(CliRunner().invoke(cli, ["run", "--method", "spad", "--dataset", "synthetic"]))
    assert "unknown method 'spad'" in line and "did you mean 'spade'" in line
    line = _one_line_error(CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset", "synthtic"]))
    assert "unknown dataset 'synthtic'" in line and "synthetic" in line


def test_unknown_set_key(tree: Path, tmp_path: Path) -> None:
    line = _one_line_error(_train(tree, tmp_path, "--set", "ngff=3"))
    assert "ngff" in line and "did you mean ngf" in line


def test_label_id_beyond_classes(tree: Path, tmp_path: Path) -> None:
    for p in sorted((tree / "train_label").glob("*.png")):
        arr = np.asarray(Image.open(p)).copy()
        arr[0, 0] = 42
        Image.fromarray(arr).save(p)
    line = _one_line_error(_train(tree, tmp_path))
    assert "train_label" in line and "42" in line


def test_image_label_size_mismatch(tree: Path, tmp_path: Path) -> None:
    for p in sorted((tree / "train_img").glob("*.png")):
        Image.open(p).resize((40, 32)).save(p)
    line = _one_line_error(_train(tree, tmp_path))
    assert "train_00000.png" in line and "does not match" in line and "40x32" in line


def test_missing_split_folder(tree: Path, tmp_path: Path) -> None:
    shutil.rmtree(tree / "train_img")
    line = _one_line_error(_train(tree, tmp_path))
    assert "train_img" in line


def test_truncated_png(tree: Path, tmp_path: Path) -> None:
    for p in sorted((tree / "train_img").glob("*.png")):
        p.write_bytes(p.read_bytes()[:60])
    line = _one_line_error(_train(tree, tmp_path))
    assert "train_img" in line and ".png" in line


def test_missing_weights_one_line(tree: Path, tmp_path: Path, bench_cache: Path) -> None:
    line = _one_line_error(_train(tree, tmp_path, "--set", "no_vgg_loss=off"))
    assert "vgg19-dcbb9e9d.pth" in line and "bench weights import vgg19" in line


def test_wrong_checkpoint_file(tree: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"\x00" * 100)
    result = CliRunner().invoke(cli, ["generate", "--method", "spade", "--dataset", "synthetic", "--data-root",
                                      str(tree), "--checkpoint", str(junk), "--out", str(tmp_path / "g"), *TINY])
    line = _one_line_error(result)
    assert "junk.pth" in line
