"""The papers' reported numbers: the data files load and hold the published values; bench report sets them
beside reproduced runs with the differences, the unverified marks and the protocol differences."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import bench.reported as reported
from bench.cli import cli
from bench.reported import ReportedDataError, ReportedRow, load_file, load_reported
from bench.reported.compare import difference, format_difference, protocol_differences, run_resolution
from bench.store import RunRecord, RunStore
from reports.render import build, render

DATA = Path(reported.__file__).parent


def _row(paper: str, table: str, method: str, dataset: str) -> ReportedRow:
    rows = [r for r in load_reported()
            if (r.paper.key, r.table, r.method, r.dataset) == (paper, table, method, dataset)]
    assert len(rows) == 1, (paper, table, method, dataset)
    return rows[0]


# --- the data files -----------------------------------------------------------------------------------


def test_every_file_loads_with_a_verified_flag_per_figure() -> None:
    files = sorted(p.stem for p in DATA.glob("*.json"))
    assert files == ["oasis", "resail", "sean", "spade"]
    rows = load_reported()
    assert {r.paper.key for r in rows} == set(files)
    for r in rows:
        assert set(r.verified) == set(r.metrics) == set(r.decimals)
        assert r.dataset != "synthetic"
        assert all(0.0 <= r.metrics[m] <= 1.0 for m in ("miou", "accu") if m in r.metrics)  # fractions, as records
        assert r.verified_by or not any(r.verified.values())
    flags = [v for r in rows for v in r.verified.values()]
    assert any(flags) and not all(flags)


# Expected values copied from the reference notes (methods.md §8), mIoU/accu in percent as printed there.
@pytest.mark.parametrize(("key", "metric", "percent_or_raw", "verified"), [
    (("spade", "Table 1", "spade", "ade20k"), "miou", 38.5, True),
    (("spade", "Table 1", "spade", "ade20k"), "accu", 79.9, True),
    (("spade", "Table 1", "spade", "ade20k"), "fid", 33.9, True),
    (("spade", "Table 1", "spade", "cityscapes"), "fid", 71.8, True),
    (("spade", "Table 1", "pix2pixhd", "coco"), "accu", 45.8, False),
    (("spade", "Table 1", "pix2pixhd", "coco"), "fid", 111.5, True),
    (("oasis", "Table 1", "oasis", "cityscapes"), "miou", 69.3, True),
    (("oasis", "Table 1", "oasis", "cityscapes"), "fid", 47.7, True),
    (("oasis", "Table 1", "spade", "coco"), "fid", 22.6, False),
    (("resail", "Table 1", "resail", "coco"), "fid", 18.3, True),
    (("resail", "Table 1", "resail", "cityscapes"), "miou", 69.7, False),
    (("sean", "Table 1", "sean", "celebamask"), "psnr", 18.74, False),
    (("sean", "Table 1", "spade", "ade20k"), "ssim", 0.45, False),
    (("sean", "Table 2", "spade", "cityscapes"), "accu", 93.59, True),
    (("sean", "Table 2", "sean", "celebamask"), "fid", 17.66, False),
])
def test_values_match_the_reference_notes(key: tuple[str, str, str, str], metric: str, percent_or_raw: float,
                                          verified: bool) -> None:
    row = _row(*key)
    expected = percent_or_raw / 100 if metric in ("miou", "accu") else percent_or_raw
    assert row.metrics[metric] == pytest.approx(expected, abs=1e-12)
    assert row.verified[metric] is verified


def test_oasis_diversity_and_protocols() -> None:
    lpips = [r for r in load_reported() if r.paper.key == "oasis" and "lpips" in r.metrics and r.dataset == "ade20k"]
    assert sorted(r.metrics["lpips"] for r in lpips) == [0.265, 0.35]  # the two sources disagree; both kept, unverified
    assert not any(r.verified["lpips"] for r in lpips)
    spade = _row("spade", "Table 1", "spade", "cityscapes").protocol
    assert (spade.resolution, spade.segmenter, spade.n_images, spade.reconstruction) == \
        ((256, 512), "drn105_cityscapes", 500, False)
    sean = _row("sean", "Table 1", "sean", "celebamask").protocol
    assert sean.reconstruction and sean.segmenter is None and sean.resolution == (256, 256)
    assert _row("sean", "Table 2", "spade", "cityscapes").decimals["miou"] == 2  # 57.88 is printed as such


def _spade_file(tmp_path: Path, change) -> Path:
    data = json.loads((DATA / "spade.json").read_text())
    change(data)
    p = tmp_path / "spade.json"
    p.write_text(json.dumps(data))
    return p


def _first_row(d: dict) -> dict:
    return d["tables"][0]["rows"][0]


@pytest.mark.parametrize(("change", "message"), [
    (lambda d: _first_row(d).update(method="spade_plus"), "unknown method 'spade_plus'"),
    (lambda d: _first_row(d).update(dataset="ade20k_outdoor"), "unknown dataset 'ade20k_outdoor'"),
    (lambda d: _first_row(d).update(dataset="synthetic"), "unknown dataset 'synthetic'"),
    (lambda d: _first_row(d)["metrics"].update(is_score=1.0), "unknown metric 'is_score'"),
    (lambda d: _first_row(d)["verified"].pop("fid"), "'verified' must give true/false"),
    (lambda d: _first_row(d)["metrics"].update(miou=0.374), "looks like a fraction"),
    (lambda d: _first_row(d)["metrics"].update(miou=374), "in percent (0..100)"),
    (lambda d: _first_row(d).update(verifed={}), "unknown field(s) 'verifed'"),
    (lambda d: d["tables"][0]["protocol"]["datasets"]["ade20k"].update(segmenter="upernet"), "unknown segmenter"),
    (lambda d: d["tables"][0]["rows"].append(dict(_first_row(d))), "duplicate row"),
    (lambda d: d.update(units={"miou": "fraction", "accu": "fraction"}), "'units' must be"),
])
def test_malformed_file_names_the_file(tmp_path: Path, change, message: str) -> None:
    assert load_file(_spade_file(tmp_path, lambda d: None))  # the unchanged copy loads
    path = _spade_file(tmp_path, change)
    with pytest.raises(ReportedDataError) as err:
        load_file(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_bad_json_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "spade.json"
    p.write_text("{not json")
    with pytest.raises(ReportedDataError, match="spade.json: not readable JSON"):
        load_file(p)


def test_bench_ls_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = CliRunner().invoke(cli, ["ls", "reported"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "SPADE paper (CVPR 2019), Table 1\tspade\tade20k\tmIoU 38.5  Acc 79.9  FID 33.9" in lines
    assert "SPADE paper (CVPR 2019), Table 1\tpix2pixhd\tcoco\tmIoU 14.6  Acc 45.8†  FID 111.5" in lines
    assert any("\toasis\tade20k\tLPIPS 0.265†" in line for line in lines)
    assert len(lines) == len(load_reported()) + 1  # one line per paper/table/method/dataset, plus the † legend
    # a malformed file: one line naming it, exit 1, no traceback
    folder = tmp_path / "data"
    folder.mkdir()
    shutil.copy(_spade_file(tmp_path, lambda d: _first_row(d).update(method="crn")), folder / "spade.json")
    monkeypatch.setattr(reported, "DATA_DIR", folder)
    reported._shipped.cache_clear()
    try:
        bad = CliRunner().invoke(cli, ["ls", "reported"])
    finally:
        reported._shipped.cache_clear()
    assert bad.exit_code == 1 and "Traceback" not in bad.output
    assert "spade.json" in bad.output and "unknown method 'crn'" in bad.output


# --- differences and protocol -------------------------------------------------------------------------


def _record(rid: str, method: str, dataset: str, metrics: dict[str, float], *, created: str = "2026-01-01T00:00:00",
            size: list[int] | None = None, segmenter: str = "upernet101_ade20k", n_images: int = 2000,
            protocol: str = "native", config: dict | None = None) -> RunRecord:
    return RunRecord(run_id=rid, method=method, dataset=dataset, seed=0, inputs={}, config=config or {},
                     weights={"segmenter": {"name": segmenter, "sha256": "0" * 64}},
                     protocol={"segmentation": protocol, "segmentation_size": size or [256, 256]}, metrics=metrics,
                     ceiling={"miou": 0.42, "accu": 0.81}, created=created, extra={"n_images": n_images})


def test_difference_units() -> None:
    row = _row("spade", "Table 1", "spade", "ade20k")
    assert difference("miou", 0.301, row.metrics["miou"]) == pytest.approx(-8.4)  # percentage points
    assert difference("fid", 52.1, row.metrics["fid"]) == pytest.approx(18.2)
    assert format_difference("miou", 0.301, row) == "-8.4 pp"
    assert format_difference("fid", 52.1, row) == "+18.2"
    assert format_difference("psnr", 20.0, row) == "–"  # not reported by this table
    assert format_difference("fid", None, row) == "–"


def test_protocol_differences() -> None:
    row = _row("spade", "Table 1", "spade", "ade20k")
    same = _record("s", "spade", "ade20k", {"fid": 30.0})
    assert protocol_differences(row, same) == []
    small = _record("t", "spade", "ade20k", {"fid": 30.0}, size=[64, 64], segmenter="synthetic", n_images=200)
    assert protocol_differences(row, small) == [
        "generated at 64×64, paper 256×256", "segmenter synthetic, paper upernet101_ade20k", "200 images, paper 2000"]
    assert "segmenter" not in " ".join(protocol_differences(row, small, ["fid"]))  # FID does not depend on it
    # upsampled: the size comes from the config (SPADE convention), the scoring size is the segmenter's
    city = _row("oasis", "Table 1", "oasis", "cityscapes")
    up = _record("u", "oasis", "cityscapes", {"miou": 0.6}, size=[1024, 2048], segmenter="drn105_cityscapes",
                 n_images=500, protocol="upsampled", config={"crop_size": 512, "aspect_ratio": 2.0})
    assert run_resolution(up) == (256, 512)
    assert protocol_differences(city, up) == ["segmented upsampled to 1024×2048, paper at the generated size"]
    # reconstruction: SEAN's runs take the style from the real image, as every SEAN-paper number does
    sean_row = _row("sean", "Table 1", "sean", "celebamask")
    sean_run = _record("v", "sean", "celebamask", {"psnr": 17.0}, n_images=2000)
    assert protocol_differences(sean_row, sean_run) == []
    spade_vs_sean = protocol_differences(_row("sean", "Table 1", "spade", "celebamask"),
                                         _record("w", "spade", "celebamask", {"psnr": 13.0}, n_images=2000))
    assert spade_vs_sean == ["paper reconstructs (style from the real image), run generates from labels only"]
    assert "paper does not state its segmenter (run unet_celebamask)" in protocol_differences(
        _row("sean", "Table 2", "sean", "celebamask"),
        _record("x", "sean", "celebamask", {"fid": 20.0}, segmenter="unet_celebamask"), ["miou"])


# --- bench report ---------------------------------------------------------------------------------------


@pytest.fixture
def ade_store(tmp_path: Path) -> RunStore:
    s = RunStore(tmp_path / "results")
    s.put(_record("a1", "spade", "ade20k", {"miou": 0.301, "accu": 0.75, "fid": 52.1, "psnr": 12.5, "ssim": 0.3,
                                           "rmse": 0.25}, size=[64, 64], segmenter="synthetic", n_images=200))
    s.put(_record("b2", "oasis", "ade20k", {"miou": 0.5, "accu": 0.8, "fid": 30.0}))
    return s


def test_report_carries_reported_rows_and_differences(ade_store: RunStore, tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = CliRunner().invoke(cli, ["report", "--results", str(ade_store.root), "--out", str(out)])
    assert result.exit_code == 0, result.output
    html = (out / "index.html").read_text()
    assert '<tr class="separator">' in html and "reported in the papers" in html
    assert '<tr class="reported"><td>spade · SPADE paper, Table 1' in html
    assert '<tr class="delta"><td>Δ spade vs SPADE paper, Table 1' in html
    assert "<td>-8.4 pp</td><td>-4.9 pp</td><td>+18.2</td>" in html  # 30.1-38.5, 75.0-79.9, 52.1-33.9
    assert "<td>+1.2 pp</td><td>–</td><td>+1.7</td>" in html  # oasis run vs OASIS Table 1: 50.0-48.8, 30.0-28.3
    assert 'class="unverified" title="not checked against the paper">38.5†' in html  # SPADE as quoted by OASIS
    assert "† not checked against the paper" in html
    assert "protocol differs: generated at 64×64, paper 256×256; segmenter synthetic, paper upernet101_ade20k; " \
           "200 images, paper 2000" in html
    assert "same resolution, segmenter, image count and reconstruction setting as the paper" in html  # the oasis run
    assert "cityscapes" not in html.split("<h2>Runs</h2>")[0]  # no runs there, no reported rows

    csv = pd.read_csv(io.StringIO((out / "table1-ade20k.csv").read_text()), index_col=0, keep_default_na=False)
    assert list(csv.columns) == ["source", "mIoU↑", "Acc↑", "FID↓", "note"]
    assert csv.loc["spade · SPADE paper, Table 1", "source"] == "SPADE paper (CVPR 2019), Table 1"
    assert csv.loc["spade · SPADE paper, Table 1", "mIoU↑"] == "38.5"
    delta = csv.loc["Δ spade vs SPADE paper, Table 1"]
    assert (delta["mIoU↑"], delta["Acc↑"], delta["FID↓"]) == ("-8.4 pp", "-4.9 pp", "+18.2")
    assert "200 images, paper 2000" in delta["note"]
    assert csv.loc["pix2pixhd · SPADE paper, Table 1", "Acc↑"] == "69.2†"
    assert csv.loc["spade", "source"] == "run a1" and csv.loc["spade", "FID↓"] == "52.10"

    md = (out / "tables.md").read_text()
    assert "spade · SPADE paper, Table 1" in md and "-8.4 pp" in md and "+18.2" in md and "69.2†" in md
    assert "protocol differs: generated at 64×64, paper 256×256" in md
    # the reconstruction table: SEAN Table 1 reports SPADE reconstructions; the run is not one
    recon = pd.read_csv(io.StringIO((out / "table2-ade20k.csv").read_text()), index_col=0, keep_default_na=False)
    row = recon.loc["Δ spade vs SEAN paper, Table 1"]
    assert (row["PSNR↑"], row["SSIM↑"], row["RMSE↓"]) == ("-1.37", "-0.15", "+0.04")  # 12.5-13.87, .3-.45, .25-.21
    assert "paper reconstructs (style from the real image), run generates from labels only" in row["note"]


def test_reported_rows_only_where_runs_are_unless_asked(ade_store: RunStore, tmp_path: Path) -> None:
    data = build(ade_store.all())
    assert [t.dataset for t in data["main"]] == ["ade20k"]
    everything = build(ade_store.all(), all_reported=True)
    assert [t.dataset for t in everything["main"]] == ["ade20k", "celebamask", "cityscapes", "coco"]
    city = everything["main"][2]
    assert not [r for r in city.rows if r.get("kind") in ("run", "delta")]
    assert "resail · RESAIL paper, Table 1" in [r["label"] for r in city.rows]
    # the fixture's two runs were segmented at 64x64 and 256x256: each size gets its own ceiling row
    last = build(ade_store.all(), reported=[])["main"][0].rows
    assert [r["label"] for r in last if r["kind"] == "ceiling"] == ["real images (ceiling at 256x256, WxH)",
                                                                      "real images (ceiling at 64x64, WxH)"]
    assert last[-1]["kind"] == "ceiling"
    out = tmp_path / "all"
    result = CliRunner().invoke(cli, ["report", "--results", str(ade_store.root), "--out", str(out), "--all-reported"])
    assert result.exit_code == 0, result.output
    assert 'data-dataset="cityscapes"' in (out / "index.html").read_text()


def test_synthetic_has_no_reported_rows(tmp_path: Path) -> None:
    s = RunStore(tmp_path / "r")
    s.put(_record("s1", "spade", "synthetic", {"miou": 0.5, "accu": 0.8, "fid": 40.0}, segmenter="synthetic"))
    data = build(s.all(), all_reported=False)
    assert data["main"][0].dataset == "synthetic"
    assert all(r.get("kind") in ("run", "ceiling") for t in data["main"] for r in t.rows)
    assert "source" not in data["main"][0].frame().columns
    html = render(s.root, tmp_path / "o").read_text()
    assert "reported in the papers" not in html
