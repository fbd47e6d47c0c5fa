"""bench report tables: ± from the records' intervals, bold only when the paired test says so, ties marked,
seeds aggregated as mean ± sd (n), ablation manifests of several seeds merged, per-class IoU with the
ceiling and the worst classes, and the LaTeX/Markdown/CSV exports (escaping, structure, compilation)."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.intervals import PerImage, evaluation_intervals
from bench.store import RunRecord, RunStore
from reports.latex import document, latex_escape, table_latex
from reports.perclass import worst_classes
from reports.render import build, export_table, merge_ablations, per_image_loader

N = 60
IDS = [f"val_{i:05d}" for i in range(N)]
BASE = np.random.default_rng(0).normal(20.0, 3.0, N)  # shared per-image difficulty: pairing cancels it


def _put(store: RunStore, rid: str, method: str, psnr: np.ndarray, *, seed: int = 0, ids: list[str] = IDS,
         config: dict | None = None, created: str = "2026-01-01", extra: dict | None = None,
         metrics: dict | None = None) -> RunRecord:
    per = PerImage(rec_ids=list(ids), rec={"psnr": np.asarray(psnr, np.float64)})
    m = {"psnr": float(np.mean(psnr)), **(metrics or {})}
    intervals, _ = evaluation_intervals(per, m, n_resamples=400)
    cfg = config or {}
    rec = RunRecord(run_id=rid, method=method, dataset="synthetic", seed=seed,
                    inputs={"method": method, "config": cfg, "seed": seed, "data": "d"}, config=cfg, weights={},
                    protocol={"segmentation": "native"}, metrics=m, intervals=intervals, created=created,
                    extra=extra or {})
    store.put(rec, per.to_bytes())
    return rec


def _cells(table, label: str) -> list[dict]:
    return next(r["cells"] for r in table.rows if r["label"] == label)


def test_bold_needs_the_paired_test_and_ties_are_marked(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    noise = np.random.default_rng(1).normal(0.0, 0.1, (3, N))
    _put(store, "a", "sean", BASE + 0.5 + noise[0])  # better than spade by 0.5 dB on every image
    _put(store, "b", "spade", BASE + noise[1])
    data = build(store.all(), per_image=per_image_loader(store.root))
    recon = data["recon"][0]
    a, b = _cells(recon, "sean")[0], _cells(recon, "spade")[0]
    assert a["best"] and not b["best"] and not a["tie"]
    # ± is the half-width of the record's own interval, in the table's units
    iv = store.get("a").intervals["psnr"]
    assert a["text"] == f"{np.mean(BASE + 0.5 + noise[0]):.2f} ± {(iv['high'] - iv['low']) / 2:.2f}"
    # the unpaired intervals overlap (image difficulty sd 3 dB): only the paired test can call it
    assert iv["low"] < store.get("b").intervals["psnr"]["high"]
    assert any("paired-bootstrap" in n for n in recon.notes)

    # a third run indistinguishable from spade does not change that sean is best
    _put(store, "c", "oasis", BASE + 0.02 + noise[2])
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    assert _cells(recon, "sean")[0]["best"]
    # without sean, the two are tied: both marked, none bold
    store.path("a").unlink()
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    c, b = _cells(recon, "oasis")[0], _cells(recon, "spade")[0]
    assert c["tie"] and b["tie"] and not c["best"] and not b["best"]
    assert any(n.startswith("≈ tied") for n in recon.notes)
    md = export_table(store.root, "markdown", "recon-synthetic")
    assert "≈" in md and "**" not in md.split("\n\n")[1]
    table = md.split("\n\n")[1].splitlines()  # a pipe table: header, separator, one line per row
    assert table[0].startswith("|") and set(table[1]) <= set("|:- ") and len(table) == 2 + len(recon.rows)
    assert all(line.startswith("|") and line.endswith("|") for line in table)


def test_unpaired_runs_fall_back_to_interval_overlap(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    noise = np.random.default_rng(1).normal(0.0, 0.1, (2, N))
    _put(store, "a", "sean", BASE + 0.5 + noise[0])
    _put(store, "b", "spade", BASE + noise[1], ids=[f"other_{i}" for i in range(N)])  # other label maps
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    a, b = _cells(recon, "sean")[0], _cells(recon, "spade")[0]
    assert not a["best"] and a["tie"] and b["tie"]  # the intervals overlap: no claim
    assert any("non-overlapping 95% intervals" in n for n in recon.notes)
    # far apart, the overlap rule does call it
    _put(store, "b", "spade", BASE - 5 + noise[1], ids=[f"other_{i}" for i in range(N)])
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    assert _cells(recon, "sean")[0]["best"]


def test_seeds_become_one_row_with_mean_and_sd(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    rng = np.random.default_rng(2)
    means = {}
    for s, shift in enumerate((0.0, 0.3, -0.1)):
        v = BASE + 2.0 + shift + rng.normal(0, 0.1, N)
        means[s] = float(np.mean(v))
        _put(store, f"s{s}", "sean", v, seed=s, created=f"2026-01-0{s + 1}")
    for s, shift in enumerate((0.0, 0.2, 0.1)):
        _put(store, f"p{s}", "spade", BASE + shift + rng.normal(0, 0.1, N), seed=s, created=f"2026-01-0{s + 1}")
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    labels = [r["label"] for r in recon.rows]
    assert labels == ["sean (mean ± sd over seeds 0, 1, 2; n=3)", "spade (mean ± sd over seeds 0, 1, 2; n=3)"]
    cell = recon.rows[0]["cells"][0]
    vals = list(means.values())
    assert cell["text"] == f"{np.mean(vals):.2f} ± {np.std(vals, ddof=1):.2f}" and cell["n"] == 3
    assert cell["best"]  # 2 dB over seeds with ~0.2 dB spread: Welch's interval excludes 0
    assert any("Welch" in n for n in recon.notes)
    assert recon.rows[0]["run_ids"] == ["s0", "s1", "s2"]
    # a single-seed row against the seed rows: the seed mean's t interval vs the run's own interval
    _put(store, "o", "oasis", BASE - 6.0)
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    assert [r["label"] for r in recon.rows][0] == "oasis" and recon.rows[1]["cells"][0]["best"]
    assert any("single-seed row" in n for n in recon.notes)


def test_ablation_manifests_of_two_seeds_merge(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    cells = {}
    for s in (0, 1):
        for noise_on, shift in (("on", 0.0), ("off", -3.0)):
            rid = f"{noise_on}{s}"
            _put(store, rid, "sean", BASE + shift + 0.1 * s, seed=s, config={"noise": noise_on == "on"})
            cells.setdefault(s, []).append({"label": f"noise={noise_on}", "set": {"noise": noise_on}, "run_id": rid})
    mans = [{"method": "sean", "dataset": "synthetic", "grid": {"noise": ["on", "off"]}, "base": {}, "seed": s,
             "cells": cells[s]} for s in (0, 1)]
    merged = merge_ablations(mans)
    assert len(merged) == 1 and [c["run_ids"] for c in merged[0]["cells"]] == [["on0", "on1"], ["off0", "off1"]]
    table = build(store.all(), mans, per_image=per_image_loader(store.root))["ablation"][0]
    assert "seeds 0, 1" in table.title
    assert [r["label"] for r in table.rows] == ["noise=on (mean ± sd over seeds 0, 1; n=2)",
                                                "noise=off (mean ± sd over seeds 0, 1; n=2)"]
    psnr = [c["name"] for c in table.columns].index("psnr")
    on = [store.get(f"on{s}").metrics["psnr"] for s in (0, 1)]
    assert table.rows[0]["cells"][psnr]["text"] == f"{np.mean(on):.2f} ± {np.std(on, ddof=1):.2f}"


def test_per_class_table_ceiling_absent_classes_and_worst(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    iou = [0.9, 0.1, None, 0.5, 0.6, 0.2, 0.8, 0.3]
    ceil = [0.92, 0.9, None, 0.6, 0.9, 0.8, 0.83, 0.7]
    conf = np.eye(8, dtype=int).tolist()
    _put(store, "a", "spade", BASE, extra={"per_class_iou": iou, "ceiling_per_class_iou": ceil, "confusion": conf})
    t = build(store.all())["perclass"][0]
    assert [c["label"] for c in t.columns] == ["spade", "real images (ceiling)"]
    assert [r["label"] for r in t.rows][:3] == ["sky", "mountain", "water"]  # the synthetic classes
    assert t.rows[2]["cells"][0]["text"] == "–" and t.rows[2]["cells"][1]["text"] == "–"  # absent, never 0
    worst = [i for i, r in enumerate(t.rows) if r["cells"][0]["worst"]]
    assert worst_classes(iou, ceil) == [1, 5, 7, 4, 3]  # gaps .8, .6, .4, .3, .1 (then .03, .02)
    assert worst == [1, 3, 4, 5, 7]
    assert t.rows[1]["cells"][0]["title"] == "80.0 pp below the ceiling"


def test_latex_escaping() -> None:
    assert latex_escape("a_b & c% $d# {e} ~f ^g \\h") == \
        r"a\_b \& c\% \$d\# \{e\} \textasciitilde{}f \textasciicircum{}g \textbackslash{}h"
    assert latex_escape("mIoU ↑ 50.1 ± 1.2 Δ") == r"mIoU $\uparrow$ 50.1 $\pm$ 1.2 $\Delta$"
    assert latex_escape("x<y>z|w") == r"x\textless{}y\textgreater{}z\textbar{}w"


def _tex_table(tmp_path: Path) -> str:
    store = RunStore(tmp_path / "r")
    _put(store, "a", "sean", BASE + 1.0, config={"style_encoder": "res_blk"}, metrics={"fid": 10.0},
         extra={"label": "my_run & 100% {new}"})
    _put(store, "b", "spade", BASE)
    result = CliRunner().invoke(cli, ["report", "--results", str(store.root), "--format", "latex", "--table",
                                      "recon-synthetic"])
    assert result.exit_code == 0, result.output
    return result.output


def test_latex_table_structure(tmp_path: Path) -> None:
    tex = _tex_table(tmp_path)
    lines = tex.splitlines()
    assert lines[:4] == [r"\begin{table}[t]", r"\centering", r"\small", r"\begin{tabular}{lr}"]
    assert lines.index(r"\toprule") < lines.index(r"\midrule") < lines.index(r"\bottomrule")
    assert r" & PSNR $\uparrow$ \\" in lines
    row = next(x for x in lines if x.startswith("my"))
    assert row.startswith(r"my\_run \& 100\% \{new\} & \textbf{") and r" $\pm$ " in row and row.endswith(r"\\")
    assert all(len(re.findall(r"(?<!\\)&", x)) == 1 for x in lines if x.endswith(r"\\"))  # 2 columns per row
    caption = next(x for x in lines if x.startswith(r"\caption{"))
    assert "Protocol:" in caption and "percentile bootstrap, B=400" in caption and r"95\%" in caption
    assert tex.count("{") == tex.count("}") + tex.count(r"\{") - tex.count(r"\}")
    assert lines[-2:] == [r"\label{tab:recon-synthetic}", r"\end{table}"]


def test_latex_compiles_when_a_tex_engine_is_installed(tmp_path: Path) -> None:
    engine = shutil.which("pdflatex") or shutil.which("lualatex")
    if engine is None:
        pytest.skip("no TeX engine installed (test_latex_table_structure checks the source instead)")
    (tmp_path / "t.tex").write_text(document([_tex_table(tmp_path)]))
    run = subprocess.run([engine, "-interaction=nonstopmode", "-halt-on-error", "t.tex"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout[-2000:]
    assert (tmp_path / "t.pdf").stat().st_size > 1000


def test_format_csv_and_unknown_table(tmp_path: Path) -> None:
    store = RunStore(tmp_path / "r")
    _put(store, "a", "sean", BASE + 1.0)
    out = CliRunner().invoke(cli, ["report", "--results", str(store.root), "--format", "csv"])
    assert out.exit_code == 0, out.output
    frame = pd.read_csv(io.StringIO(out.output), index_col=0)
    assert frame.loc["sean", "PSNR↑"].startswith(f"{np.mean(BASE + 1.0):.2f} ± ")
    bad = CliRunner().invoke(cli, ["report", "--results", str(store.root), "--format", "csv", "--table", "nope"])
    assert bad.exit_code == 1 and "--table 'nope': no such table; the tables are recon-synthetic" in bad.output
    assert len(bad.output.strip().splitlines()) == 1
    table = build(store.all())["recon"][0]
    assert table_latex(table).count(r"\begin{tabular}") == 1


def test_one_ceiling_per_evaluated_size(tmp_path: Path) -> None:
    """Runs scored at different sizes each get the ceiling of their size, never another size's."""
    from reports.render import build

    def rec(rid: str, size: list[int], ceil: float, created: str) -> RunRecord:
        return RunRecord(run_id=rid, method="spade", dataset="synthetic", seed=0, inputs={}, config={}, weights={},
                         protocol={"segmentation_size": size}, metrics={"miou": 0.5, "fid": 10.0},
                         ceiling={"miou": ceil}, created=created, kind="external", label=rid)

    data = build([rec("big", [64, 64], 0.99, "2026-01-01"), rec("tiny", [1, 1], 0.036, "2026-01-02")], reported=[])
    rows = data["main"][0].rows
    ceilings = {r["label"]: r["cells"][0]["text"] for r in rows if r["kind"] == "ceiling"}
    assert ceilings == {"real images (ceiling at 64x64, WxH)": "99.0", "real images (ceiling at 1x1, WxH)": "3.6"}
    assert any("different sizes" in n for n in data["main"][0].notes)


