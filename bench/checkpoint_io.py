"""sisbench checkpoints: networks, optimizers, RNG states and iteration, written atomically; and the
state_dict helpers (``module.`` prefix, legacy spectral norm, finiteness) every loader shares.

A foundation module (it imports only :mod:`bench.cache` and :mod:`bench.errors`): the methods' official
checkpoint loaders, the weights registry and the trainer all use it."""

from __future__ import annotations

import io
import math
import zipfile
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
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


# --- state_dict helpers shared by the trainer, the official-checkpoint loader and the weights registry ---
def strip_module_prefix(sd: Mapping[str, Any]) -> Mapping[str, Any]:
    """Remove the ``module.`` prefix ``nn.DataParallel`` adds to every key (and to the metadata)."""
    if not sd or not all(k.startswith("module.") for k in sd):
        return sd
    out: OrderedDict[str, Any] = OrderedDict((k[len("module.") :], v) for k, v in sd.items())
    meta = getattr(sd, "_metadata", None)
    if meta is not None:
        new_meta = OrderedDict()
        for k, v in meta.items():
            if k == "module":
                new_meta[""] = v
            elif k.startswith("module."):
                new_meta[k[len("module.") :]] = v
        out._metadata = new_meta  # type: ignore[attr-defined]
    return out


def legacy_spectral_norm_keys(keys: Iterable[str]) -> dict[str, str]:
    """``{prefix.weight: prefix.weight_v}`` for modules saved in the pre-1.0 spectral-norm layout.

    That layout stores ``weight_orig``, ``weight_u`` and the derived ``weight`` but no ``weight_v``;
    torch's ``SpectralNorm`` load hook rebuilds ``weight_v`` from them during ``load_state_dict``.
    """
    keys = set(keys)
    out = {}
    for key in sorted(keys):
        if key.endswith(".weight") or key == "weight":
            p = key[: -len("weight")]
            if f"{p}weight_orig" in keys and f"{p}weight_u" in keys and f"{p}weight_v" not in keys:
                out[key] = f"{p}weight_v"
    return out


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every element of every floating-point tensor is finite (integer tensors always are).

    One fused multi-tensor pass per (device, dtype): ``torch._foreach_norm(ord=inf)`` is ``max |x|``,
    which is inf or NaN exactly when the tensor holds an inf or a NaN (no overflow: no squares are
    summed). It only reads the tensors; one host sync per device.
    """
    groups: dict[tuple[torch.device, torch.dtype], list[torch.Tensor]] = {}
    for t in tensors:
        if (t.is_floating_point() or t.is_complex()) and t.numel():
            groups.setdefault((t.device, t.dtype), []).append(t.detach())
    for group in groups.values():
        if not bool(torch.stack(torch._foreach_norm(group, math.inf)).isfinite().all()):
            return False
    return True


def first_non_finite(named: Iterable[tuple[str, torch.Tensor]]) -> tuple[str, str] | None:
    """The first ``(name, description)`` of a tensor holding inf/NaN, e.g. ``("x.running_var", "inf")``.

    The description is ``"nan"``, ``"inf"``/``"-inf"`` when every element is non-finite and of one
    kind, else e.g. ``"inf in 3 of 16 values"``. ``None`` when all are finite.
    """
    for name, t in named:
        if not (t.is_floating_point() or t.is_complex()) or not t.numel():
            continue
        t = t.detach()
        bad = ~torch.isfinite(t)
        n_bad = int(bad.sum())
        if not n_bad:
            continue
        vals = t[bad]
        kind = "nan" if bool(torch.isnan(vals).any()) else ("-inf" if bool((vals < 0).all()) else "inf")
        return name, kind if n_bad == t.numel() else f"{kind} in {n_bad} of {t.numel()} values"
    return None


def check_finite_state(state: Mapping[str, Any], path: str | Path, *, prefix: str = "", advice: str) -> None:
    """Refuse a state_dict (or a tree of them) holding a non-finite tensor; one line naming it.

    Args:
        state: ``{key: tensor}``, possibly nested (``{"netG": {...}}``); non-tensor leaves are ignored.
        path: The file it came from, for the message.
        prefix: Prepended to the key in the message (``"netG."``).
        advice: What the user should do, appended to the message.

    Raises:
        CheckpointError: ``"{path}: netG.x.running_var is inf; refused: {advice}"``.
    """
    named = list(_named_tensors(state, prefix))
    if all_finite(t for _, t in named):
        return
    name, what = first_non_finite(named) or ("a tensor", "non-finite")
    raise CheckpointError(f"{path}: {name} is {what}; refused to load a non-finite state: {advice}")


def _named_tensors(tree: Any, prefix: str) -> Iterator[tuple[str, torch.Tensor]]:
    if isinstance(tree, torch.Tensor):
        yield prefix.rstrip("."), tree
    elif isinstance(tree, Mapping):
        for k, v in tree.items():
            yield from _named_tensors(v, f"{prefix}{k}.")
    elif isinstance(tree, (list, tuple)):
        for i, v in enumerate(tree):
            yield from _named_tensors(v, f"{prefix}{i}.")
