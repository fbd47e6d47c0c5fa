"""Multi-modal diversity (the OASIS protocol): MS-SSIM against pytorch-msssim, the LPIPS wiring against the
lpips package, the exact values of identical samples, the one-line refusals, and `bench run/eval --diversity`.

The LPIPS trunk is a random VGG16 (seeded; no download): the wiring test builds the lpips package's own
network from the same random torchvision layers, so what is compared is the loading and the pairwise
arithmetic, not ImageNet weights.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.cli import cli
from bench.errors import ConfigError, DataError, MetricError, WeightsNotFoundError
from bench.metrics import diversity as div
from bench.weights import WEIGHTS, load_manifest

OASIS_TINY = ["channels_G=2", "spade_hidden=8", "z_dim=4", "channels_D=2", "batch_size=2", "max_iters=2",
              "bn_stat_batches=2", "load_size=64", "crop_size=64"]


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def _random_features() -> torch.nn.Sequential:
    """torchvision's ``vgg16().features`` with its own initialisation (kaiming, fan_out), seeded."""
    from torchvision.models.vgg import cfgs, make_layers

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        feats = make_layers(cfgs["D"])
        for m in feats.modules():
            if isinstance(m, torch.nn.Conv2d):
                torch.nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                torch.nn.init.normal_(m.bias, std=0.01)
    return feats.eval()


@pytest.fixture(scope="module")
def backbone(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, torch.nn.Sequential]:
    """A random VGG16 file with every key of the registry's manifest: random conv layers (59 MB), the unused
    classifier as zeros expanded from one element (a few bytes)."""
    feats = _random_features()
    sd = {f"features.{k}": v for k, v in feats.state_dict().items()}
    keys = load_manifest("vgg16")["keys"]
    sd.update({k: torch.zeros(()).expand(shape) for k, shape in keys.items() if k.startswith("classifier.")})
    assert list(sd) == list(keys)  # the file fits the manifest built from torchvision.models.vgg16()
    path = tmp_path_factory.mktemp("vgg") / "vgg16-random.pth"
    torch.save(sd, path)
    return path, feats


def _structured(n: int, h: int, w: int, seed: int) -> torch.Tensor:
    """Known inputs in [0, 1]: smooth gradients and blobs plus seeded noise, float ``[n, 3, h, w]``."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    base = torch.stack([xx, yy, (torch.sin(6 * xx) * torch.cos(4 * yy) + 1) / 2])
    return (0.8 * base + 0.2 * torch.rand(n, 3, h, w, generator=g)).clamp(0, 1)


# --- MS-SSIM -------------------------------------------------------------------------------------------
def test_ms_ssim_is_pytorch_msssim_at_five_scales() -> None:
    import pytorch_msssim

    x, y = _structured(3, 192, 200, seed=1), _structured(3, 192, 200, seed=2)
    ours = div.ms_ssim(x, y)
    ref = pytorch_msssim.ms_ssim(x, y, data_range=1, size_average=False)
    assert div.msssim_levels(192, 200) == 5
    assert torch.equal(ours, ref)
    assert 0.5 < float(ours.min()) < float(ours.max()) < 1.0  # similar structure, different noise
    assert torch.allclose(div.ms_ssim(x, x), torch.ones(3))


@pytest.mark.parametrize("levels", [1, 2, 3, 4])
def test_fewer_scales_match_the_library_given_those_weights(levels: int) -> None:
    """The small-image loop is pytorch_msssim.ms_ssim's own: on images the library accepts, the two agree."""
    import pytorch_msssim

    x, y = _structured(2, 170, 181, seed=3), _structured(2, 170, 181, seed=4)  # odd sizes: padded pooling
    ref = pytorch_msssim.ms_ssim(x, y, data_range=1, size_average=False, weights=list(div.msssim_weights(levels)))
    assert torch.allclose(div.ms_ssim(x, y, levels=levels), ref, rtol=0, atol=1e-6)


