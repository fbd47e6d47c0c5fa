"""Benchmarks that print tables of ratios measured side by side in one run (``python -m bench.perf.<name>``)."""

from __future__ import annotations

import torch


def bench_device(device: str, threads: int | None) -> torch.device:
    """The benchmark's device: ``threads`` CPU threads when given (else torch's default), and cuDNN's
    autotuner on for CUDA (fixed shapes, so the fastest algorithm is picked once)."""
    if threads:
        torch.set_num_threads(threads)
    dev = torch.device(device)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    return dev
