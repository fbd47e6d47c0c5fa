"""Labels-only generation: synthesise any folder of label maps with a checkpoint, no photos and no dataset split.

``bench generate --checkpoint C --labels DIR [--instances DIR] --out OUT`` reads ``DIR/*.png`` (single-channel
PNG ids, :func:`bench.datasets.io.read_map`) and writes ``OUT/<stem>.png``. A sisbench checkpoint supplies the
method, configuration and classes (:mod:`bench.checkpoint_config`); an official file needs ``--method`` and
``--dataset``.

Every label map is checked before anything is generated: its ids must be classes of the checkpoint (or its
ignore index), else one line names the file and the ids. Maps are preprocessed as the configuration
preprocesses evaluation data (:meth:`bench.datasets.transforms.Preprocess.for_eval`: resize, centred crop,
no flip; label and instance maps nearest), or kept at their own size with ``native_size`` (the preflight's
:func:`~bench.preflight.check_shapes` then checks, per distinct size, that the generator produces that size:
pix2pixHD does for sizes divisible by ``2^n_downsample_global``; the SPADE family and OASIS produce the size
``crop_size``/``aspect_ratio`` say, which ``--set`` may change where it keeps the weights' shapes).

What each method needs beyond label maps, and what is done without it:

* **SPADE, pix2pixHD** (without ``instance_feat``): nothing. SPADE's VAE variant draws ``z`` from the seed.
* **OASIS**: re-estimates its EMA generator's BatchNorm statistics before generating (the official
  ``update_EMA``: forward passes in train mode over training *label maps*; photos are never read). With
  ``--data-root`` the training split's label maps are used, as officially; without it the given label folder
  serves (its first ``bn_stat_batches x batch_size`` maps, in file order), which needs no training data. The
  choice is logged. Official release files skip this (their statistics were re-estimated before saving).
* **RESAIL**: retrieves guidance segments from its training split's database: ``--data-root`` (the dataset
  it was trained on) or ``--set database_root=``; refused in one line without.
* **SEAN**: styles come from a photo: ``style={"style_from": PHOTO, "style_label": MAP}`` encodes
  PHOTO's per-region styles (its label map defaults to ``<stem>.png`` in the label folder); every region of
  every map takes its class's code. Without a style photo every code is zero, SEAN's own value for a class
  absent from the style image (the generator then uses ``relu(fc_mu_j.bias)`` per class): deterministic and
  needing no data, but not a photo's appearance. A mean style over the training photos was not chosen
  because it needs the photos this mode exists to do without.
* **pix2pixHD with** ``instance_feat``: generates from features encoded from the real photo (the official
  ``--use_encoded_image``; the k-means feature sampling is not implemented), so it is refused in one line.

Noise follows ``seed`` per image exactly as in split generation (:func:`bench.generate.generate_split`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.datasets.io import (
    MAP_EXTENSIONS,
    OTHER_MAP_EXTENSIONS,
    check_label_ids,
    check_same_size,
    read_image,
    read_map,
    wrong_format_message,
)
from bench.datasets.spec import DatasetSpec
from bench.datasets.transforms import Preprocess, apply, plan
from bench.errors import ConfigError, DataError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelFile:
    """One label map of the folder (and its instance map)."""

    id: str
    label: Path
    instance: Path | None


def _pngs(folder: Path, what: str) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"--{what} {folder}: no such folder")
    files = sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    maps = {p.stem: p for p in files if p.suffix.lower() in MAP_EXTENSIONS}
    other = [p for p in files if p.suffix.lower() in OTHER_MAP_EXTENSIONS and p.stem not in maps]
    if other:
        raise DataError(wrong_format_message(other[0], "label" if what == "labels" else "instance"))
    return maps


class LabelFolder(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """A folder of label maps as samples without photos: ``{"label", "instance", "id", "path"}``.

    ``label``/``instance`` are int64 ``[1, H, W]`` (instance zeros without instance maps), ``id`` the file
    stem, ``path`` the label file. Samples are in stem order.

    Args:
        labels: Folder of ``*.png`` label maps (ids ``0..num_classes-1`` and the spec's ignore index).
        spec: The checkpoint's dataset spec (classes, ignore index).
        preprocess: Evaluation preprocessing (resize/crop, no flip), or ``None`` for the native size.
        instances: Folder of ``<stem>.png`` instance maps, or ``None``.

    Raises:
        DataError: a missing or empty folder, a map in another format, a label without its instance map.
    """

    def __init__(self, labels: str | Path, spec: DatasetSpec, preprocess: Preprocess | None, *,
                 instances: str | Path | None = None) -> None:
        self.root = Path(labels)
        self.spec = spec
        self.preprocess = preprocess
        maps = _pngs(self.root, "labels")
        if not maps:
            raise DataError(f"--labels {self.root}: no label maps (*.png, one id per pixel)")
        insts = _pngs(Path(instances), "instances") if instances is not None else None
        if insts is not None:
            missing = sorted(set(maps) - set(insts))
            if missing:
                raise DataError(f"{maps[missing[0]]}: no instance map {Path(instances) / (missing[0] + '.png')}"
                                + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
        self.samples = [LabelFile(s, maps[s], insts[s] if insts is not None else None) for s in sorted(maps)]

    def __len__(self) -> int:
        return len(self.samples)

    def _arrays(self, f: LabelFile) -> tuple[np.ndarray, np.ndarray | None]:
        label = read_map(f.label, "label")
        inst = read_map(f.instance, "instance") if f.instance is not None else None
        if inst is not None:
            check_same_size((label.shape[1], label.shape[0]), (inst.shape[1], inst.shape[0]), f.label, f.instance)  # type: ignore[arg-type]
        return label, inst

    def scan(self) -> dict[tuple[int, int], int]:
        """Decode every map once and check its ids; returns ``{(H, W) after preprocessing: index of the first
        map of that size}``.

        Raises:
            DataError: an unreadable map, an id that is not a class of the checkpoint (one line naming the
                file and the ids), an instance map of another size, a crop larger than a map.
        """
        first: dict[tuple[int, int], int] = {}
        for i, f in enumerate(self.samples):
            label, _ = self._arrays(f)
            check_label_ids(label, self.spec, f.label)
            h, w = label.shape
            if self.preprocess is not None:
                pl = plan(self.preprocess, (w, h), None, path=f.label)
                if pl.crop is not None:
                    w, h = pl.crop[2] - pl.crop[0], pl.crop[3] - pl.crop[1]
                elif pl.resize is not None:
                    w, h = pl.resize
            first.setdefault((h, w), i)
        return first

    def __getitem__(self, index: int) -> dict[str, Any]:
        f = self.samples[int(index)]
        label, inst = self._arrays(f)
        check_label_ids(label, self.spec, f.label)
        if self.preprocess is not None:
            pl = plan(self.preprocess, (label.shape[1], label.shape[0]), None, path=f.label)
            label = apply(label, pl, kind="label")
            inst = apply(inst, pl, kind="label") if inst is not None else None
        label_t = torch.from_numpy(label.astype(np.int64))[None]
        inst_t = torch.from_numpy(inst.astype(np.int64))[None] if inst is not None else torch.zeros_like(label_t)
        return {"label": label_t, "instance": inst_t, "id": f.id, "path": str(f.label)}


class _Subset(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """The samples of ``ds`` at ``indices``, with ``extra`` fields added (the preflight checks one map per
    distinct size, with SEAN's style codes)."""

    def __init__(self, ds: Any, indices: list[int], extra: dict[str, Any] | None = None) -> None:
        self.ds, self.indices, self.extra = ds, indices, extra or {}

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> Any:
        return {**self.ds[self.indices[i]], **self.extra}


# --- what a method needs beyond label maps --------------------------------------------------------------
def check_requirements(model: Any, *, instances: Path | None, data_root: Path | None, style: dict[str, Any] | None) -> None:
    """Refuse, in one line, what labels-only generation cannot do for ``model`` with what was given.

    Raises:
        ConfigError: pix2pixHD with ``instance_feat``; instance maps the configuration reads but not given;
            RESAIL without a training split; style options for a method without per-region styles, or
            ``swap_regions``/``interpolate`` (they mix a photo's own style, which labels-only maps lack).
    """
    cfg = model.cfg
    if getattr(cfg, "instance_feat", False):
        raise ConfigError(
            f"{model.name} with instance_feat generates from features encoded from each label map's real photo "
            "(official --use_encoded_image), which labels-only generation does not have; generate a dataset "
            "split with --data-root, or use a checkpoint trained without instance_feat"
        )
    if model.reads_instances() and instances is None:
        raise ConfigError(
            f"this {model.name} checkpoint reads instance maps (no_instance=false or instance-wise retrieval); "
            "pass --instances DIR with a <stem>.png instance map per label map"
        )
    if hasattr(model, "get_database") and data_root is None and not getattr(cfg, "database_root", None):
        raise ConfigError(
            f"{model.name} retrieves guidance segments from its training split's database: pass --data-root DIR "
            "(the dataset it was trained on; the database is built once and cached), or --set database_root=DIR"
        )
    if style:
        if not hasattr(model.nets.get("netG"), "Zencoder"):
            raise ConfigError(f"--style-from: method {model.name!r} has no per-region styles (style control is SEAN's)")
        if style.get("swap_regions") or style.get("interpolate") is not None:
            raise ConfigError(
                "--swap-regions/--interpolate mix a label map's own style with another's, and labels-only maps have "
                "no photo of their own; use --style-from PHOTO alone"
            )


def sean_style_codes(model: Any, style: dict[str, Any] | None, labels: Path,
                     preprocess: Preprocess | None) -> torch.Tensor | None:
    """For SEAN, the style codes ``[1, classes, style_length]`` every label map takes; ``None`` for other methods.

    With ``style["style_from"]`` (a photo) they are the photo's per-region styles
    (:func:`methods.sean.encode_styles`) with its label map (``style["style_label"]``, default
    ``labels/<photo stem>.png``), both preprocessed as the label maps; classes the photo lacks get a zero code.
    Without, every code is zero (see the module docstring).

    Raises:
        DataError: the photo or its label map is missing or unreadable, holds unknown ids, or the sizes differ.
    """
    if not hasattr(model.nets.get("netG"), "Zencoder"):
        return None
    from methods.sean import encode_styles

    photo = Path(style["style_from"]) if style and style.get("style_from") else None
    if photo is None:
        log.info("SEAN: no --style-from: every region takes a zero style code, SEAN's value for a class its style "
                 "photo lacks (relu(fc_mu bias) per class); pass --style-from PHOTO for a photo's styles")
        return torch.zeros(1, model.style_nc, model.cfg.style_length)
    label_path = Path(style["style_label"]) if style.get("style_label") else labels / f"{photo.stem}.png"
    if not photo.is_file():
        raise DataError(f"--style-from {photo}: no such photo (with --labels it is an image file)")
    if not label_path.is_file():
        raise DataError(f"--style-from {photo}: its label map {label_path} does not exist; pass --style-label MAP")
    image, label = read_image(photo), read_map(label_path, "label")
    check_same_size((image.shape[1], image.shape[0]), (label.shape[1], label.shape[0]), photo, label_path)
    check_label_ids(label, model.spec, label_path)
    if preprocess is not None:
        pl = plan(preprocess, (image.shape[1], image.shape[0]), None, path=photo)
        image, label = apply(image, pl, kind="image"), apply(label, pl, kind="label")
    image_t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(127.5).sub(1.0)[None]
    label_t = torch.from_numpy(label.astype(np.int64))[None, None]
    model.train_mode(False)
    log.info("SEAN: styles of %s (label map %s)", photo, label_path)
    return encode_styles(model, image_t, label_t).cpu()


def _with_codes(codes: torch.Tensor) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def transform(batch: dict[str, Any]) -> dict[str, Any]:
        return {**batch, "style_codes": codes.expand(batch["label"].shape[0], *codes.shape[1:])}

    return transform


def generate_labels(model: Any, labels: str | Path, out_dir: Any, *, instances: str | Path | None = None,
                    data_root: Path | None = None, spec: DatasetSpec | None = None, seed: int = 0,
                    batch_size: int = 8, samples: int = 1, progress: bool = True,
                    style: dict[str, Any] | None = None, native_size: bool = False) -> Path:
    """Generate every label map of ``labels`` with a loaded ``model`` into ``out_dir``; returns the folder.

    Args:
        model: A :class:`methods.base.Method` with its weights loaded.
        labels: Folder of ``*.png`` label maps; ``instances``: folder of ``<stem>.png`` instance maps.
        out_dir: An :class:`~bench.outputs.OutputDir` or a path (see :mod:`bench.outputs`).
        data_root: The training dataset's folder, when given (OASIS statistics, RESAIL's database).
        spec: The spec to open ``data_root`` with (default ``model.spec``).
        seed, batch_size, samples: As :func:`bench.generate.generate_split` (outputs do not depend on the
            batch size; maps of several native sizes are generated one at a time).
        style: SEAN: ``{"style_from": PHOTO, "style_label": MAP | None}``.
        native_size: Keep each map's size instead of the configuration's evaluation preprocessing.

    Returns:
        ``out_dir``, holding ``<stem>.png`` (uint8 RGB) per map (``<stem>_s<k>.png`` with ``samples > 1``).

    Raises:
        BenchError: see :func:`check_requirements`, :meth:`LabelFolder.scan` and the preflight's
            :func:`~bench.preflight.check_shapes` (a generated size that is not the map's), in one line.
    """
    from bench import preflight as pf
    from bench.generate import generate_split

    inst_dir = Path(instances) if instances is not None else None
    check_requirements(model, instances=inst_dir, data_root=data_root, style=style)
    c = model.cfg
    config_pre = Preprocess(preprocess_mode=c.preprocess_mode, load_size=c.load_size, crop_size=c.crop_size,
                            aspect_ratio=c.aspect_ratio, no_flip=True).for_eval()
    pre = None if native_size else config_pre
    if inst_dir is not None and not model.reads_instances():
        log.info("--instances: this %s configuration does not read instance maps; they are ignored", model.name)
        inst_dir = None
    ds = LabelFolder(labels, model.spec, pre, instances=inst_dir)
    sizes = ds.scan()
    if data_root is not None:
        model.bind_data(data_root, progress=progress)
    codes = sean_style_codes(model, style, Path(labels), pre)
    extra = {"style_codes": codes[0]} if codes is not None else None
    for first in sizes.values():  # one forward pass per distinct size: the generated size must be the map's
        pf.check_shapes(model, _Subset(ds, [first], extra), seed=seed)
    if len(sizes) > 1:
        log.info("label maps of %d sizes (%s): generated one at a time", len(sizes),
                 ", ".join(f"{w}x{h}" for h, w in sorted(sizes)[:4]))
        batch_size = 1
    stats = _stats_source(model, ds, data_root, spec or model.spec, config_pre)
    return generate_split(model, ds, out_dir, seed=seed, batch_size=batch_size, samples=samples, progress=progress,
                          transform_batch=_with_codes(codes) if codes is not None else None, stats_dataset=stats)


def _stats_source(model: Any, ds: LabelFolder, data_root: Path | None, spec: DatasetSpec, pre: Preprocess) -> Any:
    """What ``before_generate`` may read: OASIS's BatchNorm re-estimation uses label maps (logged which)."""
    if not getattr(model, "ema_stats_stale", False) or getattr(model.cfg, "no_EMA", True):
        return ds
    n = min(len(ds), model.cfg.bn_stat_batches * model.cfg.batch_size)
    if data_root is None:
        log.info("%s: re-estimating the EMA generator's BatchNorm statistics on %d label maps of %s (the official "
                 "update_EMA uses training label maps; pass --data-root to use the training split)", model.name, n,
                 ds.root)
        return ds
    from bench import preflight as pf
    from bench.datasets import open_split

    train = open_split(pf.data_spec(model, spec), data_root, "train", pre)
    log.info("%s: re-estimating the EMA generator's BatchNorm statistics on the training split's label maps (%s), "
             "as the official update_EMA", model.name, data_root)
    return train
