"""95% confidence intervals, paired comparisons and seed aggregation for sisbench's scores.

Every score is a *statistic of the evaluation set*: a function of one datum per image (a PSNR value, a
confusion matrix, an Inception feature vector) that can be evaluated on reweighted copies of the set,
``weights [B, n] -> [B]`` (:mod:`bench.metrics.uncertainty_stats`):

* :class:`MeanStatistic`: PSNR, SSIM, RMSE (mean of per-image values, :mod:`bench.metrics.reconstruction`);
* :class:`ConfusionStatistic`: mIoU / pixel accuracy of summed per-image confusion matrices, scored by
  :func:`bench.metrics.segmentation.miou` / :func:`~bench.metrics.segmentation.pixel_accuracy` themselves;
* :class:`FIDStatistic`, :class:`KIDStatistic`, :class:`PrecisionStatistic`, :class:`RecallStatistic`:
  generated images reweighted against the fixed real set.

Usage::

    stat = ConfusionStatistic(cms, "miou")           # cms: int64 [n, K, K], one matrix per label map
    ci = interval(stat, seed=0)                       # Interval(estimate, low, high, level, method, ...)
    ci.to_dict()                                      # JSON-ready; records method, B and seed
    cmp = compare(stat_a, stat_b, names=("sean", "spade"))   # interval of a - b, cmp.significant
    marks = mark_best({"sean": s1, "spade": s2, "oasis": s3}, higher_is_better=True)
    marks.bold("sean")                                # True only if significantly better than every other
    seed_summary([0.412, 0.431, 0.405])               # mean +- sd over training seeds (ddof=1, n stated)

**Methods.** Each statistic names its default (``interval_method``); ``method=`` overrides it.

* ``"percentile"`` (per-image means, mIoU, accuracy): percentile bootstrap (Efron & Tibshirani, *An
  Introduction to the Bootstrap*, 1993, ch. 13). ``B`` resamples of the ``n`` images with replacement,
  drawn as ``np.random.default_rng(seed).integers(0, n, (B, n))``; the bounds are the ``(1 - level) / 2``
  and ``(1 + level) / 2`` quantiles of the ``B`` replicates (numpy's linear interpolation).
* ``"delta"`` (FID): infinitesimal jackknife / delta method (Jaeckel 1972; Efron, *The Jackknife, the
  Bootstrap and Other Resampling Plans*, 1982, ch. 6). ``g_i = d score / d w_i`` at ``w = 1`` (analytic,
  :meth:`FIDStatistic.influence`), ``var = n / (n - 1) * sum_i (g_i - mean g)^2``, interval
  ``estimate +- t_{n-1}((1 + level) / 2) * sqrt(var)``. One ``n x n`` eigendecomposition in all.
* ``"jackknife"`` (KID, precision, recall): grouped delete-d jackknife (Efron & Tibshirani ch. 11; Shao &
  Tu, *The Jackknife and Bootstrap*, 1995). The images are split into ``G`` groups by a seeded permutation
  (``np.random.default_rng(seed).permutation(n)``, ``np.array_split``); the score is recomputed without each
  group, ``var = (G - 1) / G * sum_j (t_j - mean t)^2``, interval ``estimate +- t_{G-1}(.) * sqrt(var)``.
  Its bounds are clipped to a score's known range (precision, recall: [0, 1]).

Why not the bootstrap for FID: a bootstrap resample holds only ~63% distinct images, and FID grows as the
number of distinct images falls (its bias is O(1/n); Chong & Forsyth, CVPR 2020). Measured on Gaussian
features with the real set fixed (truth = mean FID over 500-1000 generated sets of the same n, 200
repetitions): at n = m = 100, D = 64 the bootstrap replicates sit 10.8 above the estimate while FID's
sampling sd is 0.92, so the 95% percentile interval covered the truth in 0% of repetitions (basic
bootstrap: 0%), and the bootstrap sd (1.87) is twice the true one. The delta method's sd was 1.03 / 2.55 /
2.77 against true 0.93 / 2.52 / 2.89 (n, D = 100, 64 / 60, 128 / 200, 512), covering in 97.5 / 93 / 94.5%;
the grouped jackknife (G = 50) did as well (sd 0.95 / 3.32 / 2.91) but costs G eigenproblems of size
~n: 260 s at n = 2000, D = 2048 with one BLAS thread on this 2-core machine, against 11 s for the delta
method (``python -m bench.perf.bootstrap_cost``). KID's percentile bootstrap
covered in 97.5-99%, its jackknife in 96.5-98.5%. Recall is not a smooth statistic (k-NN balls): its
jackknife is conservative (98-99% coverage, intervals ~2x too wide) against 89.5-95% for the percentile
bootstrap (n = 100, D = 16 and 64); precision covered in 91-95.5% either way. Set-level scores therefore
avoid the bootstrap by default (erring wide for recall keeps "significantly better" honest); it remains
available for them.

Resample plans depend only on ``(n, B or G, seed)``, so every metric of a run and every run of a paired
comparison use the same resamples, and a recorded seed reproduces an interval exactly. Copies whose score
is NaN (KID with the whole weight on one image, a confusion matrix of ignored pixels only) are left out.

**What an interval covers.** The variability from *which* label maps happen to form the evaluation set
(for FID/KID: which generated images, against the fixed real set), for a fixed trained model, segmenter and
real set, at this ``n``; FID depends on ``n``, so only compare FIDs at equal ``n``. It does not cover
training-seed variability: train several seeds and use :func:`seed_summary`.

The resampling is written here rather than taken from ``scipy.stats.bootstrap``/``jackknife_resampling``:
those materialise the resampled data (a ``[B, n, 2048]`` feature block), while FID/KID/mIoU need
weighted, set-level evaluations and one resample plan shared across metrics and runs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol

import numpy as np

from bench.errors import ConfigError, MetricError
from bench.metrics.uncertainty_stats import (
    ConfusionStatistic,
    FIDStatistic,
    IntervalMethod,
    KIDStatistic,
    MeanStatistic,
    PrecisionStatistic,
    RecallStatistic,
)

DEFAULT_RESAMPLES = 1000
DEFAULT_GROUPS = 100
DEFAULT_LEVEL = 0.95
DEFAULT_SEED = 0
METHODS = ("percentile", "jackknife", "delta")
_BLOCK = 256  # weight rows evaluated per call: bounds memory at [256, n] and [256, D]

__all__ = [
    "BestMarks",
    "Comparison",
    "ConfusionStatistic",
    "FIDStatistic",
    "Interval",
    "KIDStatistic",
    "MeanStatistic",
    "PrecisionStatistic",
    "RecallStatistic",
    "SeedSummary",
    "Statistic",
    "bootstrap",
    "compare",
    "interval",
    "jackknife",
    "jackknife_weights",
    "mark_best",
    "paired_bootstrap",
    "per_class_iou_intervals",
    "replicates",
    "resample_weights",
    "seed_summary",
]


class Statistic(Protocol):
    """A set-level score that can be evaluated on reweighted copies of the evaluation set.

    Attributes:
        n: number of images (the resampling unit).
        interval_method: the default method, ``"percentile"`` or ``"jackknife"`` (optional attribute;
            ``"percentile"`` when absent).
        value_range: optional ``(low, high)`` the score cannot leave; jackknife bounds are clipped to it.
    """

    n: int

    def __call__(self, weights: np.ndarray) -> np.ndarray:
        """Scores ``[B]`` (float64) for multiplicity weights ``[B, n]`` (non-negative integers)."""
        ...


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _from_json_float(x: float | None) -> float:
    return float("nan") if x is None else float(x)


@dataclass(frozen=True, kw_only=True)
class Interval:
    """A point estimate with its bootstrap confidence interval.

    Attributes:
        estimate: the statistic on the evaluation set itself, in the metric's own units (fractions in
            [0, 1] for mIoU/accuracy, dB for PSNR, raw FID/KID).
        low: lower bound, same units; NaN when no replicate was finite.
        high: upper bound, same units.
        level: confidence level in (0, 1), e.g. 0.95.
        method: "percentile" (bootstrap), "jackknife" (grouped jackknife, t interval) or "delta"
            (infinitesimal jackknife, t interval).
        n_resamples: the number of bootstrap resamples B, of jackknife groups G, or 0 (delta).
        seed: the integer seed of ``np.random.default_rng`` that drew the resamples (or the groups);
            ``None`` for the delta method, which draws nothing.
    """

    estimate: float
    low: float
    high: float
    level: float = DEFAULT_LEVEL
    method: str = "percentile"
    n_resamples: int = DEFAULT_RESAMPLES
    seed: int | None = DEFAULT_SEED

    def contains(self, value: float) -> bool:
        """Whether ``low <= value <= high`` (False when a bound is NaN)."""
        return bool(self.low <= value <= self.high)

    @property
    def half_width(self) -> float:
        """``(high - low) / 2``, for a ``value ± half_width`` display."""
        return (self.high - self.low) / 2.0

    def format(self, fmt: str = ".4g") -> str:
        """``"estimate [low, high]"`` with each number formatted by ``format(x, fmt)``."""
        return f"{format(self.estimate, fmt)} [{format(self.low, fmt)}, {format(self.high, fmt)}]"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field; non-finite numbers become ``None``."""
        out = asdict(self)
        for key in ("estimate", "low", "high"):
            out[key] = _json_float(out[key])
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Interval:
        """Inverse of :meth:`to_dict` (``None`` numbers come back as NaN)."""
        return cls(
            estimate=_from_json_float(data["estimate"]),
            low=_from_json_float(data["low"]),
            high=_from_json_float(data["high"]),
            level=float(data["level"]),
            method=str(data["method"]),
            n_resamples=int(data["n_resamples"]),
            seed=None if data["seed"] is None else int(data["seed"]),
        )


