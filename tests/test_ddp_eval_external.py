"""`bench eval` under 2 gloo ranks (as torchrun runs it) gives the record one process gives."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from bench.datasets import write_synthetic
from bench.store import from_strict_json

N_VAL = 40  # the segmenter's batches of 32 split over both ranks


def _eval(data: Path, images: Path, results: Path):  # noqa: ANN202
    from bench import api

    return api.eval_images("synthetic", images, "reals", data_root=data, results=results, device="cpu",
                           progress=False, fid_layer="64", bootstrap=50, reconstruction=True)


def _worker(rank: int, world: int, port: int, data: str, results: str, cache: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank), BENCH_CACHE=cache, OMP_WAIT_POLICY="PASSIVE")
    torch.set_num_threads(1)
    rec = _eval(Path(data), Path(data) / "val_img", Path(results))
    Path(results, f"returned-{rank}.json").write_text(json.dumps({"run_id": rec.run_id, "metrics": rec.metrics}))
    torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_two_ranks_score_a_folder_as_one_process(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torch.multiprocessing as mp

    from tests.test_ddp_training import free_port

    data = write_synthetic(tmp_path / "data", size=64, n_train=2, n_val=N_VAL, seed=5, workers=1)
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    one = _eval(data, data / "val_img", tmp_path / "one")
    two_dir = tmp_path / "two"
    two_dir.mkdir()
    mp.start_processes(_worker, args=(2, free_port(), str(data), str(two_dir), str(tmp_path / "cache")), nprocs=2,
                       start_method="spawn")
    records = list((two_dir / "runs").glob("*.json"))
    assert len(records) == 1  # rank 0 wrote the one record, every rank returned it
    returned = [json.loads((two_dir / f"returned-{r}.json").read_text()) for r in range(2)]
    assert returned[0] == returned[1] and returned[0]["run_id"] == one.run_id
    two = from_strict_json(json.loads(records[0].read_text()))  # PSNR of the photos themselves: "Infinity"
    assert two["extra"]["confusion"] == one.extra["confusion"] and two["ceiling"] == one.ceiling
    for k in ("miou", "accu", "psnr", "ssim", "rmse", "precision", "recall"):
        assert two["metrics"][k] == one.metrics[k], k
    for k in ("fid", "kid"):
        assert abs(two["metrics"][k] - one.metrics[k]) <= 1e-6 * max(abs(one.metrics[k]), 1e-9), k
