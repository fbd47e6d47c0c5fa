"""Cost of the confidence intervals of :mod:`bench.metrics.uncertainty`, relative to computing FID.

    python -m bench.perf.bootstrap_cost [--sizes 200 2000] [--classes 8] [--dim 2048] [--resamples 1000]
        [--groups 100] [--sample 10] [--blas-threads N] [--json]

For each evaluation-set size ``n`` (200 = the synthetic benchmark's val split) it builds random data of
the benchmark's shapes (per-image values, ``[n, K, K]`` confusion matrices, ``[n, D]`` generated and real
Inception features; the costs do not depend on the values) and times, per metric, the one-off setup of the
statistic (kernel / distance / Gram matrices) and the interval at the library's defaults (percentile
bootstrap with ``--resamples`` for means and segmentation scores, the delta method for FID, grouped
jackknife with ``--groups`` for KID/precision/recall), plus the alternatives for FID/KID for comparison. The reference is FID
computed as torch-fidelity computes it from the same features (``np.cov`` + ``fid_statistics_to_metric``:
eigenvalues of a D x D non-symmetric product). Statistics whose cost is a Python loop over copies (FID,
recall) are timed on ``--sample`` copies and extrapolated linearly; the table marks those with ``~``.

Timings depend on the machine's load and on BLAS threads: on a 2-core machine shared with other jobs,
OpenBLAS's threads make small eigenproblems 10x slower; ``--blas-threads 1`` re-runs the script with
``OPENBLAS_NUM_THREADS=1``. Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.metrics import uncertainty as unc

_DEFAULTS = {("fid", "delta"), ("kid", "jackknife"), ("precision", "jackknife"), ("recall", "jackknife")}
_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def _reference_fid(gen: np.ndarray, real: np.ndarray) -> float:
    """FID exactly as torch-fidelity computes it from features (its own functions on the statistics)."""
    from torch_fidelity.metric_fid import fid_statistics_to_metric

    stats = [{"mu": x.mean(axis=0), "sigma": np.cov(x, rowvar=False)} for x in (gen, real)]
    return float(fid_statistics_to_metric(stats[0], stats[1], False)["frechet_inception_distance"])


def _interval_seconds(stat: Any, method: str, count: int, sample: int | None) -> tuple[float, bool]:
    """Seconds for an interval with ``count`` copies; timed on its first ``sample`` copies and scaled."""
    kwargs = {"n_resamples": count} if method == "percentile" else {"groups": count}
    if method == "delta" or sample is None or sample >= count:
        seconds, _ = _timed(lambda: unc.interval(stat, method=method, **kwargs))
        return seconds, False
    if method == "percentile":
        weights = unc.resample_weights(stat.n, count)
    else:
        weights = unc.jackknife_weights(stat.n, count)
    seconds, _ = _timed(lambda: stat(weights[:sample]))
    return seconds * len(weights) / sample, True


def measure(n: int, k: int, d: int, resamples: int, groups: int, sample: int) -> dict[str, Any]:
    """Timings for one set size; see the module docstring."""
    rng = np.random.default_rng(0)
    values = rng.normal(25.0, 3.0, size=n)
    cms = rng.integers(0, 2000, size=(n, k, k))
    gen = np.abs(rng.normal(size=(n, d)))
    real = np.abs(rng.normal(size=(n, d)) * 1.1)

    import scipy.stats  # noqa: F401  imports paid once here, not inside the first timing
    import torch_fidelity.metric_fid  # noqa: F401

    print(f"n={n}: reference FID ...", file=sys.stderr)
    ref_s, _ = _timed(lambda: _reference_fid(gen, real))
    rows: list[dict[str, Any]] = []

    def add(metric: str, make: Callable[[], Any], method: str, count: int, loop: bool) -> None:
        print(f"n={n}: {metric} ({method}) ...", file=sys.stderr)
        setup_s, stat = _timed(make)
        interval_s, extrapolated = _interval_seconds(stat, method, count, sample if loop else None)
        total = setup_s + interval_s
        rows.append(
            {
                "n": n,
                "metric": metric,
                "method": method,
                "copies": {"percentile": count, "jackknife": min(count, n)}.get(method, 0),
                "setup_s": setup_s,
                "interval_s": interval_s,
                "total_s": total,
                "vs_fid": total / ref_s,
                "extrapolated": extrapolated,
            }
        )

    add("psnr/ssim/rmse (each)", lambda: unc.MeanStatistic(values), "percentile", resamples, False)
    add("miou", lambda: unc.ConfusionStatistic(cms, "miou"), "percentile", resamples, False)
    add("accu", lambda: unc.ConfusionStatistic(cms, "accu"), "percentile", resamples, False)
    print(f"n={n}: per-class IoU ...", file=sys.stderr)
    pc_s, _ = _timed(lambda: unc.per_class_iou_intervals(cms, n_resamples=resamples))
    rows.append(
        {"n": n, "metric": "per-class IoU (all K)", "method": "percentile", "copies": resamples,
         "setup_s": 0.0, "interval_s": pc_s, "total_s": pc_s, "vs_fid": pc_s / ref_s, "extrapolated": False}
    )  # fmt: skip
    add("fid", lambda: unc.FIDStatistic(gen, real), "delta", 0, False)
    add("fid", lambda: unc.FIDStatistic(gen, real), "jackknife", groups, True)
    add("fid", lambda: unc.FIDStatistic(gen, real), "percentile", resamples, True)
    add("kid", lambda: unc.KIDStatistic(gen, real), "jackknife", groups, False)
    add("kid", lambda: unc.KIDStatistic(gen, real), "percentile", resamples, False)
    add("precision", lambda: unc.PrecisionStatistic(gen, real), "jackknife", groups, False)
    add("recall", lambda: unc.RecallStatistic(gen, real), "jackknife", groups, True)
    return {"n": n, "reference_fid_s": ref_s, "rows": rows}


def default_total(result: dict[str, Any]) -> float:
    """Seconds for one run's intervals at the defaults: 3 means, mIoU, accu, FID, KID, precision, recall."""
    total = 0.0
    for row in result["rows"]:
        metric, method = row["metric"], row["method"]
        if metric.startswith("psnr"):
            total += 3 * row["total_s"]
        elif metric in ("miou", "accu") or (metric, method) in _DEFAULTS:
            total += row["total_s"]
    return total


