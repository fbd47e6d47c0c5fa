"""The synthetic landscape dataset: determinism, label/instance consistency, caching, loader round trip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.datasets import SYNTHETIC_SPEC, ensure_synthetic, write_synthetic
from bench.datasets import synthetic as synth
from bench.datasets.custom import CustomDataset, check_split
from bench.datasets.transforms import Preprocess
from bench.errors import ConfigError


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes_any_worker_count(tmp_path: Path) -> None:
    a = write_synthetic(tmp_path / "a", n_train=6, n_val=3, seed=1, workers=1)
    b = write_synthetic(tmp_path / "b", n_train=6, n_val=3, seed=1, workers=2)
    fa, fb = _files(a), _files(b)
    assert len(fa) == 3 * 9 + 2 and fa == fb  # + dataset.json and the sisbench output manifest
    c = write_synthetic(tmp_path / "c", n_train=6, n_val=3, seed=2, workers=1)
    fc = _files(c)
    assert fc["train_img/train_00000.png"] != fa["train_img/train_00000.png"]
    assert fa["train_img/train_00000.png"] != fa["val_img/val_00000.png"]  # splits are drawn apart


def test_labels_instances_and_metadata(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path / "d", n_train=24, n_val=2, seed=0, workers=1)
    meta = json.loads((root / "dataset.json").read_text())
    assert meta["class_names"] == list(SYNTHETIC_SPEC.class_names) and len(meta["class_names"]) >= 8
    assert meta["thing_classes"] == list(SYNTHETIC_SPEC.thing_classes)
    assert meta["counts"] == {"train": 24, "val": 2} and meta["seed"] == 0 and meta["size"] == 64
    assert meta["generator_version"] == synth.GENERATOR_VERSION
    things = np.array(SYNTHETIC_SPEC.thing_classes)
    seen: set[int] = set()
    for p in sorted((root / "train_label").iterdir()):
        label = np.asarray(Image.open(p))
        inst = np.asarray(Image.open(root / "train_inst" / p.name))
        assert label.shape == inst.shape == (64, 64)
        assert label.max() < SYNTHETIC_SPEC.num_classes
        is_thing = np.isin(label, things)
        assert np.array_equal(inst > 0, is_thing)  # instance ids on thing classes only, and on all of them
        for i in np.unique(inst[inst > 0]):
            assert len(np.unique(label[inst == i])) == 1  # an instance has one class
        seen.update(np.unique(label).tolist())
    assert seen == set(range(SYNTHETIC_SPEC.num_classes))  # every class shows up in a couple dozen images


def test_classes_look_like_their_names() -> None:
    # the photo follows the label map: sky is blue, grass green, road grey, across samples
    sums = {c: np.zeros(3) for c in range(8)}
    counts = dict.fromkeys(range(8), 0)
    for i in range(12):
        image, label, _ = synth.generate_sample(0, "train", i)
        for c in range(8):
            m = label == c
            sums[c] += image[m].astype(np.float64).sum(0)
            counts[c] += int(m.sum())
    mean = {c: sums[c] / max(counts[c], 1) for c in range(8)}
    r, g, b = mean[synth.SKY]
    assert b > r + 40 and b > g
    r, g, b = mean[synth.GRASS]
    assert g > r and g > b + 40
    assert np.ptp(mean[synth.ROAD]) < 20 and mean[synth.ROAD].mean() < 110
    assert mean[synth.TREE][1] < mean[synth.GRASS][1] - 30  # trees are darker than grass


def test_regions_are_solid() -> None:
    # the cleanup leaves almost no region thinner than 3 px, which would be ambiguous to a segmenter
    thin = 0
    for i in range(12):
        _, label, inst = synth.generate_sample(3, "val", i)
        thin += int((~synth._solid(label.astype(np.int32) * 256 + inst)).sum())
    assert thin < 0.01 * 12 * 64 * 64


def test_loader_round_trip(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path / "d", n_train=4, n_val=2, workers=1)
    ds = CustomDataset(root, "train", SYNTHETIC_SPEC, Preprocess.fixed(SYNTHETIC_SPEC.native_size))
    s = ds[0]
    assert s["image"].shape == (3, 64, 64) and s["label"].max() < 8
    assert (s["instance"] > 0).any() and torch.equal(
        s["instance"] > 0, torch.isin(s["label"], torch.tensor([5, 6, 7]))
    )
    summary = check_split(root, "val", SYNTHETIC_SPEC)
    assert summary.ok and summary.n_pairs == 2 and summary.sizes == {"64x64": 2}


def test_ensure_synthetic_caches(bench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = ensure_synthetic(n_train=3, n_val=1, workers=1)
    # keyed by the generator's arguments and its code's fingerprint
    assert root.parent == bench_cache / "datasets" and root.name.startswith("synthetic-64-0-3-1-")
    assert (root / "dataset.json").is_file() and len(list((root / "train_img").iterdir())) == 3
    assert [p.name for p in root.parent.iterdir()] == [root.name]  # no temp folder left behind

    def boom(*args: object, **kw: object) -> Path:
        raise AssertionError("regenerated a cached dataset")

    monkeypatch.setattr(synth, "write_synthetic", boom)
    assert ensure_synthetic(n_train=3, n_val=1) == root
    other = bench_cache.parent / "elsewhere"
    with pytest.raises(AssertionError):
        ensure_synthetic(cache_dir=other, n_train=3, n_val=1)
    assert not list((other / "datasets").glob("synthetic-64-0-3-1*"))  # a failed build leaves nothing
    assert list((other / "datasets").iterdir()) == []


def test_bad_arguments(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(ConfigError, match="not empty"):
        write_synthetic(tmp_path / "full", n_train=1, n_val=1)
    with pytest.raises(ConfigError, match=">= 32"):
        write_synthetic(tmp_path / "small", size=16)
    with pytest.raises(ConfigError, match="unknown ensure_synthetic arguments"):
        ensure_synthetic(cache_dir=tmp_path, n_trian=3)
