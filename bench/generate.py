"""Generation: one PNG per label map, noise from (seed, image index) so batch size never matters."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.outputs import OutputDir, as_output_dir
from bench.seeding import image_seed
from bench.training.trainer import collate
from methods.base import Method


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [B,3,H,W] → uint8 [B,H,W,3] (the official ``tensor2im`` rounding)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * 255.0).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


GENERATED_KIND = "generated images"


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _planned_ids(dataset: Any) -> list[str] | None:
    """The sample ids of ``dataset`` without loading images, when the loader lists them (``.samples``)."""
    samples = getattr(dataset, "samples", None)
    if samples is None:
        return None
    ids = [getattr(s, "id", None) for s in samples]
    return [str(i) for i in ids] if all(isinstance(i, str) for i in ids) else None


def generate_split(
    method: Method,
    dataset: Any,
    out_dir: str | Path | OutputDir,
    *,
    seed: int = 0,
    batch_size: int = 8,
    samples: int = 1,
    progress: bool = True,
    transform_batch: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    stats_dataset: Any = None,
    overwrite: bool = False,
    dist: Any = None,
) -> Path:
    """Generate every sample of ``dataset`` into ``out_dir``; returns the folder.

    With ``samples == 1`` the files are ``<label stem>.png`` (uint8 RGB, the label map's size); with
    ``samples = K`` they are ``<stem>_s<k>.png`` and ``samples.json`` records the seed of each, so
    diversity can be scored. ``stats_dataset`` is what ``before_generate`` may use (OASIS re-estimates
    BatchNorm statistics on the training label maps, as the official code does); default: ``dataset``.

    ``out_dir`` follows :mod:`bench.outputs`: a missing/empty folder or an earlier sisbench output is
    used (its stale files removed), any other non-empty folder is refused before the model runs unless
    ``overwrite``; nothing sisbench did not write is ever deleted. Each PNG is written atomically and
    the folder's ``.sisbench-manifest.json`` says ``"complete": true`` once all are there. Pass an
    :class:`~bench.outputs.OutputDir` from :func:`~bench.outputs.prepare_output_dir` to check earlier.

    Under torchrun (``dist``: a :class:`~bench.training.distributed.Dist` of several ranks) the ranks share the
    work: rank 0 prepares the folder and claims every name, each rank generates whole batches of one process's
    order (:func:`~bench.training.distributed.shard_batches`) with the same per-image seeds and RNG state, so
    the files are the bytes one process writes, and rank 0 records them and completes the manifest.

    Raises:
        OutputDirError: ``out_dir`` holds files sisbench did not write (and not ``overwrite``).
    """
    if dist is not None and dist.enabled:
        return _generate_sharded(method, dataset, out_dir, seed=seed, batch_size=batch_size, samples=samples,
                                 progress=progress, transform_batch=transform_batch, stats_dataset=stats_dataset,
                                 overwrite=overwrite, ctx=dist)
    out = as_output_dir(out_dir, overwrite=overwrite, kind=GENERATED_KIND)
    planned = _planned_ids(dataset)
    if planned is not None:  # claim every name up front: a clash with a user's file fails now, not at the end
        out.claim(_output_names(planned, samples))
    method.train_mode(False)
    method.before_generate(stats_dataset if stats_dataset is not None else dataset)
    seeds_used: dict[str, list[int]] = {}
    n = len(dataset)
    bar = tqdm(total=n * samples, desc=f"generate {method.name}", file=sys.stderr, disable=not progress, leave=False)
    batches = [list(range(start, min(n, start + batch_size))) for start in range(0, n, batch_size)]
    for name, png, stem, image_seed_ in _generated(method, dataset, batches, seed=seed, samples=samples,
                                                  transform_batch=transform_batch, bar=bar):
        out.write_bytes(name, png)
        seeds_used.setdefault(stem, []).append(image_seed_)
    bar.close()
    if samples > 1:
        out.write_text("samples.json", json.dumps({"seed": seed, "samples": samples, "seeds": seeds_used}, indent=1))
    return out.finish()


def _output_names(ids: list[str], samples: int) -> list[str]:
    """Every file name a generation writes: ``<id>.png``, or ``<id>_s<k>.png`` and ``samples.json``."""
    if samples == 1:
        return [f"{i}.png" for i in ids]
    return [f"{i}_s{k}.png" for i in ids for k in range(samples)] + ["samples.json"]


def _generated(method: Method, dataset: Any, batches: list[list[int]], *, seed: int, samples: int,
               transform_batch: Callable[[dict[str, Any]], dict[str, Any]] | None,
               bar: Any) -> Iterator[tuple[str, bytes, str, int]]:
    """``(file name, PNG bytes, id, image seed)`` of each generated image of ``batches`` (dataset indices),
    noise for image ``i``'s sample ``k`` drawn from ``image_seed(seed + 7919 k, i)`` only."""
    for idx in batches:
        batch = collate([dataset[i] for i in idx])
        if transform_batch is not None:
            batch = transform_batch(batch)
        data = method.prepare(batch)
        for k in range(samples):
            seeds = [image_seed(seed + k * 7919, i) for i in idx]
            with torch.no_grad():
                images = to_uint8(method.generate(data, seeds))
            for j, img in enumerate(images):
                stem = batch["id"][j]
                yield (f"{stem}.png" if samples == 1 else f"{stem}_s{k}.png"), _png(img), stem, seeds[j]
            bar.update(len(idx))


def _generate_sharded(method: Method, dataset: Any, out_dir: str | Path | OutputDir, *, seed: int, batch_size: int,
                      samples: int, progress: bool, transform_batch: Callable[[dict[str, Any]], dict[str, Any]] | None,
                      stats_dataset: Any, overwrite: bool, ctx: Any) -> Path:
    """:func:`generate_split` shared by the ranks of ``ctx`` (see there). A loader that lists no sample ids
    (``.samples``) costs rank 0 one pass over the split to claim the names before any rank writes."""
    from bench.outputs import write_file_atomic
    from bench.seeding import rng_state, set_rng_state
    from bench.training.distributed import all_or_none, shard_batches

    n = len(dataset)
    out: OutputDir | None = None
    ids: list[str] = []
    with all_or_none(ctx):  # rank 0 prepares the folder and claims every name; a refusal stops every rank
        if ctx.is_main:
            out = as_output_dir(out_dir, overwrite=overwrite, kind=GENERATED_KIND)
            ids = _planned_ids(dataset) or [str(dataset[i]["id"]) for i in range(n)]
            out.claim(_output_names(ids, samples))
    folder = Path(ctx.broadcast(str(out.path) if out is not None else ""))
    set_rng_state(ctx.broadcast(rng_state()))  # one RNG state on every rank (OASIS's before_generate draws)
    method.train_mode(False)
    method.before_generate(stats_dataset if stats_dataset is not None else dataset)
    seeds_used: dict[str, list[int]] = {}
    written: list[str] = []
    mine = shard_batches(n, batch_size, ctx)
    with all_or_none(ctx):
        bar = tqdm(total=sum(map(len, mine)) * samples, desc=f"generate {method.name}", file=sys.stderr,
                   disable=not (progress and ctx.is_main), leave=False)
        for name, png, stem, image_seed_ in _generated(method, dataset, mine, seed=seed, samples=samples,
                                                      transform_batch=transform_batch, bar=bar):
            if out is not None:
                out.write_bytes(name, png)
            else:  # rank 0 claimed the name and hashes the file into its manifest below
                write_file_atomic(folder / name, lambda f, b=png: f.write(b))
                written.append(name)
            seeds_used.setdefault(stem, []).append(image_seed_)
        bar.close()
    gathered = ctx.gather((written, seeds_used))
    with all_or_none(ctx):  # rank 0 completes the manifest
        if out is not None:
            for names, _ in gathered[1:]:
                out.record(names)
            if samples > 1:
                merged = {stem: used for _, part in gathered for stem, used in part.items()}
                out.write_text("samples.json", json.dumps(
                    {"seed": seed, "samples": samples, "seeds": {i: merged[i] for i in ids if i in merged}}, indent=1))
            out.finish()
    return folder
