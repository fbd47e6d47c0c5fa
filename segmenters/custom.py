"""The evaluation segmenter of a user dataset (``--dataset custom``), trained on the dataset's own train split.

A user dataset has no published segmenter, so ``bench segmenter train --dataset custom`` trains one, as
sisbench does for the synthetic benchmark (:mod:`segmenters.synthetic`, whose mmseg UNet + FCN head and
training loop :func:`~segmenters.synthetic.fit_segmenter` are reused, with K = the dataset's classes).

* **Data**: every train image and label map is decoded by the dataset's loader and resized to
  ``size x size`` (photos bicubic, labels nearest, no crop), which is how the ``custom`` presets see
  them at evaluation (SPADE's ``resize_and_crop`` at test time resizes to ``crop_size`` square). The
  whole split is held in memory as uint8 (``N x 3 x size x size`` bytes: 20k images at 256 px are 3.9 GB).
  Unlabeled pixels (the dataset's ignore id) become mmseg's ignore index 255, so K <= 255 classes.
* **Recipe** (:data:`CUSTOM_RECIPE`): a 5-stage UNet, 32 channels at full resolution, random 128 px crops
  and horizontal flips, batches of 8, AdamW (lr 1e-3, 100 warm-up steps, cosine decay), 4000 steps by
  default. The val split's mIoU and pixel accuracy at the end are stored with the checkpoint and in every
  run record that uses it, so how far the segmenter can be trusted is on record.
* **Where it goes**: ``$BENCH_CACHE/segmenters/custom-<digest>.pth`` (:func:`bench.datasets.user.segmenter_path`),
  keyed by the dataset's identity (content sha256, class count and names, ignore id, instance maps), with
  ``.sha256`` and ``.json`` (the summary) beside it. Runs on the same dataset find it there; a dataset
  config file can name another file (``segmenter = "path.pth"``). sisbench never writes into the dataset
  folder, and ``--out`` refuses to replace a file it did not write.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import torch

from bench.cache import atomic_write_text
from bench.datasets.spec import DatasetSpec
from bench.errors import CheckpointError, ConfigError, WeightsNotFoundError
from bench.outputs import check_output_file
from segmenters.base import Segmenter
from segmenters.mmcv_ext_standin import ensure_mmseg_importable, standin_installed
from segmenters.mmseg_model import build_segmentor, check_images, file_sha256, predict_labels
from segmenters.synthetic import (
    SyntheticSegConfig,
    fit_segmenter,
    model_config,
    read_sha256_file,
    save_segmenter,
)

log = logging.getLogger(__name__)

#: the default recipe for a user dataset (see the module docstring)
CUSTOM_RECIPE = SyntheticSegConfig(base_channels=32, num_stages=5, batch_size=8, lr=1e-3, warmup_iters=100,
                                   crop_size=128)
DEFAULT_ITERS = 4000
DEFAULT_SIZE = 256
MMSEG_IGNORE = 255


def load_resized(spec: DatasetSpec, root: Path | str, split: str, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One split of a user dataset, resized to ``size x size``, in memory.

    Returns:
        uint8 RGB images ``[N, 3, size, size]`` and uint8 labels ``[N, size, size]`` (class ids, 255 unlabeled).

    Raises:
        DataError: As the loader raises it (missing folder, unpaired or unreadable file, unknown id).
        ConfigError: More than 255 classes.
    """
    from bench.datasets import open_split
    from bench.datasets.transforms import Preprocess

    if spec.num_classes > MMSEG_IGNORE:
        raise ConfigError(f"the segmenter trainer handles up to {MMSEG_IGNORE} classes, the dataset has "
                          f"{spec.num_classes}")
    ds = open_split(spec, root, split, Preprocess.fixed((size, size), no_flip=True))
    n = len(ds)
    images = torch.empty((n, 3, size, size), dtype=torch.uint8)
    labels = torch.empty((n, size, size), dtype=torch.uint8)
    for i in range(n):
        s = ds[i]
        images[i] = ((s["image"].clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
        lab = s["label"][0]
        if spec.ignore_index is not None:
            lab = torch.where(lab == spec.ignore_index, torch.full_like(lab, MMSEG_IGNORE), lab)
        labels[i] = lab.to(torch.uint8)
    return images, labels


def scores_of(model: Any, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
              batch_size: int = 32) -> dict[str, Any]:
    """mIoU and pixel accuracy (fractions) of an mmseg model on uint8 ``images``/``labels`` (255 ignored)."""
    from bench.evaluate import MIOU_CONVENTION
    from bench.metrics.segmentation import SegmentationScores

    scores = SegmentationScores(num_classes=num_classes, ignore_index=MMSEG_IGNORE, convention=MIOU_CONVENTION)
    device = next(model.parameters()).device
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size].float().div(255.0).to(device)
            scores.update(predict_labels(model, batch, batch_size=batch_size).cpu(), labels[start:start + batch_size])
    return scores.summary()


def train_custom_segmenter(
    spec: DatasetSpec,
    data_root: Path | str,
    out_path: Path | str | None = None,
    *,
    iters: int = DEFAULT_ITERS,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    config: SyntheticSegConfig | None = None,
    device: str = "cpu",
    log_every: int = 100,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Train the evaluation segmenter of a user dataset on its train split and score it on its val split.

    Args:
        spec: The user dataset (:func:`bench.datasets.user.resolve_user_dataset`).
        data_root: Its folder.
        out_path: Checkpoint path; default ``$BENCH_CACHE/segmenters/custom-<identity digest>.pth``, where
            runs on this dataset find it.
        iters: Optimisation steps.
        size: Side (px) every image is resized to; a multiple of the UNet's ``2^(num_stages-1)``.
        seed: Seeds initialization, batch order, crops and flips.
        config: Architecture and optimiser (default :data:`CUSTOM_RECIPE`; ``crop_size`` is capped at ``size``).
        device: Where to train.
        log_every: Log the loss every this many steps.
        overwrite: Replace an ``out_path`` that sisbench did not write (checked before training).

    Returns:
        The summary also written to ``<checkpoint>.json``: checkpoint path, file and weights sha256, the
        dataset's identity digest and content hash, val mIoU / pixel accuracy (fractions), steps, time.

    Raises:
        ConfigError: ``iters`` < 1, a ``size`` the UNet cannot take, over 255 classes.
        OutputDirError: ``out_path`` exists and sisbench did not write it.
        DataError: As the loader raises it.
    """
    from bench.cache import key_digest
    from bench.datasets.user import record_identity, segmenter_path

    identity = (spec.extra or {}).get("identity")
    if identity is None:
        raise ConfigError(f"dataset {spec.name!r} is not a user dataset; use --dataset custom --data-root DIR")
    if iters < 1:
        raise ConfigError(f"--iters must be >= 1, got {iters}")
    cfg = config or CUSTOM_RECIPE
    if cfg.crop_size is not None and cfg.crop_size > size:
        cfg = dataclasses.replace(cfg, crop_size=size)
    if size < 1 or size % cfg.size_divisor:
        raise ConfigError(f"--size must be a positive multiple of {cfg.size_divisor} (the UNet downsamples "
                          f"{cfg.num_stages - 1} times), got {size}")
    out = Path(out_path) if out_path is not None else segmenter_path(identity)
    check_output_file(out, overwrite=overwrite, kind="segmenter checkpoint")  # before the long training
    ensure_mmseg_importable()
    start, cpu_start = time.perf_counter(), time.process_time()
    images, labels = load_resized(spec, data_root, "train", size)
    val_images, val_labels = load_resized(spec, data_root, "val", size)
    log.info("custom segmenter: %d train / %d val images at %dx%d, %d classes, %d steps on %s", len(images),
             len(val_images), size, size, spec.num_classes, iters, device)
    fit = fit_segmenter(images, labels, class_names=spec.class_names, iters=iters, seed=seed, cfg=cfg,
                        log_every=log_every, where=str(data_root), start=(start, cpu_start), device=device)
    val = scores_of(fit.model, val_images, val_labels, spec.num_classes)
    import mmseg

    meta = {
        "dataset_meta": {"classes": list(spec.class_names)},
        "config": asdict(cfg),
        "iters": iters,
        "seed": seed,
        "train_images": len(images),
        "image_size": [size, size],
        "dataset_identity": record_identity(spec),
        "identity_digest": key_digest(identity),
        "data_hash": identity["content"],
        "val": {"miou": float(val["miou"]), "accu": float(val["accu"]), "n_images": len(val_images)},
        "versions": {"torch": str(torch.__version__), "mmseg": str(mmseg.__version__)},
        "weights_sha256": fit.weights_sha256,
    }
    sha = save_segmenter(out, fit.state, meta)
    summary = {
        "checkpoint": str(out), "sha256": sha, "weights_sha256": fit.weights_sha256,
        "identity_digest": meta["identity_digest"], "data_hash": meta["data_hash"],
        "classes": spec.num_classes, "val_miou": meta["val"]["miou"], "val_accu": meta["val"]["accu"],
        "val_images": len(val_images), "train_images": len(images), "iters": iters, "size": size, "seed": seed,
        "params": fit.params, "final_loss": fit.final_loss, "wall_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu_start, "found_by_runs": out == segmenter_path(identity),
    }
    atomic_write_text(out.with_name(out.name + ".json"), json.dumps(summary, indent=2))
    log.info("wrote %s (sha256 %s); val mIoU %.4f, pixel accuracy %.4f", out, sha, val["miou"], val["accu"])
    return summary


class CustomSegmenter(Segmenter):
    """A segmenter from :func:`train_custom_segmenter`, for the user dataset ``spec``.

    Args:
        checkpoint: The ``.pth`` file; its ``.sha256`` sidecar is checked (or ``sha256``).
        spec: The dataset; the checkpoint must name the same classes (``meta.dataset_meta.classes``).
        device: Where to run.
        batch_size: Images per forward pass in :meth:`predict`.

    Raises:
        WeightsNotFoundError: No such file. CheckpointError: a missing or mismatched checksum, other
            classes, a network that does not match its recorded config.
    """

    name: ClassVar[str] = "custom"
    class_names: tuple[str, ...]  # type: ignore[misc]  # per instance: the dataset's classes
    ignore_index: int  # type: ignore[misc]

    def __init__(self, checkpoint: Path | str, *, spec: DatasetSpec, sha256: str | None = None,
                 device: str | torch.device = "cpu", batch_size: int = 32) -> None:
        path = Path(checkpoint)
        if not path.is_file():
            raise WeightsNotFoundError(f"custom segmenter checkpoint {path} is missing; train it with "
                                       f"`bench segmenter train {(spec.extra or {}).get('hint', '--dataset custom')}`")
        if sha256 is None:
            side = path.with_name(path.name + ".sha256")
            if not side.is_file():
                raise CheckpointError(f"no checksum for {path}: expected {side} (written by `bench segmenter train`)")
            sha256 = read_sha256_file(side)
        meta = _meta(path, sha256)
        try:
            cfg = SyntheticSegConfig(**{k: v for k, v in dict(meta.get("config") or {}).items()})
        except (TypeError, ConfigError) as e:
            raise CheckpointError(f"{path}: its recorded segmenter config is not usable ({e}); retrain it") from None
        self.checkpoint = path
        self.sha256 = sha256.lower()
        self.meta = meta
        self.class_names = tuple(spec.class_names)
        self.ignore_index = spec.ignore_index if spec.ignore_index is not None else MMSEG_IGNORE
        self.device = torch.device(device)
        self.batch_size = batch_size
        ensure_mmseg_importable()
        self.model = build_segmentor(model_config(cfg, spec.num_classes), class_names=self.class_names,
                                     checkpoint=path, sha256=self.sha256, device=self.device)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class ids ``[B, H, W]`` (int64) of RGB images ``[B, 3, H, W]`` in [0, 1], any size."""
        check_images(images)
        return predict_labels(self.model, images.to(self.device), batch_size=self.batch_size).to(images.device)

    def identity(self) -> dict[str, Any]:
        val = self.meta.get("val") or {}
        return {
            "name": self.name,
            "checkpoint": self.checkpoint.name,
            "sha256": self.sha256,
            "weights_sha256": str(self.meta.get("weights_sha256", "")),
            "data_hash": str(self.meta.get("data_hash", "")),
            "identity_digest": str(self.meta.get("identity_digest", "")),
            "val_miou": val.get("miou"),
            "val_accu": val.get("accu"),
            "trained": f"{self.meta.get('iters')} steps at {self.meta.get('image_size')} on "
                       f"{self.meta.get('train_images')} train images",
            "input": "RGB in [0, 1], any size (padded to the UNet's size divisor)",
            "mmcv_ops": "stand-in (mmcv-lite)" if standin_installed() else "compiled",
        }


def _meta(path: Path, sha256: str) -> dict[str, Any]:
    """The checkpoint's ``meta`` (after its sha256 is checked): the config the network is built from."""
    found = file_sha256(path)
    if found != sha256.lower():
        raise CheckpointError(f"segmenter checkpoint {path} has sha256 {found[:16]}..., expected {sha256[:16]}...; "
                              "retrain it with `bench segmenter train`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - unpickling errors share no base class
        raise CheckpointError(f"cannot read segmenter checkpoint {path} ({type(e).__name__}); retrain it") from None
    meta = ckpt.get("meta") if isinstance(ckpt, dict) else None
    if not isinstance(meta, dict) or "config" not in meta:
        raise CheckpointError(f"{path} is not a checkpoint from `bench segmenter train --dataset custom` "
                              "(no meta.config)")
    return meta


__all__ = ["CUSTOM_RECIPE", "CustomSegmenter", "load_resized", "scores_of", "train_custom_segmenter"]
