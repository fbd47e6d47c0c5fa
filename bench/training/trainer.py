"""One training loop for every method: seeding, batching, AMP, checkpoints, resume, non-finite guards.

Guards (they only read tensors, so the numerics are those of an unguarded loop):

* the losses of each step must be finite (:class:`~bench.errors.NonFiniteLossError`);
* after each step every parameter and buffer of every network must be finite
  (:class:`NonFiniteStateError`): a BatchNorm ``running_var`` can overflow to inf while every loss is
  still finite, and a checkpoint of that state generates saturated images. The check is one fused
  ``max |x|`` per dtype (:func:`~bench.checkpoint_io.all_finite`), so ``latest.pth`` only ever
  holds a finite state (the optimizers' state is checked too, before each save);
* a loss whose magnitude passes :data:`LOSS_WARN_ABS` or :data:`LOSS_WARN_RATIO` times its running
  median gets one warning line per loss (:class:`LossWatch`), before anything becomes non-finite.
"""

from __future__ import annotations

import logging
import math
import statistics
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from bench.checkpoint_io import (
    all_finite,
    check_finite_state,
    first_non_finite,
    load_checkpoint,
    save_checkpoint,
)
from bench.errors import CheckpointError, DataError, NonFiniteLossError, NonFiniteStateError
from bench.seeding import rng_state, seed_everything, set_rng_state
from bench.training import distributed
from bench.training.log import append_entry, log_path, optimizer_lrs, truncate_from
from methods.base import Method

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "latest.pth"
DIVERGED = "training had diverged when it was saved; use an earlier checkpoint or retrain with a lower lr"

#: a loss with ``|loss|`` above this gets a warning (GAN, feature-matching, VGG and KL terms of a healthy run
#: stay below ~1e2)
LOSS_WARN_ABS = 1e4
#: ... and so does one above this many times the median ``|loss|`` of its last :data:`LOSS_WARN_WINDOW`
#: values, once :data:`LOSS_WARN_MIN_HISTORY` are known and ``|loss| > LOSS_WARN_FLOOR`` (a hinge term
#: hovering near 0 would otherwise warn on every ordinary fluctuation)
LOSS_WARN_RATIO = 100.0
LOSS_WARN_WINDOW = 100
LOSS_WARN_MIN_HISTORY = 20
LOSS_WARN_FLOOR = 10.0


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
                        scalers: dict[str, Any], dataset: str,
                        ctx: distributed.Dist = distributed.SINGLE) -> dict[str, Any]:
    """What ``latest.pth`` holds: with the resolved config, the dataset spec's identity and the class list, a
    checkpoint is enough to generate (:func:`bench.checkpoint_config.resolve_checkpoint`), no ``--set`` needed."""
    from bench.checkpoint_config import spec_identity

    return {
        "method": method.name,
        "dataset": dataset,
        "config": asdict(method.cfg),
        "config_class": type(method.cfg).__name__,
        "dataset_spec": spec_identity(method.spec),
        "classes": list(method.spec.class_names),
        "seed": seed,
        "iteration": it,
        "nets": {k: v.state_dict() for k, v in method.nets.items()},
        "optimizers": {k: o.state_dict() for k, o in optimizers.items()},
        "scalers": {k: s.state_dict() for k, s in scalers.items()},
        "rng": rng_state(),
        "distributed": distributed.checkpoint_info(ctx, method.cfg.batch_size),
    }


def restore(method: Method, ckpt: dict[str, Any], path: Path) -> None:
    """Load every network of a sisbench checkpoint strictly; one line on a mismatch.

    Raises:
        CheckpointError: A network is missing or does not match the configuration, or a tensor holds
            inf/NaN (``"{path}: netG.x.running_var is inf; refused ..."``); nothing is loaded then.
    """
    nets = ckpt.get("nets", {})
    missing_nets = sorted(set(method.nets) - set(nets))
    if missing_nets:
        raise CheckpointError(f"{path}: checkpoint has no {', '.join(missing_nets)} for method {method.name!r}")
    check_finite_state({name: nets[name] for name in method.nets}, path, advice=DIVERGED)
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