@dataclass(frozen=True, kw_only=True)
class Comparison:
    """Paired bootstrap comparison of run ``a`` against run ``b`` on the same label maps.

    Attributes:
        a: name of the first run.
        b: name of the second run.
        difference: interval of ``score(a) - score(b)`` (same units as the metric).
    """

    a: str
    b: str
    difference: Interval

    @property
    def significant(self) -> bool:
        """Whether the difference interval excludes 0 (a two-sided test at ``1 - level``; False if NaN)."""
        d = self.difference
        return bool(d.low > 0.0 or d.high < 0.0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"a", "b", "difference": Interval.to_dict(), "significant"}``."""
        return {
            "a": self.a,
            "b": self.b,
            "difference": self.difference.to_dict(),
            "significant": self.significant,
        }


@dataclass(frozen=True, kw_only=True)
class BestMarks:
    """Which run of a table column is best, and which runs are statistically tied with it.

    Attributes:
        best: the run with the best point estimate (first in input order on an exact tie).
        tied: the other runs whose paired difference interval with ``best`` contains 0.
        higher_is_better: the metric's direction.
        comparisons: for every other run ``r``, ``Comparison(a=best, b=r)``.
    """

    best: str
    tied: tuple[str, ...]
    higher_is_better: bool
    comparisons: Mapping[str, Comparison] = field(default_factory=dict)

    @property
    def significant(self) -> bool:
        """True when there is at least one other run and ``best`` is significantly better than every one.

        Each pairwise interval is at the requested level and none is adjusted for multiplicity: requiring
        *all* pairwise tests to reject is an intersection-union test, valid at that level as it stands.
        """
        return bool(self.comparisons) and not self.tied

    def bold(self, name: str) -> bool:
        """Whether the cell of run ``name`` should be bold: it is ``best`` and :attr:`significant`."""
        return name == self.best and self.significant

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with every comparison."""
        return {
            "best": self.best,
            "tied": list(self.tied),
            "higher_is_better": self.higher_is_better,
            "significant": self.significant,
            "comparisons": {k: v.to_dict() for k, v in self.comparisons.items()},
        }


