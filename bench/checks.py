"""``bench check``: guard the numbers against drift.

A baseline file names runs (method, dataset, overrides, seed) and the metrics they produced, with a
tolerance per metric. The check runs each (a cached record is reused), compares, and fails on drift.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.cache import atomic_write_text
from bench.errors import BenchError

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


@dataclass
class Row:
    run: str
    metric: str
    baseline: float
    current: float
    tolerance: float

    @property
    def ok(self) -> bool:
        if math.isnan(self.baseline) and math.isnan(self.current):
            return True
        return abs(self.current - self.baseline) <= self.tolerance

    @property
    def delta(self) -> float:
        return self.current - self.baseline


def run_key(entry: dict[str, Any]) -> str:
    sets = ",".join(f"{k}={v}" for k, v in sorted(entry.get("set", {}).items()))
    return f"{entry['method']}/{entry['dataset']}" + (f"[{sets}]" if sets else "") + f"@seed{entry.get('seed', 0)}"


def load_baseline(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise BenchError(f"{path}: no such baseline file (create one with `bench check --baseline {path} --update`)")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise BenchError(f"{path}: not valid JSON ({e})") from None
    if not isinstance(data.get("runs"), list) or not data["runs"]:
        raise BenchError(f"{path}: a baseline needs a non-empty 'runs' list of {{method, dataset, set, seed}}")
    return data


def check(baseline_path: str | Path, *, results: str | Path, update: bool = False, progress: bool = True,
          records: dict[str, Any] | None = None) -> tuple[list[Row], Path | None]:
    """Run (or read) every baseline run and compare; with ``update`` rewrite the baseline."""
    from bench import api

    data = load_baseline(baseline_path)
    tolerances = {**DEFAULT_TOLERANCES, **data.get("tolerances", {})}
    rows: list[Row] = []
    new_metrics: dict[str, dict[str, float]] = {}
    for entry in data["runs"]:
        key = run_key(entry)
        rec = (records or {}).get(key) or api.run(
            entry["method"], entry["dataset"], overrides=entry.get("set", {}), seed=entry.get("seed", 0),
            results=results, progress=progress, fid_layer=str(entry.get("fid_layer", "2048")),
        )
        new_metrics[key] = dict(rec.metrics)
        old = data.get("metrics", {}).get(key, {})
        for metric, value in rec.metrics.items():
            if metric not in old:
                continue
            tol = tolerances.get(metric, {"abs": 0.0, "rel": 0.0})
            base = float(old[metric])
            rows.append(Row(key, metric, base, float(value), tol["abs"] + tol["rel"] * abs(base)))
    written = None
    if update:
        data["metrics"] = new_metrics
        data.setdefault("tolerances", {})
        written = atomic_write_text(baseline_path, json.dumps(data, indent=2, sort_keys=True) + "\n")
    elif not rows:
        raise BenchError(f"{baseline_path}: no baseline metrics to compare (run with --update to record them)")
    return rows, written


def format_rows(rows: list[Row]) -> str:
    lines = [f"{'run':<40} {'metric':<6} {'baseline':>10} {'current':>10} {'delta':>10} {'tol':>8}  status"]
    for r in rows:
        lines.append(f"{r.run:<40} {r.metric:<6} {r.baseline:>10.4f} {r.current:>10.4f} {r.delta:>+10.4f} "
                     f"{r.tolerance:>8.4f}  {'ok' if r.ok else 'DRIFT'}")
    return "\n".join(lines)
