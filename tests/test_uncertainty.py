"""Statistics of the error bars (bench.metrics.uncertainty): exactness, reproducibility, coverage, power.

Coverage tests simulate data with a known truth and count how often the 95% interval covers it; with a
fixed seed they are deterministic. With 400 repetitions the binomial sd of a coverage is 1.1%, so the
accepted band 93-97% is about +-2 sd around 95%.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.linalg

from bench.errors import BenchError, ConfigError, MetricError
from bench.metrics import segmentation
from bench.metrics.uncertainty import (
    ConfusionStatistic,
    FIDStatistic,
    Interval,
    KIDStatistic,
    MeanStatistic,
    PrecisionStatistic,
    RecallStatistic,
    bootstrap,
    compare,
    interval,
    jackknife,
    jackknife_weights,
    mark_best,
    paired_bootstrap,
    per_class_iou_intervals,
    replicates,
    resample_weights,
    seed_summary,
)

# ---------------------------------------------------------------- helpers


def _direct_fid(gen: np.ndarray, real: np.ndarray) -> float:
    """FID with scipy's matrix square root, TTUR style (the formulation the eigen-trick replaces)."""
    mu1, s1 = gen.mean(axis=0), np.cov(gen, rowvar=False)
    mu2, s2 = real.mean(axis=0), np.cov(real, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(covmean).real)


def _torch_fidelity_fid(gen: np.ndarray, real: np.ndarray) -> float:
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    stat = [{"mu": x.mean(axis=0), "sigma": np.cov(x, rowvar=False)} for x in (gen, real)]
    return float(fid_statistics_to_metric(stat[0], stat[1], False)["frechet_inception_distance"])


def _features(rng: np.random.Generator, n: int, d: int, shift: float = 0.0) -> np.ndarray:
    """Non-negative, anisotropic features like Inception pool activations."""
    return np.abs(rng.normal(size=(n, d)) * rng.uniform(0.5, 2.0, d) + shift)


K_SIM = 4
ALPHA = np.array([3.0, 2.0, 1.0, 0.5])  # class proportions per image ~ Dirichlet(ALPHA)


def _quality(diag: float) -> np.ndarray:
    q = np.full((K_SIM, K_SIM), (1.0 - diag) / (K_SIM - 1))
    np.fill_diagonal(q, diag)
    return q


Q_EASY, Q_HARD = _quality(0.9), _quality(0.6)


def _simulate_confusions(rng: np.random.Generator, n: int, pixels: int = 400) -> np.ndarray:
    """Per-image confusion matrices [n, K, K]: Dirichlet class mixes, half easy and half hard images."""
    gt = rng.multinomial(pixels, rng.dirichlet(ALPHA, size=n))  # [n, K] ground-truth pixel counts
    q = np.where((rng.random(n) < 0.5)[:, None, None], Q_HARD, Q_EASY)  # [n, K, K] per-image quality
    return np.stack([rng.multinomial(gt[:, g], q[:, g, :]) for g in range(K_SIM)], axis=1)


def _population_miou(pixels: int = 400) -> float:
    """mIoU of the expected confusion matrix, which the set-level mIoU estimates."""
    expected = pixels * (ALPHA / ALPHA.sum())[:, None] * (Q_EASY + Q_HARD) / 2.0
    return segmentation.miou(expected)


# ---------------------------------------------------------------- resampling plans and reproducibility


def test_resample_weights_are_bootstrap_counts_fixed_by_the_seed() -> None:
    w = resample_weights(7, n_resamples=500, seed=3)
    assert w.shape == (500, 7) and w.dtype == np.int64
    assert (w.sum(axis=1) == 7).all() and (w >= 0).all()
    # each image is drawn n/n = 1 time on average, and a resample holds ~1 - (1 - 1/n)^n distinct images
    assert w.mean() == pytest.approx(1.0)
    assert (w > 0).sum(axis=1).mean() == pytest.approx(7 * (1 - (6 / 7) ** 7), rel=0.03)
    assert np.array_equal(w, resample_weights(7, n_resamples=500, seed=3))
    assert not np.array_equal(w, resample_weights(7, n_resamples=500, seed=4))