@dataclass(frozen=True, kw_only=True)
class SeedSummary:
    """Mean and sample standard deviation of one score over training seeds.

    Attributes:
        mean: mean over seeds, in the metric's units.
        std: standard deviation with ``ddof`` (1, the sample sd); ``None`` when ``n == 1``.
        n: number of seeds.
        ddof: delta degrees of freedom of ``std`` (always 1).
    """

    mean: float
    std: float | None
    n: int
    ddof: int = 1

    def format(self, fmt: str = ".4g") -> str:
        """``"mean ± std (n=3)"``, or ``"mean (n=1)"`` for a single seed."""
        if self.std is None:
            return f"{format(self.mean, fmt)} (n={self.n})"
        return f"{format(self.mean, fmt)} ± {format(self.std, fmt)} (n={self.n})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict of every field."""
        return {"mean": _json_float(self.mean), "std": self.std, "n": self.n, "ddof": self.ddof}


def seed_summary(values: Sequence[float]) -> SeedSummary:
    """Aggregate one score over training seeds: mean and sample sd (``ddof=1``), with ``n`` stated.

    Args:
        values: the score of each seed (float, the metric's units), one per seed.

    Returns:
        A :class:`SeedSummary`; ``std`` is ``None`` for a single seed (no spread can be estimated).

    Raises:
        MetricError: no values, or a non-finite value.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise MetricError("seed_summary needs at least one value (one score per training seed)")
    if not np.isfinite(arr).all():
        raise MetricError(f"seed_summary got a non-finite score among {arr.tolist()}; check the runs")
    std = float(np.std(arr, ddof=1)) if arr.size > 1 else None
    return SeedSummary(mean=float(arr.mean()), std=std, n=int(arr.size))


def _check_plan(n: int, count: int, seed: int, level: float, what: str = "n_resamples") -> None:
    if n < 2:
        raise MetricError(f"an interval needs at least 2 images, got {n}")
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 1:
        raise ConfigError(f"{what} must be a positive integer, got {count!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ConfigError(
            f"the resampling seed must be a non-negative integer (it is recorded), got {seed!r}"
        )
    if not 0.0 < level < 1.0:
        raise ConfigError(f"the confidence level must be in (0, 1), e.g. 0.95, got {level!r}")


def resample_weights(n: int, n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Multiplicity weights of ``n_resamples`` bootstrap resamples of ``n`` images.

    Row ``b`` counts how often each image is drawn when ``n`` indices are drawn uniformly with replacement
    by ``np.random.default_rng(seed).integers(0, n, size=(n_resamples, n))``.

    Returns:
        int64 ``[n_resamples, n]``, each row summing to ``n``; a function of ``(n, n_resamples, seed)`` only.

    Raises:
        MetricError: ``n < 2``.
        ConfigError: ``n_resamples < 1`` or a seed that is not a non-negative integer.
    """
    _check_plan(n, n_resamples, seed, DEFAULT_LEVEL)
    b = int(n_resamples)
    idx = np.random.default_rng(int(seed)).integers(0, n, size=(b, n))
    idx += np.arange(b)[:, None] * n
    return np.bincount(idx.ravel(), minlength=b * n).reshape(b, n)


