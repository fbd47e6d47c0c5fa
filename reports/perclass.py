"""Per-class IoU tables of ``bench report``: classes by runs, the real-image ceiling as a column, and each
run's five worst classes relative to that ceiling highlighted.

A record stores ``extra["per_class_iou"]`` and ``extra["ceiling_per_class_iou"]`` (fractions in [0, 1],
``None`` for a class absent from both the labels and the predictions: its IoU is undefined) and
``extra["confusion"]`` (``conf[gt][pred]`` pixel counts), all over the segmenter's ``K`` classes
(:func:`bench.evaluate.evaluate`). Absent classes show as "–", never 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from bench.store import RunRecord
from reports.significance import RowGroup

WORST = 5  # classes highlighted per run


def class_names(r: RunRecord, k: int) -> list[str]:
    """The ``k`` class names of a record's segmenter classes: a user dataset's own (its identity), else the
    dataset spec's evaluation classes (Cityscapes: the 19 train ids) or its classes, else ``class i``."""
    ident = r.inputs.get("dataset_identity") if isinstance(r.inputs, dict) else None
    if isinstance(ident, dict) and len(ident.get("class_names") or []) == k:
        return [str(n) for n in ident["class_names"]]
    try:
        import bench.datasets.real  # noqa: F401 - registers the real datasets' specs
        from bench.datasets import DATASETS

        spec = DATASETS.get(r.dataset)
        for names in (spec.eval_class_names, spec.class_names):
            if names and len(names) == k:
                return [str(n) for n in names]
    except Exception:  # noqa: BLE001 - a dataset this checkout does not know: numbered classes
        pass
    return [f"class {i}" for i in range(k)]


def _mean(values: Sequence[Any]) -> float | None:
    vals = [float(v) for v in values if isinstance(v, int | float) and math.isfinite(v)]
    return sum(vals) / len(vals) if vals else None


def group_per_class(g: RowGroup, key: str = "per_class_iou") -> list[float | None] | None:
    """A row's per-class IoU (mean over its seeds, per class; ``None`` where no seed has the class), or
    ``None`` when its records carry none."""
    lists = [r.extra.get(key) for r in g.records if isinstance(r.extra.get(key), list)]
    if not lists or len({len(x) for x in lists}) != 1:
        return None
    return [_mean([x[c] for x in lists]) for c in range(len(lists[0]))]


def worst_classes(iou: Sequence[float | None], ceiling: Sequence[float | None], n: int = WORST) -> list[int]:
    """The ``n`` classes with the largest gap ``ceiling - iou`` (classes present in both), worst first."""
    gaps = [(c, i) for c, i in zip(ceiling, iou)]
    scored = [(ce - io, k) for k, (ce, io) in enumerate(gaps) if ce is not None and io is not None]
    return [k for _, k in sorted(scored, key=lambda t: (-t[0], t[1]))[:n]]


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def perclass_table(dataset: str, title: str, groups: Sequence[RowGroup]) -> dict[str, Any] | None:
    """The per-class IoU table of one dataset, as :class:`reports.render.Table` fields.

    Args:
        dataset: the dataset key of the table.
        title: the table caption.
        groups: the dataset's run rows (their records); rows without per-class IoU are left out.

    Returns:
        ``{title, dataset, columns, rows, notes}`` with one column per run plus ``real images (ceiling)``
        and one row per class (IoU in percent, "–" for an absent class; a run's 5 worst classes relative
        to the ceiling have ``worst`` set and the gap in ``title``); ``None`` when no run has per-class IoU.
    """
    runs = [(g, iou) for g in groups if (iou := group_per_class(g)) is not None]
    if not runs:
        return None
    k = len(runs[0][1])
    runs = [(g, iou) for g, iou in runs if len(iou) == k]
    ceiling = next((c for g, _ in runs if (c := group_per_class(g, "ceiling_per_class_iou")) and len(c) == k),
                   [None] * k)
    names = class_names(runs[0][0].newest, k)
    worst = [set(worst_classes(iou, ceiling)) for _, iou in runs]
    columns = [{"name": f"run{j}", "label": g.short_label(), "arrow": "↑"} for j, (g, _) in enumerate(runs)]
    columns.append({"name": "ceiling", "label": "real images (ceiling)", "arrow": "↑"})
    rows = []
    for c in range(k):
        cells = []
        for j, (_, iou) in enumerate(runs):
            bad = c in worst[j]
            gap = f"{100 * (ceiling[c] - iou[c]):.1f} pp below the ceiling" if bad else ""
            cells.append({"text": _pct(iou[c]), "best": False, "worst": bad, "title": gap,
                          "value": iou[c]})
        cells.append({"text": _pct(ceiling[c]), "best": False, "worst": False, "title": "", "value": ceiling[c]})
        rows.append({"label": names[c], "cells": cells, "ceiling": False, "kind": "class"})
    notes = [f"IoU in percent. Shaded: each run's {WORST} worst classes relative to the real-image ceiling "
             "(largest ceiling − run gap). – : class absent from the evaluated labels and predictions (IoU "
             "undefined)." + (" Rows over seeds show the mean per class." if any(len(g.records) > 1 for g, _ in runs)
                              else "")]
    return {"title": title, "dataset": dataset, "columns": columns, "rows": rows, "notes": notes}


__all__ = ["WORST", "class_names", "group_per_class", "perclass_table", "worst_classes"]
