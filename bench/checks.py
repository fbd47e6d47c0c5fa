"""``bench check``: guard the numbers against drift.

A baseline file names runs (method, dataset, overrides, seed), the metrics they produced, each metric's
95% interval over the evaluation set (:mod:`bench.intervals`), and the package versions it was made with.
The check runs each (a cached record is reused) and fails on drift:

* default: a metric is drift when it leaves the baseline's recorded interval (a calibrated tolerance:
  the spread the evaluation set itself allows); metrics without an interval use the fixed tolerances;
* ``exact``: any difference at all is drift (bit-exact reproduction).

When versions differ from the baseline's, the check says which, so a moved number can be traced to the
environment rather than the code.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from bench.cache import atomic_write_text
from bench.errors import BenchError
from bench.store import from_strict_json, strict_json_value

#: default tolerances: |new - old| <= abs + rel * |old|
DEFAULT_TOLERANCES: dict[str, dict[str, float]] = {
    "fid": {"abs": 0.5, "rel": 0.02},
    "kid": {"abs": 0.002, "rel": 0.05},
    "miou": {"abs": 0.01, "rel": 0.0},
    "accu": {"abs": 0.01, "rel": 0.0},
    "psnr": {"abs": 0.1, "rel": 0.0},
    "ssim": {"abs": 0.005, "rel": 0.0},
    "rmse": {"abs": 0.002, "rel": 0.0},
}


#: the versions a baseline records and the check compares
ENV_KEYS = ("torch", "torchvision", "numpy", "torch_fidelity", "skimage", "mmseg", "python", "sisbench")


@dataclass
class Row:
    """One (run, metric) comparison; ``low``/``high`` are the baseline's 95% interval when it has one."""

    run: str
    metric: str
    baseline: float
    current: float
    tolerance: float
    low: float | None = None
    high: float | None = None
    exact: bool = False

    @property
    def ok(self) -> bool:
        if math.isnan(self.baseline) and math.isnan(self.current):
            return True
        if self.exact:
            return self.current == self.baseline
        if self.low is not None and self.high is not None:
            return self.low <= self.current <= self.high
        return abs(self.current - self.baseline) <= self.tolerance

    @property
    def allowed(self) -> str:
        if self.exact:
            return "exact"
        if self.low is not None and self.high is not None:
            return f"[{self.low:.4g}, {self.high:.4g}]"
        return f"±{self.tolerance:.4g}"

    @property
    def delta(self) -> float:
        return self.current - self.baseline


class CheckResult(NamedTuple):
    """What :func:`check` found: rows, the rewritten baseline (``update``), and version differences."""

    rows: list[Row]
    written: Path | None
    env_changes: list[str]


def run_key(entry: dict[str, Any]) -> str:
    sets = ",".join(f"{k}={v}" for k, v in sorted(entry.get("set", {}).items()))
    return f"{entry['method']}/{entry['dataset']}" + (f"[{sets}]" if sets else "") + f"@seed{entry.get('seed', 0)}"


def load_baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such baseline file (create one with `bench check --baseline {path} --update`)")
    try:
        data = from_strict_json(json.loads(path.read_text()))
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data.get("runs"), list) or not data["runs"]:
        raise BenchError(f"{path}: a baseline needs a non-empty 'runs' list of {{method, dataset, set, seed}}")
    return data


def check(baseline_path: str | Path, *, results: str | Path, update: bool = False, progress: bool = True,
          records: dict[str, Any] | None = None, exact: bool = False) -> CheckResult:
    """Run (or read) every baseline run and compare; with ``update`` rewrite the baseline.

    Args:
        baseline_path: The baseline JSON (runs, metrics, intervals, env, tolerances).
        results: Where the runs' records live (cached runs are reused).
        update: Rewrite the baseline's metrics, intervals and env with the current ones.
        records: Pre-computed records by :func:`run_key` (tests).
        exact: Compare bit for bit instead of against the intervals.

    Returns:
        The comparison rows, the rewritten baseline's path (``update``) or None, and the package versions
        that differ from the baseline's.

    Raises:
        BenchError: an unreadable baseline, or one without metrics (and not ``update``).
    """
    from bench import api

    data = load_baseline(baseline_path)
    tolerances = {**DEFAULT_TOLERANCES, **data.get("tolerances", {})}
    rows: list[Row] = []
    new_metrics: dict[str, dict[str, float]] = {}
    new_intervals: dict[str, dict[str, list[float]]] = {}
    env: dict[str, str] = {}
    for entry in data["runs"]:
        key = run_key(entry)
        rec = (records or {}).get(key) or api.run(
            entry["method"], entry["dataset"], overrides=entry.get("set", {}), seed=entry.get("seed", 0),
            results=results, progress=progress, fid_layer=str(entry.get("fid_layer", "2048")),
        )
        new_metrics[key] = dict(rec.metrics)
        new_intervals[key] = {m: [ci["low"], ci["high"]] for m, ci in (rec.intervals or {}).items()
                              if ci.get("low") is not None and ci.get("high") is not None}
        env = {k: str(rec.env[k]) for k in ENV_KEYS if k in (rec.env or {})}
        old = data.get("metrics", {}).get(key, {})
        old_ci = data.get("intervals", {}).get(key, {})
        for metric, value in rec.metrics.items():
            if metric not in old:
                continue
            tol = tolerances.get(metric, {"abs": 0.0, "rel": 0.0})
            base = float(old[metric])
            low, high = old_ci.get(metric, (None, None))
            rows.append(Row(key, metric, base, float(value), tol["abs"] + tol["rel"] * abs(base),
                            low=low, high=high, exact=exact))
    written = None
    if update:
        data["metrics"] = new_metrics
        data["intervals"] = new_intervals
        data["env"] = env
        data.setdefault("tolerances", {})
        written = atomic_write_text(baseline_path, json.dumps(strict_json_value(data), indent=2, sort_keys=True,
                                                              allow_nan=False) + "\n")
    elif not rows:
        raise BenchError(f"{baseline_path}: no baseline metrics to compare (run with --update to record them)")
    return CheckResult(rows, written, env_changes(data.get("env", {}), env))


def env_changes(baseline: dict[str, str], current: dict[str, str]) -> list[str]:
    """``["torch 2.14.0 -> 2.14.1", ...]`` for the versions that differ (keys both sides record)."""
    return [f"{k} {baseline[k]} -> {current[k]}" for k in ENV_KEYS
            if k in baseline and k in current and baseline[k] != current[k]]


def format_rows(rows: list[Row]) -> str:
    """A fixed-width table: baseline, current, delta, the allowed range and the status of each row."""
    lines = [f"{'run':<40} {'metric':<9} {'baseline':>10} {'current':>10} {'delta':>10} {'allowed':>22}  status"]
    for r in rows:
        lines.append(f"{r.run:<40} {r.metric:<9} {r.baseline:>10.4f} {r.current:>10.4f} {r.delta:>+10.4f} "
                     f"{r.allowed:>22}  {'ok' if r.ok else 'DRIFT'}")
    return "\n".join(lines)
