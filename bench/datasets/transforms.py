"""SPADE-style preprocessing: resize / crop / flip, planned once and applied to image, label and instance map.

The modes and their arithmetic follow ``data/base_dataset.py`` of NVlabs/SPADE (``get_params`` and
``get_transform``): images are resized bicubic, label and instance maps nearest, and the same crop
and flip are applied to all three. Two deliberate differences, both so that evaluation is exact:

* Evaluation (no augmentation seed) never draws anything: crops are centred and there is no flip.
  SPADE draws a random crop even at test time; its test options set ``load_size = crop_size`` so
  that the crop is a no-op for square images, which :meth:`Preprocess.for_eval` reproduces.
* ``scale_shortside`` scales the short side to ``load_size``. SPADE's ``__scale_shortside`` keeps
  the original short side while scaling the long one as if it had not, which changes the aspect
  ratio; we implement what the option name says.

A crop larger than the resized image is refused instead of zero-padded: padding a label map with
zeros would silently invent pixels of class 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal, get_args

import numpy as np
from PIL import Image

from bench.errors import ConfigError, DataError

PreprocessMode = Literal[
    "resize_and_crop",
    "crop",
    "scale_width",
    "scale_width_and_crop",
    "scale_shortside",
    "scale_shortside_and_crop",
    "fixed",
    "none",
]
PREPROCESS_MODES: tuple[str, ...] = get_args(PreprocessMode)

# SPADE's ``none`` mode rounds both sides to a multiple of this (``__make_power_2(img, base=32)``).
_NONE_MODE_BASE = 32


@dataclass(frozen=True, kw_only=True)
class Preprocess:
    """How a sample is resized, cropped and flipped; mirrors SPADE's options of the same names.

    Attributes:
        preprocess_mode: One of :data:`PREPROCESS_MODES` (SPADE ``--preprocess_mode``).
        load_size: Size the image is resized to before cropping (square side for ``resize*``,
            width for ``scale_width*``, short side for ``scale_shortside*``).
        crop_size: Side of the square crop; in ``fixed`` mode, the output width.
        aspect_ratio: Width / height of the output in ``fixed`` mode (Cityscapes uses 2.0).
        no_flip: Disable the random horizontal flip during augmentation.
    """

    preprocess_mode: PreprocessMode = "resize_and_crop"
    load_size: int = 286
    crop_size: int = 256
    aspect_ratio: float = 1.0
    no_flip: bool = False

    def __post_init__(self) -> None:
        if self.preprocess_mode not in PREPROCESS_MODES:
            raise ConfigError(
                f"unknown preprocess_mode {self.preprocess_mode!r}; valid: {', '.join(PREPROCESS_MODES)}"
            )
        if self.load_size < 1 or self.crop_size < 1:
            raise ConfigError(
                f"load_size and crop_size must be positive, got load_size={self.load_size}, "
                f"crop_size={self.crop_size}"
            )
        if not self.aspect_ratio > 0:
            raise ConfigError(f"aspect_ratio must be > 0, got {self.aspect_ratio}")
        if self.preprocess_mode == "resize_and_crop" and self.crop_size > self.load_size:
            raise ConfigError(
                f"resize_and_crop needs crop_size <= load_size, got crop_size={self.crop_size} > "
                f"load_size={self.load_size}; raise load_size or lower crop_size"
            )

    @classmethod
    def fixed(cls, size: tuple[int, int], *, no_flip: bool = False) -> Preprocess:
        """Resize every sample to ``size`` = (H, W), no crop (SPADE's ``fixed`` mode)."""
        h, w = size
        return cls(preprocess_mode="fixed", load_size=w, crop_size=w, aspect_ratio=w / h, no_flip=no_flip)

    def for_eval(self) -> Preprocess:
        """The test-time variant SPADE's test options produce: ``load_size = crop_size``, no flip."""
        if "crop" in self.preprocess_mode and self.preprocess_mode != "crop":
            return replace(self, load_size=self.crop_size, no_flip=True)
        return replace(self, no_flip=True)


@dataclass(frozen=True)
class Plan:
    """The geometric operations for one sample, shared by its image, label and instance map.

    Attributes:
        resize: Target (W, H) of the resize, or None to keep the loaded size.
        crop: (left, top, right, bottom) box applied after the resize, or None.
        flip: Whether to mirror left-right after cropping.
    """

    resize: tuple[int, int] | None
    crop: tuple[int, int, int, int] | None
    flip: bool

    @property
    def empty(self) -> bool:
        return self.resize is None and self.crop is None and not self.flip


def _resized_size(p: Preprocess, w: int, h: int) -> tuple[int, int] | None:
    """(W, H) after the mode's resize step, or None when the mode does not resize."""
    mode = p.preprocess_mode
    if mode.startswith("resize"):
        return (p.load_size, p.load_size)
    if mode.startswith("scale_width"):
        if w == p.load_size:
            return None
        return (p.load_size, int(p.load_size * h / w))
    if mode.startswith("scale_shortside"):
        short, long_ = min(w, h), max(w, h)
        if short == p.load_size:
            return None
        scaled_long = int(p.load_size * long_ / short)
        return (p.load_size, scaled_long) if w <= h else (scaled_long, p.load_size)
    if mode == "fixed":
        return (p.crop_size, round(p.crop_size / p.aspect_ratio))
    if mode == "none":
        nw = max(_NONE_MODE_BASE, int(round(w / _NONE_MODE_BASE) * _NONE_MODE_BASE))
        nh = max(_NONE_MODE_BASE, int(round(h / _NONE_MODE_BASE) * _NONE_MODE_BASE))
        return None if (nw, nh) == (w, h) else (nw, nh)
    return None  # "crop"


def plan(
    p: Preprocess, size: tuple[int, int], rng: np.random.Generator | None, *, path: Path | str = "<image>"
) -> Plan:
    """Decide the resize, crop and flip for one sample.

    Args:
        p: The preprocessing options.
        size: Loaded (W, H) of the sample, as PIL reports it.
        rng: Random generator for augmentation (crop position and flip), or None for the
            deterministic evaluation plan (centred crop, no flip).
        path: File named in the error when the crop does not fit.

    Returns:
        The plan to pass to :func:`apply`.

    Raises:
        DataError: A crop mode would need a crop larger than the resized image.
    """
    w, h = size
    resized = _resized_size(p, w, h)
    rw, rh = resized if resized is not None else (w, h)
    crop = None
    if "crop" in p.preprocess_mode:
        c = p.crop_size
        if c > rw or c > rh:
            raise DataError(
                f"{path}: after {p.preprocess_mode} the image is {rw}x{rh} (WxH), smaller than "
                f"crop_size={c}; use a larger load_size or preprocess_mode 'fixed'"
            )
        if rng is None:
            x, y = (rw - c) // 2, (rh - c) // 2
        else:
            x = int(rng.integers(0, rw - c + 1))
            y = int(rng.integers(0, rh - c + 1))
        crop = None if (x, y, c, c) == (0, 0, rw, rh) else (x, y, x + c, y + c)
    # The flip is drawn even when disabled so that the crop stream does not depend on no_flip.
    flip = bool(rng.random() > 0.5) if rng is not None else False
    return Plan(resize=resized, crop=crop, flip=flip and not p.no_flip)


def apply(array: np.ndarray, pl: Plan, *, kind: Literal["image", "label"]) -> np.ndarray:
    """Apply a plan to an image ([H, W, 3] uint8) or a label/instance map ([H, W] integer).

    Images are resized bicubic (PIL, as SPADE); label and instance maps nearest, so no new ids appear.
    """
    out = array
    if pl.resize is not None and pl.resize != (out.shape[1], out.shape[0]):
        if kind == "image":
            out = np.asarray(Image.fromarray(out).resize(pl.resize, Image.Resampling.BICUBIC))
        else:
            out = _resize_nearest(out, pl.resize)
    if pl.crop is not None:
        x0, y0, x1, y1 = pl.crop
        out = out[y0:y1, x0:x1]
    if pl.flip:
        out = out[:, ::-1]
    out = np.ascontiguousarray(out)
    # arrays straight from PIL are read-only, and torch.from_numpy warns about those
    return out if out.flags.writeable else out.copy()


def _resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """PIL nearest-neighbour resize of an integer map, keeping its dtype."""
    if array.dtype == np.uint8:
        return np.asarray(Image.fromarray(array).resize(size, Image.Resampling.NEAREST))
    # PIL's 32-bit mode "I" holds any id that fits in int32; larger ids do not occur in practice.
    img = Image.fromarray(array.astype(np.int32))  # mode "I"
    return np.asarray(img.resize(size, Image.Resampling.NEAREST)).astype(array.dtype)
