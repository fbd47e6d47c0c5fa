"""Where the cells of an ablation grid run: each uncached cell as its own job, through submitit (Slurm's standard
Python launcher), on this machine (``local``: up to ``jobs`` processes at once) or on a Slurm cluster (``slurm``:
one job array, ``jobs`` of its tasks at once).

A job runs :func:`run_cell`, i.e. :func:`bench.api.run` with the cell's arguments, and writes its record into the
same run store as an in-process cell would; the ablation manifest lists it and ``bench report`` collects it. A
Slurm job given several GPUs starts one task per GPU and trains with DDP: submitit's
``TorchDistributedEnvironment`` exports the torchrun variables that :mod:`bench.training.distributed` reads.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.errors import BenchError, ConfigError

log = logging.getLogger(__name__)

#: the launchers ``bench ablate --launcher`` takes; ``debug`` (submitit's in-process executor) is for tests
LAUNCHERS = ("local", "slurm", "debug")
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Launcher:
    """How to run the jobs.

    Args:
        kind: ``local``, ``slurm`` or ``debug``.
        folder: submitit's folder (job pickles, sbatch scripts, logs ``%j_0_log.out/err``).
        jobs: ``local``: cells running at once; ``slurm``: array tasks running at once.
        partition: Slurm partition (``#SBATCH --partition``); None: the cluster's default.
        gpus_per_job: GPUs per cell (Slurm ``--gpus-per-node``, one task each; >1 trains with DDP).
        time_min: Time limit of each job in minutes (Slurm ``--time``; local jobs are killed after it too).
        cpus_per_task: Slurm ``--cpus-per-task``; None: the cluster's default.
        slurm_args: Any other ``#SBATCH --KEY=VALUE`` lines (``--slurm-arg account=lab``).
    """

    kind: str
    folder: Path
    jobs: int = 1
    partition: str | None = None
    gpus_per_job: int = 1
    time_min: int = 3 * 24 * 60
    cpus_per_task: int | None = None
    slurm_args: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in LAUNCHERS:
            raise ConfigError(f"unknown launcher {self.kind!r}; use one of {', '.join(LAUNCHERS[:2])}")
        if self.jobs < 1 or self.gpus_per_job < 0 or self.time_min < 1:
            raise ConfigError(f"need --jobs >= 1, --gpus-per-job >= 0 and --time-limit >= 1 minute, got "
                              f"{self.jobs}, {self.gpus_per_job}, {self.time_min}")


def parse_time_limit(text: str) -> int:
    """Minutes from ``90``, ``1:30:00`` (H:MM:SS), ``2-00:00:00`` (D-HH:MM:SS) or ``45:00`` (MM:SS).

    Raises:
        ConfigError: anything else (one line).
    """
    try:
        days, _, rest = text.rpartition("-") if "-" in text else ("0", "", text)
        parts = [int(p) for p in rest.split(":")]
        if len(parts) == 1:
            h, m, s = 0, parts[0], 0
        elif len(parts) == 2:
            h, m, s = 0, parts[0], parts[1]
        elif len(parts) == 3:
            h, m, s = parts
        else:
            raise ValueError
        minutes = int(days) * 1440 + h * 60 + m + (1 if s else 0)
    except ValueError:
        raise ConfigError(f"--time-limit {text!r}: use minutes (90) or Slurm's [D-]HH:MM:SS (1:30:00)") from None
    if minutes < 1:
        raise ConfigError(f"--time-limit {text!r} is under a minute")
    return minutes


def parse_slurm_args(items: Sequence[str]) -> dict[str, str]:
    """``["account=lab", "qos=high"]`` → ``{"account": "lab", "qos": "high"}`` (``#SBATCH --account=lab``).

    Raises:
        ConfigError: an item without ``=`` or a key given twice.
    """
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip().lstrip("-")
        if not sep or not key:
            raise ConfigError(f"--slurm-arg expects KEY=VALUE (an sbatch option without its --), got {item!r}")
        if key in out:
            raise ConfigError(f"--slurm-arg names {key!r} twice")
        out[key] = value.strip()
    return out


def executor(launcher: Launcher) -> Any:
    """The submitit executor of ``launcher``, its parameters set."""
    import submitit

    tasks = max(1, launcher.gpus_per_job)
    if launcher.kind == "slurm":
        ex = submitit.SlurmExecutor(folder=launcher.folder)
        params: dict[str, Any] = {
            "job_name": "sisbench", "time": launcher.time_min, "ntasks_per_node": tasks,
            "array_parallelism": launcher.jobs, "additional_parameters": dict(launcher.slurm_args),
        }
        if launcher.gpus_per_job:
            params["gpus_per_node"] = launcher.gpus_per_job
        if launcher.partition:
            params["partition"] = launcher.partition
        if launcher.cpus_per_task:
            params["cpus_per_task"] = launcher.cpus_per_task
        ex.update_parameters(**params)
        return ex
    if launcher.kind == "local":
        ex = submitit.LocalExecutor(folder=launcher.folder)
        ex.update_parameters(timeout_min=launcher.time_min, tasks_per_node=1, gpus_per_node=0)
        return ex
    return submitit.DebugExecutor(folder=launcher.folder)


def run_cell(kwargs: dict[str, Any]) -> dict[str, Any]:
    """One cell, as a job: ``bench.api.run(**kwargs)``. Returns ``{"record": RunRecord}`` or, for a BenchError,
    ``{"error": its first line}`` (the launcher reports it as one line)."""
    import submitit

    try:
        if submitit.JobEnvironment().num_tasks > 1:  # a Slurm job with several GPUs: one DDP rank per task
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    except RuntimeError:  # not inside a submitit job (the debug executor): one process
        pass
    from bench import api

    try:
        return {"record": api.run(**{**kwargs, "progress": False})}
    except BenchError as e:
        return {"error": (str(e).splitlines() or [type(e).__name__])[0]}


def submit_slurm(ex: Any, calls: Sequence[dict[str, Any]]) -> list[Any]:
    """Submit every call as one task of a Slurm job array (``ex``: :func:`executor` of a ``slurm`` launcher)."""
    with ex.batch():
        jobs = [ex.submit(run_cell, c) for c in calls]
    if jobs:
        log.info("submitted %d cell(s) as Slurm job array %s", len(jobs), str(jobs[0].job_id).split("_")[0])
    return jobs


def collect(jobs: Sequence[Any], labels: Sequence[str]) -> list[Any]:
    """Wait for ``jobs`` and return their records in order.

    Raises:
        BenchError: a cell failed: one line naming the cell, its error (or where its log is) and how many failed.
    """
    out, failed = [], []
    for job, label in zip(jobs, labels):
        try:
            got = job.result()
        except Exception as e:  # noqa: BLE001 - submitit's FailedJobError/UncompletedJobError: point at the log
            got = {"error": f"job {job.job_id} failed ({type(e).__name__}); see {job.paths.stderr}"}
        if "error" in got:
            failed.append(f"cell {label}: {got['error']}")
            out.append(None)
        else:
            out.append(got["record"])
    if failed:
        raise BenchError(f"{failed[0]}" + (f" (and {len(failed) - 1} more failed cells)" if len(failed) > 1 else ""))
    return out


def run_cells(launcher: Launcher, calls: Sequence[dict[str, Any]], labels: Sequence[str]) -> list[Any]:
    """Run each call (the keyword arguments of :func:`bench.api.run`) as its own job; their records, in order.

    ``local`` and ``debug`` keep at most ``launcher.jobs`` jobs running; ``slurm`` submits one array and lets
    Slurm run ``launcher.jobs`` tasks at once. Every job is waited for before a failure is reported.
    """
    ex = executor(launcher)
    if launcher.kind == "slurm":
        return collect(submit_slurm(ex, calls), labels)
    gpus = local_gpus() if launcher.kind == "local" and launcher.gpus_per_job else 0
    jobs: list[Any] = [None] * len(calls)
    pending = list(range(len(calls)))
    running: dict[int, int] = {}  # cell -> its GPU (local jobs on a GPU machine get one each, round the free ones)
    while pending or running:
        while pending and len(running) < launcher.jobs:
            i = pending.pop(0)
            if gpus:
                slot = min(set(range(gpus)) - set(running.values()), default=len(running) % gpus)
                ex.update_parameters(gpus_per_node=1, visible_gpus=[slot])
            jobs[i] = ex.submit(run_cell, calls[i])
            running[i] = slot if gpus else -1
            log.info("cell %s: job %s", labels[i], jobs[i].job_id)
        running = {i: g for i, g in running.items() if not jobs[i].done()}
        if running:
            time.sleep(POLL_SECONDS)
    return collect(jobs, labels)


def local_gpus() -> int:
    """CUDA devices on this machine (0 without torch's CUDA)."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
