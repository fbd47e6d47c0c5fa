"""Scores as resampling statistics: set-level scores evaluated under image multiplicity weights.

:mod:`bench.metrics.uncertainty` computes intervals by evaluating a score on many reweighted copies of the
evaluation set. A copy is a row of multiplicity weights ``w`` (``w[i]`` = how many times image ``i`` is in
it; an all-ones row is the set itself, a bootstrap row sums to ``n``, a jackknife row has zeros for the
left-out images). Each class here evaluates one score for a block of rows, ``weights [B, n] -> [B]``,
without materialising the resampled data:

* :class:`MeanStatistic`: mean of per-image values (PSNR, SSIM, RMSE);
* :class:`ConfusionStatistic`: mIoU / pixel accuracy of summed per-image confusion matrices;
* :class:`FIDStatistic`, :class:`KIDStatistic`, :class:`PrecisionStatistic`, :class:`RecallStatistic`: the
  generated images reweighted against the fixed real set, with Inception pool features (torch-fidelity's
  ``2048`` layer) as float64 numpy ``[N, D]``.

**FID** (Heusel et al. 2017; torch-fidelity ``metric_fid.py``, after TTUR ``fid.py``)::

    FID = |mu_g - mu_r|^2 + tr S_g + tr S_r - 2 tr sqrt(S_g S_r)

with ``S = np.cov(features, rowvar=False)`` (ddof 1). A weighted copy's mean and covariance are
``mu_w = w X / s`` and ``S_w = sum_i w_i (x_i - mu_w)(x_i - mu_w)^T / (s - 1)`` (``s = sum w``), i.e.
exactly ``np.cov`` of the features with row ``i`` repeated ``w_i`` times. The trace term avoids a D x D
matrix square root: factor ``S_r = R R^T`` once (``R = centered real features^T / sqrt(m - 1)``, ``[D, m]``,
when ``m <= D``; otherwise ``R = V sqrt(Lambda)`` from ``eigh(S_r)``) and write ``S_w = A^T A`` with
``A = diag(sqrt w) (X - mu_w) / sqrt(s - 1)``. The non-zero eigenvalues of ``S_w S_r`` are those of the
symmetric PSD matrix ``(A R)(A R)^T`` (``u x u``, ``u`` = number of images with ``w_i > 0``, ~0.63 n for a
bootstrap row) or of ``(A R)^T (A R)`` (``r x r``), whichever is smaller, so
``tr sqrt(S_w S_r) = sum sqrt(eigvalsh(.))``. With ``Q = (X - mean X) R`` and ``M = Q Q^T`` precomputed, a
copy costs one ``u x u`` symmetric eigenproblem instead of a 2048 x 2048 non-symmetric one.

**KID** (Binkowski et al. 2018; torch-fidelity ``metric_kid.py``): the unbiased MMD^2 with the cubic
polynomial kernel ``k(x, y) = (x.y / D + 1)^3``::

    KID = sum_{i != j} k(g_i, g_j) / (n (n-1)) + sum_{i != j} k(r_i, r_j) / (m (m-1)) - 2 sum_ij k(g_i, r_j) / (n m)

over the full sets. torch-fidelity averages this estimator over random subsets of ``kid_subset_size``
images; when ``n_generated == n_real == kid_subset_size`` (as after :func:`bench.metrics.fid.fid_kid`'s
clamping on equal-size sets, e.g. the synthetic benchmark) every subset is the full set and the two agree
exactly (tested); otherwise both estimate the same MMD^2 and differ by torch-fidelity's subset noise.
Under bootstrap resampling, duplicated images are *not* pairs of distinct samples: the
generated-generated term excludes pairs by image identity, not by draw position, i.e. it is
``sum_{i != j} w_i w_j k(g_i, g_j) / sum_{i != j} w_i w_j`` (``= (w K w - sum_i w_i^2 K_ii) /
(s^2 - sum_i w_i^2)``). Counting the pairs formed by two copies of one image would add ``k(g_i, g_i)``
terms and bias every resample upward. A row whose whole weight sits on one image has no distinct pair
and gives NaN.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from bench.errors import MetricError
from bench.metrics import segmentation

IntervalMethod = Literal["percentile", "jackknife", "delta"]

KID_DEGREE = 3  # torch-fidelity defaults: kid_kernel_poly_degree=3, gamma=1/D, coef0=1
KID_COEF0 = 1.0


def check_features(x: Any, name: str) -> np.ndarray:
    """``x`` as a C-contiguous float64 ``[N, D]`` array with N >= 2 and finite values.

    Raises:
        MetricError: wrong rank, fewer than 2 rows, or non-finite values.
    """
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    if arr.ndim != 2:
        raise MetricError(f"{name} features must be a 2-d [N, D] array, got shape {arr.shape}")
    if arr.shape[0] < 2:
        raise MetricError(f"{name} features need at least 2 images, got {arr.shape[0]}")
    if not np.isfinite(arr).all():
        raise MetricError(f"{name} features contain NaN or inf; re-extract them")
    return arr


def check_weights(weights: Any, n: int) -> np.ndarray:
    """Multiplicity weights as a float64 ``[B, n]`` array (a 1-d row becomes ``[1, n]``).

    Raises:
        MetricError: wrong shape, negative entries, or a row with total weight below 2.
    """
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim == 1:
        w = w[None, :]
    if w.ndim != 2 or w.shape[1] != n:
        raise MetricError(f"weights must have shape [B, {n}] (one multiplicity per image), got {w.shape}")
    if (w < 0).any():
        raise MetricError("weights must be non-negative image multiplicities")
    if (w.sum(axis=1) < 2).any():
        raise MetricError("every weight row needs a total of at least 2 (a covariance needs 2 images)")
    return w


def _same_dim(gen: np.ndarray, real: np.ndarray) -> None:
    if gen.shape[1] != real.shape[1]:
        raise MetricError(
            f"generated features are {gen.shape[1]}-d but real ones are {real.shape[1]}-d; "
            "extract both with the same Inception layer"
        )


class FIDStatistic:
    """FID of (weighted) generated features against fixed real features, vectorised over resamples.

    Args:
        generated: generated-image features, float ``[n, D]`` (n >= 2), one row per image, in the order
            shared by every run scored on the same label maps (row ``i`` = label map ``i``).
        real: real-image features, float ``[m, D]`` (m >= 2).

    Call with weights ``[B, n]`` to get FID ``[B]`` (float64, >= 0 up to rounding); see the module
    docstring for the formulation. Its default interval is the delta method (``interval_method = "delta"``,
    :meth:`influence`): bootstrap resamples hold ~63% distinct images, which inflates FID far beyond its
    sampling spread (measured in :mod:`bench.metrics.uncertainty`). :meth:`estimate` is the plain FID of the two sets and agrees with
    ``torch_fidelity.metric_fid.fid_statistics_to_metric`` and with a ``scipy.linalg.sqrtm`` evaluation
    to 1e-6 relative (tested; measured ~5e-8 at n=300, D=2048, where both references take the square root
    of ~1750 round-off eigenvalues of a rank-deficient product that this formulation clips to 0).

    Raises:
        MetricError: bad shapes, fewer than 2 images, non-finite features, or mismatched dimensions.
    """

    interval_method: IntervalMethod = "delta"

    def __init__(self, generated: Any, real: Any) -> None:
        gen = check_features(generated, "generated")
        ref = check_features(real, "real")
        _same_dim(gen, ref)
        self.n, d = gen.shape
        m = ref.shape[0]
        mu_r = ref.mean(axis=0)
        ref_c = ref - mu_r
        self._tr_real = float(np.einsum("ij,ij->", ref_c, ref_c) / (m - 1))
        if m <= d:  # S_r = R R^T with R = ref_c^T / sqrt(m - 1): no D x D matrix at all
            factor = ref_c.T / np.sqrt(m - 1)
        else:
            lam, vec = np.linalg.eigh(ref_c.T @ ref_c / (m - 1))
            factor = vec * np.sqrt(np.clip(lam, 0.0, None))
        self._r = factor.shape[1]
        gen_mean = gen.mean(axis=0)
        self._gen_c = gen - gen_mean  # centring once keeps the per-resample sums well conditioned
        self._offset = gen_mean - mu_r
        self._sq = np.einsum("ij,ij->i", self._gen_c, self._gen_c)
        self._q = self._gen_c @ factor  # [n, r]
        self._gram = self._q @ self._q.T if self.n <= self._r else None  # [n, n]

    def __call__(self, weights: Any) -> np.ndarray:
        w = check_weights(weights, self.n)
        s = w.sum(axis=1)
        shift = (w @ self._gen_c) / s[:, None]  # [B, D]: resample mean minus the plain generated mean
        mean_term = np.sum((shift + self._offset) ** 2, axis=1)
        tr_gen = (w @ self._sq - s * np.sum(shift**2, axis=1)) / (s - 1)
        tr_sqrt = np.array([self._trace_sqrt(row, total) for row, total in zip(w, s)])
        return mean_term + tr_gen + self._tr_real - 2.0 * tr_sqrt

    def _trace_sqrt(self, w: np.ndarray, s: float) -> float:
        """``tr sqrt(S_w S_r)`` for one weight row, via the smaller symmetric eigenproblem."""
        keep = np.flatnonzero(w)
        wk = w[keep]
        if self._gram is not None:
            g = self._gram[np.ix_(keep, keep)]
            a = (self._gram[keep] @ w) / s  # (Q_i . qbar) for the kept rows
            b = float(wk @ a) / s  # qbar . qbar
            centred = g - a[:, None] - a[None, :] + b
            root = np.sqrt(wk)
            h = centred * root[:, None] * root[None, :] / (s - 1)
        else:
            qk = self._q[keep]
            qbar = (wk @ qk) / s
            h = ((qk * wk[:, None]).T @ qk - s * np.outer(qbar, qbar)) / (s - 1)
        eig = np.linalg.eigvalsh(h)
        return float(np.sqrt(np.clip(eig, 0.0, None)).sum())

    def estimate(self) -> float:
        """The FID of the two feature sets as given (all weights 1)."""
        return float(self(np.ones((1, self.n)))[0])

    def influence(self) -> np.ndarray:
        """``d FID / d w_i`` at ``w = 1``, float64 ``[n]``: the delta method's influence values.

        With ``T(w) = R^T S_w R`` (whose eigenvalues are those of ``S_w S_r``),
        ``dT/dw_i = ((q_i - qbar)(q_i - qbar)^T - T) / (n - 1)`` and ``d tr sqrt(T) = tr(T^{+1/2} dT) / 2``;
        with the eigendecomposition ``Q Q^T = U diag(sigma^2) U^T`` (or of ``T`` when ``r < n``) this is
        ``(sqrt(n-1) sum_k U_ik^2 sigma_k - sum_k sigma_k / sqrt(n-1)) / (2 (n-1))``. The mean and trace terms
        give ``2 (mu_g - mu_r).(x_i - mu_g) / n`` and ``(|x_i - mu_g|^2 - tr S_g) / (n - 1)``. Checked against
        finite differences of :meth:`__call__` (tests).
        """
        n = self.n
        tr_gen = float(self._sq.sum()) / (n - 1)
        mean_part = 2.0 * (self._gen_c @ self._offset) / n
        trace_part = (self._sq - tr_gen) / (n - 1)
        if self._gram is not None:
            lam, vec = np.linalg.eigh(self._gram)
            keep = lam > max(float(lam[-1]), 0.0) * 1e-12  # drops the centring null vector and round-off
            sigma = np.sqrt(lam[keep])
            quad = np.sqrt(n - 1) * (vec[:, keep] ** 2 @ sigma)
            tr_sqrt = float(sigma.sum()) / np.sqrt(n - 1)
        else:
            lam, vec = np.linalg.eigh(self._q.T @ self._q / (n - 1))
            keep = lam > max(float(lam[-1]), 0.0) * 1e-12
            quad = (self._q @ vec[:, keep]) ** 2 @ (1.0 / np.sqrt(lam[keep]))
            tr_sqrt = float(np.sqrt(lam[keep]).sum())
        return mean_part + trace_part - (quad - tr_sqrt) / (n - 1)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """torch-fidelity's KID kernel ``(x y^T / D + 1)^3`` for ``[n, D]`` and ``[m, D]`` float64 -> ``[n, m]``."""
    return (x @ y.T / x.shape[1] + KID_COEF0) ** KID_DEGREE


