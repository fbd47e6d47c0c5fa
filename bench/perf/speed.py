"""Forward and forward+backward speed of every method's generator and discriminator.

Run ``python -m bench.perf.speed --dataset synthetic`` (or ``bench speed``): prints a table of time per
batch, images/s and peak memory, per method and network, at the method's preset for that dataset
(override with ``--set``), on the CPU here or CUDA when available, so numbers can be put side by
side with the official code's at the same configuration.
"""

from __future__ import annotations

import gc
import resource
import statistics
import sys
import time
from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class Timing:
    method: str
    net: str
    mode: str
    ms: float
    images_per_s: float
    peak_mb: float
    params_m: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB → MiB (process high-water)


def _time(fn: Any, device: torch.device, repeats: int, warmup: int = 1) -> float:
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def random_batch(spec: Any, size: tuple[int, int], batch_size: int, seed: int = 0) -> dict[str, Any]:
    g = torch.Generator().manual_seed(seed)
    h, w = size
    return {
        "image": torch.rand(batch_size, 3, h, w, generator=g) * 2 - 1,
        "label": torch.randint(0, spec.num_classes, (batch_size, 1, h, w), generator=g),
        "instance": torch.randint(0, 4, (batch_size, 1, h, w), generator=g),
        "id": [f"x{i}" for i in range(batch_size)],
        "path": ["" for _ in range(batch_size)],
    }


def measure(method_name: str, dataset: str, *, overrides: dict[str, Any] | None = None, batch_size: int = 1,
            device: str = "cpu", repeats: int = 3) -> list[Timing]:
    """Time G forward (generate), G forward+backward (generator loss) and D forward+backward."""
    from bench.config import resolve
    from bench.datasets import DATASETS
    from methods import load_method

    spec = DATASETS.get(dataset)
    cfg = resolve(method_name, dataset, {**(overrides or {}), "batch_size": batch_size})
    dev = torch.device(device)
    method = load_method(method_name)(cfg, spec, dev)
    h = round(cfg.crop_size / cfg.aspect_ratio)
    batch = random_batch(spec, (h, cfg.crop_size), batch_size)
    if hasattr(method, "prepare_synthetic_batch"):
        batch = method.prepare_synthetic_batch(batch)
    data = method.prepare(batch)
    out = []
    params = {k: sum(p.numel() for p in n.parameters()) / 1e6 for k, n in method.nets.items()}

    def record(net: str, mode: str, fn: Any) -> None:
        gc.collect()
        if dev.type == "cuda":
            torch.cuda.reset_peak_memory_stats(dev)
        sec = _time(fn, dev, repeats)
        out.append(Timing(method_name, net, mode, sec * 1e3, batch_size / sec, _peak_mb(dev), params.get(net, 0.0)))

    method.train_mode(False)
    seeds = list(range(batch_size))
    record("netG", "forward", lambda: method.generate(data, seeds))
    method.train_mode(True)

    def g_step() -> None:
        method.nets["netD"].zero_grad(set_to_none=True)
        sum(method.generator_loss(data).values()).backward()

    def d_step() -> None:
        sum(method.discriminator_loss(data).values()).backward()

    record("netG", "fwd+bwd (G loss)", g_step)
    record("netD", "fwd+bwd (D loss)", d_step)
    return out


def format_table(rows: list[Timing]) -> str:
    head = f"{'method':<10} {'net':<5} {'mode':<17} {'params(M)':>9} {'ms/batch':>10} {'img/s':>8} {'peak MB':>9}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.method:<10} {r.net:<5} {r.mode:<17} {r.params_m:>9.2f} {r.ms:>10.1f} {r.images_per_s:>8.2f} {r.peak_mb:>9.0f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from bench.config import parse_kv
    from methods import available

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="synthetic")
    ap.add_argument("--methods", default=",".join(available()))
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--set", dest="overrides", action="append", default=[])
    args = ap.parse_args(argv)
    rows: list[Timing] = []
    for m in [x for x in args.methods.split(",") if x]:
        try:
            rows += measure(m, args.dataset, overrides=parse_kv(args.overrides), batch_size=args.batch_size,
                            device=args.device, repeats=args.repeats)
        except Exception as e:  # noqa: BLE001 - one method failing must not hide the others' numbers
            print(f"{m}: skipped ({type(e).__name__}: {e})", file=sys.stderr)
    print(f"device={args.device} dataset={args.dataset} batch={args.batch_size} torch={torch.__version__} "
          f"threads={torch.get_num_threads()}")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