def jackknife_weights(n: int, groups: int = DEFAULT_GROUPS, seed: int = DEFAULT_SEED) -> np.ndarray:
    """Leave-one-group-out weights: ``min(groups, n)`` rows, 0 for the left-out group's images, else 1.

    Groups come from ``np.array_split(np.random.default_rng(seed).permutation(n), G)`` (sizes differ by at
    most one), so images stored in a meaningful order (by city, by scene) are not left out together.

    Returns:
        int64 ``[G, n]``; with ``G = n`` it is the delete-1 jackknife (then the seed changes nothing).

    Raises:
        MetricError: ``n < 2``, or groups so large that a copy keeps fewer than 2 images.
        ConfigError: ``groups < 2`` or a bad seed.
    """
    _check_plan(n, groups, seed, DEFAULT_LEVEL, "groups")
    g = min(int(groups), n)
    if g < 2:
        raise ConfigError(f"the jackknife needs at least 2 groups, got {groups}")
    if n - math.ceil(n / g) < 2:
        raise MetricError(f"{n} images in {g} groups leave fewer than 2 images per jackknife copy")
    w = np.ones((g, n), dtype=np.int64)
    for j, members in enumerate(np.array_split(np.random.default_rng(int(seed)).permutation(n), g)):
        w[j, members] = 0
    return w


