"""Reading images, label maps and instance maps, with one-line ``DataError`` messages that name the file."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from bench.datasets.spec import DatasetSpec
from bench.errors import DataError

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg")
MAP_EXTENSIONS: tuple[str, ...] = (".png",)

# Modes PIL gives single-channel integer PNGs: 8-bit grey, palette (the index is the id, as in
# VOC-style label PNGs), 16-bit grey in its byte orders, and 32-bit "I" (old Pillow read 16-bit PNGs so).
_MAP_MODES = frozenset({"L", "P", "1", "I", "I;16", "I;16L", "I;16B", "I;16N"})

# What PIL and zlib raise on truncated or corrupt files: truncated PNGs raise OSError from load(),
# a bad chunk CRC raises SyntaxError, a broken stream zlib.error or ValueError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)


def _open(path: Path, what: str) -> Image.Image:
    """Open and fully decode a file (``Image.open`` is lazy, so corruption only shows on ``load``)."""
    try:
        with Image.open(path) as im:
            im.load()  # decoded pixels stay usable after the file is closed
            return im
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except _DECODE_ERRORS as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"{path}: cannot read {what} ({reason}); the file is truncated or corrupt, re-export it"
        ) from e


def read_image(path: Path) -> np.ndarray:
    """Read an RGB photo as ``[H, W, 3]`` uint8 (grey and RGBA are converted, as SPADE does)."""
    im = _open(path, "image")
    try:
        rgb = im.convert("RGB")
    except ValueError as e:
        raise DataError(f"{path}: image mode {im.mode} cannot be converted to RGB ({e})") from e
    return np.asarray(rgb)


def read_map(path: Path, what: str = "label") -> np.ndarray:
    """Read a single-channel integer map (label or instance ids) as ``[H, W]``, keeping its bit depth.

    Args:
        path: A PNG file.
        what: ``"label"`` or ``"instance"``, used in error messages.

    Returns:
        uint8 for 8-bit / palette PNGs, uint16 for 16-bit PNGs, int32 for PIL mode "I".

    Raises:
        DataError: The file is missing, corrupt, or has colour channels.
    """
    im = _open(path, what)
    if im.mode not in _MAP_MODES:
        raise DataError(
            f"{path}: {what} map has mode {im.mode} ({len(im.getbands())} channels); expected a "
            "single-channel PNG of ids (8- or 16-bit grey); convert colour-coded maps to ids first"
        )
    arr = np.asarray(im)
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    if arr.dtype.byteorder == ">":  # I;16B
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr


def unknown_label_ids(label: np.ndarray, spec: DatasetSpec) -> list[int]:
    """Ids in ``label`` that are neither a class (``0..num_classes-1``) nor ``spec.ignore_index``."""
    if label.dtype == np.uint8:
        present = np.flatnonzero(np.bincount(label.ravel(), minlength=256))
    else:
        present = np.unique(label)
    return [int(i) for i in present if not (0 <= i < spec.num_classes or i == spec.ignore_index)]


def label_histogram(label: np.ndarray) -> dict[int, int]:
    """Pixel count per id present in ``label``."""
    if label.dtype == np.uint8:
        counts = np.bincount(label.ravel(), minlength=256)
        ids = np.flatnonzero(counts)
        return {int(i): int(counts[i]) for i in ids}
    ids, counts = np.unique(label, return_counts=True)
    return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}


def check_label_ids(label: np.ndarray, spec: DatasetSpec, path: Path) -> None:
    """Raise ``DataError`` if ``label`` holds an id outside the dataset's classes.

    Raises:
        DataError: Names the file, the offending ids and the valid range.
    """
    bad = unknown_label_ids(label, spec)
    if bad:
        shown = ", ".join(str(i) for i in bad[:8]) + (", ..." if len(bad) > 8 else "")
        ignore = f" or the ignore index {spec.ignore_index}" if spec.ignore_index is not None else ""
        raise DataError(
            f"{path}: label ids {shown} are not classes of dataset {spec.name!r}; expected "
            f"0..{spec.num_classes - 1}{ignore}; fix the label map or the dataset spec"
        )


def check_same_size(a: tuple[int, int], b: tuple[int, int], path_a: Path, path_b: Path) -> None:
    """Raise ``DataError`` when two paired files differ in size (sizes are (W, H))."""
    if a != b:
        raise DataError(
            f"{path_b}: size {b[0]}x{b[1]} (WxH) does not match {path_a.name} ({a[0]}x{a[1]}); "
            "paired image, label and instance files must have the same size"
        )
