"""RESAIL's distorted ground truth Ĩ^gt (Shi et al., CVPR 2022, Sec. 3.3).

During training the generator is guided by a distorted copy of the real image, so that it learns to
use guidance that is close to, but not exactly, the target. Per query segment (the largest ones
covering 90% of each class, see :func:`methods.resail.retrieval.extract_segments`), following
``data/data_preprocessor.py`` and ``util/image.py`` of the official code:

1. colour transfer in Reinhard's lαβ space toward a random one of the segment's top-k matches,
2. down- and up-sampling (bicubic) by a factor drawn from U(0.5, 1),
3. a thin-plate-spline warp: 10 points equally spaced on the segment's longest contour, 3 of them
   (drawn with replacement) displaced by U(-0.4, 0.4) x 0.22 x sqrt(area) in each coordinate,

and the distorted segments are composited like the guidance image. All randomness comes from the
``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import measure

from methods.resail.retrieval import Box, Layer, Retrieval, Segment, SegmentDB, composite

_EPS = 1e-10
# Reinhard et al., "Color transfer between images" (2001): RGB -> LMS, log, then decorrelating lαβ axes.
_RGB2LMS = np.array([[0.3811, 0.5783, 0.0402], [0.1967, 0.7244, 0.0782], [0.0241, 0.1288, 0.8444]])
_LMS2RGB = np.array([[4.4679, -3.5873, 0.1193], [-1.2186, 2.3809, -0.1624], [0.0497, -0.2439, 1.2045]])
_SCALE = np.diag([1 / math.sqrt(3), 1 / math.sqrt(6), 1 / math.sqrt(2)])
_LMS2LAB = _SCALE @ np.array([[1.0, 1, 1], [1, 1, -2], [1, -1, 0]])
_LAB2LMS = np.array([[1.0, 1, 1], [1, 1, -1], [1, -2, 0]]) @ _SCALE


def rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """``[..., 3]`` RGB in 0..255 → lαβ (natural log of LMS; the base cancels in a mean/std transfer)."""
    lms = np.asarray(rgb, np.float64) @ _RGB2LMS.T
    return np.log(np.maximum(lms, _EPS)) @ _LMS2LAB.T


def lab_to_rgb(lab: np.ndarray) -> np.ndarray:
    """Inverse of :func:`rgb_to_lab`, clipped to uint8 (truncating, as the official ``astype``)."""
    rgb = np.exp(np.asarray(lab) @ _LAB2LMS.T) @ _LMS2RGB.T
    return np.clip(rgb, 0, 255).astype(np.uint8)


def color_transfer(src: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Give the pixels ``src`` ([n, 3] uint8) the per-channel lαβ mean and std of ``ref`` ([m, 3])."""
    if len(src) == 0 or len(ref) == 0:
        return np.asarray(src, np.uint8)
    s, r = rgb_to_lab(src), rgb_to_lab(ref)
    out = (s - s.mean(0)) * np.maximum(r.std(0), _EPS) / np.maximum(s.std(0), _EPS) + r.mean(0)
    return lab_to_rgb(out)


def degrade_resolution(image: np.ndarray, ratio: float) -> np.ndarray:
    """Bicubic down-sampling by ``ratio`` and back up to the original size."""
    h, w = image.shape[:2]
    small = (max(1, int(w * ratio)), max(1, int(h * ratio)))
    pil = Image.fromarray(image)
    return np.asarray(pil.resize(small, Image.BICUBIC).resize((w, h), Image.BICUBIC))


def control_points(
    mask: np.ndarray, rng: np.random.Generator, *, n_points: int = 10, n_moved: int = 3, warp_ratio: float = 0.22
) -> tuple[np.ndarray, np.ndarray] | None:
    """Official ``warp_points``: (before, after) ``[n_points, 2]`` (y, x) control points, or None (no warp).

    No warp when the longest contour has at most ``n_points`` points, or when the moved points are
    collinear or coincide (the spline system would be singular).
    """
    padded = np.pad(mask.astype(np.float32), 1)
    contours = measure.find_contours(padded, 0.5)
    if not contours:
        return None
    contour = max(contours, key=len)  # first longest, as the official loop
    if len(contour) // (n_points + 1) == 0:
        return None
    before = np.rint(contour[np.linspace(0, len(contour) - 1, n_points).astype(int)] - 1)
    warp_size = math.sqrt(float(mask.sum())) * warp_ratio
    moved = rng.choice(n_points, n_moved)  # with replacement, as np.random.choice
    after = before.copy()
    after[moved] = before[moved] + rng.uniform(-0.4, 0.4, size=(n_moved, 2)) * warp_size
    after = np.trunc(after)  # the official casts to int
    if np.linalg.matrix_rank(np.concatenate([after, np.ones((n_points, 1))], 1)) != 3:
        return None
    if len(np.unique(after, axis=0)) != n_points:
        return None
    return before, after


def _phi(r2: np.ndarray) -> np.ndarray:
    """Thin-plate kernel of the squared distance: r^2 log r = 0.5 r2 log r2 (0 at 0)."""
    return 0.5 * r2 * np.log(np.where(r2 == 0, 1.0, r2))


