"""The evaluation segmenter of the synthetic landscape dataset: a small UNet built with mmsegmentation.

The synthetic dataset (``bench.datasets.synthetic``) has no published segmenter, so we train one and
ship it (``segmenters/weights/synthetic_seg.pth``, 1.8 MB, 0.45 M parameters). It is an mmseg ``EncoderDecoder``
with mmseg's ``UNet`` backbone and an ``FCNHead``, built from a config dict through mmseg's
registry, exactly as the segmenters of the real datasets are; only the widths are small enough to
train in a few minutes on 2 CPU cores. A UNet rather than a dilated ResNet because the scenes are
64x64 with objects a few pixels wide: a decoder at full resolution keeps their boundaries, where an
output stride of 8 would blur them into 8x8 blocks.

Training (:func:`train_synthetic_segmenter`) is plain PyTorch over the mmseg model: mmseg's data
preprocessor, loss and ``train_step``; AdamW with warm-up and cosine decay; random 32x32 crops and
horizontal flips (crops make a step 4x cheaper, and the fully convolutional net is then applied to
whole 64x64 images); batches drawn from a seeded ``torch.Generator``; one CPU thread. The same
seed, data and torch build give the same weights (see :func:`state_dict_sha256`).

Inputs are RGB in [0, 1]; the model's data preprocessor scales them exactly as in training (the
8-bit pixel values divided by 255), so :class:`SyntheticSegmenter` needs no other preprocessing.
"""

from __future__ import annotations

import hashlib
import io
import logging
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from bench.datasets.custom import list_split
from bench.datasets.io import read_image, read_map
from bench.datasets.synthetic import CLASS_NAMES, GENERATOR_VERSION, SYNTHETIC_SPEC, generate_sample
from bench.errors import CheckpointError, ConfigError, DataError, NonFiniteLossError, WeightsNotFoundError
from bench.outputs import check_output_file, write_file_atomic
from segmenters import SEGMENTERS
from segmenters.base import Segmenter
from segmenters.mmcv_ext_standin import ensure_mmseg_importable, standin_installed
from segmenters.mmseg_model import build_segmentor, check_images, file_sha256, predict_labels

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
CHECKPOINT = WEIGHTS_DIR / "synthetic_seg.pth"
FINGERPRINT_SAMPLES = 16  # training samples hashed into the checkpoint, to detect a changed generator