class KIDStatistic:
    """Unbiased KID (MMD^2, cubic polynomial kernel) of weighted generated features vs fixed real ones.

    Args:
        generated: generated-image features, float ``[n, D]`` (n >= 2), row ``i`` = label map ``i``.
        real: real-image features, float ``[m, D]`` (m >= 2).

    The kernel matrices ``K_gg [n, n]``, the row sums of ``K_gr [n, m]`` and the real-real term are computed
    once (``O((n + m)^2 D)``); a block of ``B`` resamples then costs one ``[B, n] @ [n, n]`` product. Call
    with weights ``[B, n]`` to get KID ``[B]`` (float64; may be slightly negative, as an unbiased estimate
    of a non-negative quantity can be). Duplicated images are excluded from the generated-generated pairs
    by identity (module docstring); a row whose weight sits on one image gives NaN. Like FID its default
    interval is the grouped jackknife, so set-level scores are treated alike.

    Raises:
        MetricError: bad shapes, fewer than 2 images, non-finite features, or mismatched dimensions.
    """

    interval_method: IntervalMethod = "jackknife"

    def __init__(self, generated: Any, real: Any) -> None:
        gen = check_features(generated, "generated")
        ref = check_features(real, "real")
        _same_dim(gen, ref)
        self.n = gen.shape[0]
        m = ref.shape[0]
        self._k_gg = polynomial_kernel(gen, gen)
        self._diag = np.diagonal(self._k_gg).copy()
        self._cross = polynomial_kernel(gen, ref).sum(axis=1) / m  # [n]: mean kernel to the real set
        k_rr = polynomial_kernel(ref, ref)
        self._real_term = float((k_rr.sum() - np.trace(k_rr)) / (m * (m - 1)))

    def __call__(self, weights: Any) -> np.ndarray:
        w = check_weights(weights, self.n)
        s = w.sum(axis=1)
        sq = np.sum(w * w, axis=1)
        pairs = s * s - sq  # number of ordered pairs of distinct images
        within = np.einsum("bi,bi->b", w @ self._k_gg, w) - (w * w) @ self._diag
        with np.errstate(invalid="ignore", divide="ignore"):
            gen_term = np.where(pairs > 0, within / np.where(pairs > 0, pairs, 1.0), np.nan)
        cross = (w @ self._cross) / s
        return gen_term + self._real_term - 2.0 * cross

    def estimate(self) -> float:
        """The unbiased KID of the two full feature sets (all weights 1)."""
        return float(self(np.ones((1, self.n)))[0])


PRC_NEIGHBORHOOD = 3  # k of the k-NN balls (Kynkaanniemi et al. 2019; torch-fidelity's prc_neighborhood)


def _distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Euclidean distances ``[len(x), len(y)]`` in float64 via ``|x|^2 + |y|^2 - 2 x.y`` (one BLAS product,
    as ``torch.cdist`` does for sets of more than 25 rows in torch-fidelity)."""
    sq = np.einsum("ij,ij->i", x, x)[:, None] + np.einsum("ij,ij->i", y, y)[None, :] - 2.0 * (x @ y.T)
    return np.sqrt(np.clip(sq, 0.0, None))


def _kth_neighbour(dist: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row's point to its k-th nearest *other* point (``dist`` square, self on the diagonal)."""
    d = dist.copy()
    np.fill_diagonal(d, np.inf)
    return np.partition(d, k - 1, axis=1)[:, k - 1]


class PrecisionStatistic:
    """Improved precision (Kynkaenniemi et al., NeurIPS 2019): the fraction of generated images that fall
    inside the real manifold, the union of balls around each real image reaching its k-th nearest real
    neighbour (torch-fidelity ``metric_prc.py``, ``<=`` at the boundary, k = 3).

    Args:
        generated: generated-image features, float ``[n, D]`` (n >= 2), row ``i`` = label map ``i``.
        real: real-image features, float ``[m, D]`` (m > k).
        k: neighbourhood size.

    With the real set fixed each generated image's inside/outside indicator is fixed, so a weighted copy's
    precision is the weighted mean of the indicators. Call with weights ``[B, n]`` -> ``[B]`` in [0, 1].

    Raises:
        MetricError: bad shapes, non-finite features, mismatched dimensions, or ``m <= k``.
    """

    interval_method: IntervalMethod = "jackknife"
    value_range = (0.0, 1.0)

    def __init__(self, generated: Any, real: Any, k: int = PRC_NEIGHBORHOOD) -> None:
        gen = check_features(generated, "generated")
        ref = check_features(real, "real")
        _same_dim(gen, ref)
        if ref.shape[0] <= k:
            raise MetricError(f"precision with k={k} needs more than {k} real images, got {ref.shape[0]}")
        self.n = gen.shape[0]
        radii = _kth_neighbour(_distances(ref, ref), k)
        self._inside = (_distances(gen, ref) <= radii[None, :]).any(axis=1).astype(np.float64)

    def __call__(self, weights: Any) -> np.ndarray:
        w = check_weights(weights, self.n)
        return (w @ self._inside) / w.sum(axis=1)


class RecallStatistic:
    """Improved recall (Kynkaenniemi et al., NeurIPS 2019): the fraction of real images that fall inside
    the generated manifold, the union of balls around each generated image reaching its k-th nearest
    generated neighbour (torch-fidelity ``metric_prc.py``, k = 3).

    Args:
        generated: generated-image features, float ``[n, D]`` (n > k), row ``i`` = label map ``i``.
        real: real-image features, float ``[m, D]`` (m >= 2).
        k: neighbourhood size.

    A weighted copy's manifold is built from the *distinct* generated images it contains (``w_i > 0``):
    a duplicate is not its own neighbour (which would shrink its ball to radius 0), the same identity rule
    as KID. A copy with ``k`` or fewer distinct images gives NaN. Call with weights ``[B, n]`` -> ``[B]``
    in [0, 1]; each row costs a ``u x u`` partial sort and a ``m x u`` comparison.

    Raises:
        MetricError: bad shapes, non-finite features, mismatched dimensions, or ``n <= k``.
    """

    interval_method: IntervalMethod = "jackknife"
    value_range = (0.0, 1.0)

    def __init__(self, generated: Any, real: Any, k: int = PRC_NEIGHBORHOOD) -> None:
        gen = check_features(generated, "generated")
        ref = check_features(real, "real")
        _same_dim(gen, ref)
        if gen.shape[0] <= k:
            raise MetricError(f"recall with k={k} needs more than {k} generated images, got {gen.shape[0]}")
        self.n = gen.shape[0]
        self._k = k
        self._gg = _distances(gen, gen)
        np.fill_diagonal(self._gg, np.inf)  # an image is not its own neighbour
        self._rg = _distances(ref, gen)  # [m, n]
        # each image's nearest k + _SPARE neighbours, nearest first: while at most _SPARE images are left
        # out (a jackknife copy), the k-th nearest remaining neighbour is among them
        width = min(self.n - 1, k + self._SPARE)
        near = np.argpartition(self._gg, width - 1, axis=1)[:, :width]
        dist = np.take_along_axis(self._gg, near, axis=1)
        order = np.argsort(dist, axis=1, kind="stable")
        self._near = np.take_along_axis(near, order, axis=1)
        self._near_dist = np.take_along_axis(dist, order, axis=1)
        self._radius = self._near_dist[:, k - 1]  # balls of the full set
        self._inside = self._rg <= self._radius[None, :]  # [m, n]: real j in the ball of image i
        self._count = self._inside.sum(axis=1)  # [m]: balls holding real j

    _SPARE = 64

    def __call__(self, weights: Any) -> np.ndarray:
        w = check_weights(weights, self.n)
        out = np.full(len(w), np.nan)
        for b, row in enumerate(w):
            keep = np.flatnonzero(row)
            if keep.size <= self._k:
                continue
            radii = self._radii(row, keep)
            if self.n - keep.size <= self._SPARE:  # few images left out: update the full set's ball counts
                grown = radii != self._radius[keep]
                changed = keep[grown]
                dropped = np.concatenate([np.flatnonzero(row == 0), changed])
                held = self._count - self._inside[:, dropped].sum(axis=1) > 0
                held |= (self._rg[:, changed] <= radii[grown][None, :]).any(axis=1)
            else:
                held = (self._rg[:, keep] <= radii[None, :]).any(axis=1)
            out[b] = float(held.mean())
        return out

    def _radii(self, row: np.ndarray, keep: np.ndarray) -> np.ndarray:
        """Distance of each kept image to its k-th nearest other kept image."""
        if self.n - keep.size <= self._SPARE:
            valid = row[self._near[keep]] > 0  # [u, width]: neighbour still in the copy
            position = np.argmax(np.cumsum(valid, axis=1) >= self._k, axis=1)
            return self._near_dist[keep, position]
        return np.partition(self._gg[np.ix_(keep, keep)], self._k - 1, axis=1)[:, self._k - 1]


