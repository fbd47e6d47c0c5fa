"""``bench report``: tables, plots and image grids rebuilt from the run records (the JSON is the truth).

The page is static HTML (jinja2, autoescaped) with its images and SVG figures beside it, so it opens from
``file://`` with no network. Per dataset it holds the main table (SPADE Table 1 layout) and the
reconstruction table, each cell ``value ± half-width of its 95% interval`` with honest "best" marks
(:mod:`reports.significance`), rows over training seeds as ``mean ± sd (n=...)``, the ablation grids,
per-class IoU against the real-image ceiling (:mod:`reports.perclass`), row-normalised confusion matrices
and training curves (:mod:`reports.plots`), sample grids in the dataset's palette and SEAN's style-control
grid (:mod:`reports.grids`), and a provenance block per run (:mod:`reports.provenance`). Tables are also
written as CSV, Markdown and LaTeX (:mod:`reports.latex`) under ``tables/``.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from jinja2 import Environment, FileSystemLoader, select_autoescape

from bench.errors import ConfigError
from bench.metrics import METRICS
from bench.outputs import prepare_output_dir
from bench.reported import ReportedRow, load_reported, reported_for
from bench.store import RunRecord, RunStore, canonical_json
from reports.provenance import config_diff, protocol_caption, provenance
from reports.reported import reported_rows
from reports.significance import NOTES, RowGroup, cell_of, mark_column, seed_group, seed_key

log = logging.getLogger(__name__)

MAIN_METRICS = ("miou", "accu", "fid", "kid", "precision", "recall")  # SPADE Table 1, plus KID and P/R
RECON_METRICS = ("psnr", "ssim", "rmse")
ABLATION_METRICS = ("miou", "accu", "fid", "psnr", "ssim", "rmse")  # SEAN Table 3
REPORT_KIND = "report"
FORMATS = ("latex", "markdown", "csv")
PM_NOTE = ("± : half-width of the run's 95% interval (evaluation-set uncertainty); for rows over seeds, the "
           "standard deviation over the seeds.")


def record_label(r: RunRecord) -> str:
    """The method's name, plus the config fields that differ from its preset (``spade [max_iters=0]``);
    an external record (``bench eval``) shows its ``--name`` and ``(external)``."""
    if getattr(r, "kind", "run") == "external":
        return f"{r.label or 'images'} (external)"
    diff = config_diff(r)
    shown = [f"{k}={v}" for k, (_, v) in diff.items()] if diff else []
    ckpt = r.inputs.get("checkpoint") if isinstance(r.inputs, dict) else None
    tag = "" if ckpt in (None, "trained") else f" (checkpoint {str(ckpt)[:8]})"
    return r.method + (f" [{', '.join(shown)}]" if shown else "") + tag


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
    """One table of the report, as plain data (the HTML template, CSV, Markdown and LaTeX read it).

    ``rows`` are dicts ``{label, cells: [{text, best, tie, untested, ...}], ceiling, kind, ...}``; ``kind``
    is ``run``, ``ceiling``, ``separator``, ``reported``, ``delta`` or ``class``.
    """

    title: str
    dataset: str
    columns: list[dict[str, Any]]  # {name, label, arrow}
    rows: list[dict[str, Any]]
    kind: str = "main"
    slug: str = ""
    notes: list[str] = field(default_factory=list)
    protocol: str = ""

    def frame(self, *, marks: bool = False) -> pd.DataFrame:
        """The table as CSV/Markdown see it; with reported rows, a ``source`` and a ``note`` column are added
        (the separator row is left out: ``source`` already sets the paper rows apart). ``marks`` adds the
        Markdown marks: ``**bold**`` for a significantly best cell, ``≈`` tied, ``*`` untested."""
        rows = [r for r in self.rows if r.get("kind") != "separator"]

        def text(c: dict[str, Any]) -> str:
            t = c["text"]
            if marks:
                t = f"**{t}**" if c.get("best") else t
                t += ("≈" if c.get("tie") else "") + ("*" if c.get("untested") else "")
                t = f"_{t}_" if c.get("worst") else t
            return t

        data = {c["label"] + c["arrow"]: [text(row["cells"][i]) for row in rows] for i, c in enumerate(self.columns)}
        frame = pd.DataFrame(data, index=[r["label"] for r in rows])
        if any(r.get("kind") in ("reported", "delta") for r in rows):
            default = {"ceiling": "run (real images)"}
            frame.insert(0, "source", [r.get("source") or default.get(r.get("kind", ""), "run") for r in rows])
            frame["note"] = [r.get("note", "") for r in rows]
        return frame


def _fmt(metric: str, value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    info = METRICS.get(metric)
    scale = 100.0 if metric in ("miou", "accu") else 1.0  # papers print mIoU/accu in percent
    return format(value * scale, info.fmt if scale == 1 else ".1f")


def _columns(metrics: Sequence[str]) -> list[dict[str, Any]]:
    return [{"name": m, "label": METRICS.get(m).label, "arrow": "↑" if METRICS.get(m).higher_is_better else "↓"}
            for m in metrics]


def _table(title: str, dataset: str, groups: list[RowGroup], metrics: tuple[str, ...], *, with_ceiling: bool,
           per_image: Any = None, kind: str = "main") -> Table | None:
    """A table of ``groups`` (one row each) over the ``metrics`` any of them has; ``None`` if none has any."""
    present = {m for g in groups for r in g.records for m in r.metrics}
    shown = [m for m in metrics if m in present]
    if not groups or not shown:
        return None
    columns = _columns(shown)
    cells = {m: [cell_of(g, m) for g in groups] for m in shown}
    marks = {m: mark_column(groups, cells[m], m, higher_is_better=METRICS.get(m).higher_is_better,
                            per_image=per_image) for m in shown}
    rows = []
    for i, g in enumerate(groups):
        row_cells = []
        for m in shown:
            c, mk = cells[m][i], marks[m]
            text = _fmt(m, c.value) + (f" ± {_fmt(m, c.pm)}" if math.isfinite(c.value) and math.isfinite(c.pm) else "")
            row_cells.append({"text": text, "best": i in mk.bold, "tie": i in mk.tie, "untested": i in mk.untested,
                              "value": None if not math.isfinite(c.value) else c.value,
                              "pm": None if math.isnan(c.pm) else c.pm, "n": len(g.records)})
        newest = g.newest
        rows.append({"label": g.row_label(), "cells": row_cells, "ceiling": False, "kind": "run",
                     "method": newest.method, "run_id": newest.run_id, "run_ids": [r.run_id for r in g.records],
                     "source": f"run {newest.run_id}" if len(g.records) == 1 else
                     "runs " + ", ".join(r.run_id for r in g.records)})
    sizes: list[str] = []
    if with_ceiling:  # one ceiling per evaluated size: a ceiling only bounds runs scored at its size
        by_size: dict[str, dict[str, float]] = {}
        for r in sorted((r for g in groups for r in g.records), key=lambda r: r.created):
            size = "x".join(str(v) for v in reversed(r.protocol.get("segmentation_size") or [])) or "?"
            by_size.setdefault(size, {}).update({k: v for k, v in r.ceiling.items() if isinstance(v, int | float)})
        sizes = [z for z, c in by_size.items() if c]
        if len([z for z in sizes if z != "?"]) <= 1:  # one known size (older records may not record it)
            merged: dict[str, float] = {}
            for z in sorted(sizes, key=lambda z: z != "?"):
                merged.update(by_size[z])
            sizes, by_size = (["all"], {"all": merged}) if merged else ([], {})
        for size in sizes:
            ceil = by_size[size]
            label = "real images (ceiling)" if len(sizes) == 1 else f"real images (ceiling at {size}, WxH)"
            rows.append({"label": label, "ceiling": True, "kind": "ceiling",
                         "cells": [{"text": _fmt(c["name"], ceil.get(c["name"])), "best": False,
                                    "value": ceil.get(c["name"])} for c in columns]})
    used = set().union(*(mk.notes for mk in marks.values()))
    notes = [NOTES[k] for k in ("infinite", "paired", "welch", "overlap", "mixed", "tie", "untested")
             if k in used]
    if len(sizes) > 1:
        notes.append(f"Rows were segmented at different sizes ({', '.join(sizes)} WxH): compare each run with the "
                     "ceiling of its own size (the provenance block gives each run's size); FID across sizes is "
                     "not comparable either.")
    if any(r.get("pm") is not None for row in rows for r in row["cells"]):
        notes.insert(0, PM_NOTE)
    protocol = protocol_caption([r for g in groups for r in g.records])
    return Table(title, dataset, columns, rows, kind=kind, notes=notes, protocol=protocol)


def _groups(records: Sequence[RunRecord], labels: dict[str, str] | None = None) -> list[RowGroup]:
    """One row per label (sorted), each the newest configuration's records over seeds."""
    by_label: dict[str, list[RunRecord]] = {}
    for r in records:
        label = (labels or {}).get(r.run_id) or r.extra.get("label") or record_label(r)
        by_label.setdefault(label, []).append(r)
    return [seed_group(by_label[k], k) for k in sorted(by_label)]


