"""FID/KID through torch-fidelity, and the offline Inception weights conversion.

Small images (32x32) and the early Inception layers ("64", "192") keep this file fast; the standard
"2048" layer is exercised by the ``slow`` parity case (its 2048x2048 matrix square root alone is ~25 s).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import torch_fidelity
from PIL import Image

from bench.errors import CheckpointError, ConfigError, DataError, MetricError, WeightsNotFoundError
from bench.metrics.fid import fid_kid
from bench.metrics.inception import (
    SOURCE_CONVERTED,
    SOURCE_TORCH_FIDELITY,
    TORCH_FIDELITY_FILE,
    fid_helper_weights_path,
    resolve_inception_weights,
)

N_GEN, N_REAL = 8, 6


@pytest.fixture(scope="module", autouse=True)
def _private_caches(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One $BENCH_CACHE (and an empty torch home) for the module, so the weights are converted once."""
    root = tmp_path_factory.mktemp("fid_env")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(root / "bench_cache"))
        mp.setenv("TORCH_HOME", str(root / "torch_home"))  # no torch-fidelity download can be found
        yield root


def _write_pngs(folder: Path, n: int, seed: int, size: tuple[int, int] = (32, 32)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        # smooth-ish random images: a random colour ramp plus noise, so sets are not all identical
        base = rng.integers(0, 256, 3)
        ramp = np.linspace(0, 1, size[1])[None, :, None] * rng.integers(-100, 100, 3)
        img = base + ramp + rng.normal(0, 20, (size[0], size[1], 3))
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"{i:04d}.png")
    return folder


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("fid_images")
    return _write_pngs(root / "gen", N_GEN, seed=0), _write_pngs(root / "real", N_REAL, seed=1)


# --- Inception weights ------------------------------------------------------------------------------