def _table(results: list[dict[str, Any]], threads: str) -> str:
    lines = [
        f"BLAS threads: {threads}; load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs",
        "",
        "| n | metric | method | copies | setup s | interval s | total s | vs FID |",
        "|---:|---|---|---:|---:|---:|---:|---:|",
    ]
    for res in results:
        lines.append(f"| {res['n']} | FID itself (torch-fidelity, reference) | - | - | - | - | "
                     f"{res['reference_fid_s']:.2f} | 100% |")  # fmt: skip
        for r in res["rows"]:
            mark = "~" if r["extrapolated"] else ""
            lines.append(
                f"| {r['n']} | {r['metric']} | {r['method']} | {r['copies']} | {r['setup_s']:.3f} | "
                f"{mark}{r['interval_s']:.3f} | {mark}{r['total_s']:.3f} | {r['vs_fid']:.1%} |"
            )
        lines.append(
            f"| {res['n']} | **all defaults of one run** (3 means, mIoU, accu, FID, KID, P, R) | | | | | "
            f"{default_total(res):.2f} | {default_total(res) / res['reference_fid_s']:.1%} |"
        )
    lines.append("")
    lines.append(
        "~ = extrapolated linearly from the timed sample of copies (a Python loop, constant per copy)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200, 2000], help="evaluation-set sizes n")
    parser.add_argument("--classes", type=int, default=8, help="segmentation classes K")
    parser.add_argument("--dim", type=int, default=2048, help="feature dimension D")
    parser.add_argument("--resamples", type=int, default=unc.DEFAULT_RESAMPLES, help="bootstrap resamples B")
    parser.add_argument("--groups", type=int, default=unc.DEFAULT_GROUPS, help="jackknife groups G")
    parser.add_argument("--sample", type=int, default=10, help="copies timed for looped statistics")
    parser.add_argument("--blas-threads", type=int, default=None, help="re-run with this many BLAS threads")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a markdown table")
    args = parser.parse_args(argv)
    if args.blas_threads is not None and os.environ.get("OPENBLAS_NUM_THREADS") != str(args.blas_threads):
        env = {**os.environ, **{v: str(args.blas_threads) for v in _THREAD_VARS}}
        os.execve(sys.executable, [sys.executable, "-m", "bench.perf.bootstrap_cost", *sys.argv[1:]], env)
    threads = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    results = [
        measure(n, args.classes, args.dim, args.resamples, args.groups, args.sample) for n in args.sizes
    ]
    if args.json:
        print(json.dumps({"blas_threads": threads, "results": results}, indent=2))
    else:
        print(_table(results, threads))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
