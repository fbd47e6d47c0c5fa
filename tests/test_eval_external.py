"""`bench eval`: scoring a folder of images made by any model, under the pinned protocol."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench import api
from bench.cli import cli
from bench.datasets import write_synthetic
from bench.errors import DataError

TINY = {"ngf": "4", "spade_hidden": "8", "ndf": "4", "batch_size": "2", "max_iters": "2", "load_size": "64",
        "crop_size": "64"}


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1, result.output
    assert "Traceback" not in result.output
    return errors[0]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("e") / "synth", size=64, n_train=6, n_val=8, seed=2, workers=1)


def _eval(data: Path, images: Path, results: Path, *extra: str) -> object:
    return CliRunner().invoke(cli, ["eval", "--dataset", "synthetic", "--data-root", str(data), "--images",
                                    str(images), "--name", "mine", "--results", str(results), "--device", "cpu",
                                    *extra])


@pytest.fixture
def fast_fid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Score FID on the 64-d Inception features in `bench eval` (the 2048-d square root alone takes ~25 s)."""
    import functools

    import bench.external

    monkeypatch.setattr(bench.external, "evaluate_images",
                        functools.partial(bench.external.evaluate_images, fid_layer="64"))


def test_real_images_score_fid_zero_and_the_ceiling(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    rec = api.eval_images("synthetic", data / "val_img", "reals", data_root=data, results=tmp_path / "r",
                          device="cpu", progress=False, reconstruction=True)
    assert abs(rec.metrics["fid"]) < 1e-3
    assert rec.metrics["miou"] == rec.ceiling["miou"] and rec.metrics["accu"] == rec.ceiling["accu"]
    assert rec.metrics["psnr"] == float("inf") or rec.metrics["rmse"] == 0.0
    assert rec.metrics["precision"] == 1.0 and rec.metrics["recall"] == 1.0
    assert rec.kind == "external" and rec.label == "reals" and rec.extra["n_images"] == 8
    assert rec.protocol["evaluated_size"] == [64, 64] and "bicubic" in rec.protocol["real_resize"]


def test_generated_folder_scores_exactly_as_its_run(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    run = api.run("spade", "synthetic", data_root=data, overrides=TINY, results=tmp_path / "r", device="cpu",
                  progress=False, fid_layer="64")
    ckpt = tmp_path / "r" / "work" / run.run_id / "train" / "latest.pth"
    out = api.generate("spade", "synthetic", ckpt, tmp_path / "gen", data_root=data, overrides=TINY, device="cpu",
                       progress=False)
    ext = api.eval_images("synthetic", out, "spade via eval", data_root=data, results=tmp_path / "r",
                          device="cpu", progress=False, reconstruction=True, fid_layer="64")
    assert ext.metrics == run.metrics
    assert ext.ceiling == run.ceiling
    # a re-run is a cache hit; a changed image is not
    again = api.eval_images("synthetic", out, "spade via eval", data_root=data, results=tmp_path / "r",
                            device="cpu", progress=False, reconstruction=True, fid_layer="64")
    assert again.run_id == ext.run_id and again.created == ext.created
    first = sorted(out.glob("*.png"))[0]
    arr = np.asarray(Image.open(first)).copy()
    arr[0, 0] = 255 - arr[0, 0]
    Image.fromarray(arr).save(first)
    changed = api.eval_images("synthetic", out, "spade via eval", data_root=data, results=tmp_path / "r",
                              device="cpu", progress=False, reconstruction=True, fid_layer="64")
    assert changed.run_id != ext.run_id
    # the store, `bench ls runs` and the report treat it like any other run
    listed = CliRunner().invoke(cli, ["ls", "runs", "--results", str(tmp_path / "r")])
    assert "spade via eval (external)/synthetic" in listed.output
    report = CliRunner().invoke(cli, ["report", "--results", str(tmp_path / "r"), "--out", str(tmp_path / "rep")])
    assert report.exit_code == 0, report.output
    assert "spade via eval (external)" in (tmp_path / "rep" / "index.html").read_text()


def test_precision_recall_match_torch_fidelity(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    import torch_fidelity

    from bench.metrics.inception import resolve_inception_weights

    fake = tmp_path / "fake"
    fake.mkdir()
    for i, p in enumerate(sorted((data / "val_img").glob("*.png"))):
        arr = np.asarray(Image.open(p).convert("RGB")).astype(np.int16)
        Image.fromarray(np.clip(arr + (i * 13 % 40) - 20, 0, 255).astype(np.uint8)).save(fake / p.name)
    rec = api.eval_images("synthetic", fake, "noisy", data_root=data, results=tmp_path / "r", device="cpu",
                          progress=False, fid_layer="64", metrics="precision,recall")
    direct = torch_fidelity.calculate_metrics(
        input1=str(Path(rec.extra["staged_images"])), input2=rec.extra["reals"], prc=True,
        feature_extractor="inception-v3-compat", feature_layer_prc="64",
        feature_extractor_weights_path=str(resolve_inception_weights().path), save_cpu_ram=True, verbose=False,
        cuda=False)
    assert rec.metrics == {"precision": direct["precision"], "recall": direct["recall"]}


def test_jpeg_upper_case_and_recursive(data: Path, tmp_path: Path, bench_cache: Path, fast_fid: None) -> None:
    imgs = tmp_path / "imgs" / "sub"
    imgs.mkdir(parents=True)
    for p in sorted((data / "val_img").glob("*.png")):
        Image.open(p).convert("RGB").save(imgs / f"{p.stem}.JPG", quality=95)
    line = _one_line_error(_eval(data, tmp_path / "imgs", tmp_path / "r"))
    assert "no png/jpg/jpeg/webp images" in line and "--recursive" in line
    result = _eval(data, tmp_path / "imgs", tmp_path / "r", "--recursive", "--metrics", "fid,kid", "--json")
    assert result.exit_code == 0, result.output
    rec = json.loads(result.output[result.output.index("{"):])
    assert rec["kind"] == "external" and set(rec["metrics"]) == {"fid", "kid"}


def test_missing_images_name_count_and_first_three(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    imgs = Path(shutil.copytree(data / "val_img", tmp_path / "imgs"))
    removed = sorted(imgs.glob("*.png"))[2:7]
    for p in removed:
        p.unlink()
    line = _one_line_error(_eval(data, imgs, tmp_path / "r"))
    assert "no image for 5 of 8 label maps" in line
    assert ", ".join(p.stem for p in removed[:3]) in line
    assert not (tmp_path / "r" / "runs").exists()


def test_truncated_image_is_named(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    imgs = Path(shutil.copytree(data / "val_img", tmp_path / "imgs"))
    bad = sorted(imgs.glob("*.png"))[3]
    bad.write_bytes(bad.read_bytes()[: bad.stat().st_size // 2])
    line = _one_line_error(_eval(data, imgs, tmp_path / "r"))
    assert bad.name in line and ("truncated" in line or "unreadable" in line)
    assert not (tmp_path / "r" / "runs").exists()


def test_empty_folder_and_wrong_split(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    (tmp_path / "empty").mkdir()
    line = _one_line_error(_eval(data, tmp_path / "empty", tmp_path / "r"))
    assert "no png/jpg/jpeg/webp images" in line
    line = _one_line_error(_eval(data, data / "val_img", tmp_path / "r", "--split", "test"))
    assert "--split test" in line
    line = _one_line_error(_eval(data, tmp_path / "nope", tmp_path / "r"))
    assert "no such folder" in line


def test_aspect_ratio_beyond_one_percent_is_refused(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((data / "val_img").glob("*.png")):
        Image.open(p).resize((66, 64)).save(imgs / p.name)  # 3% wider than the 64x64 label maps
    line = _one_line_error(_eval(data, imgs, tmp_path / "r"))
    assert "aspect ratio 66x64" in line and "64x64" in line


def test_any_resolution_is_the_evaluated_size(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((data / "val_img").glob("*.png")):
        Image.open(p).resize((128, 128), Image.BICUBIC).save(imgs / p.name)
    rec = api.eval_images("synthetic", imgs, "big", data_root=data, results=tmp_path / "r", device="cpu",
                          progress=False, fid_layer="64", metrics="miou,accu")
    assert rec.protocol["evaluated_size"] == [128, 128] and rec.protocol["segmentation_size"] == [128, 128]
    assert 0 < rec.metrics["miou"] <= 1


def test_extra_images_are_ignored_with_one_warning(data: Path, tmp_path: Path, bench_cache: Path,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    imgs = Path(shutil.copytree(data / "val_img", tmp_path / "imgs"))
    for k in range(3):
        shutil.copy(sorted(imgs.glob("*.png"))[0], imgs / f"extra_{k}.png")
    with caplog.at_level(logging.WARNING):
        rec = api.eval_images("synthetic", imgs, "x", data_root=data, results=tmp_path / "r", device="cpu",
                              progress=False, fid_layer="64", metrics="fid")
    warnings = [r for r in caplog.records if "ignoring" in r.getMessage()]
    assert len(warnings) == 1 and "ignoring 3 images" in warnings[0].getMessage()
    assert rec.extra["n_extra_images"] == 3


def test_pairing_errors_are_data_errors(tmp_path: Path) -> None:
    from bench.external import pair_images

    (tmp_path / "a.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="a.png: unreadable image"):
        pair_images(["a"], [(4, 4)], tmp_path)
    Image.new("RGB", (4, 4)).save(tmp_path / "b.jpg")
    Image.new("RGB", (4, 4)).save(tmp_path / "b.png")
    with pytest.raises(DataError, match="two images share the stem 'b'"):
        pair_images(["b"], [(4, 4)], tmp_path)


# --- the real-dataset layouts ------------------------------------------------------------------------
def _layouts() -> list:
    from tests import fixtures_real as fx

    return [
        ("ade20k", lambda r: fx.write_ade20k(r, n_train=1, n_val=4), "ADEChallengeData2016/images/validation"),
        ("coco", lambda r: fx.write_coco_official(r, n_train=1, n_val=4), "images/val2017"),
        ("coco", lambda r: fx.write_coco_spade(r, n_train=1, n_val=4), "val_img"),
        ("cityscapes", lambda r: fx.write_cityscapes(r, n_train=1, n_val=4), "leftImg8bit/val"),
        ("celebamask", lambda r: fx.write_celebamask_sean(r, n_train=1, n_test=4), "CelebA-HQ/test/images"),
        ("celebamask", lambda r: fx.write_celebamask_official(r), "CelebA-HQ-img"),
    ]


@pytest.mark.parametrize("case", range(6), ids=["ade20k", "coco-official", "coco-spade", "cityscapes",
                                                 "celebamask-sean", "celebamask-official"])
def test_eval_on_every_real_layout(case: int, tmp_path: Path, bench_cache: Path) -> None:
    """Each layout's own val photos, renamed to the sample ids, score FID ~ 0 and exact reconstruction."""
    dataset, write, _ = _layouts()[case]
    root = tmp_path / "data"
    write(root)
    s = api.setup("spade", dataset, data_root=root)
    val = s.open("val")
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for smp in val.samples:  # the photos as stored, under the sample id, in another format for some
        arr = np.asarray(Image.open(smp.image).convert("RGB"))
        Image.fromarray(arr).save(imgs / f"{smp.id}.png")
    rec = api.eval_images(dataset, imgs, "photos", data_root=root, results=tmp_path / "r", device="cpu",
                          progress=False, fid_layer="64", metrics="fid,kid,psnr,rmse")
    assert rec.dataset == dataset and rec.extra["n_images"] == len(val.samples)
    assert abs(rec.metrics["fid"]) < 1e-3
    assert rec.metrics["rmse"] == 0.0
    assert "miou" in rec.extra["skipped_metrics"]


def test_real_dataset_default_metrics_need_the_segmenter_weights(tmp_path: Path, bench_cache: Path) -> None:
    from tests import fixtures_real as fx

    fx.write_ade20k(tmp_path / "data", n_train=1, n_val=2)
    imgs = tmp_path / "data" / "ADEChallengeData2016" / "images" / "validation"
    line = _one_line_error(CliRunner().invoke(cli, ["eval", "--dataset", "ade20k", "--data-root",
                                                    str(tmp_path / "data"), "--images", str(imgs), "--name", "x",
                                                    "--results", str(tmp_path / "r")]))
    assert "upernet101-ade20k-encoder" in line and "--metrics fid,kid,precision,recall" in line
    assert not (tmp_path / "r" / "runs").exists()


# --- the new user's cases ----------------------------------------------------------------------------
def test_exif_rotated_images_score_as_displayed_and_conversions_are_recorded(data: Path, tmp_path: Path,
                                                                              bench_cache: Path) -> None:
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for k, p in enumerate(sorted((data / "val_img").glob("*.png"))):
        im = Image.open(p).convert("RGB")
        if k % 2:  # stored rotated, tagged so that a viewer shows it upright (orientation 6: rotate 90 CW)
            exif = Image.Exif()
            exif[0x0112] = 6
            im.transpose(Image.Transpose.ROTATE_90).save(imgs / f"{p.stem}.png", exif=exif)
        else:
            im.convert("RGBA").save(imgs / f"{p.stem}.png")
    rec = api.eval_images("synthetic", imgs, "exif", data_root=data, results=tmp_path / "r", device="cpu",
                          progress=False, fid_layer="64", metrics="fid,psnr")
    assert abs(rec.metrics["fid"]) < 1e-3 and rec.metrics["psnr"] == float("inf")
    assert rec.extra["conversions"]["EXIF orientation 6 applied"] == 4
    assert any("alpha" in c for c in rec.extra["conversions"])


def test_reconstruction_on_tiny_images_is_refused_before_scoring(data: Path, tmp_path: Path, bench_cache: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.evaluate

    monkeypatch.setattr(bench.evaluate, "evaluate", lambda *a, **k: pytest.fail("scored"))
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for p in sorted((data / "val_img").glob("*.png")):
        Image.open(p).resize((8, 8)).save(imgs / p.name)
    line = _one_line_error(_eval(data, imgs, tmp_path / "r", "--reconstruction"))
    assert "8x8 (WxH) images are smaller than SSIM's 11x11" in line


def test_name_is_part_of_the_record_and_skips_say_why(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    a = api.eval_images("synthetic", data / "val_img", "first", data_root=data, results=tmp_path / "r",
                        device="cpu", progress=False, fid_layer="64", metrics=None, bootstrap=0)
    b = api.eval_images("synthetic", data / "val_img", "second", data_root=data, results=tmp_path / "r",
                        device="cpu", progress=False, fid_layer="64", metrics=None, bootstrap=0)
    assert a.run_id != b.run_id and (a.label, b.label) == ("first", "second")
    assert "needs --reconstruction" in a.extra["skipped_metrics"]["psnr"]


def test_precision_recall_skipped_with_a_reason_on_three_images(tmp_path: Path, bench_cache: Path) -> None:
    small = write_synthetic(tmp_path / "small", size=64, n_train=2, n_val=3, seed=1, workers=1)
    rec = api.eval_images("synthetic", small / "val_img", "three", data_root=small, results=tmp_path / "r",
                          device="cpu", progress=False, fid_layer="64", metrics="fid,precision,recall")
    assert "precision" not in rec.metrics and "more than 3 images" in rec.extra["skipped_metrics"]["precision"]


def test_empty_name_metrics_and_negative_bootstrap_are_refused_before_work(data: Path, tmp_path: Path) -> None:
    images = tmp_path / "imgs"
    images.mkdir()
    cases = ((["--name", "  "], "--name ''"), (["--metrics", ""], "--metrics ''"),
             (["--bootstrap", "-5"], "-5 is not in the range"))
    for extra, why in cases:
        result = _eval(data, images, tmp_path / "r", *extra)
        if "range" in why:  # click's own range check: usage error, exit 2
            assert result.exit_code == 2 and why in result.output, result.output
        else:
            assert why in _one_line_error(result)
    from bench.errors import ConfigError
    from bench.external import evaluate_images

    with pytest.raises(ConfigError, match="number of resamples"):
        evaluate_images("synthetic", images, "x", data_root=data, bootstrap=-1)
    assert not (tmp_path / "r").exists()
