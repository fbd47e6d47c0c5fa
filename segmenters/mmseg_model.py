"""Build, load and run mmsegmentation models: the shared plumbing of every mmseg-based segmenter.

Three rules, all from the evaluation protocol (see STYLE.md §10):

* the network comes from an mmseg config (a file, a config shipped inside the mmseg package, or a
  dict) built through mmseg's registry, so architectures are exactly mmseg's;
* checkpoints load with ``torch.load(weights_only=True)`` and ``strict=True``, after an optional
  sha256 check, so a wrong or truncated file fails instead of scoring with half-random weights;
* the class list is pinned by the caller and never read or guessed from the checkpoint (mmseg's
  ``init_model`` falls back to a dataset's classes when the checkpoint lacks them); a checkpoint
  that does carry class names must agree with the pinned list.

Inference runs at the images' native resolution (no test-pipeline resize) through the model's own
``data_preprocessor`` and ``test_step``, i.e. the same normalization, padding and whole/slide
inference that ``tools/test.py`` uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from bench.errors import CheckpointError, ConfigError, DataError, WeightsNotFoundError
from segmenters.mmcv_ext_standin import ensure_mmseg_importable

if TYPE_CHECKING:
    from mmengine.config import Config

ConfigSource = str | Path | Mapping[str, Any]


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks (checkpoints can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_config_dir() -> Path:
    """The ``configs/`` folder that ships inside the installed mmsegmentation package."""
    ensure_mmseg_importable()
    import mmseg

    return Path(mmseg.__file__).parent / ".mim" / "configs"


def packaged_config(relpath: str) -> Path:
    """Path of a config shipped with mmseg, e.g. ``"deeplabv3/deeplabv3_r50-d8_4xb2-80k_cityscapes-512x1024.py"``."""
    path = packaged_config_dir() / relpath
    if not path.is_file():
        raise ConfigError(
            f"mmseg config {relpath!r} not found under {packaged_config_dir()}; "
            "pass a path relative to mmseg's configs/ folder (e.g. 'upernet/upernet_r50_4xb2-40k_cityscapes-512x1024.py')"
        )
    return path


def load_config(source: ConfigSource, overrides: Mapping[str, Any] | None = None) -> Config:
    """Read an mmseg config and apply dotted-key overrides.

    Args:
        source: a config file, a path relative to mmseg's packaged ``configs/`` folder, or a dict
            holding at least ``model``.
        overrides: ``{"model.backbone.depth": 18, ...}``, merged with mmengine's ``merge_from_dict``.

    Returns:
        The mmengine ``Config``; the network is ``cfg.model``.
    """
    ensure_mmseg_importable()
    from mmengine.config import Config

    if isinstance(source, Mapping):
        cfg = Config(dict(source))
    else:
        path = Path(source)
        if not path.is_file():
            path = packaged_config(str(source))
        cfg = Config.fromfile(str(path))
    if "model" not in cfg:
        raise ConfigError(f"mmseg config {source!r} has no 'model' entry; expected an mmseg model config")
    if overrides:
        cfg.merge_from_dict(dict(overrides))
    return cfg


def build_segmentor(
    config: ConfigSource,
    *,
    class_names: Sequence[str],
    checkpoint: str | Path | None = None,
    sha256: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    device: str | torch.device = "cpu",
) -> nn.Module:
    """Build an mmseg segmentor from its config and (optionally) load a checkpoint into it.

    Without a checkpoint the weights are PyTorch's default initialization (no ``init_weights``,
    so nothing is downloaded); call ``model.init_weights()`` yourself before training.

    Args:
        config: see :func:`load_config`.
        class_names: the class list, pinned by the caller; must match the decode head's outputs.
        checkpoint: a ``.pth`` file (plain state dict or mmengine's ``{"state_dict", "meta"}``).
        sha256: expected sha256 of ``checkpoint``; checked before anything is unpickled.
        overrides: dotted-key config overrides, see :func:`load_config`.
        device: where the model lives.

    Returns:
        The segmentor (an ``mmseg.models.BaseSegmentor``) in eval mode, SyncBN replaced by BN.
    """
    cfg = load_config(config, overrides)
    model_cfg = cfg.model.copy()
    model_cfg.pop("pretrained", None)  # we load our own weights; never fetch ImageNet ones
    import mmseg.models  # noqa: F401  (fills mmseg's MODELS registry)
    from mmengine.model import revert_sync_batchnorm
    from mmengine.registry import DefaultScope
    from mmseg.registry import MODELS

    # sub-modules (data_preprocessor, losses) are built through mmengine's root registry, which
    # resolves mmseg's names only inside the 'mmseg' scope; scope it rather than set it globally
    with DefaultScope.overwrite_default_scope("mmseg"):
        try:
            model = MODELS.build(model_cfg)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"cannot build the mmseg model from {_describe(config)}: {exc}") from exc
    model = revert_sync_batchnorm(model)  # SyncBN needs a process group; BN is identical at eval

    num_out = int(model.decode_head.num_classes)
    if num_out != len(class_names):
        raise ConfigError(
            f"{_describe(config)} predicts {num_out} classes but {len(class_names)} class names were "
            "pinned; set model.decode_head.num_classes or pass the matching class list"
        )
    model.dataset_meta = {"classes": tuple(class_names)}
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, sha256=sha256, class_names=class_names)
    return model.to(device).eval()


def load_checkpoint(
    model: nn.Module,
    path: str | Path,
    *,
    sha256: str | None = None,
    class_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Load ``path`` into ``model`` with ``weights_only=True`` and ``strict=True``.

    Args:
        model: the network to fill.
        path: a plain state dict, or a dict with ``state_dict`` (and optionally ``meta``).
        sha256: if given, the file must have this sha256.
        class_names: if given and the checkpoint names its classes (mmengine's
            ``meta.dataset_meta.classes`` or mmseg 0.x's ``meta.CLASSES``), they must agree.

    Returns:
        The checkpoint's ``meta`` dict (empty if it has none).
    """
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"segmenter checkpoint {path} does not exist; download or train it first")
    if sha256 is not None:
        found = file_sha256(path)
        if found != sha256.lower():
            raise CheckpointError(
                f"segmenter checkpoint {path} has sha256 {found[:16]}..., expected {sha256[:16]}...; "
                "the file is corrupt or a different model: restore or re-download it"
            )
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling errors have no common base class
        raise CheckpointError(
            f"cannot read segmenter checkpoint {path} with weights_only=True ({_load_reason(exc)}); "
            "expected a torch.save'd state dict of tensors and plain metadata (strip optimizer/runner state first)"
        ) from exc
    if not isinstance(ckpt, Mapping):
        raise CheckpointError(f"segmenter checkpoint {path} holds a {type(ckpt).__name__}, expected a dict")
    state = ckpt.get("state_dict", ckpt)
    meta = ckpt.get("meta") if isinstance(ckpt.get("meta"), Mapping) else {}
    if (
        not isinstance(state, Mapping)
        or not state
        or not all(isinstance(v, torch.Tensor) for v in state.values())
    ):
        raise CheckpointError(
            f"segmenter checkpoint {path} has no tensor state dict (under 'state_dict' or top level)"
        )
    if all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module.") :]: v for k, v in state.items()}

    if class_names is not None:
        saved = _checkpoint_classes(meta)
        if saved is not None and tuple(saved) != tuple(class_names):
            raise CheckpointError(
                f"segmenter checkpoint {path} was trained on classes {_short(saved)}, but the pinned "
                f"class list is {_short(class_names)}; use the checkpoint that matches the dataset"
            )

    # compare first: load_state_dict raises a multi-line RuntimeError on shape mismatches
    expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    reshaped = [
        f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or reshaped:
        raise CheckpointError(
            f"segmenter checkpoint {path} does not match the network: "
            f"{len(missing)} missing keys {_short(missing)}, {len(unexpected)} unexpected keys {_short(unexpected)}, "
            f"{len(reshaped)} shape mismatches {_short(reshaped)}; check that the config matches the checkpoint"
        )
    model.load_state_dict(dict(state), strict=True)
    return dict(meta)


def _load_reason(exc: Exception) -> str:
    """The informative line of a torch.load error (weights_only errors span a dozen lines)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for line in lines:
        if "Unsupported global" in line:
            return line.split(" was not an allowed global")[0].removeprefix("WeightsUnpickler error: ")
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _checkpoint_classes(meta: Mapping[str, Any]) -> Sequence[str] | None:
    dataset_meta = meta.get("dataset_meta")
    if isinstance(dataset_meta, Mapping) and dataset_meta.get("classes") is not None:
        return tuple(dataset_meta["classes"])
    if meta.get("CLASSES") is not None:  # mmseg 0.x
        return tuple(meta["CLASSES"])
    return None


def _short(items: Sequence[Any], n: int = 3) -> str:
    items = list(items)
    more = f", ... (+{len(items) - n})" if len(items) > n else ""
    return "[" + ", ".join(repr(x) for x in items[:n]) + more + "]"


def _describe(config: ConfigSource) -> str:
    return "the config dict" if isinstance(config, Mapping) else f"config {str(config)!r}"


def check_images(images: torch.Tensor) -> None:
    """Raise ``DataError`` unless ``images`` is a float ``[B, 3, H, W]`` batch in ``[0, 1]``."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise DataError(f"segmenter input must be RGB images shaped [B, 3, H, W]; got {shape}")
    if not images.is_floating_point():
        raise DataError(f"segmenter input must be float images in [0, 1]; got dtype {images.dtype}")
    if images.numel() and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
        raise DataError(
            f"segmenter input must lie in [0, 1]; got range [{images.min():.3f}, {images.max():.3f}] "
            "(images in [-1, 1] need (x + 1) / 2 first)"
        )


@torch.no_grad()
def predict_labels(
    model: nn.Module,
    images: torch.Tensor,
    *,
    batch_size: int = 8,
    quantize: bool = True,
) -> torch.Tensor:
    """Segment RGB images at their native resolution with an mmseg segmentor.

    Args:
        model: a segmentor from :func:`build_segmentor`.
        images: float ``[B, 3, H, W]`` RGB in ``[0, 1]``; all images share one size.
        batch_size: images per forward pass (results do not depend on it).
        quantize: round to 8-bit first, as if the images had been saved as PNG and read back,
            which is what mmseg's test pipeline sees.

    Returns:
        int64 class ids ``[B, H, W]`` on ``images.device``.
    """
    from mmseg.structures import SegDataSample

    check_images(images)
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    height, width = images.shape[-2:]
    outputs = []
    for start in range(0, images.shape[0], batch_size):
        chunk = images[start : start + batch_size].float().clamp(0, 1) * 255.0
        if quantize:
            chunk = chunk.round()
        # mmseg's loaders (cv2) hand BGR images to the data_preprocessor, which converts to RGB
        # itself when the config says bgr_to_rgb=True; feed it what it expects
        inputs = list(chunk.flip(1))
        samples = [
            SegDataSample(
                metainfo={
                    "ori_shape": (height, width),
                    "img_shape": (height, width),
                    "pad_shape": (height, width),
                    "padding_size": [0, 0, 0, 0],
                }
            )
            for _ in inputs
        ]
        results = model.test_step({"inputs": inputs, "data_samples": samples})
        outputs.append(torch.stack([r.pred_sem_seg.data[0] for r in results]).long())
    return torch.cat(outputs).to(images.device)
