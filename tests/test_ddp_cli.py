"""``torchrun -m bench train`` and ``bench train --nproc N`` on CPU (gloo): training, resuming, and the bad setups
that must stop in one line before any process starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bench.checkpoint_io import load_checkpoint, save_checkpoint
from bench.cli import cli
from bench.datasets import write_synthetic

TINY = ["--method", "spade", "--dataset", "synthetic", "--device", "cpu", "--set", "ngf=4", "--set", "ndf=4",
        "--set", "spade_hidden=8", "--set", "n_layers_D=2", "--set", "checkpoint_every=1", "--set", "print_every=1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=64, n_train=8, n_val=2, seed=3, workers=1)


def _one_line(result: object) -> str:
    out = result.output.strip()  # type: ignore[attr-defined]
    assert result.exit_code == 1, out  # type: ignore[attr-defined]
    assert len(out.splitlines()) == 1 and "Traceback" not in out, out
    return out


def test_a_batch_that_does_not_divide_stops_before_any_process(data: Path, tmp_path: Path, bench_cache: Path) -> None:
    res = CliRunner().invoke(cli, ["train", *TINY, "--data-root", str(data), "--out", str(tmp_path / "o"),
                                   "--set", "batch_size=5", "--nproc", "2"])
    assert _one_line(res) == ("Error: batch_size=5 is the global batch and does not divide over 2 processes; use "
                              "--set batch_size=6 (a multiple of 2) or 1, 5 processes")
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_the_new_world_size_cannot_split_stops_in_one_line(data: Path, tmp_path: Path,
                                                                       bench_cache: Path) -> None:
    ckpt = save_checkpoint(tmp_path / "latest.pth", {
        "method": "spade", "iteration": 2, "config": {"batch_size": 4},
        "distributed": {"world_size": 2, "per_rank_batch": 2, "backend": "gloo"}})
    res = CliRunner().invoke(cli, ["train", *TINY, "--data-root", str(data), "--out", str(tmp_path),
                                   "--set", "batch_size=4", "--nproc", "3"])
    assert _one_line(res) == (f"Error: {ckpt}: trained with 2 process(es) x batch 2 (global batch 4); 3 processes "
                              "cannot split global batch 4: resume with 1, 2, 4 processes (torchrun "
                              "--nproc_per_node N, or bench train --nproc N)")
    # --no-resume starts afresh: then only the batch has to divide
    res = CliRunner().invoke(cli, ["train", *TINY, "--data-root", str(data), "--out", str(tmp_path),
                                   "--set", "batch_size=4", "--nproc", "3", "--no-resume"])
    assert "does not divide over 3 processes" in _one_line(res)


def test_nproc_under_torchrun_is_refused(data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    res = CliRunner().invoke(cli, ["train", *TINY, "--data-root", str(data), "--out", str(tmp_path), "--nproc", "2"])
    assert _one_line(res) == "Error: --nproc starts torchrun itself; under torchrun leave it out"


@pytest.mark.slow
def test_torchrun_trains_and_the_shortcut_resumes(data: Path, tmp_path: Path) -> None:
    """The issue's command: torchrun --nproc_per_node 2 -m bench train ... (gloo), then bench train --nproc 2
    resumes it and a single process resumes that. About 60 s on 2 busy cores."""
    env = {**os.environ, "BENCH_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"}
    args = [*TINY, "--data-root", str(data), "--out", str(tmp_path / "run"), "--set", "batch_size=4"]
    first = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
                            "-m", "bench", "train", *args, "--set", "max_iters=2"],
                           capture_output=True, text=True, env=env, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    assert first.stdout.count("latest.pth\titerations=2") == 1  # rank 0 alone prints
    ck = load_checkpoint(tmp_path / "run" / "latest.pth")
    assert ck["iteration"] == 2 and ck["distributed"] == {"world_size": 2, "per_rank_batch": 2, "backend": "gloo"}

    second = subprocess.run([sys.executable, "-m", "bench", "train", *args, "--set", "max_iters=3", "--nproc", "2"],
                            capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed from" in second.stderr and second.stdout.count("iterations=3") == 1
    assert load_checkpoint(tmp_path / "run" / "latest.pth")["iteration"] == 3

    third = CliRunner().invoke(cli, ["train", *args, "--set", "max_iters=4"], env={"BENCH_CACHE": env["BENCH_CACHE"]})
    assert third.exit_code == 0, third.output
    ck = load_checkpoint(tmp_path / "run" / "latest.pth")
    assert ck["iteration"] == 4 and ck["distributed"]["world_size"] == 1
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()]
    assert [e["iteration"] for e in log] == [0, 1, 2, 3]  # rank 0 alone logged, once per iteration
