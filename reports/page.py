"""The figures of ``bench report``'s page: per row of each dataset's main table, its row-normalised confusion
matrix and its training curves, written as SVG under ``plots/`` of the report folder.

A row's confusion matrix is the sum of its seeds' matrices (``record.extra["confusion"]``); its curves are
each seed's ``train_log.jsonl`` (:mod:`bench.training.log`), found beside the run's checkpoint
(``record.weights["generator"]["path"]``) or in ``results/work/<run_id>/train/``. A run without a log
(trained before logs existed, loaded from a checkpoint, or an external record) gets a line saying so.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from bench.outputs import OutputDir
from bench.store import RunRecord
from bench.training.log import LOG_NAME, read_log
from reports.significance import RowGroup


def train_log_of(r: RunRecord, results: Path) -> Path | None:
    """The ``train_log.jsonl`` of a record's training, or ``None`` when there is none."""
    cands = []
    ckpt = (r.weights.get("generator") or {}).get("path") if isinstance(r.weights, dict) else None
    if ckpt:
        cands.append(Path(ckpt).parent / LOG_NAME)
    cands.append(results / "work" / r.run_id / "train" / LOG_NAME)
    return next((p for p in cands if p.is_file()), None)


def _tag(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()[:8]


def figures(groups_of: dict[str, list[RowGroup]], out: OutputDir, results: Path) -> tuple[list[dict[str, Any]],
                                                                                          list[dict[str, Any]]]:
    """Write every row's confusion matrix and training curves; returns their entries for the template.

    Returns:
        ``(confusions, curves)``: ``{"dataset", "label", "src"}`` per confusion SVG, and ``{"dataset",
        "label", "src" or None, "why"}`` per training-curve figure (``why`` says why a row has none).
    """
    from reports.perclass import class_names
    from reports.plots import confusion_svg, curves_svg

    confusions, curves = [], []
    for d, groups in groups_of.items():
        for g in groups:
            mats = [np.asarray(r.extra["confusion"], dtype=np.int64) for r in g.records
                    if isinstance(r.extra.get("confusion"), list) and r.extra["confusion"]]
            if mats and len({m.shape for m in mats}) == 1:
                conf = sum(mats[1:], mats[0])
                names = class_names(g.newest, conf.shape[0])
                title = g.short_label() + (", summed" if len(mats) > 1 else "")
                src = f"plots/{d}-confusion-{_tag(g.label)}.svg"
                out.write_bytes(src, confusion_svg(conf, names, title))
                confusions.append({"dataset": d, "label": g.short_label(), "src": src})
            if g.newest.kind == "external":
                continue
            logs = [(r, read_log(p)) for r in g.records if (p := train_log_of(r, results)) is not None]
            logs = [(r, e) for r, e in logs if e]
            if not logs:
                ckpt = g.newest.inputs.get("checkpoint") if isinstance(g.newest.inputs, dict) else None
                why = ("loaded from a checkpoint: no training log" if ckpt not in (None, "trained")
                       else "no training log (trained before sisbench wrote train_log.jsonl, or its work folder "
                            "was removed)")
                curves.append({"dataset": d, "label": g.short_label(), "src": None, "why": why})
                continue
            series = [(f"seed {r.seed}" if len(g.records) > 1 else "", e) for r, e in logs]
            src = f"plots/{d}-curves-{_tag(g.label)}.svg"
            out.write_bytes(src, curves_svg(series, g.short_label()))
            curves.append({"dataset": d, "label": g.short_label(), "src": src, "why": None})
    return confusions, curves


__all__ = ["figures", "train_log_of"]