def _evaluate(stat: Statistic, plan: _Plan) -> np.ndarray:
    """Replicates ``[B]`` / ``[G]`` of ``stat`` under the plan, or its influence values ``[n]`` (delta)."""
    if plan.weights is None:
        influence = getattr(stat, "influence", None)
        if influence is None:
            raise ConfigError(
                f"{type(stat).__name__} has no influence function for the delta method; "
                "use method='percentile' or 'jackknife'"
            )
        return np.asarray(influence(), dtype=np.float64)
    w = plan.weights
    parts = [np.asarray(stat(w[i : i + _BLOCK]), dtype=np.float64) for i in range(0, len(w), _BLOCK)]
    return np.concatenate(parts)


def _estimate(stat: Statistic) -> float:
    return float(np.asarray(stat(np.ones((1, stat.n), dtype=np.int64)), dtype=np.float64)[0])


def _method(stats: Sequence[Statistic], method: str | None) -> IntervalMethod:
    if method is None:
        found = {getattr(s, "interval_method", "percentile") for s in stats}
        if len(found) != 1:
            raise ConfigError(f"the statistics default to different methods {sorted(found)}; pass method=")
        method = found.pop()
    if method not in METHODS:
        raise ConfigError(f"unknown interval method {method!r}; use one of {', '.join(METHODS)}")
    return method  # type: ignore[return-value]


@dataclass(frozen=True)
class _Plan:
    method: IntervalMethod
    weights: np.ndarray | None  # None: the delta method, which uses influence values instead of copies
    count: int  # B resamples, G groups, or 0 (delta)
    seed: int | None
    level: float
    value_range: tuple[float, float] | None = None


def _plan(n: int, method: IntervalMethod, n_resamples: int, groups: int, seed: int, level: float) -> _Plan:
    if method == "delta":
        _check_plan(n, 1, 0, level)
        return _Plan(method, None, 0, None, level)
    if method == "percentile":
        _check_plan(n, n_resamples, seed, level)
        return _Plan(method, resample_weights(n, n_resamples, seed), int(n_resamples), int(seed), level)
    _check_plan(n, groups, seed, level, "groups")
    w = jackknife_weights(n, groups, seed)
    return _Plan(method, w, len(w), int(seed), level)


def _summarise(plan: _Plan, estimate: float, reps: np.ndarray) -> Interval:
    reps = reps[~np.isnan(reps)]
    low = high = float("nan")
    if plan.method == "percentile" and reps.size:
        probs = [(1.0 - plan.level) / 2.0, (1.0 + plan.level) / 2.0]
        with np.errstate(invalid="ignore"):  # inf - inf while interpolating; handled just below
            q = np.quantile(reps, probs)
        if np.isnan(q).any():  # interpolation between two infinite replicates (PSNR of identical images)
            q = np.quantile(reps, probs, method="nearest")
        low, high = float(q[0]), float(q[1])
    elif reps.size >= 2:  # jackknife replicates or delta-method influence values
        from scipy.stats import t as student_t

        g = reps.size
        factor = (g - 1) / g if plan.method == "jackknife" else g / (g - 1)
        with np.errstate(invalid="ignore"):
            sd = float(np.sqrt(factor * np.sum((reps - reps.mean()) ** 2)))
            half = float(student_t.ppf((1.0 + plan.level) / 2.0, g - 1)) * sd
        low, high = estimate - half, estimate + half
        if plan.value_range is not None:
            low, high = max(low, plan.value_range[0]), min(high, plan.value_range[1])
    return Interval(
        estimate=estimate,
        low=low,
        high=high,
        level=plan.level,
        method=plan.method,
        n_resamples=plan.count,
        seed=plan.seed,
    )


def replicates(
    stat: Statistic,
    *,
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    groups: int = DEFAULT_GROUPS,
    seed: int = DEFAULT_SEED,
) -> np.ndarray:
    """The float64 values behind :func:`interval`: ``[B]`` resampled scores, ``[G]`` leave-group-out
    scores, or (delta) the ``[n]`` influence values ``d score / d w_i``.

    Useful for diagnostics, e.g. the bootstrap shift ``replicates(...).mean() - estimate``.

    Raises:
        MetricError, ConfigError: as :func:`interval`.
    """
    m = _method([stat], method)
    return _evaluate(stat, _plan(stat.n, m, n_resamples, groups, seed, DEFAULT_LEVEL))


