"""Many processes, one run: torchrun / DistributedDataParallel (DDP) for training, sharding for generation and
evaluation.

One process without torchrun never touches anything here beyond :func:`current` (world size 1), so its
numerics are exactly those of the single-process trainer. Under ``torchrun --nproc_per_node N`` (or
``bench train --nproc N``, which starts torchrun) every process joins one process group (NCCL on CUDA,
gloo on CPU) and:

* ``batch_size`` stays the global batch, as in the official options: rank ``r`` takes the
  ``r``-th slice of ``batch_size / N`` samples of the iteration's seeded permutation
  (:func:`bench.training.trainer.batch_indices`), and each sample keeps the augmentation seed of its
  position in the global batch. That is what ``torch.utils.data.DistributedSampler`` does with a seeded,
  per-epoch reshuffled permutation, without the sampler's state: ``N`` ranks x ``B/N`` see exactly the
  samples one process x ``B`` sees, and a checkpoint resumes under any ``N`` dividing ``B``.
* The networks an optimizer updates are wrapped in :class:`~torch.nn.parallel.DistributedDataParallel`
  while that optimizer's loss runs (:class:`DDPNets`), so the gradients are averaged over ranks: with
  losses that are per-sample means (every method's are), ``N x B/N`` gives the gradient of ``1 x B``.
  The other networks run unwrapped (their parameters are frozen during that loss), which avoids DDP's
  "expected to have finished reduction" error that a frozen discriminator inside a DDP wrapper causes.
  Unused-parameter detection is on only for SEAN (absent classes leave ``fc_mu{j}`` without a gradient).
* ``param_free_norm="syncbatch"`` becomes :class:`torch.nn.SyncBatchNorm` on accelerators (torch's
  implementation refuses CPU tensors); ``"batch"`` stays per process, as the official ``spadebatch``.
* Each rank reseeds the global torch RNG from ``(seed, iteration, rank)`` before every iteration, so
  the noise a method draws (SPADE's VAE, OASIS's 3D noise) differs across ranks and a resumed run draws
  what an uninterrupted one draws.
* Rank 0 alone writes checkpoints, logs and progress bars; every guard that can stop training is agreed
  on by all ranks (:meth:`Dist.all_true`), so all stop together instead of hanging in a collective.

Generation and evaluation shard a split by whole batches (:func:`shard_batches`), so each batch is the
one a single process would run and the images are the same bytes.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from bench.errors import BenchError, CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: methods whose networks leave some parameters without a gradient in a step (DDP then has to search the
#: autograd graph each step, which costs time, so only where needed): SEAN's per-class ``fc_mu{j}`` of
#: classes absent from a batch
FIND_UNUSED_PARAMETERS = frozenset({"sean"})


@dataclass(frozen=True)
class Dist:
    """This process's place in the job: rank, world size, local rank (GPU index on its node), backend."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = "none"

    @property
    def enabled(self) -> bool:
        """More than one process: the collectives below talk to the others."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes checkpoints, records, logs and progress bars."""
        return self.rank == 0

    def device(self, device: str) -> str:
        """``cuda`` → ``cuda:<local rank>`` under torchrun; anything else unchanged."""
        if self.enabled and device == "cuda":
            return f"cuda:{self.local_rank}"
        return device

    def describe(self) -> dict[str, Any]:
        return {"world_size": self.world_size, "backend": self.backend}

    # --- collectives (no-ops for one process) ---------------------------------------------------
    def barrier(self) -> None:
        if self.enabled:
            torch.distributed.barrier()

    def all_true(self, ok: bool) -> bool:
        """Whether ``ok`` holds on every rank (one all-reduce of one number)."""
        if not self.enabled:
            return ok
        flag = torch.tensor([0.0 if ok else 1.0], device=self._comm_device())
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item() == 0.0)

    def mean(self, values: torch.Tensor) -> torch.Tensor:
        """The mean over ranks of a float tensor of the same shape on every rank (a non-finite value
        anywhere stays non-finite)."""
        if not self.enabled:
            return values
        t = values.detach().to(self._comm_device(), torch.float64).clone()
        torch.distributed.all_reduce(t)
        return (t / self.world_size).cpu()

    def gather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (picklable), in rank order, on every rank."""
        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        torch.distributed.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def _comm_device(self) -> torch.device:
        if self.backend == "nccl":
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")


SINGLE = Dist()


def current() -> Dist:
    """The process group this process belongs to, or one process (rank 0 of 1) when there is none."""
    dist = torch.distributed
    if not (dist.is_available() and dist.is_initialized()):
        return SINGLE
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(),
                local_rank=int(os.environ.get("LOCAL_RANK", "0")), backend=str(dist.get_backend()))


def launched_by_torchrun() -> bool:
    """Whether torchrun (or any launcher setting its variables) started this process with other ranks."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1 and "RANK" in os.environ


def init_from_env(device: str | None = None) -> Dist:
    """Join the process group torchrun describes in the environment (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
    ``MASTER_ADDR``/``MASTER_PORT``); one process without torchrun gets :data:`SINGLE` and nothing happens.

    Args:
        device: ``cuda``/``cuda:N`` selects NCCL and this rank's GPU (``LOCAL_RANK``); else gloo.

    Raises:
        ConfigError: ``cuda`` requested under torchrun with fewer visible GPUs than local ranks.
    """
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return current()
    if not launched_by_torchrun():
        return SINGLE
    local = int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = str(device or "").startswith("cuda")
    if use_cuda:
        if local >= torch.cuda.device_count():
            raise ConfigError(f"local rank {local} has no GPU ({torch.cuda.device_count()} visible); start at most "
                              f"{torch.cuda.device_count()} processes per node (--nproc_per_node)")
        torch.cuda.set_device(local)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    ctx = current()
    if not ctx.is_main:  # rank 0 alone logs; warnings and errors still show
        logging.getLogger("bench").setLevel(logging.WARNING)
    return ctx


# --- training ---------------------------------------------------------------------------------------
def divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def per_rank_batch(batch_size: int, ctx: Dist) -> int:
    """``batch_size / world_size``: ``batch_size`` is the global batch, as in the official options.

    Raises:
        ConfigError: it does not divide (one line naming both numbers and what would work).
    """
    if batch_size % ctx.world_size:
        up = -(-batch_size // ctx.world_size) * ctx.world_size
        raise everywhere(ConfigError(
            f"batch_size={batch_size} is the global batch and does not divide over {ctx.world_size} processes; "
            f"use --set batch_size={up} (a multiple of {ctx.world_size}) or "
            f"{', '.join(map(str, divisors(batch_size)))} processes"
        ), ctx)
    return batch_size // ctx.world_size


def rank_slice(indices: Sequence[int], ctx: Dist) -> tuple[list[int], int]:
    """This rank's part of an iteration's global batch and the position of its first sample in it.

    ``indices`` is the global batch of :func:`~bench.training.trainer.batch_indices` (length ``B``); rank
    ``r`` takes ``indices[r*B/N : (r+1)*B/N]``. The offset keeps each sample's augmentation seed (its global
    position), so the samples and their crops/flips are those of one process.
    """
    b = len(indices) // ctx.world_size
    start = ctx.rank * b
    return list(indices[start:start + b]), start


def iteration_seed(seed: int, iteration: int, rank: int) -> int:
    """The torch RNG seed of ``rank`` at ``iteration`` under DDP (stateless, so resuming redraws the same)."""
    return int(np.random.SeedSequence([seed, iteration, rank, 0xDD9]).generate_state(1)[0])


def reseed(seed: int, iteration: int, ctx: Dist) -> None:
    """Under DDP, seed this rank's global torch RNG (CPU and CUDA) for ``iteration``; one process: nothing."""
    if ctx.enabled:
        torch.manual_seed(iteration_seed(seed, iteration, ctx.rank))


def checkpoint_info(ctx: Dist, batch_size: int) -> dict[str, Any]:
    """What a checkpoint and a run record say about how training was split."""
    return {"world_size": ctx.world_size, "per_rank_batch": batch_size // ctx.world_size, "backend": ctx.backend}


def check_resume(ckpt: dict[str, Any], path: Any, batch_size: int, ctx: Dist) -> None:
    """Refuse, in one line, to resume a checkpoint under a world size that cannot split its global batch.

    A checkpoint resumes under any world size ``N`` dividing ``batch_size``: the data order, augmentation
    seeds and optimizer state do not depend on ``N``. Per-process BatchNorm (``param_free_norm=batch``, or
    ``syncbatch`` on CPU) then normalises over a different number of samples: a warning says so.

    Raises:
        CheckpointError: ``batch_size`` does not divide over ``ctx.world_size``.
    """
    info = ckpt.get("distributed") or {}
    was = int(info.get("world_size", 1))
    if was == ctx.world_size:
        return
    stored = (ckpt.get("config") or {}).get("batch_size", batch_size)
    if batch_size % ctx.world_size:
        ok = [str(d) for d in divisors(batch_size)]
        raise everywhere(CheckpointError(
            f"{path}: trained with {was} process(es) x batch {stored // max(was, 1)} (global batch {stored}); "
            f"{ctx.world_size} processes cannot split global batch {batch_size}: resume with {', '.join(ok)} "
            "processes (torchrun --nproc_per_node N, or bench train --nproc N)"
        ), ctx)
    norm = (ckpt.get("config") or {}).get("param_free_norm")
    if ctx.is_main and (norm == "batch" or (norm == "syncbatch" and info.get("backend") != "nccl")):
        log.warning("%s: trained with per-process BatchNorm over %d samples; resuming with %d process(es) "
                    "normalises over %d", path, stored // max(was, 1), ctx.world_size, batch_size // ctx.world_size)
    log.info("%s: resuming a %d-process checkpoint with %d process(es), global batch %d", path, was,
             ctx.world_size, batch_size)


def mean_losses(losses: dict[str, torch.Tensor], ctx: Dist) -> dict[str, float]:
    """The mean over ranks of each named scalar loss (one all-reduce): with per-sample-mean losses, the loss of
    the global batch. A non-finite loss on any rank makes the mean non-finite on every rank."""
    names = list(losses)
    values = ctx.mean(torch.stack([losses[k].detach().float().reshape(()).cpu() for k in names]))
    return {k: float(v) for k, v in zip(names, values.tolist())}


def first_bad(found: tuple[str, str] | None, ctx: Dist) -> tuple[str, str]:
    """The first non-finite tensor any rank found (``(name, "inf" | "NaN" ...)``), named with its rank under DDP;
    every rank calls this once the ranks agreed that one exists."""
    if not ctx.enabled:
        return found or ("a tensor", "non-finite")
    for rank, got in enumerate(ctx.gather(found)):
        if got is not None:
            return (got[0] if rank == 0 else f"{got[0]} (rank {rank})"), got[1]
    return "a tensor", "non-finite"


def local_rng(state: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's RNG state for this machine: the CUDA states of devices it does not have dropped (a
    checkpoint of an 8-GPU node resumes on one GPU, or on CPU)."""
    if "cuda" not in state:
        return state
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return {**state, "cuda": list(state["cuda"])[:n]} if n else {k: v for k, v in state.items() if k != "cuda"}


def sync_batchnorm(method: Any, trained: Sequence[str], ctx: Dist) -> list[str]:
    """Convert the BatchNorm layers of the trained networks to :class:`torch.nn.SyncBatchNorm` where the
    configuration says ``param_free_norm="syncbatch"`` and the networks are on an accelerator.

    The state_dict keys do not change (checkpoints stay loadable by one process). Returns the converted
    network names; on CPU, torch's SyncBatchNorm is unavailable and each process normalises over its own
    ``batch_size / N`` samples (a warning says so).
    """
    if not ctx.enabled or getattr(method.cfg, "param_free_norm", None) != "syncbatch":
        return []
    if method.device.type == "cpu":
        if ctx.is_main:
            log.warning("param_free_norm=syncbatch: torch's SyncBatchNorm needs an accelerator, so on CPU each of "
                        "the %d processes normalises over its own %d samples (--set param_free_norm=instance is "
                        "batch-independent)", ctx.world_size, method.cfg.batch_size // ctx.world_size)
        return []
    done = []
    for name in trained:
        net = method.nets[name]
        if any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in net.modules()):
            method.nets[name] = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)
            done.append(name)
    return done


def trained_networks(method: Any, optimizers: dict[str, torch.optim.Optimizer]) -> dict[str, list[str]]:
    """``{group: [network names]}``: the networks with a parameter in each optimizer."""
    out: dict[str, list[str]] = {}
    for group, opt in optimizers.items():
        ids = {id(p) for g in opt.param_groups for p in g["params"]}
        out[group] = [name for name, net in method.nets.items() if any(id(p) in ids for p in net.parameters())]
    return out


class DDPNets:
    """DDP wrappers of a method's networks, swapped into ``method.nets`` while one optimizer's loss runs.

    The methods call ``self.nets["netG"](...)``; inside :meth:`active` that name refers to the DDP wrapper,
    so the forward registers DDP's gradient hooks and the backward averages the gradients over ranks.
    Wrappers are built on first use and rebuilt if the set of trainable parameters changes (pix2pixHD's
    ``niter_fix_global``). One process: :meth:`active` changes nothing.
    """

    def __init__(self, method: Any, optimizers: dict[str, torch.optim.Optimizer], ctx: Dist) -> None:
        self.method, self.ctx = method, ctx
        self.groups = trained_networks(method, optimizers)
        self.find_unused = method.name in FIND_UNUSED_PARAMETERS
        self._wrappers: dict[str, tuple[tuple[bool, ...], torch.nn.Module]] = {}

    def _wrapper(self, name: str) -> torch.nn.Module | None:
        from torch.nn.parallel import DistributedDataParallel as DDP

        net = self.method.nets[name]
        key = tuple(p.requires_grad for p in net.parameters())
        if not any(key):
            return None
        cached = self._wrappers.get(name)
        if cached is None or cached[0] != key or cached[1].module is not net:
            dev = next(net.parameters()).device
            ids = [dev.index] if dev.type == "cuda" else None
            cached = (key, DDP(net, device_ids=ids, find_unused_parameters=self.find_unused))
            self._wrappers[name] = cached
        return cached[1]

    @contextmanager
    def active(self, group: str) -> Iterator[None]:
        if not self.ctx.enabled:
            yield
            return
        plain = self.method.nets
        swapped = dict(plain)
        for name in self.groups.get(group, []):
            wrapper = self._wrapper(name)
            if wrapper is not None:
                swapped[name] = wrapper
        self.method.nets = swapped
        try:
            yield
        finally:
            self.method.nets = plain


def agreed_error(exc: BaseException | None, ctx: Dist) -> BenchError | None:
    """Every rank's view of a step that may fail on some ranks only: the first failing rank's error (re-raised
    by all, marked ``all_ranks``), or None when all succeeded. One all-gather; one process: ``exc`` itself."""
    if not ctx.enabled:
        return exc if isinstance(exc, BenchError) or exc is None else None
    mine = None if exc is None else (type(exc).__name__, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    for rank, got in enumerate(ctx.gather(mine)):
        if got is not None:
            kind, msg = got
            cls = _error_class(kind)
            err = cls(msg if rank == 0 else f"rank {rank}: {msg}")
            err.all_ranks = True  # type: ignore[attr-defined]
            return err
    return None


def _error_class(name: str) -> type[BenchError]:
    import bench.errors as errors

    cls = getattr(errors, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, BenchError) else BenchError


@contextmanager
def all_or_none(ctx: Dist) -> Iterator[None]:
    """Run a block on every rank; if it raises on any rank, every rank raises that rank's error (one line),
    instead of the others waiting forever in their next collective. One process: nothing changes."""
    if not ctx.enabled:
        yield
        return
    try:
        yield
    except BenchError as e:
        err = agreed_error(e, ctx)
        raise (err or e) from None
    err = agreed_error(None, ctx)
    if err is not None:
        raise err


def everywhere(exc: BenchError, ctx: Dist) -> BenchError:
    """Mark an error that every rank raises alike (agreed on, or a function of the config and checkpoint only),
    so that rank 0 alone prints it."""
    if ctx.enabled:
        exc.all_ranks = True  # type: ignore[attr-defined]
    return exc


def settle_error(exc: BaseException, echo: Any) -> bool:
    """Under torchrun, an error every rank raised (:func:`everywhere`) is printed once: rank 0 calls ``echo()``,
    then all ranks meet in a barrier before exiting, so torchrun, which stops the others when one exits, cannot
    kill rank 0 before it printed. Returns whether the caller should exit 1 without printing; False for any
    other error (each rank prints its own) and for one process."""
    ctx = current()
    if not (ctx.enabled and getattr(exc, "all_ranks", False)):
        return False
    if ctx.is_main:
        echo()
    try:
        ctx.barrier()
    except Exception:  # noqa: BLE001 - a rank already gone: exit anyway
        pass
    return True


# --- generation and evaluation ------------------------------------------------------------------------
def shard_batches(n: int, batch_size: int, ctx: Dist) -> list[list[int]]:
    """This rank's batches of ``range(n)``: whole batches of one process's order, batch ``k`` to rank
    ``k mod N``, so every batch (and so every generated image and every feature) is the one a single process
    computes."""
    batches = [list(range(s, min(n, s + batch_size))) for s in range(0, n, batch_size)]
    return batches[ctx.rank::ctx.world_size]


def shard_indices(n: int, batch_size: int, ctx: Dist) -> list[int]:
    """The flat indices of :func:`shard_batches`."""
    return [i for b in shard_batches(n, batch_size, ctx) for i in b]


@contextmanager
def main_first(ctx: Dist) -> Iterator[None]:
    """Rank 0 runs the block first (filling a cache: the synthetic data, RESAIL's database), then the others
    (reading it). If rank 0 fails, it exits and torchrun stops the others. One process: nothing changes."""
    if not ctx.enabled:
        yield
        return
    if not ctx.is_main:
        ctx.barrier()
    yield
    if ctx.is_main:
        ctx.barrier()


def launch(nproc: int, argv: Sequence[str]) -> int:
    """Run ``python -m bench ARGV`` as ``nproc`` processes on this machine under torchrun (the shortcut behind
    ``bench train --nproc N``); returns the exit code: 0, 1 (a rank printed its one-line error), or the failing
    rank's other code (-9: killed by a signal).

    torchrun's ``--standalone`` rendezvous picks a free port. ``OMP_NUM_THREADS`` defaults to the cores this
    process may use divided by ``nproc`` (torchrun's own default is 1 thread per process).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // nproc)))
    args = get_args_parser().parse_args(["--standalone", "--nnodes", "1", "--nproc-per-node", str(nproc),
                                         "--module", "bench", *argv])
    quiet = logging.getLogger("torch.distributed.elastic")
    level = quiet.level
    quiet.setLevel(logging.CRITICAL)  # a failing rank prints its own line; torchrun's report would repeat it
    try:
        run(args)
    except ChildFailedError as e:
        rank, failure = e.get_first_failure()
        code = int(failure.exitcode)
        if code != 1:
            log.error("rank %d of %d exited with code %d%s", rank, nproc, code,
                      f" ({failure.signal_name()})" if code < 0 else "")
        return code if code != 0 else 1
    finally:
        quiet.setLevel(level)
    return 0