def tps_flow(before: np.ndarray, after: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Dense flow ``[2, H, W]`` of the thin-plate spline that moves ``before`` to ``after``.

    The flows ``after - before`` live at the ``after`` points and are interpolated (polyharmonic order
    2 with a linear term, no regularisation, as ``sparse_image_warp``); output pixel p then reads
    the input at ``p - flow(p)``.
    """
    c = after.astype(np.float64)
    f = (after - before).astype(np.float64)
    n = len(c)
    a = _phi(((c[:, None] - c[None]) ** 2).sum(-1))
    b = np.concatenate([c, np.ones((n, 1))], 1)
    lhs = np.block([[a, b], [b.T, np.zeros((3, 3))]])
    rhs = np.concatenate([f, np.zeros((3, 2))])
    wv = np.linalg.solve(lhs, rhs)
    h, w = shape
    grid = np.stack(np.meshgrid(np.arange(h), np.arange(w), indexing="ij"), -1).reshape(-1, 2).astype(np.float64)
    k = _phi(((grid[:, None] - c[None]) ** 2).sum(-1))
    flow = k @ wv[:n] + np.concatenate([grid, np.ones((len(grid), 1))], 1) @ wv[n:]
    return flow.T.reshape(2, h, w)


def tps_warp(
    image: np.ndarray, mask: np.ndarray, before: np.ndarray, after: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Warp an ``[H, W, 3]`` uint8 image (bilinear) and its mask (nearest); outside reads black."""
    h, w = mask.shape
    flow = tps_flow(before, after, (h, w))
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    coords = np.stack([yy - flow[0], xx - flow[1]])
    out = np.stack(
        [ndimage.map_coordinates(image[..., ch].astype(np.float32), coords, order=1, cval=0.0) for ch in range(3)], -1
    )
    warped_mask = ndimage.map_coordinates(mask.astype(np.uint8), coords, order=0, cval=0) > 0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), warped_mask


def _padded_box(seg: Segment, shape: tuple[int, int], warp_ratio: float) -> Box:
    """The segment's box grown by the largest displacement a moved point can get (plus 2 px)."""
    pad = int(math.ceil(0.4 * warp_ratio * math.sqrt(max(seg.area, 1)))) + 2
    y0, x0, y1, x1 = seg.box
    return max(0, y0 - pad), max(0, x0 - pad), min(shape[0], y1 + pad), min(shape[1], x1 + pad)


def distort_segment(
    image: np.ndarray,
    seg: Segment,
    ref: tuple[np.ndarray, np.ndarray] | None,
    rng: np.random.Generator,
    *,
    resolution: tuple[float, float] = (0.5, 1.0),
    n_points: int = 10,
    n_moved: int = 3,
    warp_ratio: float = 0.22,
) -> Layer:
    """Colour-transfer, degrade and warp one segment of ``image``; returns its layer for :func:`composite`.

    Args:
        image: ``[H, W, 3]`` uint8 real image.
        seg: The query segment.
        ref: ``(rgb, mask)`` crop of the match whose colours it takes, or None to keep its colours.
        rng: Source of the random ratio and displacements.
        resolution: Range of the down-sampling factor.
        n_points, n_moved, warp_ratio: Thin-plate-spline control (official 10, 3, 0.22).
    """
    box = _padded_box(seg, image.shape[:2], warp_ratio)
    y0, x0, y1, x1 = box
    local = seg.mask_in(box)
    pixels = image[y0:y1, x0:x1][local]
    if ref is not None:
        pixels = color_transfer(pixels, ref[0][ref[1]])
    piece = np.zeros((y1 - y0, x1 - x0, 3), np.uint8)
    piece[local] = pixels
    piece = degrade_resolution(piece, float(rng.uniform(*resolution)))
    pts = control_points(local, rng, n_points=n_points, n_moved=n_moved, warp_ratio=warp_ratio)
    paste = local
    if pts is not None:
        try:
            piece, paste = tps_warp(piece, local, *pts)
        except np.linalg.LinAlgError:
            pass  # a singular spline system: keep the segment unwarped, as the official dummy warp
    return Layer(box, piece, paste, seg)


def distorted_ground_truth(
    image: np.ndarray,
    retrieval: Retrieval,
    db: SegmentDB,
    rng: np.random.Generator,
    **kwargs: float | int | tuple[float, float],
) -> np.ndarray:
    """Ĩ^gt for one training image: every retrieved segment distorted, then composited.

    Segments without any database match are left black, as the official code skips them.

    Args:
        image: ``[H, W, 3]`` uint8 real image (the label map's photo, at the same size).
        retrieval: Its segments and their top-k matches.
        db: The database the matches index.
        rng: Random source.
        **kwargs: Passed to :func:`distort_segment`.
    """
    layers = []
    for seg, m in zip(retrieval.segments, retrieval.matches):
        valid = m[m >= 0]
        if len(valid) == 0:
            continue
        j = int(valid[rng.integers(len(valid))])
        layers.append(distort_segment(image, seg, db.crop(j), rng, **kwargs))  # type: ignore[arg-type]
    return composite(retrieval.shape, layers)
