"""bench report renders the records' numbers; bench check fails on drift and passes within tolerance."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.checks import Row, check, run_key
from bench.cli import cli
from bench.store import RunRecord, RunStore
from reports.render import build, render


def _record(rid: str, method: str, metrics: dict[str, float], *, created: str, ceiling=None, extra=None) -> RunRecord:
    return RunRecord(run_id=rid, method=method, dataset="synthetic", seed=0, inputs={}, config={}, weights={},
                     protocol={"segmentation": "native"}, metrics=metrics, ceiling=ceiling or {}, created=created,
                     extra=extra or {})


@pytest.fixture
def store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "results")
    s.put(_record("a1", "spade", {"miou": 0.5012, "accu": 0.8, "fid": 40.0, "psnr": 15.0, "ssim": 0.3, "rmse": 0.2},
                  created="2026-01-01T00:00:00", ceiling={"miou": 0.95, "accu": 0.99}))
    s.put(_record("b2", "sean", {"miou": 0.6, "accu": 0.85, "fid": 35.25, "psnr": 20.5, "ssim": 0.6, "rmse": 0.1},
                  created="2026-01-02T00:00:00", ceiling={"miou": 0.95, "accu": 0.99}))
    return s


ABLATION = {"method": "sean", "dataset": "synthetic", "grid": {"noise": ["on", "off"]}, "cells": [
    {"label": "noise=on", "set": {"noise": "on"}, "run_id": "b2"},
    {"label": "noise=off", "set": {"noise": "off"}, "run_id": "c3"}]}


def test_tables_follow_the_records(store: RunStore) -> None:
    data = build(store.all())
    assert not data["ablation"]
    main = data["main"][0]
    assert [c["name"] for c in main.columns] == ["miou", "accu", "fid"]
    rows = {r["label"]: [c["text"] for c in r["cells"]] for r in main.rows}
    assert rows["spade"] == ["50.1", "80.0", "40.00"]  # percent for mIoU/accu, as the papers print them
    assert rows["sean"] == ["60.0", "85.0", "35.25"]
    assert rows["real images (ceiling)"] == ["95.0", "99.0", "–"]
    best = {r["label"]: [c["best"] for c in r["cells"]] for r in main.rows}
    assert best["sean"] == [True, True, True] and best["spade"] == [False, False, False]
    recon = {r["label"]: [c["text"] for c in r["cells"]] for r in data["recon"][0].rows}
    assert recon["sean"][0] == "20.50"


def test_ablation_table_from_manifest(store: RunStore) -> None:
    store.put(_record("c3", "sean", {"miou": 0.55, "accu": 0.8, "fid": 50.0, "psnr": 21.0, "ssim": 0.5, "rmse": 0.12},
                      created="2026-01-03T00:00:00"))
    table = build(store.all(), [ABLATION])["ablation"][0]
    assert [c["name"] for c in table.columns] == ["miou", "accu", "fid", "psnr", "ssim", "rmse"]
    rows = {r["label"]: r["cells"] for r in table.rows}
    assert list(rows) == ["noise=on", "noise=off"]
    assert rows["noise=on"][2]["text"] == "35.25" and rows["noise=on"][2]["best"]  # lower FID is better
    assert rows["noise=off"][3]["best"] and not rows["noise=on"][3]["best"]  # higher PSNR is better


def test_report_html_csv_markdown(store: RunStore, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--results", str(store.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert "35.25" in html and "real images (ceiling)" in html and "FID ↓" in html and "mIoU ↑" in html
    assert "http" not in html.split("<body>")[1]  # works from file:// with no network
    assert list(out.glob("table*-synthetic.csv")) and "35.25" in (out / "tables.md").read_text()


def test_report_escapes_labels(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "r")
    s.put(_record("x", "spade", {"fid": 1.0}, created="2026", extra={"label": "<script>alert(1)</script>"}))
    html = render(s.root, tmp_path / "o").read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html


def test_check_detects_drift(store: RunStore, tmp_path: Path) -> None:
    entry = {"method": "spade", "dataset": "synthetic", "set": {"max_iters": 5}, "seed": 0}
    key = run_key(entry)
    rec = store.get("a1")
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"runs": [entry], "metrics": {key: dict(rec.metrics)}}))
    rows = check(baseline, results=store.root, records={key: rec}).rows
    assert rows and all(r.ok for r in rows)
    pushed = dict(rec.metrics, fid=rec.metrics["fid"] + 2.0)  # beyond 0.5 + 2% of 40
    baseline.write_text(json.dumps({"runs": [entry], "metrics": {key: pushed}}))
    rows = check(baseline, results=store.root, records={key: rec}).rows
    bad = [r for r in rows if not r.ok]
    assert [r.metric for r in bad] == ["fid"]
    assert Row("r", "miou", 0.5, 0.509, 0.01).ok and not Row("r", "miou", 0.5, 0.52, 0.01).ok


def test_check_uses_the_baseline_interval_and_exact(store: RunStore, tmp_path: Path) -> None:
    entry = {"method": "spade", "dataset": "synthetic", "set": {"max_iters": 5}, "seed": 0}
    key = run_key(entry)
    rec = store.get("a1")
    fid = rec.metrics["fid"]
    baseline = tmp_path / "baseline.json"
    # inside the recorded interval: no drift, though 3 FID points is beyond the fixed tolerance (0.5 + 2%)
    baseline.write_text(json.dumps({"runs": [entry], "metrics": {key: dict(rec.metrics, fid=fid + 3.0)},
                                    "intervals": {key: {"fid": [fid - 1.0, fid + 5.0]}},
                                    "env": {"torch": "0.0.1", "numpy": str(rec.env.get("numpy", "x"))}}))
    res = check(baseline, results=store.root, records={key: rec})
    row = next(r for r in res.rows if r.metric == "fid")
    assert row.ok and row.allowed.startswith("[")
    # leaving the interval is drift
    baseline.write_text(json.dumps({"runs": [entry], "metrics": {key: dict(rec.metrics)},
                                    "intervals": {key: {"fid": [fid + 0.1, fid + 5.0]}}}))
    assert not next(r for r in check(baseline, results=store.root, records={key: rec}).rows if r.metric == "fid").ok
    # --exact: any difference is drift, the same value is not
    baseline.write_text(json.dumps({"runs": [entry], "metrics": {key: dict(rec.metrics, fid=fid + 1e-9)}}))
    rows = check(baseline, results=store.root, records={key: rec}, exact=True).rows
    assert [r.metric for r in rows if not r.ok] == ["fid"]
    # --update records the intervals and the versions
    rec2 = replace(rec, intervals={"fid": {"low": fid - 2, "high": fid + 2}}, env={"torch": "9.9", "numpy": "1"})
    res = check(baseline, results=store.root, records={key: rec2}, update=True)
    data = json.loads(baseline.read_text())
    assert data["intervals"][key]["fid"] == [fid - 2, fid + 2] and data["env"]["torch"] == "9.9"
    assert res.written == baseline


def test_check_names_changed_versions(store: RunStore, tmp_path: Path) -> None:
    from bench.checks import env_changes

    assert env_changes({"torch": "2.14.0", "numpy": "2.4.6"}, {"torch": "2.14.1", "numpy": "2.4.6"}) == [
        "torch 2.14.0 -> 2.14.1"]


def test_records_are_strict_json_and_keep_non_finite_values(tmp_path: Path) -> None:
    """PSNR of identical images is +inf: the file must still parse as strict JSON (jq, a browser), and the
    record read back must carry the float, not a string."""
    s = RunStore(tmp_path / "results")
    rec = _record("inf1", "spade", {"psnr": float("inf"), "rmse": 0.0, "fid": float("nan"), "kid": -float("inf")},
                  created="2026-01-01T00:00:00", extra={"nested": [float("inf"), "NaN-like text", 1.5]})
    path = s.put(rec)
    text = path.read_text()
    data = json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c} in the record"))
    assert data["metrics"] == {"psnr": "Infinity", "rmse": 0.0, "fid": "NaN", "kid": "-Infinity"}
    back = s.get("inf1")
    assert back.metrics["psnr"] == float("inf") and back.metrics["kid"] == -float("inf")
    assert back.metrics["fid"] != back.metrics["fid"]  # NaN
    assert back.extra["nested"] == [float("inf"), "NaN-like text", 1.5]


def test_report_refuses_a_results_folder_without_records(tmp_path: Path, store: RunStore) -> None:
    """A mistyped --results must not write an empty page (into ./results/report) and exit 0."""
    (tmp_path / "afile").write_text("x")
    for bad, why in ((tmp_path / "nothere", "no run records"), (tmp_path / "afile", "not a folder"),
                     (store.runs, "that is a runs/ folder")):
        result = CliRunner().invoke(cli, ["report", "--results", str(bad)])
        assert result.exit_code == 1 and why in result.output, result.output
        assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "nothere").exists()
    ok = CliRunner().invoke(cli, ["report", "--results", str(store.root), "--no-style-grid"])
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == str(store.root / "report" / "index.html")  # --out defaults under --results


def test_ablate_prints_each_cell_its_seeds_and_their_mean_sd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench ablate --seeds`: every line says its cell and seed, and each cell ends with mean ± sd (n)."""
    import numpy as np

    import bench.api

    recs = [_record(f"r{c}{s}", "sean", {"psnr": 15.0 + c + 0.1 * s}, created="2026-01-01T00:00:00")
            for c in range(2) for s in range(3)]
    recs = [replace(r, seed=i % 3) for i, r in enumerate(recs)]
    manifest = tmp_path / "m.json"
    manifest.write_text(json.dumps({"cells": [
        {"label": f"noise={v}", "run_id": f"r{c}0", "run_ids": [f"r{c}{s}" for s in range(3)]}
        for c, v in enumerate(("on", "off"))]}))
    monkeypatch.setattr(bench.api, "ablate", lambda *a, **k: (manifest, recs))
    result = CliRunner().invoke(cli, ["ablate", "--method", "sean", "--dataset", "synthetic", "--grid", "noise=on,off",
                                      "--seeds", "0,1,2"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "noise=on:" and lines[1].startswith("  seed 0  r00 ") and lines[3].startswith("  seed 2  r02 ")
    vals = [15.0, 15.1, 15.2]
    assert f"PSNR {np.mean(vals):.2f} ± {np.std(vals, ddof=1):.2f} (n=3)" in " ".join(lines[4:6])
    assert "noise=off:" in lines and lines[-1] == f"ablation manifest: {manifest}"