@dataclass(frozen=True, kw_only=True)
class SyntheticSegConfig:
    """Architecture and optimisation of the synthetic segmenter (the defaults made the shipped checkpoint)."""

    base_channels: int = 16  # UNet width at full resolution; doubles at every stage
    num_stages: int = 4  # 3 downsamplings: 64 -> 8 px at the bottleneck
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_iters: int = 50
    hflip: bool = True
    crop_size: int | None = 32  # random square training crops (None: whole images); 4x cheaper steps

    def __post_init__(self) -> None:
        for name in ("base_channels", "num_stages", "batch_size", "warmup_iters"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < (0 if name == "warmup_iters" else 1):
                raise ConfigError(f"SyntheticSegConfig.{name} must be a positive int, got {value!r}")
        if self.num_stages < 2:
            raise ConfigError(f"SyntheticSegConfig.num_stages must be >= 2, got {self.num_stages}")
        if self.crop_size is not None and (self.crop_size < 1 or self.crop_size % self.size_divisor):
            raise ConfigError(
                f"SyntheticSegConfig.crop_size must be a positive multiple of {self.size_divisor}, got {self.crop_size}"
            )
        if not self.lr > 0 or self.weight_decay < 0:
            raise ConfigError(
                f"SyntheticSegConfig needs lr > 0 and weight_decay >= 0, got {self.lr}, {self.weight_decay}"
            )

    @property
    def size_divisor(self) -> int:
        return int(2 ** (self.num_stages - 1))


def model_config(
    cfg: SyntheticSegConfig = SyntheticSegConfig(), num_classes: int = len(CLASS_NAMES)
) -> dict[str, Any]:
    """The mmseg model config of the synthetic segmenter (mmseg's ``fcn_unet_s5-d16``, slimmed)."""
    n = cfg.num_stages
    norm_cfg = {"type": "BN", "requires_grad": True}
    return {
        "model": {
            "type": "EncoderDecoder",
            "data_preprocessor": {
                "type": "SegDataPreProcessor",
                # pixels / 255: the network sees RGB in [0, 1], as the benchmark passes images
                "mean": [0.0, 0.0, 0.0],
                "std": [255.0, 255.0, 255.0],
                "bgr_to_rgb": True,
                "pad_val": 0,
                "seg_pad_val": 255,
                "size_divisor": cfg.size_divisor,
                "test_cfg": {"size_divisor": cfg.size_divisor},  # UNet needs sides divisible by 2^(n-1)
            },
            "backbone": {
                "type": "UNet",
                "in_channels": 3,
                "base_channels": cfg.base_channels,
                "num_stages": n,
                "strides": (1,) * n,
                "enc_num_convs": (2,) * n,
                "dec_num_convs": (2,) * (n - 1),
                "downsamples": (True,) * (n - 1),
                "enc_dilations": (1,) * n,
                "dec_dilations": (1,) * (n - 1),
                "norm_cfg": norm_cfg,
                "act_cfg": {"type": "ReLU"},
                "upsample_cfg": {"type": "InterpConv"},
            },
            "decode_head": {
                "type": "FCNHead",
                "in_channels": cfg.base_channels,
                "in_index": n - 1,  # the full-resolution decoder output
                "channels": cfg.base_channels,
                "num_convs": 1,
                "concat_input": False,
                "dropout_ratio": 0.0,
                "num_classes": num_classes,
                "norm_cfg": norm_cfg,
                "align_corners": False,
                "loss_decode": {
                    "type": "CrossEntropyLoss",
                    "use_sigmoid": False,
                    "loss_weight": 1.0,
                    "avg_non_ignore": True,
                },
            },
            "train_cfg": {},
            "test_cfg": {"mode": "whole"},
        }
    }


# --------------------------------------------------------------------------------------------------
# Data


def load_split(
    root: Path | str, split: str, *, limit: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Read a split of the synthetic dataset into memory (it is small: 2000 x 64 x 64).

    Returns:
        uint8 images ``[N, 3, H, W]`` (RGB) and uint8 labels ``[N, H, W]`` (ignore index 255).
    """
    listing = list_split(Path(root), split, SYNTHETIC_SPEC)
    samples = listing.samples[:limit] if limit is not None else listing.samples
    if not samples:
        raise DataError(
            f"{root}: the {split} split is empty; generate the dataset with `bench data synthetic`"
        )
    images = np.stack([read_image(s.image) for s in samples])
    labels = np.stack([read_map(s.label) for s in samples])
    if labels.dtype != np.uint8 or images.shape[1:3] != labels.shape[1:]:
        raise DataError(
            f"{root}: expected 8-bit label maps the size of the images, got {labels.dtype} {labels.shape}"
        )
    return torch.from_numpy(images).permute(0, 3, 1, 2).contiguous(), torch.from_numpy(labels)


def data_fingerprint(images: torch.Tensor, labels: torch.Tensor) -> str:
    """sha256 of the first training samples: ties a checkpoint to the generator output it saw."""
    digest = hashlib.sha256()
    for i in range(min(FINGERPRINT_SAMPLES, len(images))):
        digest.update(images[i].permute(1, 2, 0).contiguous().numpy().tobytes())
        digest.update(labels[i].numpy().tobytes())
    return digest.hexdigest()


def default_data_fingerprint(*, seed: int = 0, size: int = 64) -> str:
    """The fingerprint of the default synthetic dataset, regenerated from the generator itself."""
    samples = [generate_sample(seed, "train", i, size) for i in range(FINGERPRINT_SAMPLES)]
    images = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2)
    labels = torch.from_numpy(np.stack([s[1] for s in samples]))
    return data_fingerprint(images, labels)


# --------------------------------------------------------------------------------------------------
# Training


@dataclass(frozen=True)
class TrainSummary:
    """What :func:`train_synthetic_segmenter` produced."""

    checkpoint: Path
    sha256: str  # of the file; differs between identical trainings (torch.save embeds a random id)
    weights_sha256: (
        str  # of the tensors (state_dict_sha256): identical for the same seed, data and torch build
    )
    size_bytes: int
    params: int
    iters: int
    seed: int
    wall_s: float
    cpu_s: float  # process CPU time (all threads): a contention-free measure of the cost
    final_loss: float
    val_miou: float | None
    val_accu: float | None


def state_dict_sha256(state: Mapping[str, torch.Tensor]) -> str:
    """sha256 of a state dict's names, dtypes, shapes and values, independent of how it was saved.

    ``torch.save`` writes a random serialization id into every file, so two saves of the same
    weights never share a file sha256; this digest is what reproduces.
    """
    digest = hashlib.sha256()
    for key in sorted(state):
        tensor = state[key].detach().cpu().contiguous()
        digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _lr_at(it: int, iters: int, cfg: SyntheticSegConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if it < cfg.warmup_iters:
        return cfg.lr * (it + 1) / cfg.warmup_iters
    t = (it - cfg.warmup_iters) / max(iters - cfg.warmup_iters, 1)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


def _batch(
    images: torch.Tensor,
    labels: torch.Tensor,
    index: torch.Tensor,
    flip: torch.Tensor,
    crops: torch.Tensor | None = None,
    crop_size: int | None = None,
) -> dict[str, Any]:
    """An mmseg training batch: BGR images as mmseg's loaders give them, and ``SegDataSample``s."""
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample

    x, y = images[index], labels[index].long()
    if crops is not None and crop_size is not None:
        x = torch.stack(
            [
                xi[:, top : top + crop_size, left : left + crop_size]
                for xi, (top, left) in zip(x, crops.tolist())
            ]
        )
        y = torch.stack(
            [yi[top : top + crop_size, left : left + crop_size] for yi, (top, left) in zip(y, crops.tolist())]
        )
    x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    y = torch.where(flip[:, None, None], y.flip(-1), y)
    h, w = y.shape[-2:]
    samples = []
    for yi in y:
        s = SegDataSample(metainfo={"img_shape": (h, w), "ori_shape": (h, w)})
        s.gt_sem_seg = PixelData(data=yi[None])
        samples.append(s)
    return {"inputs": list(x.flip(1)), "data_samples": samples}


def train_synthetic_segmenter(
    data_root: Path | str,
    out_path: Path | str,
    *,
    iters: int = 2000,
    seed: int = 0,
    config: SyntheticSegConfig | None = None,
    evaluate: bool = True,
    log_every: int = 100,
    num_threads: int = 1,
    overwrite: bool = False,
) -> TrainSummary:
    """Train the synthetic segmenter and write its checkpoint and ``<out_path>.sha256``.

    Args:
        data_root: The synthetic dataset (``ROOT/{train,val}_{img,label}``), e.g. from
            ``bench.datasets.synthetic.ensure_synthetic()``.
        out_path: Where to write the checkpoint (``{"state_dict", "meta"}``, loadable with
            ``weights_only=True``).
        iters: Optimisation steps.
        seed: Seeds the initialization and the batch order.
        config: Architecture and optimiser settings; the defaults made the shipped checkpoint.
        evaluate: Score the val split at the end (mIoU, pixel accuracy).
        log_every: Log the loss every this many steps (to the ``segmenters.synthetic`` logger).
        num_threads: torch CPU threads while training (restored afterwards). One thread by default:
            the result then does not depend on the machine's core count, and the small
            convolutions gain little from a second thread, which busy-waits when cores are shared.
        overwrite: Replace an existing ``out_path`` that sisbench did not write (one whose
            ``.sha256`` sidecar does not match it); checked before training.

    Returns:
        The checkpoint's path, sha256, size, parameter count, wall time and val scores.
    """
    cfg = config or SyntheticSegConfig()
    if iters < 1:
        raise ConfigError(f"iters must be >= 1, got {iters}")
    if num_threads < 1:
        raise ConfigError(f"num_threads must be >= 1, got {num_threads}")
    check_output_file(out_path, overwrite=overwrite, kind="segmenter checkpoint")  # before the long training
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(num_threads)
    try:
        return _train(
            Path(data_root),
            Path(out_path),
            iters=iters,
            seed=seed,
            cfg=cfg,
            evaluate=evaluate,
            log_every=log_every,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _train(
    data_root: Path,
    out_path: Path,
    *,
    iters: int,
    seed: int,
    cfg: SyntheticSegConfig,
    evaluate: bool,
    log_every: int,
) -> TrainSummary:
    ensure_mmseg_importable()
    start, cpu_start = time.perf_counter(), time.process_time()
    images, labels = load_split(data_root, "train")
    if int(labels[labels != 255].max()) >= len(CLASS_NAMES):
        raise DataError(f"{data_root}: train labels exceed the {len(CLASS_NAMES)} synthetic classes")
    log.info(
        "synthetic segmenter: %d train images %s from %s", len(images), tuple(images.shape[-2:]), data_root
    )
    fit = fit_segmenter(images, labels, class_names=CLASS_NAMES, iters=iters, seed=seed, cfg=cfg,
                        log_every=log_every, where=str(data_root), start=(start, cpu_start))

    import mmseg

    meta = {
        "dataset_meta": {"classes": list(CLASS_NAMES)},
        "config": asdict(cfg),
        "iters": iters,
        "seed": seed,
        "train_images": len(images),
        "image_size": [int(d) for d in images.shape[-2:]],
        "generator_version": GENERATOR_VERSION,
        "data_fingerprint": data_fingerprint(images, labels),
        "versions": {"torch": str(torch.__version__), "mmseg": str(mmseg.__version__)},
        "weights_sha256": fit.weights_sha256,
    }
    out = out_path
    sha = save_segmenter(out, fit.state, meta)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    log.info(
        "wrote %s (%d bytes, sha256 %s, weights %s) in %.0f s",
        out,
        out.stat().st_size,
        sha,
        meta["weights_sha256"],
        wall,
    )

    miou = accu = None
    if evaluate:
        scores = evaluate_segmenter(SyntheticSegmenter(out, config=cfg), data_root, "val")
        miou, accu = float(scores["miou"]), float(scores["accu"])
        log.info("val mIoU %.4f  pixel accuracy %.4f", miou, accu)
    return TrainSummary(
        out,
        sha,
        fit.weights_sha256,
        out.stat().st_size,
        fit.params,
        iters,
        seed,
        wall,
        cpu,
        fit.final_loss,
        miou,
        accu,
    )


@dataclass(frozen=True)
class Fit:
    """A trained segmenter in memory (from :func:`fit_segmenter`)."""

    model: Any  # the mmseg EncoderDecoder, in eval mode
    state: dict[str, torch.Tensor]  # detached copy of its state dict
    weights_sha256: str  # state_dict_sha256(state)
    params: int
    final_loss: float


def fit_segmenter(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    class_names: tuple[str, ...],
    iters: int,
    seed: int,
    cfg: SyntheticSegConfig,
    log_every: int = 100,
    where: str = "the data",
    start: tuple[float, float] | None = None,
    device: str | torch.device = "cpu",
) -> Fit:
    """Train the UNet of :func:`model_config` for ``len(class_names)`` classes (the recipe of the module docstring).

    Args:
        images: uint8 RGB ``[N, 3, H, W]``, all of one size (sides divisible by ``cfg.size_divisor``).
        labels: uint8 ``[N, H, W]``, class ids ``0..K-1`` and 255 for unlabeled pixels (mmseg's ignore index).
        class_names: The K classes, in id order (stored as the checkpoint's ``dataset_meta``).
        iters: Optimisation steps.
        seed: Seeds the initialization, the batch order, the crops and flips.
        cfg: Architecture and optimiser settings.
        log_every: Log the loss every this many steps (0: never).
        where: How messages name the data.
        start: ``(perf_counter, process_time)`` at which the caller started, for the logged times.
        device: Where to train (mmseg's data preprocessor moves each batch there).

    Returns:
        The model (eval mode), a detached copy of its state dict and its :func:`state_dict_sha256`.

    Raises:
        ConfigError: ``crop_size`` larger than the images. DataError: image sides not divisible by
            ``cfg.size_divisor``. NonFiniteLossError: the loss became inf/NaN.
    """
    from mmengine.logging import MMLogger
    from mmengine.optim import OptimWrapper

    t0, c0 = start or (time.perf_counter(), time.process_time())
    if cfg.crop_size is not None and cfg.crop_size > min(images.shape[-2:]):
        raise ConfigError(f"crop_size {cfg.crop_size} exceeds the images {tuple(images.shape[-2:])}")
    if images.shape[-1] % cfg.size_divisor or images.shape[-2] % cfg.size_divisor:
        raise DataError(
            f"{where}: image sides must be divisible by {cfg.size_divisor}, got {tuple(images.shape[-2:])}"
        )
    torch.manual_seed(seed)  # mmseg's init_weights draws from the global generator
    model = build_segmentor(model_config(cfg, len(class_names)), class_names=class_names)
    mm_logger = MMLogger.get_current_instance()
    level = mm_logger.level
    mm_logger.setLevel(logging.WARNING)  # init_weights logs every parameter's initializer at INFO
    try:
        model.init_weights()
    finally:
        mm_logger.setLevel(level)
    model.to(device)
    model.train()
    params = sum(p.numel() for p in model.parameters())
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    optim_wrapper = OptimWrapper(optimizer)
    gen = torch.Generator().manual_seed(seed)

    order = torch.randperm(len(images), generator=gen)
    cursor, loss_value = 0, float("nan")
    for it in range(iters):
        if cursor + cfg.batch_size > len(order):  # a new epoch: reshuffle
            order, cursor = torch.randperm(len(images), generator=gen), 0
        index = order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size
        flip = (
            torch.rand(len(index), generator=gen) < 0.5
            if cfg.hflip
            else torch.zeros(len(index), dtype=torch.bool)
        )
        crops = None
        if cfg.crop_size is not None:
            room = torch.tensor([images.shape[-2] - cfg.crop_size + 1, images.shape[-1] - cfg.crop_size + 1])
            crops = (torch.rand(len(index), 2, generator=gen) * room).long()
        for group in optimizer.param_groups:
            group["lr"] = _lr_at(it, iters, cfg)
        log_vars = model.train_step(_batch(images, labels, index, flip, crops, cfg.crop_size), optim_wrapper)
        loss_value = float(log_vars["loss"])
        if not math.isfinite(loss_value):
            raise NonFiniteLossError(
                f"segmenter loss became {loss_value} at step {it}; lower the lr (now {cfg.lr})"
            )
        if log_every and (it + 1) % log_every == 0:
            log.info(
                "step %d/%d  loss %.4f  lr %.2e  %.0f s (cpu %.0f s)",
                it + 1,
                iters,
                loss_value,
                _lr_at(it, iters, cfg),
                time.perf_counter() - t0,
                time.process_time() - c0,
            )
    model.eval()
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return Fit(model, state, state_dict_sha256(state), params, loss_value)


def save_segmenter(out: Path, state: dict[str, torch.Tensor], meta: dict[str, Any]) -> str:
    """Write ``{"state_dict", "meta"}`` to ``out`` and ``<out>.sha256`` (both atomic); returns the file's sha256."""
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()  # the zip's folder name is then "archive", whatever the file is called
    torch.save({"state_dict": state, "meta": meta}, buffer)
    # atomic (hidden temp name + os.replace, umask mode): an interrupted run never leaves half a checkpoint
    write_file_atomic(out, lambda f: f.write(buffer.getbuffer()))
    sha = file_sha256(out)
    sidecar = f"{sha}  {out.name}\n".encode()
    write_file_atomic(out.with_name(out.name + ".sha256"), lambda f: f.write(sidecar))
    return sha


def evaluate_segmenter(
    segmenter: Segmenter,
    data_root: Path | str,
    split: str = "val",
    *,
    limit: int | None = None,
    batch_size: int = 50,
) -> dict[str, Any]:
    """Score ``segmenter`` on the real images of a synthetic split (mIoU and pixel accuracy, fractions)."""
    from bench.metrics.segmentation import SegmentationScores

    images, labels = load_split(data_root, split, limit=limit)
    scores = SegmentationScores(num_classes=segmenter.num_classes, ignore_index=segmenter.ignore_index)
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].float() / 255.0
        scores.update(segmenter.predict(batch), labels[start : start + batch_size])
    return scores.summary()


# --------------------------------------------------------------------------------------------------
# The segmenter


def read_sha256_file(path: Path) -> str:
    """The hex digest in a ``sha256sum``-style file (``<hex>  <name>``)."""
    try:
        token = path.read_text().split()[0].lower()
    except (OSError, IndexError) as exc:
        raise CheckpointError(
            f"cannot read the checksum file {path}; restore it from the repository"
        ) from exc
    if len(token) != 64 or any(c not in "0123456789abcdef" for c in token):
        raise CheckpointError(f"{path} does not hold a sha256 hex digest; restore it from the repository")
    return token


@SEGMENTERS.register("synthetic")
class SyntheticSegmenter(Segmenter):
    """The shipped UNet segmenter of the synthetic dataset (8 classes, ignore index 255).

    Args:
        checkpoint: Defaults to the shipped ``segmenters/weights/synthetic_seg.pth``.
        sha256: Expected sha256 of the checkpoint; defaults to the content of ``<checkpoint>.sha256``.
        device: Where to run.
        batch_size: Images per forward pass in :meth:`predict`.
    """

    name: ClassVar[str] = "synthetic"
    class_names: ClassVar[tuple[str, ...]] = CLASS_NAMES
    ignore_index: ClassVar[int] = 255

    def __init__(
        self,
        checkpoint: Path | str | None = None,
        *,
        sha256: str | None = None,
        device: str | torch.device = "cpu",
        batch_size: int = 64,
        config: SyntheticSegConfig | None = None,
    ) -> None:
        path = Path(checkpoint) if checkpoint is not None else CHECKPOINT
        if not path.is_file():
            raise WeightsNotFoundError(
                f"synthetic segmenter checkpoint {path} is missing; restore it from the repository or retrain it "
                "(see segmenters/weights/README.md)"
            )
        if sha256 is None:
            sha_file = path.with_name(path.name + ".sha256")
            if not sha_file.is_file():
                raise CheckpointError(f"no checksum for {path}: expected {sha_file} or pass sha256=")
            sha256 = read_sha256_file(sha_file)
        self.checkpoint = path
        self.sha256 = sha256.lower()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.model = build_segmentor(
            model_config(config or SyntheticSegConfig()),
            class_names=CLASS_NAMES,
            checkpoint=path,
            sha256=self.sha256,
            device=self.device,
        )

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class ids ``[B, H, W]`` (int64) of RGB images ``[B, 3, H, W]`` in [0, 1]."""
        check_images(images)
        labels = predict_labels(self.model, images.to(self.device), batch_size=self.batch_size)
        return labels.to(images.device)

    def identity(self) -> dict[str, str]:
        return {
            "name": self.name,
            "checkpoint": self.checkpoint.name,
            "sha256": self.sha256,
            "input": "RGB in [0, 1], rounded to 8 bit, native resolution (64x64)",
            "mmcv_ops": "stand-in (mmcv-lite)" if standin_installed() else "compiled",
        }