class MeanStatistic:
    """The mean of per-image values (PSNR in dB, SSIM, RMSE on the [0, 1] scale, ...).

    Args:
        values: float ``[n]``, one value per image, ``n >= 2``. ``+inf`` (PSNR of an identical pair) is
            allowed and makes every resample that draws that image infinite; NaN is rejected.

    Call with weights ``[B, n]`` to get the weighted means ``[B]`` (float64).

    Raises:
        MetricError: not 1-d, fewer than 2 values, or a NaN value.
    """

    interval_method: IntervalMethod = "percentile"

    def __init__(self, values: Any) -> None:
        v = np.asarray(values, dtype=np.float64)
        if v.ndim != 1 or v.size < 2:
            raise MetricError(
                f"per-image values must be a 1-d array of at least 2 images, got shape {v.shape}"
            )
        if np.isnan(v).any():
            raise MetricError("per-image values contain NaN; a per-image score failed to compute")
        self.n = int(v.size)
        self._finite = np.isfinite(v)
        self._v = v

    def __call__(self, weights: Any) -> np.ndarray:
        w = check_weights(weights, self.n)
        s = w.sum(axis=1)
        total = w[:, self._finite] @ self._v[self._finite]
        if not self._finite.all():  # 0 * inf would be NaN: add infinite values only where drawn
            drawn = w[:, ~self._finite] > 0
            total = total + np.where(drawn, self._v[~self._finite], 0.0).sum(axis=1)
        return total / s

    def influence(self) -> np.ndarray:
        """``d mean / d w_i = (v_i - mean) / n`` at ``w = 1`` (the delta method then gives the t interval)."""
        return (self._v - self._v.mean()) / self.n


