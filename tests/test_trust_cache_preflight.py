"""Issue "Trust": cache identity (case 1), preflight before long work (cases 4, 6, 7), and --metrics.

Every case starts from ``bench data synth --size 64 --train 48 --val 16`` with 8 train and 4 val samples
copied into a custom-layout folder and changed as the case says.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench import api
from bench.cli import cli
from bench.datasets import write_synthetic
from bench.errors import BenchError, ConfigError, WeightsNotFoundError

TINY = {"ngf": "4", "spade_hidden": "8", "ndf": "4", "batch_size": "2", "max_iters": "1"}


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("s") / "synth", size=64, n_train=48, n_val=16, seed=0, workers=1)


def _subset(synth: Path, dst: Path, *, size: tuple[int, int] | None = None, instances: bool = True) -> Path:
    """8 train and 4 val samples in the custom layout, optionally resized to ``size`` = (W, H)."""
    for split, n in (("train", 8), ("val", 4)):
        for kind in ("img", "label", "inst"):
            if kind == "inst" and not instances:
                continue
            (dst / f"{split}_{kind}").mkdir(parents=True)
            for p in sorted((synth / f"{split}_{kind}").iterdir())[:n]:
                if size is None:
                    shutil.copy(p, dst / f"{split}_{kind}" / p.name)
                else:
                    with Image.open(p) as im:
                        resample = Image.BICUBIC if kind == "img" else Image.NEAREST
                        im.resize(size, resample).save(dst / f"{split}_{kind}" / p.name)
    return dst


@pytest.fixture
def checkpoint(synth: Path, tmp_path: Path, bench_cache: Path) -> Path:
    """An official-format SPADE generator (a bare netG state_dict), independent of the crop size."""
    s = api.setup("spade", "synthetic", data_root=synth, overrides={k: v for k, v in TINY.items() if k != "max_iters"})
    path = tmp_path / "ckpt" / "latest_net_G.pth"
    path.parent.mkdir()
    torch.save(s.build("cpu", seed=0).nets["netG"].state_dict(), path)
    return path


# --- case 1: the reals cache ----------------------------------------------------------------------
def test_case1_reals_cache_keyed_by_preprocessing(synth: Path, checkpoint: Path, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = _subset(synth, tmp_path / "data", size=(96, 64))
    common = {**TINY, "load_size": "64", "crop_size": "64"}

    def run(mode: str, cache: Path) -> dict[str, float]:
        monkeypatch.setenv("BENCH_CACHE", str(cache))
        rec = api.run("spade", "synthetic", data_root=root, checkpoint=checkpoint,
                      overrides={**common, "preprocess_mode": mode}, results=tmp_path / f"res-{cache.name}",
                      device="cpu", progress=False, fid_layer="64")
        return rec.metrics | {f"ceiling_{k}": v for k, v in rec.ceiling.items()}

    shared = tmp_path / "shared"
    fixed_shared = run("fixed", shared)
    second = run("scale_shortside_and_crop", shared)
    fresh = run("scale_shortside_and_crop", tmp_path / "fresh")
    assert second == fresh
    assert second["ceiling_miou"] != fixed_shared["ceiling_miou"] or second["fid"] != fixed_shared["fid"]
    # the two plans exported distinct real sets
    assert len(list((shared / "reals").iterdir())) == 2


@pytest.mark.parametrize("field,a,b", [
    ("preprocess_mode", "fixed", "scale_shortside_and_crop"),
    ("preprocess_mode", "resize_and_crop", "scale_shortside_and_crop"),
    ("preprocess_mode", "none", "fixed"),
    ("load_size", "64", "80"),
    ("crop_size", "48", "64"),
    ("aspect_ratio", "1.0", "1.5"),
    ("no_flip", "true", "false"),
])
def test_poisoned_reals_cache_cannot_change_a_result(synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     field: str, a: str, b: str) -> None:
    """For every field of the preprocessing plan: reals exported under value ``a`` never serve value ``b``."""
    from bench.evaluate import export_reals

    root = _subset(synth, tmp_path / "data", size=(96, 64))
    base = {"preprocess_mode": "scale_shortside_and_crop", "load_size": "64", "crop_size": "40"}
    if field == "aspect_ratio":
        base["preprocess_mode"] = "fixed"

    def export(value: str, cache: Path) -> dict[str, bytes]:
        monkeypatch.setenv("BENCH_CACHE", str(cache))
        s = api.setup("spade", "synthetic", data_root=root, overrides={**base, field: value})
        folder = export_reals(s.open("val"), s.spec)
        return {p.name: np.asarray(Image.open(p)).tobytes() for p in sorted(folder.glob("*.png"))}

    export(a, tmp_path / "shared")
    assert export(b, tmp_path / "shared") == export(b, tmp_path / f"fresh-{field}")


def test_reals_cache_follows_file_content(synth: Path, tmp_path: Path, bench_cache: Path) -> None:
    """Rewriting one photo with the same size and name gives a new export, never the stale one."""
    from bench.evaluate import export_reals

    root = _subset(synth, tmp_path / "data")
    s = api.setup("spade", "synthetic", data_root=root, overrides={"load_size": "64", "crop_size": "64"})
    first = export_reals(s.open("val"), s.spec)
    photo = sorted((root / "val_img").iterdir())[0]
    arr = np.asarray(Image.open(photo)).copy()
    arr[:8] = 255 - arr[:8]
    Image.fromarray(arr).save(photo)
    second = export_reals(s.open("val"), s.spec)
    assert first != second
    got = np.asarray(Image.open(second / f"{photo.stem}.png"))
    assert np.array_equal(got, arr)


def test_run_id_follows_data_content(synth: Path, tmp_path: Path, bench_cache: Path) -> None:
    from bench.api import data_fingerprint

    root = _subset(synth, tmp_path / "a")
    copy = Path(shutil.copytree(root, tmp_path / "b"))
    s_a = api.setup("spade", "synthetic", data_root=root)
    s_b = api.setup("spade", "synthetic", data_root=copy)
    fp_a = data_fingerprint({"val": s_a.open("val")})
    assert fp_a == data_fingerprint({"val": s_b.open("val")})  # same bytes elsewhere: same identity
    label = sorted((copy / "val_label").iterdir())[0]
    arr = np.asarray(Image.open(label)).copy()
    arr[0, 0] = (int(arr[0, 0]) + 1) % 8
    Image.fromarray(arr).save(label)
    assert fp_a != data_fingerprint({"val": s_b.open("val")})


def test_file_digest_memo_sees_in_place_rewrites(tmp_path: Path, bench_cache: Path) -> None:
    import hashlib
    import os

    from bench.cache import file_digest, flush_digests

    p = tmp_path / "f.bin"
    p.write_bytes(b"a" * 100)
    assert file_digest(p) == hashlib.sha256(b"a" * 100).hexdigest()
    flush_digests()
    st = p.stat()
    p.write_bytes(b"b" * 100)  # same size
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime: ctime still moves
    assert file_digest(p) == hashlib.sha256(b"b" * 100).hexdigest()


# --- case 4: sizes the generator cannot produce -----------------------------------------------------
@pytest.fixture
def odd_tree(synth: Path, tmp_path: Path) -> Path:
    return _subset(synth, tmp_path / "odd", size=(100, 60))


def test_case4_preprocess_none_fails_before_training(odd_tree: Path, tmp_path: Path, bench_cache: Path) -> None:
    for method in ("spade", "sean"):
        t = time.perf_counter()
        args = ["train", "--method", method, "--dataset", "synthetic", "--data-root", str(odd_tree),
                "--out", str(tmp_path / f"out-{method}"), "--set", "preprocess_mode=none"]
        args += [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
        line = _one_line_error(CliRunner().invoke(cli, args))
        assert time.perf_counter() - t < 10
        assert "cannot process" in line or "would generate" in line, line
        assert "preprocess_mode=none" in line
        assert not (tmp_path / f"out-{method}" / "latest.pth").exists()


def test_case4_generation_refuses_wrong_size(odd_tree: Path, checkpoint: Path, tmp_path: Path,
                                             bench_cache: Path) -> None:
    args = ["generate", "--method", "spade", "--dataset", "synthetic", "--data-root", str(odd_tree),
            "--checkpoint", str(checkpoint), "--out", str(tmp_path / "gen"),
            "--set", "crop_size=48", "--set", "load_size=48"]
    args += [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert "would generate 32x32 (WxH) images for 48x48" in line, line
    assert "cannot produce crop_size=48 exactly" in line and "crop_size=32 or 64" in line  # not the current value
    assert not (tmp_path / "gen").exists()
    args_none = [a if a != "crop_size=48" else "preprocess_mode=none" for a in args]
    line = _one_line_error(CliRunner().invoke(cli, args_none))
    assert "preprocess_mode=none" in line and not (tmp_path / "gen").exists()


def test_case4_run_fails_before_fid_and_segmentation(odd_tree: Path, checkpoint: Path, tmp_path: Path,
                                                     bench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.evaluate

    def boom(*a: object, **k: object) -> None:
        raise AssertionError("evaluation must not start")

    monkeypatch.setattr(bench.evaluate, "evaluate", boom)
    with pytest.raises(ConfigError, match="would generate"):
        api.run("spade", "synthetic", data_root=odd_tree, checkpoint=checkpoint,
                overrides={**TINY, "crop_size": "48", "load_size": "48"}, results=tmp_path / "r", device="cpu",
                progress=False)
    assert not (tmp_path / "r" / "runs").exists()


# every method and every preprocess mode: the generated size equals the data size, or one line up front
@pytest.mark.parametrize("method", ["spade", "sean", "oasis", "pix2pixhd"])
@pytest.mark.parametrize("mode", ["none", "fixed", "resize_and_crop", "scale_width_and_crop",
                                  "scale_shortside_and_crop"])
def test_generated_size_matches_data_or_fails_up_front(method: str, mode: str, odd_tree: Path, tmp_path: Path,
                                                       bench_cache: Path) -> None:
    from methods import load_method

    cls = load_method(method)
    tiny = {f.name: getattr(cls.tiny_config(), f.name) for f in dataclasses.fields(cls.tiny_config())}
    overrides = {k: str(v) for k, v in tiny.items() if k not in ("preprocess_mode",) and v is not None
                 and not isinstance(v, tuple | list)}
    overrides.update({"preprocess_mode": mode, "crop_size": "48", "load_size": "48"})
    if method == "oasis":  # OASIS refuses crop sizes its U-Net discriminator cannot pool, at config time
        with pytest.raises(ConfigError, match="divisible by 64"):
            api.setup(method, "synthetic", data_root=odd_tree, overrides=overrides)
        overrides.update({"crop_size": "64", "load_size": "64"})
    s = api.setup(method, "synthetic", data_root=odd_tree, overrides=overrides)
    ckpt = tmp_path / "c.pth"
    model = s.build("cpu", 0)
    from bench.checkpoint_io import save_checkpoint

    save_checkpoint(ckpt, {"method": method, "dataset": "synthetic", "config": dataclasses.asdict(s.cfg),
                           "nets": {k: v.state_dict() for k, v in model.nets.items()}})
    try:
        out = api.generate(method, "synthetic", ckpt, tmp_path / "gen", data_root=odd_tree, overrides=overrides,
                           device="cpu", progress=False)
    except BenchError as e:  # refused up front, in one line, before any image is written
        assert "\n" not in str(e) and not (tmp_path / "gen").exists()
        return
    val = s.open("val")
    for i, p in enumerate(sorted(out.glob("*.png"))):
        with Image.open(p) as im:
            assert im.size[::-1] == tuple(val[i]["label"].shape[-2:]), (p, im.size)


def test_batchnorm_with_one_value_per_channel_fails_up_front(synth: Path, tmp_path: Path, bench_cache: Path) -> None:
    """A 1-sample batch and a discriminator that pools to 1x1 leave BatchNorm statistics undefined."""
    from bench import preflight as pf

    root = _subset(synth, tmp_path / "d")
    s = api.setup("spade", "synthetic", data_root=root,
                  overrides={**TINY, "batch_size": "1", "param_free_norm": "batch", "crop_size": "64",
                             "load_size": "64"})
    model = s.build("cpu", 0)
    train = s.open("train", train=True, spec=pf.data_spec(model, s.spec))
    before = {k: v.clone() for k, v in model.nets["netG"].state_dict().items()}
    # a 64x64 crop never reaches 1x1 in SPADE's generator: fine at batch 1 ...
    pf.check_shapes(model, train=train, seed=0)
    after = model.nets["netG"].state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # running stats untouched
    # ... while a probe on a 1x1 map at batch 1 is refused
    net = torch.nn.Sequential(torch.nn.AdaptiveAvgPool2d(1), torch.nn.BatchNorm2d(3))
    found: list[str] = []
    with pf._norm_probe({"netX": net}, 1, found):
        net.eval()(torch.zeros(1, 3, 8, 8))
    assert found and "netX.1 (BatchNorm) sees a 1x1 feature map at a per-device batch of 1" in found[0]
    found.clear()
    with pf._norm_probe({"netX": net}, 2, found):
        net.eval()(torch.zeros(1, 3, 8, 8))
    assert not found


def test_preflight_leaves_the_random_stream_alone(synth: Path, tmp_path: Path, bench_cache: Path) -> None:
    from bench import preflight as pf

    root = _subset(synth, tmp_path / "d")
    s = api.setup("spade", "synthetic", data_root=root, overrides=TINY)
    model = s.build("cpu", 0)
    torch.manual_seed(123)
    pf.check_shapes(model, s.open("val"), train=s.open("train", train=True), seed=0)
    drawn = torch.rand(3)
    torch.manual_seed(123)
    assert torch.equal(drawn, torch.rand(3))


# --- VGG weights -------------------------------------------------------------------------------------
def test_missing_vgg_weights_name_no_vgg_loss(synth: Path, tmp_path: Path, bench_cache: Path) -> None:
    root = _subset(synth, tmp_path / "d")
    args = ["train", "--method", "spade", "--dataset", "synthetic", "--data-root", str(root),
            "--out", str(tmp_path / "o"), "--set", "no_vgg_loss=false"]
    args += [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert "vgg19" in line and "--set no_vgg_loss=true" in line
    oasis = ["train", "--method", "oasis", "--dataset", "synthetic", "--data-root", str(root),
             "--out", str(tmp_path / "o2"), "--set", "add_vgg_loss=true", "--set", "max_iters=1"]
    line = _one_line_error(CliRunner().invoke(cli, oasis))
    assert "--set add_vgg_loss=false" in line


# --- case 6: instance maps nothing reads ------------------------------------------------------------
@pytest.mark.parametrize("method,extra", [("spade", {"no_instance": "true"}), ("oasis", {})])
def test_case6_no_instance_folders_needed(method: str, extra: dict[str, str], synth: Path, tmp_path: Path,
                                          bench_cache: Path) -> None:
    root = _subset(synth, tmp_path / "d", instances=False)
    from methods import load_method

    tiny = load_method(method).tiny_config()
    overrides = {"max_iters": "1", "crop_size": "32", "load_size": "32", "batch_size": "2", **extra}
    if method == "spade":
        overrides.update({"ngf": "4", "spade_hidden": "8", "ndf": "4"})
    else:  # OASIS's U-Net discriminator needs crops divisible by 64
        overrides.update({"crop_size": "64", "load_size": "64"})
        overrides.update({k: str(getattr(tiny, k)) for k in ("ngf", "ndf") if hasattr(tiny, k)})
    res = api.train(method, "synthetic", tmp_path / "out", data_root=root, overrides=overrides, device="cpu",
                    progress=False)
    assert res.checkpoint.is_file()


def test_case6_instance_folder_needed_says_why(synth: Path, tmp_path: Path, bench_cache: Path) -> None:
    root = _subset(synth, tmp_path / "d", instances=False)
    with pytest.raises(BenchError) as e:
        api.train("spade", "synthetic", tmp_path / "out", data_root=root,
                  overrides={**TINY, "no_instance": "false", "crop_size": "32", "load_size": "32"}, device="cpu",
                  progress=False)
    assert "train_inst" in str(e.value) and "no_instance" in str(e.value)


# --- case 7 and --metrics: a dataset without an evaluation segmenter ---------------------------------
@pytest.fixture
def three_class(synth: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Path]:
    from bench.datasets import DATASETS
    from bench.datasets.spec import DatasetSpec
    from methods import load_method
    from methods.base import PRESETS

    root = _subset(synth, tmp_path / "three", instances=False)
    for split in ("train", "val"):
        for p in (root / f"{split}_label").iterdir():
            arr = np.asarray(Image.open(p)) % 3
            Image.fromarray(arr.astype(np.uint8)).save(p)
    spec = DatasetSpec(name="threeclass", class_names=("a", "b", "c"), native_size=(64, 64))
    monkeypatch.setitem(DATASETS._entries, "threeclass", spec)
    load_method("spade")
    from methods.spade import SPADEConfig

    monkeypatch.setitem(PRESETS, ("spade", "threeclass"),
                        SPADEConfig(ngf=4, spade_hidden=8, ndf=4, crop_size=32, load_size=32, no_vgg_loss=True,
                                    batch_size=2, max_iters=1))
    return "threeclass", root


def test_case7_custom_dataset_without_segmenter_completes_a_record(three_class: tuple[str, Path], tmp_path: Path,
                                                                   bench_cache: Path) -> None:
    name, root = three_class
    rec = api.run("spade", name, data_root=root, results=tmp_path / "r", device="cpu", progress=False,
                  fid_layer="64")
    assert set(rec.metrics) == {"fid", "kid", "precision", "recall", "psnr", "ssim", "rmse"}
    assert "no evaluation segmenter" in rec.extra["skipped_metrics"]["miou"]
    assert (tmp_path / "r" / "runs" / f"{rec.run_id}.json").is_file()


def test_case7_explicit_miou_without_segmenter_fails_before_training(three_class: tuple[str, Path], tmp_path: Path,
                                                                     bench_cache: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.training.trainer

    monkeypatch.setattr(bench.training.trainer, "train", lambda *a, **k: pytest.fail("trained"))
    name, root = three_class
    with pytest.raises(BenchError, match="no evaluation segmenter"):
        api.run("spade", name, data_root=root, results=tmp_path / "r", device="cpu", progress=False,
                metrics="fid,miou")


def test_missing_segmenter_weights_fail_before_training(synth: Path, tmp_path: Path, bench_cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """A real dataset whose segmenter weights are missing fails up front; --metrics fid,kid completes."""
    import bench.training.trainer
    from segmenters import SEGMENTERS

    class Missing:
        def __init__(self, **kwargs: object) -> None:
            raise WeightsNotFoundError("weights 'synthetic-seg' not found: put x.pth in /cache")

    root = _subset(synth, tmp_path / "d")
    monkeypatch.setitem(SEGMENTERS._entries, "synthetic", Missing)
    real_train = bench.training.trainer.train
    monkeypatch.setattr(bench.training.trainer, "train", lambda *a, **k: pytest.fail("trained"))
    result = CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset", "synthetic", "--data-root", str(root),
                                      "--results", str(tmp_path / "r"), "--device", "cpu",
                                      *[x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]])
    line = _one_line_error(result)
    assert "synthetic-seg" in line and "--metrics fid,kid,precision,recall,psnr,ssim,rmse" in line
    monkeypatch.setattr(bench.training.trainer, "train", real_train)
    rec = api.run("spade", "synthetic", data_root=root, overrides=TINY, results=tmp_path / "r", device="cpu",
                  progress=False, fid_layer="64", metrics="fid,kid")
    assert set(rec.metrics) == {"fid", "kid"}
    assert rec.extra["skipped_metrics"]["miou"] == "not requested (--metrics)"
    assert json.loads((tmp_path / "r" / "runs" / f"{rec.run_id}.json").read_text())["metrics"].keys() == {"fid", "kid"}


def test_unknown_metric_is_one_line(bench_cache: Path) -> None:
    line = _one_line_error(CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset", "synthetic",
                                                    "--metrics", "fid,lpips"]))
    assert "unknown metric lpips" in line


# --- training seeds (issue "Numbers with error bars") ----------------------------------------------
def test_seeds_are_ordinary_cached_runs_with_a_summary(synth: Path, tmp_path: Path, bench_cache: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import functools

    from bench.api import parse_seeds

    assert parse_seeds("0,1,2") == [0, 1, 2] and parse_seeds("3-5") == [3, 4, 5] and parse_seeds(None) is None
    for bad, why in (("a", "not 'a'"), ("1,1", "distinct"), ("-1", "not '-1'"), ("", "empty"), ("0,,1", "empty"),
                     ("0,1,", "empty"), ("3-1", "reversed; write 1-3"), ("0-1000000000000", "more than 1000"),
                     ("4294967296", "from 0 to 4294967295")):
        with pytest.raises(ConfigError, match=why):
            parse_seeds(bad)
    bad_seed = CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset", "synthetic", "--seed", "-1"])
    assert bad_seed.exit_code == 2 and "-1 is not in the range" in bad_seed.output
    root = _subset(synth, tmp_path / "d")
    monkeypatch.setattr(api, "run", functools.partial(api.run, fid_layer="64", bootstrap=0))
    args = ["run", "--method", "spade", "--dataset", "synthetic", "--data-root", str(root), "--results",
            str(tmp_path / "r"), "--device", "cpu", "--seeds", "0,1", "--metrics", "psnr,rmse",
            *[x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    records = [json.loads(p.read_text()) for p in sorted((tmp_path / "r" / "runs").glob("*.json"))]
    assert sorted(r["seed"] for r in records) == [0, 1]
    psnr = [r["metrics"]["psnr"] for r in sorted(records, key=lambda r: r["seed"])]
    assert psnr[0] != psnr[1]
    mean, sd = float(np.mean(psnr)), float(np.std(psnr, ddof=1))
    assert "over seeds 0, 1:" in result.output and f"{mean:.2f} ± {sd:.2f} (n=2)" in result.output
    # a re-run is two cache hits: nothing trains
    import bench.training.trainer

    monkeypatch.setattr(bench.training.trainer, "train", lambda *a, **k: pytest.fail("trained"))
    assert CliRunner().invoke(cli, args).exit_code == 0


def test_ablate_seeds_run_every_cell_per_seed(tmp_path: Path, bench_cache: Path, monkeypatch: pytest.MonkeyPatch,
                                              synth: Path) -> None:
    from bench.store import RunRecord

    calls: list[tuple[str, int]] = []

    def fake_run(method: str, dataset: str, *, overrides: dict, seed: int, **kw: object) -> RunRecord:
        calls.append((overrides["ngf"], seed))
        return RunRecord(run_id=f"{overrides['ngf']}-{seed}", method=method, dataset=dataset, seed=seed, inputs={},
                         config={}, weights={}, protocol={}, metrics={"fid": 1.0})

    monkeypatch.setattr(api, "run", fake_run)
    path, records = api.ablate("spade", "synthetic", {"ngf": ["4", "8"]}, data_root=synth, seeds=[0, 1, 2],
                               results=tmp_path / "r")
    assert calls == [("4", 0), ("4", 1), ("4", 2), ("8", 0), ("8", 1), ("8", 2)]
    manifest = json.loads(path.read_text())
    assert [c["run_ids"] for c in manifest["cells"]] == [["4-0", "4-1", "4-2"], ["8-0", "8-1", "8-2"]]
    assert manifest["seed"] == [0, 1, 2] and manifest["cells"][0]["run_id"] == "4-0"


# --- every sample is checked before long work (the new user's case: a bad file late in a split) ---------
def test_bad_files_late_in_a_split_fail_before_training(synth: Path, tmp_path: Path, bench_cache: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.training.trainer

    monkeypatch.setattr(bench.training.trainer, "train", lambda *a, **k: pytest.fail("trained"))
    root = _subset(synth, tmp_path / "d")
    label = sorted((root / "val_label").iterdir())[-1]
    arr = np.asarray(Image.open(label)).copy()
    arr[0, 0] = 200
    Image.fromarray(arr).save(label)
    with pytest.raises(BenchError, match=f"{label.name}.*label ids 200"):
        api.run("spade", "synthetic", data_root=root, overrides=TINY, results=tmp_path / "r", device="cpu",
                progress=False, metrics="psnr")
    photo = sorted((root / "train_img").iterdir())[-1]
    photo.write_bytes(photo.read_bytes()[:100])
    with pytest.raises(BenchError, match=photo.name):
        api.train("spade", "synthetic", tmp_path / "o", data_root=root, overrides=TINY, device="cpu", progress=False)


def test_checked_splits_are_remembered_by_content(synth: Path, tmp_path: Path, bench_cache: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from bench import preflight as pf
    from bench.datasets.custom import CustomDataset

    root = _subset(synth, tmp_path / "d")
    s = api.setup("spade", "synthetic", data_root=root, overrides=TINY)
    reads: list[int] = []
    real_get = CustomDataset.__getitem__
    monkeypatch.setattr(CustomDataset, "__getitem__", lambda self, i: (reads.append(1), real_get(self, i))[1])
    pf.check_samples(("val", s.open("val")), progress=False)
    assert len(reads) == 4
    pf.check_samples(("val", s.open("val")), progress=False)
    assert len(reads) == 4  # remembered: nothing decoded again
    photo = sorted((root / "val_img").iterdir())[0]
    arr = np.asarray(Image.open(photo)).copy()
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(photo)
    pf.check_samples(("val", s.open("val")), progress=False)
    assert len(reads) == 8  # a changed file: the split is checked again
