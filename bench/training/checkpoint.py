"""sisbench checkpoints: networks, optimizers, RNG states and iteration, written atomically."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import torch

from bench.cache import atomic_write
from bench.errors import CheckpointError

FORMAT = "sisbench-checkpoint"
VERSION = 1


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus the format tag) atomically: a reader never sees a partial file."""
    data = {"format": FORMAT, "version": VERSION, **payload}
    buf = io.BytesIO()
    torch.save(data, buf)
    return atomic_write(path, lambda f: f.write(buf.getbuffer()))


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load any checkpoint file safely (``weights_only=True``); one-line errors for unreadable files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first})") from None
    except Exception as e:  # pickle.UnpicklingError: corrupt bytes, or foreign objects under weights_only
        text = str(e)
        if "Unsupported global" in text:
            what = text.split("Unsupported global:", 1)[-1].strip().splitlines()[0][:120]
            raise CheckpointError(
                f"{path}: refused to load: it contains Python objects ({what}); only tensors and plain data are accepted"
            ) from None
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint (corrupt or truncated)") from None


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """A sisbench training checkpoint (our own format)."""
    data = read_checkpoint(path)
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a sisbench checkpoint (official release files are loaded with --checkpoint by `bench run`/`generate`)"
        )
    if data.get("version", 0) > VERSION:
        raise CheckpointError(f"{path}: checkpoint version {data['version']} is newer than this sisbench ({VERSION})")
    return data
