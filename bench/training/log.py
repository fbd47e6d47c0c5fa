"""The training log: one JSON line per logged iteration in ``<checkpoint folder>/train_log.jsonl``.

Each line is ``{"iteration": it, "losses": {name: float}, "lr": {group: float}, "time": unix seconds}``:
``it`` is the 0-based index of the step (the ``iteration`` the trainer's errors name), the losses are
the plain floats of that step (the generator's and the discriminator's terms, as the methods name them),
and ``lr`` the learning rate of every optimizer group after the schedule of that step was applied.
``bench report`` plots the losses against the iterations (:mod:`reports.curves`).

Writes are atomic per line: a line is encoded first and handed to one ``os.write`` on a descriptor opened
with ``O_APPEND`` (POSIX appends each such write whole at the end of the file), then ``fsync``-ed, so a
crash leaves whole lines only; a reader still skips a torn last line (a full disk) rather than fail.
On resume from iteration ``start`` the lines of iterations ``>= start`` (written after the checkpoint the
run resumes from, and about to be redone) are dropped first, with an atomic rewrite, so the log never
holds an iteration twice.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bench.cache import atomic_write_text

LOG_NAME = "train_log.jsonl"


def log_path(checkpoint_dir: str | Path) -> Path:
    """``<checkpoint_dir>/train_log.jsonl``."""
    return Path(checkpoint_dir) / LOG_NAME


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None  # strict JSON has no inf/NaN


def append_entry(path: str | Path, iteration: int, losses: Mapping[str, float], lrs: Mapping[str, Any],
                 *, now: float | None = None) -> None:
    """Append one line for ``iteration`` (0-based step index) with its losses and learning rates.

    Args:
        path: the log file (created with its folder if missing).
        iteration: 0-based index of the step.
        losses: loss name -> value (plain floats, the methods' own units); non-finite values become ``null``.
        lrs: optimizer group (``"G"``, ``"D"``) -> learning rate (float), or -> a list of per-param-group rates.
        now: the line's ``time`` (unix seconds); default the current time.
    """
    import time

    entry = {"iteration": int(iteration), "losses": {k: _num(v) for k, v in losses.items()},
             "lr": {k: ([_num(x) for x in v] if isinstance(v, list | tuple) else _num(v)) for k, v in lrs.items()},
             "time": round(time.time() if now is None else now, 3)}
    data = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Every whole line of the log, in file order; ``[]`` when there is none. A line that does not parse (a
    torn write after a full disk) is skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("iteration"), int):
            out.append(entry)
    return out


def truncate_from(path: str | Path, start: int) -> int:
    """Drop the lines of iterations ``>= start`` (atomic rewrite); returns how many were dropped.

    Called when training resumes from a checkpoint saved after ``start`` iterations: steps ``start, ...``
    are about to be run again and logged anew.
    """
    path = Path(path)
    if not path.is_file():
        return 0
    lines = path.read_text(errors="replace").splitlines(keepends=True)
    keep = []
    for line in lines:
        try:
            it = json.loads(line).get("iteration")
        except (json.JSONDecodeError, AttributeError):
            continue  # a torn line goes too
        if isinstance(it, int) and it < start:
            keep.append(line if line.endswith("\n") else line + "\n")
    dropped = len(lines) - len(keep)
    if dropped:
        atomic_write_text(path, "".join(keep))
    return dropped


def optimizer_lrs(optimizers: Mapping[str, Any]) -> dict[str, Any]:
    """Group name -> the learning rate of its optimizer (a list when its param groups differ)."""
    out: dict[str, Any] = {}
    for k, opt in optimizers.items():
        rates = [float(g["lr"]) for g in opt.param_groups]
        out[k] = rates[0] if len(set(rates)) == 1 else rates
    return out


__all__ = ["LOG_NAME", "append_entry", "log_path", "optimizer_lrs", "read_log", "truncate_from"]
