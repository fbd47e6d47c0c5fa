"""Your own dataset from the CLI (``--dataset custom``): inference, class names, config files, identity,
its own evaluation segmenter, and a run end to end on CPU with tiny configs."""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench import api
from bench.cli import cli
from bench.datasets.user import (
    DatasetConfig,
    config_text,
    pinned_config,
    read_config,
    record_identity,
    resolve_user_dataset,
)
from bench.errors import ConfigError

# SPADE small enough for seconds on CPU; the VGG loss is off (its ImageNet weights are not here)
TINY = {"ngf": "4", "spade_hidden": "8", "ndf": "4", "batch_size": "2", "max_iters": "2", "load_size": "32",
        "crop_size": "32", "no_vgg_loss": "true"}
COLOURS = np.array([[200, 40, 40], [40, 200, 40], [40, 40, 200], [200, 200, 40], [40, 200, 200]])


def write_custom(root: Path, *, n_train: int = 6, n_val: int = 4, size: tuple[int, int] = (40, 48), seed: int = 0,
                 k: int = 3, unlabeled: bool = True) -> Path:
    """A tiny dataset in SPADE's custom layout: ``k`` classes (each its own colour), a top strip unlabeled (255)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("val", n_val)):
        for d in ("img", "label"):
            (root / f"{split}_{d}").mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = size
            lab = np.zeros((h, w), np.uint8)
            lab[rng.integers(h // 4, 3 * h // 4):] = 1
            x0 = rng.integers(0, w // 2)
            lab[: h // 3, x0:x0 + w // 3] = k - 1
            if unlabeled:
                lab[:2, :] = 255
            img = COLOURS[np.minimum(lab, len(COLOURS) - 1)] + rng.normal(0, 10, (h, w, 3))
            Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"{split}_img" / f"s{i}.jpg", quality=95)
            Image.fromarray(lab).save(root / f"{split}_label" / f"s{i}.png")
    return root


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return write_custom(tmp_path / "mydata")


def one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


def set_label(path: Path, y: int, x: int, value: int) -> None:
    arr = np.asarray(Image.open(path)).copy()
    arr[y, x] = value
    Image.fromarray(arr).save(path)


# --- class count, names, ignore id ------------------------------------------------------------------
def test_label_nc_inferred_logged_and_cached(data: Path, bench_cache: Path, caplog: pytest.LogCaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    with caplog.at_level(logging.INFO, logger="bench.datasets.user"):
        user = resolve_user_dataset("custom", data)
    spec = user.spec
    assert spec.name == "custom" and spec.num_classes == 3 and spec.ignore_index == 255
    assert spec.class_names == ("class0", "class1", "class2") and not spec.has_instances
    assert spec.extra["num_classes_from"] == "inferred" and spec.extra["has_unlabeled"] is True
    line = [r.getMessage() for r in caplog.records if "inferred" in r.getMessage()]
    assert len(line) == 1 and "label_nc=3 inferred from 10 train+val label maps (largest id 2" in line[0]
    assert len(list((bench_cache / "label-stats").glob("*.json"))) == 1

    # cached by content: a second resolution decodes no label map
    import bench.datasets.io

    def no_decoding(*_a: object, **_k: object) -> None:
        raise AssertionError("label maps were decoded again")

    import bench.cache

    parsed = []
    loads = json.loads
    with monkeypatch.context() as m:
        m.setattr(bench.datasets.io, "read_map", no_decoding)
        m.setattr(bench.cache.json, "loads", lambda text, *a, **k: parsed.append(1) or loads(text, *a, **k))
        assert resolve_user_dataset("custom", data).spec.num_classes == 3
    # each folder's digest memo is parsed once (4 folders), not once per file (20 digests), + the stats entry
    assert len(parsed) <= 5
    # a changed label map is scanned again
    set_label(data / "val_label" / "s1.png", 10, 10, 4)
    assert resolve_user_dataset("custom", data).spec.num_classes == 5
    assert len(list((bench_cache / "label-stats").glob("*.json"))) == 2


def test_label_nc_set_and_refused_below_the_largest_id(data: Path, bench_cache: Path) -> None:
    s = api.setup("spade", "custom", data_root=data, overrides={"label_nc": "5", "ngf": "8"})
    assert s.spec.num_classes == 5 and s.cfg.ngf == 8 and s.spec.extra["num_classes_from"] == "--set label_nc"
    assert s.spec.extra["identity"]["num_classes"] == 5
    # the generator's input: 5 classes + the dontcare channel (the labels hold 255)
    assert s.cfg.contain_dontcare_label is True
    line = one_line_error(CliRunner().invoke(cli, ["config", "--method", "spade", "--dataset", "custom", "--data-root",
                                                   str(data), "--set", "label_nc=2"]))
    assert "--set label_nc=2" in line and "holds label id 2" in line and "set label_nc=3 or more" in line
    assert str(data / "train_label") in line  # names the file
    line = one_line_error(CliRunner().invoke(cli, ["config", "--method", "spade", "--dataset", "custom", "--data-root",
                                                   str(data), "--set", "label_nc=x"]))
    assert "--set label_nc='x': expected an integer" in line


def test_class_names_from_classes_txt_and_json(data: Path, bench_cache: Path) -> None:
    (data / "classes.txt").write_text("sky\ngrass\nwater\n")
    spec = resolve_user_dataset("custom", data).spec
    assert spec.class_names == ("sky", "grass", "water") and spec.extra["num_classes_from"] == str(data / "classes.txt")
    (data / "classes.json").write_text(json.dumps({"1": "b", "0": "a", "2": "c"}))
    with pytest.raises(ConfigError, match="both classes.txt and classes.json"):
        resolve_user_dataset("custom", data)
    (data / "classes.txt").unlink()
    assert resolve_user_dataset("custom", data).spec.class_names == ("a", "b", "c")
    (data / "classes.json").write_text(json.dumps(["a", "b"]))  # fewer names than the labels' ids
    with pytest.raises(ConfigError, match=r"names 2 classes \(ids 0..1\), but .*holds label id 2"):
        resolve_user_dataset("custom", data)
    with pytest.raises(ConfigError, match="--set label_nc=4, but .*names 2 classes"):
        resolve_user_dataset("custom", data, {"label_nc": "4"})


def test_ignore_id_and_the_dontcare_channel(tmp_path: Path, data: Path, bench_cache: Path) -> None:
    clean = write_custom(tmp_path / "clean", unlabeled=False)
    s = api.setup("spade", "custom", data_root=clean)
    assert s.cfg.contain_dontcare_label is False and s.spec.extra["has_unlabeled"] is False
    s = api.setup("spade", "custom", data_root=data, overrides={"contain_dontcare_label": "false", **TINY})
    assert s.cfg.contain_dontcare_label is False  # the user's choice wins, and SPADE then refuses 255 clearly
    from bench.errors import DataError
    from bench.training.trainer import collate

    with pytest.raises(DataError, match=r"unlabeled pixels \(255\) but the method has no dontcare channel"):
        s.build("cpu").prepare(collate([s.open("val")[0]]))
    # with the channel, 255 is SPADE's extra channel label_nc (contain_dontcare_label, data/pix2pix_dataset.py)
    s = api.setup("spade", "custom", data_root=data, overrides=TINY)
    sem = s.build("cpu").prepare(collate([s.open("val")[0]]))["semantics"]
    assert sem.shape[1] == 4 and sem[0, 3, 0].min() == 1  # the unlabeled top rows are in channel 3
    with pytest.raises(ConfigError, match="ignore_id=0 is one of the class ids 0..2"):
        resolve_user_dataset("custom", data, {"ignore_id": "0"})
    spec = resolve_user_dataset("custom", clean, {"ignore_id": "7"}).spec
    assert spec.num_classes == 3 and spec.ignore_index == 7 and spec.extra["has_unlabeled"] is False


def test_every_method_has_a_custom_preset(data: Path, bench_cache: Path) -> None:
    from methods import available

    got = {m: api.setup(m, "custom", data_root=data).cfg for m in available()}
    assert set(got) == {"oasis", "pix2pixhd", "resail", "sean", "spade"}
    for m, cfg in got.items():
        assert (cfg.preprocess_mode, cfg.load_size, cfg.crop_size) == ("resize_and_crop", 286, 256), m
        if hasattr(cfg, "contain_dontcare_label"):
            assert cfg.contain_dontcare_label is True and cfg.no_instance is True, m
    assert (got["spade"].niter, got["spade"].niter_decay, got["spade"].batch_size) == (50, 0, 1)
    assert (got["sean"].niter, got["sean"].niter_decay) == (50, 50)


# --- dataset config file ----------------------------------------------------------------------------
def test_dataset_config_round_trip(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    (data / "classes.txt").write_text("sky\ngrass\nwater\n")
    result = CliRunner().invoke(cli, ["data", "config", "--data-root", str(data)])
    assert result.exit_code == 0, result.output
    path = data / "sisbench.toml"
    assert result.output.strip().endswith(str(path))
    cfg = read_config(path)
    assert cfg == DatasetConfig(source=path, data_root=data.resolve(), label_nc=3, ignore_id=255,
                                classes=(data / "classes.txt").resolve(), instances=False)
    assert config_text(cfg, relative_to=data) == path.read_text()  # written and read back unchanged
    # the file names the same dataset as the folder and flags did, wherever it is run from
    by_flags = api.setup("spade", "custom", data_root=data, overrides={"label_nc": "3"})
    by_file = api.setup("spade", str(path))
    assert record_identity(by_file.spec) == record_identity(by_flags.spec)
    assert by_file.cfg == by_flags.cfg and by_file.data_root == data.resolve()
    # a file elsewhere with a relative data_root, and list-valued classes
    other = tmp_path / "configs" / "mine.toml"
    other.parent.mkdir()
    other.write_text(config_text(replace(cfg, classes=("sky", "grass", "water")), relative_to=other.parent))
    assert 'data_root = "../mydata"' in other.read_text()
    assert record_identity(api.setup("spade", str(other)).spec) == record_identity(by_flags.spec)
    # `bench data config` never replaces a file
    line = one_line_error(CliRunner().invoke(cli, ["data", "config", "--data-root", str(data)]))
    assert f"{path} exists" in line
    assert pinned_config(resolve_user_dataset("custom", data)).label_nc == 3


@pytest.mark.parametrize("text, expected", [
    ("lable_nc = 3\n", "unknown key 'lable_nc'; did you mean 'label_nc'?"),
    ('label_nc = "three"\n', "label_nc must be an integer >= 1, got 'three' (str)"),
    ("ignore_id = 70000\n", "ignore_id must be an integer in 0..65535, got 70000"),
    ("instances = 1\n", 'instances must be true, false or "auto", got 1 (int)'),
    ("classes = []\n", "classes must be a file path or a list of class names, got []"),
    ("label_nc = \n", "not a valid TOML file"),
])
def test_bad_config_file_refused_in_one_line(data: Path, bench_cache: Path, text: str, expected: str) -> None:
    path = data / "sisbench.toml"
    path.write_text(text)
    line = one_line_error(CliRunner().invoke(cli, ["config", "--method", "spade", "--dataset-config", str(path)]))
    assert str(path) in line and expected in line


def test_config_names_a_missing_segmenter(data: Path, bench_cache: Path) -> None:
    (data / "sisbench.toml").write_text('segmenter = "seg/mine.pth"\n')
    line = one_line_error(CliRunner().invoke(cli, ["data", "check", "--dataset", "custom", "--data-root", str(data)]))
    assert f"segmenter = {data / 'seg' / 'mine.pth'}: no such file" in line


# --- identity ------------------------------------------------------------------------------------------
def test_identity_tells_datasets_apart(tmp_path: Path, data: Path, bench_cache: Path) -> None:
    base = record_identity(resolve_user_dataset("custom", data).spec)
    copy = Path(shutil.copytree(data, tmp_path / "elsewhere"))
    assert record_identity(resolve_user_dataset("custom", copy).spec) == base  # content, not the path
    set_label(copy / "train_label" / "s0.png", 20, 20, 0 if np.asarray(Image.open(copy / "train_label" / "s0.png"))[
        20, 20] else 1)
    changed = record_identity(resolve_user_dataset("custom", copy).spec)
    assert changed["content"] != base["content"]
    (data / "classes.txt").write_text("a\nb\nc\n")
    named = record_identity(resolve_user_dataset("custom", data).spec)
    assert named["content"] == base["content"] and named["class_names"] == ["a", "b", "c"] and named != base


# --- end to end -------------------------------------------------------------------------------------------
def test_end_to_end_segmenter_run_report(data: Path, tmp_path: Path, bench_cache: Path,
                                         caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """train+generate+score without a segmenter (mIoU skipped, one line), train the dataset's own segmenter
    (CLI), run again (it is found and scores), a config-file run is a cache hit, and the report names the classes."""
    import segmenters.custom
    from segmenters.synthetic import SyntheticSegConfig

    (data / "classes.txt").write_text("sky\ngrass\nwater\n")
    results = tmp_path / "results"
    with caplog.at_level(logging.WARNING, logger="bench.preflight"):
        first = api.run("spade", "custom", data_root=data, overrides=TINY, results=results, device="cpu",
                        progress=False, fid_layer="64")
    skips = [r.getMessage() for r in caplog.records if "skipping mIoU" in r.getMessage()]
    assert len(skips) == 1 and f"bench segmenter train --dataset custom --data-root {data.resolve()}" in skips[0]
    assert set(first.metrics) == {"fid", "kid", "precision", "recall", "psnr", "ssim", "rmse"}
    assert "bench segmenter train" in first.extra["skipped_metrics"]["miou"]
    assert first.inputs["dataset_identity"]["class_names"] == ["sky", "grass", "water"]
    assert first.inputs["dataset_identity"]["segmenter_sha256"] is None
    assert first.config["contain_dontcare_label"] is True and first.extra["dataset"]["num_classes_from"].endswith(
        "classes.txt")

    # its own segmenter, trained on the train split (a few steps of a narrow UNet)
    monkeypatch.setattr(segmenters.custom, "CUSTOM_RECIPE", SyntheticSegConfig(
        base_channels=8, num_stages=3, batch_size=4, crop_size=16, warmup_iters=2, lr=3e-3))
    out = CliRunner().invoke(cli, ["segmenter", "train", "--dataset", "custom", "--data-root", str(data), "--iters",
                                   "15", "--size", "32", "--device", "cpu"])
    assert out.exit_code == 0, out.output
    summary = json.loads(out.output[out.output.index("{"):])
    ckpt = Path(summary["checkpoint"])
    assert ckpt.parent == bench_cache / "segmenters" and ckpt.name.startswith("custom-") and summary["found_by_runs"]
    assert summary["data_hash"] == first.inputs["dataset_identity"]["content"]
    assert ckpt.with_name(ckpt.name + ".sha256").read_text().split()[0] == summary["sha256"]
    assert 0 < summary["val_miou"] <= 1 and summary["val_images"] == 4 and summary["iters"] == 15

    second = api.run("spade", "custom", data_root=data, overrides=TINY, results=results, device="cpu",
                     progress=False, fid_layer="64")
    assert second.run_id != first.run_id  # the segmenter is part of the dataset's evaluation identity
    assert second.inputs["dataset_identity"]["segmenter_sha256"] == summary["sha256"]
    seg = second.weights["segmenter"]
    assert (seg["name"], seg["sha256"], seg["data_hash"]) == ("custom", summary["sha256"], summary["data_hash"])
    assert seg["val_miou"] == summary["val_miou"]
    # the real-image ceiling is the segmenter's own val score: same images, same 32x32 resize
    assert second.ceiling["miou"] == pytest.approx(summary["val_miou"], abs=1e-12)
    assert 0 <= second.metrics["miou"] <= 1 and "skipped_metrics" not in second.extra

    # the config file repeats the run exactly: same inputs, same record (a cache hit, nothing retrained)
    import functools

    assert CliRunner().invoke(cli, ["data", "config", "--data-root", str(data)]).exit_code == 0
    monkeypatch.setattr(api, "run", functools.partial(api.run, fid_layer="64"))  # as the records above
    again = CliRunner().invoke(cli, ["run", "--method", "spade", "--dataset-config", str(data / "sisbench.toml"),
                                     "--results", str(results), "--json", "--device", "cpu",
                                     *[a for k, v in TINY.items() for a in ("--set", f"{k}={v}")]])
    assert again.exit_code == 0, again.output
    rec = json.loads(again.output[again.output.index("{"):])
    assert rec["run_id"] == second.run_id and rec["metrics"] == second.metrics

    report = CliRunner().invoke(cli, ["report", "--results", str(results), "--out", str(tmp_path / "report")])
    assert report.exit_code == 0, report.output
    html = (tmp_path / "report" / "index.html").read_text()
    assert "(3 classes: sky, grass, water)" in html
    assert "3 classes: sky, grass, water" in (tmp_path / "report" / "tables.md").read_text()


def test_eval_scores_a_folder_against_a_custom_dataset(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    rec = api.eval_images("custom", data / "val_img", "reals", data_root=data, results=tmp_path / "r", device="cpu",
                          progress=False, fid_layer="64", metrics="fid,kid")
    assert abs(rec.metrics["fid"]) < 1e-3 and rec.inputs["dataset_identity"]["num_classes"] == 3
    assert rec.extra["dataset"]["num_classes_from"] == "inferred"
    # --set takes the dataset's keys only; a method option is refused before anything is scored
    line = one_line_error(CliRunner().invoke(cli, ["eval", "--dataset", "custom", "--data-root", str(data), "--images",
                                                   str(data / "val_img"), "--name", "x", "--set", "ngf=4"]))
    assert "--set ngf: this command takes only the dataset keys label_nc, ignore_id" in line
    with_nc = api.eval_images("custom", data / "val_img", "reals", data_root=data, results=tmp_path / "r",
                              device="cpu", progress=False, fid_layer="64", metrics="fid,kid",
                              overrides={"label_nc": "4"})
    assert with_nc.run_id != rec.run_id and with_nc.inputs["dataset_identity"]["num_classes"] == 4