SegmentationScore = Literal["miou", "accu"]


class ConfusionStatistic:
    """mIoU or pixel accuracy of the sum of per-image confusion matrices, as the evaluation scores them.

    Args:
        confusions: per-image confusion matrices ``conf[i, g, p]`` (integer, non-negative, ``[n, K, K]``), as
            returned by :func:`bench.metrics.segmentation.confusion_matrix` for each image; ``n >= 2``.
        score: ``"miou"`` (:func:`bench.metrics.segmentation.miou`) or ``"accu"``
            (:func:`bench.metrics.segmentation.pixel_accuracy`); both fractions in [0, 1].
        convention: the mIoU convention, ``"all"`` (sisbench's default) or ``"present"``.

    A resample's matrix is the weighted sum ``w @ conf.reshape(n, K*K)`` (one matrix product for a block
    of resamples, exact in float64 below 2^53 pixels), scored by the segmentation module's own function,
    so the formula lives in one place. Call with weights ``[B, n]`` to get scores ``[B]``.

    Raises:
        MetricError: bad shape or dtype, negative counts, an unknown score or convention, or an all-empty
            set (every pixel ignored).
    """

    interval_method: IntervalMethod = "percentile"

    def __init__(self, confusions: Any, score: SegmentationScore = "miou", convention: str = "all") -> None:
        cms = np.asarray(confusions)
        if cms.ndim != 3 or cms.shape[1] != cms.shape[2] or cms.shape[0] < 2:
            raise MetricError(
                f"confusion matrices must be [n, K, K] with n >= 2 images, got shape {cms.shape}; "
                "keep one matrix per image (do not sum them first)"
            )
        if not np.issubdtype(cms.dtype, np.integer) or (cms < 0).any():
            raise MetricError(
                f"confusion matrices must hold non-negative integer counts, got dtype {cms.dtype}"
            )
        if score not in ("miou", "accu"):
            raise MetricError(f"unknown segmentation score {score!r}; use 'miou' or 'accu'")
        if convention not in ("all", "present"):
            raise MetricError(f"unknown mIoU convention {convention!r}; use 'all' or 'present'")
        self.n, k = int(cms.shape[0]), int(cms.shape[1])
        self.num_classes = k
        self.score = score
        self.convention = convention
        self._flat = cms.reshape(self.n, k * k).astype(np.int64)
        # float64 products are exact while every total stays below 2^53 (sum of a row <= n * max image)
        self._exact_float = float(self.n) * float(self._flat.sum(axis=1).max()) < 2.0**53
        self._score_one(self._flat.sum(axis=0).reshape(k, k))  # rejects an all-empty set now

    def totals(self, weights: Any) -> np.ndarray:
        """Summed confusion matrices of the resamples, int64 ``[B, K, K]``."""
        w = check_weights(weights, self.n)
        if self._exact_float:
            flat = np.rint(w @ self._flat.astype(np.float64)).astype(np.int64)
        else:
            flat = np.rint(w).astype(np.int64) @ self._flat
        return flat.reshape(-1, self.num_classes, self.num_classes)

    def _score_one(self, conf: np.ndarray) -> float:
        if self.score == "miou":
            return segmentation.miou(conf, self.convention)  # type: ignore[arg-type]
        return segmentation.pixel_accuracy(conf)

    def __call__(self, weights: Any) -> np.ndarray:
        out = []
        for conf in self.totals(weights):
            try:
                out.append(self._score_one(conf))
            except MetricError:  # a copy made of empty images only: no score (left out of the interval)
                out.append(float("nan"))
        return np.asarray(out, dtype=np.float64)

    def per_class(self, weights: Any) -> np.ndarray:
        """Per-class IoU ``[B, K]`` (:func:`bench.metrics.segmentation.per_class_iou`; NaN: class absent)."""
        out = np.full((len(np.atleast_2d(weights)), self.num_classes), np.nan)
        for b, conf in enumerate(self.totals(weights)):
            if conf.sum() > 0:
                out[b] = segmentation.per_class_iou(conf)
        return out
