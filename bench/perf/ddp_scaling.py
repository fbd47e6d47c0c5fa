"""Training throughput under DDP at 1, 2, ... processes and the scaling efficiency.

Run ``python -m bench.perf.ddp_scaling`` (CPU, gloo) or ``python -m bench.perf.ddp_scaling --device cuda --nprocs
1,2,4,8`` (one GPU per process, NCCL). Each process count trains the same configuration from the same seed in
fresh processes (spawned like torchrun's), ``--warmup`` iterations first (DDP's first buckets, oneDNN/cuDNN
plans), then ``--iters`` timed ones; the images/s are the global batch's. Prints a table::

    processes  per-rank batch  global batch   img/s  speed-up  efficiency
            1               8             8    11.2      1.00        100%
            2               4             8    17.9      1.60         80%

``--scaling strong`` (default) keeps the global ``batch_size`` (the official options' meaning, what
``torchrun`` training here does); ``weak`` keeps the per-rank batch, so the global batch grows with the processes.
Efficiency = img/s at N / (N x img/s at 1). On CPU each process gets ``cores / N`` threads, so the efficiency
there measures DDP's overhead (gradient all-reduce, smaller per-process batches), not extra hardware.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _worker(rank: int, world: int, port: int, job: dict[str, Any]) -> None:
    """One rank: train ``warmup`` iterations, then ``iters`` more (resumed, timed); rank 0 writes the rate."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(job["threads"])
    from bench import api
    from bench.training import distributed
    from bench.training.trainer import train

    ctx = distributed.init_from_env(job["device"]) if world > 1 else distributed.SINGLE
    s = api.setup(job["method"], job["dataset"], data_root=job["data_root"], overrides=job["overrides"])
    cfg = dataclasses.replace(s.cfg, checkpoint_every=0, print_every=10**9)
    s = dataclasses.replace(s, cfg=cfg)
    out = Path(job["out"]) / f"n{world}"
    for stop in (job["warmup"], job["warmup"] + job["iters"]):
        model = s.build(ctx.device(job["device"]), 0)
        res = train(model, s.open("train", train=True), out, seed=0, stop_at=stop, progress=False)
    if ctx.is_main:
        Path(job["out"], f"rate-{world}.json").write_text(json.dumps({"img_s": res.images_per_second}))
    if ctx.enabled:
        torch.distributed.destroy_process_group()


def measure(nprocs: list[int], *, method: str = "spade", dataset: str = "synthetic", data_root: str | None = None,
            overrides: dict[str, Any] | None = None, device: str = "cpu", warmup: int = 2, iters: int = 8,
            scaling: str = "strong") -> list[dict[str, Any]]:
    """Images/s of training at each process count (fresh spawned processes per count).

    Returns:
        One row per count: ``processes``, ``per_rank_batch``, ``global_batch``, ``img_s`` (global images per
        second over the timed iterations), ``speedup`` and ``efficiency`` (against the first count, per process).

    Raises:
        BenchError: a batch that does not divide (strong scaling), an unknown method or dataset (one line).
    """
    import torch.multiprocessing as mp

    from bench import api
    from bench.training.distributed import Dist, per_rank_batch

    overrides = dict(overrides or {})
    base = api.setup(method, dataset, data_root=data_root, overrides=overrides)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="ddp-scaling-") as tmp:
        for n in nprocs:
            batch = base.cfg.batch_size if scaling == "strong" else base.cfg.batch_size * n
            per_rank_batch(batch, Dist(world_size=n))
            job = {"method": method, "dataset": dataset, "data_root": str(base.data_root),
                   "overrides": {**overrides, "batch_size": str(batch)}, "device": device, "warmup": warmup,
                   "iters": iters, "out": tmp, "threads": max(1, cores // n) if device == "cpu" else 1}
            mp.start_processes(_worker, args=(n, _port(), job), nprocs=n, start_method="spawn")
            rate = json.loads(Path(tmp, f"rate-{n}.json").read_text())["img_s"]
            rows.append({"processes": n, "per_rank_batch": batch // n, "global_batch": batch, "img_s": rate})
    for r in rows:
        r["speedup"] = r["img_s"] / rows[0]["img_s"]
        r["efficiency"] = r["speedup"] * rows[0]["processes"] / r["processes"]
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'processes':>9}  {'per-rank batch':>14}  {'global batch':>12}  {'img/s':>7}  {'speed-up':>8}  "
             f"{'efficiency':>10}"]
    for r in rows:
        lines.append(f"{r['processes']:>9}  {r['per_rank_batch']:>14}  {r['global_batch']:>12}  {r['img_s']:>7.2f}  "
                     f"{r['speedup']:>8.2f}  {r['efficiency']:>10.0%}")
    return "\n".join(lines)


def machine() -> str:
    """What the numbers were measured on: cores, load, GPUs."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return f"{cores} CPU cores (load average {load}); GPUs: {', '.join(gpus) or 'none'}; torch {torch.__version__}"


def main(argv: list[str] | None = None) -> None:
    from bench.config import parse_kv
    from bench.errors import BenchError

    ap = argparse.ArgumentParser(prog="python -m bench.perf.ddp_scaling", description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="spade")
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--data-root", default=None)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    ap.add_argument("--nprocs", default="1,2", help="process counts, e.g. 1,2,4,8")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--iters", type=int, default=8)
    ap.add_argument("--scaling", choices=["strong", "weak"], default="strong")
    ap.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    args = ap.parse_args(argv)
    try:
        rows = measure([int(x) for x in args.nprocs.split(",")], method=args.method, dataset=args.dataset,
                       data_root=args.data_root, overrides=parse_kv(args.overrides), device=args.device,
                       warmup=args.warmup, iters=args.iters, scaling=args.scaling)
    except BenchError as e:
        sys.exit(f"Error: {str(e).splitlines()[0]}")
    if args.json:
        print(json.dumps({"machine": machine(), "rows": rows}, indent=1))
        return
    print(f"{args.method} on {args.dataset}, {args.scaling} scaling, {args.device}: {machine()}")
    print(format_table(rows))


if __name__ == "__main__":
    main()