def test_converted_inception_matches_torchscript_features() -> None:
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    weights = resolve_inception_weights()
    assert weights.source == SOURCE_CONVERTED
    assert weights.path.parent == Path(os.environ["BENCH_CACHE"]) / "inception"
    assert len(weights.identity()["sha256"]) == 64
    mtime = weights.path.stat().st_mtime_ns
    assert resolve_inception_weights().path.stat().st_mtime_ns == mtime  # cached, not converted again

    # torch-fidelity loads it with strict=True, so every key and shape must be right
    net = FeatureExtractorInceptionV3(
        "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(weights.path)
    )
    assert not net.fc.weight.any() and not net.fc.bias.any()  # no logits in the source graph
    scripted = torch.jit.load(str(fid_helper_weights_path()), map_location="cpu").eval()
    x = torch.randint(0, 256, (2, 3, 299, 299), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        ours = net(x)[0]
        reference = scripted((x.float() - 128) / 128)  # the scaling torch-fidelity applies inside
    assert ours.shape == reference.shape == (2, 2048)
    assert reference.abs().max() > 1.0  # real activations, not a degenerate all-zero output
    assert (ours - reference).abs().max().item() < 5e-6


def test_torch_hub_copy_is_preferred(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    converted = resolve_inception_weights()
    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / TORCH_FIDELITY_FILE).symlink_to(converted.path)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    found = resolve_inception_weights()
    assert found.source == SOURCE_TORCH_FIDELITY
    assert found.sha256 == converted.sha256


def test_explicit_weights_path_is_checked(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="missing.pth"):
        resolve_inception_weights(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    torch.save({"fc.weight": torch.zeros(3)}, junk)
    with pytest.raises(CheckpointError, match="not a torch-fidelity Inception"):
        resolve_inception_weights(junk)


# --- FID / KID --------------------------------------------------------------------------------------


@pytest.mark.parametrize("layer", ["64"])
def test_fid_of_a_folder_with_itself_is_zero(folders: tuple[Path, Path], layer: str) -> None:
    gen, _ = folders
    out = fid_kid(gen, gen, feature_layer=layer, save_cpu_ram=True)
    assert abs(out["fid"]) < 1e-5
    assert out["n_generated"] == out["n_real"] == N_GEN


@pytest.mark.parametrize("layer", ["64", "192", pytest.param("2048", marks=pytest.mark.slow)])
def test_matches_torch_fidelity_and_caches_real_stats(
    folders: tuple[Path, Path], layer: str, capsys: pytest.CaptureFixture[str]
) -> None:
    gen, real = folders
    key = f"tiny-real-{layer}"
    first = fid_kid(gen, real, cache_key=key, feature_layer=layer, save_cpu_ram=True, verbose=True)
    assert capsys.readouterr().out == ""  # torch-fidelity's log goes to stderr only

    # the default subset size 1000 is clamped to the smaller set
    assert first["kid_subset_size"] == N_REAL
    assert (first["n_generated"], first["n_real"], first["feature_layer"]) == (N_GEN, N_REAL, layer)
    reference = torch_fidelity.calculate_metrics(
        input1=str(gen),
        input2=str(real),
        fid=True,
        kid=True,
        feature_layer_fid=layer,
        feature_layer_kid=layer,
        feature_extractor_weights_path=first["inception"]["path"],
        kid_subset_size=N_REAL,
        cuda=False,
        cache=False,
        save_cpu_ram=True,
        verbose=False,
    )
    assert first["fid"] == pytest.approx(reference["frechet_inception_distance"], rel=1e-9, abs=1e-9)
    assert first["kid"] == pytest.approx(reference["kernel_inception_distance_mean"], rel=1e-9, abs=1e-12)
    assert first["kid_std"] == pytest.approx(reference["kernel_inception_distance_std"], rel=1e-9, abs=1e-12)
    assert first["fid"] > 1e-3  # two different sets

    cache_dir = Path(os.environ["BENCH_CACHE"]) / "fidelity"
    cached = sorted(p.name for p in cache_dir.glob(f"{key}-*"))
    assert any(f"stat-fid-{layer}" in name for name in cached), cached
    assert not (Path(os.environ["TORCH_HOME"]) / "fidelity_cache").exists()
    second = fid_kid(gen, real, cache_key=key, feature_layer=layer, save_cpu_ram=True)
    assert second["real_cache"] == first["real_cache"]
    assert (second["fid"], second["kid"]) == (first["fid"], first["kid"])


def test_changed_real_folder_never_reuses_the_cache(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    gen, _ = folders
    real = _write_pngs(tmp_path / "real", 4, seed=5)
    before = fid_kid(gen, real, cache_key="changing", feature_layer="64", save_cpu_ram=True)
    _write_pngs(tmp_path / "extra", 1, seed=6)
    os.replace(tmp_path / "extra" / "0000.png", real / "0099.png")
    after = fid_kid(gen, real, cache_key="changing", feature_layer="64", save_cpu_ram=True)
    assert after["real_cache"] != before["real_cache"]
    assert after["n_real"] == 5
    assert after["fid"] != before["fid"]


def test_input_errors_are_one_line_bench_errors(tmp_path: Path, folders: tuple[Path, Path]) -> None:
    gen, real = folders
    with pytest.raises(DataError, match="does not exist"):
        fid_kid(tmp_path / "nope", real)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no images here")
    with pytest.raises(DataError, match="no png/jpg/jpeg images"):
        fid_kid(gen, tmp_path / "empty")
    with pytest.raises(MetricError, match="at least 2 real images, found 1"):
        fid_kid(gen, _write_pngs(tmp_path / "one", 1, seed=2))
    broken = _write_pngs(tmp_path / "broken", 3, seed=3)
    (broken / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with pytest.raises(DataError, match=r"cannot read image .*0001\.png"):
        fid_kid(gen, broken)
    mixed = _write_pngs(tmp_path / "mixed", 3, seed=4)
    _write_pngs(tmp_path / "big", 1, seed=4, size=(40, 40))
    os.replace(tmp_path / "big" / "0000.png", mixed / "0003.png")
    with pytest.raises(DataError, match=r"0003\.png is 40x40 but 0000\.png is 32x32"):
        fid_kid(gen, mixed)
    with pytest.raises(ConfigError, match="feature_layer"):
        fid_kid(gen, real, feature_layer="1000")
    with pytest.raises(ConfigError, match="cache_key") as info:
        fid_kid(gen, real, cache_key="ade20k/val")
    assert "\n" not in str(info.value)