def interval(
    stat: Statistic,
    *,
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    groups: int = DEFAULT_GROUPS,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """Confidence interval of one statistic by its default method (or ``method``).

    Args:
        stat: a :class:`Statistic` (:class:`MeanStatistic`, :class:`ConfusionStatistic`,
            :class:`FIDStatistic`, :class:`KIDStatistic`, ...).
        method: ``"percentile"``, ``"jackknife"`` or ``"delta"`` (statistics with ``influence()``);
            ``None`` takes ``stat.interval_method``.
        n_resamples: bootstrap resamples B (percentile); 1000 keeps the bounds' Monte Carlo error ~2% of
            the width.
        groups: jackknife groups G (jackknife; capped at ``n``).
        seed: the recorded integer seed of the resamples or of the group split.
        level: confidence level in (0, 1).

    Returns:
        :class:`Interval` around the plain estimate (all weights 1).

    Raises:
        MetricError: fewer than 2 images, or the statistic rejects its data.
        ConfigError: an unknown method, or bad ``n_resamples``, ``groups``, ``seed`` or ``level``.
    """
    m = _method([stat], method)
    plan = replace(
        _plan(stat.n, m, n_resamples, groups, seed, level), value_range=getattr(stat, "value_range", None)
    )
    return _summarise(plan, _estimate(stat), _evaluate(stat, plan))


def bootstrap(
    stat: Statistic,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> Interval:
    """Percentile-bootstrap interval of ``stat`` (:func:`interval` with ``method="percentile"``)."""
    return interval(stat, method="percentile", n_resamples=n_resamples, seed=seed, level=level)


def jackknife(
    stat: Statistic, *, groups: int = DEFAULT_GROUPS, seed: int = DEFAULT_SEED, level: float = DEFAULT_LEVEL
) -> Interval:
    """Grouped-jackknife t interval of ``stat`` (:func:`interval` with ``method="jackknife"``)."""
    return interval(stat, method="jackknife", groups=groups, seed=seed, level=level)


def _check_paired(stats: Sequence[Statistic], names: Sequence[str]) -> int:
    sizes = {name: s.n for name, s in zip(names, stats)}
    if len(set(sizes.values())) != 1:
        raise MetricError(
            f"a paired comparison needs every run scored on the same label maps, but the image counts differ: "
            f"{sizes}; score the runs on the same split"
        )
    return stats[0].n


def compare(
    stat_a: Statistic,
    stat_b: Statistic,
    *,
    names: tuple[str, str] = ("a", "b"),
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    groups: int = DEFAULT_GROUPS,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> Comparison:
    """Paired interval of ``score(a) - score(b)`` for two runs scored on the same ``n`` label maps.

    Both statistics are evaluated on the *same* copies of the set (image ``i`` of one run is paired with
    image ``i`` of the other: the same label map), so the shared difficulty of the images cancels. For
    FID/KID the generated features of both runs are reweighted with the same indices against the same real
    set.

    Args:
        stat_a: the first run's statistic (row ``i`` of its data = label map ``i``).
        stat_b: the second run's statistic, same metric and same image order.
        names: the two run names to record.
        method: as :func:`interval`; ``None`` takes the statistics' common default.
        n_resamples: bootstrap resamples B.
        groups: jackknife groups G.
        seed: recorded seed.
        level: confidence level.

    Returns:
        :class:`Comparison`; ``.significant`` when the difference interval excludes 0.

    Raises:
        MetricError: the runs have different image counts, or fewer than 2 images.
        ConfigError: bad method, ``n_resamples``, ``groups``, ``seed`` or ``level``.
    """
    n = _check_paired([stat_a, stat_b], names)
    plan = _plan(n, _method([stat_a, stat_b], method), n_resamples, groups, seed, level)
    reps = _evaluate(stat_a, plan) - _evaluate(stat_b, plan)  # linear: also right for influence values
    diff = _summarise(plan, _estimate(stat_a) - _estimate(stat_b), reps)
    return Comparison(a=names[0], b=names[1], difference=diff)


def paired_bootstrap(
    stat_a: Statistic,
    stat_b: Statistic,
    *,
    names: tuple[str, str] = ("a", "b"),
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> Comparison:
    """Paired percentile bootstrap of ``score(a) - score(b)`` (:func:`compare` with ``"percentile"``)."""
    return compare(
        stat_a, stat_b, names=names, method="percentile", n_resamples=n_resamples, seed=seed, level=level
    )


def mark_best(
    stats: Mapping[str, Statistic],
    *,
    higher_is_better: bool,
    method: str | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    groups: int = DEFAULT_GROUPS,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> BestMarks:
    """Pick the best run of a table column and the runs statistically tied with it.

    The best run has the best point estimate in the metric's direction (take ``higher_is_better`` from
    ``bench.metrics.METRICS.get(key)``). Every other run is compared with it as in :func:`compare`, on one
    shared plan (each run's replicates are computed once); a run is *tied* when the interval of
    ``best - run`` contains 0. Make the best cell bold only when :attr:`BestMarks.significant`.

    Args:
        stats: run name -> statistic of one metric, all over the same label maps in the same order.
        higher_is_better: the metric's direction.
        method: as :func:`interval`; ``None`` takes the statistics' common default.
        n_resamples: bootstrap resamples B.
        groups: jackknife groups G.
        seed: recorded seed.
        level: confidence level of each pairwise interval.

    Returns:
        :class:`BestMarks`.

    Raises:
        MetricError: no runs, different image counts, or a NaN point estimate.
        ConfigError: bad method, ``n_resamples``, ``groups``, ``seed`` or ``level``.
    """
    if not stats:
        raise MetricError("mark_best needs at least one run")
    names = list(stats)
    n = _check_paired([stats[k] for k in names], names)
    m = _method([stats[k] for k in names], method)
    estimates = {k: _estimate(stats[k]) for k in names}
    if any(math.isnan(v) for v in estimates.values()):
        raise MetricError(f"a run's score is NaN ({estimates}); it cannot be ranked")
    sign = 1.0 if higher_is_better else -1.0
    best = max(names, key=lambda k: sign * estimates[k])  # max keeps the first of equal keys
    comparisons: dict[str, Comparison] = {}
    if len(names) > 1:
        plan = _plan(n, m, n_resamples, groups, seed, level)
        reps = {k: _evaluate(stats[k], plan) for k in names}
        for k in names:
            if k != best:
                diff = _summarise(plan, estimates[best] - estimates[k], reps[best] - reps[k])
                comparisons[k] = Comparison(a=best, b=k, difference=diff)
    tied = tuple(k for k, c in comparisons.items() if not c.significant)
    return BestMarks(best=best, tied=tied, higher_is_better=higher_is_better, comparisons=comparisons)


def per_class_iou_intervals(
    confusions: Any,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    level: float = DEFAULT_LEVEL,
) -> list[Interval]:
    """Percentile-bootstrap interval of each class's IoU (fractions in [0, 1]), on one resample plan.

    Args:
        confusions: per-image confusion matrices, integer ``[n, K, K]`` (see :class:`ConfusionStatistic`).
        n_resamples: bootstrap resamples B.
        seed: recorded seed (the same plan as :func:`interval` with this seed).
        level: confidence level.

    Returns:
        ``K`` intervals in class order. A class absent from the whole set has a NaN estimate and bounds;
        resamples in which a class is absent are left out of that class's quantiles.

    Raises:
        MetricError, ConfigError: as :class:`ConfusionStatistic` and :func:`interval`.
    """
    stat = ConfusionStatistic(confusions, "miou")
    plan = _plan(stat.n, "percentile", n_resamples, DEFAULT_GROUPS, seed, level)
    w = resample_weights(stat.n, n_resamples, seed)
    reps = np.concatenate([stat.per_class(w[i : i + _BLOCK]) for i in range(0, len(w), _BLOCK)])
    point = stat.per_class(np.ones((1, stat.n), dtype=np.int64))[0]
    return [_summarise(plan, float(point[c]), reps[:, c]) for c in range(stat.num_classes)]
