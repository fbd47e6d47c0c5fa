"""sisbench's generators against the official code (or dense against gather), same weights, same outputs.

Run ``python -m bench.perf.vs_official`` (``--help`` for options). For each method at its paper
resolution (256x256 for SPADE on ADE20K and COCO-Stuff, OASIS on ADE20K, SEAN on CelebAMask-HQ and
RESAIL on ADE20K; 512x256 for pix2pixHD on Cityscapes) it builds

* ``dense``: sisbench with ``onehot_conv=dense`` and ``fuse_gamma_beta=false`` (the official computation);
* ``gather``: sisbench with one-hot convolutions as gathers and its other defaults (fused γ/β), plus any
  ``--set`` (``bf16=true``, ``channels_last=true``, ``compile=true`` on a GPU);
* ``official`` (with ``--official-root``): the official generator imported from the user's checkouts,
  built with the official options of that dataset. Nothing of the official code is vendored; the import
  patches only what current PyTorch or a CPU needs (listed in :data:`SHIMS`).

All variants get the same weights (the official one by ``load_state_dict(strict=True)`` of sisbench's
state_dict); one train-mode forward of each is compared with the golden-case tolerance (rtol 1e-4,
atol 3e-5) before timing. Timings are interleaved (every variant once per round, rounds repeated) and the
median per variant is reported for the forward pass (eval mode, no grad: generation) and the forward +
backward pass (train mode, gradient of the output mean: the generator's share of a training step), with
the ratios ``dense/gather`` and ``official/gather`` (> 1: sisbench's gather path is faster).

``--official-root DIR`` is a folder with the checkouts under their repository names (``SPADE``, ``SEAN``,
``OASIS``, ``pix2pixHD``, ``RESAIL-For-SIS``), or ``--official-root spade=PATH`` per repository. A
missing checkout skips the official column of that method with a one-line note.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import importlib
import pickle
import statistics
import sys
import time
import types
from argparse import Namespace
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from bench.errors import BenchError
from bench.perf import bench_device

#: what the official imports are patched with, and why (printed with the results)
SHIMS = {
    "dill": "util/util.py imports dill (pickling options only): pickle stands in when dill is not installed",
    "sync_batchnorm": "SPADE's models/networks/sync_batchnorm is a separate install (README): when absent, "
    "SynchronizedBatchNorm2d = nn.BatchNorm2d, which it is on one device",
    "cuda": "SEAN's ACE calls torch.randn(...).cuda(): on a CPU-only machine Tensor.cuda returns the tensor",
}
#: the ``dense`` variant: the official computation (architecture overrides apply to it as well)
REFERENCE = {"onehot_conv": "dense", "fuse_gamma_beta": False, "spectral_after_conv": False, "bf16": False,
             "channels_last": False, "compile": False}
#: tolerance of the agreement check (the generators' golden-case tolerance, tests/parity)
RTOL, ATOL = 1e-4, 3e-5


@dataclass(frozen=True)
class Case:
    """One benchmark row: a method on a dataset at its paper resolution."""

    key: str
    method: str
    dataset: str
    repo: str  # folder name of the official checkout
    size: tuple[int, int]  # (H, W)


CASES = (
    Case("spade-ade20k", "spade", "ade20k", "SPADE", (256, 256)),
    Case("spade-coco", "spade", "coco", "SPADE", (256, 256)),
    Case("oasis-ade20k", "oasis", "ade20k", "OASIS", (256, 256)),
    Case("pix2pixhd-cityscapes", "pix2pixhd", "cityscapes", "pix2pixHD", (256, 512)),
    Case("sean-celebamask", "sean", "celebamask", "SEAN", (256, 256)),
    Case("resail-ade20k", "resail", "ade20k", "RESAIL-For-SIS", (256, 256)),
)


# --- inputs -----------------------------------------------------------------------------------------
def blocky_batch(spec: Any, size: tuple[int, int], batch: int, seed: int = 0) -> dict[str, Any]:
    """Label maps of 16x16-pixel blocks of random classes (regions, as real maps), blocky instances and
    random images in [-1, 1]: ``{"label": [B,1,H,W] int64, "instance": ..., "image": [B,3,H,W]}``."""
    g = torch.Generator().manual_seed(seed)
    h, w = size
    coarse = torch.randint(0, spec.num_classes, (batch, 1, max(1, h // 16), max(1, w // 16)), generator=g)
    label = F.interpolate(coarse.float(), size=(h, w), mode="nearest").long()
    inst = F.interpolate(torch.randint(0, 4, (batch, 1, max(1, h // 32), max(1, w // 32)), generator=g).float(),
                         size=(h, w), mode="nearest").long()
    return {"label": label, "instance": inst, "image": torch.rand(batch, 3, h, w, generator=g) * 2 - 1,
            "id": [f"x{i}" for i in range(batch)], "path": ["" for _ in range(batch)]}


def generator_input(method: Any, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """``(label input [B, C, H, W], image [B, 3, H, W])`` as the method feeds its generator."""
    from methods.spade import SPADEMethod

    if method.name == "resail":  # SPADE's inputs; the guidance image is given, not retrieved
        data = SPADEMethod.prepare(method, batch)
    else:
        data = method.prepare(batch)
    sem = data["input_label"] if method.name == "pix2pixhd" else data["semantics"]
    return sem, data["image"]


def call_generator(method_name: str, net: nn.Module, sem: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """The official call of each generator (sisbench's accept the same arguments)."""
    if method_name == "sean":
        return net(sem, image)
    if method_name == "resail":
        return net(sem, None, {"retrieval_image": image})
    return net(sem)


# --- the official generators ------------------------------------------------------------------------
_OFFICIAL_TOP = ("models", "util", "data", "options", "trainers")


@contextlib.contextmanager
def official_imports(path: Path) -> Iterator[None]:
    """Import from an official checkout at ``path`` (its ``models``/``util`` packages shadow nothing of
    ours), with the shims of :data:`SHIMS`; ``sys.path``/``sys.modules`` are restored afterwards."""
    saved = {k: sys.modules.pop(k) for k in list(sys.modules) if k.split(".")[0] in _OFFICIAL_TOP}
    added: list[str] = []
    sys.path.insert(0, str(path))
    try:
        importlib.import_module("dill")
    except ImportError:
        sys.modules["dill"] = pickle
        added.append("dill")
    if (path / "models" / "networks").is_dir() and not (path / "models" / "networks" / "sync_batchnorm").exists():
        shim = types.ModuleType("models.networks.sync_batchnorm")
        shim.SynchronizedBatchNorm2d = nn.BatchNorm2d  # type: ignore[attr-defined]
        sys.modules["models.networks.sync_batchnorm"] = shim
    try:
        yield
    finally:
        sys.path.remove(str(path))
        for k in list(sys.modules):
            if k.split(".")[0] in _OFFICIAL_TOP:
                del sys.modules[k]
        for k in added:
            sys.modules.pop(k, None)
        sys.modules.update(saved)


@contextlib.contextmanager
def cpu_cuda_shim(device: torch.device) -> Iterator[None]:
    """``Tensor.cuda`` → identity while an official forward runs on a machine without CUDA (SEAN's ACE)."""
    if device.type == "cuda" or torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original  # type: ignore[method-assign]


def _spade_family_opt(cfg: Any, semantic_nc: int, **extra: Any) -> Namespace:
    return Namespace(ngf=cfg.ngf, semantic_nc=semantic_nc, num_upsampling_layers=cfg.num_upsampling_layers,
                     crop_size=cfg.crop_size, aspect_ratio=cfg.aspect_ratio, use_vae=getattr(cfg, "use_vae", False),
                     z_dim=getattr(cfg, "z_dim", 256), output_nc=3,
                     norm_G=("spectral" if cfg.spectral_G else "") + f"spade{cfg.param_free_norm}3x3", **extra)


def build_official(case: Case, path: Path, method: Any, semantic_nc: int, device: torch.device) -> nn.Module:
    """The official generator of ``case`` from the checkout at ``path``, with ``method``'s options.

    Raises:
        BenchError: The checkout lacks the expected module or class, or its state_dict differs from ours.
    """
    cfg = method.cfg
    with official_imports(path):
        try:
            if case.method in ("spade", "sean", "resail"):
                gen = importlib.import_module("models.networks.generator")
                if case.method == "sean":
                    opt = _spade_family_opt(cfg, semantic_nc, status="train")
                elif case.method == "resail":
                    opt = _spade_family_opt(cfg, semantic_nc, netG="spade", norm_way="")
                else:
                    opt = _spade_family_opt(cfg, semantic_nc)
                net = gen.SPADEGenerator(opt)
            elif case.method == "oasis":
                gen = importlib.import_module("models.generator")
                opt = Namespace(channels_G=cfg.channels_G, semantic_nc=semantic_nc, crop_size=cfg.crop_size,
                                aspect_ratio=cfg.aspect_ratio, z_dim=cfg.z_dim, no_3dnoise=cfg.no_3dnoise,
                                num_res_blocks=6, gpu_ids="0" if device.type == "cuda" else "-1",
                                no_spectral_norm=cfg.no_spectral_norm, param_free_norm=cfg.param_free_norm,
                                spade_ks=cfg.spade_ks)
                net = gen.OASIS_Generator(opt)
            elif case.method == "pix2pixhd":
                nets = importlib.import_module("models.networks")
                net = nets.GlobalGenerator(semantic_nc, 3, cfg.ngf, cfg.n_downsample_global, cfg.n_blocks_global,
                                           nets.get_norm_layer(norm_type=cfg.norm))
            else:
                raise BenchError(f"no official builder for {case.method!r}")
        except (ImportError, AttributeError) as e:
            raise BenchError(f"{path}: not a usable {case.repo} checkout ({type(e).__name__}: {e}); "
                             f"pass --official-root with the repository root") from None
    try:
        net.load_state_dict(method.nets["netG"].state_dict(), strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise BenchError(f"{path}: the official {case.repo} generator does not take sisbench's weights ({first})") from None
    return net.to(device)


def official_paths(spec: list[str]) -> dict[str, Path]:
    """``--official-root`` values → ``{repo folder name or method: path}``; a bare path maps every repo."""
    out: dict[str, Path] = {}
    for item in spec:
        if "=" in item:
            name, _, p = item.partition("=")
            out[name.strip().lower()] = Path(p).expanduser()
        else:
            root = Path(item).expanduser()
            if not root.is_dir():
                raise BenchError(f"--official-root {root}: not a directory; give the folder holding the checkouts")
            for case in CASES:
                out.setdefault(case.repo.lower(), root / case.repo)
    return out


# --- timing -----------------------------------------------------------------------------------------
@dataclass
class Variant:
    name: str
    net: nn.Module
    bf16: bool = False
    channels_last: bool = False
    shim: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _pass(case: Case, v: Variant, sem: torch.Tensor, image: torch.Tensor, device: torch.device,
          backward: bool) -> Callable[[], torch.Tensor]:
    if v.channels_last:
        sem, image = (t.contiguous(memory_format=torch.channels_last) for t in (sem, image))
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=v.bf16 and device.type == "cuda")

    def run() -> torch.Tensor:
        v.net.train(backward)
        with v.shim(), autocast, torch.set_grad_enabled(backward):
            out = call_generator(case.method, v.net, sem, image)
            if backward:
                v.net.zero_grad(set_to_none=True)
                out.float().mean().backward()
        return out

    return run


def agreement(case: Case, ref: Variant, other: Variant, sem: torch.Tensor, image: torch.Tensor,
              device: torch.device) -> float:
    """max |Δ| of one train-mode forward of each; the buffers that forward updates (spectral norm's u/v,
    BatchNorm statistics) are restored after it, so every variant starts from the same state."""
    outs = []
    for v in (ref, other):
        state = copy.deepcopy(v.net.state_dict())
        torch.manual_seed(0)  # OASIS's z and SEAN's noise come from the global RNG
        with torch.no_grad():
            v.net.train()
            with v.shim(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=v.bf16 and device.type == "cuda"):
                s, i = ((t.contiguous(memory_format=torch.channels_last) for t in (sem, image))
                        if v.channels_last else (sem, image))
                outs.append(call_generator(case.method, v.net, s, i).float())
        v.net.load_state_dict(state)
    return float((outs[0] - outs[1]).abs().max())


def interleaved(fns: dict[str, Callable[[], Any]], repeats: int, device: torch.device, clock: Callable[[], float],
                warmup: int = 1) -> dict[str, float]:
    """Median seconds per variant; each round runs every variant once, so load drifts hit all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            _sync(device)
            t0 = clock()
            fn()
            _sync(device)
            times[k].append(clock() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


@dataclass
class Row:
    case: Case
    mode: str
    seconds: dict[str, float]
    agree: dict[str, float]
    note: str = ""


def run_case(case: Case, *, device: torch.device, batch: int, repeats: int, overrides: dict[str, Any],
             official: Path | None, clock: Callable[[], float], log: Callable[[str], None]) -> list[Row]:
    """Build the variants of one case, check that their outputs agree, time them interleaved."""
    from bench.config import resolve
    from bench.datasets import DATASETS
    from methods import load_method
    from methods.common.perf import COMPILE_SECONDS

    spec = DATASETS.get(case.dataset)
    cls = load_method(case.method)
    dense_cfg = resolve(case.method, case.dataset, {**overrides, **REFERENCE, "batch_size": batch})
    fast_cfg = resolve(case.method, case.dataset, {"onehot_conv": "gather", **overrides, "batch_size": batch})
    dense_m = cls(dense_cfg, spec, device)  # same seed → same initial weights in both
    fast_m = cls(fast_cfg, spec, device)
    fast_m.nets["netG"].load_state_dict(dense_m.nets["netG"].state_dict())
    sem, image = generator_input(dense_m, blocky_batch(spec, case.size, batch))
    variants = [Variant("dense", dense_m.nets["netG"]),
                Variant("gather", fast_m.nets["netG"], bf16=fast_cfg.bf16, channels_last=fast_cfg.channels_last)]
    note = ""
    if official is not None:
        if official.is_dir():
            net = build_official(case, official, dense_m, sem.shape[1], device)
            variants.append(Variant("official", net, shim=lambda: cpu_cuda_shim(device)))
        else:
            note = f"no official checkout at {official}"
    ref = variants[-1] if variants[-1].name == "official" else variants[0]
    agree = {v.name: agreement(case, ref, v, sem, image, device) for v in variants if v is not ref}
    for name, diff in agree.items():
        ok = diff <= ATOL + RTOL  # outputs are tanh'd to [-1, 1]
        log(f"{case.key}: {name} vs {ref.name} max|Δ| = {diff:.2e} ({'agree' if ok else 'DIFFER'})")
    rows = []
    for mode, backward in (("forward", False), ("fwd+bwd", True)):
        fns = {v.name: _pass(case, v, sem, image, device, backward) for v in variants}
        rows.append(Row(case, mode, interleaved(fns, repeats, device, clock), agree, note))
        log(f"{case.key} {mode}: " + ", ".join(f"{k} {s:.3f}s" for k, s in rows[-1].seconds.items()))
    compiled = {k: s for k, s in COMPILE_SECONDS.items() if k.startswith(f"{case.method}.")}
    if compiled:
        rows[-1].note = (rows[-1].note + "; " if rows[-1].note else "") + ", ".join(
            f"compile {k} {s:.1f}s" for k, s in compiled.items())
    return rows


def format_table(rows: list[Row]) -> str:
    """Markdown table: seconds per variant and the ratios (> 1: gather faster)."""
    has_off = any("official" in r.seconds for r in rows)
    head = "| case | pass | dense (s) | gather (s) |" + (" official (s) |" if has_off else "") + " dense/gather |"
    head += " official/gather |" if has_off else ""
    lines = [head + " note |", "|" + "---|" * (head.count("|") - 1) + "---|"]
    for r in rows:
        s = r.seconds
        cells = [r.case.key + f" {r.case.size[1]}x{r.case.size[0]}", r.mode, f"{s['dense']:.3f}", f"{s['gather']:.3f}"]
        if has_off:
            cells.append(f"{s['official']:.3f}" if "official" in s else "-")
        cells.append(f"{s['dense'] / s['gather']:.2f}x")
        if has_off:
            cells.append(f"{s['official'] / s['gather']:.2f}x" if "official" in s else "-")
        cells.append(r.note)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from bench.config import parse_kv

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--official-root", action="append", default=[], metavar="DIR|REPO=PATH",
                    help="folder holding the official checkouts (SPADE, SEAN, OASIS, pix2pixHD, RESAIL-For-SIS) "
                    "or REPO=PATH for one; repeatable")
    ap.add_argument("--cases", default=",".join(c.key for c in CASES), help="comma-separated case keys")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds (median)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    ap.add_argument("--clock", choices=("wall", "process"), default="wall",
                    help="process: CPU time of this process (steadier on a shared machine; use with --threads 1)")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="resolution factor for quick checks (0.5: 128x128); timings are for the paper size at 1")
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="config overrides of the gather variant (bf16=true, channels_last=true, compile=true)")
    args = ap.parse_args(argv)
    device = bench_device(args.device, args.threads)
    keys = [k.strip() for k in args.cases.split(",") if k.strip()]
    unknown = [k for k in keys if k not in {c.key for c in CASES}]
    if unknown:
        raise BenchError(f"unknown case(s) {unknown}; known: {', '.join(c.key for c in CASES)}")
    roots = official_paths(args.official_root)
    clock = time.perf_counter if args.clock == "wall" else time.process_time

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    rows: list[Row] = []
    for case in (c for c in CASES if c.key in keys):
        path = roots.get(case.repo.lower(), roots.get(case.method)) if roots else None
        over: dict[str, Any] = dict(parse_kv(args.overrides))
        if args.scale != 1.0:
            case = Case(case.key, case.method, case.dataset, case.repo,
                        (round(case.size[0] * args.scale), round(case.size[1] * args.scale)))
            over.setdefault("crop_size", case.size[1])
            over.setdefault("load_size", case.size[1])
        rows += run_case(case, device=device, batch=args.batch, repeats=args.repeats, overrides=over,
                         official=path, clock=clock, log=log)
    threads = torch.get_num_threads() if device.type == "cpu" else "-"
    print(f"device={device} threads={threads} batch={args.batch} clock={args.clock} median of {args.repeats} "
          f"interleaved rounds, torch {torch.__version__}")
    print(format_table(rows))
    if roots:
        print("official imports patched: " + "; ".join(SHIMS.values()))
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except BenchError as e:
        print(f"error: {str(e).splitlines()[0]}", file=sys.stderr)
        raise SystemExit(1) from None