class LossWatch:
    """Warns (``logging.warning``, once per loss name) when a loss grows past a stated bound.

    The bound: ``|loss| > LOSS_WARN_ABS`` (1e4), or ``|loss| > LOSS_WARN_RATIO`` (100) times the median
    ``|loss|`` of that loss's last ``LOSS_WARN_WINDOW`` (100) iterations, once ``LOSS_WARN_MIN_HISTORY``
    (20) are known and ``|loss| > LOSS_WARN_FLOOR`` (10). Divergence usually shows there some iterations
    before anything becomes inf/NaN; training goes on unchanged.
    """

    def __init__(self) -> None:
        self.history: dict[str, deque[float]] = {}
        self.warned: set[str] = set()

    def update(self, losses: dict[str, float], iteration: int) -> None:
        """Record one iteration's losses (plain floats, any units) and warn on the first one past the bound."""
        for name, value in losses.items():
            hist = self.history.setdefault(name, deque(maxlen=LOSS_WARN_WINDOW))
            a = abs(value)
            if name not in self.warned and a > LOSS_WARN_FLOOR:
                why = None
                if a > LOSS_WARN_ABS:
                    why = f"|loss| > {LOSS_WARN_ABS:g}"
                elif len(hist) >= LOSS_WARN_MIN_HISTORY:
                    med = statistics.median(hist)
                    if a > LOSS_WARN_RATIO * med:
                        why = f"more than {LOSS_WARN_RATIO:g}x its median {med:.3g} over the last {len(hist)} iterations"
                if why is not None:
                    self.warned.add(name)
                    log.warning(
                        "loss %s = %.4g at iteration %d (%s): training may be diverging; consider a lower lr "
                        "(shown once per loss)", name, value, iteration, why,
                    )
            hist.append(a)


def _named_state(method: Method) -> Iterator[tuple[str, torch.Tensor]]:
    """Every parameter and buffer of every network, named ``netG.head_0.norm_0.param_free_norm.running_var``."""
    for net_name, net in method.nets.items():
        for key, p in net.named_parameters():
            yield f"{net_name}.{key}", p
        for key, b in net.named_buffers():
            yield f"{net_name}.{key}", b


def _named_optimizer_state(method: Method, optimizers: dict[str, torch.optim.Optimizer]) -> Iterator[tuple[str, torch.Tensor]]:
    names = {id(p): n for n, p in _named_state(method)}
    for group, opt in optimizers.items():
        for p, state in opt.state.items():
            for key, t in state.items():
                if isinstance(t, torch.Tensor):
                    yield f"the {group} optimizer's {key} of {names.get(id(p), 'a parameter')}", t


def _kept(ckpt_path: Path, saved_at: int | None) -> str:
    if saved_at is not None:
        return f"the last good checkpoint is {ckpt_path} (iteration {saved_at})"
    return f"{ckpt_path} was left as it was" if ckpt_path.is_file() else "no checkpoint was written"


def _lower_lr(method: Method) -> str:
    lr = getattr(method.cfg, "lr", None)
    return f"try a lower lr (e.g. --set lr={lr / 10:g})" if isinstance(lr, float) else "try a lower lr"


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

    Under torchrun (a process group is initialised, :mod:`bench.training.distributed`) ``batch_size`` is the
    global batch: each rank trains on its ``batch_size / world_size`` slice of the same samples through DDP,
    rank 0 alone writes the checkpoint and shows progress, and every guard below stops all ranks together.
    One process runs exactly the single-process loop.

    Returns:
        Where the checkpoint is, the iterations done, the speed (images/s over all ranks) and the last losses
        (under DDP their mean over ranks, i.e. the loss of the global batch).

    Raises:
        DataError: Fewer training samples than ``batch_size``.
        ConfigError: ``batch_size`` does not divide over the processes.
        CheckpointError: The checkpoint to resume is unreadable, of another method, or holds inf/NaN, or was
            written under another world size that cannot split ``batch_size``.
        NonFiniteLossError: A loss became inf/NaN; stopped before ``latest.pth`` was overwritten.
        NonFiniteStateError: A parameter or buffer (e.g. a BatchNorm ``running_var``) became inf/NaN;
            stopped before ``latest.pth`` was overwritten; the message names the tensor and iteration.
    """
    cfg = method.cfg
    out_dir = Path(out_dir)
    ckpt_path = out_dir / CHECKPOINT_NAME
    n = len(train_set)
    if n < cfg.batch_size:
        raise DataError(f"the training split has {n} samples, fewer than batch_size={cfg.batch_size}")
    ctx = distributed.current()
    resuming = resume and ckpt_path.is_file()
    if not resuming:
        distributed.per_rank_batch(cfg.batch_size, ctx)
    total = total_iterations(method, n)
    seed_everything(seed, deterministic=cfg.deterministic)
    if ctx.enabled:  # before the optimizers exist: SyncBatchNorm shares the BatchNorm tensors
        distributed.sync_batchnorm(method, [k for k in method.nets if k != "netEMA"], ctx)
    optimizers = method.optimizers()
    ddp = distributed.DDPNets(method, optimizers, ctx)
    amp_dtype = torch.bfloat16 if getattr(cfg, "bf16", False) else torch.float16  # bf16: no loss scaling
    use_amp = (bool(cfg.amp) or amp_dtype == torch.bfloat16) and method.device.type == "cuda"
    if (getattr(cfg, "bf16", False) or cfg.amp) and not use_amp and ctx.is_main:
        log.warning("%s=true applies on CUDA only: this %s run trains in float32 (the field stays in the config "
                    "and the run id)", "bf16" if getattr(cfg, "bf16", False) else "amp", method.device.type)
    scalers = {k: torch.amp.GradScaler("cuda") for k in optimizers} if use_amp and amp_dtype == torch.float16 else {}

    start = 0
    saved_at: int | None = None  # iteration of the last finite checkpoint at ckpt_path (this run's or resumed)
    if resuming:
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.get("method") != method.name:
            raise CheckpointError(f"{ckpt_path}: checkpoint is for method {ckpt.get('method')!r}, not {method.name!r}")
        distributed.check_resume(ckpt, ckpt_path, cfg.batch_size, ctx)
        distributed.per_rank_batch(cfg.batch_size, ctx)
        restore(method, ckpt, ckpt_path)
        check_finite_state(ckpt.get("optimizers", {}), ckpt_path, prefix="optimizers.", advice=DIVERGED)
        for k, o in optimizers.items():
            o.load_state_dict(ckpt["optimizers"][k])
        for k, s in scalers.items():
            if k in ckpt.get("scalers", {}):
                s.load_state_dict(ckpt["scalers"][k])
        set_rng_state(distributed.local_rng(ckpt["rng"]))  # the CUDA states of the devices this machine has
        start = int(ckpt["iteration"])
        saved_at = start
        log.info("resumed from %s at iteration %d", ckpt_path, start)
    if ctx.is_main:  # rank 0 alone writes the log
        truncate_from(log_path(out_dir), start)  # train_log.jsonl: steps >= start are redone and logged anew
    end = total if stop_at is None else min(total, stop_at)
    method.train_mode(True)
    per_epoch = n // cfg.batch_size
    # parameters each step must not differentiate: the other optimizers' (their grads would be discarded)
    others = {
        g: [p for k, o in optimizers.items() if k != g for grp in o.param_groups for p in grp["params"]]
        for g in optimizers
    }
    losses_f: dict[str, float] = {}
    watch = LossWatch()
    t0 = time.perf_counter()
    progress = progress and ctx.is_main
    bar = tqdm(range(start, end), total=end, initial=start, desc=f"train {method.name}", file=sys.stderr,
               disable=not progress, dynamic_ncols=True, leave=False)
    for it in bar:
        lrs = method.learning_rates(it / per_epoch)
        if lrs:
            for k, lr in lrs.items():
                for g in optimizers[k].param_groups:
                    g["lr"] = lr
        idx = batch_indices(n, cfg.batch_size, it, seed)
        if ctx.enabled:  # this rank's slice; each sample keeps the augmentation seed of its global position
            distributed.reseed(seed, it, ctx)
            idx, offset = distributed.rank_slice(idx, ctx)
            batch = collate([train_set[i, aug_seed(seed, it, offset + j)] for j, i in enumerate(idx)])
        else:
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
                with ddp.active(group), torch.autocast("cuda", dtype=amp_dtype, enabled=use_amp):
                    losses = loss_fn(data)
            finally:
                for p in frozen:
                    p.requires_grad_(True)
            total_loss = sum(losses.values())
            if ctx.enabled:  # the global batch's losses; a non-finite one on any rank stops every rank here
                means = distributed.mean_losses(losses, ctx)
                if not all(math.isfinite(v) for v in means.values()):
                    bad = ", ".join(f"{k}={v:.4g}" for k, v in means.items() if not math.isfinite(v))
                    raise distributed.everywhere(NonFiniteLossError(
                        f"non-finite {group} loss at iteration {it} ({bad}); stopped, "
                        f"{_kept(ckpt_path, saved_at)}; {_lower_lr(method)} or --set amp=false"
                    ), ctx)
            elif not torch.isfinite(total_loss):
                bad = ", ".join(f"{k}={float(v.detach()):.4g}" for k, v in losses.items() if not torch.isfinite(v))
                raise NonFiniteLossError(
                    f"non-finite {group} loss at iteration {it} ({bad or 'sum'}); stopped, "
                    f"{_kept(ckpt_path, saved_at)}; {_lower_lr(method)} or --set amp=false"
                )
            if scalers:
                scalers[group].scale(total_loss).backward()
                scalers[group].step(opt)
                scalers[group].update()
            else:
                total_loss.backward()
                opt.step()
            losses_f.update(means if ctx.enabled else {k: float(v.detach()) for k, v in losses.items()})
        method.after_step(it)
        # reads only; one fused max|x| per dtype (~1 ms per step on the tiny CPU config, see the module doc)
        if not ctx.all_true(all_finite(t for _, t in _named_state(method))):
            name, what = distributed.first_bad(first_non_finite(_named_state(method)), ctx)
            raise distributed.everywhere(NonFiniteStateError(
                f"{name} is {what} at iteration {it} (the losses were still finite); "
                f"stopped, {_kept(ckpt_path, saved_at)}; {_lower_lr(method)}"
            ), ctx)
        if ctx.is_main:  # the same global-batch losses on every rank: rank 0 alone warns
            watch.update(losses_f, it)
        done = it + 1
        if ctx.is_main and (done % max(1, cfg.print_every) == 0 or done == end):
            append_entry(log_path(out_dir), it, losses_f, optimizer_lrs(optimizers))
        if progress and (done % max(1, cfg.print_every) == 0 or done == end):
            rate = (done - start) * cfg.batch_size / max(time.perf_counter() - t0, 1e-9)  # global batch
            bar.set_postfix({**{k: f"{v:.3f}" for k, v in losses_f.items()}, "img/s": f"{rate:.1f}"}, refresh=False)
        if done == end or (cfg.checkpoint_every and done % cfg.checkpoint_every == 0):
            if not ctx.all_true(all_finite(t for _, t in _named_optimizer_state(method, optimizers))):
                name, what = distributed.first_bad(first_non_finite(_named_optimizer_state(method, optimizers)), ctx)
                raise distributed.everywhere(NonFiniteStateError(
                    f"{name} is {what} at iteration {it}; stopped, {_kept(ckpt_path, saved_at)}; {_lower_lr(method)}"
                ), ctx)
            if ctx.is_main:
                save_checkpoint(ckpt_path, _checkpoint_payload(method, optimizers, done, seed, scalers, dataset_name,
                                                               ctx))
            ctx.barrier()  # nobody reads or resumes a checkpoint rank 0 is still writing
            saved_at = done
    bar.close()
    if ctx.broadcast(start >= end and not ckpt_path.is_file()):  # rank 0's view: it may write the file now
        if ctx.is_main:
            save_checkpoint(ckpt_path, _checkpoint_payload(method, optimizers, start, seed, scalers, dataset_name, ctx))
        ctx.barrier()
    seconds = time.perf_counter() - t0
    return TrainResult(
        checkpoint=ckpt_path,
        iterations=end,
        resumed_from=start,
        seconds=seconds,
        images_per_second=(end - start) * cfg.batch_size / max(seconds, 1e-9),
        last_losses=losses_f,
    )
