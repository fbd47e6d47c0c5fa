"""Per-image evaluation data and the 95% confidence intervals of every metric of a record.

A run or eval record's metrics are statistics of its evaluation set. :class:`PerImage` keeps what they
are computed from, one datum per image: a confusion matrix (stored sparse: the union of the non-zero
``(gt, pred)`` cells), the PSNR/SSIM/RMSE values, and the generated images' Inception features (the real
features are fixed and live in the FID cache). It is saved beside the record as
``results/runs/<run_id>.npz`` and referenced (with its sha256) by ``record.extra["per_image"]``, so the
report can compare two runs image by image (:func:`paired_difference`).

:func:`evaluation_intervals` gives each metric its interval with the methods of
:mod:`bench.metrics.uncertainty` (percentile bootstrap for per-image means, mIoU and accuracy; the delta
method for FID; a grouped jackknife for KID, precision and recall), seeded and recorded.
"""

from __future__ import annotations

import io
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import BenchError, ConfigError, MetricError
from bench.metrics.uncertainty import (
    DEFAULT_RESAMPLES,
    ConfusionStatistic,
    FIDStatistic,
    Interval,
    KIDStatistic,
    MeanStatistic,
    PrecisionStatistic,
    RecallStatistic,
    compare,
    interval,
)

log = logging.getLogger(__name__)

#: the seed of every interval's resamples (recorded in each interval)
INTERVAL_SEED = 0
RECONSTRUCTION = ("psnr", "ssim", "rmse")


class CompactConfusionStatistic(ConfusionStatistic):
    """:class:`ConfusionStatistic` over sparse per-image matrices: ``counts[i, j]`` pixels of image ``i`` in
    the flat cell ``cells[j] = gt * K + pred``. Memory ``n x P`` instead of ``n x K x K`` (ADE20K: 150^2
    cells, a few thousand non-zero), same scores.
    """

    def __init__(self, cells: np.ndarray, counts: np.ndarray, num_classes: int, score: str = "miou",
                 convention: str = "all") -> None:
        cells = np.asarray(cells, dtype=np.int64)
        counts = np.asarray(counts, dtype=np.int64)
        if counts.ndim != 2 or counts.shape[1] != cells.size or counts.shape[0] < 2:
            raise MetricError(f"compact confusions need counts [n >= 2, {cells.size}], got {counts.shape}")
        if score not in ("miou", "accu"):
            raise MetricError(f"unknown segmentation score {score!r}; use 'miou' or 'accu'")
        self.n, self.num_classes = int(counts.shape[0]), int(num_classes)
        self.score, self.convention = score, convention
        self._cells, self._counts = cells, counts
        self._exact_float = float(self.n) * float(max(int(counts.sum(axis=1).max()), 1)) < 2.0**53
        self._score_one(self.totals(np.ones((1, self.n)))[0])

    def totals(self, weights: Any) -> np.ndarray:
        from bench.metrics.uncertainty_stats import check_weights

        w = check_weights(weights, self.n)
        part = (np.rint(w @ self._counts.astype(np.float64)).astype(np.int64) if self._exact_float
                else np.rint(w).astype(np.int64) @ self._counts)
        flat = np.zeros((len(w), self.num_classes * self.num_classes), dtype=np.int64)
        flat[:, self._cells] = part
        return flat.reshape(-1, self.num_classes, self.num_classes)