def test_small_images_use_fewer_scales() -> None:
    assert [div.msssim_levels(s, s) for s in (11, 20, 21, 41, 64, 81, 128, 160, 161, 512)] == [1, 1, 2, 3, 3, 4, 4, 4, 5, 5]
    assert div.msssim_levels(64, 256) == 3  # the short side decides
    with pytest.raises(MetricError, match="larger than 10 px"):
        div.msssim_levels(10, 64)
    w3 = div.msssim_weights(3)
    assert abs(sum(w3) - 1) < 1e-12 and np.allclose(np.array(w3) / w3[0], np.array(div.MSSSIM_WEIGHTS[:3]) / 0.0448)
    assert div.msssim_weights(5) == (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
    x, y = _structured(2, 64, 64, seed=5), _structured(2, 64, 64, seed=6)
    assert torch.allclose(div.ms_ssim(x, x), torch.ones(2))
    v = div.ms_ssim(x, y)
    assert bool(((v > 0.3) & (v < 1)).all())
    with pytest.raises(MetricError, match="needs a short side > 80"):
        div.ms_ssim(x, y, levels=4)


# --- LPIPS ---------------------------------------------------------------------------------------------
def test_lpips_wiring_matches_the_lpips_package(backbone: tuple[Path, torch.nn.Sequential],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Same random trunk in both: ours loaded from the file through the key mapping; the reference built by
    lpips itself from the torchvision layers (its ``tv.vgg16`` patched to return them) and its own linear
    layers (``LPIPS(pretrained=True)``); every pair scored by ``LPIPS.forward``."""
    import types

    import lpips
    import lpips.pretrained_networks as pn

    path, feats = backbone
    monkeypatch.setattr(pn.tv, "vgg16", lambda **kw: types.SimpleNamespace(features=feats))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lpips.LPIPS(net="vgg", version="0.1", verbose=False).eval()
    ours = div.load_lpips(path)
    for k, v in ref.state_dict().items():
        assert torch.equal(ours.state_dict()[k], v), k  # trunk, scaling constants and the package's linear layers
    x = _structured(4, 64, 96, seed=7) * 2 - 1
    pairs = div.lpips_pairs(ours, div.lpips_features(ours, x))
    with torch.no_grad():
        expected = torch.stack([ref(x[a:a + 1], x[b:b + 1]).flatten()[0]
                                for a, b in itertools.combinations(range(4), 2)])
    assert pairs.shape == (6,) and bool((expected > 0.01).all())
    assert torch.allclose(pairs, expected, rtol=1e-5, atol=1e-7)


def test_identical_samples_give_lpips_0_and_ms_ssim_1(backbone: tuple[Path, torch.nn.Sequential],
                                                      tmp_path: Path, bench_cache: Path) -> None:
    rng = np.random.default_rng(0)
    found = {}
    for stem in ("a", "b"):
        img = Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8))
        for k in range(3):
            img.save(tmp_path / f"{stem}_s{k}.png")
            found[f"{stem}_s{k}"] = tmp_path / f"{stem}_s{k}.png"
    res = div.score_samples(div.group_samples(found, ["a", "b"], 3, tmp_path), backbone=backbone[0], progress=False)
    assert res.metrics == {"lpips": 0.0, "ms_ssim": pytest.approx(1.0, abs=1e-6)}
    assert res.levels == 3 and res.size == (64, 80) and res.k == 3
    proto = res.protocol()
    assert proto["pairs_per_label_map"] == 3 and proto["n_label_maps"] == 2 and proto["ms_ssim"]["levels"] == 3
    assert proto["lpips"]["backbone_sha256"] == hashlib.sha256(backbone[0].read_bytes()).hexdigest()
    # a different image in one map moves both scores the diverse way, for that map only
    Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(tmp_path / "b_s2.png")
    res2 = div.score_samples(div.group_samples(found, ["a", "b"], 3, tmp_path), backbone=backbone[0], progress=False)
    assert res2.lpips[0] == 0.0 and res2.lpips[1] > 0.01 and res2.ms_ssim[1] < 0.9
    assert res2.metrics["lpips"] == pytest.approx(res2.lpips[1] / 2)  # mean over maps of the mean over pairs


# --- refusals ------------------------------------------------------------------------------------------
def test_missing_backbone_is_one_line(bench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(WEIGHTS._entries, "vgg16", replace(WEIGHTS.get("vgg16"), also_look_in=()))
    with pytest.raises(WeightsNotFoundError) as e:
        div.load_lpips()
    line = str(e.value)
    assert "\n" not in line
    assert "vgg16-397923af.pth" in line and str(bench_cache / "weights") in line
    assert "https://download.pytorch.org/models/vgg16-397923af.pth" in line and "bench weights import vgg16" in line


def test_requests_that_cannot_score_are_refused() -> None:
    with pytest.raises(ConfigError, match="needs K >= 2"):
        div.check_request(1)
    with pytest.raises(ConfigError, match=r"spade with this configuration draws no noise.*use_vae=true"):
        div.check_request(4, method="spade", stochastic=False)
    div.check_request(2, method="oasis", stochastic=True)
    found = {f"x_s{k}": Path(f"x_s{k}.png") for k in range(3)} | {"y_s0": Path("y_s0.png")}
    with pytest.raises(DataError, match=r"1 of 2 label maps lack some of their 3 samples, e.g. y_s1, y_s2 "
                                        r"\(.*`bench generate --samples 3`"):
        div.group_samples(found, ["x", "y"], 3, "imgs")


# --- end to end ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from bench.datasets import write_synthetic

    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=64, n_train=6, n_val=4, seed=2, workers=1)


def _import_backbone(path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """``bench weights import vgg16 PATH`` with the random file (the real one's digest starts with 397923af)."""
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(WEIGHTS._entries, "vgg16", replace(WEIGHTS.get("vgg16"), sha256_prefix=digest[:8],
                                                           also_look_in=()))
    result = CliRunner().invoke(cli, ["weights", "import", "vgg16", str(path)])
    assert result.exit_code == 0, result.output
    return digest


def test_run_and_eval_diversity_end_to_end(data: Path, backbone: tuple[Path, torch.nn.Sequential], tmp_path: Path,
                                           bench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    import bench.api
    import bench.external

    monkeypatch.setattr(bench.api, "run", functools.partial(bench.api.run, fid_layer="64"))
    monkeypatch.setattr(bench.external, "evaluate_images",
                        functools.partial(bench.external.evaluate_images, fid_layer="64"))
    common = ["--dataset", "synthetic", "--data-root", str(data), "--results", str(tmp_path / "r"), "--device", "cpu",
              "--metrics", "psnr", "--json"]
    sets = [a for s in OASIS_TINY for a in ("--set", s)]
    # missing trunk: one line, before any training
    monkeypatch.setitem(WEIGHTS._entries, "vgg16", replace(WEIGHTS.get("vgg16"), also_look_in=()))
    line = _one_line_error(CliRunner().invoke(cli, ["run", "--method", "oasis", *sets, *common, "--diversity", "2"]))
    assert "weights 'vgg16' not found: put vgg16-397923af.pth in" in line
    assert not (tmp_path / "r" / "work").exists() or not any((tmp_path / "r" / "work").iterdir())
    digest = _import_backbone(backbone[0], monkeypatch)
    # a configuration that draws no noise is refused in one line
    line = _one_line_error(CliRunner().invoke(cli, ["run", "--method", "oasis", *sets, "--set", "no_3dnoise=true",
                                                    *common, "--diversity", "2"]))
    assert "oasis with this configuration draws no noise" in line

    result = CliRunner().invoke(cli, ["run", "--method", "oasis", *sets, *common, "--diversity", "2"])
    assert result.exit_code == 0, result.output
    rec = json.loads(result.output[result.output.index("{"):])
    assert set(rec["metrics"]) == {"psnr", "lpips", "ms_ssim"}
    assert rec["metrics"]["lpips"] > 0 and 0 < rec["metrics"]["ms_ssim"] < 1  # the 3D noise changes the images
    proto = rec["protocol"]["diversity"]
    assert proto["k"] == 2 and proto["pairs_per_label_map"] == 1 and proto["n_label_maps"] == 4
    assert proto["lpips"]["backbone_sha256"] == digest and proto["ms_ssim"]["levels"] == 3
    assert proto["samples"]["seed"] == 0 and rec["inputs"]["diversity"]["k"] == 2
    assert rec["intervals"]["lpips"]["low"] <= rec["metrics"]["lpips"] <= rec["intervals"]["lpips"]["high"]
    samples = Path(rec["extra"]["diversity_samples"])
    assert sorted(p.name for p in samples.glob("*.png")) == [f"val_{i:05d}_s{k}.png" for i in range(4) for k in range(2)]

    # the same samples through `bench eval --diversity 2` score the same; the other metrics score sample 0,
    # which has the seeds of the run's own images
    out = CliRunner().invoke(cli, ["eval", "--images", str(samples), "--name", "oasis samples", *common,
                                   "--diversity", "2"])
    assert out.exit_code == 0, out.output
    ext = json.loads(out.output[out.output.index("{"):])
    assert ext["metrics"] == rec["metrics"]
    # a missing sample is refused in one line before scoring
    (samples / "val_00002_s1.png").unlink()
    line = _one_line_error(CliRunner().invoke(cli, ["eval", "--images", str(samples), "--name", "x", *common,
                                                    "--diversity", "2", "--force"]))
    assert "1 of 4 label maps lack some of their 2 samples, e.g. val_00002_s1" in line
