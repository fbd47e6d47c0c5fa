"""Load released weights strictly: the authors' official files and sisbench's own checkpoints.

Formats recognised (all read with ``torch.load(weights_only=True)``):

* **sisbench** training checkpoints: ``{"format": "sisbench-checkpoint", "nets": {name: state_dict}, ...}``.
* **SPADE lineage** (SPADE, pix2pixHD, SEAN, RESAIL): a plain ``state_dict`` saved as
  ``<epoch>_net_<G|D|E>.pth``, e.g. ``ade20k_pretrained/latest_net_G.pth``.
* **OASIS**: a plain ``state_dict`` saved as ``<iter>_<G|D|EMA>.pth``, e.g. ``best_EMA.pth``; an EMA file
  goes into ``netEMA``, a ``_G`` file into ``netG`` and also ``netEMA`` (OASIS generates with netEMA).

A file saved from ``nn.DataParallel`` (every key starts with ``module.``) is unwrapped. The older
spectral-norm layout of PyTorch < 1.0 (``weight_orig``, ``weight_u`` and the derived ``weight``, no
``weight_v``) is converted by torch's own ``SpectralNorm`` load hook during ``load_state_dict``; BatchNorm
files without ``num_batches_tracked`` are completed by BatchNorm's hook. Everything else must match the
configured networks exactly (``strict=True``): the official pix2pixHD loader silently loads what fits, we
refuse with one line that lists what differs and which configuration was expected.

Method-specific behaviour lives in :data:`RULES` (file-name patterns, what to describe on a mismatch, what
to do after loading); other methods add theirs with :func:`register_rules`.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import copyreg
import pickle
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from bench.checkpoint_io import FORMAT as SISBENCH_FORMAT
from bench.checkpoint_io import (
    check_finite_state,
    legacy_spectral_norm_keys,
    read_checkpoint,
    strip_module_prefix,  # re-exported: moved to bench.checkpoint_io, shared with bench.weights
)
from bench.errors import CheckpointError

StateDict = Mapping[str, torch.Tensor]


@dataclass(frozen=True)
class CheckpointRules:
    """How one method's released files are named and described.

    Attributes:
        files: ``(file-name regex, net template)`` pairs tried in order; the template may use the regex's
            groups (``r"net\\1"``). A file whose name matches none is assigned by its keys.
        copy_to: After loading net ``k`` from an official file, also load the same weights into these nets.
        describe: The configuration a mismatching file was compared with (label channels and the options
            that change shapes), for the error message.
        hint: Given the file's state_dict, what it looks like it was trained with (or None).
        after_load: Called as ``after_load(method, loaded_nets, official)`` once loading succeeded.
    """

    files: tuple[tuple[str, str], ...] = ((r"(?:^|_)net_([A-Za-z]+)\.pth$", r"net\1"),)
    copy_to: Mapping[str, tuple[str, ...]] | None = None
    describe: Callable[[Any], str] | None = None
    hint: Callable[[Any, StateDict], str | None] | None = None
    after_load: Callable[[Any, list[str], bool], None] | None = None


def _mlp_in_channels(sd: StateDict) -> int | None:
    """Input channels of the first SPADE MLP: the label channels a SPADE-family generator was built for."""
    for key in sorted(sd):
        if key.endswith("mlp_shared.0.weight") and sd[key].dim() == 4:
            return int(sd[key].shape[1])
    return None


def _describe_spade(m: Any) -> str:
    from methods.spade import semantic_nc

    c = m.cfg
    return (
        f"semantic_nc {semantic_nc(c, m.spec.num_classes)} = {m.spec.num_classes} classes"
        f"{' + dontcare' if c.contain_dontcare_label else ''}{' + instance edge' if not c.no_instance else ''}, "
        f"ngf {c.ngf}, use_vae {c.use_vae}, num_upsampling_layers {c.num_upsampling_layers!r}"
    )


def _hint_spade(m: Any, sd: StateDict) -> str | None:
    n = _mlp_in_channels(sd)
    return f"the file's SPADE layers take {n} label channels" if n is not None else None


def _describe_pix2pixhd(m: Any) -> str:
    from methods.pix2pixhd import generator_input_nc

    c = m.cfg
    return (
        f"G input {generator_input_nc(c, m.spec.num_classes)} channels = {m.spec.num_classes} classes"
        f"{' + dontcare' if c.contain_dontcare_label else ''}{' + instance edge' if not c.no_instance else ''}"
        f"{f' + {c.feat_num} features' if c.instance_feat else ''}, netG {c.netG!r}, ngf {c.ngf}, num_D {c.num_D}"
    )


def _hint_pix2pixhd(m: Any, sd: StateDict) -> str | None:
    local = sorted({k.split(".")[0] for k in sd if re.match(r"model\d+_1\.", k)})
    first = "model1_1.1.weight" if local else "model.1.weight"
    parts = []
    if first in sd:
        parts.append(f"the file's generator takes {sd[first].shape[1]} input channels")
    if local and m.cfg.netG != "local":
        ngf = int(sd["model1_1.1.weight"].shape[0]) * 2 ** (len(local) - 1)
        parts.append(
            f"it is a LocalEnhancer: --set netG=local --set ngf={ngf} --set n_local_enhancers={len(local)}"
        )
    elif not local and m.cfg.netG == "local" and "model.1.weight" in sd:
        parts.append("it is a GlobalGenerator: --set netG=global")
    return "; ".join(parts) or None


def _describe_oasis(m: Any) -> str:
    c = m.cfg
    noise = 0 if c.no_3dnoise else c.z_dim
    return (
        f"{noise + m.semantic_nc} conditioning channels = {noise} noise + semantic_nc {m.semantic_nc} "
        f"({m.spec.num_classes} classes{' + unknown' if c.label_shift else ''}), channels_G {c.channels_G}, "
        f"crop_size {c.crop_size}"
    )


def _hint_oasis(m: Any, sd: StateDict) -> str | None:
    n = _mlp_in_channels(sd)
    if n is None:
        return None
    noise = 0 if m.cfg.no_3dnoise else m.cfg.z_dim
    return (
        f"the file's SPADE layers take {n} channels, i.e. semantic_nc {n - noise} with {noise} noise channels"
    )


def _after_load_oasis(m: Any, loaded: list[str], official: bool) -> None:
    # released files were saved right after update_EMA re-estimated the BatchNorm statistics
    if "netEMA" in loaded or "netG" in loaded:
        m.ema_stats_stale = not official


#: per-method rules; methods not listed use the SPADE-lineage default (``*_net_G.pth`` → netG)
RULES: dict[str, CheckpointRules] = {
    "spade": CheckpointRules(describe=_describe_spade, hint=_hint_spade),
    "sean": CheckpointRules(hint=_hint_spade),
    "resail": CheckpointRules(hint=_hint_spade),
    "pix2pixhd": CheckpointRules(describe=_describe_pix2pixhd, hint=_hint_pix2pixhd),
    "oasis": CheckpointRules(
        files=((r"(?:^|_)(G|D|EMA)\.pth$", r"net\1"),),
        copy_to={"netG": ("netEMA",)},
        describe=_describe_oasis,
        hint=_hint_oasis,
        after_load=_after_load_oasis,
    ),
}


def register_rules(method_name: str, rules: CheckpointRules) -> None:
    """Set how ``method_name``'s released files are recognised and described (replaces earlier rules)."""
    RULES[method_name] = rules


