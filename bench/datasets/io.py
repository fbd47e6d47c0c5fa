"""Decoding photos, label maps and instance maps, with one-line ``DataError`` messages that name the file.

Photos (:func:`decode_image`) become RGB uint8 ``[H, W, 3]`` whatever PIL mode the file has:

* ``RGB`` as stored; ``L``, ``1``, ``P``, ``YCbCr`` and ``CMYK`` by PIL's ``convert("RGB")`` (CMYK
  without colour management: ``(255 - c) * (255 - k) / 255``); embedded ICC profiles are not
  applied, as in SPADE.
* Alpha (``RGBA``, ``LA``, ``PA``, palette transparency) is **dropped**, not composited: SPADE's
  ``Image.open(path).convert('RGB')`` keeps the colour channels of transparent pixels, and so do we.
* 16-bit samples (``I;16*`` grey, ``I`` from 16-bit PNGs, 48/64-bit RGB(A) and 32-bit grey+alpha
  PNG/TIFF) are scaled as ``round(v / 257)``, so 65535 -> 255 and 257 * k -> k. PIL's own
  ``convert`` clips 16-bit grey to 255 (a 16-bit photo reads white), and its 16-bit colour unpacker
  keeps the high byte (``floor(v / 256)``, one level off); those files are decoded with OpenCV.
* 32-bit unsigned grey TIFFs are scaled by ``(2**32 - 1) / 255``; float (``F``) photos must hold
  ``0..1`` and are scaled by 255. Anything else is refused with a line naming the file.

Label and instance maps (:func:`decode_map`) must be lossless single-channel PNGs of integer ids:
8-bit grey, palette (the palette *index* is the id, as in VOC-style label PNGs; the colours are
ignored), 1-bit, or 16-bit grey. A grey+alpha map is accepted when its alpha is fully opaque (alpha
dropped); colour maps, maps with transparent pixels, and maps in another format (JPEG, BMP, TIFF,
WebP, ... -- by content, not by extension) are refused, naming the file and the fix.

EXIF orientation is applied only by request (``exif=True`` or :func:`read_pair`); the decoders
always report the file's tag so that a loader can apply one policy to a photo and its maps.
"""

from __future__ import annotations

import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from bench.datasets.spec import DatasetSpec
from bench.errors import DataError

#: Photo extensions read, SPADE's ``IMG_EXTENSIONS`` (``data/image_folder.py``) in lower case, plus ``.tif``.
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".ppm", ".bmp", ".tif", ".tiff", ".webp")
MAP_EXTENSIONS: tuple[str, ...] = (".png",)
#: Image formats a label or instance file may come in that are not read as maps; such a file is named
#: in a refusal (never reported as a missing label).
OTHER_MAP_EXTENSIONS: tuple[str, ...] = (
    ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".pbm", ".tif", ".tiff", ".webp", ".gif", ".jp2", ".j2k",
    ".heic", ".heif", ".avif",
)  # fmt: skip

#: How a loader treats EXIF orientation tags: ``"pair"`` applies them when the photo and its maps
#: carry the same tag and refuses the sample when they differ; ``"ignore"`` decodes stored pixels.
ExifPolicy = Literal["pair", "ignore"]

EXIF_ORIENTATION = 0x0112
_ORIENTATION_NAMES = {
    1: "none", 2: "mirrored", 3: "rotated 180", 4: "flipped vertically", 5: "transposed",
    6: "rotated 90 clockwise", 7: "transversed", 8: "rotated 90 counter-clockwise",
}  # fmt: skip
# The array operation that displays a stored image upright, per tag; the same transforms as
# PIL.ImageOps.exif_transpose (FLIP_LEFT_RIGHT, ROTATE_180, FLIP_TOP_BOTTOM, TRANSPOSE, ROTATE_270,
# TRANSVERSE, ROTATE_90), written on arrays so that it applies to any decoded dtype; a test checks
# each tag against exif_transpose.
_ORIENT: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.rot90(a, 2).swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}

# Modes PIL gives single-channel integer PNGs: 8-bit grey, palette, 1-bit, 16-bit grey in its byte
# orders, and 32-bit "I" (Pillow < 10 read 16-bit PNGs so).
_MAP_MODES = frozenset({"L", "P", "1", "I", "I;16", "I;16L", "I;16B", "I;16N"})

# What PIL and zlib raise on truncated or corrupt files: truncated PNGs raise OSError from load(),
# a bad chunk CRC raises SyntaxError, a broken stream zlib.error or ValueError.
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)

