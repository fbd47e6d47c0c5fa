"""SEAN's style formulations side by side: the official per-image per-class loop vs batched vs fused.

Run ``PYTHONPATH=. python bench/perf/sean_speed.py`` (``--help`` for options). At the official width
(19 classes, 512-d styles, 256×256 input) it times, in one run and interleaved so machine load hits
every formulation alike, the forward and the forward+backward pass of

* **style path** — everything the formulations change: the style encoder's region pooling (on its
  512×128×128 code map) and the style branch of all 15 SEAN normalizations (per-class ``fc_mu``,
  broadcasting into the regions, ``conv_gamma``/``conv_beta``). Default on.
* **generator** — the whole SEAN generator (Zencoder, SPADE branches, convs, ...), where the
  identical SPADE branches bound the end-to-end gain. Default on with CUDA; ``--full`` on the CPU
  (slow: minutes per pass at the official width on 2 cores).

It prints the median seconds per pass and the loop/fused speed-up. The default (loop vs fused, one
timed pass each, CPU) takes about 2-3 minutes on 2 cores; ``--impls loop,batched,fused`` adds the
batched formulation (the 512-channel map built by one matmul, then the same convolutions).
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from bench.perf import bench_device
from methods.sean import ACE, SEANGenerator, StyleInput, region_average, set_style_impl


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], None], device: torch.device) -> float:
    _sync(device)
    t = time.perf_counter()
    fn()
    _sync(device)
    return time.perf_counter() - t


def label_map(batch: int, size: int, classes: int, seed: int = 0) -> torch.Tensor:
    """Blocky random label map with every class present (as face parsing maps are: large regions)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, classes, (batch, 1, 8, 8), generator=g)
    coarse.view(batch, -1)[:, :classes] = torch.arange(classes)
    return F.interpolate(coarse.float(), size=(size, size), mode="nearest").long()


#: the input-size / activation-size factor of each style-carrying block of the official generator
_BLOCK_DOWN = {"head_0": 32, "G_middle_0": 16, "G_middle_1": 16, "up_0": 8, "up_1": 4, "up_2": 2}


def style_path_fn(
    netG: SEANGenerator, seg: torch.Tensor, code_map: torch.Tensor, *, backward: bool
) -> Callable[[], None]:
    """Region pooling + the style branch (γ_s, β_s) of every style-carrying ACE of ``netG``."""
    size = seg.shape[-1]
    aces = [
        (m, F.interpolate(seg, size=(size // _BLOCK_DOWN[name.split(".")[0]],) * 2, mode="nearest"))
        for name, m in netG.named_modules()
        if isinstance(m, ACE) and m.use_rgb
    ]
    classes = seg.ne(0).flatten(2).any(2).any(0).nonzero().flatten()

    def run() -> None:
        with torch.set_grad_enabled(backward):
            cm = code_map.detach().requires_grad_(backward)
            codes = region_average(cm, seg, netG.impl)
            style = StyleInput(codes, classes, False)
            total = codes.sum()
            for m, s in aces:
                gamma, beta = m.style_modulation(s[:, : m.style_nc], style)
                total = total + gamma.sum() + beta.sum()
            if backward:
                total.backward()
                netG.zero_grad(set_to_none=True)

    return run


def generator_fn(
    netG: SEANGenerator, seg: torch.Tensor, img: torch.Tensor, *, backward: bool
) -> Callable[[], None]:
    def run() -> None:
        with torch.set_grad_enabled(backward):
            out = netG(seg, img)
            if backward:
                out.sum().backward()
                netG.zero_grad(set_to_none=True)

    return run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--classes", type=int, default=19)
    p.add_argument(
        "--repeats", type=int, default=1, help="timed passes per formulation (median); 3 for stabler numbers"
    )
    p.add_argument("--impls", default="loop,fused", help="comma-separated: loop, batched, fused")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--full", action="store_true", help="also time the whole generator (default with CUDA)")
    p.add_argument("--no-style-path", action="store_true")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    args = p.parse_args(argv)
    device = bench_device(args.device, args.threads)
    impls = [s.strip() for s in args.impls.split(",") if s.strip()]
    torch.manual_seed(0)
    netG = SEANGenerator(args.classes, crop_size=args.size).to(device).train()
    seg = (
        torch.zeros(args.batch, args.classes, args.size, args.size)
        .scatter_(1, label_map(args.batch, args.size, args.classes), 1.0)
        .to(device)
    )
    img = (torch.rand(args.batch, 3, args.size, args.size) * 2 - 1).to(device)
    code_map = torch.randn(args.batch, 512, args.size // 2, args.size // 2).tanh().to(device)

    parts: list[tuple[str, str, Callable[[bool], Callable[[], None]]]] = []
    if not args.no_style_path:
        parts += [
            ("style path", mode, lambda b: style_path_fn(netG, seg, code_map, backward=b))
            for mode in ("fwd", "fwd+bwd")
        ]
    if args.full or device.type == "cuda":
        parts += [
            ("generator", mode, lambda b: generator_fn(netG, seg, img, backward=b))
            for mode in ("fwd", "fwd+bwd")
        ]

    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(
        f"SEAN style formulations: {args.classes} classes, style 512, {args.size}x{args.size}, batch {args.batch}, "
        f"device {device} (threads {threads}), median of {args.repeats}, interleaved"
    )
    rows = []
    for part, mode, make in parts:
        fn = make(mode == "fwd+bwd")
        times: dict[str, list[float]] = {i: [] for i in impls}
        if mode == "fwd":  # an untimed pass (allocator, oneDNN primitive caches); the loop's seconds dwarf it
            for i in (i for i in impls if i != "loop"):
                set_style_impl(netG, i)  # type: ignore[arg-type]
                fn()
        for _ in range(args.repeats):
            for i in impls:
                set_style_impl(netG, i)  # type: ignore[arg-type]
                times[i].append(_timed(fn, device))
        med = {i: statistics.median(t) for i, t in times.items()}
        rows.append((part, mode, med))

    head = f"| {'part':<10} | {'pass':<7} | " + " | ".join(f"{i + ' (s)':>11}" for i in impls)
    ratio = "loop" in impls and "fused" in impls
    print(head + (" | loop/fused |" if ratio else " |"))
    print(
        "|"
        + "-" * 12
        + "|"
        + "-" * 9
        + "|"
        + "|".join("-" * 13 for _ in impls)
        + ("|-----------:|" if ratio else "|")
    )
    for part, mode, med in rows:
        line = f"| {part:<10} | {mode:<7} | " + " | ".join(f"{med[i]:11.3f}" for i in impls)
        print(line + (f" | {med['loop'] / med['fused']:9.1f}x |" if ratio else " |"))


if __name__ == "__main__":
    main()
