"""Reconstruction scores (SEAN's protocol): PSNR, SSIM and RMSE between paired images.

SEAN reports these for reconstructing a test image from its own label map and style codes, but releases
no metric code, so the choices are fixed here and delegated to scikit-image:

* images are RGB, ``HxWx3``, either uint8 or float in [0, 1]; both are scored on the [0, 1] scale
  (``data_range=1``), so a PNG and its float original give the same numbers;
* PSNR: ``10 log10(1 / MSE)`` over all pixels and channels (``skimage.metrics.peak_signal_noise_ratio``);
  identical images give ``inf``;
* SSIM: Wang et al. (2004) as usually reported: an 11x11 Gaussian window with sigma 1.5
  (``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``), per channel, averaged;
  scikit-image's defaults (7x7 uniform window, sample covariance) give different numbers;
* RMSE: ``sqrt(MSE)`` on the [0, 1] scale (``skimage.metrics.mean_squared_error``).

:func:`reconstruction_scores` averages the per-image scores over the set.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from bench.errors import DataError, MetricError

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
SSIM_SIGMA = 1.5

ImageLike = Any  # numpy array, or a path to an image file


def to_unit_float(image: ImageLike, name: str = "image") -> np.ndarray:
    """An ``HxWx3`` float64 array in [0, 1] from a uint8/float array or an image file path.

    Raises:
        MetricError: wrong shape, dtype or value range.
        DataError: a file cannot be read.
    """
    if isinstance(image, (str, Path)):
        name = str(image)
        image = load_rgb(image)
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise MetricError(f"{name}: expected an HxWx3 RGB image, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float64) / 255.0
    if np.issubdtype(arr.dtype, np.floating):
        lo, hi = float(arr.min()), float(arr.max())
        if lo < 0.0 or hi > 1.0:
            raise MetricError(
                f"{name}: float image values span [{lo:.3g}, {hi:.3g}], expected [0, 1]; "
                "map [-1, 1] generator outputs with (x + 1) / 2"
            )
        return arr.astype(np.float64)
    raise MetricError(f"{name}: expected uint8 or float pixels, got dtype {arr.dtype}")


def load_rgb(path: str | Path) -> np.ndarray:
    """Read an image file as an ``HxWx3`` uint8 array (grayscale/alpha converted to RGB)."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except Exception as exc:  # PIL raises several unrelated types for bad files
        raise DataError(f"cannot read image {path}: {exc}; re-export it as PNG") from exc


