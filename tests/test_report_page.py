"""The report page: table of contents, per-class IoU, confusion-matrix and training-curve SVGs (and a run
without a log), sample grids in the dataset's palette, --grid-ids, SEAN's style-control grid, LaTeX files,
provenance blocks. ``make_results`` builds a small results folder (records, per-image data, images, logs)
without training, and is shared with the browser test."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import cli
from bench.datasets import write_synthetic
from bench.datasets.palettes import colorize as palette_colorize
from bench.intervals import PerImage, compact, evaluation_intervals
from bench.store import RunRecord, RunStore
from bench.training.log import LOG_NAME, append_entry
from reports.render import render

K = 8  # the synthetic dataset's classes


def _confusions(labels: list[np.ndarray], acc: float, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for lab in labels:
        gt = lab.ravel().astype(np.int64)
        keep = gt < K
        pred = np.where(rng.random(gt.size) < acc, gt, rng.integers(0, K, gt.size))
        flat = gt[keep] * K + pred[keep]
        cells, counts = np.unique(flat, return_counts=True)
        out.append((cells, counts))
    return out


def make_results(root: Path) -> dict[str, RunRecord]:
    """``root/data`` (a 32 px synthetic tree), ``root/results`` with a spade and a sean record (images, reals,
    per-image data, intervals, per-class IoU, confusions) and a training log for spade only."""
    data = write_synthetic(root / "data", size=32, n_train=2, n_val=6, seed=2, workers=1)
    ids = sorted(p.stem for p in (data / "val_label").glob("*.png"))
    labels = [np.asarray(Image.open(data / "val_label" / f"{i}.png")) for i in ids]
    reals = root / "reals"
    reals.mkdir()
    for i in ids:
        Image.open(data / "val_img" / f"{i}.png").convert("RGB").save(reals / f"{i}.png")
    store = RunStore(root / "results")
    rng = np.random.default_rng(0)
    out = {}
    for n, (method, acc, shade, created) in enumerate((("spade", 0.6, 90, "2026-01-01T00:00:00"),
                                                         ("sean", 0.9, 160, "2026-01-02T00:00:00"))):
        images = root / f"images-{method}"
        images.mkdir()
        for i in ids:
            Image.fromarray(np.full((32, 32, 3), shade, np.uint8)).save(images / f"{i}.png")
        cells, counts = compact(_confusions(labels, acc, rng))
        psnr = rng.normal(15 + 3 * n, 0.5, len(ids))
        per = PerImage(seg_ids=ids, num_classes=K, cm_cells=cells, cm_counts=counts, rec_ids=ids, rec={"psnr": psnr})
        conf = np.zeros(K * K, np.int64)
        conf[cells] = counts.sum(0)
        conf = conf.reshape(K, K)
        inter, union = np.diag(conf), conf.sum(0) + conf.sum(1) - np.diag(conf)
        iou = [None if u == 0 else float(a / u) for a, u in zip(inter, union)]
        valid = [x for x in iou if x is not None]
        metrics = {"miou": float(np.mean(valid)), "accu": float(inter.sum() / conf.sum()), "fid": 50.0 - 10 * n,
                   "psnr": float(psnr.mean())}
        intervals, _ = evaluation_intervals(per, metrics, n_resamples=200)
        cfg = {"ngf": 4} if method == "spade" else {}
        rid = f"{method}-run"
        rec = RunRecord(
            run_id=rid, method=method, dataset="synthetic", seed=0,
            inputs={"method": method, "config": cfg, "seed": 0, "checkpoint": "trained"}, config=cfg,
            weights={"generator": {"format": "sisbench", "sha256": f"{n}" * 64, "iterations": 5},
                     "segmenter": {"name": "synthetic", "sha256": "ab" * 32}},
            protocol={"segmentation": "native", "segmentation_size": [32, 32], "miou_convention": "all",
                      "fid": {"feature_layer": "2048", "torch_fidelity": "0.3.0"}},
            metrics=metrics, ceiling={"miou": 0.95, "accu": 0.97}, intervals=intervals,
            env={"git_commit": "0123456789abcdef", "sisbench": "0.1.0", "torch": "2.5"}, created=created,
            extra={"images": str(images), "reals": str(reals), "labels": str(data / "val_label"), "n_images": len(ids),
                   "per_class_iou": iou, "ceiling_per_class_iou": [min(1.0, (x or 0) + 0.05) if x is not None
                                                                  else None for x in iou],
                   "confusion": conf.tolist(), "data_root": str(data)})
        store.put(rec, per.to_bytes())
        out[method] = rec
    log = root / "results" / "work" / out["spade"].run_id / "train" / LOG_NAME
    for it in range(0, 50, 10):
        append_entry(log, it, {"GAN": 2.0 - it / 50, "D_real": 0.5 + it / 100}, {"G": 1e-4, "D": 4e-4})
    return out


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, RunRecord]]:
    root = tmp_path_factory.mktemp("rep")
    recs = make_results(root)
    render(root / "results", root / "report", style_grid=False)
    return root, recs


def test_page_sections_tables_and_provenance(report: tuple[Path, dict[str, RunRecord]]) -> None:
    root, recs = report
    html = (root / "report" / "index.html").read_text()
    for anchor in ("results", "per-class", "confusion", "curves", "samples", "runs"):
        assert f'href="#{anchor}"' in html and f'id="{anchor}"' in html
    assert 'href="#style"' not in html  # no SEAN checkpoint on disk: no style grid
    assert "http" not in html.split("<body>")[1]
    # the main table: ± of each record's interval, sean significantly best in mIoU (paired over the same images)
    row = re.search(r'<tr data-run-ids="sean-run"><td>sean</td>(.*?)</tr>', html).group(1)
    iv = recs["sean"].intervals["miou"]
    assert f'<td class="best">{100 * recs["sean"].metrics["miou"]:.1f} ± {50 * (iv["high"] - iv["low"]):.1f}</td>' in row
    # provenance: commit, config diff from the preset, weights sha256, protocol
    block = html[html.index('id="run-spade-run"'):]
    from bench.config import resolve

    preset = resolve("spade", "synthetic").ngf
    assert "0123456789abcdef" in block and f"ngf=4 (preset {preset})" in block and "0" * 64 in block
    assert "protocol: segmentation_size" in block and "32, 32" in block
    # per-class IoU: classes by runs with the ceiling; absent classes "–"; five worst shaded
    per = html[html.index('id="perclass-synthetic"'):]
    per = per[:per.index("</table>")]
    assert "<th>Class</th>" in per and "real images (ceiling)" in per and per.count('class="worst"') == 10
    assert "<td>sky</td>" in per


def test_figures_are_svg_with_class_names_and_curves(report: tuple[Path, dict[str, RunRecord]]) -> None:
    root, _ = report
    plots = sorted((root / "report" / "plots").glob("*.svg"))
    assert [p.name.split("-")[1] for p in plots].count("confusion") == 2
    assert [p.name.split("-")[1] for p in plots].count("curves") == 1  # spade has a log, sean none
    conf = next(p for p in plots if "confusion" in p.name).read_text()
    ET.fromstring(conf)  # well-formed
    assert ">sky<" in conf and ">predicted class<" in conf and "ground-truth class" in conf
    curves = next(p for p in plots if "curves" in p.name).read_text()
    assert ">GAN<" in curves and ">D_real<" in curves and ">learning rate<" in curves and ">iteration<" in curves
    html = (root / "report" / "index.html").read_text()
    assert "sean: no training log" in html


def test_sample_grid_uses_the_dataset_palette(report: tuple[Path, dict[str, RunRecord]]) -> None:
    root, recs = report
    first = sorted(p.stem for p in Path(recs["spade"].extra["images"]).glob("*.png"))[0]
    label = np.asarray(Image.open(Path(recs["spade"].extra["labels"]) / f"{first}.png"))
    shown = np.asarray(Image.open(root / "report" / "images" / f"synthetic-{first}-label.png"))
    assert (shown == palette_colorize(label, "synthetic")).all()
    html = (root / "report" / "index.html").read_text()
    assert html.count('<table class="grid">') == 1 and html[html.index('id="samples"'):].count("<tr><td>val_") == 4
    tex = sorted(p.name for p in (root / "report" / "tables").glob("*.tex"))
    assert tex == ["main-synthetic.tex", "perclass-synthetic.tex", "recon-synthetic.tex"]


def test_grid_ids_choose_the_samples(tmp_path: Path) -> None:
    make_results(tmp_path)
    out = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "o"),
                                   "--grid-ids", "val_00005,val_00001"])
    assert out.exit_code == 0, out.output
    html = (tmp_path / "o" / "index.html").read_text()
    grid = html[html.index('id="samples"'):]
    assert re.findall(r"<tr><td>(val_\d+)</td>", grid) == ["val_00005", "val_00001"]
    bad = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "results"), "--out", str(tmp_path / "p"),
                                   "--grid-ids", "val_00001,nope"])
    assert bad.exit_code == 1 and "--grid-ids nope: no run of the report has generated images" in bad.output
    assert not (tmp_path / "p").exists()  # refused before anything is written


def test_sean_style_grid(tmp_path: Path) -> None:
    recs = make_results(tmp_path)
    tiny = ["ngf=2", "spade_hidden=4", "ndf=2", "style_length=4", "style_ngf=2", "batch_size=2", "crop_size=32",
            "load_size=32", "init_variance=0.5", "max_iters=2"]
    ckpt = tmp_path / "sean-train"
    res = CliRunner().invoke(cli, ["train", "--method", "sean", "--dataset", "synthetic", "--data-root",
                                   str(tmp_path / "data"), "--out", str(ckpt), *[a for kv in tiny for a in ("--set", kv)],
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    store = RunStore(tmp_path / "results")
    sean = recs["sean"]
    weights = dict(sean.weights, generator={**sean.weights["generator"], "path": str(ckpt / "latest.pth")})
    store.put(RunRecord(**{**sean.__dict__, "weights": weights}))
    render(store.root, tmp_path / "o", grid_ids=["val_00000", "val_00002", "val_00003"], device="cpu")
    html = (tmp_path / "o" / "index.html").read_text()
    assert 'href="#style"' in html and "sean: style control (seed 0)" in html
    style = sorted((tmp_path / "o" / "images").glob("synthetic-style-*.png"))
    assert len(style) == 9
    img = {p.stem.split("-", 3)[3]: np.asarray(Image.open(p), np.int16) for p in style}  # "<target>-<style>"
    # the same label map with another photo's styles is another image; the curves section shows the sean log
    assert np.abs(img["val_00000-val_00000"] - img["val_00000-val_00002"]).max() > 0
    assert json.loads((tmp_path / "o" / ".sisbench-manifest.json").read_text())["complete"] is True
    cached = list((tmp_path / "results" / "work" / sean.run_id).glob("style_grid-*/*.png"))
    assert len(cached) == 9  # generated once, reused by the next report
    assert "sean: no training log" not in html
