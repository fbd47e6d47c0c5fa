"""Every record carries its 95% intervals and the per-image data they come from."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from bench import api
from bench.datasets import write_synthetic
from bench.intervals import (
    CompactConfusionStatistic,
    PerImage,
    compact,
    evaluation_intervals,
    paired_difference,
)
from bench.metrics.uncertainty import ConfusionStatistic, interval
from bench.store import RunStore

TINY = {"ngf": "4", "spade_hidden": "8", "ndf": "4", "batch_size": "2", "max_iters": "2", "load_size": "64",
        "crop_size": "64"}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("iv") / "synth", size=64, n_train=6, n_val=12, seed=4, workers=1)


def test_compact_confusions_score_as_dense() -> None:
    rng = np.random.default_rng(0)
    dense = rng.integers(0, 50, (20, 6, 6)) * (rng.random((20, 6, 6)) < 0.3)
    sparse = [(np.flatnonzero(m.ravel()), m.ravel()[np.flatnonzero(m.ravel())]) for m in dense]
    cells, counts = compact(sparse)
    assert cells.size == np.count_nonzero(dense.sum(axis=0))
    for score in ("miou", "accu"):
        a = interval(ConfusionStatistic(dense, score), seed=3)
        b = interval(CompactConfusionStatistic(cells, counts, 6, score), seed=3)
        assert a == b


def test_run_records_intervals_and_per_image_data(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    rec = api.run("spade", "synthetic", data_root=data, overrides=TINY, results=tmp_path / "r", device="cpu",
                  progress=False, fid_layer="64")
    assert set(rec.intervals) == set(rec.metrics)
    for m, ci in rec.intervals.items():
        assert ci["level"] == 0.95 and ci["method"] in ("percentile", "delta", "jackknife")
        if ci["low"] is not None and math.isfinite(rec.metrics[m]) and m not in ("kid",):
            assert ci["low"] <= rec.metrics[m] + 1e-9 and rec.metrics[m] - 1e-9 <= ci["high"], (m, ci, rec.metrics[m])
    assert rec.intervals["miou"]["method"] == "percentile" and rec.intervals["miou"]["n_resamples"] == 1000
    assert rec.intervals["fid"]["method"] == "delta"
    # the per-image file reproduces every metric with all-ones weights, and the intervals from the seed
    per = PerImage.load(RunStore(tmp_path / "r").per_image_path(rec.run_id))
    ones = np.ones((1, len(per.seg_ids)))
    assert per.statistic("miou")(ones)[0] == pytest.approx(rec.metrics["miou"], abs=0)
    assert per.statistic("accu")(ones)[0] == pytest.approx(rec.metrics["accu"], abs=0)
    assert per.statistic("psnr")(np.ones((1, len(per.rec_ids))))[0] == pytest.approx(rec.metrics["psnr"], rel=1e-12)
    assert per.statistic("fid")(np.ones((1, len(per.feat_ids))))[0] == pytest.approx(rec.metrics["fid"], rel=1e-6)
    again, _ = evaluation_intervals(per, rec.metrics)
    assert again == rec.intervals
    assert rec.extra["per_class_iou"] and len(rec.extra["confusion"]) == per.num_classes
    # paired difference of a record with itself: exactly zero, never significant
    cmp = paired_difference(per, per, "miou")
    assert cmp.difference.low == cmp.difference.high == 0.0 and not cmp.significant


def test_bootstrap_zero_records_no_intervals_under_another_id(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    a = api.run("spade", "synthetic", data_root=data, overrides=TINY, results=tmp_path / "r", device="cpu",
                progress=False, fid_layer="64", metrics="psnr,ssim", bootstrap=0)
    b = api.run("spade", "synthetic", data_root=data, overrides=TINY, results=tmp_path / "r", device="cpu",
                progress=False, fid_layer="64", metrics="psnr,ssim", bootstrap=200)
    assert a.intervals == {} and set(b.intervals) == {"psnr", "ssim"} and a.run_id != b.run_id
    assert b.intervals["psnr"]["n_resamples"] == 200 and a.metrics == b.metrics