def rules_for(method: Any) -> CheckpointRules:
    return RULES.get(method.name, CheckpointRules())


# --- state_dict normalisation and comparison ---------------------------------------------------------
@dataclass(frozen=True)
class KeyDiff:
    missing: list[str]
    unexpected: list[str]
    wrong_shape: list[tuple[str, tuple[int, ...], tuple[int, ...]]]  # (key, file, expected)
    legacy_sn: int

    def __bool__(self) -> bool:
        return bool(self.missing or self.unexpected or self.wrong_shape)

    @property
    def overlap(self) -> int:
        return -(len(self.missing) + len(self.unexpected) + len(self.wrong_shape))

    def summary(self) -> str:
        def few(keys: list[str]) -> str:
            return ", ".join(keys[:3]) + (", ..." if len(keys) > 3 else "")

        parts = [f"{len(self.missing)} missing keys" + (f" ({few(self.missing)})" if self.missing else "")]
        parts.append(
            f"{len(self.unexpected)} unexpected" + (f" ({few(self.unexpected)})" if self.unexpected else "")
        )
        if self.wrong_shape:
            k, f, e = self.wrong_shape[0]
            parts.append(
                f"{len(self.wrong_shape)} with another shape (e.g. {k}: file {list(f)}, expected {list(e)})"
            )
        return ", ".join(parts)