_U32_TO_U8 = 16843009  # (2**32 - 1) / 255


@dataclass(frozen=True)
class Decoded:
    """One decoded file and what decoding it took (for ``bench data check``).

    Attributes:
        array: Photo: uint8 ``[H, W, 3]``. Map: ``[H, W]`` uint8 (8-bit, palette, 1-bit) or uint16.
        source: The file as stored, e.g. ``"PNG I;16 16-bit"``, ``"JPEG CMYK 8-bit"``.
        conversion: What was done to reach ``array`` beyond a plain decode, e.g.
            ``"16-bit grey -> 8-bit RGB"``, ``"RGBA: alpha dropped"``; None when nothing was.
        orientation: The file's EXIF orientation tag (1 = none or normal).
        rotated: Whether ``array`` has that orientation applied.
    """

    array: np.ndarray
    source: str
    conversion: str | None
    orientation: int = 1
    rotated: bool = False


def _open(path: Path, what: str) -> tuple[Image.Image, str, int]:
    """Open and fully decode a file's first frame; also return the raw mode PIL unpacks from (e.g.
    ``"RGB;16B"``) and the number of frames.

    ``Image.open`` is lazy, so corruption only shows on ``load``; the raw mode is only known before it,
    and the frame count only while the file is open.
    """
    try:
        with Image.open(path) as im:
            tile = im.tile[0] if im.tile else None
            args = tile[3] if tile is not None else None
            rawmode = args if isinstance(args, str) else (args[0] if isinstance(args, tuple) and args
                                                          and isinstance(args[0], str) else im.mode)
            frames = int(getattr(im, "n_frames", 1) or 1)  # before load: counting TIFF pages re-seeks
            im.load()  # decoded pixels stay usable after the file is closed
            return im, rawmode, frames
    except FileNotFoundError:
        raise DataError(f"{path}: {what} file not found") from None
    except _DECODE_ERRORS as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataError(
            f"{path}: cannot read {what} ({reason}); the file is truncated or corrupt, re-export it"
        ) from e


def _is16(rawmode: str) -> bool:
    return ";16" in rawmode


def _bits(im: Image.Image, rawmode: str) -> int:
    """Bits per sample of the file: 1, 8, 16 or 32."""
    if im.mode == "1":
        return 1
    if im.mode.startswith("I;16") or _is16(rawmode):
        return 16
    if im.mode == "I":
        if im.format == "TIFF":
            bits = getattr(im, "tag_v2", {}).get(258, (32,))
            return int(bits[0] if isinstance(bits, tuple) else bits)
        return 16  # PNG, PGM: PIL's "I" holds their 16-bit samples
    if im.mode == "F":
        return 32
    return 8


def _source(im: Image.Image, rawmode: str) -> str:
    mode = rawmode.split(";")[0] if _is16(rawmode) and not im.mode.startswith("I") else im.mode
    return f"{im.format or 'image'} {mode} {_bits(im, rawmode)}-bit"


def orientation_of(im: Image.Image) -> int:
    """EXIF orientation tag of a loaded image, 1 when absent, unreadable or out of range."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
    except Exception:  # noqa: BLE001 - a broken EXIF block must not stop decoding the pixels
        return 1
    return value if isinstance(value, int) and value in _ORIENTATION_NAMES else 1


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Display ``array`` ([H, W] or [H, W, C]) upright for EXIF ``orientation`` 1..8 (as ``ImageOps.exif_transpose``)."""
    op = _ORIENT.get(orientation)
    return np.ascontiguousarray(op(array)) if op is not None else array


