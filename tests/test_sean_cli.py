"""SEAN through the CLI: style control on `bench generate` and the `bench ablate` grid end to end.

Both run a tiny SEAN (a few channels, 32 px, one or two iterations, a large init gain) on a tiny synthetic tree, so they
check the plumbing (options, style codes reaching the generator, cached cells, manifest, report
table), not image quality. FID runs on the 64-d Inception features (``fid_layer``, recorded in the
run's inputs) to skip a 2048x2048 eigendecomposition per cell.
"""

from __future__ import annotations

import functools
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import cli
from bench.datasets import write_synthetic

# init_variance 0.5 instead of 0.02: at the official init gain the style path (Zencoder → fc_mu → conv_gamma,
# each weight ~0.02) moves the output by < 1e-4, invisible after 8-bit quantisation; these tests need the
# styles to show in the PNGs after 2 iterations
TINY = ["--set", "ngf=2", "--set", "spade_hidden=4", "--set", "ndf=2", "--set", "style_length=4",
        "--set", "style_ngf=2", "--set", "batch_size=2", "--set", "crop_size=32", "--set", "load_size=32",
        "--set", "init_variance=0.5"]


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=2, n_val=3, seed=2, workers=1)


@pytest.fixture(scope="module")
def checkpoint(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    result = CliRunner().invoke(cli, ["train", "--method", "sean", "--dataset", "synthetic", "--data-root", str(tree),
                                      "--out", str(out), *TINY, "--set", "max_iters=2", "--device", "cpu"])
    assert result.exit_code == 0, (result.output, result.exception)
    return out / "latest.pth"


def _generate(tree: Path, checkpoint: Path, out: Path, *style: str, method: str = "sean"):  # noqa: ANN202
    return CliRunner().invoke(cli, ["generate", "--method", method, "--dataset", "synthetic", "--data-root", str(tree),
                                    "--checkpoint", str(checkpoint), "--out", str(out), *TINY, "--device", "cpu",
                                    *style])


def _images(folder: Path) -> dict[str, np.ndarray]:
    return {p.stem: np.asarray(Image.open(p), dtype=np.int16) for p in sorted(folder.glob("*.png"))}


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


@pytest.fixture(scope="module")
def plain(tree: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("plain")
    result = _generate(tree, checkpoint, out)
    assert result.exit_code == 0, (result.output, result.exception)
    images = _images(out)
    assert len(images) == 3
    return images


def test_style_from_itself_and_interpolate_zero_reproduce_plain_generation(tree: Path, checkpoint: Path,
                                                                         plain: dict[str, np.ndarray],
                                                                         tmp_path: Path) -> None:
    ids = sorted(plain)
    # each image restyled with t = 0 keeps its own codes: the plain generation, every image
    assert _generate(tree, checkpoint, tmp_path / "t0", "--style-from", ids[1], "--interpolate", "0").exit_code == 0
    t0 = _images(tmp_path / "t0")
    for k in ids:
        assert np.abs(t0[k] - plain[k]).max() <= 1, k  # codes passed in vs encoded inside G: float rounding only
    # the style image restyled with its own codes is itself
    assert _generate(tree, checkpoint, tmp_path / "self", "--style-from", ids[0]).exit_code == 0
    assert np.abs(_images(tmp_path / "self")[ids[0]] - plain[ids[0]]).max() <= 1


def test_style_transfer_swap_and_interpolation_change_the_other_images(tree: Path, checkpoint: Path,
                                                                      plain: dict[str, np.ndarray],
                                                                      tmp_path: Path) -> None:
    ids = sorted(plain)
    outs = {}
    for name, opts in {"transfer": [], "swap": ["--swap-regions", "sky,grass"], "half": ["--interpolate", "0.5"],
                       "full": ["--interpolate", "1"]}.items():
        result = _generate(tree, checkpoint, tmp_path / name, "--style-from", ids[0], *opts)
        assert result.exit_code == 0, (name, result.output, result.exception)
        outs[name] = _images(tmp_path / name)
        assert sorted(outs[name]) == ids
    for name, images in outs.items():
        assert any(np.abs(images[k] - plain[k]).max() > 1 for k in ids[1:]), name  # the styles reached G
    half = np.stack([outs["half"][k] for k in ids[1:]]).astype(float)
    full = np.stack([outs["full"][k] for k in ids[1:]]).astype(float)
    own = np.stack([plain[k] for k in ids[1:]]).astype(float)
    assert np.abs(half - own).mean() < np.abs(full - own).mean()  # halfway is nearer the own style


def test_style_control_bad_input_is_one_line(tree: Path, checkpoint: Path, tmp_path: Path) -> None:
    line = _one_line_error(_generate(tree, checkpoint, tmp_path / "a", "--style-from", "nope"))
    assert "--style-from 'nope'" in line and "no such image id" in line
    line = _one_line_error(_generate(tree, checkpoint, tmp_path / "b", "--style-from", "val_00000",
                                     "--swap-regions", "hair"))
    assert "unknown class 'hair'" in line and "sky" in line
    line = _one_line_error(_generate(tree, checkpoint, tmp_path / "c", "--style-from", "val_00000",
                                     "--interpolate", "1.5"))
    assert "[0, 1]" in line
    line = _one_line_error(_generate(tree, checkpoint, tmp_path / "d", "--swap-regions", "sky"))
    assert "need --style-from" in line
    assert not (tmp_path / "a").exists() or not list((tmp_path / "a").glob("*.png"))


def test_ablate_grid_runs_cells_caches_them_and_reports(tree: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.api

    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(bench.api, "run", functools.partial(bench.api.run, fid_layer="64"))
    results = tmp_path / "results"
    # the spelling: one --grid, the next axis as a trailing argument
    args = ["ablate", "--method", "sean", "--dataset", "synthetic", "--data-root", str(tree), *TINY,
            "--set", "max_iters=1", "--results", str(results), "--device", "cpu",
            "--grid", "noise=on,off", "downsampling=on,off"]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (result.output, result.exception)
    manifests = list((results / "ablations").glob("sean-synthetic-*.json"))
    assert len(manifests) == 1
    man = json.loads(manifests[0].read_text())
    assert [c["set"] for c in man["cells"]] == [{"noise": n, "downsampling": d} for n in ("on", "off")
                                                for d in ("on", "off")]
    records = {c["run_id"]: json.loads((results / "runs" / f"{c['run_id']}.json").read_text()) for c in man["cells"]}
    assert len(records) == 4  # four distinct inputs, four records
    for cell in man["cells"]:
        rec = records[cell["run_id"]]
        cfg = rec["inputs"]["config"]
        assert (cfg["noise"], cfg["downsampling"]) == (cell["set"]["noise"] == "on", cell["set"]["downsampling"] == "on")
        for key in ("fid", "miou", "accu", "psnr", "ssim", "rmse"):
            assert math.isfinite(rec["metrics"][key]), key
    stamps = {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")}

    # a re-run is four cache hits: nothing is trained or rewritten
    def no_training(*a, **k):  # noqa: ANN002, ANN003, ANN202
        raise AssertionError("a cached cell was retrained")

    monkeypatch.setattr("bench.training.trainer.train", no_training)
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, (result.output, result.exception)
    assert {p.name: p.stat().st_mtime_ns for p in (results / "runs").glob("*.json")} == stamps

    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--results", str(results), "--out", str(out)])
    assert result.exit_code == 0, (result.output, result.exception)
    md = (out / "tables.md").read_text()
    section = md[md.index("sean ablation over noise"):].split("\n\n")[1].splitlines()  # the pipe table

    def cells(line: str) -> list[str]:
        return [c.strip() for c in line.strip().strip("|").split("|")]

    header, rows = cells(section[0]), [cells(ln) for ln in section[2:]]
    assert header == ["", "mIoU↑", "Acc↑", "FID↓", "PSNR↑", "SSIM↑", "RMSE↓"]
    assert [r[0] for r in rows] == [c["label"] for c in man["cells"]]
    fid = {c["label"]: records[c["run_id"]]["metrics"]["fid"] for c in man["cells"]}
    for r in rows:  # each row shows its own cell's record
        assert r[3].startswith(f"{fid[r[0]]:.2f}")