def test_jackknife_weights_leave_each_image_out_exactly_once() -> None:
    w = jackknife_weights(23, groups=5, seed=1)
    assert w.shape == (5, 23)
    assert ((1 - w).sum(axis=0) == 1).all()  # every image is left out by exactly one copy
    assert sorted((1 - w).sum(axis=1)) == [4, 4, 5, 5, 5]  # np.array_split sizes
    assert jackknife_weights(23, groups=100).shape == (23, 23)  # capped at n: delete-1
    assert not np.array_equal(w, jackknife_weights(23, groups=5, seed=2))


def test_intervals_are_reproducible_from_the_recorded_seed() -> None:
    rng = np.random.default_rng(0)
    values = MeanStatistic(rng.normal(size=80))
    cms = ConfusionStatistic(_simulate_confusions(rng, 60))
    fid = FIDStatistic(_features(rng, 40, 12), _features(rng, 40, 12, shift=0.3))
    for stat, method in ((values, None), (cms, None), (fid, "jackknife")):  # 10 groups < n: seed matters
        a, b, c = (interval(stat, method=method, seed=s, groups=10) for s in (11, 11, 12))
        assert a == b
        assert a.seed == 11 and c.seed == 12
        assert (a.low, a.high) != (c.low, c.high)
        assert a.estimate == c.estimate  # the point estimate does not depend on the seed
    ci = bootstrap(values, n_resamples=300, seed=5)
    assert (ci.method, ci.n_resamples, ci.level) == ("percentile", 300, 0.95)
    delta = interval(fid)  # FID's default draws nothing: no seed to record
    assert delta.method == "delta" and delta.seed is None and delta.n_resamples == 0
    assert json.loads(json.dumps(delta.to_dict()))["seed"] is None
    # the recorded fields reproduce it
    again = interval(values, method=ci.method, n_resamples=ci.n_resamples, seed=ci.seed, level=ci.level)
    assert again == ci


def test_interval_to_dict_is_strict_json_and_round_trips() -> None:
    ci = Interval(estimate=0.5, low=0.4, high=0.6, n_resamples=200, seed=9)
    text = json.dumps(ci.to_dict(), allow_nan=False)
    assert Interval.from_dict(json.loads(text)) == ci
    nan = Interval(estimate=float("nan"), low=float("nan"), high=float("inf"))
    data = json.loads(json.dumps(nan.to_dict(), allow_nan=False))
    assert data["estimate"] is None and data["high"] is None
    assert not nan.contains(0.0)
    assert ci.format(".2f") == "0.50 [0.40, 0.60]"


# ---------------------------------------------------------------- exactness of the statistics


def test_all_ones_weights_give_the_plain_metrics() -> None:
    rng = np.random.default_rng(1)
    v = rng.normal(20.0, 3.0, size=30)
    assert MeanStatistic(v)(np.ones((1, 30)))[0] == pytest.approx(v.mean(), rel=1e-14)
    cms = _simulate_confusions(rng, 25)
    total = cms.sum(axis=0)
    assert interval(ConfusionStatistic(cms, "miou")).estimate == segmentation.miou(total)
    assert interval(ConfusionStatistic(cms, "accu")).estimate == segmentation.pixel_accuracy(total)
    assert interval(ConfusionStatistic(cms, "miou", "present")).estimate == segmentation.miou(
        total, "present"
    )
    per_class = per_class_iou_intervals(cms, n_resamples=50)
    assert [c.estimate for c in per_class] == pytest.approx(segmentation.per_class_iou(total).tolist())


def test_resampled_confusion_totals_are_exact_sums_of_the_drawn_images() -> None:
    rng = np.random.default_rng(2)
    cms = _simulate_confusions(rng, 12, pixels=10_000)
    stat = ConfusionStatistic(cms)
    rng_idx = np.random.default_rng(7).integers(0, 12, size=(3, 12))
    w = np.stack([np.bincount(i, minlength=12) for i in rng_idx])
    for row, idx in zip(stat.totals(w), rng_idx):
        assert np.array_equal(row, cms[idx].sum(axis=0))
    scores = stat(w)
    assert scores.tolist() == [segmentation.miou(cms[idx].sum(axis=0)) for idx in rng_idx]