PALETTE = np.array(
    [[70, 130, 180], [120, 100, 80], [30, 90, 200], [90, 180, 60], [128, 64, 128], [200, 120, 60],
     [30, 110, 40], [220, 20, 60], [250, 170, 30], [152, 251, 152], [0, 0, 142], [119, 11, 32]], dtype=np.uint8
)


def colorize(label: np.ndarray) -> np.ndarray:
    """The fixed palette of datasets without a published one: uint8 ``[H, W, 3]`` of ``label`` uint8 ``[H, W]``
    (ids 0..11 as :data:`PALETTE`, others a hash colour, 255 black)."""
    lut = np.zeros((256, 3), dtype=np.uint8)
    for i in range(255):
        lut[i] = PALETTE[i % len(PALETTE)] if i < len(PALETTE) else (np.array([(i * 97) % 256, (i * 57) % 256, (i * 17) % 256]))
    return lut[label]


def load_ablations(results: str | Path) -> list[dict[str, Any]]:
    folder = Path(results) / "ablations"
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


def merge_ablations(manifests: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Manifests of the same grid run with different seeds (``bench ablate --seed``) as one, each cell listing
    the run ids of every seed (``run_ids``), in the first manifest's cell order."""
    merged: dict[str, dict[str, Any]] = {}
    for man in manifests:
        key = canonical_json([man.get("method"), man.get("dataset"), man.get("grid"), man.get("base"),
                              man.get("dataset_identity")])
        into = merged.setdefault(key, {**man, "cells": [], "seeds": []})
        if man.get("seed") is not None and man.get("seed") not in into["seeds"]:
            into["seeds"].append(man.get("seed"))
        labels = [c["label"] for c in into["cells"]]
        for c in man["cells"]:
            ids = c.get("run_ids") or [c["run_id"]]
            if c["label"] in labels:
                into["cells"][labels.index(c["label"])]["run_ids"] += [i for i in ids if i not in
                                                                       into["cells"][labels.index(c["label"])]["run_ids"]]
            else:
                into["cells"].append({**c, "run_ids": list(ids)})
                labels.append(c["label"])
    return list(merged.values())


def _ablation_tables(ablations: Sequence[dict[str, Any]], records: Sequence[RunRecord], per_image: Any) -> list[Table]:
    by_id = {r.run_id: r for r in records}
    by_key: dict[str, list[RunRecord]] = {}
    for r in records:
        by_key.setdefault(seed_key(r), []).append(r)
    out = []
    for man in merge_ablations(ablations):
        groups = []
        for c in man["cells"]:
            mine = [by_id[i] for i in c["run_ids"] if i in by_id]
            if not mine:
                continue
            # other seeds of the same cell, run outside the grid too (records with inputs: the key is exact)
            cands = {r.run_id: r for m in mine for r in (by_key[seed_key(m)] if m.inputs else [m])}
            groups.append(seed_group(list(cands.values()), c["label"]))
        if not groups:
            continue
        grid = ", ".join(f"{k} ∈ {{{', '.join(v)}}}" for k, v in man["grid"].items())
        seeds = sorted({s for g in groups for s in g.seeds})
        title = (f"{man['dataset']}: {man['method']} ablation over {grid} (SEAN Table 3 layout"
                 + (f"; seeds {', '.join(map(str, seeds))}" if len(seeds) > 1 else "") + ")")
        t = _table(title, man["dataset"], groups, ABLATION_METRICS, with_ceiling=False, per_image=per_image,
                   kind="ablation")
        if t is not None:
            out.append(t)
    return out


def _mean_record(row: dict[str, Any], by_id: dict[str, RunRecord]) -> RunRecord | None:
    """A row over seeds as one record with the mean metrics (for its differences to the papers' rows)."""
    recs = [by_id[i] for i in row.get("run_ids", []) if i in by_id]
    if len(recs) < 2:
        return None
    keys = {k for r in recs for k in r.metrics}
    mean = {k: float(np.mean([r.metrics[k] for r in recs if k in r.metrics])) for k in keys}
    newest = max(recs, key=lambda r: r.created)
    return replace(newest, run_id=f"{newest.run_id} (mean of {len(recs)} seeds)", metrics=mean)


def build(records: list[RunRecord], ablations: list[dict[str, Any]] | None = None, *,
          reported: list[ReportedRow] | None = None, all_reported: bool = False,
          per_image: Any = None) -> dict[str, Any]:
    """All tables of a report, as plain data (templates read only this).

    Every record appears in its dataset's main tables under its label (method and config difference from
    the preset); records differing only in their seed share a row (mean ± sd over seeds), otherwise the
    newest record of a label wins. Ablation manifests add one table each (manifests of one grid with
    different seeds merge). Below each dataset's main and reconstruction table come the papers' reported
    rows for that dataset (``reported``, default :func:`bench.reported.load_reported`; ``[]`` for none), each
    followed by its difference to every run of the same method (:mod:`reports.reported`). Datasets without
    runs get reported-only tables when ``all_reported``.

    Args:
        per_image: record -> its :class:`bench.intervals.PerImage` (or ``None``), for the paired tests that
            decide the bold cells; without it rows are compared by their intervals.

    Returns:
        ``{"datasets", "main", "recon", "ablation", "perclass", "groups": {dataset: [RowGroup]}, "index"}``.
    """
    from reports.perclass import perclass_table

    df = index(records)
    by_id = {r.run_id: r for r in records}
    datasets = sorted({dataset_key(r) for r in records})
    main, recon, perclass = [], [], []
    ablation = _ablation_tables(ablations or [], records, per_image)
    paper_rows = load_reported() if reported is None else reported
    if all_reported:
        datasets = sorted({*datasets, *(r.dataset for r in paper_rows)})
    groups_of: dict[str, list[RowGroup]] = {}
    for d in datasets:
        mine = [r for r in records if dataset_key(r) == d]
        groups = groups_of[d] = _groups(mine) if mine else []
        name = dataset_title(d, records)
        for title, metrics, ceiling, tables, kind in (
                (f"{name}: segmentation and FID (SPADE Table 1 layout)", MAIN_METRICS, True, main, "main"),
                (f"{name}: reconstruction from the real image", RECON_METRICS, False, recon, "recon")):
            t = _table(title, d, groups, metrics, with_ceiling=ceiling, per_image=per_image, kind=kind)
            ours = reported_for(d, rows=paper_rows)
            if t is None and all_reported:
                shown = [m for m in metrics if any(m in r.metrics for r in ours)]
                t = Table(title, d, _columns(shown), [], kind=kind)
            if t is None:
                continue
            runs, ids = [], dict(by_id)
            for row in (r for r in t.rows if r.get("kind") == "run"):
                if (mean := _mean_record(row, by_id)) is not None:  # a row over seeds: its mean vs the paper
                    ids[mean.run_id] = mean
                    row = dict(row, run_id=mean.run_id)
                runs.append(row)
            t.rows.extend(reported_rows(t.columns, runs, ids, ours))
            if t.rows:
                tables.append(t)
        if groups and (pc := perclass_table(d, f"{name}: per-class IoU against the real-image ceiling", groups)):
            protocol = protocol_caption([r for g in groups for r in g.records])
            perclass.append(Table(pc["title"], d, pc["columns"], pc["rows"], kind="perclass", notes=pc["notes"],
                                  protocol=protocol))
    _slugs(main + recon + ablation + perclass)
    return {"datasets": datasets, "main": main, "recon": recon, "ablation": ablation, "perclass": perclass,
            "groups": groups_of, "index": df}


def _slugs(tables: Sequence[Table]) -> None:
    seen: dict[str, int] = {}
    for t in tables:
        base = re.sub(r"[^a-z0-9]+", "-", f"{t.kind}-{t.dataset}".lower()).strip("-")
        seen[base] = seen.get(base, 0) + 1
        t.slug = base if seen[base] == 1 else f"{base}-{seen[base]}"


def per_image_loader(results: str | Path) -> Any:
    """record -> its :class:`bench.intervals.PerImage` from ``results/runs/<id>.npz`` (``None`` if absent or
    unreadable), loaded once per record."""
    from bench.errors import BenchError
    from bench.intervals import PerImage

    store, cache = RunStore(results), {}

    def load(r: RunRecord) -> PerImage | None:
        if r.run_id not in cache:
            path = store.per_image_path(r.run_id)
            try:
                cache[r.run_id] = PerImage.load(path) if path.is_file() else None
            except BenchError as e:
                log.warning("%s", e)
                cache[r.run_id] = None
        return cache[r.run_id]

    return load


def _markdown(t: Table, *, notes_first: bool = False) -> str:
    """The table in Markdown (a pipe table, pandas + tabulate), with its protocol and notes
    after it, or, with ``notes_first``, as a quote before its title (``tables.md``: each table then ends
    its section, so a script can read its rows up to the next title)."""
    frame = t.frame(marks=True)
    body = frame.to_markdown()  # tabulate (a dependency): a pipe table
    notes = ([t.protocol + "."] if t.protocol else []) + t.notes
    if notes_first:
        quote = "\n>\n".join(f"> {n}" for n in notes)
        return (quote + "\n\n" if quote else "") + f"### {t.title}\n\n{body}\n"
    return f"### {t.title}\n\n{body}\n" + "".join(f"\n{n}\n" for n in notes)


def export_table(results: str | Path, fmt: str, table: str | None = None) -> str:
    """One table as LaTeX, Markdown or CSV text (``bench report --format``), nothing written.

    Args:
        results: the results folder.
        fmt: ``latex``, ``markdown`` or ``csv``.
        table: a table's slug (``main-synthetic``, ``recon-synthetic``, ``ablation-synthetic``,
            ``perclass-synthetic``; see ``tables/`` of a written report); default the first main table.

    Raises:
        ConfigError: unknown format, no tables, or no table with that slug (the known slugs are listed).
    """
    from reports.latex import table_latex

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: use one of {', '.join(FORMATS)}")
    records = RunStore(results).all()
    data = build(records, load_ablations(results), per_image=per_image_loader(results))
    tables = data["main"] + data["recon"] + data["ablation"] + data["perclass"]
    if not tables:
        raise ConfigError(f"{Path(results) / 'runs'}: no run records to make a table from; run `bench run` first")
    chosen = tables[0] if table is None else next((t for t in tables if t.slug == table), None)
    if chosen is None:
        raise ConfigError(f"--table {table!r}: no such table; the tables are {', '.join(t.slug for t in tables)}")
    if fmt == "latex":
        return table_latex(chosen)
    if fmt == "markdown":
        return _markdown(chosen)
    return chosen.frame().to_csv()


def render(results: str | Path, out: str | Path, *, overwrite: bool = False, all_reported: bool = False,
           grid_ids: Sequence[str] | None = None, style_grid: bool = True, device: str | None = None) -> Path:
    """Write ``out/index.html`` with its ``images/`` and ``plots/``, ``out/tables.md``, ``out/index.csv``, one
    CSV per table and ``out/tables/<slug>.tex``; returns the HTML path.

    ``out`` follows :mod:`bench.outputs`: a new folder or an earlier report is (re)written, and files of
    an earlier report that this one no longer has are removed; a non-empty folder sisbench did not write
    is refused unless ``overwrite``, and nothing sisbench did not write is ever deleted.

    Args:
        grid_ids: the validation ids of the sample grids (default the first four of each dataset).
        style_grid: draw SEAN's style-control grid (generates ``len(grid_ids)²`` images per SEAN row once,
            cached in the run's work folder) when the run's checkpoint and data are on disk.
        device: where the style grid is generated (default: the first CUDA device, else CPU).

    Raises:
        OutputDirError: ``out`` holds files sisbench did not write (and not ``overwrite``).
        ConfigError: a ``grid_ids`` id that no run has generated.
    """
    from reports import grids as G
    from reports.latex import table_latex
    from reports.page import figures

    records = RunStore(results).all()
    data = build(records, load_ablations(results), all_reported=all_reported, per_image=per_image_loader(results))
    if grid_ids:
        G.check_grid_ids(grid_ids, {d: G.available_ids(g) for d, g in data["groups"].items()})
    target = prepare_output_dir(out, overwrite=overwrite, kind=REPORT_KIND)
    samples, styles = [], []
    for d, groups in data["groups"].items():
        if (g := G.sample_grid(d, groups, target, grid_ids)) is None:
            continue
        samples.append(g)
        if style_grid:
            ids = [r["id"] for r in g["rows"]]
            labels = {r["id"]: r["cells"][0] for r in g["rows"]}
            styles += [s for grp in groups if (s := G.style_grid(grp, d, ids, target, Path(results), labels=labels,
                                                                  device=device)) is not None]
    confusions, curves = figures(data["groups"], target, Path(results))
    labels = {r.run_id: g.label for gs in data["groups"].values() for g in gs for r in g.records}
    tables = data["main"] + data["recon"] + data["perclass"] + data["ablation"]
    env = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                      autoescape=select_autoescape(["html", "j2"]))
    html = env.get_template("report.html.j2").render(
        tables=data["main"], recon=data["recon"], ablation=data["ablation"], perclass=data["perclass"],
        grids=samples, styles=styles, confusions=confusions, curves=curves, n_runs=len(records),
        records=sorted(records, key=lambda r: r.created),
        provenance=[provenance(r, labels.get(r.run_id) or record_label(r))
                    for r in sorted(records, key=lambda r: r.created)],
    )
    md = []
    for i, t in enumerate(tables):
        target.write_text(f"table{i + 1}-{t.dataset}.csv", t.frame().to_csv())
        target.write_text(f"tables/{t.slug}.tex", table_latex(t))
        md.append(_markdown(t, notes_first=True))
    target.write_text("index.csv", data["index"].to_csv(index=False))
    target.write_text("tables.md", "\n".join(md))
    html_path = target.write_text("index.html", html)
    target.finish()
    return html_path