def compare(net: nn.Module, sd: StateDict) -> KeyDiff:
    """What ``net.load_state_dict(sd, strict=True)`` would complain about, after the load hooks' fixes."""
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    legacy = legacy_spectral_norm_keys(sd)
    given = {legacy.get(k, k): tuple(v.shape) for k, v in sd.items()}
    missing = sorted(
        k
        for k in set(mine) - set(given)
        if not k.endswith("num_batches_tracked")  # added by BatchNorm's hook
    )
    unexpected = sorted(set(given) - set(mine))
    wrong = sorted(
        (k, given[k], mine[k])
        for k in set(mine) & set(given)
        if given[k] != mine[k] and k not in legacy.values()
    )
    return KeyDiff(missing, unexpected, wrong, len(legacy))


# --- loading ----------------------------------------------------------------------------------------
DIVERGED = "training had diverged when it was saved; use an earlier checkpoint or retrain with a lower lr"
CORRUPT = "the file is corrupt or was saved from a diverged run; download the released file again"


def _expected(method: Any, net_name: str) -> str:
    rules = rules_for(method)
    desc = rules.describe(method) if rules.describe else f"{method.spec.num_classes} classes"
    return f"{method.name} {net_name} for dataset {method.spec.name!r} ({desc})"


def _load_strict(method: Any, net_name: str, sd: StateDict, path: Path) -> KeyDiff:
    net = method.nets[net_name]
    diff = compare(net, sd)
    if diff:
        rules = rules_for(method)
        hint = rules.hint(method, sd) if rules.hint else None
        raise CheckpointError(
            f"{path}: does not fit {_expected(method, net_name)}: {diff.summary()}"
            f"{f'; {hint}' if hint else ''}; pass the --dataset and --set options it was trained with"
        )
    try:
        net.load_state_dict(sd, strict=True)  # type: ignore[arg-type]
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        detail = lines[1] if len(lines) > 1 else (lines[0] if lines else type(e).__name__)
        raise CheckpointError(f"{path}: does not fit {_expected(method, net_name)}: {detail[:300]}") from None
    return diff


def _net_from_name(method: Any, path: Path) -> str | None:
    for pattern, template in rules_for(method).files:
        match = re.search(pattern, path.name)
        if match:
            return match.expand(template)
    return None


def _net_from_keys(method: Any, sd: StateDict) -> str:
    """The net whose keys fit best; generator nets first on ties (netEMA and netG have the same keys)."""
    order = list(dict.fromkeys([*method.generator_keys(), *method.nets]))
    order = [n for n in order if n in method.nets]
    return max(order, key=lambda n: (compare(method.nets[n], sd).overlap, -order.index(n)))


def _as_state_dict(obj: Any, path: Path) -> StateDict:
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path}: not a state_dict (expected a mapping of parameter names to tensors, as the official "
            "latest_net_G.pth / best_EMA.pth files, or a sisbench checkpoint)"
        )
    return obj


