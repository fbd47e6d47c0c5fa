"""The papers' reported rows in ``bench report`` tables, each followed by its difference to every run.

For one dataset table (its metric columns and its run rows) this adds, below the runs and the ceiling:
a separator row, then per reported row (method × paper table, :mod:`bench.reported`) the paper's values
(``†`` marks a figure not checked against the paper) and, for every run row of the same method, a
difference row ``run - reported`` (percentage points for mIoU/accuracy) whose note lists how the run's
protocol departs from the paper's (resolution, segmenter, image count, reconstruction). Rows are plain
dicts, as :func:`reports.render._table` makes them, so the HTML template, the CSV and the Markdown export
read them alike.
"""

from __future__ import annotations

from typing import Any

from bench.reported import DAGGER, ReportedRow, format_reported, metric_info
from bench.reported.compare import format_difference, protocol_differences
from bench.store import RunRecord

SEPARATOR_LABEL = "reported in the papers"
UNVERIFIED_NOTE = f"{DAGGER} not checked against the paper (copied from secondary notes); check the PDF before citing"


def reported_label(row: ReportedRow) -> str:
    """``"spade · SPADE paper, Table 1"``."""
    return f"{row.method} · {row.paper.short}, {row.table}"


def _size(hw: tuple[int, int] | None) -> str:
    return f"{hw[0]}×{hw[1]}" if hw else "size not stated"


def _year(row: ReportedRow) -> int:
    last = row.paper.venue.split()[-1] if row.paper.venue else ""
    return int(last) if last.isdigit() else 0


def paper_protocol_note(row: ReportedRow) -> str:
    """The paper's protocol in one phrase: ``"paper: 256×256, upernet101_ade20k, 2000 images"``."""
    p = row.protocol
    parts = [_size(p.resolution)]
    if set(row.metrics) & {"miou", "accu"}:
        parts.append(p.segmenter or "segmenter not stated")
    parts.append(f"{p.n_images} images" if p.n_images else "image count not stated")
    if p.reconstruction:
        parts.append("reconstruction (style from the real image)")
    return "paper: " + ", ".join(parts)


def reported_rows(columns: list[dict[str, Any]], run_rows: list[dict[str, Any]], records: dict[str, RunRecord],
                  reported: list[ReportedRow]) -> list[dict[str, Any]]:
    """Rows to append to one dataset table: a separator, then each reported row and its difference rows.

    Args:
        columns: the table's columns (``{"name": metric key, ...}``).
        run_rows: the table's run rows; each has ``label``, ``method`` and ``run_id`` (of ``records``).
        records: run id -> record, for the metric values and the protocol.
        reported: the dataset's reported rows; those sharing no metric with ``columns`` are skipped.

    Returns:
        Row dicts ``{label, cells: [{text, best, unverified}], ceiling: False, kind, source, note}`` with
        ``kind`` one of ``separator``, ``reported``, ``delta``; empty if no reported row fits the columns.
    """
    names = [c["name"] for c in columns]
    fitting = [r for r in reported if set(r.metrics) & set(names)]
    if not fitting:
        return []
    run_methods = {r["method"] for r in run_rows}
    # methods with runs first (their differences are the point), then the rest for context; per method the
    # earliest paper first (the method's own paper before the later ones that quote it)
    fitting.sort(key=lambda r: (r.method not in run_methods, r.method, _year(r), r.paper.key, r.table))
    out: list[dict[str, Any]] = [{"label": SEPARATOR_LABEL, "cells": [], "ceiling": False, "kind": "separator",
                                  "source": "", "note": ""}]
    for row in fitting:
        shown = [m for m in names if m in row.metrics]
        unverified = [metric_info(m).label for m in shown if not row.verified[m]]
        notes = []
        if unverified:
            notes.append(f"{DAGGER} not checked against the paper: {', '.join(unverified)}")
        notes.append(paper_protocol_note(row))
        if row.note:
            notes.append(row.note)
        out.append({
            "label": reported_label(row),
            "cells": [{"text": format_reported(row, m), "best": False,
                       "unverified": m in row.metrics and not row.verified[m]} for m in names],
            "ceiling": False, "kind": "reported", "source": row.source, "note": "; ".join(notes),
        })
        for run in run_rows:
            if run["method"] != row.method or run.get("run_id") not in records:
                continue
            rec = records[run["run_id"]]
            diffs = protocol_differences(row, rec, shown)
            note = ("protocol differs: " + "; ".join(diffs)) if diffs else \
                "same resolution, segmenter, image count and reconstruction setting as the paper"
            out.append({
                "label": f"Δ {run['label']} vs {row.paper.short}, {row.table}",
                "cells": [{"text": format_difference(m, rec.metrics.get(m), row) if m in row.metrics else "–",
                           "best": False, "unverified": False} for m in names],
                "ceiling": False, "kind": "delta", "source": f"run {rec.run_id} − {row.source}", "note": note,
            })
    return out
