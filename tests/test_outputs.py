"""Output folders: sisbench refuses folders it did not write, and never deletes a file it did not write."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.cli import cli
from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from bench.generate import generate_split
from bench.outputs import (
    MANIFEST_NAME,
    OutputDirError,
    check_output_file,
    make_temp_dir,
    prepare_output_dir,
    read_manifest,
)
from methods.spade import SPADEConfig, SPADEMethod
from reports.render import render

TINY = ["--set", "max_iters=1", "--set", "ngf=2", "--set", "spade_hidden=4", "--set", "ndf=2",
        "--set", "batch_size=2", "--set", "crop_size=32", "--set", "load_size=32"]
PHOTO = bytes(range(256)) * 40  # stands in for a user's JPEG: any bytes must survive unchanged


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=2, n_val=3, seed=1, workers=1)


@pytest.fixture(scope="module")
def checkpoint(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ckpt")
    result = CliRunner().invoke(cli, ["train", "--method", "spade", "--dataset", "synthetic", "--data-root", str(data),
                                      "--out", str(out), *TINY])
    assert result.exit_code == 0, result.output
    return out / "latest.pth"


def _user_folder(folder: Path) -> dict[str, bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    files = {"notes.txt": b"my notes\n", "holiday.jpg": PHOTO}
    for name, content in files.items():
        (folder / name).write_bytes(content)
    return files


def _generate(data: Path, checkpoint: Path, out: str, *extra: str):  # noqa: ANN202
    return CliRunner().invoke(cli, ["generate", "--method", "spade", "--dataset", "synthetic", "--data-root", str(data),
                                    "--checkpoint", str(checkpoint), "--out", out, *TINY, *extra])


def _error_line(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.output, result.exception)
    lines = [ln for ln in result.output.splitlines() if "Error: " in ln]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def _pngs(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.png"))


# --- the case: `bench generate --out` on a folder of the user's files ------------------------
def test_generate_refuses_a_foreign_folder_before_loading_the_model(data: Path, tmp_path: Path) -> None:
    files = _user_folder(tmp_path / "photos")
    # the checkpoint does not exist: the folder must be refused before the model is built or loaded
    line = _error_line(_generate(data, tmp_path / "missing.pth", str(tmp_path / "photos")))
    assert "photos is not empty and was not written by sisbench (2 files, e.g. holiday.jpg)" in line
    assert "--overwrite" in line and "missing.pth" not in line
    assert {p.name: p.read_bytes() for p in (tmp_path / "photos").iterdir()} == files  # nothing added, nothing lost


def test_generate_overwrite_keeps_the_users_files(data: Path, checkpoint: Path, tmp_path: Path) -> None:
    files = _user_folder(tmp_path / "photos")
    result = _generate(data, checkpoint, str(tmp_path / "photos"), "--overwrite")
    assert result.exit_code == 0, result.output
    for name, content in files.items():
        assert (tmp_path / "photos" / name).read_bytes() == content
    assert _pngs(tmp_path / "photos") == ["val_00000.png", "val_00001.png", "val_00002.png"]
    manifest = read_manifest(tmp_path / "photos")
    assert manifest is not None and manifest["complete"] is True
    assert sorted(manifest["files"]) == _pngs(tmp_path / "photos")  # the user's files are not claimed


def test_out_dot_keeps_the_working_folder(data: Path, checkpoint: Path, tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    files = _user_folder(work)
    monkeypatch.chdir(work)
    line = _error_line(_generate(data, checkpoint, "."))
    assert "not written by sisbench" in line
    assert work.is_dir() and {p.name: p.read_bytes() for p in work.iterdir()} == files
    result = _generate(data, checkpoint, ".", "--overwrite")
    assert result.exit_code == 0, result.output
    assert Path.cwd() == work and work.is_dir()
    for name, content in files.items():
        assert (work / name).read_bytes() == content
    assert len(_pngs(work)) == 3


# --- re-runs into sisbench's own folders ------------------------------------------------------------
def _method(use_vae: bool = True) -> SPADEMethod:
    cfg = SPADEConfig(preprocess_mode="fixed", load_size=64, crop_size=64, ngf=2, spade_hidden=4, ndf=2,
                      no_vgg_loss=True, use_vae=use_vae, z_dim=4, no_instance=False, param_free_norm="batch")
    return SPADEMethod(cfg, SYNTHETIC_SPEC)


@pytest.fixture(scope="module")
def val5(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = write_synthetic(tmp_path_factory.mktemp("d5") / "s", size=32, n_train=1, n_val=5, seed=2, workers=1)
    return open_split(SYNTHETIC_SPEC, root, "val", Preprocess.fixed((64, 64)))


@pytest.fixture(scope="module")
def val3(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = write_synthetic(tmp_path_factory.mktemp("d3") / "s", size=32, n_train=1, n_val=3, seed=2, workers=1)
    return open_split(SYNTHETIC_SPEC, root, "val", Preprocess.fixed((64, 64)))


def test_rerun_replaces_only_its_own_files(val3, tmp_path: Path) -> None:  # noqa: ANN001
    out = generate_split(_method(), val3, tmp_path / "g", seed=0, progress=False)
    (out / "mine.txt").write_text("kept")
    before = {n: (out / n).read_bytes() for n in _pngs(out)}
    inodes = {n: (out / n).stat().st_ino for n in _pngs(out)}
    generate_split(_method(), val3, out, seed=1, progress=False)  # no overwrite needed: the folder is ours
    assert _pngs(out) == sorted(before)
    assert all((out / n).stat().st_ino != inodes[n] for n in before)  # each image was replaced (os.replace)
    assert any((out / n).read_bytes() != before[n] for n in before)  # seed 1 draws other noise
    assert (out / "mine.txt").read_text() == "kept"
    assert "mine.txt" not in read_manifest(out)["files"]


def test_stale_images_of_a_bigger_run_are_removed_user_files_kept(val5, val3, tmp_path: Path) -> None:  # noqa: ANN001
    out = generate_split(_method(), val5, tmp_path / "g", seed=0, progress=False)
    assert _pngs(out) == [f"val_0000{i}.png" for i in range(5)]
    (out / "mine.png").write_bytes(PHOTO)  # a user's file in a sisbench folder
    (out / "val_00004.png").write_bytes(b"edited by hand")  # a sisbench file the user changed
    generate_split(_method(), val3, out, seed=0, progress=False)
    assert not (out / "val_00003.png").exists()  # stale and unchanged: removed
    assert (out / "val_00004.png").read_bytes() == b"edited by hand"  # stale but edited: kept
    assert (out / "mine.png").read_bytes() == PHOTO
    assert sorted(read_manifest(out)["files"]) == [f"val_0000{i}.png" for i in (0, 1, 2, 4)]


def test_a_users_file_in_the_way_is_refused_before_generating(val5, val3, tmp_path: Path) -> None:  # noqa: ANN001
    out = generate_split(_method(), val3, tmp_path / "g", seed=0, progress=False)
    (out / "val_00004.png").write_bytes(PHOTO)  # not in the manifest: the user's
    method = _method()
    calls = []
    method.before_generate = lambda ds: calls.append(ds)  # type: ignore[method-assign]
    with pytest.raises(OutputDirError, match="val_00004.png exists and was not written by sisbench"):
        generate_split(method, val5, out, seed=0, progress=False)
    assert calls == [] and (out / "val_00004.png").read_bytes() == PHOTO
    generate_split(_method(), val5, out, seed=0, progress=False, overwrite=True)
    assert (out / "val_00004.png").read_bytes() != PHOTO  # --overwrite replaces a same-named file


def test_an_interrupted_run_is_recognised_and_replaced(val5, tmp_path: Path) -> None:  # noqa: ANN001
    method = _method()
    real = method.generate
    calls = []

    def failing(data, seeds):  # noqa: ANN001, ANN202
        calls.append(seeds)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(data, seeds)

    method.generate = failing  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        generate_split(method, val5, tmp_path / "g", seed=0, batch_size=2, progress=False)
    manifest = read_manifest(tmp_path / "g")
    assert manifest is not None and manifest["complete"] is False
    assert _pngs(tmp_path / "g") == ["val_00000.png", "val_00001.png"]
    assert not [p for p in (tmp_path / "g").iterdir() if "sisbench-tmp" in p.name]  # no stray temp files
    generate_split(_method(), val5, tmp_path / "g", seed=0, progress=False)  # no --overwrite needed
    manifest = read_manifest(tmp_path / "g")
    assert manifest["complete"] is True and len(_pngs(tmp_path / "g")) == 5
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((tmp_path / "g" / name).read_bytes()).hexdigest() == entry["sha256"]


def test_a_folder_of_another_kind_is_refused(tmp_path: Path) -> None:
    report = render(tmp_path / "results", tmp_path / "report")
    assert report.name == "index.html"
    with pytest.raises(OutputDirError, match="holds sisbench report, not generated images"):
        prepare_output_dir(tmp_path / "report", kind="generated images")
    with pytest.raises(OutputDirError, match="is not a folder"):
        prepare_output_dir(report)


# --- the report and the synthetic dataset ----------------------------------------------------------
def test_report_refuses_a_foreign_folder_and_replaces_its_own(tmp_path: Path) -> None:
    files = _user_folder(tmp_path / "site")
    with pytest.raises(OutputDirError, match="not written by sisbench"):
        render(tmp_path / "results", tmp_path / "site")
    assert sorted(p.name for p in (tmp_path / "site").iterdir()) == sorted(files)
    render(tmp_path / "results", tmp_path / "site", overwrite=True)
    assert all((tmp_path / "site" / n).read_bytes() == c for n, c in files.items())
    assert {"index.html", "tables.md", "index.csv"} <= set(read_manifest(tmp_path / "site")["files"])
    # a file of an earlier report that this one no longer writes is removed; the user's stay
    site = prepare_output_dir(tmp_path / "site", kind="report")
    site.write_text("table9-old.csv", "a,b\n")
    site.finish()
    render(tmp_path / "results", tmp_path / "site")
    assert not (tmp_path / "site" / "table9-old.csv").exists()
    assert all((tmp_path / "site" / n).read_bytes() == c for n, c in files.items())


def test_data_synth_cli(tmp_path: Path) -> None:
    files = _user_folder(tmp_path / "ds")
    args = ["data", "synth", "--out", str(tmp_path / "ds"), "--size", "32", "--val", "1", "--seed", "3"]
    assert "not written by sisbench" in _error_line(CliRunner().invoke(cli, [*args, "--train", "3"]))
    result = CliRunner().invoke(cli, [*args, "--train", "3", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert all((tmp_path / "ds" / n).read_bytes() == c for n, c in files.items())
    assert len(list((tmp_path / "ds" / "train_img").iterdir())) == 3
    result = CliRunner().invoke(cli, [*args, "--train", "2"])  # its own folder: no --overwrite needed
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "ds" / "train_img").iterdir()) == ["train_00000.png", "train_00001.png"]
    assert json.loads((tmp_path / "ds" / "dataset.json").read_text())["counts"]["train"] == 2
    assert all((tmp_path / "ds" / n).read_bytes() == c for n, c in files.items())


def test_segmenter_checkpoint_path_check(tmp_path: Path) -> None:
    foreign = tmp_path / "model.pth"
    foreign.write_bytes(PHOTO)
    with pytest.raises(OutputDirError, match="model.pth exists and was not written by sisbench"):
        check_output_file(foreign)
    assert check_output_file(foreign, overwrite=True) == foreign
    digest = hashlib.sha256(PHOTO).hexdigest()
    (tmp_path / "model.pth.sha256").write_text(f"{digest}  model.pth\n")  # what sisbench writes beside its own
    assert check_output_file(foreign) == foreign
    foreign.write_bytes(PHOTO + b"x")  # changed since: no longer provably ours
    with pytest.raises(OutputDirError):
        check_output_file(foreign)


# --- modes --------------------------------------------------------------------------------------------
@pytest.fixture
def umask027() -> Iterator[None]:
    old = os.umask(0o027)
    try:
        yield
    finally:
        os.umask(old)


def test_new_folders_and_files_follow_the_umask(val3, tmp_path: Path, umask027: None) -> None:  # noqa: ANN001
    out = generate_split(_method(), val3, tmp_path / "a" / "g", seed=0, progress=False)
    assert stat.S_IMODE(out.stat().st_mode) == 0o750  # not mkdtemp's 0700
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o750
    for p in [*out.glob("*.png"), out / MANIFEST_NAME]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o640, p  # not mkstemp's 0600
    assert stat.S_IMODE(make_temp_dir(tmp_path, ".x-").stat().st_mode) == 0o750
    report = render(tmp_path / "results", tmp_path / "report").parent
    assert stat.S_IMODE(report.stat().st_mode) == 0o750
    assert stat.S_IMODE((report / "index.html").stat().st_mode) == 0o640