@pytest.mark.parametrize(
    ("n", "m", "d"),
    [(50, 60, 64), (50, 20, 64), (40, 100, 16)],
    ids=["gram-branch", "covariance-branch", "real-eigh-factor"],
)
def test_fid_eigen_formulation_equals_sqrtm_with_and_without_weights(n: int, m: int, d: int) -> None:
    rng = np.random.default_rng(n + m + d)
    gen, real = _features(rng, n, d, shift=0.3), _features(rng, m, d)
    stat = FIDStatistic(gen, real)
    assert stat.estimate() == pytest.approx(_direct_fid(gen, real), rel=1e-6)
    assert stat.estimate() == pytest.approx(_torch_fidelity_fid(gen, real), rel=1e-6)
    w = resample_weights(n, n_resamples=3, seed=1)
    repeated = [_direct_fid(np.repeat(gen, row, axis=0), real) for row in w]
    assert stat(w) == pytest.approx(repeated, rel=1e-6)
    left_out = jackknife_weights(n, groups=4, seed=0)
    kept = [_direct_fid(gen[row > 0], real) for row in left_out]
    assert stat(left_out) == pytest.approx(kept, rel=1e-6)


@pytest.mark.slow
def test_fid_eigen_formulation_at_inception_width() -> None:
    """n=300 < D=2048, the benchmark's regime; each reference takes ~40 s on 2 cores."""
    rng = np.random.default_rng(3)
    gen, real = _features(rng, 300, 2048, shift=0.2), _features(rng, 300, 2048)
    stat = FIDStatistic(gen, real)
    assert stat.estimate() == pytest.approx(_torch_fidelity_fid(gen, real), rel=1e-6)
    row = resample_weights(300, n_resamples=1, seed=0)[0]
    assert stat(row[None])[0] == pytest.approx(_direct_fid(np.repeat(gen, row, axis=0), real), rel=1e-6)


@pytest.mark.parametrize(("n", "m", "d"), [(30, 40, 64), (30, 10, 64), (60, 80, 8)])
def test_fid_influence_is_the_derivative_of_the_weighted_fid(n: int, m: int, d: int) -> None:
    rng = np.random.default_rng(n * m + d)
    stat = FIDStatistic(_features(rng, n, d, shift=0.3), _features(rng, m, d))
    g = stat.influence()
    eps = 1e-2  # smaller steps drown in the eigensolver's round-off on the near-zero eigenvalues (n < D)
    for i in (0, 7, n - 1):
        up, down = np.ones((1, n)), np.ones((1, n))
        up[0, i] += eps
        down[0, i] -= eps
        assert g[i] == pytest.approx((stat(up)[0] - stat(down)[0]) / (2 * eps), rel=1e-4, abs=1e-7)


def test_delta_method_of_a_mean_is_the_t_interval() -> None:
    from scipy.stats import t

    v = np.random.default_rng(8).normal(10.0, 2.0, size=25)
    ci = interval(MeanStatistic(v), method="delta")
    half = t.ppf(0.975, 24) * v.std(ddof=1) / np.sqrt(25)
    assert (ci.low, ci.high) == pytest.approx((v.mean() - half, v.mean() + half), rel=1e-12)
    with pytest.raises(ConfigError, match="no influence function"):
        interval(ConfusionStatistic(_simulate_confusions(np.random.default_rng(9), 10)), method="delta")


def test_kid_equals_torch_fidelity_and_excludes_duplicate_pairs_by_identity() -> None:
    import torch
    from torch_fidelity.metric_kid import kid_features_to_metric

    rng = np.random.default_rng(4)
    gen, real = _features(rng, 40, 32, shift=0.2), _features(rng, 40, 32)
    stat = KIDStatistic(gen, real)
    ref = kid_features_to_metric(
        torch.from_numpy(gen), torch.from_numpy(real), kid_subsets=2, kid_subset_size=40, verbose=False
    )
    assert stat.estimate() == pytest.approx(ref["kernel_inception_distance_mean"], rel=1e-9)

    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return (x @ y.T / x.shape[1] + 1.0) ** 3

    idx = np.random.default_rng(5).integers(0, 40, size=40)  # one bootstrap draw, with duplicates
    distinct = idx[:, None] != idx[None, :]  # pairs of draws showing different images
    k_gg = kernel(gen[idx], gen[idx])
    k_rr = kernel(real, real)
    expected = (
        k_gg[distinct].mean()
        + (k_rr.sum() - np.trace(k_rr)) / (40 * 39)
        - 2.0 * kernel(gen[idx], real).mean()
    )
    w = np.bincount(idx, minlength=40)[None]
    assert stat(w)[0] == pytest.approx(expected, rel=1e-9)
    # counting copies of one image as a pair (by draw position) would give a larger value
    by_position = (k_gg.sum() - np.trace(k_gg)) / (40 * 39) + expected - k_gg[distinct].mean()
    assert by_position > expected


