"""GPU checks of the DDP work (``pytest -m gpu``; they fail, never skip, without CUDA): one CUDA training step
with and without AMP, SyncBatchNorm under DDP, CUDA generation + evaluation.

Not run where they were written (no GPU there); see the report of issue 14 for which ran where.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
import torch

from bench.checkpoint_io import load_checkpoint
from bench.datasets import SYNTHETIC_SPEC, open_split, write_synthetic
from bench.datasets.transforms import Preprocess
from methods.spade import SPADEConfig, SPADEMethod
from tests.test_ddp_training import SGDSpade, free_port

pytestmark = pytest.mark.gpu

CFG = SPADEConfig(
    preprocess_mode="resize_and_crop", load_size=72, crop_size=64, ngf=8, spade_hidden=16, ndf=8, n_layers_D=2,
    param_free_norm="syncbatch", no_instance=False, no_vgg_loss=True, batch_size=4, niter=0, max_iters=2,
    checkpoint_every=0,
)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic(tmp_path_factory.mktemp("d") / "synth", size=64, n_train=8, n_val=8, seed=3, workers=1)


def _train_set(root: Path, cfg: SPADEConfig = CFG) -> Any:
    pre = Preprocess(preprocess_mode=cfg.preprocess_mode, load_size=cfg.load_size, crop_size=cfg.crop_size)
    return open_split(SYNTHETIC_SPEC, root, "train", pre)


@pytest.mark.parametrize("amp", [False, True])
def test_a_cuda_training_step(cuda: torch.device, data: Path, tmp_path: Path, amp: bool) -> None:
    from bench.training.trainer import train

    cfg = dataclasses.replace(CFG, amp=amp)
    method = SPADEMethod(cfg, SYNTHETIC_SPEC, cuda)
    before = {k: v.detach().clone() for k, v in method.nets["netG"].state_dict().items()}
    res = train(method, _train_set(data, cfg), tmp_path, seed=0, progress=False)
    assert res.iterations == cfg.max_iters and all(torch.isfinite(torch.tensor(v)) for v in res.last_losses.values())
    ck = load_checkpoint(res.checkpoint)
    assert (set(ck["scalers"]) == {"G", "D"}) is amp  # GradScaler state saved only with AMP
    after = method.nets["netG"].state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight_orig"))


def _syncbn_worker(rank: int, world: int, port: int, cfg: SPADEConfig, root: str, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.backends.cudnn.allow_tf32 = False  # float32 convolutions: the comparison is at float32 rounding
    from bench.training.distributed import init_from_env
    from bench.training.trainer import train

    ctx = init_from_env("cuda")
    method = SGDSpade(cfg, SYNTHETIC_SPEC, ctx.device("cuda"))
    train(method, _train_set(Path(root), cfg), out, seed=0, progress=False)
    n_sync = sum(isinstance(m, torch.nn.SyncBatchNorm) for m in method.nets["netG"].modules())
    Path(out, f"syncbn-{rank}.txt").write_text(str(n_sync))
    torch.distributed.destroy_process_group()


def test_syncbatchnorm_under_ddp_equals_batchnorm_over_the_global_batch(cuda: torch.device, data: Path,
                                                                         tmp_path: Path) -> None:
    """2 ranks x batch 2 with param_free_norm=syncbatch (NCCL, one GPU each) normalise over the global batch of 4,
    so 2 SGD steps give the weights of 1 process x batch 4 with plain BatchNorm, to float32 rounding (5e-4 of the
    update, as the CPU test; SGD for the reason given in tests/test_ddp_training.py)."""
    import torch.multiprocessing as mp

    from bench.training.trainer import train

    if torch.cuda.device_count() < 2:
        pytest.fail(f"SyncBatchNorm under DDP needs 2 CUDA devices (NCCL refuses two ranks on one); "
                    f"{torch.cuda.device_count()} visible")
    torch.backends.cudnn.allow_tf32 = False
    one = SGDSpade(CFG, SYNTHETIC_SPEC, cuda)
    init = {k: v.detach().cpu().clone() for k, v in one.nets["netG"].state_dict().items()}
    train(one, _train_set(data), tmp_path / "one", seed=0, progress=False)
    mp.start_processes(_syncbn_worker, args=(2, free_port(), CFG, str(data), str(tmp_path / "two")), nprocs=2,
                       start_method="spawn")
    assert all(int((tmp_path / "two" / f"syncbn-{r}.txt").read_text()) > 0 for r in range(2))  # converted
    a = load_checkpoint(tmp_path / "one" / "latest.pth")["nets"]["netG"]
    b = load_checkpoint(tmp_path / "two" / "latest.pth")["nets"]["netG"]
    assert a.keys() == b.keys()  # SyncBatchNorm keeps BatchNorm's keys: one process loads the checkpoint
    for k in a:
        if a[k].is_floating_point() and "running" not in k:
            d_one, d_two = a[k].double() - init[k].double(), b[k].double() - init[k].double()
            assert float((d_one - d_two).abs().max()) <= 5e-4 * float(d_one.abs().max()) + 1e-7, k


def test_cuda_generation_and_evaluation_agree_with_cpu(cuda: torch.device, data: Path, tmp_path: Path,
                                                       bench_cache: Path) -> None:
    from bench import api

    tiny = {"ngf": "4", "ndf": "4", "spade_hidden": "8", "n_layers_D": "2", "max_iters": "1", "batch_size": "2"}
    ckpt = api.train("spade", "synthetic", tmp_path / "t", data_root=data, overrides=tiny, device="cpu",
                     progress=False).checkpoint
    recs = {dev: api.run("spade", "synthetic", data_root=data, checkpoint=ckpt, results=tmp_path / dev, device=dev,
                         progress=False, fid_layer="64", bootstrap=0) for dev in ("cpu", "cuda")}
    assert recs["cuda"].run_id == recs["cpu"].run_id  # the device is not an input of the result
    for k, v in recs["cpu"].metrics.items():
        assert abs(recs["cuda"].metrics[k] - v) <= 1e-2 * max(abs(v), 1e-3), k
    images = list(Path(recs["cuda"].extra["images"]).glob("*.png"))
    assert len(images) == 8
