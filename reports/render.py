"""``bench report``: tables and an image grid rebuilt from the run records (the JSON is the truth).

The page is static HTML (jinja2, autoescaped) with its images copied beside it, so it opens from
``file://`` with no network. The same tables are exported as CSV and Markdown.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape
from PIL import Image

from bench.metrics import METRICS
from bench.outputs import OutputDir, prepare_output_dir
from bench.reported import ReportedRow, load_reported, reported_for
from bench.store import RunRecord, RunStore
from reports.reported import reported_rows

MAIN_METRICS = ("miou", "accu", "fid", "kid", "precision", "recall")  # SPADE Table 1, plus KID and P/R
RECON_METRICS = ("psnr", "ssim", "rmse")
ABLATION_METRICS = ("miou", "accu", "fid", "psnr", "ssim", "rmse")  # SEAN Table 3
GRID_IDS = 4
REPORT_KIND = "report"


def record_label(r: RunRecord) -> str:
    """The method's name, plus the config fields that differ from its preset (``spade [max_iters=0]``);
    an external record (``bench eval``) shows its ``--name`` and ``(external)``."""
    if getattr(r, "kind", "run") == "external":
        return f"{r.label or 'images'} (external)"
    try:
        from bench.config import resolve, to_dict

        preset = to_dict(resolve(r.method, r.dataset))
    except Exception:  # noqa: BLE001 - a record from a method or preset this checkout lacks
        return r.method
    diff = [f"{k}={v}" for k, v in sorted(r.config.items()) if k in preset and preset[k] != v]
    ckpt = r.inputs.get("checkpoint") if isinstance(r.inputs, dict) else None
    tag = "" if ckpt in (None, "trained") else f" (checkpoint {str(ckpt)[:8]})"
    return r.method + (f" [{', '.join(diff)}]" if diff else "") + tag


def dataset_key(r: RunRecord) -> str:
    """The table a record belongs to: its dataset's name, and for a user dataset (``--dataset custom``) also
    the digest of its identity (content, classes, ignore id), so two different datasets never share a table."""
    ident = r.inputs.get("dataset_identity") if isinstance(r.inputs, dict) else None
    if not isinstance(ident, dict):
        return r.dataset
    from bench.cache import key_digest

    return f"{r.dataset}-{key_digest({k: v for k, v in ident.items() if k != 'segmenter_sha256'})[:8]}"


def dataset_title(key: str, records: list[RunRecord]) -> str:
    """``key``, and for a user dataset its class names (from its ``classes.txt``/``classes.json``/config)."""
    for r in records:
        ident = r.inputs.get("dataset_identity") if isinstance(r.inputs, dict) else None
        if isinstance(ident, dict) and dataset_key(r) == key:
            names = [str(n) for n in ident.get("class_names") or []]
            shown = ", ".join(names[:20]) + (f", ... ({len(names)} in all)" if len(names) > 20 else "")
            return f"{key} ({len(names)} classes: {shown})"
    return key


def index(records: list[RunRecord], labels: dict[str, str] | None = None) -> pd.DataFrame:
    """Long format: one row per (run, metric), with the ceiling as method ``real images``."""
    rows = []
    for r in records:
        label = (labels or {}).get(r.run_id) or r.extra.get("label") or record_label(r)
        dataset = dataset_key(r)
        for name, value in r.metrics.items():
            rows.append(dict(run_id=r.run_id, method=r.method, label=label, dataset=dataset, metric=name,
                             value=value, created=r.created, kind="generated"))
        for name, value in r.ceiling.items():
            rows.append(dict(run_id=r.run_id, method="real images", label="real images", dataset=dataset,
                             metric=name, value=value, created=r.created, kind="ceiling"))
    return pd.DataFrame(rows, columns=["run_id", "method", "label", "dataset", "metric", "value", "created", "kind"])


@dataclass
class Table:
    title: str
    dataset: str
    columns: list[dict[str, Any]]  # {name, label, arrow}
    rows: list[dict[str, Any]]  # {label, cells: [{text, best}], ceiling: bool, kind, ...}

    def frame(self) -> pd.DataFrame:
        """The table as CSV/Markdown see it; with reported rows, a ``source`` and a ``note`` column are added
        (the separator row is left out: ``source`` already sets the paper rows apart)."""
        rows = [r for r in self.rows if r.get("kind") != "separator"]
        data = {c["label"] + c["arrow"]: [row["cells"][i]["text"] for row in rows] for i, c in enumerate(self.columns)}
        frame = pd.DataFrame(data, index=[r["label"] for r in rows])
        if any(r.get("kind") in ("reported", "delta") for r in rows):
            default = {"ceiling": "run (real images)"}
            frame.insert(0, "source", [r.get("source") or default.get(r.get("kind", ""), "run") for r in rows])
            frame["note"] = [r.get("note", "") for r in rows]
        return frame


def _fmt(metric: str, value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    info = METRICS.get(metric)
    scale = 100.0 if metric in ("miou", "accu") else 1.0  # papers print mIoU/accu in percent
    return format(value * scale, info.fmt if scale == 1 else ".1f")


def _table(title: str, dataset: str, df: pd.DataFrame, metrics: tuple[str, ...], *, with_ceiling: bool,
           mark_best: bool) -> Table | None:
    sub = df[df.metric.isin(metrics)]
    if sub.empty:
        return None
    gen = sub[sub.kind == "generated"].sort_values("created")
    # newest record per row label
    latest = gen.groupby(["label", "metric"]).last().reset_index()
    labels = list(dict.fromkeys(gen.sort_values("label")["label"]))
    columns = [{"name": m, "label": METRICS.get(m).label, "arrow": "↑" if METRICS.get(m).higher_is_better else "↓"}
               for m in metrics if m in set(sub.metric)]
    best: dict[str, float] = {}
    for c in columns:
        vals = latest[latest.metric == c["name"]]["value"].dropna()
        if len(vals):
            best[c["name"]] = vals.max() if METRICS.get(c["name"]).higher_is_better else vals.min()
    rows = []
    for lab in labels:
        cells = []
        for c in columns:
            v = latest[(latest.label == lab) & (latest.metric == c["name"])]["value"]
            val = float(v.iloc[0]) if len(v) else float("nan")
            cells.append({"text": _fmt(c["name"], val), "best": mark_best and len(labels) > 1 and val == best.get(c["name"])})
        newest = gen[gen.label == lab].iloc[-1]
        rows.append({"label": lab, "cells": cells, "ceiling": False, "kind": "run", "method": newest.method,
                     "run_id": newest.run_id, "source": f"run {newest.run_id}"})
    if with_ceiling:
        ceil = sub[sub.kind == "ceiling"].sort_values("created").groupby("metric").last()
        if not ceil.empty:
            cells = [{"text": _fmt(c["name"], float(ceil.loc[c["name"], "value"])) if c["name"] in ceil.index else "–",
                      "best": False} for c in columns]
            rows.append({"label": "real images (ceiling)", "cells": cells, "ceiling": True, "kind": "ceiling"})
    return Table(title, dataset, columns, rows)


PALETTE = np.array(
    [[70, 130, 180], [120, 100, 80], [30, 90, 200], [90, 180, 60], [128, 64, 128], [200, 120, 60],
     [30, 110, 40], [220, 20, 60], [250, 170, 30], [152, 251, 152], [0, 0, 142], [119, 11, 32]], dtype=np.uint8
)


def colorize(label: np.ndarray) -> np.ndarray:
    lut = np.zeros((256, 3), dtype=np.uint8)
    for i in range(255):
        lut[i] = PALETTE[i % len(PALETTE)] if i < len(PALETTE) else (np.array([(i * 97) % 256, (i * 57) % 256, (i * 17) % 256]))
    return lut[label]


def _grid(records: list[RunRecord], dataset: str, out: OutputDir) -> dict[str, Any] | None:
    recs = [r for r in records if dataset_key(r) == dataset]
    recs = list({record_label(r): r for r in sorted(recs, key=lambda r: r.created)}.values())
    recs = [r for r in recs if r.extra.get("images") and Path(r.extra["images"]).is_dir()]
    if not recs:
        return None
    ref = recs[0]
    gen_dirs = {record_label(r): Path(r.extra["images"]) for r in recs}
    reals = Path(ref.extra.get("reals", ""))
    label_dir = Path(ref.extra.get("labels", ""))
    ids = sorted(p.stem for p in next(iter(gen_dirs.values())).glob("*.png"))[:GRID_IDS]
    rows = []
    for i in ids:
        cells = []
        lab = label_dir / f"{i}.png"
        if lab.is_file():
            dst = f"images/{dataset}-{i}-label.png"
            buf = io.BytesIO()
            Image.fromarray(colorize(np.asarray(Image.open(lab)))).save(buf, format="PNG")
            out.write_bytes(dst, buf.getvalue())
            cells.append(dst)
        else:
            cells.append(None)
        real = reals / f"{i}.png"
        if real.is_file():
            dst = f"images/{dataset}-{i}-real.png"
            out.copy_file(dst, real)
            cells.append(dst)
        else:
            cells.append(None)
        for name, d in gen_dirs.items():
            src = d / f"{i}.png"
            dst = f"images/{dataset}-{i}-{hashlib.sha256(name.encode()).hexdigest()[:8]}.png"
            if src.is_file():
                out.copy_file(dst, src)
                cells.append(dst)
            else:
                cells.append(None)
        rows.append({"id": i, "cells": cells})
    return {"dataset": dataset, "header": ["label", "real", *gen_dirs], "rows": rows}


def load_ablations(results: str | Path) -> list[dict[str, Any]]:
    folder = Path(results) / "ablations"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def build(records: list[RunRecord], ablations: list[dict[str, Any]] | None = None, *,
          reported: list[ReportedRow] | None = None, all_reported: bool = False) -> dict[str, Any]:
    """All tables of a report, as plain data (templates read only this).

    Every record appears in the main tables under its method's name (the newest record per method
    and dataset); ablation manifests add one table each, a row per grid cell. Below each dataset's
    main and reconstruction table come the papers' reported rows for that dataset (``reported``,
    default :func:`bench.reported.load_reported`; ``[]`` for none), each followed by its difference
    to every run of the same method (:mod:`reports.reported`). Datasets without runs get reported-only
    tables when ``all_reported``.
    """
    df = index(records)
    by_id = {r.run_id: r for r in records}
    datasets = sorted(set(df.dataset)) if not df.empty else []
    main, recon, ablation = [], [], []
    for man in ablations or []:
        cells = [c for c in man["cells"] if c["run_id"] in by_id]
        if not cells:
            continue
        sub = index([by_id[c["run_id"]] for c in cells], labels={c["run_id"]: c["label"] for c in cells})
        grid = ", ".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in man["grid"].items())
        if (t := _table(f"{man['dataset']}: {man['method']} ablation over {grid} (SEAN Table 3 layout)",
                        man["dataset"], sub, ABLATION_METRICS, with_ceiling=False, mark_best=True)) is not None:
            t.rows.sort(key=lambda r: [c["label"] for c in cells].index(r["label"]))
            ablation.append(t)
    paper_rows = load_reported() if reported is None else reported
    if all_reported:
        datasets = sorted({*datasets, *(r.dataset for r in paper_rows)})
    for d in datasets:
        sub = df[df.dataset == d]
        name = dataset_title(d, records)
        for title, metrics, ceiling, tables in ((f"{name}: segmentation and FID (SPADE Table 1 layout)", MAIN_METRICS,
                                                 True, main),
                                                (f"{name}: reconstruction from the real image", RECON_METRICS,
                                                 False, recon)):
            t = _table(title, d, sub, metrics, with_ceiling=ceiling, mark_best=True) if not sub.empty else None
            ours = reported_for(d, rows=paper_rows)
            if t is None and all_reported:
                shown = [m for m in metrics if any(m in r.metrics for r in ours)]
                t = Table(title, d, [{"name": m, "label": METRICS.get(m).label,
                                      "arrow": "↑" if METRICS.get(m).higher_is_better else "↓"} for m in shown], [])
            if t is None:
                continue
            runs = [r for r in t.rows if r.get("kind") == "run"]
            t.rows.extend(reported_rows(t.columns, runs, by_id, ours))
            if t.rows:
                tables.append(t)
    return {"datasets": datasets, "main": main, "recon": recon, "ablation": ablation, "index": df}


def render(results: str | Path, out: str | Path, *, overwrite: bool = False, all_reported: bool = False) -> Path:
    """Write ``out/index.html``, ``out/tables.md``, ``out/index.csv``, one CSV per table and the grid's
    ``out/images/*.png``; returns the HTML path.

    ``out`` follows :mod:`bench.outputs`: a new folder or an earlier report is (re)written, and files of
    an earlier report that this one no longer has are removed; a non-empty folder sisbench did not write
    is refused unless ``overwrite``, and nothing sisbench did not write is ever deleted.

    Raises:
        OutputDirError: ``out`` holds files sisbench did not write (and not ``overwrite``).
    """
    target = prepare_output_dir(out, overwrite=overwrite, kind=REPORT_KIND)
    records = RunStore(results).all()
    data = build(records, load_ablations(results), all_reported=all_reported)
    grids = [g for d in data["datasets"] if (g := _grid(records, d, target)) is not None]
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        tables=data["main"], recon=data["recon"], ablation=data["ablation"], grids=grids, n_runs=len(records),
        records=sorted(records, key=lambda r: r.created),
    )
    md = []
    for i, t in enumerate(data["main"] + data["recon"] + data["ablation"]):
        frame = t.frame()
        target.write_text(f"table{i + 1}-{t.dataset}.csv", frame.to_csv())
        md.append(f"### {t.title}\n\n{frame.to_markdown() if _has_tabulate() else frame.to_string()}\n")
    target.write_text("index.csv", data["index"].to_csv(index=False))
    target.write_text("tables.md", "\n".join(md))
    html_path = target.write_text("index.html", html)
    target.finish()
    return html_path


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True
