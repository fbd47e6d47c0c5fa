"""What a checkpoint was made with: its method, dataset spec and configuration, and what ``--set`` may change.

A sisbench checkpoint (:func:`bench.training.trainer._checkpoint_payload`) carries the method name, the
resolved configuration (``asdict``), the dataset spec's identity (:func:`spec_identity`) and the class list,
so ``bench generate``/``run --checkpoint`` need neither ``--set`` flags nor (for ``generate``) ``--method``
and ``--dataset``. ``--set`` then becomes an explicit override, validated against the stored configuration:

* a field whose change alters the networks' parameters or buffers (``ngf``, ``label_nc``,
  ``num_upsampling_layers``, ...; found by building both configurations on the ``meta`` device and
  comparing every state_dict key and shape) or the meaning of the input channels
  (:data:`INPUT_FIELDS`) is refused in one line;
* any other change (``load_size``, ``crop_size`` where the generator is size-agnostic, ``bn_stat_batches``)
  is applied and logged as an override.

Official release files carry nothing: ``--method`` and ``--dataset`` are required, the configuration is the
official preset, and an ``opt.pkl``/``opt.txt`` beside the file (:mod:`methods.checkpoints`) supplies the
values it was trained with; every difference from the preset is logged in one warning line. ``--set``
applies on top without restriction (that is how a file trained with other options is described).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from bench.datasets.spec import DatasetSpec
from bench.errors import BenchError, CheckpointError, ConfigError

log = logging.getLogger(__name__)

#: fields that change what the input channels mean without necessarily changing their number
INPUT_FIELDS = ("contain_dontcare_label", "no_instance", "label_shift", "label_nc")
#: the dataset-spec fields a checkpoint records (:func:`spec_identity`)
IDENTITY_FIELDS = ("name", "class_names", "ignore_index", "has_instances", "thing_classes", "native_size", "layout")


def spec_identity(spec: DatasetSpec) -> dict[str, Any]:
    """The facts about ``spec`` a model depends on, as plain JSON-able values (stored in checkpoints).

    Returns:
        ``{"name", "class_names": [str], "num_classes", "ignore_index": int | None, "has_instances",
        "thing_classes": [int], "native_size": [H, W], "layout"}``.
    """
    return {
        "name": spec.name,
        "class_names": list(spec.class_names),
        "num_classes": spec.num_classes,
        "ignore_index": spec.ignore_index,
        "has_instances": bool(spec.has_instances),
        "thing_classes": [int(c) for c in spec.thing_classes],
        "native_size": [int(s) for s in spec.native_size],
        "layout": spec.layout,
    }


def spec_from_identity(identity: dict[str, Any], path: Path | str = "<checkpoint>") -> DatasetSpec:
    """A :class:`DatasetSpec` from a stored :func:`spec_identity` (for a dataset this process does not know).

    Raises:
        CheckpointError: the stored identity is incomplete or inconsistent.
    """
    try:
        names = tuple(str(n) for n in identity["class_names"])
        if "num_classes" in identity and int(identity["num_classes"]) != len(names):
            raise ValueError(f"num_classes {identity['num_classes']} but {len(names)} class names")
        return DatasetSpec(
            name=str(identity["name"]),
            class_names=names,
            ignore_index=None if identity.get("ignore_index") is None else int(identity["ignore_index"]),
            has_instances=bool(identity.get("has_instances", False)),
            thing_classes=tuple(int(c) for c in identity.get("thing_classes", ())),
            native_size=tuple(int(s) for s in identity.get("native_size", (256, 256))),  # type: ignore[arg-type]
            layout=str(identity.get("layout", "custom")),
        )
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path}: its dataset spec is unreadable ({type(e).__name__}: {e})") from None


def same_classes(a: DatasetSpec, b: DatasetSpec) -> bool:
    """Whether two specs encode labels the same way: class names, order and ignore index."""
    return tuple(a.class_names) == tuple(b.class_names) and a.ignore_index == b.ignore_index


def _describe_classes(spec: DatasetSpec) -> str:
    shown = ", ".join(spec.class_names[:4]) + (", ..." if spec.num_classes > 4 else "")
    return f"{spec.num_classes} classes ({shown}), ignore {spec.ignore_index}"


@dataclass(frozen=True)
class ResolvedCheckpoint:
    """A checkpoint and the method, configuration and dataset spec to build its model with.

    Attributes:
        path: The checkpoint file.
        format: ``"sisbench"`` (carries its config) or ``"official"`` (a bare state_dict).
        method_cls: The method class.
        cfg: The configuration: the stored one (sisbench) or the preset plus the opt file (official), with
            the ``--set`` overrides applied.
        spec: The dataset spec: the registered one when it encodes labels as the checkpoint does, else the
            one rebuilt from the checkpoint's identity.
        data: The checkpoint's content as read (reused by :func:`bench.api.load_weights`).
        overridden: ``{field: (value in the checkpoint or preset, value used)}`` for each ``--set`` that
            changed something.
        options_file: The official ``opt.pkl``/``opt.txt`` read, if any.
    """

    path: Path
    format: Literal["sisbench", "official"]
    method_cls: Any
    cfg: Any
    spec: DatasetSpec
    data: Any = None
    overridden: dict[str, tuple[Any, Any]] = dataclasses.field(default_factory=dict)
    options_file: Path | None = None


def read_checkpoint_data(path: Path) -> Any:
    """The checkpoint's content (``weights_only``), memory-mapped when the file allows it so that only the
    tensors actually used are read; the one-line errors of
    :func:`bench.checkpoint_io.read_checkpoint` otherwise."""
    import torch

    from bench.checkpoint_io import read_checkpoint

    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception:  # noqa: BLE001 - legacy (non-zip) files cannot be mapped; read_checkpoint names any real problem
        return read_checkpoint(path)


def _registered(name: str) -> DatasetSpec | None:
    from bench.datasets import DATASETS

    return DATASETS.get(name) if name in DATASETS else None


def dataset_for(dataset: str, data_root: str | Path | None, overrides: dict[str, Any] | None
                ) -> tuple[DatasetSpec, dict[str, Any], bool]:
    """The spec ``--dataset`` names: a registered one, or a user dataset (``custom`` / a ``sisbench.toml``,
    :mod:`bench.datasets.user`, built from ``data_root``). Returns ``(spec, the overrides left for the
    method, whether it is a user dataset)``."""
    from bench.datasets import DATASETS

    try:
        from bench.datasets.user import is_user_dataset, resolve_user_dataset
    except ImportError:  # pragma: no cover - user datasets not installed
        return DATASETS.get(dataset), dict(overrides or {}), False
    if is_user_dataset(dataset):
        user = resolve_user_dataset(dataset, data_root, overrides)
        return user.spec, dict(user.overrides), True
    return DATASETS.get(dataset), dict(overrides or {}), False


def _dataset_spec(data: dict[str, Any], dataset: str | None, path: Path, data_root: str | Path | None,
                  overrides: dict[str, Any] | None) -> tuple[DatasetSpec, dict[str, Any]]:
    """The spec for a sisbench checkpoint, and the overrides left for the method: ``--dataset``'s spec
    (checked against the stored identity), else the registered spec of the stored name when its classes
    agree, else the stored identity itself."""
    stored_name = data.get("dataset")
    identity = data.get("dataset_spec")
    stored = spec_from_identity(identity, path) if isinstance(identity, dict) else None
    if dataset is not None:
        given, rest, _ = dataset_for(dataset, data_root, overrides)
        if stored is not None and not same_classes(given, stored):
            raise CheckpointError(
                f"{path}: trained on dataset {stored.name!r} with {_describe_classes(stored)}, but --dataset "
                f"{dataset!r} has {_describe_classes(given)}; drop --dataset to use the checkpoint's classes"
            )
        return given, rest
    rest = dict(overrides or {})
    if not stored_name and stored is None:
        raise CheckpointError(f"{path}: the checkpoint does not say which dataset it was trained on; pass --dataset")
    registered = _registered(str(stored_name or stored.name))  # type: ignore[union-attr]
    if stored is None:
        if registered is None:
            raise CheckpointError(
                f"{path}: trained on dataset {stored_name!r}, which is not registered here, and the checkpoint "
                "(an older sisbench's) has no class list; pass --dataset with the same classes"
            )
        return registered, rest
    if registered is not None and same_classes(registered, stored):
        return registered, rest
    if registered is not None:
        log.warning("%s: dataset %r is registered here with %s, but the checkpoint was trained with %s; using the "
                    "checkpoint's classes", path, stored.name, _describe_classes(registered), _describe_classes(stored))
    return stored, rest


def _stored_config(cfg_cls: type, stored: Any, path: Path) -> Any:
    from bench.config import config_fields

    if not isinstance(stored, dict):
        raise CheckpointError(f"{path}: the checkpoint has no configuration (an older or foreign file)")
    known = config_fields(cfg_cls)
    unknown = sorted(set(stored) - set(known))
    if unknown:
        raise CheckpointError(
            f"{path}: its configuration has fields this sisbench's {cfg_cls.__name__} does not know "
            f"({', '.join(unknown[:5])}); it was written by another sisbench version, use that one"
        )
    try:
        return cfg_cls(**stored)  # fields added since the checkpoint was written keep their defaults
    except (TypeError, ValueError, BenchError) as e:  # __post_init__ raises ValueError or ConfigError
        raise CheckpointError(f"{path}: its configuration is invalid here ({e})") from None


def network_shapes(method_cls: Any, cfg: Any, spec: DatasetSpec) -> dict[str, dict[str, tuple[int, ...]]]:
    """``{net: {state_dict key: shape}}`` of the networks ``cfg`` builds, on the ``meta`` device (no memory,
    no initialisation cost beyond the module constructors)."""
    import torch

    try:
        with torch.device("meta"):
            model = method_cls(cfg, spec, "meta")
    except BenchError:
        raise
    except (RuntimeError, ValueError, TypeError) as e:
        raise ConfigError(f"{method_cls.name} cannot be built with this configuration ({str(e)[:160]})") from None
    return {name: {k: tuple(v.shape) for k, v in net.state_dict().items()} for name, net in model.nets.items()}


def _first_difference(a: dict[str, dict[str, tuple[int, ...]]], b: dict[str, dict[str, tuple[int, ...]]]) -> str | None:
    if set(a) != set(b):
        return f"networks {sorted(a)} -> {sorted(b)}"
    for net in sorted(a):
        if set(a[net]) != set(b[net]):
            only = sorted(set(a[net]) ^ set(b[net]))
            return f"{net} gains or loses {len(only)} tensors, e.g. {only[0]}"
        for key in sorted(a[net]):
            if a[net][key] != b[net][key]:
                return f"{net}.{key} {list(a[net][key])} -> {list(b[net][key])}"
    return None


def check_overrides(method_cls: Any, stored: Any, wanted: Any, spec: DatasetSpec, path: Path) -> dict[str, tuple[Any, Any]]:
    """The fields ``wanted`` changes from the checkpoint's ``stored`` config, after refusing the unsafe ones.

    Returns:
        ``{field: (stored value, wanted value)}`` for every changed field (all safe to apply).

    Raises:
        ConfigError: one line naming the first field that changes the networks' tensors (with the tensor and
            both shapes) or the meaning of the input channels (:data:`INPUT_FIELDS`).
    """
    changed = {f.name: (getattr(stored, f.name), getattr(wanted, f.name))
               for f in dataclasses.fields(stored) if getattr(stored, f.name) != getattr(wanted, f.name)}
    if not changed:
        return {}
    for name in INPUT_FIELDS:
        if name in changed:
            old, new = changed[name]
            raise ConfigError(
                f"{path}: --set {name}={new} changes the input channels this checkpoint was trained with "
                f"({name}={old}); drop the --set"
            )
    base = network_shapes(method_cls, stored, spec)
    if _first_difference(base, network_shapes(method_cls, wanted, spec)) is None:
        return changed
    for name, (old, new) in changed.items():  # which field is responsible
        diff = _first_difference(base, network_shapes(method_cls, dataclasses.replace(stored, **{name: new}), spec))
        if diff is not None:
            raise ConfigError(
                f"{path}: --set {name}={new} changes the networks of this checkpoint, trained with {name}={old} "
                f"({diff}); drop the --set (overrides may change only what keeps every tensor's shape)"
            )
    raise ConfigError(
        f"{path}: --set {', '.join(f'{k}={v[1]}' for k, v in changed.items())} together change the networks of "
        "this checkpoint; drop them"
    )


def resolve_checkpoint(checkpoint: str | Path, *, method: str | None = None, dataset: str | None = None,
                       overrides: dict[str, Any] | None = None,
                       data_root: str | Path | None = None) -> ResolvedCheckpoint:
    """Method, configuration and dataset spec to load ``checkpoint`` with.

    Args:
        checkpoint: A sisbench checkpoint (``latest.pth``) or an official release file.
        method: ``--method``; optional for a sisbench checkpoint (must then match it).
        dataset: ``--dataset``; optional for a sisbench checkpoint (its classes must then match).
        overrides: ``--set`` values (strings are cast to the fields' types); a user dataset's keys
            (``label_nc``, ``ignore_id``) go to the dataset when ``dataset`` is one.
        data_root: Only read for a user dataset (``--dataset custom``), whose classes come from its folder.

    Returns:
        The :class:`ResolvedCheckpoint`.

    Raises:
        CheckpointError: unreadable file, a method/dataset that contradicts the checkpoint, an official file
            without ``--method``/``--dataset``, a hostile ``opt.pkl``.
        ConfigError: an unknown ``--set`` field, or an override that changes the networks (one line).
    """
    from bench.checkpoint_io import FORMAT, VERSION
    from bench.config import apply_overrides, resolve
    from methods import load_method

    path = Path(checkpoint)
    data = read_checkpoint_data(path)
    if isinstance(data, dict) and data.get("format") == FORMAT:
        if int(data.get("version", 0)) > VERSION:
            raise CheckpointError(f"{path}: checkpoint version {data['version']} is newer than this sisbench ({VERSION})")
        stored_method = data.get("method")
        if not stored_method:
            raise CheckpointError(f"{path}: the checkpoint does not say its method; pass --method")
        method_cls = load_method(str(method or stored_method))
        if method_cls.name != stored_method:
            raise CheckpointError(f"{path}: checkpoint is for method {stored_method!r}, not {method_cls.name!r}")
        spec, rest = _dataset_spec(data, dataset, path, data_root, overrides)
        stored = _stored_config(method_cls.config_cls, data.get("config"), path)
        wanted = apply_overrides(stored, rest)
        changed = check_overrides(method_cls, stored, wanted, spec, path)
        if changed:
            log.warning("%s: --set overrides the checkpoint's configuration: %s", path,
                        ", ".join(f"{k} {old!r} -> {new!r}" for k, (old, new) in changed.items()))
        return ResolvedCheckpoint(path, "sisbench", method_cls, wanted, spec, data, changed)

    if method is None or dataset is None:
        missing = " and ".join(n for n, v in (("--method", method), ("--dataset", dataset)) if v is None)
        raise CheckpointError(
            f"{path}: an official checkpoint (a bare state_dict) does not say how it was trained; pass {missing}"
        )
    from methods.checkpoints import apply_official_options, read_official_options

    method_cls = load_method(method)
    spec, rest, user = dataset_for(dataset, data_root, overrides)
    preset = resolve(method_cls.name, spec.name)
    if user:  # the options a user dataset decides (dontcare channel, instance edges), as bench.api.setup
        from bench.datasets.user import adapt_config

        preset = adapt_config(preset, spec, rest)
    options = read_official_options(path)
    cfg = preset
    if options is not None:
        cfg, notes = apply_official_options(preset, spec.num_classes, options)
        if notes:
            log.warning("%s differs from sisbench's %s/%s preset: %s; using the file's values (--set changes them)",
                        options.path, method_cls.name, spec.name, "; ".join(notes[:10])
                        + (f"; and {len(notes) - 10} more" if len(notes) > 10 else ""))
    wanted = apply_overrides(cfg, rest)
    changed = {f.name: (getattr(cfg, f.name), getattr(wanted, f.name)) for f in dataclasses.fields(cfg)
               if getattr(cfg, f.name) != getattr(wanted, f.name)}
    return ResolvedCheckpoint(path, "official", method_cls, wanted, spec, data, changed,
                              options.path if options is not None else None)
