"""One training loop for every method: seeding, batching, AMP, checkpoints, resume, NaN guard."""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.errors import CheckpointError, DataError, NonFiniteLossError
from bench.seeding import rng_state, seed_everything, set_rng_state
from bench.training.checkpoint import load_checkpoint, save_checkpoint
from methods.base import Method

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "latest.pth"


def collate(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack tensors, keep other fields as lists."""
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples]
        out[key] = torch.stack(values) if isinstance(values[0], torch.Tensor) else values
    return out


def batch_indices(n: int, batch_size: int, iteration: int, seed: int) -> list[int]:
    """Sample indices of an iteration: a seeded permutation per epoch, no state to carry on resume."""
    per_epoch = n // batch_size
    epoch, step = divmod(iteration, per_epoch)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 1_000_003 + epoch))
    return perm[step * batch_size : (step + 1) * batch_size].tolist()


def aug_seed(seed: int, iteration: int, j: int) -> int:
    return int(np.random.SeedSequence([seed, iteration, j]).generate_state(1)[0])


def total_iterations(method: Method, n_train: int) -> int:
    cfg = method.cfg
    if cfg.max_iters is not None:
        return cfg.max_iters
    return math.ceil((cfg.niter + cfg.niter_decay) * (n_train // cfg.batch_size))


@dataclass
class TrainResult:
    checkpoint: Path
    iterations: int
    resumed_from: int
    seconds: float
    images_per_second: float
    last_losses: dict[str, float]


def _checkpoint_payload(method: Method, optimizers: dict[str, torch.optim.Optimizer], it: int, seed: int,
                        scalers: dict[str, Any], dataset: str) -> dict[str, Any]:
    return {
        "method": method.name,
        "dataset": dataset,
        "config": asdict(method.cfg),
        "seed": seed,
        "iteration": it,
        "nets": {k: v.state_dict() for k, v in method.nets.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "scalers": {k: s.state_dict() for k, s in scalers.items()},
        "rng": rng_state(),
    }


def restore(method: Method, ckpt: dict[str, Any], path: Path) -> None:
    """Load every network of a sisbench checkpoint strictly; one line on a mismatch."""
    nets = ckpt.get("nets", {})
    missing_nets = sorted(set(method.nets) - set(nets))
    if missing_nets:
        raise CheckpointError(f"{path}: checkpoint has no {', '.join(missing_nets)} for method {method.name!r}")
    for name, net in method.nets.items():
        result = _strict_load(net, nets[name])
        if result:
            raise CheckpointError(f"{path}: {name} does not match the configuration ({result})")


def _strict_load(net: torch.nn.Module, state: dict[str, torch.Tensor]) -> str | None:
    mine = net.state_dict()
    missing = sorted(set(mine) - set(state))
    unexpected = sorted(set(state) - set(mine))
    wrong = sorted(k for k in set(mine) & set(state) if tuple(mine[k].shape) != tuple(state[k].shape))
    if missing or unexpected or wrong:
        parts = []
        if missing:
            parts.append(f"{len(missing)} missing keys e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected keys e.g. {', '.join(unexpected[:3])}")
        if wrong:
            k = wrong[0]
            parts.append(f"{len(wrong)} shape mismatches e.g. {k} {tuple(state[k].shape)} vs {tuple(mine[k].shape)}")
        return "; ".join(parts)
    net.load_state_dict(state, strict=True)
    return None


def train(
    method: Method,
    train_set: Any,
    out_dir: str | Path,
    *,
    seed: int = 0,
    dataset_name: str = "",
    resume: bool = True,
    stop_at: int | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``method`` on ``train_set``; checkpoints go to ``out_dir/latest.pth``.

    Args:
        method: A freshly built method (its networks are re-initialised from ``seed``'s state when resuming).
        train_set: Map-style dataset indexed as ``ds[i, aug_seed]``.
        out_dir: Where the rolling checkpoint lives; an existing one is resumed when ``resume``.
        seed: Seeds the RNGs, the data order and the augmentations.
        dataset_name: Recorded in the checkpoint.
        resume: Continue from ``out_dir/latest.pth`` if it exists.
        stop_at: Stop (with a checkpoint) after this many iterations, as an interruption would.
        progress: Show a progress bar on stderr.
    """
    cfg = method.cfg
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT_NAME
    n = len(train_set)
    if n < cfg.batch_size:
        raise DataError(f"the training split has {n} samples, fewer than batch_size={cfg.batch_size}")
    total = total_iterations(method, n)
    seed_everything(seed, deterministic=cfg.deterministic)
    optimizers = method.optimizers()
    use_amp = bool(cfg.amp) and method.device.type == "cuda"
    scalers = {k: torch.amp.GradScaler("cuda") for k in optimizers} if use_amp else {}

    start = 0
    if resume and ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.get("method") != method.name:
            raise CheckpointError(f"{ckpt_path}: checkpoint is for method {ckpt.get('method')!r}, not {method.name!r}")
        restore(method, ckpt, ckpt_path)
        for k, o in optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in scalers.items():
            if k in ckpt.get("scalers", {}):
                s.load_state_dict(ckpt["scalers"][k])
        set_rng_state(ckpt["rng"])
        start = int(ckpt["iteration"])
        log.info("resumed from %s at iteration %d", ckpt_path, start)
    end = total if stop_at is None else min(total, stop_at)
    method.train_mode(True)
    per_epoch = n // cfg.batch_size
    # parameters each step must not differentiate: the other optimizers' (their grads would be discarded)
    others = {
        g: [p for k, o in optimizers.items() if k != g for grp in o.param_groups for p in grp["params"]]
        for g in optimizers
    }
    losses_f: dict[str, float] = {}
    t0 = time.perf_counter()
    bar = tqdm(range(start, end), total=end, initial=start, desc=f"train {method.name}", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=False)
    for it in bar:
        lrs = method.learning_rates(it / per_epoch)
        if lrs:
            for k, lr in lrs.items():
                for g in optimizers[k].param_groups:
                    g["lr"] = lr
        idx = batch_indices(n, cfg.batch_size, it, seed)
        batch = collate([train_set[i, aug_seed(seed, it, j)] for j, i in enumerate(idx)])
        data = method.prepare(batch)
        losses_f = {}
        for group, loss_fn in (("G", method.generator_loss), ("D", method.discriminator_loss)):
            opt = optimizers[group]
            opt.zero_grad(set_to_none=True)
            frozen = [p for p in others[group] if p.requires_grad]
            for p in frozen:
                p.requires_grad_(False)
            try:
                with torch.autocast("cuda", dtype=torch.float16, enabled=use_amp):
                    losses = loss_fn(data)
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            total_loss = sum(losses.values())
            if not torch.isfinite(total_loss):
                bad = ", ".join(f"{k}={float(v):.4g}" for k, v in losses.items() if not torch.isfinite(v)) or "sum"
                kept = f"the last good checkpoint is {ckpt_path}" if ckpt_path.is_file() else "no checkpoint was written"
                raise NonFiniteLossError(
                    f"non-finite {group} loss at iteration {it} ({bad}); stopped, {kept}; try a lower lr or --set amp=false"
                )
            if use_amp:
                scalers[group].scale(total_loss).backward()
                scalers[group].step(opt)
                scalers[group].update()
            else:
                total_loss.backward()
                opt.step()
            losses_f.update({k: float(v.detach()) for k, v in losses.items()})
        method.after_step(it)
        done = it + 1
        if progress and (done % max(1, cfg.print_every) == 0 or done == end):
            rate = (done - start) * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)
            bar.set_postfix({**{k: f"{v:.3f}" for k, v in losses_f.items()}, "img/s": f"{rate:.1f}"}, refresh=False)
        if done == end or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0):
            save_checkpoint(ckpt_path, _checkpoint_payload(method, optimizers, done, seed, scalers, dataset_name))
    bar.close()
    if start >= end and not ckpt_path.is_file():
        save_checkpoint(ckpt_path, _checkpoint_payload(method, optimizers, start, seed, scalers, dataset_name))
    seconds = time.perf_counter() - t0
    return TrainResult(
        checkpoint=ckpt_path,
        iterations=end,
        resumed_from=start,
        seconds=seconds,
        images_per_second=(end - start) * cfg.batch_size / max(seconds, 1e-9),
        last_losses=losses_f,
    )
