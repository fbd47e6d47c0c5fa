"""Rows over training seeds, the ± of every cell, and honest "best" marks for ``bench report`` tables.

**Rows.** Records that differ only in their training seed (same inputs apart from ``seed``: method,
dataset, config, data, evaluation) form one row (:class:`RowGroup`, the newest record per seed). A row of
one record shows ``value ± h``, ``h`` the half-width of the record's 95% interval (evaluation-set
uncertainty, :mod:`bench.intervals`); a row of ``n >= 2`` seeds shows ``mean ± sd`` (sample sd, ddof 1,
:func:`bench.metrics.uncertainty.seed_summary`) with ``n`` in its label.

**Best.** In each column the best point estimate is bold only when it is significantly better than every
other row (:func:`mark_column`). Each other row is compared with it by the strongest test their data allow:

* ``paired``: both rows are single records whose per-image data (``runs/<id>.npz``) cover the same label
  maps: the paired bootstrap of the difference (:func:`bench.metrics.uncertainty.mark_best`, one shared
  resampling plan) must exclude 0;
* ``welch``: both rows are over >= 2 seeds: Welch's t interval (95%) of the difference of seed means
  must exclude 0 (``scipy.stats.ttest_ind(equal_var=False)``);
* ``overlap``: otherwise, when both have an interval (a record's 95% interval; for a seed row the t
  interval of its mean), the two intervals must not overlap (conservative); the table says so in a note
  (``mixed`` when a row over seeds meets a single-seed row);
* ``untested``: either lacks an interval (records from before intervals, or ``--bootstrap 0``).

Rows not significantly different from the best are *tied* with it: they and the best cell get the tie
mark and a note, and nothing is bold. An ``untested`` comparison leaves the best cell unbold with the
untested mark, except when every comparison of the column is untested (no intervals anywhere): then the
best point estimate is bold, with the mark and a note saying it was not tested.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bench.store import RunRecord, canonical_json

TIE_MARK = "≈"
UNTESTED_MARK = "*"
NOTES = {
    "infinite": "∞: the images equal the reference exactly (PSNR of an exact copy); an infinite best needs no "
                "test, and equal infinite values tie.",
    "paired": "Bold: significantly best, the 95% paired-bootstrap interval of its difference to every other row "
              "excludes 0 (same label maps, resampled together). This covers the choice of evaluation images "
              "only: single-seed rows say nothing about training-seed variance.",
    "tie": f"{TIE_MARK} tied: the best value and the rows whose difference to it is not significant at 95%; "
           "none is bold.",
    "welch": "Rows over seeds are compared by Welch's t interval (95%) of the difference of their seed means.",
    "overlap": "Some rows were not scored on the same label maps (or lack per-image data): they are compared "
               "by non-overlapping 95% intervals instead of a paired test.",
    "mixed": "A row over seeds and a single-seed row are compared by non-overlapping intervals: the 95% t "
             "interval of the seed mean against the run's own 95% interval (with 2 seeds the t interval is wide).",
    "untested": f"{UNTESTED_MARK} best point estimate, not tested against rows without intervals (records from "
                "before intervals existed, or run with --bootstrap 0); bold only when no row of the column has any.",
}


def seed_key(r: RunRecord) -> str:
    """What two records must share to be seeds of one row: their inputs without ``seed`` (records without
    inputs: method, dataset, kind, label and config)."""
    if isinstance(r.inputs, dict) and r.inputs:
        return canonical_json({k: v for k, v in r.inputs.items() if k != "seed"})
    return canonical_json([r.method, r.dataset, r.kind, r.label, r.config])


@dataclass
class RowGroup:
    """One table row: the newest record of each training seed of one configuration (sorted by seed)."""

    label: str
    records: list[RunRecord]

    @property
    def newest(self) -> RunRecord:
        return max(self.records, key=lambda r: r.created)

    @property
    def seeds(self) -> list[int]:
        return [r.seed for r in self.records]

    def short_label(self) -> str:
        """``label``, plus ``(seeds 0, 1, 2)`` for a row over several seeds (column headers, figure titles)."""
        return self.label if len(self.records) < 2 else f"{self.label} (seeds {', '.join(map(str, self.seeds))})"

    def row_label(self) -> str:
        """``label``, plus ``(mean ± sd over seeds 0, 1, 2; n=3)`` for a row over several seeds."""
        if len(self.records) < 2:
            return self.label
        return f"{self.label} (mean ± sd over seeds {', '.join(map(str, self.seeds))}; n={len(self.records)})"


def seed_group(candidates: Sequence[RunRecord], label: str) -> RowGroup:
    """The row of ``label`` from its records: the newest one decides the configuration; of the records with
    the same :func:`seed_key` the newest per seed are kept (older configurations are superseded)."""
    newest = max(candidates, key=lambda r: r.created)
    key = seed_key(newest)
    per_seed: dict[int, RunRecord] = {}
    for r in sorted(candidates, key=lambda r: r.created):
        if seed_key(r) == key:
            per_seed[r.seed] = r
    return RowGroup(label, [per_seed[s] for s in sorted(per_seed)])


@dataclass
class Cell:
    """A row's value of one metric: ``value`` (raw units; NaN when missing), ``pm`` (half-width of the 95%
    interval for one record, sd over seeds for a seed row; NaN when none), ``ci`` (low, high) used by the
    overlap test, ``seeds`` (the per-seed values of a seed row)."""

    value: float
    pm: float = float("nan")
    ci: tuple[float, float] | None = None
    seeds: list[float] = field(default_factory=list)


def cell_of(group: RowGroup, metric: str) -> Cell:
    """The cell of ``metric`` for a row (see :class:`Cell`)."""
    from bench.metrics.uncertainty import Interval, seed_summary

    vals = [float(r.metrics[metric]) for r in group.records
            if isinstance(r.metrics.get(metric), int | float) and not math.isnan(r.metrics[metric])]
    if not vals or len(vals) < len(group.records):  # a seed without the value: no partial mean over the others
        return Cell(float("nan"))
    if any(math.isinf(v) for v in vals):  # e.g. PSNR of an exact copy: +inf, no interval
        signs = {v > 0 for v in vals if math.isinf(v)}
        return Cell(math.fsum(vals) / len(vals) if len(signs) == 1 else float("nan"), seeds=vals)
    if len(group.records) == 1:
        iv = group.records[0].intervals.get(metric) if isinstance(group.records[0].intervals, dict) else None
        if not iv:
            return Cell(vals[0])
        i = Interval.from_dict(iv)
        ok = math.isfinite(i.low) and math.isfinite(i.high)
        return Cell(vals[0], i.half_width if ok else float("nan"), (i.low, i.high) if ok else None)
    s = seed_summary(vals)
    if s.std is None:
        return Cell(s.mean, seeds=vals)
    from scipy import stats

    t = float(stats.t.ppf(0.975, s.n - 1)) * s.std / math.sqrt(s.n)
    return Cell(s.mean, s.std, (s.mean - t, s.mean + t), vals)


@dataclass
class Marks:
    """The marks of one column: ``bold`` / ``tie`` / ``untested`` row indices and the notes they need."""

    bold: set[int] = field(default_factory=set)
    tie: set[int] = field(default_factory=set)
    untested: set[int] = field(default_factory=set)
    notes: set[str] = field(default_factory=set)


PerImageLoader = Callable[[RunRecord], Any]


def _welch_significant(a: list[float], b: list[float]) -> bool:
    from scipy import stats

    if np.std(a) == 0 and np.std(b) == 0:
        return bool(np.mean(a) != np.mean(b))
    ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    return bool(ci.low > 0 or ci.high < 0)


def mark_column(groups: Sequence[RowGroup], cells: Sequence[Cell], metric: str, *, higher_is_better: bool,
                per_image: PerImageLoader | None = None) -> Marks:
    """Which cells of one column are bold (significantly best), tied with the best, or untested.

    Args:
        groups: the run rows of the column (their records).
        cells: ``cell_of(group, metric)`` for each row.
        metric: the metric key.
        higher_is_better: the metric's direction.
        per_image: record -> its :class:`bench.intervals.PerImage` or ``None`` (no paired tests without it).

    Returns:
        :class:`Marks` over row indices; nothing is marked with fewer than two finite rows.
    """
    from bench.metrics.uncertainty import mark_best

    marks = Marks()
    idx = [i for i, c in enumerate(cells) if not math.isnan(c.value)]
    if len(idx) < 2:
        return marks
    sign = 1.0 if higher_is_better else -1.0
    best = max(idx, key=lambda i: (sign * cells[i].value, -i))
    if math.isinf(cells[best].value):  # an infinite best (PSNR of exact copies) needs no test; equal ones tie
        same = [i for i in idx if cells[i].value == cells[best].value]
        if len(same) == 1:
            marks.bold.add(best)
        else:
            marks.tie.update(same)
        marks.notes.add("infinite")
        return marks
    idx = [i for i in idx if math.isfinite(cells[i].value)]
    if len(idx) < 2:
        return marks
    others = [i for i in idx if i != best]
    status: dict[int, str] = {}  # "significant", "tied", "untested"

    # paired: single records with per-image data over the same label maps as the best row's
    paired: dict[int, Any] = {}
    if per_image is not None and len(groups[best].records) == 1:
        from bench.intervals import PerImage

        def stat_of(i: int) -> tuple[Any, list[str]] | None:
            if len(groups[i].records) != 1:
                return None
            data = per_image(groups[i].records[0])
            if not isinstance(data, PerImage):
                return None
            s = data.statistic(metric)
            return (s, data.ids_for(metric)) if s is not None else None

        ref = stat_of(best)
        if ref is not None:
            paired[best] = ref[0]
            for i in others:
                got = stat_of(i)
                if got is not None and got[1] == ref[1]:
                    paired[i] = got[0]
    bm = None
    if len(paired) > 1:
        from bench.errors import MetricError

        names = {i: f"row{i}" for i in paired}
        try:
            bm = mark_best({names[i]: paired[i] for i in paired}, higher_is_better=higher_is_better)
        except MetricError:  # e.g. a NaN score: those rows fall back to their intervals below
            paired = {}
    if bm is not None:
        if bm.best == names[best]:
            for i in paired:
                if i != best:
                    status[i] = "significant" if bm.comparisons[names[i]].significant else "tied"
            marks.notes.add("paired")
        else:  # equal point estimates ordered differently: every paired row ties with the best
            status.update({i: "tied" for i in paired if i != best})
    for i in others:
        if i in status:
            continue
        a, b = cells[best], cells[i]
        if len(a.seeds) >= 2 and len(b.seeds) >= 2:
            status[i] = "significant" if _welch_significant(a.seeds, b.seeds) else "tied"
            marks.notes.add("welch")
        elif a.ci is not None and b.ci is not None:
            apart = a.ci[0] > b.ci[1] or b.ci[0] > a.ci[1]
            status[i] = "significant" if apart else "tied"
            marks.notes.add("mixed" if (len(a.seeds) >= 2) != (len(b.seeds) >= 2) else "overlap")
        else:
            status[i] = "untested"
    values = set(status.values())
    if values == {"untested"}:
        marks.bold.add(best)
        marks.untested.add(best)
        marks.notes.add("untested")
    elif values == {"significant"}:
        marks.bold.add(best)
    else:
        tied = [i for i, s in status.items() if s == "tied"]
        if tied:
            marks.tie.update([best, *tied])
            marks.notes.add("tie")
        if "untested" in values:
            marks.untested.add(best)
            marks.notes.add("untested")
    return marks


__all__ = ["NOTES", "TIE_MARK", "UNTESTED_MARK", "Cell", "Marks", "RowGroup", "cell_of", "mark_column",
           "seed_group", "seed_key"]
