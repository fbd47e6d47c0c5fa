"""Sharded generation and evaluation under 2 gloo ranks (``bench run --checkpoint`` as torchrun runs it) give the
record one process gives: the same images byte for byte, the confusion matrices exactly, FID/KID within 1e-6
relative, one record written by rank 0."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from bench.datasets import write_synthetic

N_VAL = 40  # the segmenter's and reconstruction's batches of 32 split over both ranks
GEN_BATCH = 8  # 5 generation batches: 3 on rank 0, 2 on rank 1
FID_BATCH = 16  # 3 Inception batches per set


def _run(data: Path, ckpt: Path, results: Path) -> Any:
    import bench.evaluate
    from bench import api

    bench.evaluate.FID_BATCH = FID_BATCH
    return api.run("spade", "synthetic", data_root=data, checkpoint=ckpt, results=results, device="cpu",
                   progress=False, batch_size=GEN_BATCH, fid_layer="64", bootstrap=50)


def _worker(rank: int, world: int, port: int, data: str, ckpt: str, results: str, cache: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), BENCH_CACHE=cache, OMP_WAIT_POLICY="PASSIVE")
    torch.set_num_threads(1)
    rec = _run(Path(data), Path(ckpt), Path(results))
    Path(results, f"returned-{rank}.json").write_text(json.dumps({"run_id": rec.run_id, "metrics": rec.metrics}))
    torch.distributed.destroy_process_group()


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Path]]:
    from bench import api

    base = tmp_path_factory.mktemp("ddp_eval")
    data = write_synthetic(base / "data", size=64, n_train=8, n_val=N_VAL, seed=3, workers=1)
    tiny = {"ngf": "4", "ndf": "4", "spade_hidden": "8", "n_layers_D": "2", "max_iters": "1", "batch_size": "2"}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("BENCH_CACHE", str(base / "cache"))  # the cache these tests share
        res = api.train("spade", "synthetic", base / "train", data_root=data, overrides=tiny, device="cpu",
                        progress=False)
        yield {"base": base, "data": data, "ckpt": res.checkpoint, "cache": base / "cache"}


@pytest.mark.slow
def test_two_ranks_give_the_single_process_record(setup: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """About 60 s on 2 busy cores (two spawned ranks import torch, Inception and the segmenter)."""
    import torch.multiprocessing as mp

    from tests.test_ddp_training import free_port

    monkeypatch.setenv("BENCH_CACHE", str(setup["cache"]))
    one = _run(setup["data"], setup["ckpt"], setup["base"] / "one")
    two_dir = setup["base"] / "two"
    two_dir.mkdir()
    mp.start_processes(_worker, args=(2, free_port(), str(setup["data"]), str(setup["ckpt"]), str(two_dir),
                                      str(setup["cache"])), nprocs=2, start_method="spawn")
    records = list((two_dir / "runs").glob("*.json"))
    assert len(records) == 1  # rank 0 wrote the one record ...
    returned = [json.loads((two_dir / f"returned-{r}.json").read_text()) for r in range(2)]
    assert returned[0] == returned[1]  # ... and every rank returned it
    two = json.loads(records[0].read_text())
    assert two["run_id"] == one.run_id  # loading a checkpoint: the same inputs, the same run id
    assert two["extra"]["distributed"] == {"world_size": 2, "backend": "gloo", "per_rank_batch": None}
    assert one.extra["distributed"] == {"world_size": 1, "backend": "none", "per_rank_batch": None}

    # the images: the bytes one process writes, and a complete manifest
    a, b = Path(one.extra["images"]), Path(two["extra"]["images"])
    names = sorted(p.name for p in a.glob("*.png"))
    assert len(names) == N_VAL and names == sorted(p.name for p in b.glob("*.png"))
    assert all((a / n).read_bytes() == (b / n).read_bytes() for n in names)
    manifest = json.loads((b / ".sisbench-manifest.json").read_text())
    assert manifest["complete"] and all(manifest["files"][n]["sha256"] for n in names)

    # the metrics: confusion-matrix ones exactly, FID/KID to 1e-6 relative, reconstruction exactly
    assert two["extra"]["confusion"] == one.extra["confusion"]
    for k in ("miou", "accu", "psnr", "ssim", "rmse", "precision", "recall"):
        assert two["metrics"][k] == one.metrics[k], k
    for k in ("fid", "kid"):
        assert abs(two["metrics"][k] - one.metrics[k]) <= 1e-6 * abs(one.metrics[k]), k
    assert two["ceiling"] == one.ceiling
    # the per-image data behind the intervals, in split order
    pa, pb = np.load(setup["base"] / "one" / "runs" / f"{one.run_id}.npz"), np.load(records[0].with_suffix(".npz"))
    assert sorted(pa.files) == sorted(pb.files)
    for k in pa.files:
        assert np.array_equal(pa[k], pb[k]) or np.allclose(pa[k], pb[k], rtol=1e-6, atol=0), k
    assert two["intervals"].keys() == one.intervals.keys()
