"""One process without torchrun trains exactly as before DDP support, and the pure parts of the DDP split.

``_reference_train`` is the training arithmetic of ``bench/training/trainer.py`` as of commit 970f223 (before
DDP), frozen here: seeding, optimizers, learning rates, batch order, augmentation seeds, the frozen other
groups, the G then D steps. It leaves out what only reads tensors (the non-finite guards, the loss warnings,
progress, logs, checkpoints). The trainer of today must give the same weights bit for bit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from bench.checkpoint_io import load_checkpoint
from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from bench.errors import CheckpointError, ConfigError
from bench.seeding import seed_everything
from bench.training import distributed
from bench.training.trainer import aug_seed, batch_indices, collate, train
from methods.spade import SPADEConfig, SPADEMethod

CFG = SPADEConfig(
    preprocess_mode="resize_and_crop", load_size=36, crop_size=32, ngf=4, spade_hidden=8, ndf=4, n_layers_D=2,
    param_free_norm="batch", no_instance=False, no_vgg_loss=True, batch_size=2, niter=1, niter_decay=1,
    max_iters=5, checkpoint_every=0,
)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=32, n_train=6, n_val=2, seed=3, workers=1)


def _train_set(root: Path) -> Any:
    pre = Preprocess(preprocess_mode=CFG.preprocess_mode, load_size=CFG.load_size, crop_size=CFG.crop_size)
    return open_split(SYNTHETIC_SPEC, root, "train", pre)


def _reference_train(method: SPADEMethod, train_set: Any, seed: int) -> None:
    """The pre-DDP loop's arithmetic (970f223), frozen."""
    cfg = method.cfg
    n = len(train_set)
    seed_everything(seed, deterministic=cfg.deterministic)
    optimizers = method.optimizers()
    method.train_mode(True)
    per_epoch = n // cfg.batch_size
    others = {g: [p for k, o in optimizers.items() if k != g for grp in o.param_groups for p in grp["params"]]
              for g in optimizers}
    for it in range(cfg.max_iters):
        lrs = method.learning_rates(it / per_epoch)
        if lrs:
            for k, lr in lrs.items():
                for g in optimizers[k].param_groups:
                    g["lr"] = lr
        idx = batch_indices(n, cfg.batch_size, it, seed)
        data = method.prepare(collate([train_set[i, aug_seed(seed, it, j)] for j, i in enumerate(idx)]))
        for group, loss_fn in (("G", method.generator_loss), ("D", method.discriminator_loss)):
            opt = optimizers[group]
            opt.zero_grad(set_to_none=True)
            frozen = [p for p in others[group] if p.requires_grad]
            for p in frozen:
                p.requires_grad_(False)
            try:
                losses = loss_fn(data)
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            sum(losses.values()).backward()
            opt.step()
        method.after_step(it)


def test_one_process_trains_bit_identically_to_the_pre_ddp_loop(tiny_data: Path, tmp_path: Path) -> None:
    ref = SPADEMethod(CFG, SYNTHETIC_SPEC)
    _reference_train(ref, _train_set(tiny_data), seed=7)
    res = train(SPADEMethod(CFG, SYNTHETIC_SPEC), _train_set(tiny_data), tmp_path, seed=7, progress=False)
    assert res.iterations == CFG.max_iters and distributed.current().world_size == 1
    ckpt = load_checkpoint(res.checkpoint)
    assert ckpt["distributed"] == {"world_size": 1, "per_rank_batch": 2, "backend": "none"}
    n_moved = 0
    for name, net in ref.nets.items():
        for key, want in net.state_dict().items():
            assert torch.equal(ckpt["nets"][name][key], want), f"{name}.{key}"
            n_moved += key.endswith("weight_orig")
    assert n_moved > 0


# --- the split, without processes ------------------------------------------------------------------
def test_rank_slices_cover_the_global_batch_with_its_augmentation_positions() -> None:
    idx = batch_indices(12, 4, 5, seed=3)
    parts = [distributed.rank_slice(idx, distributed.Dist(rank=r, world_size=2)) for r in range(2)]
    assert parts[0][0] + parts[1][0] == idx and [p[1] for p in parts] == [0, 2]
    four = [distributed.rank_slice(idx, distributed.Dist(rank=r, world_size=4)) for r in range(4)]
    assert [i for p in four for i in p[0]] == idx and [p[1] for p in four] == [0, 1, 2, 3]


def test_a_batch_that_does_not_divide_is_one_line() -> None:
    assert distributed.per_rank_batch(8, distributed.Dist(rank=0, world_size=4)) == 2
    with pytest.raises(ConfigError) as e:
        distributed.per_rank_batch(6, distributed.Dist(rank=1, world_size=4))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg == ("batch_size=6 is the global batch and does not divide over 4 processes; use --set batch_size=8 "
                   "(a multiple of 4) or 1, 2, 3, 6 processes")


def test_resuming_under_a_world_size_that_cannot_split_the_batch_is_one_line(tmp_path: Path) -> None:
    ckpt = {"config": {"batch_size": 4, "param_free_norm": "instance"},
            "distributed": {"world_size": 2, "per_rank_batch": 2, "backend": "gloo"}}
    path = tmp_path / "latest.pth"
    distributed.check_resume(ckpt, path, 4, distributed.Dist(rank=0, world_size=4))  # 4 x 1: fine
    distributed.check_resume(ckpt, path, 4, distributed.SINGLE)  # 1 x 4: fine
    with pytest.raises(CheckpointError) as e:
        distributed.check_resume(ckpt, path, 4, distributed.Dist(rank=0, world_size=3))
    assert str(e.value) == (f"{path}: trained with 2 process(es) x batch 2 (global batch 4); 3 processes cannot "
                            "split global batch 4: resume with 1, 2, 4 processes (torchrun --nproc_per_node N, "
                            "or bench train --nproc N)")


def test_the_ddp_seeds_are_per_rank_and_stateless() -> None:
    s = {distributed.iteration_seed(0, it, r) for it in range(3) for r in range(2)}
    assert len(s) == 6 and distributed.iteration_seed(0, 2, 1) == distributed.iteration_seed(0, 2, 1)


def test_shards_are_whole_batches_in_round_robin() -> None:
    d = [distributed.Dist(rank=r, world_size=2) for r in range(2)]
    assert distributed.shard_batches(10, 3, d[0]) == [[0, 1, 2], [6, 7, 8]]
    assert distributed.shard_batches(10, 3, d[1]) == [[3, 4, 5], [9]]
    assert sorted(distributed.shard_indices(10, 3, d[0]) + distributed.shard_indices(10, 3, d[1])) == list(range(10))
    assert distributed.shard_indices(1, 3, d[1]) == []