def test_infinite_psnr_is_shown_and_ranked_and_a_missing_seed_gives_no_partial_mean(tmp_path: Path) -> None:
    """An exact copy has PSNR +inf (strict JSON "Infinity" in the record): the table shows ∞ and ranks it
    best without a test (a note says why); a seed row where one seed lacks the value shows "–", never the
    mean of the other seeds under the label n=2."""
    from dataclasses import replace

    store = RunStore(tmp_path / "r")
    _put(store, "fin", "spade", BASE)
    copy = _put(store, "cp", "sean", BASE + 1.0)
    store.put(replace(copy, metrics={"psnr": float("inf")}, intervals={}))
    recon = build(store.all(), per_image=per_image_loader(store.root))["recon"][0]
    cells = {r["label"]: r["cells"][0] for r in recon.rows}
    assert cells["sean"]["text"] == "∞" and cells["sean"]["best"] and not cells["spade"]["best"]
    assert cells["spade"]["text"].startswith(f"{np.mean(BASE):.2f} ± ")
    assert any(n.startswith("∞:") for n in recon.notes)
    tex = CliRunner().invoke(cli, ["report", "--results", str(store.root), "--format", "latex", "--table",
                                   "recon-synthetic"])
    assert tex.exit_code == 0 and r"\textbf{$\infty$}" in tex.output, tex.output

    seeds = RunStore(tmp_path / "s")
    for s in (0, 1):
        rec = _put(seeds, f"o{s}", "oasis", BASE + s, seed=s)
    seeds.put(replace(rec, metrics={"psnr": float("nan")}, intervals={}))
    row = build(seeds.all(), per_image=per_image_loader(seeds.root))["recon"][0].rows[0]
    assert row["label"].endswith("n=2)") and row["cells"][0]["text"] == "–"