def _pair(a: ImageLike, b: ImageLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = to_unit_float(a, f"{name} (generated)")
    y = to_unit_float(b, f"{name} (real)")
    if x.shape != y.shape:
        raise MetricError(
            f"{name}: generated image is {x.shape[1]}x{x.shape[0]} but the real one is "
            f"{y.shape[1]}x{y.shape[0]}; resize the real images to the generated size first"
        )
    return x, y


def psnr(generated: ImageLike, real: ImageLike) -> float:
    """PSNR in dB on the [0, 1] scale; ``inf`` for identical images."""
    from skimage.metrics import peak_signal_noise_ratio

    x, y = _pair(generated, real, "psnr")
    if np.array_equal(x, y):  # skimage would divide by zero and warn
        return float("inf")
    return float(peak_signal_noise_ratio(y, x, data_range=1.0))


def ssim(generated: ImageLike, real: ImageLike) -> float:
    """SSIM with Wang et al.'s Gaussian window (sigma 1.5, population covariance), mean over channels.

    Raises:
        MetricError: an image side is shorter than the 11-pixel window.
    """
    from skimage.metrics import structural_similarity

    x, y = _pair(generated, real, "ssim")
    if min(x.shape[:2]) < 11:
        raise MetricError(
            f"SSIM needs images of at least 11x11 pixels (the Gaussian window), got {x.shape[:2]}"
        )
    return float(
        structural_similarity(
            y,
            x,
            data_range=1.0,
            channel_axis=-1,
            gaussian_weights=True,
            sigma=SSIM_SIGMA,
            use_sample_covariance=False,
        )
    )


def rmse(generated: ImageLike, real: ImageLike) -> float:
    """Root mean squared error on the [0, 1] scale."""
    from skimage.metrics import mean_squared_error

    x, y = _pair(generated, real, "rmse")
    return float(np.sqrt(mean_squared_error(y, x)))


def image_scores(generated: ImageLike, real: ImageLike, name: str = "image") -> dict[str, float]:
    """PSNR, SSIM and RMSE of one pair, converting and checking the images once."""
    x, y = _pair(generated, real, name)
    try:
        return {"psnr": psnr(x, y), "ssim": ssim(x, y), "rmse": rmse(x, y)}
    except MetricError as exc:
        raise MetricError(f"{name}: {exc}") from exc


def pair_folders(generated: str | Path, real: str | Path) -> list[tuple[Path, Path]]:
    """Match each generated image to the real image with the same file stem (extensions may differ).

    Raises:
        DataError: a folder is missing or empty, or a stem appears twice in one folder.
        MetricError: a generated image has no real partner or vice versa.
    """
    gen = _images_by_stem(Path(generated))
    ref = _images_by_stem(Path(real))
    for stem, path in gen.items():
        if stem not in ref:
            raise MetricError(f"generated image {path} has no real image named {stem}.* in {real}")
    for stem, path in ref.items():
        if stem not in gen:
            raise MetricError(f"real image {path} has no generated image named {stem}.* in {generated}")
    return [(gen[s], ref[s]) for s in sorted(gen)]


def _images_by_stem(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        raise DataError(f"image folder {folder} does not exist")
    out: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if p.is_file() and p.suffix.lower() in IMAGE_EXTS:
            if p.stem in out:
                raise DataError(f"{p} and {out[p.stem]} share the stem {p.stem!r}; keep one image per name")
            out[p.stem] = p
    if not out:
        raise DataError(f"no images ({', '.join(IMAGE_EXTS)}) in {folder}")
    return out


def reconstruction_scores(
    pairs_or_generated: Iterable[tuple[ImageLike, ImageLike]] | str | Path,
    real: str | Path | None = None,
) -> dict[str, float | int]:
    """Mean PSNR, SSIM and RMSE over image pairs.

    Args:
        pairs_or_generated: either an iterable of ``(generated, real)`` pairs (arrays or paths), or the
            folder of generated images, in which case ``real`` is the folder of real images and files are
            paired by stem (:func:`pair_folders`).
        real: the real-image folder, when the first argument is a folder.

    Returns:
        ``{"psnr", "ssim", "rmse", "n"}``: per-image scores averaged over the ``n`` pairs (one identical
        pair makes the mean PSNR ``inf``); ``per_image`` holds each score's ``n`` values in pair order and
        ``ids`` the pairs' stems (or indices), for confidence intervals and paired comparisons.

    Raises:
        MetricError: no pairs, a missing partner, or mismatched sizes (the message names the file).
    """
    if isinstance(pairs_or_generated, (str, Path)):
        if real is None:
            raise MetricError(
                f"reconstruction_scores({str(pairs_or_generated)!r}) needs the real-image folder too"
            )
        pairs: Iterable[tuple[ImageLike, ImageLike]] = pair_folders(pairs_or_generated, real)
    else:
        if real is not None:
            raise MetricError("pass either (generated_folder, real_folder) or an iterable of pairs, not both")
        pairs = pairs_or_generated
    totals = {"psnr": 0.0, "ssim": 0.0, "rmse": 0.0}
    per_image: dict[str, list[float]] = {k: [] for k in totals}
    ids: list[str] = []
    n = 0
    for i, (a, b) in enumerate(pairs):
        name = str(a) if isinstance(a, (str, Path)) else f"pair {i}"
        for key, value in image_scores(a, b, name).items():
            totals[key] += value
            per_image[key].append(value)
        ids.append(Path(a).stem if isinstance(a, (str, Path)) else str(i))
        n += 1
    if n == 0:
        raise MetricError("no image pairs to score")
    return {**{k: v / n for k, v in totals.items()}, "n": n, "per_image": per_image, "ids": ids}