def load_official(method: Any, path: str | Path, *, data: Any = None) -> dict[str, Any]:
    """Load a released or a sisbench checkpoint into ``method.nets`` with ``strict=True``.

    Args:
        method: A built :class:`methods.base.Method`; its config must describe the file's networks.
        path: An official file (``latest_net_G.pth``, ``best_EMA.pth``, ...) or a sisbench checkpoint.
        data: The file's content when the caller has already read it (``torch.load(weights_only=True)``).

    Returns:
        What was done: ``{"path", "format": "sisbench" | "official", "nets": [loaded nets],
        "copied_to": [nets that received a copy], "stripped_module_prefix": bool, "legacy_spectral_norm": int}``.

    Raises:
        CheckpointError: Unreadable file, unknown layout, keys/shapes that differ from the configuration
            (one line: the counts and a few missing/unexpected keys, and the expected configuration), or a
            tensor holding inf/NaN (one line naming it; nothing is loaded).
    """
    path = Path(path)
    if data is None:
        data = read_checkpoint(path)
    report: dict[str, Any] = {"path": str(path), "nets": [], "copied_to": [], "stripped_module_prefix": False}
    legacy = 0
    if isinstance(data, Mapping) and data.get("format") == SISBENCH_FORMAT:
        report["format"] = "sisbench"
        if data.get("method") not in (None, method.name):
            raise CheckpointError(
                f"{path}: a sisbench checkpoint of method {data['method']!r}, not {method.name!r}"
            )
        nets = data.get("nets") or {}
        unknown = sorted(set(nets) - set(method.nets))
        absent = sorted(set(method.generator_keys()) - set(nets))
        if unknown or absent:
            raise CheckpointError(
                f"{path}: networks {sorted(nets)} do not fit {method.name} for dataset {method.spec.name!r} "
                f"(expected {sorted(method.nets)}, generation needs {method.generator_keys()}); "
                "check the --set options it was trained with"
            )
        check_finite_state(nets, path, advice=DIVERGED)  # before any net is touched
        for name, sd in nets.items():
            legacy += _load_strict(
                method, name, strip_module_prefix(_as_state_dict(sd, path)), path
            ).legacy_sn
            report["nets"].append(name)
        official = False
    else:
        report["format"] = "official"
        sd = _as_state_dict(data, path)
        stripped = strip_module_prefix(sd)
        report["stripped_module_prefix"] = stripped is not sd
        net_name = _net_from_name(method, path)
        if net_name is not None and net_name not in method.nets:
            raise CheckpointError(
                f"{path}: the file name says it holds {net_name}, but {method.name} configured for dataset "
                f"{method.spec.name!r} has only {', '.join(sorted(method.nets))}; pass the --set options it was "
                "trained with (e.g. use_vae=true for a netE file), or the generator file"
            )
        if net_name is None:
            net_name = _net_from_keys(method, stripped)
        check_finite_state(stripped, path, prefix=f"{net_name}.", advice=CORRUPT)
        legacy += _load_strict(method, net_name, stripped, path).legacy_sn
        report["nets"].append(net_name)
        for other in (rules_for(method).copy_to or {}).get(net_name, ()):
            if other in method.nets:
                method.nets[other].load_state_dict(method.nets[net_name].state_dict(), strict=True)
                report["copied_to"].append(other)
        official = True
    report["legacy_spectral_norm"] = legacy
    after = rules_for(method).after_load
    if after is not None:
        after(method, report["nets"] + report["copied_to"], official)
    return report


# --- official option files: opt.txt / opt.pkl beside a released checkpoint ----------------------------
#: file names the official training scripts write next to their checkpoints (SPADE, SEAN, RESAIL and OASIS
#: write both; pix2pixHD only opt.txt); ``opt.pkl`` is preferred because it keeps the values' types
OPTION_FILES = ("opt.pkl", "opt.txt")
#: official option names that differ from sisbench's field names
OPTION_ALIASES = {
    "batchSize": "batch_size",  # SPADE lineage, pix2pixHD
    "loadSize": "load_size",  # pix2pixHD
    "fineSize": "crop_size",  # pix2pixHD
    "resize_or_crop": "preprocess_mode",  # pix2pixHD
    "num_epochs": "niter",  # OASIS
}
#: builtins an ``opt.pkl`` may name: value types only (no ``eval``, ``getattr``, ``__import__``, ...)
_SAFE_BUILTINS = frozenset(
    {"bool", "int", "float", "complex", "str", "bytes", "bytearray", "list", "tuple", "dict", "set", "frozenset",
     "slice", "range", "object"}
)  # fmt: skip


