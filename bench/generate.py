"""Generation: one PNG per label map, noise from (seed, image index) so batch size never matters."""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from bench.seeding import image_seed
from bench.training.trainer import collate
from methods.base import Method


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """[-1, 1] float [B,3,H,W] → uint8 [B,H,W,3] (the official ``tensor2im`` rounding)."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) / 2 * 255.0).round()
    return x.to(torch.uint8).permute(0, 2, 3, 1).numpy()


def generate_split(
    method: Method,
    dataset: Any,
    out_dir: str | Path,
    *,
    seed: int = 0,
    batch_size: int = 8,
    samples: int = 1,
    progress: bool = True,
    transform_batch: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    stats_dataset: Any = None,
) -> Path:
    """Generate every sample of ``dataset`` into ``out_dir`` (built in a temp folder, then renamed).

    With ``samples == 1`` the files are ``<label stem>.png``; with ``samples = K`` they are
    ``<stem>_s<k>.png`` and ``samples.json`` records the seed of each, so diversity can be scored.
    ``stats_dataset`` is what ``before_generate`` may use (OASIS re-estimates BatchNorm statistics on the
    training label maps, as the official code does); default: ``dataset``.
    """
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        method.train_mode(False)
        method.before_generate(stats_dataset if stats_dataset is not None else dataset)
        seeds_used: dict[str, list[int]] = {}
        n = len(dataset)
        bar = tqdm(total=n * samples, desc=f"generate {method.name}", file=sys.stderr, disable=not progress, leave=False)
        for start in range(0, n, batch_size):
            idx = list(range(start, min(n, start + batch_size)))
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
                    name = f"{stem}.png" if samples == 1 else f"{stem}_s{k}.png"
                    Image.fromarray(img).save(tmp / name)
                    seeds_used.setdefault(stem, []).append(seeds[j])
                bar.update(len(idx))
        bar.close()
        if samples > 1:
            (tmp / "samples.json").write_text(json.dumps({"seed": seed, "samples": samples, "seeds": seeds_used}, indent=1))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir
