"""Your own dataset (``--dataset custom``): SPADE's custom layout in any folder, described by the folder.

A user dataset is a folder in SPADE's custom layout (:mod:`bench.datasets.custom`)::

    R/train_img/  R/train_label/  [R/train_inst/]
    R/val_img/    R/val_label/    [R/val_inst/]
    R/classes.txt | R/classes.json   optional class names (line i / entry i = id i)
    R/sisbench.toml                  optional dataset config file (format below)

What a registered dataset states in its :class:`~bench.datasets.spec.DatasetSpec` is found here:

* **class count**: ``label_nc`` when given (``--set label_nc=N`` or the config file), else the number of
  class names, else inferred as 1 + the largest id over every train and val label map, the ignore id
  excluded. The scan is cached under ``$BENCH_CACHE/label-stats/`` keyed by the label files' content
  (:func:`bench.cache.files_fingerprint`), so a re-run costs a ``stat`` per file. A ``label_nc`` at or
  below an id the labels hold is refused, naming the file.
* **class names**: ``classes`` in the config file (a list, or a file), else ``R/classes.txt`` (one name
  a line) or ``R/classes.json`` (a list, or ``{"0": "sky", ...}``), else ``class0 .. classK-1``.
* **unlabeled pixels**: ``ignore_id`` (255 unless ``--set ignore_id=`` or the config file says
  otherwise). Methods of the SPADE family give them SPADE's extra "dontcare" channel
  (``contain_dontcare_label``), switched on by :func:`adapt_config` when the labels hold the ignore id.
* **instance maps**: read when ``R/train_inst`` and ``R/val_inst`` exist (or ``instances`` says so).
* **identity**: name ``custom``, class count and names, ignore id, instance maps and a sha256 over every
  sample file's content; it is hashed into run ids, so two different datasets never share a record.
* **evaluation segmenter**: ``bench segmenter train --dataset custom`` writes
  ``$BENCH_CACHE/segmenters/custom-<identity digest>.pth`` (:func:`segmenter_path`), which runs on the
  same dataset then find; ``segmenter = "path.pth"`` in the config file names another one.

The config file (TOML, every key optional; paths are relative to the file)::

    layout = "custom"          # the only layout a user dataset has for now
    data_root = "."            # default: the file's folder
    label_nc = 12              # default: inferred from the labels (or the number of class names)
    ignore_id = 255            # id of unlabeled pixels
    classes = "classes.txt"    # or ["sky", "tree", ...]; default: classes.txt / classes.json in data_root
    palette = "palette.txt"    # a palette file or built-in name (bench data labels-from-colour)
    instances = "auto"         # true | false | "auto" (instance maps used when train_inst/ and val_inst/ exist)
    segmenter = "auto"         # or the path of a segmenter checkpoint from `bench segmenter train`
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.cache import atomic_write_text, cache_dir, files_fingerprint, key_digest
from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError, DataError, WeightsNotFoundError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

log = logging.getLogger(__name__)

USER_DATASET = "custom"
CONFIG_FILE = "sisbench.toml"
CLASS_FILES = ("classes.txt", "classes.json")
#: ``--set`` keys that describe a user dataset rather than a method; taken out before the method config
DATASET_KEYS = ("label_nc", "ignore_id")
DEFAULT_IGNORE = 255
MAX_ID = 65535  # label maps are 8- or 16-bit PNGs
#: bump when the label scan's output changes for the same files
LABEL_STATS_VERSION = 1

#: key of the config file -> (accepted TOML types, what it must be, in words)
CONFIG_KEYS: dict[str, tuple[tuple[type, ...], str]] = {
    "layout": ((str,), 'the string "custom"'),
    "data_root": ((str,), "a folder path (relative to the file)"),
    "label_nc": ((int,), "an integer >= 1"),
    "ignore_id": ((int,), f"an integer in 0..{MAX_ID}"),
    "classes": ((str, list), "a file path or a list of class names"),
    "palette": ((str,), "a palette file path or built-in palette name"),
    "instances": ((bool, str), 'true, false or "auto"'),
    "segmenter": ((str,), 'a checkpoint path or "auto"'),
}


@dataclass(frozen=True, kw_only=True)
class DatasetConfig:
    """A user dataset as its config file (or the command line) states it; ``None`` = find it from the data.

    Attributes:
        source: The config file read, or None.
        data_root: The dataset folder (absolute once read from a file).
        label_nc: Number of classes (ids ``0..label_nc-1``).
        ignore_id: Id of unlabeled pixels, ``0..65535``, outside the class ids.
        classes: Class names (id order), or the path of a class-name file.
        palette: Built-in palette name or palette file path.
        instances: Whether instance maps are read; None: when ``train_inst/`` and ``val_inst/`` exist.
        segmenter: Evaluation segmenter checkpoint; None: the one ``bench segmenter train`` stored.
    """

    source: Path | None = None
    layout: str = "custom"
    data_root: Path | None = None
    label_nc: int | None = None
    ignore_id: int = DEFAULT_IGNORE
    classes: tuple[str, ...] | Path | None = None
    palette: str | None = None
    instances: bool | None = None
    segmenter: Path | None = None


def _where(source: Path | None, key: str) -> str:
    return f"{source}: {key}" if source is not None else f"--set {key}"


def _check_value(source: Path | None, key: str, value: Any) -> None:
    types, what = CONFIG_KEYS[key]
    fix = "; fix the file (format: README, 'Your own dataset')" if source is not None else ""
    # bool is an int in Python; TOML's true is never an integer here
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
        raise ConfigError(f"{_where(source, key)} must be {what}, got {value!r} ({type(value).__name__}){fix}")
    bad = {
        "layout": lambda v: v != "custom",
        "label_nc": lambda v: v < 1 or v > MAX_ID,
        "ignore_id": lambda v: not 0 <= v <= MAX_ID,
        "instances": lambda v: isinstance(v, str) and v != "auto",
        "classes": lambda v: isinstance(v, list) and (not v or not all(isinstance(c, str) and c.strip() for c in v)),
    }.get(key)
    if bad is not None and bad(value):
        raise ConfigError(f"{_where(source, key)} must be {what}, got {value!r}{fix}")


def read_config(path: Path | str) -> DatasetConfig:
    """Read a dataset config file (``sisbench.toml``; format in the module docstring).

    Args:
        path: The TOML file. Relative paths inside it are taken from its folder.

    Returns:
        The config, with ``data_root`` (default: the file's folder), ``classes`` (when a path),
        ``palette`` (when a file) and ``segmenter`` made absolute.

    Raises:
        ConfigError: The file is missing, is not TOML, has an unknown key or a value of the wrong type
            (one line naming the file and the key).
    """
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"--dataset-config {path}: no such file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        first = (str(e).splitlines() or [type(e).__name__])[0]
        raise ConfigError(f"{path}: not a valid TOML file ({first})") from None
    for key, value in data.items():
        if key not in CONFIG_KEYS:
            close = difflib.get_close_matches(key, CONFIG_KEYS, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"{path}: unknown key {key!r}{hint} (valid keys: {', '.join(CONFIG_KEYS)})")
        _check_value(path, key, value)
    here = path.parent

    def rel(p: str) -> Path:
        return (here / Path(p).expanduser()).resolve()

    classes: tuple[str, ...] | Path | None = None
    if isinstance(data.get("classes"), list):
        classes = tuple(c.strip() for c in data["classes"])
    elif isinstance(data.get("classes"), str):
        classes = rel(data["classes"])
    palette = data.get("palette")
    if palette is not None and (here / palette).is_file():
        palette = str(rel(palette))
    instances = data.get("instances", "auto")
    segmenter = data.get("segmenter", "auto")
    return DatasetConfig(
        source=path,
        layout=data.get("layout", "custom"),
        data_root=rel(data.get("data_root", ".")),
        label_nc=data.get("label_nc"),
        ignore_id=data.get("ignore_id", DEFAULT_IGNORE),
        classes=classes,
        palette=palette,
        instances=None if instances == "auto" else bool(instances),
        segmenter=None if segmenter == "auto" else rel(segmenter),
    )


def config_text(cfg: DatasetConfig, *, relative_to: Path | None = None) -> str:
    """The TOML text of ``cfg`` (what :func:`read_config` reads back to an equal config).

    Args:
        cfg: The config to write.
        relative_to: The folder the file will live in; paths are written relative to it.
    """

    def path_text(p: Path) -> str:
        if relative_to is not None:
            try:
                return Path(os.path.relpath(Path(p).resolve(), relative_to.resolve())).as_posix()
            except ValueError:  # another drive (Windows)
                pass
        return Path(p).as_posix()

    lines = ["# sisbench dataset config (README: 'Your own dataset')", f'layout = "{cfg.layout}"']
    if cfg.data_root is not None:
        lines.append(f"data_root = {json.dumps(path_text(cfg.data_root))}")
    if cfg.label_nc is not None:
        lines.append(f"label_nc = {cfg.label_nc}")
    lines.append(f"ignore_id = {cfg.ignore_id}")
    if isinstance(cfg.classes, tuple):
        lines.append(f"classes = {json.dumps(list(cfg.classes), ensure_ascii=False)}")
    elif cfg.classes is not None:
        lines.append(f"classes = {json.dumps(path_text(cfg.classes))}")
    if cfg.palette is not None:
        pal = path_text(Path(cfg.palette)) if Path(cfg.palette).is_file() else cfg.palette
        lines.append(f"palette = {json.dumps(pal)}")
    lines.append("instances = " + ('"auto"' if cfg.instances is None else str(cfg.instances).lower()))
    lines.append("segmenter = " + ('"auto"' if cfg.segmenter is None else json.dumps(path_text(cfg.segmenter))))
    return "\n".join(lines) + "\n"


def write_config(path: Path | str, cfg: DatasetConfig) -> Path:
    """Write ``cfg`` as a dataset config file (atomically); an existing file is never replaced.

    Raises:
        ConfigError: ``path`` exists.
    """
    path = Path(path)
    if path.exists():
        raise ConfigError(f"{path} exists; sisbench never replaces it: edit it, or write to another path with --out")
    return atomic_write_text(path, config_text(cfg, relative_to=path.parent.resolve()))


# --- reading the data -----------------------------------------------------------------------------
def read_class_names(path: Path) -> tuple[str, ...]:
    """Class names from ``classes.txt`` (line i = id i) or ``classes.json`` (a list, or ``{"id": name}``).

    Raises:
        ConfigError: Unreadable file, an empty name, a JSON object whose ids are not ``0..K-1``.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot read the class names ({e})") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"{path}: not valid JSON ({e})") from None
        if isinstance(data, dict):
            try:
                by_id = {int(k): v for k, v in data.items()}
            except ValueError:
                raise ConfigError(f"{path}: keys must be class ids (\"0\", \"1\", ...)") from None
            if sorted(by_id) != list(range(len(by_id))):
                raise ConfigError(f"{path}: ids must be 0..{len(by_id) - 1} without gaps, got {sorted(by_id)[:8]}")
            data = [by_id[i] for i in range(len(by_id))]
        if not isinstance(data, list) or not all(isinstance(n, str) for n in data):
            raise ConfigError(f"{path}: expected a list of class names or an object {{\"0\": \"name\", ...}}")
        names = [n.strip() for n in data]
    else:
        names = [ln.strip() for ln in text.splitlines()]
        while names and not names[-1]:
            names.pop()
    empty = [i for i, n in enumerate(names) if not n]
    if not names or empty:
        raise ConfigError(f"{path}: class {empty[0] if empty else 0} has no name (entry i names id i; "
                          "no blank lines)")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(f"{path}: class name {dup[0]!r} is used twice; names must be unique")
    return tuple(names)


@dataclass(frozen=True)
class LabelStats:
    """What the label maps of both splits hold (from :func:`label_stats`).

    Attributes:
        ids: Every id present (ignore id included) -> the first label file holding it (relative to the root).
        n_files: Label maps scanned.
        unreadable: Files that could not be decoded (the loader names them when it reads them).
    """

    ids: dict[int, str]
    n_files: int
    unreadable: list[str] = field(default_factory=list)

    def max_class_id(self, ignore: int | None) -> int | None:
        ids = [i for i in self.ids if i != ignore]
        return max(ids) if ids else None


def label_stats(labels: list[tuple[str, Path]]) -> LabelStats:
    """The ids in ``labels`` (``[(path relative to the root, path)]``), scanned once and cached by their content.

    The cache entry ``$BENCH_CACHE/label-stats/<key>.json`` is keyed by the files' names and content
    digests (:func:`bench.cache.files_fingerprint`, memoised by stat), so a re-run reads no pixels and
    any changed label map triggers a new scan.
    """
    from bench.datasets.io import read_map

    key = key_digest({"version": LABEL_STATS_VERSION, "labels": files_fingerprint(labels)})
    entry = cache_dir("label-stats") / f"{key}.json"
    try:
        data = json.loads(entry.read_text())
        return LabelStats({int(k): v for k, v in data["ids"].items()}, int(data["n_files"]), list(data["unreadable"]))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    ids: dict[int, str] = {}
    unreadable: list[str] = []
    for name, path in labels:
        try:
            arr = read_map(path)
        except DataError:
            unreadable.append(name)
            continue
        present = np.flatnonzero(np.bincount(arr.ravel(), minlength=1)) if arr.dtype == np.uint8 else np.unique(arr)
        for i in present.tolist():
            ids.setdefault(int(i), name)
    stats = LabelStats(dict(sorted(ids.items())), len(labels), unreadable)
    atomic_write_text(entry, json.dumps({"ids": {str(k): v for k, v in stats.ids.items()}, "n_files": stats.n_files,
                                         "unreadable": unreadable}, indent=0))
    return stats


# --- the spec -------------------------------------------------------------------------------------
def is_user_dataset(dataset: Any) -> bool:
    """Whether ``dataset`` names a user dataset: ``"custom"`` or the path of a ``*.toml`` config file."""
    if isinstance(dataset, DatasetSpec):
        return bool((dataset.extra or {}).get("user_dataset"))
    s = str(dataset)
    return s.lower() == USER_DATASET or s.lower().endswith(".toml")


def segmenter_path(identity: dict[str, Any]) -> Path:
    """Where ``bench segmenter train`` stores the evaluation segmenter of the dataset with ``identity``:
    ``$BENCH_CACHE/segmenters/custom-<16 hex of the identity>.pth`` (beside it ``.sha256`` and ``.json``)."""
    return cache_dir("segmenters") / f"{USER_DATASET}-{key_digest(identity)}.pth"


@dataclass(frozen=True)
class UserDataset:
    """A resolved user dataset: its spec, its folder, and the ``--set`` overrides left for the method."""

    spec: DatasetSpec
    root: Path
    config: DatasetConfig
    overrides: dict[str, Any]
    hint: str  # the options that name this dataset on the command line (for messages)


def _int_override(key: str, raw: Any) -> int:
    try:
        value = int(str(raw).strip())
    except ValueError:
        raise ConfigError(f"--set {key}={raw!r}: expected an integer") from None
    _check_value(None, key, value)
    return value


def resolve_user_dataset(dataset: str, data_root: str | Path | None = None,
                         overrides: dict[str, Any] | None = None) -> UserDataset:
    """Build the spec of a user dataset from its folder (and config file), as the module docstring says.

    Args:
        dataset: ``"custom"`` (the config file ``<data_root>/sisbench.toml`` is read when present), or the
            path of a dataset config file.
        data_root: The dataset folder; default: the config file's ``data_root`` (its own folder).
        overrides: ``--set`` values; ``label_nc`` and ``ignore_id`` are taken (they win over the file),
            the rest is returned for the method config.

    Returns:
        The spec (name ``custom``; ``extra`` holds ``identity``, ``data_root``, the segmenter checkpoint and
        what was inferred), the folder, the config and the remaining overrides.

    Raises:
        ConfigError: A bad config file or class-name file, ``label_nc`` at or below an id the labels
            hold, class names that disagree with ``label_nc``, an ignore id among the class ids.
        DataError: No data root, a missing split folder, label maps holding no class id.
        WeightsNotFoundError: The config file names a segmenter checkpoint that does not exist.
    """
    from bench.datasets.custom import list_split

    rest = dict(overrides or {})
    dataset_keys = {k: _int_override(k, rest.pop(k)) for k in DATASET_KEYS if k in rest}
    if str(dataset).lower() == USER_DATASET:
        auto = Path(data_root) / CONFIG_FILE if data_root is not None else None
        if auto is not None and auto.is_file():
            log.info("custom dataset: reading its config file %s", auto)
            cfg = read_config(auto)
        else:
            cfg = DatasetConfig()
    else:
        cfg = read_config(dataset)
    if data_root is not None:
        cfg = dataclasses.replace(cfg, data_root=Path(data_root).expanduser().resolve())
    if cfg.data_root is None:
        raise DataError("dataset 'custom' needs --data-root DIR (SPADE's layout {train,val}_{img,label}/) or "
                        f"--dataset-config DIR/{CONFIG_FILE}")
    cfg = dataclasses.replace(cfg, **dataset_keys)
    root = cfg.data_root
    if not root.is_dir():
        raise DataError(f"--data-root {root}: no such folder")
    hint = f"--dataset-config {cfg.source}" if cfg.source is not None else f"--dataset custom --data-root {root}"
    hint += "".join(f" --set {k}={v}" for k, v in dataset_keys.items())

    instances = cfg.instances
    if instances is None:
        instances = (root / "train_inst").is_dir() and (root / "val_inst").is_dir()
    probe = DatasetSpec(name=USER_DATASET, class_names=("probe",), ignore_index=None, has_instances=instances)
    listings = {split: list_split(root, split, probe) for split in ("train", "val")}
    files = [(f"{split}/{s.id}/{role}", p) for split, lst in listings.items() for s in lst.samples
             for role, p in (("image", s.image), ("label", s.label), ("instance", s.instance)) if p is not None]
    if not files:
        raise DataError(f"{root}: no paired samples in train_img/train_label or val_img/val_label; run "
                        f"`bench data check {hint}`")
    content = files_fingerprint(files)
    stats = label_stats([(f"{split}_label/{s.label.name}", s.label) for split, lst in listings.items()
                         for s in lst.samples])

    names, names_from = _class_names(cfg, root)
    ignore = cfg.ignore_id
    top = stats.max_class_id(ignore)
    if top is None:
        raise DataError(f"{root}: the label maps hold no class id (only the ignore id {ignore}); check ignore_id")
    if cfg.label_nc is not None:
        n, source = cfg.label_nc, ("--set label_nc" if "label_nc" in dataset_keys else f"{cfg.source}: label_nc")
        if top >= n:
            raise ConfigError(f"{source}={n}, but {root / stats.ids[top]} holds label id {top} (classes are "
                              f"0..{n - 1}, unlabeled = {ignore}); set label_nc={top + 1} or more, or fix the label maps")
        if names is not None and len(names) != n:
            raise ConfigError(f"{source}={n}, but {names_from} names {len(names)} classes; make them agree")
    elif names is not None:
        n, source = len(names), str(names_from)
        if top >= n:
            raise ConfigError(f"{names_from} names {n} classes (ids 0..{n - 1}), but {root / stats.ids[top]} holds "
                              f"label id {top}; add the missing names, or fix the label maps")
    else:
        n, source = top + 1, "inferred"
        log.info("custom dataset %s: label_nc=%d inferred from %d train+val label maps (largest id %d, ignore id %d "
                 "excluded); override with --set label_nc=N or name the classes in classes.txt", root, n,
                 stats.n_files, top, ignore)
    if 0 <= ignore < n:
        raise ConfigError(f"ignore_id={ignore} is one of the class ids 0..{n - 1}; set ignore_id to an id the "
                          "classes do not use (255 by default), or remap the label maps")
    class_names = names if names is not None else tuple(f"class{i}" for i in range(n))
    palette = _palette(cfg)
    identity: dict[str, Any] = {
        "name": USER_DATASET, "layout": "custom", "num_classes": n, "class_names": list(class_names),
        "ignore_index": ignore, "has_instances": bool(instances), "content": content,
    }
    segmenter, segmenter_sha = _segmenter(cfg, identity)
    spec = DatasetSpec(
        name=USER_DATASET, class_names=class_names, ignore_index=ignore, has_instances=bool(instances),
        layout="custom",
        extra={
            "user_dataset": True,
            "identity": identity,
            "data_root": str(root),
            "config_file": str(cfg.source) if cfg.source is not None else None,
            "hint": hint,
            "num_classes_from": source,
            "classes_from": str(names_from) if names_from is not None else None,
            "has_unlabeled": ignore in stats.ids,
            "label_ids": sorted(i for i in stats.ids if i != ignore),
            "palette": palette,
            "segmenter": USER_DATASET,
            "segmenter_checkpoint": str(segmenter) if segmenter is not None else None,
            "segmenter_sha256": segmenter_sha,
        },
    )
    return UserDataset(spec, root, cfg, rest, hint)


def _class_names(cfg: DatasetConfig, root: Path) -> tuple[tuple[str, ...] | None, Path | str | None]:
    if isinstance(cfg.classes, tuple):
        return cfg.classes, f"{cfg.source}: classes"
    if cfg.classes is not None:
        if not cfg.classes.is_file():
            raise ConfigError(f"{cfg.source}: classes = {cfg.classes}: no such file")
        return read_class_names(cfg.classes), cfg.classes
    found = [root / f for f in CLASS_FILES if (root / f).is_file()]
    if len(found) > 1:
        raise ConfigError(f"{root}: both {CLASS_FILES[0]} and {CLASS_FILES[1]} name the classes; keep one")
    return (read_class_names(found[0]), found[0]) if found else (None, None)


def _palette(cfg: DatasetConfig) -> dict[str, Any] | None:
    if cfg.palette is None:
        return None
    from bench.datasets.palettes import load_palette

    try:
        pal = load_palette(cfg.palette)
    except ConfigError as e:
        raise ConfigError(f"{cfg.source}: palette: {e}") from None
    return {"name": pal.name, "source": str(cfg.palette), "n_colours": len(pal.ids)}


def _segmenter(cfg: DatasetConfig, identity: dict[str, Any]) -> tuple[Path | None, str | None]:
    """The evaluation segmenter checkpoint of the dataset (if any) and the sha256 its sidecar records."""
    if cfg.segmenter is not None:
        if not cfg.segmenter.is_file():
            raise WeightsNotFoundError(f"{cfg.source}: segmenter = {cfg.segmenter}: no such file; train one with "
                                       f"`bench segmenter train --dataset-config {cfg.source} --out {cfg.segmenter}`"
                                       " or remove the key")
        path: Path | None = cfg.segmenter
    else:
        stored = segmenter_path(identity)
        path = stored if stored.is_file() else None
    if path is None:
        return None, None
    side = path.with_name(path.name + ".sha256")
    try:
        sha = side.read_text(encoding="utf-8").split()[0].lower()
    except (OSError, IndexError):
        sha = None
    return path, sha


def pinned_config(user: UserDataset) -> DatasetConfig:
    """The config file that pins what was found for ``user`` (class count, ignore id, instance maps, and the
    class names' file or list), so later runs no longer depend on the inference."""
    cfg, spec = user.config, user.spec
    classes: tuple[str, ...] | Path | None = cfg.classes
    if classes is None and spec.extra.get("classes_from"):
        classes = Path(str(spec.extra["classes_from"]))
    return dataclasses.replace(cfg, source=None, data_root=user.root, label_nc=spec.num_classes,
                               ignore_id=int(spec.ignore_index if spec.ignore_index is not None else DEFAULT_IGNORE),
                               classes=classes, instances=spec.has_instances)


def adapt_config(cfg: Any, spec: DatasetSpec, overrides: dict[str, Any] | None) -> Any:
    """Method options a user dataset decides, unless ``overrides`` set them (logged, and kept in the config).

    * ``contain_dontcare_label=True`` when the labels hold the ignore id: SPADE's extra channel for
      unlabeled pixels (its ``--dataset_mode custom`` default is False, and the official code then fails
      in ``scatter_`` on such a pixel);
    * ``no_instance = not spec.has_instances``: instance edges when the dataset has instance maps (SPADE's
      default ``no_instance=False`` with ``--instance_dir``), none otherwise.

    Args:
        cfg: A frozen method config (any config class; fields it lacks are left alone).
        spec: The user dataset's spec.
        overrides: The user's ``--set`` values for the method.

    Raises:
        ConfigError: The adapted config is invalid.
    """
    given = set(overrides or {})
    names = {f.name for f in dataclasses.fields(cfg)}
    wanted = {"contain_dontcare_label": bool((spec.extra or {}).get("has_unlabeled")),
              "no_instance": not spec.has_instances}
    changes = {k: v for k, v in wanted.items() if k in names and k not in given and getattr(cfg, k) != v}
    if not changes:
        return cfg
    why = {"contain_dontcare_label": (f"the labels hold unlabeled pixels ({spec.ignore_index})"
                                      if wanted["contain_dontcare_label"] else "the labels have no unlabeled pixels"),
           "no_instance": "the dataset has no instance maps" if wanted["no_instance"] else "instance maps found"}
    log.info("custom dataset: %s; --set it to choose",
             "; ".join(f"{k}={str(v).lower()} ({why[k]})" for k, v in changes.items()))
    try:
        return dataclasses.replace(cfg, **changes)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid configuration for the custom dataset: {e}") from None


def record_identity(spec: Any) -> dict[str, Any] | None:
    """What a run hashes into its id for a user dataset (its identity and its segmenter); None otherwise."""
    extra = getattr(spec, "extra", None) or {}
    if not extra.get("user_dataset"):
        return None
    return {**extra["identity"], "segmenter_sha256": extra.get("segmenter_sha256")}


def record_extra(spec: Any) -> dict[str, Any] | None:
    """What a run record notes about a user dataset beyond its identity (where the class count came from,
    the folder, the config file, the palette); None for a registered dataset."""
    extra = getattr(spec, "extra", None) or {}
    if not extra.get("user_dataset"):
        return None
    keys = ("num_classes_from", "data_root", "config_file", "palette", "segmenter_checkpoint", "has_unlabeled")
    return {"class_names": list(spec.class_names), **{k: extra.get(k) for k in keys}}