@dataclass(frozen=True)
class OfficialOptions:
    """The options an official training run saved beside its checkpoint.

    Attributes:
        path: The ``opt.pkl`` or ``opt.txt`` file read.
        values: ``{official option name: value}``; from ``opt.txt`` the values are parsed as Python literals
            where they are one (``"64"`` -> 64, ``"True"`` -> True), else kept as strings.
    """

    path: Path
    values: dict[str, Any]


class _OptionsUnpickler(pickle.Unpickler):
    """Unpickles an ``argparse.Namespace`` of plain values and refuses every other global.

    The Python documentation's "Restricting Globals" recipe: ``find_class`` is the only way a pickle
    reaches code, so allowing only ``argparse.Namespace``, value-type builtins and ``copyreg._reconstructor``
    (which protocol 0/1 pickles use to rebuild a Namespace, and which can only call those classes) makes
    loading a hostile ``opt.pkl`` unable to run anything.
    """

    def find_class(self, module: str, name: str) -> Any:
        module = {"__builtin__": "builtins", "copy_reg": "copyreg"}.get(module, module)  # Python 2 pickles
        if module == "argparse" and name == "Namespace":
            return argparse.Namespace
        if module == "builtins" and name in _SAFE_BUILTINS:
            return getattr(builtins, name)
        if module == "copyreg" and name == "_reconstructor":
            return copyreg._reconstructor  # type: ignore[attr-defined]
        raise pickle.UnpicklingError(f"it references {module}.{name}")


def load_opt_pkl(path: str | Path) -> dict[str, Any]:
    """The options of an official ``opt.pkl`` (a pickled ``argparse.Namespace``), without running its code.

    Only ``argparse.Namespace`` and builtin value types may appear in the pickle (:class:`_OptionsUnpickler`);
    anything else (``os.system``, ``builtins.eval``, a class of the training code) is refused before it is
    called.

    Returns:
        ``{option name: value}``.

    Raises:
        CheckpointError: The pickle names another global (one line naming it), is unreadable, or holds
            something other than a Namespace or a dict.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            obj = _OptionsUnpickler(f).load()
    except pickle.UnpicklingError as e:
        raise CheckpointError(
            f"{path}: refused to unpickle: {e}; an official opt.pkl holds only an argparse.Namespace of plain "
            "values (move the file away to use opt.txt or sisbench's preset)"
        ) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, OSError) as e:
        raise CheckpointError(f"{path}: not a readable options pickle ({type(e).__name__}: {str(e)[:120]})") from None
    values = vars(obj) if isinstance(obj, argparse.Namespace) else obj
    if not isinstance(values, dict) or not all(isinstance(k, str) for k in values):
        raise CheckpointError(f"{path}: expected a pickled argparse.Namespace of options, found {type(obj).__name__}")
    return dict(values)


_OPT_LINE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*:\s?(.*?)\s*(?:\[default:.*\])?\s*$")


def parse_opt_txt(text: str) -> dict[str, Any]:
    """The options of an official ``opt.txt``: ``key: value [default: ...]`` lines.

    SPADE/SEAN/RESAIL/OASIS write ``'{:>25}: {:<30}{}'.format(k, v, '\\t[default: d]')`` between
    ``----- Options -----`` / ``----- End -----`` rulers; pix2pixHD writes ``'%s: %s'``. Rulers and other
    lines without ``key:`` are skipped; the ``[default: ...]`` note is dropped. Values are parsed as
    Python literals where they are one (``64``, ``0.0002``, ``True``, ``None``, ``[0, 1]``), else kept
    as strings (``spectralspadesyncbatch3x3``, ``0,1``).
    """
    out: dict[str, Any] = {}
    for line in text.splitlines():
        match = _OPT_LINE.match(line)
        if match is None:
            continue
        key, raw = match.group(1), match.group(2).strip()
        try:
            out[key] = ast.literal_eval(raw) if raw else ""
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            out[key] = raw
    return out


def find_option_file(checkpoint: str | Path) -> Path | None:
    """``opt.pkl`` (preferred) or ``opt.txt`` beside ``checkpoint``; for OASIS's ``<name>/models/best_EMA.pth``
    layout also in ``<name>/``, where OASIS writes them. ``None`` when there is none."""
    checkpoint = Path(checkpoint)
    folders = [checkpoint.parent]
    if checkpoint.parent.name == "models":
        folders.append(checkpoint.parent.parent)
    for folder in folders:
        for name in OPTION_FILES:
            if (folder / name).is_file():
                return folder / name
    return None


def read_official_options(checkpoint: str | Path) -> OfficialOptions | None:
    """The official options saved beside ``checkpoint`` (:func:`find_option_file`), or ``None``.

    Raises:
        CheckpointError: a hostile or unreadable ``opt.pkl``, or an unreadable ``opt.txt``.
    """
    path = find_option_file(checkpoint)
    if path is None:
        return None
    if path.suffix == ".pkl":
        return OfficialOptions(path, load_opt_pkl(path))
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        raise CheckpointError(f"{path}: cannot read ({e.strerror or e})") from None
    return OfficialOptions(path, parse_opt_txt(text))


def _norm_fields(values: Mapping[str, Any], fields: Mapping[str, Any]) -> dict[str, Any]:
    """SPADE's ``norm_G='spectralspadesyncbatch3x3'`` / ``norm_D='spectralinstance'`` as our split fields."""
    out: dict[str, Any] = {}
    norm_g = values.get("norm_G")
    match = re.fullmatch(r"(spectral)?spade(syncbatch|batch|instance)\d+x\d+", str(norm_g)) if norm_g else None
    if match and "spectral_G" in fields and "param_free_norm" in fields:
        out["spectral_G"] = bool(match.group(1))
        out["param_free_norm"] = match.group(2)
    norm_d = values.get("norm_D")
    if isinstance(norm_d, str) and "spectral_D" in fields:
        out["spectral_D"] = norm_d.startswith("spectral")
    return out


