"""The trainer's train_log.jsonl: one whole line per logged step, resume appends without duplicates, and the
report's curve reads it (and does without it)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from bench.training.log import LOG_NAME, append_entry, read_log, truncate_from
from bench.training.trainer import train
from methods.spade import SPADEConfig, SPADEMethod

CFG = SPADEConfig(
    preprocess_mode="resize_and_crop", load_size=36, crop_size=32, ngf=4, spade_hidden=8, ndf=4, n_layers_D=2,
    param_free_norm="batch", no_instance=False, no_vgg_loss=True, batch_size=2, niter=0, max_iters=6,
    checkpoint_every=3, print_every=1,
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=8, n_val=4, seed=3, workers=1)


def _train_set(root: Path):
    pre = Preprocess(preprocess_mode=CFG.preprocess_mode, load_size=CFG.load_size, crop_size=CFG.crop_size)
    return open_split(SYNTHETIC_SPEC, root, "train", pre)


def test_log_has_every_step_and_resume_does_not_duplicate(tiny_data: Path, tmp_path: Path) -> None:
    straight = tmp_path / "straight"
    train(SPADEMethod(CFG, SYNTHETIC_SPEC), _train_set(tiny_data), straight, seed=5, progress=False)
    whole = read_log(straight / LOG_NAME)
    assert [e["iteration"] for e in whole] == [0, 1, 2, 3, 4, 5]
    assert set(whole[0]["losses"]) >= {"GAN", "D_Fake", "D_real"} and set(whole[0]["lr"]) == {"G", "D"}
    assert {k: whole[0]["lr"][k] for k in ("G", "D")} == {"G": CFG.lr / 2, "D": CFG.lr * 2}  # TTUR, SPADE's default
    assert all(isinstance(v, float) for e in whole for v in e["losses"].values())

    # interrupted after 4 steps: the checkpoint holds 3, so steps 3.. are redone on resume
    part = tmp_path / "part"
    train(SPADEMethod(CFG, SYNTHETIC_SPEC), _train_set(tiny_data), part, seed=5, progress=False, stop_at=3)
    append_entry(part / LOG_NAME, 3, {"GAN": 9.0}, {"G": 1.0})  # a step logged after the last checkpoint
    with open(part / LOG_NAME, "ab") as f:
        f.write(b'{"iteration": 4, "los')  # and a torn line (a full disk)
    train(SPADEMethod(CFG, SYNTHETIC_SPEC), _train_set(tiny_data), part, seed=5, progress=False)
    resumed = read_log(part / LOG_NAME)
    assert [e["iteration"] for e in resumed] == [0, 1, 2, 3, 4, 5]
    # the same training gives the same losses, logged once each (the planted GAN=9.0 is gone)
    assert [e["losses"] for e in resumed] == [e["losses"] for e in whole]
    assert all(line.endswith("}") for line in (part / LOG_NAME).read_text().splitlines())


def test_append_is_one_write_per_line_and_truncate_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w" / LOG_NAME
    writes: list[bytes] = []
    real_write = os.write

    def spy(fd: int, data: bytes) -> int:
        writes.append(bytes(data))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", spy)
    append_entry(path, 0, {"a": 1.5, "b": float("inf")}, {"G": [0.1, 0.2]}, now=12.0)
    append_entry(path, 1, {"a": 1.25}, {"G": 0.1}, now=13.0)
    monkeypatch.undo()
    assert len(writes) == 2 and all(w.endswith(b"\n") and w.count(b"\n") == 1 for w in writes)
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    assert lines[0] == {"iteration": 0, "losses": {"a": 1.5, "b": None}, "lr": {"G": [0.1, 0.2]}, "time": 12.0}
    assert truncate_from(path, 1) == 1 and [e["iteration"] for e in read_log(path)] == [0]
    assert truncate_from(path, 5) == 0 and truncate_from(tmp_path / "none.jsonl", 0) == 0
    assert read_log(tmp_path / "none.jsonl") == []