def test_precision_recall_equal_torch_fidelity() -> None:
    import torch
    from torch_fidelity.metric_prc import prc_features_to_metric

    rng = np.random.default_rng(6)
    gen, real = rng.normal(size=(60, 16)) * 1.2 + 0.2, rng.normal(size=(50, 16))
    ref = prc_features_to_metric(
        torch.from_numpy(gen),
        torch.from_numpy(real),
        prc_neighborhood=3,
        prc_batch_size=10000,
        save_cpu_ram=False,
        verbose=False,
    )
    ones = np.ones((1, 60))
    assert PrecisionStatistic(gen, real)(ones)[0] == pytest.approx(ref["precision"], abs=1e-6)
    assert RecallStatistic(gen, real)(ones)[0] == pytest.approx(ref["recall"], abs=1e-6)
    # a bootstrap copy's manifold uses its distinct images: same value as the de-duplicated set
    row = resample_weights(60, n_resamples=1, seed=2)[0]
    dedup = RecallStatistic(gen[row > 0], real)(np.ones((1, int((row > 0).sum()))))[0]
    assert RecallStatistic(gen, real)(row[None])[0] == dedup
    ci = interval(RecallStatistic(gen, real))
    assert 0.0 <= ci.low <= ci.estimate <= ci.high <= 1.0


@pytest.mark.parametrize("n", [60, 300], ids=["neighbour-list-path", "partial-sort-path"])
def test_recall_of_a_copy_equals_recall_of_its_distinct_images(n: int) -> None:
    rng = np.random.default_rng(n)
    gen, real = rng.normal(size=(n, 8)) * 1.1, rng.normal(size=(70, 8))
    stat = RecallStatistic(gen, real)
    rows = np.concatenate([resample_weights(n, n_resamples=2, seed=3), jackknife_weights(n, groups=5)])
    for row, value in zip(rows, stat(rows)):
        kept = gen[row > 0]
        assert value == RecallStatistic(kept, real)(np.ones((1, len(kept))))[0]


def test_infinite_psnr_only_reaches_the_resamples_that_draw_it() -> None:
    v = np.array([30.0, 31.0, np.inf, 29.0])
    stat = MeanStatistic(v)
    w = np.array([[2, 1, 0, 1], [1, 1, 1, 1]])
    out = stat(w)
    assert out[0] == pytest.approx((60.0 + 31.0 + 29.0) / 4) and out[1] == np.inf
    ci = bootstrap(stat, n_resamples=200)
    assert ci.estimate == np.inf and not np.isnan(ci.low) and ci.high == np.inf


# ---------------------------------------------------------------- coverage


def test_percentile_interval_of_a_mean_covers_the_true_mean() -> None:
    rng = np.random.default_rng(10)
    covered = 0
    for rep in range(400):
        values = rng.normal(25.0, 4.0, size=100)  # per-image PSNR-like values, true mean 25
        covered += bootstrap(MeanStatistic(values), n_resamples=1000, seed=rep).contains(25.0)
    assert 0.93 <= covered / 400 <= 0.97


def _miou_coverage(reps: int, n_resamples: int) -> float:
    rng = np.random.default_rng(20)
    truth = _population_miou()
    covered = 0
    for rep in range(reps):
        stat = ConfusionStatistic(_simulate_confusions(rng, 100))
        covered += bootstrap(stat, n_resamples=n_resamples, seed=rep).contains(truth)
    return covered / reps


def test_miou_interval_covers_the_population_miou_quick() -> None:
    """A cheaper version of the slow test below: 150 repetitions (binomial sd 1.8%), B = 400."""
    assert 0.91 <= _miou_coverage(150, 400) <= 0.99


@pytest.mark.slow
def test_miou_interval_covers_the_population_miou() -> None:
    assert 0.93 <= _miou_coverage(400, 1000) <= 0.97