def _scale16(a: np.ndarray) -> np.ndarray:
    """16-bit samples -> 8 bits, ``round(v / 257)`` (no ties occur: 257 is odd)."""
    return ((a.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _grey3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[:, :, None], 3, axis=2)


def _read_cv2(path: Path) -> np.ndarray:
    """The file's samples as stored (uint16 for 16-bit files), channels in RGB(A) order."""
    import cv2  # only for 16-bit colour files, which PIL cannot give at full depth

    data = np.fromfile(path, dtype=np.uint8)  # np.fromfile + imdecode: works for any path encoding
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise DataError(f"{path}: cannot decode this 16-bit colour file; re-export it as 8- or 16-bit PNG")
    if arr.ndim == 3 and arr.shape[2] >= 3:
        arr = arr[:, :, [2, 1, 0, *range(3, arr.shape[2])]]  # BGR(A) -> RGB(A)
    return arr


def _photo(im: Image.Image, rawmode: str, path: Path) -> tuple[np.ndarray, str | None]:
    """A loaded PIL image -> RGB uint8 [H, W, 3] and the conversion note (see the module docstring)."""
    mode = im.mode
    if _is16(rawmode) and not mode.startswith("I"):  # 16-bit colour or grey+alpha
        raw = _read_cv2(path)
        if raw.dtype != np.uint16:  # pragma: no cover - OpenCV disagrees with PIL about the depth
            raise DataError(f"{path}: expected 16-bit samples, OpenCV decoded {raw.dtype}; re-export the photo")
        base = rawmode.split(";")[0]  # RGB, RGBA or LA (OpenCV expands grey+alpha to four channels)
        rgb = _grey3(raw) if raw.ndim == 2 else (_grey3(raw[:, :, 0]) if raw.shape[2] == 2 else raw[:, :, :3])
        note = f"16-bit {base} -> 8-bit RGB" + (": alpha dropped" if "A" in base else "")
        return _scale16(rgb), note
    if mode.startswith("I;16"):
        return _grey3(_scale16(np.asarray(im).astype(np.uint16))), "16-bit grey -> 8-bit RGB"
    if mode == "I":
        a = np.asarray(im)
        bits = _bits(im, rawmode)
        fmt = getattr(im, "tag_v2", {}).get(339, 1) if im.format == "TIFF" else 1  # TIFF SampleFormat
        signed = (fmt[0] if isinstance(fmt, tuple) else fmt) == 2
        if bits == 16 and a.min() >= 0 and a.max() <= 65535:
            return _grey3(_scale16(a.astype(np.uint16))), "16-bit grey -> 8-bit RGB"
        if bits == 32 and not signed:
            u = a.view(np.uint32)  # PIL holds unsigned 32-bit samples in int32
            return _grey3(((u.astype(np.uint64) + _U32_TO_U8 // 2) // _U32_TO_U8).astype(np.uint8)), (
                "32-bit grey -> 8-bit RGB")
        raise DataError(
            f"{path}: {bits}-bit {'signed ' if signed else ''}integer grey photo ({_source(im, rawmode)}) has no "
            "defined 8-bit scale; save it as an 8- or 16-bit PNG"
        )
    if mode == "F":
        a = np.asarray(im, dtype=np.float32)
        if not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
            raise DataError(
                f"{path}: float photo holds values outside 0..1 (min {np.nanmin(a):.4g}, max {np.nanmax(a):.4g}); "
                "float photos are read as 0..1; save it as an 8- or 16-bit PNG"
            )
        return _grey3(np.round(a * 255.0).astype(np.uint8)), "32-bit float grey -> 8-bit RGB"
    if mode == "RGB":
        return np.asarray(im), None
    note = {
        "1": "1-bit -> 8-bit RGB",
        "L": "8-bit grey -> RGB",
        "LA": "grey+alpha -> RGB: alpha dropped",
        "P": "palette -> RGB",
        "PA": "palette+alpha -> RGB: alpha dropped",
        "RGBA": "RGBA: alpha dropped",
        "RGBX": "RGBX: padding dropped",
        "RGBa": "premultiplied RGBA: alpha dropped",
        "CMYK": "CMYK -> RGB (no colour management)",
    }.get(mode, f"{mode} -> RGB")
    if mode == "P" and "transparency" in im.info:
        note = "palette with transparency -> RGB: alpha dropped"
    try:
        with warnings.catch_warnings():
            # "Palette images with Transparency expressed in bytes should be converted to RGBA": we
            # drop the alpha on purpose (SPADE's convert('RGB')), so the warning is noise.
            warnings.simplefilter("ignore", UserWarning)
            rgb = im.convert("RGB")
    except ValueError as e:
        raise DataError(
            f"{path}: photo mode {mode} cannot be converted to RGB ({e}); save it as an RGB PNG or JPEG"
        ) from e
    return np.asarray(rgb), note


def wrong_format_message(path: Path, what: str = "label", fmt: str | None = None, *,
                         expected: str | None = None) -> str:
    """The one-line refusal of a label/instance file that is not a PNG.

    Args:
        path: The file.
        what: ``"label"``, ``"instance"``, ... for the message.
        fmt: Its detected format, when the caller knows it (else read from the header, or the extension).
        expected: What such files must be, when not ``"<what> maps must be lossless single-channel PNG ids"``.
    """
    if fmt is None:
        try:
            with Image.open(path) as im:
                fmt = im.format
        except Exception:  # noqa: BLE001 - any unreadable file: fall back to its extension
            fmt = None
        fmt = fmt or path.suffix.lstrip(".").upper() or "not an image"
    if fmt == "PNG" and path.suffix.lower() != ".png":
        return f"{path}: {what} {path.name} is a PNG with a {path.suffix} extension; rename it {path.stem}.png"
    renamed = " data under a .png name" if path.suffix.lower() == ".png" else ""
    fix = (
        "JPEG is lossy and changes ids at region borders: re-export the ids from their source"
        if fmt in ("JPEG", "MPO")
        else "convert it losslessly (e.g. PIL: Image.open(f).save(...png))"
    )
    expected = expected or (f"{what} maps must be lossless single-channel PNG ids (8- or 16-bit grey, or "
                            "palette indices)")
    return f"{path}: {what} {path.name} is {fmt}{renamed}; {expected}; {fix} as {path.stem}.png"


def _ids(im: Image.Image, rawmode: str, path: Path, what: str) -> tuple[np.ndarray, str | None]:
    """A loaded PIL image of a map -> ``[H, W]`` uint8/uint16 ids and the conversion note."""
    if im.format != "PNG":
        raise DataError(wrong_format_message(path, what, im.format or "not a PNG"))
    mode = im.mode
    if mode == "LA" or (_is16(rawmode) and rawmode.startswith("LA")):
        if _is16(rawmode):  # 16-bit grey+alpha: PIL would keep the high byte, OpenCV gives [g, g, g, a]
            raw = _read_cv2(path)
            grey, alpha, opaque = raw[:, :, 0], raw[:, :, -1], 65535
        else:
            arr = np.asarray(im)
            grey, alpha, opaque = arr[:, :, 0], arr[:, :, 1], 255
        n = int((alpha != opaque).sum())
        if n:
            raise DataError(
                f"{path}: {what} map has an alpha channel with {n} non-opaque pixels, whose meaning sisbench "
                f"does not guess; save the ids as a single-channel PNG (mode L), unlabeled pixels as the ignore index"
            )
        return np.ascontiguousarray(grey), "grey+alpha: opaque alpha dropped"
    if mode not in _MAP_MODES:
        channels = len(im.getbands())
        hint = ""
        if mode in ("RGB", "RGBA"):
            a = np.asarray(im)
            if (a[:, :, 0] == a[:, :, 1]).all() and (a[:, :, 0] == a[:, :, 2]).all():
                hint = " (its colour channels are equal: save channel 0 as a mode-L PNG)"
        raise DataError(
            f"{path}: {what} map has mode {mode} ({channels} channels){hint}; expected a "
            "single-channel PNG of ids (8- or 16-bit grey); convert colour-coded maps to ids first"
        )
    arr = np.asarray(im)
    note = None
    if mode == "1":
        arr, note = arr.astype(np.uint8), "1-bit -> ids 0/1"
    elif mode == "P":
        note = "palette: indices kept as ids"
    elif mode == "I":  # Pillow < 10's 16-bit PNG
        arr = arr.astype(np.uint16)
    elif arr.dtype.byteorder == ">":  # I;16B
        arr = arr.astype(arr.dtype.newbyteorder("="))
    return arr, note


def _with_frames(n: int, note: str | None) -> str | None:
    """Say so when a multi-frame file (animated PNG/WebP, multi-page TIFF, MPO) was read as its first frame."""
    if n <= 1:
        return note
    return f"{note}; first of {n} frames" if note else f"first of {n} frames"


def decode_image(path: Path, *, exif: bool = False) -> Decoded:
    """Decode a photo to RGB uint8 ``[H, W, 3]`` (see the module docstring for every mode).

    Args:
        path: A photo in any format PIL reads.
        exif: Apply the file's EXIF orientation tag (default: stored pixels, as SPADE reads them).

    Returns:
        The array (values 0..255) and how it was obtained.

    Raises:
        DataError: Missing, corrupt, or in a mode without a defined 8-bit RGB reading.
    """
    im, rawmode, frames = _open(path, "image")
    array, note = _photo(im, rawmode, path)
    note = _with_frames(frames, note)
    o = orientation_of(im)
    if exif and o != 1:
        array = apply_orientation(array, o)
    return Decoded(array, _source(im, rawmode), note, o, exif and o != 1)


def decode_map(path: Path, what: str = "label", *, exif: bool = False) -> Decoded:
    """Decode a label or instance map to ``[H, W]`` integer ids, keeping its bit depth.

    Args:
        path: A PNG file (by content: a JPEG renamed ``.png`` is refused).
        what: ``"label"`` or ``"instance"``, used in messages.
        exif: Apply the file's EXIF orientation tag.

    Returns:
        uint8 ids for 8-bit, palette (indices) and 1-bit (0/1) PNGs; uint16 for 16-bit PNGs.

    Raises:
        DataError: Missing, corrupt, not a PNG, colour channels, or transparent pixels.
    """
    im, rawmode, frames = _open(path, what)
    array, note = _ids(im, rawmode, path, what)
    note = _with_frames(frames, note)
    o = orientation_of(im)
    if exif and o != 1:
        array = apply_orientation(array, o)
    return Decoded(array, _source(im, rawmode), note, o, exif and o != 1)


def read_image(path: Path) -> np.ndarray:
    """A photo as RGB uint8 ``[H, W, 3]``, stored pixels (no EXIF rotation), alpha dropped as SPADE does.

    Raises:
        DataError: See :func:`decode_image`.
    """
    return decode_image(path).array


def read_map(path: Path, what: str = "label") -> np.ndarray:
    """A single-channel integer map (label or instance ids) as ``[H, W]``, keeping its bit depth.

    Args:
        path: A PNG file.
        what: ``"label"`` or ``"instance"``, used in error messages.

    Returns:
        uint8 for 8-bit / palette / 1-bit PNGs, uint16 for 16-bit PNGs.

    Raises:
        DataError: See :func:`decode_map`.
    """
    return decode_map(path, what).array


def read_pair(image: Path, label: Path, instance: Path | None = None, *,
              exif: ExifPolicy = "pair") -> tuple[Decoded, Decoded, Decoded | None]:
    """Decode a photo with its label (and instance) map under one EXIF orientation policy.

    ``"pair"``: when the photo and its maps carry the same orientation tag, all are turned upright
    together; when the tags differ (typically: the photo has one, the PNG label none) the sample is
    refused, because nothing tells whether the label was drawn on the stored or the displayed pixels.
    ``"ignore"``: stored pixels for all, the convention of the official layouts, whose labels were
    made on stored pixels (their loaders never rotate).

    Returns:
        (photo, label, instance or None), arrays as :func:`decode_image` / :func:`decode_map` give them.

    Raises:
        DataError: Any file unreadable, or (``"pair"``) orientation tags that disagree.
    """
    img = decode_image(image)
    lab = decode_map(label, "label")
    inst = decode_map(instance, "instance") if instance is not None else None
    if exif == "ignore":
        return img, lab, inst
    tags = [(image, img.orientation), (label, lab.orientation)] + (
        [(instance, inst.orientation)] if instance is not None and inst is not None else [])
    if len({o for _, o in tags}) > 1:
        other = ", ".join(f"{p.name} has {o} ({_ORIENTATION_NAMES[o]})" for p, o in tags[1:])
        raise DataError(
            f"{image}: EXIF orientation {img.orientation} ({_ORIENTATION_NAMES[img.orientation]}) but {other}, "
            "so it is unknown whether the label was drawn on the stored or the rotated pixels; give the photo and "
            "its maps the same orientation (e.g. save the photo upright with PIL.ImageOps.exif_transpose, which "
            "removes the tag, if the label follows the displayed photo)"
        )
    o = img.orientation
    if o == 1:
        return img, lab, inst

    def turn(d: Decoded) -> Decoded:
        return Decoded(apply_orientation(d.array, o), d.source, d.conversion, o, True)

    return turn(img), turn(lab), turn(inst) if inst is not None else None


def other_format_files(folder: Path, keys: set[str] | dict[str, Path], *, recursive: bool = False,
                       suffix: str = "", key: Callable[[str], str] | None = None) -> dict[str, Path]:
    """Files of ``folder`` in a non-PNG image format whose key (stem minus ``suffix``) is not in ``keys``.

    These are label or instance files a user saved in the wrong format; loaders refuse them by name
    (:func:`wrong_format_message`) instead of reporting their photo as having no label.
    """
    out: dict[str, Path] = {}
    candidates = sorted(folder.rglob("*") if recursive else folder.iterdir()) if folder.is_dir() else []
    for p in candidates:
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in OTHER_MAP_EXTENSIONS:
            continue
        if suffix and not p.stem.endswith(suffix):
            continue
        k = p.stem[: len(p.stem) - len(suffix)] if suffix else p.stem
        k = key(k) if key is not None else k
        if k not in keys:
            out.setdefault(k, p)
    return out


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