def compact(per_image: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Sparse per-image matrices ``(flat cells, counts)`` → ``(cells [P], counts [n, P])`` over the union
    of their non-zero cells."""
    if not per_image:
        return np.zeros(0, np.int64), np.zeros((0, 0), np.int64)
    cells = np.unique(np.concatenate([np.asarray(c, np.int64) for c, _ in per_image]))
    counts = np.zeros((len(per_image), cells.size), dtype=np.int64)
    for i, (c, v) in enumerate(per_image):
        counts[i, np.searchsorted(cells, c)] = v
    return cells, counts


@dataclass
class PerImage:
    """One datum per evaluated image, for intervals and paired comparisons.

    Attributes:
        seg_ids: sample ids of the confusion rows (split order).
        num_classes: K of the segmenter.
        cm_cells: flat ``gt * K + pred`` cells with a non-zero count somewhere (int64 ``[P]``).
        cm_counts: pixels per image and cell, generated images (int64 ``[n, P]``).
        cm_real_counts: the same for the real images (the ceiling), or empty.
        rec_ids: ids of the reconstruction values (file stems).
        rec: ``{"psnr"|"ssim"|"rmse": float64 [n]}`` (PSNR in dB, may hold +inf; RMSE on [0, 1]).
        feat_ids: file stems of the generated features, in their order.
        gen_features: float32 ``[n, D]`` Inception features of the generated images.
        real_features: float32 ``[m, D]`` of the real images (kept so intervals can be recomputed).
    """

    seg_ids: list[str] = field(default_factory=list)
    num_classes: int = 0
    cm_cells: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    cm_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    cm_real_counts: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.int64))
    rec_ids: list[str] = field(default_factory=list)
    rec: dict[str, np.ndarray] = field(default_factory=dict)
    feat_ids: list[str] = field(default_factory=list)
    gen_features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))
    real_features: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), np.float32))

    def to_bytes(self) -> bytes:
        """The ``.npz`` (compressed) holding every field."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf, seg_ids=np.array(self.seg_ids, dtype=str), num_classes=np.array(self.num_classes),
            cm_cells=self.cm_cells, cm_counts=self.cm_counts, cm_real_counts=self.cm_real_counts,
            rec_ids=np.array(self.rec_ids, dtype=str), feat_ids=np.array(self.feat_ids, dtype=str),
            gen_features=self.gen_features.astype(np.float32), real_features=self.real_features.astype(np.float32),
            **{f"rec_{k}": v for k, v in self.rec.items()})
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> PerImage:
        """Read a ``.npz`` written by :meth:`to_bytes`.

        Raises:
            BenchError: the file is missing or not a per-image file.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                return cls(
                    seg_ids=[str(x) for x in z["seg_ids"]], num_classes=int(z["num_classes"]),
                    cm_cells=z["cm_cells"], cm_counts=z["cm_counts"], cm_real_counts=z["cm_real_counts"],
                    rec_ids=[str(x) for x in z["rec_ids"]], feat_ids=[str(x) for x in z["feat_ids"]],
                    gen_features=z["gen_features"], real_features=z["real_features"],
                    rec={k[4:]: z[k] for k in z.files if k.startswith("rec_") and k != "rec_ids"})
        except (OSError, KeyError, ValueError) as e:
            raise BenchError(f"{path}: not a readable per-image file ({e})") from None

    # --- statistics ---------------------------------------------------------------------------------
    def statistic(self, metric: str) -> Any:
        """The :mod:`bench.metrics.uncertainty` statistic behind ``metric``, or ``None`` without its data."""
        if metric in ("miou", "accu") and self.cm_counts.shape[0] >= 2:
            return CompactConfusionStatistic(self.cm_cells, self.cm_counts, self.num_classes, metric)
        if metric in RECONSTRUCTION and len(self.rec.get(metric, ())) >= 2:
            return MeanStatistic(self.rec[metric])
        if metric in ("fid", "kid", "precision", "recall") and self.gen_features.shape[0] >= 2:
            gen, real = self.gen_features.astype(np.float64), self.real_features.astype(np.float64)
            try:
                return {"fid": FIDStatistic, "kid": KIDStatistic, "precision": PrecisionStatistic,
                        "recall": RecallStatistic}[metric](gen, real)
            except MetricError:  # too few images for k-NN balls
                return None
        return None

    def ids_for(self, metric: str) -> list[str]:
        if metric in ("miou", "accu"):
            return self.seg_ids
        if metric in RECONSTRUCTION:
            return self.rec_ids
        return self.feat_ids


def evaluation_intervals(data: PerImage, metrics: dict[str, float], *, n_resamples: int = DEFAULT_RESAMPLES,
                         seed: int = INTERVAL_SEED) -> tuple[dict[str, dict[str, Any]], float]:
    """95% intervals of every metric in ``metrics`` that ``data`` supports; returns them and the seconds spent.

    Each interval is ``Interval.to_dict()``: estimate, low, high, level, method, n_resamples, seed. A metric
    whose data cannot support an interval (e.g. a jackknife over two images) gets none, with a log line.
    """
    t = time.perf_counter()
    out: dict[str, dict[str, Any]] = {}
    for m in metrics:
        try:
            stat = data.statistic(m)
            if stat is not None:
                out[m] = interval(stat, n_resamples=n_resamples, seed=seed).to_dict()
        except (MetricError, ConfigError) as e:  # too few images for this method: the metric stands alone
            log.info("no interval for %s: %s", m, e)
    return out, time.perf_counter() - t


def paired_difference(a: PerImage, b: PerImage, metric: str, *, seed: int = INTERVAL_SEED) -> Any:
    """Interval of ``metric(a) - metric(b)`` for two records scored on the same label maps, resampling the
    same images in both (:func:`bench.metrics.uncertainty.compare`); ``None`` when they do not share them.
    """
    ids_a, ids_b = a.ids_for(metric), b.ids_for(metric)
    if not ids_a or ids_a != ids_b:
        return None
    sa, sb = a.statistic(metric), b.statistic(metric)
    if sa is None or sb is None:
        return None
    return compare(sa, sb, names=("a", "b"), seed=seed)


__all__ = ["INTERVAL_SEED", "CompactConfusionStatistic", "Interval", "PerImage", "compact", "evaluation_intervals",
           "paired_difference"]
