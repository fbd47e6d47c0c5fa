"""RESAIL on its own papers' datasets: the retrieval database is built from, and found for, every layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench import api
from bench.cli import cli
from tests import fixtures_real as fx

TINY = {"ngf": "4", "spade_hidden": "8", "style_length": "8", "ndf": "4", "crop_size": "64", "load_size": "64",
        "preprocess_mode": "fixed", "conv_s_padding": "1", "no_vgg_loss": "true", "batch_size": "2", "topk": "3",
        "max_iters": "1"}
LAYOUTS = {
    "ade20k": (lambda r: fx.write_ade20k(r, n_train=3, n_val=2, size=(48, 64)), {}),
    "cityscapes": (lambda r: fx.write_cityscapes(r, n_train=3, n_val=2),
                   {"aspect_ratio": "2.0", "crop_size": "256", "load_size": "256"}),
    "coco": (lambda r: fx.write_coco_official(r, n_train=3, n_val=2), {}),
}


@pytest.mark.parametrize("dataset", ["ade20k", "coco", pytest.param("cityscapes", marks=pytest.mark.slow)])
def test_resail_indexes_trains_and_generates_on_the_official_layout(dataset: str, tmp_path: Path,
                                                                    bench_cache: Path) -> None:
    write, extra = LAYOUTS[dataset]
    root = tmp_path / "data"
    write(root)
    sets = [x for k, v in {**TINY, **extra}.items() if k != "max_iters" for x in ("--set", f"{k}={v}")]
    index = CliRunner().invoke(cli, ["resail", "index", "--dataset", dataset, "--data-root", str(root), *sets])
    assert index.exit_code == 0, index.output
    assert "segments" in index.output
    built = sorted((bench_cache / "resail").glob("*.npz"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    res = api.train("resail", dataset, tmp_path / "out", data_root=root, overrides={**TINY, **extra}, device="cpu",
                    progress=False)
    assert res.checkpoint.is_file()
    assert sorted((bench_cache / "resail").glob("*.npz")) == built and built[0].stat().st_mtime_ns == stamp  # found
    out = api.generate("resail", dataset, res.checkpoint, tmp_path / "gen", data_root=root, device="cpu",
                       progress=False)
    images = sorted(out.glob("*.png"))
    assert len(images) == 2 and all(np.asarray(Image.open(p)).ndim == 3 for p in images)


def test_training_samples_never_retrieve_themselves_on_an_official_layout(tmp_path: Path, bench_cache: Path) -> None:
    fx.write_ade20k(tmp_path / "data", n_train=3, n_val=2, size=(48, 64))
    s = api.setup("resail", "ade20k", data_root=tmp_path / "data", overrides=TINY)
    model = s.build("cpu", 0)
    model.bind_data(s.data_root, progress=False)
    train = s.open("train")
    batch = {"path": [train[i]["path"] for i in range(3)], "id": [train[i]["id"] for i in range(3)]}
    excluded = model._exclusions(model.database, batch, 3)
    assert excluded == [model.database.source_index(i) for i in batch["id"]] and min(excluded) >= 0
    val = s.open("val")
    vbatch = {"path": [val[0]["path"]], "id": [val[0]["id"]]}
    assert model._exclusions(model.database, vbatch, 1) == [-1]
