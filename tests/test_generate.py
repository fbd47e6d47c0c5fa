"""Generation: one PNG per label map, independent of batch size; multi-sample seeds recorded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from bench.generate import generate_split
from methods.spade import SPADEConfig, SPADEMethod


@pytest.fixture(scope="module")
def val_set(tmp_path_factory: pytest.TempPathFactory):
    root = write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=2, n_val=5, seed=4, workers=1)
    return open_split(SYNTHETIC_SPEC, root, "val", Preprocess.fixed((32, 32)))


def _method(use_vae: bool) -> SPADEMethod:
    cfg = SPADEConfig(preprocess_mode="fixed", load_size=64, crop_size=64, ngf=4, spade_hidden=8, ndf=4,
                      no_vgg_loss=True, use_vae=use_vae, z_dim=8, no_instance=False, param_free_norm="batch")
    return SPADEMethod(cfg, SYNTHETIC_SPEC)


@pytest.mark.parametrize("use_vae", [False, True])
def test_output_does_not_depend_on_batch_size(val_set, tmp_path: Path, use_vae: bool) -> None:
    ds = open_split(SYNTHETIC_SPEC, val_set.root, "val", Preprocess.fixed((64, 64)))
    method = _method(use_vae)
    a = generate_split(method, ds, tmp_path / "a", seed=3, batch_size=1, progress=False)
    b = generate_split(method, ds, tmp_path / "b", seed=3, batch_size=4, progress=False)
    names = sorted(p.name for p in a.glob("*.png"))
    assert names == sorted(f"{s.id}.png" for s in ds.samples)
    for n in names:
        assert np.array_equal(np.asarray(Image.open(a / n)), np.asarray(Image.open(b / n))), n
    c = generate_split(method, ds, tmp_path / "c", seed=4, batch_size=4, progress=False)
    differs = any(not np.array_equal(np.asarray(Image.open(a / n)), np.asarray(Image.open(c / n))) for n in names)
    assert differs == use_vae  # only the VAE model draws noise


def test_samples_are_distinct_and_seeds_recorded(val_set, tmp_path: Path) -> None:
    ds = open_split(SYNTHETIC_SPEC, val_set.root, "val", Preprocess.fixed((64, 64)))
    out = generate_split(_method(True), ds, tmp_path / "k", seed=0, batch_size=2, samples=3, progress=False)
    meta = json.loads((out / "samples.json").read_text())
    stem = ds.samples[0].id
    assert len(set(meta["seeds"][stem])) == 3
    imgs = [np.asarray(Image.open(out / f"{stem}_s{k}.png")) for k in range(3)]
    assert not np.array_equal(imgs[0], imgs[1])
