"""``bench run --method spade --dataset ade20k --data-root FIXTURE --checkpoint X`` end to end.

Everything external is made here: an ADE20K tree in the official layout, an official-format SPADE
``ade20k_pretrained/latest_net_G.pth`` written from a narrow SPADE, and the CSAIL UPerNet-101
encoder/decoder files holding a seeded random initialisation (``fill_`` would take ~10 s for these
80M parameters and adds nothing here) installed
into a private ``$BENCH_CACHE`` through ``bench weights import``. The published files have no sha256,
so each test swaps the registry entry for a copy that carries the generated file's digest
(``monkeypatch.setitem`` on the registry's entries): the import then verifies it like any other.

The UPerNet is full width (the released architecture). With the paper's five test scales (short
side 300..600) on 64-px images, and FID on 2048-d features (a 2048x2048 eigendecomposition), the run
takes minutes on 2 cores, so that variant is ``slow``. The unmarked variant registers the same
segmenter class under the same name with a single 64-px scale, and runs FID on the 64-d Inception
features (``fid_layer``, recorded in the run's inputs), which changes nothing this test checks.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import bench.datasets.real  # noqa: F401  (registers ade20k)
from bench.cache import sha256_file
from bench.cli import cli
from bench.weights import WEIGHTS
from tests.fixtures_real import write_ade20k

TINY = ["--set", "ngf=4", "--set", "spade_hidden=8", "--set", "ndf=4",
        "--set", "crop_size=64", "--set", "load_size=64"]
ENCODER, DECODER = "upernet101-ade20k-encoder", "upernet101-ade20k-decoder"


@pytest.fixture(scope="module")
def upernet_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The two CSAIL files: state_dicts of the full UPerNet-101, seeded random weights."""
    from segmenters.papers import UPerNet101ADE20K

    torch.manual_seed(0)
    net = UPerNet101ADE20K.build_network()
    out = tmp_path_factory.mktemp("upernet")
    files = {}
    for name, part, fname in ((ENCODER, net.encoder, "encoder_epoch_50.pth"), (DECODER, net.decoder, "decoder_epoch_50.pth")):
        files[name] = out / fname
        torch.save(part.state_dict(), files[name])
    return files


@pytest.fixture(scope="module")
def ade_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("ade")
    write_ade20k(root, n_train=1, n_val=2, size=(48, 64), seed=3)
    return root


@pytest.fixture
def spade_checkpoint(ade_tree: Path, tmp_path: Path) -> Path:
    """An official-format SPADE ADE20K generator: the bare state_dict in ``ade20k_pretrained/latest_net_G.pth``."""
    from bench.api import setup
    from bench.config import parse_kv

    s = setup("spade", "ade20k", data_root=ade_tree, overrides=parse_kv(TINY[1::2]))
    model = s.build("cpu", seed=0)
    path = tmp_path / "ade20k_pretrained" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(model.nets["netG"].state_dict(), path)
    return path


@pytest.fixture
def installed(upernet_files: dict[str, Path], bench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Import both files through the registry (entries given the files' sha256); return the digests."""
    digests = {}
    for name, path in upernet_files.items():
        digests[name] = sha256_file(path)
        monkeypatch.setitem(WEIGHTS._entries, name, replace(WEIGHTS.get(name), sha256=digests[name]))
        result = CliRunner().invoke(cli, ["weights", "import", name, str(path)])
        assert result.exit_code == 0, result.output
    return digests


def _fast_fid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make `bench run` score FID on the 64-d Inception features (skips a 2048x2048 eigendecomposition)."""
    import bench.api

    monkeypatch.setattr(bench.api, "run", functools.partial(bench.api.run, fid_layer="64"))


def _run(ade_tree: Path, checkpoint: Path, results: Path) -> dict:
    result = CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset", "ade20k", "--data-root", str(ade_tree),
                                      "--checkpoint", str(checkpoint), *TINY, "--results", str(results),
                                      "--device", "cpu"])
    assert result.exit_code == 0, (result.output, result.exception)
    records = sorted((results / "runs").glob("*.json"))
    assert len(records) == 1
    return json.loads(records[0].read_text())


def _check_record(rec: dict, digests: dict[str, str], checkpoint: Path) -> None:
    assert (rec["method"], rec["dataset"]) == ("spade", "ade20k")
    seg = rec["weights"]["segmenter"]
    assert seg["name"] == "upernet101_ade20k"  # chosen from the dataset spec, not passed in
    assert seg["encoder_sha256"] == digests[ENCODER] and seg["decoder_sha256"] == digests[DECODER]
    assert rec["inputs"]["evaluation"]["segmenter"] == "upernet101_ade20k"
    assert rec["inputs"]["evaluation"]["segmentation_protocol"] == "native"
    assert rec["protocol"]["segmentation"] == "native" and rec["protocol"]["segmentation_size"] == [64, 64]
    gen = rec["weights"]["generator"]
    assert gen["format"] == "official" and gen["sha256"] == sha256_file(checkpoint)
    assert rec["extra"]["n_images"] == 2
    for key in ("fid", "kid", "miou", "accu", "psnr", "ssim"):
        assert math.isfinite(rec["metrics"][key]), key
    assert 0.0 <= rec["metrics"]["miou"] <= 100.0 and 0.0 <= rec["ceiling"]["miou"] <= 100.0
    images = sorted(Path(rec["extra"]["images"]).glob("*.png"))
    assert [p.stem for p in images] == ["ADE_val_00000001", "ADE_val_00000002"]


def test_spade_ade20k_run_one_scale(ade_tree: Path, spade_checkpoint: Path, installed: dict[str, str],
                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from segmenters import SEGMENTERS
    from segmenters.papers import UPerNet101ADE20K

    class OneScaleUPerNet(UPerNet101ADE20K):
        """The paper segmenter, same name and weights, tested at one 64-px scale instead of five."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("img_sizes", (64,))
            kwargs.setdefault("max_size", 64)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setitem(SEGMENTERS._entries, "upernet101_ade20k", OneScaleUPerNet)
    _fast_fid(monkeypatch)
    rec = _run(ade_tree, spade_checkpoint, tmp_path / "results")
    _check_record(rec, installed, spade_checkpoint)
    assert "(64,)" in rec["weights"]["segmenter"]["protocol"]
    assert rec["inputs"]["evaluation"]["fid_feature_layer"] == "64"


@pytest.mark.slow
def test_spade_ade20k_run_paper_protocol(ade_tree: Path, spade_checkpoint: Path, installed: dict[str, str],
                                         tmp_path: Path) -> None:
    rec = _run(ade_tree, spade_checkpoint, tmp_path / "results")
    _check_record(rec, installed, spade_checkpoint)
    assert "(300, 375, 450, 525, 600)" in rec["weights"]["segmenter"]["protocol"]


def test_missing_segmenter_weights_fail_with_one_line(ade_tree: Path, spade_checkpoint: Path, bench_cache: Path,
                                                      tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast_fid(monkeypatch)
    result = CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset", "ade20k", "--data-root", str(ade_tree),
                                      "--checkpoint", str(spade_checkpoint), *TINY, "--results", str(tmp_path / "r"),
                                      "--device", "cpu"])
    assert result.exit_code == 1, result.output
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1 and "Traceback" not in result.output
    line = errors[0]
    assert "upernet101-ade20k-encoder" in line and "encoder_epoch_50.pth" in line
    assert "bench weights import upernet101-ade20k-encoder PATH" in line
