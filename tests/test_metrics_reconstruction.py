"""PSNR/SSIM/RMSE: hand-computed values, agreement with scikit-image, folder pairing and errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from bench.errors import DataError, MetricError
from bench.metrics.reconstruction import psnr, reconstruction_scores, rmse, ssim


def test_psnr_rmse_one_wrong_channel_by_hand() -> None:
    a = np.zeros((2, 2, 3), np.uint8)
    b = a.copy()
    b[0, 1, 2] = 255
    # one of 12 values is off by 1 on the [0, 1] scale: MSE = 1/12
    assert rmse(b, a) == pytest.approx(math.sqrt(1 / 12), abs=1e-12)
    assert psnr(b, a) == pytest.approx(10 * math.log10(12), abs=1e-9)  # 10.79 dB


def test_psnr_rmse_uniform_offset_by_hand() -> None:
    a = np.full((3, 4, 3), 100, np.uint8)
    b = np.full((3, 4, 3), 110, np.uint8)
    assert rmse(b, a) == pytest.approx(10 / 255, abs=1e-12)
    assert psnr(b, a) == pytest.approx(20 * math.log10(255 / 10), abs=1e-9)  # 28.13 dB


def test_ssim_of_constant_images_by_hand() -> None:
    # constant images have zero variance, so SSIM reduces to the luminance term
    # (2 mx my + C1) / (mx^2 + my^2 + C1) with C1 = (0.01 * data_range)^2 = 1e-4 on the [0, 1] scale
    x = np.full((16, 16, 3), 0.5)
    y = np.full((16, 16, 3), 0.25)
    expected = (2 * 0.5 * 0.25 + 1e-4) / (0.5**2 + 0.25**2 + 1e-4)
    assert ssim(x, y) == pytest.approx(expected, abs=1e-9)


def test_matches_skimage_with_wang_et_al_settings() -> None:
    rng = np.random.default_rng(0)
    real = rng.integers(0, 256, (32, 40, 3), dtype=np.uint8)
    noise = rng.integers(-30, 31, real.shape)
    gen = np.clip(real.astype(int) + noise, 0, 255).astype(np.uint8)
    # skimage on the raw uint8 arrays (data_range 255) must agree with ours on the [0, 1] scale
    ref_ssim = structural_similarity(
        real,
        gen,
        data_range=255,
        channel_axis=-1,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
    )
    assert ssim(gen, real) == pytest.approx(ref_ssim, abs=1e-10)
    assert psnr(gen, real) == pytest.approx(peak_signal_noise_ratio(real, gen, data_range=255), abs=1e-9)
    # and it is not skimage's default (7x7 uniform window, sample covariance)
    default = structural_similarity(real, gen, data_range=255, channel_axis=-1)
    assert abs(ssim(gen, real) - default) > 1e-4


def test_uint8_and_float_inputs_agree() -> None:
    rng = np.random.default_rng(1)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    for fn in (psnr, ssim, rmse):
        assert fn(a, b) == pytest.approx(fn(a / 255.0, b.astype(np.float32) / 255.0), rel=1e-6)


def test_identical_images() -> None:
    a = np.random.default_rng(2).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert psnr(a, a) == math.inf
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert rmse(a, a) == 0.0


def _save(folder: Path, name: str, arr: np.ndarray) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    Image.fromarray(arr).save(path)
    return path


def test_folders_are_paired_by_stem_and_averaged(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    gens, reals = [], []
    for i in range(3):
        r = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        g = np.clip(r.astype(int) + rng.integers(-20, 21, r.shape), 0, 255).astype(np.uint8)
        _save(tmp_path / "gen", f"{i:02d}.png", g)
        _save(tmp_path / "real", f"{i:02d}.bmp", r)  # lossless, different extension
        gens.append(g)
        reals.append(r)
    out = reconstruction_scores(tmp_path / "gen", tmp_path / "real")
    assert out["n"] == 3
    assert out["psnr"] == pytest.approx(np.mean([psnr(g, r) for g, r in zip(gens, reals)]))
    assert out["ssim"] == pytest.approx(np.mean([ssim(g, r) for g, r in zip(gens, reals)]))
    assert out["rmse"] == pytest.approx(np.mean([rmse(g, r) for g, r in zip(gens, reals)]))
    # the same numbers from explicit pairs of arrays, and the per-image values behind them, in pair order
    pairs = reconstruction_scores(list(zip(gens, reals)))
    keys = ("psnr", "ssim", "rmse", "n")
    assert {k: pairs[k] for k in keys} == pytest.approx({k: out[k] for k in keys})
    assert out["ids"] == ["00", "01", "02"] and pairs["ids"] == ["0", "1", "2"]
    for k in ("psnr", "ssim", "rmse"):
        assert pairs["per_image"][k] == pytest.approx(out["per_image"][k])
        assert np.mean(out["per_image"][k]) == pytest.approx(out[k])


def test_missing_partner_names_the_file(tmp_path: Path) -> None:
    img = np.zeros((16, 16, 3), np.uint8)
    _save(tmp_path / "gen", "a.png", img)
    _save(tmp_path / "gen", "b.png", img)
    _save(tmp_path / "real", "a.png", img)
    with pytest.raises(MetricError, match=r"b\.png has no real image"):
        reconstruction_scores(tmp_path / "gen", tmp_path / "real")


def test_size_mismatch_names_the_file(tmp_path: Path) -> None:
    _save(tmp_path / "gen", "a.png", np.zeros((16, 16, 3), np.uint8))
    _save(tmp_path / "real", "a.png", np.zeros((16, 20, 3), np.uint8))
    with pytest.raises(MetricError, match=r"a\.png.*16x16.*20x16"):
        reconstruction_scores(tmp_path / "gen", tmp_path / "real")


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(MetricError, match=r"expected \[0, 1\]"):
        psnr(np.full((4, 4, 3), -1.0), np.zeros((4, 4, 3)))
    with pytest.raises(MetricError, match="HxWx3"):
        rmse(np.zeros((4, 4)), np.zeros((4, 4)))
    with pytest.raises(MetricError, match="11x11"):
        ssim(np.zeros((8, 8, 3)), np.zeros((8, 8, 3)))
    with pytest.raises(DataError, match="does not exist"):
        reconstruction_scores(tmp_path / "nope", tmp_path / "nope2")
    (tmp_path / "gen").mkdir()
    (tmp_path / "gen" / "x.png").write_bytes(b"not a png")
    (tmp_path / "real").mkdir()
    _save(tmp_path / "real", "x.png", np.zeros((16, 16, 3), np.uint8))
    with pytest.raises(DataError, match=r"cannot read image .*x\.png"):
        reconstruction_scores(tmp_path / "gen", tmp_path / "real")
    with pytest.raises(MetricError, match="no image pairs"):
        reconstruction_scores([])