def apply_official_options(cfg: Any, num_classes: int, options: OfficialOptions) -> tuple[Any, list[str]]:
    """``cfg`` (a preset) with the values of ``options`` for the fields it has, and what differed.

    Options are matched by name (official names are sisbench's field names), through
    :data:`OPTION_ALIASES` (``batchSize``, ``loadSize``, ...) and SPADE's ``norm_G``/``norm_D`` strings;
    options with no field (``gpu_ids``, ``name``, ...) are ignored. ``label_nc``, where the config has no
    such field, is compared with the dataset's class count.

    Returns:
        ``(config, mismatches)``: the config with the file's values, and ``"ngf=32 (preset 64)"``-style
        notes for every field whose value differs from ``cfg``'s (and a ``label_nc`` that differs from
        ``num_classes``).

    Raises:
        CheckpointError: the file's values give an invalid configuration (one line naming the file).
    """
    from bench.config import apply_overrides, config_fields
    from bench.errors import ConfigError

    fields = config_fields(type(cfg))
    wanted: dict[str, Any] = {}
    for key, value in options.values.items():
        name = OPTION_ALIASES.get(key, key)
        if name in fields and key not in ("norm_G", "norm_D"):
            wanted.setdefault(name, value)
    wanted.update(_norm_fields(options.values, fields))
    values: dict[str, Any] = {}
    notes: list[str] = []
    for name, raw in sorted(wanted.items()):
        try:
            value = getattr(apply_overrides(cfg, {name: raw}), name)
        except ConfigError:
            notes.append(f"{name}={raw!r} (not a valid value; kept preset {getattr(cfg, name)!r})")
            continue
        if value != getattr(cfg, name):
            values[name] = value
            notes.append(f"{name}={value!r} (preset {getattr(cfg, name)!r})")
    label_nc = options.values.get("label_nc")
    if "label_nc" not in fields and isinstance(label_nc, int) and label_nc != num_classes:
        notes.append(f"label_nc={label_nc} (the dataset has {num_classes} classes)")
    try:
        out = apply_overrides(cfg, values)
    except ConfigError as e:
        raise CheckpointError(f"{options.path}: its options give an invalid configuration ({e})") from None
    return out, notes