def test_fid_delta_and_jackknife_intervals_cover_the_bootstrap_does_not() -> None:
    """FID with the real set fixed; truth = mean FID over many generated sets of the same size n."""
    rng = np.random.default_rng(30)
    n, d = 40, 16
    real = rng.normal(size=(n, d))
    scale = np.linspace(0.8, 1.5, d)

    def generated() -> np.ndarray:
        return rng.normal(size=(n, d)) * scale + 0.1

    truth = np.mean([FIDStatistic(generated(), real).estimate() for _ in range(1000)])
    delta = jack = boot = 0
    for rep in range(200):
        stat = FIDStatistic(generated(), real)
        delta += interval(stat).contains(truth)
        jack += jackknife(stat, groups=n, seed=rep).contains(truth)
        boot += bootstrap(stat, n_resamples=200, seed=rep).contains(truth)
    assert 0.92 <= delta / 200 <= 0.99
    assert 0.92 <= jack / 200 <= 0.995
    assert boot / 200 < 0.5  # resamples of ~63% distinct images inflate FID beyond its spread
    assert interval(FIDStatistic(generated(), real)).method == "delta"


# ---------------------------------------------------------------- paired comparisons and best marks


def _paired_runs(rng: np.random.Generator, delta: float, n: int = 100) -> tuple[np.ndarray, np.ndarray]:
    difficulty = rng.normal(0.0, 3.0, size=n)  # shared by both runs: the same label maps
    return 25.0 + difficulty + rng.normal(0.0, 1.0, n) + delta, 25.0 + difficulty + rng.normal(0.0, 1.0, n)


def test_paired_bootstrap_holds_its_false_positive_rate_and_finds_a_planted_difference() -> None:
    rng = np.random.default_rng(40)
    null_hits = planted_hits = 0
    for rep in range(400):
        a, b = _paired_runs(rng, 0.0)
        null_hits += paired_bootstrap(MeanStatistic(a), MeanStatistic(b), seed=rep).significant
        a, b = _paired_runs(rng, 0.7)  # 0.7 / (sqrt(2) / sqrt(100)) = 5 sd of the mean difference
        cmp = paired_bootstrap(MeanStatistic(a), MeanStatistic(b), seed=rep)
        planted_hits += cmp.significant and cmp.difference.low > 0
    assert 0.02 <= null_hits / 400 <= 0.08
    assert planted_hits / 400 >= 0.99
    # pairing cancels the shared difficulty (sd 3): unpaired intervals are far wider than the paired one
    a, b = _paired_runs(np.random.default_rng(41), 0.7)
    ci_a, ci_b = bootstrap(MeanStatistic(a), seed=1), bootstrap(MeanStatistic(b), seed=2)
    paired = paired_bootstrap(MeanStatistic(a), MeanStatistic(b)).difference
    assert paired.half_width < 0.5 * np.hypot(ci_a.half_width, ci_b.half_width)


def test_paired_fid_comparison_resamples_the_same_images_in_both_runs() -> None:
    rng = np.random.default_rng(50)
    n, d = 60, 16
    real = rng.normal(size=(n, d))
    null_hits = planted_hits = 0
    for rep in range(100):
        content = rng.normal(size=(n, d))  # label map i drives image i of every run
        run_a = content + 0.5 * rng.normal(size=(n, d))
        run_b = content + 0.5 * rng.normal(size=(n, d))
        run_c = 1.4 * content + 0.5 * rng.normal(size=(n, d))  # a worse generator
        null_hits += compare(FIDStatistic(run_a, real), FIDStatistic(run_b, real), seed=rep).significant
        cmp = compare(FIDStatistic(run_c, real), FIDStatistic(run_a, real), seed=rep)
        planted_hits += cmp.significant and cmp.difference.low > 0
    assert null_hits / 100 <= 0.12
    assert planted_hits / 100 >= 0.9


def test_mark_best_bolds_only_a_significant_winner() -> None:
    rng = np.random.default_rng(60)
    a, b = _paired_runs(rng, 0.0)
    clear = mark_best(
        {"spade": MeanStatistic(b), "sean": MeanStatistic(a + 1.0), "oasis": MeanStatistic(b - 0.5)},
        higher_is_better=True,
    )
    assert clear.best == "sean" and clear.tied == () and clear.significant
    assert clear.bold("sean") and not clear.bold("spade")
    assert set(clear.comparisons) == {"spade", "oasis"}
    assert all(c.a == "sean" and c.difference.low > 0 for c in clear.comparisons.values())
    barely = a - a.mean() + b.mean() + 0.01  # 0.01 better on average, per-image noise sd 1.4
    close = mark_best({"spade": MeanStatistic(b), "sean": MeanStatistic(barely)}, higher_is_better=True)
    assert close.best == "sean" and close.tied == ("spade",) and not close.bold("sean")
    # lower is better (RMSE, FID): the minimum wins
    lower = mark_best({"x": MeanStatistic(b), "y": MeanStatistic(b + 2.0)}, higher_is_better=False)
    assert lower.best == "x" and lower.significant
    json.dumps(lower.to_dict(), allow_nan=False)
    single = mark_best({"only": MeanStatistic(b)}, higher_is_better=True)
    assert single.best == "only" and not single.significant and not single.bold("only")


def test_mark_best_on_fid_uses_the_delta_method_and_the_lower_value() -> None:
    rng = np.random.default_rng(70)
    real = rng.normal(size=(50, 8))
    content = rng.normal(size=(50, 8))
    runs = {
        "good": FIDStatistic(content + 0.3 * rng.normal(size=(50, 8)), real),
        "bad": FIDStatistic(2.0 * content + 1.0, real),
    }
    marks = mark_best(runs, higher_is_better=False)
    assert marks.best == "good" and marks.significant
    assert marks.comparisons["bad"].difference.method == "delta"
    assert marks.comparisons["bad"].difference.high < 0  # good - bad < 0


# ---------------------------------------------------------------- seeds and errors


def test_seed_summary_is_mean_and_sample_sd() -> None:
    s = seed_summary([0.41, 0.43, 0.40])
    assert s.mean == pytest.approx(0.41333333333333333)
    assert s.std == pytest.approx(np.std([0.41, 0.43, 0.40], ddof=1)) and s.n == 3 and s.ddof == 1
    assert s.format(".3f") == "0.413 ± 0.015 (n=3)"
    one = seed_summary([12.5])
    assert one.std is None and one.format(".1f") == "12.5 (n=1)"
    assert json.loads(json.dumps(one.to_dict(), allow_nan=False)) == {
        "mean": 12.5,
        "std": None,
        "n": 1,
        "ddof": 1,
    }
    with pytest.raises(MetricError, match="at least one"):
        seed_summary([])
    with pytest.raises(MetricError, match="non-finite"):
        seed_summary([1.0, float("nan")])


def test_bad_inputs_raise_bench_errors() -> None:
    v = MeanStatistic(np.arange(10.0))
    with pytest.raises(ConfigError, match="level"):
        interval(v, level=95)
    with pytest.raises(ConfigError, match="seed"):
        interval(v, seed=-1)
    with pytest.raises(ConfigError, match="n_resamples"):
        bootstrap(v, n_resamples=0)
    with pytest.raises(ConfigError, match="unknown interval method"):
        interval(v, method="bca")
    with pytest.raises(MetricError, match="same label maps"):
        compare(v, MeanStatistic(np.arange(11.0)))
    with pytest.raises(MetricError, match=r"\[n, K, K\]"):
        ConfusionStatistic(np.zeros((5, 3, 4), dtype=np.int64))
    with pytest.raises(MetricError, match="every pixel ignored"):
        ConfusionStatistic(np.zeros((5, 3, 3), dtype=np.int64))
    with pytest.raises(MetricError, match="same Inception layer"):
        FIDStatistic(np.ones((5, 4)), np.ones((5, 3)))
    with pytest.raises(MetricError, match="NaN"):
        MeanStatistic([1.0, float("nan")])
    with pytest.raises(ConfigError, match="different methods"):
        mark_best(
            {"a": v, "b": FIDStatistic(np.random.rand(10, 3), np.random.rand(10, 3))}, higher_is_better=True
        )
    assert issubclass(MetricError, BenchError) and issubclass(ConfigError, BenchError)


def test_replicates_expose_the_bootstrap_shift_of_fid() -> None:
    rng = np.random.default_rng(80)
    stat = FIDStatistic(_features(rng, 60, 32, shift=0.2), _features(rng, 60, 32))
    reps = replicates(stat, method="percentile", n_resamples=200)
    assert reps.shape == (200,) and reps.mean() > stat.estimate()
    assert replicates(stat).shape == (60,)  # its default, delta: one influence value per image
    assert replicates(stat, method="jackknife", groups=12).shape == (12,)
