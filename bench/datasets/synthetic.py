"""A procedural landscape dataset for smoke tests and CPU-sized experiments.

Each sample is a label map of a small scene (sky, mountain ridge, lake, grass, road, buildings,
trees, cars) and a photo rendered from it: every class has its own colour range and texture, and
every instance draws its own appearance (hue, brightness, texture phase), so one label map has many
valid photos, as in real semantic image synthesis. The photo is rendered *from the final label
map*, so its regions follow the labels exactly, and regions thinner than 3 px or smaller than a few
pixels are merged into their neighbours first, so no label is ambiguous to a segmenter.

Everything is drawn from ``np.random.SeedSequence([seed, split, index])``: the same arguments give
byte-identical files, whatever the number of workers.
"""

from __future__ import annotations

import colorsys
import json
import multiprocessing as mp
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.datasets.spec import DatasetSpec
from bench.errors import ConfigError

GENERATOR_VERSION = 1

CLASS_NAMES: tuple[str, ...] = ("sky", "mountain", "water", "grass", "road", "building", "tree", "car")
SKY, MOUNTAIN, WATER, GRASS, ROAD, BUILDING, TREE, CAR = range(len(CLASS_NAMES))
THING_CLASSES: tuple[int, ...] = (BUILDING, TREE, CAR)

SYNTHETIC_SPEC = DatasetSpec(
    name="synthetic",
    class_names=CLASS_NAMES,
    ignore_index=255,
    native_size=(64, 64),
    has_instances=True,
    thing_classes=THING_CLASSES,
    layout="custom",
    extra={"generator": "bench.datasets.synthetic:ensure_synthetic", "generator_version": GENERATOR_VERSION},
)

_SPLIT_CODES = {"train": 0, "val": 1}
_MIN_THICKNESS = 3  # px: regions thinner than this are merged into a neighbour
_MIN_AREA = 8  # px at 64x64, scaled with the image area


# --------------------------------------------------------------------------------------------------
# Noise


def _noise2d(rng: np.random.Generator, h: int, w: int, cell_y: float, cell_x: float) -> np.ndarray:
    """Value noise in about [-1, 1]: a random lattice with ``cell`` px spacing, smoothstep-interpolated."""
    gh, gw = int(h / cell_y) + 3, int(w / cell_x) + 3
    grid = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
    oy, ox = rng.uniform(0.0, 1.0, 2)  # random phase, so lattice lines do not align across images
    y = np.arange(h, dtype=np.float32) / cell_y + oy
    x = np.arange(w, dtype=np.float32) / cell_x + ox
    y0, x0 = y.astype(np.int64), x.astype(np.int64)
    fy, fx = y - y0, x - x0
    sy, sx = (fy * fy * (3 - 2 * fy))[:, None], (fx * fx * (3 - 2 * fx))[None, :]
    g00, g01 = grid[y0[:, None], x0[None, :]], grid[y0[:, None], x0[None, :] + 1]
    g10, g11 = grid[y0[:, None] + 1, x0[None, :]], grid[y0[:, None] + 1, x0[None, :] + 1]
    top = g00 + (g01 - g00) * sx
    bottom = g10 + (g11 - g10) * sx
    out: np.ndarray = top + (bottom - top) * sy
    return out


def _fractal2d(
    rng: np.random.Generator, h: int, w: int, cell: float, *, octaves: int = 3, stretch_x: float = 1.0
) -> np.ndarray:
    """Sum of octaves of value noise, normalised to about [-1, 1]."""
    total = np.zeros((h, w), np.float32)
    amp, norm = 1.0, 0.0
    for o in range(octaves):
        c = max(cell / 2**o, 1.0)
        total += amp * _noise2d(rng, h, w, c, c * stretch_x)
        norm += amp
        amp *= 0.5
    out: np.ndarray = total / norm
    return out


def _fractal1d(rng: np.random.Generator, n: int, cell: float, octaves: int = 3) -> np.ndarray:
    """1-D fractal value noise rescaled to exactly [0, 1] (used for ridges and shores)."""
    p = _fractal2d(rng, 1, n, cell, octaves=octaves)[0]
    span = float(p.max() - p.min())
    out: np.ndarray = (p - p.min()) / span if span > 1e-6 else np.full(n, 0.5, np.float32)
    return out


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    return np.array(
        colorsys.hsv_to_rgb(h % 1.0, float(np.clip(s, 0, 1)), float(np.clip(v, 0, 1))), np.float32
    )


# --------------------------------------------------------------------------------------------------
# Layout: the label and instance maps, plus the geometry the renderer needs


@dataclass
class _Instance:
    cls: int
    box: tuple[float, float, float, float]  # x0, y0, x1, y1 (px, float)
    params: dict[str, float] = field(default_factory=dict)


@dataclass
class _Scene:
    size: int
    horizon: np.ndarray  # [W] horizon row per column
    label: np.ndarray  # [H, W] uint8
    inst: np.ndarray  # [H, W] uint8, 0 = stuff
    instances: dict[int, _Instance]
    road: dict[str, float]  # road geometry, empty when there is no road


def _place(scene: _Scene, mask: np.ndarray, cls: int, min_keep: float = 0.6) -> int | None:
    """Paint an instance if it leaves each instance it covers at least ``min_keep`` of its pixels."""
    if mask.sum() < _MIN_AREA:
        return None
    covered = np.bincount(scene.inst[mask], minlength=256)
    visible = np.bincount(scene.inst.ravel(), minlength=256)
    for k in np.flatnonzero(covered[1:]) + 1:
        if visible[k] - covered[k] < min_keep * visible[k]:
            return None
    new_id = len(scene.instances) + 1
    if new_id > 255:
        return None
    scene.label[mask] = cls
    scene.inst[mask] = new_id
    return new_id


def _layout(rng: np.random.Generator, size: int) -> _Scene:
    h = w = size
    k = size / 64.0  # every length below is in px at 64x64
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    horizon0 = rng.uniform(0.3, 0.5) * h
    horizon = horizon0 + rng.uniform(-0.06, 0.06) * (np.arange(w, dtype=np.float32) - w / 2)
    label = np.full((h, w), GRASS, np.uint8)
    sky = yy < horizon[None, :]
    label[sky] = SKY

    if rng.random() < 0.75:  # a mountain ridge between sky and horizon
        prof = _fractal1d(rng, w, rng.uniform(10, 24) * k)
        amp = rng.uniform(0.45, 0.9) * horizon0
        ridge = horizon - (0.3 + 0.7 * prof) * amp
        label[sky & (yy >= ridge[None, :])] = MOUNTAIN

    ground = ~sky
    if rng.random() < 0.5:  # a lake touching the horizon, its near shore a smooth curve
        cx, rx = rng.uniform(0.1, 0.9) * w, rng.uniform(0.3, 0.7) * w
        bump = np.clip(1 - ((np.arange(w) - cx) / rx) ** 2, 0, None)
        depth = bump * rng.uniform(0.25, 0.6) * (h - horizon0) * (0.7 + 0.3 * _fractal1d(rng, w, 12 * k))
        label[ground & (yy < horizon[None, :] + depth[None, :])] = WATER

    road: dict[str, float] = {}
    r = rng.random()
    if r < 0.4:  # a road crossing the view, seen from the side
        band = rng.uniform(9, 15) * k
        top = rng.uniform(horizon0 + 0.25 * (h - horizon0), h - band * 0.7)
        label[(yy >= top) & (yy < top + band)] = ROAD
        road = {"kind": 0.0, "top": float(top), "bottom": float(top + band)}
    elif r < 0.8:  # a road running into the distance
        vx = rng.uniform(0.3, 0.7) * w
        ytop = horizon0 + rng.uniform(0.1, 0.3) * (h - horizon0)
        bx, bw = rng.uniform(0.25, 0.75) * w, rng.uniform(0.55, 1.0) * w
        t = np.clip((yy - ytop) / (h - ytop), 0, 1)
        center = vx + (bx - vx) * t
        half = (0.12 + 0.88 * t) * bw / 2
        label[(yy >= ytop) & (np.abs(xx - center) <= half)] = ROAD
        road = {"kind": 1.0, "top": float(ytop), "vx": float(vx), "bx": float(bx), "bw": float(bw)}

    scene = _Scene(size, horizon, label, np.zeros((h, w), np.uint8), {}, road)

    if rng.random() < 0.7:  # buildings standing on the horizon
        for _ in range(int(rng.integers(1, 5))):
            for _try in range(6):
                bw_ = rng.uniform(8, 17) * k
                x0 = rng.uniform(-0.3 * bw_, w - 0.7 * bw_)
                xc = int(np.clip(x0 + bw_ / 2, 0, w - 1))
                base = horizon[xc] + rng.uniform(0, 3) * k
                top = base - rng.uniform(10, max(12.0, min(32.0 * k, base - 2)))
                mask = (xx >= x0) & (xx < x0 + bw_) & (yy >= top) & (yy < base)
                inst = _place(scene, mask, BUILDING)
                if inst is not None:
                    scene.instances[inst] = _Instance(
                        BUILDING, (x0, top, x0 + bw_, base), _building_params(rng)
                    )
                    break

    # Trees and cars stand on the ground; nearer ones (lower base) are bigger and drawn later.
    n_trees = int(rng.integers(1, 5))
    n_cars = int(rng.integers(1, 4)) if road else int(rng.random() < 0.5)  # parked on grass
    bases: list[tuple[float, float, int]] = []
    for cls in [TREE] * n_trees + [CAR] * n_cars:
        cand = np.argwhere(label == (ROAD if cls == CAR and road else GRASS))
        if len(cand) == 0:
            continue
        y, x = cand[int(rng.integers(len(cand)))]
        bases.append((float(y) + rng.uniform(0, 1), float(x) + rng.uniform(0, 1), cls))
    bases.sort()
    for by, bx, cls in bases:
        depth = float(np.clip((by - horizon0) / max(h - horizon0, 1), 0, 1))
        for _try in range(4):
            if cls == TREE:
                rad = (3.8 + 5.0 * depth) * k * rng.uniform(0.85, 1.15)
                trunk = rng.uniform(0.5, 0.9) * rad
                cy = by - trunk - 0.8 * rad
                ang = np.arctan2(yy - cy, xx - bx)
                wobble = 1 + 0.15 * np.sin(ang * rng.integers(3, 7) + rng.uniform(0, 6.3))
                crown = (yy - cy) ** 2 + (xx - bx) ** 2 <= (rad * wobble) ** 2
                tw = max(_MIN_THICKNESS, round(rad * 0.45))
                stem = (np.abs(xx + 0.5 - bx) <= tw / 2) & (yy >= cy) & (yy < by)
                mask = crown | stem
                inst = _place(scene, mask, TREE)
                if inst is not None:
                    p = _tree_params(rng)
                    p.update(cx=bx, cy=cy, r=rad)
                    scene.instances[inst] = _Instance(TREE, (bx - rad, cy - rad, bx + rad, by), p)
                    break
            else:
                cw = (12.0 + 8.0 * depth) * k * rng.uniform(0.9, 1.1)
                ch = cw * rng.uniform(0.5, 0.6)
                x0, y0 = bx - cw / 2, by - ch
                body = (xx >= x0) & (xx < x0 + cw) & (yy >= y0 + 0.45 * ch) & (yy < by)
                c0, c1 = x0 + cw * rng.uniform(0.12, 0.25), x0 + cw * rng.uniform(0.7, 0.85)
                cabin = (xx >= c0) & (xx < c1) & (yy >= y0) & (yy < y0 + 0.5 * ch)
                inst = _place(scene, body | cabin, CAR)
                if inst is not None:
                    p = _car_params(rng)
                    p.update(c0=c0, c1=c1)
                    scene.instances[inst] = _Instance(CAR, (x0, y0, x0 + cw, by), p)
                    break
            bx += rng.uniform(-6, 6) * k  # shift and retry
    _cleanup(scene)
    return scene


def _cleanup(scene: _Scene) -> None:
    """Merge thin (< 3 px) and tiny regions into the nearest solid region, label and instance together."""
    from scipy import ndimage  # lazy: `bench` commands that fail early never load scipy
    h = scene.size
    min_area = max(4, round(_MIN_AREA * (h / 64) ** 2))
    key = scene.label.astype(np.int32) * 256 + scene.inst
    for _ in range(3):
        bad = ~_solid(key)
        for kval in np.unique(key):
            m = key == kval
            comp, n = ndimage.label(m)
            if n > 1 or m.sum() < min_area:
                sizes = np.bincount(comp.ravel())
                small = sizes < min_area
                small[0] = False
                bad |= small[comp]
        if not bad.any() or bad.all():
            break
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        new = key[idx[0], idx[1]]
        if np.array_equal(new, key):
            break
        key = new
    scene.label = (key // 256).astype(np.uint8)
    scene.inst = (key % 256).astype(np.uint8)


def _solid(key: np.ndarray) -> np.ndarray:
    """Pixels covered by some t x t window of a single key (a morphological opening of every region at once)."""
    t = _MIN_THICKNESS
    h, w = key.shape
    ref = key[: h - t + 1, : w - t + 1]
    uniform = np.ones(ref.shape, bool)
    for dy in range(t):
        for dx in range(t):
            uniform &= key[dy : dy + h - t + 1, dx : dx + w - t + 1] == ref
    solid = np.zeros(key.shape, bool)
    for dy in range(t):
        for dx in range(t):
            solid[dy : dy + h - t + 1, dx : dx + w - t + 1] |= uniform
    return solid


def _building_params(rng: np.random.Generator) -> dict[str, float]:
    palette = int(rng.integers(3))
    hue, sat, val = [(0.09, 0.3, 0.75), (0.02, 0.55, 0.55), (0.6, 0.06, 0.62)][palette]
    return {
        "h": hue + rng.uniform(-0.02, 0.02),
        "s": sat * rng.uniform(0.8, 1.2),
        "v": val * rng.uniform(0.85, 1.15),
        "px": float(rng.integers(3, 5)),
        "py": float(rng.integers(3, 6)),
        "ox": float(rng.integers(0, 3)),
        "oy": float(rng.integers(1, 3)),
        "lit": rng.uniform(0.05, 0.4),
        "seed": float(rng.integers(1 << 30)),
    }


def _tree_params(rng: np.random.Generator) -> dict[str, float]:
    return {
        "h": rng.uniform(0.27, 0.38),
        "s": rng.uniform(0.55, 0.85),
        "v": rng.uniform(0.2, 0.36),
        "seed": float(rng.integers(1 << 30)),
    }


def _car_params(rng: np.random.Generator) -> dict[str, float]:
    # Reds/oranges/yellows or blues/purples: never the greens of grass and trees.
    hue = rng.uniform(-0.05, 0.15) if rng.random() < 0.55 else rng.uniform(0.62, 0.88)
    return {"h": hue, "s": rng.uniform(0.6, 0.9), "v": rng.uniform(0.6, 0.92)}


# --------------------------------------------------------------------------------------------------
# Rendering: a photo from the final label map


def _render(rng: np.random.Generator, scene: _Scene) -> np.ndarray:
    h = w = scene.size
    k = h / 64.0
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    label, inst = scene.label, scene.inst
    img = np.zeros((h, w, 3), np.float32)
    hz = scene.horizon[None, :]

    # sky: vertical gradient, paler at the horizon, with soft clouds
    hue = rng.uniform(0.56, 0.62)
    top, bottom = _hsv(hue, rng.uniform(0.45, 0.7), rng.uniform(0.7, 0.88)), _hsv(hue - 0.02, 0.2, 0.95)
    t = np.clip(yy / np.maximum(hz, 1), 0, 1)[..., None]
    sky = top * (1 - t) + bottom * t
    cloud = np.clip((_fractal2d(rng, h, w, 14 * k, stretch_x=2.0) - rng.uniform(0.0, 0.45)) / 0.25, 0, 1)
    sky = sky + (np.float32(0.97) - sky) * (cloud * rng.uniform(0.6, 0.9))[..., None]
    _paint(img, label == SKY, sky)

    # mountain: ridged noise, hazier near the horizon
    mh = rng.uniform(0.6, 0.75) if rng.random() < 0.6 else rng.uniform(0.04, 0.1)
    base = _hsv(mh, rng.uniform(0.15, 0.35), rng.uniform(0.38, 0.55))
    ridged = (1 - np.abs(_fractal2d(rng, h, w, 9 * k, stretch_x=0.6))) ** 2
    _paint(img, label == MOUNTAIN, base * (0.6 + 0.6 * ridged)[..., None])

    # water: horizontal ripples with short glints
    base = _hsv(rng.uniform(0.5, 0.56), rng.uniform(0.45, 0.7), rng.uniform(0.35, 0.55))
    period = rng.uniform(2.2, 3.2) * k
    ripple = np.sin(2 * np.pi * yy / period + 2.5 * _fractal2d(rng, h, w, 6 * k, stretch_x=2.0))
    glint = np.clip((_noise2d(rng, h, w, 1.0 * k, 5.0 * k) - 0.55) * 3, 0, 1)
    water = base * (0.85 + 0.18 * ripple)[..., None]
    _paint(img, label == WATER, water + (0.9 - water) * (0.6 * glint)[..., None])

    # grass: fine vertical blades over broad patches
    base = _hsv(rng.uniform(0.22, 0.3), rng.uniform(0.5, 0.75), rng.uniform(0.48, 0.7))
    blades = _noise2d(rng, h, w, 2.5 * k, 0.8 * k)
    patches = _fractal2d(rng, h, w, 16 * k)
    speckle = rng.uniform(-1, 1, (h, w)).astype(np.float32)
    _paint(img, label == GRASS, base * (0.85 + 0.16 * blades + 0.1 * patches + 0.06 * speckle)[..., None])

    # road: grainy asphalt with dashed lane marks
    grey = rng.uniform(0.2, 0.32)
    base = np.array([grey, grey, grey * rng.uniform(1.0, 1.12)], np.float32)
    road = base * (1 + 0.12 * rng.uniform(-1, 1, (h, w)).astype(np.float32))[..., None]
    mark_col = _hsv(0.14, 0.7, 0.9) if rng.random() < 0.5 else _hsv(0, 0, 0.92)
    marks = _lane_marks(rng, scene, yy, xx, k)
    road = np.where(marks[..., None], mark_col, road)
    _paint(img, label == ROAD, road)

    for iid, ins in scene.instances.items():
        m = inst == iid
        if not m.any():
            continue  # merged away by the cleanup
        if ins.cls == BUILDING:
            _paint(img, m, _building(rng, ins, yy, xx, k))
        elif ins.cls == TREE:
            _paint(img, m, _tree(ins, yy, xx, k))
        else:
            _paint(img, m, _car(rng, ins, yy, xx, k))

    # global exposure and white balance, then sensor noise: one label map, many photos
    img *= rng.uniform(0.88, 1.08) * rng.uniform(0.95, 1.05, 3).astype(np.float32)
    img += rng.normal(0, 0.012, img.shape).astype(np.float32)
    out: np.ndarray = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return out


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    img[mask] = colour[mask] if colour.ndim == 3 else colour


def _lane_marks(
    rng: np.random.Generator, scene: _Scene, yy: np.ndarray, xx: np.ndarray, k: float
) -> np.ndarray:
    road = scene.road
    if not road:
        return np.zeros(yy.shape, bool)
    period, dash = rng.uniform(6, 9) * k, rng.uniform(3, 4.5) * k
    phase = rng.uniform(0, period)
    if road["kind"] == 0.0:
        yc = (road["top"] + road["bottom"]) / 2
        return (np.abs(yy + 0.5 - yc) < 0.6 * k) & (((xx + phase) % period) < dash)
    h = scene.size
    t = np.clip((yy - road["top"]) / (h - road["top"]), 0, 1)
    center = road["vx"] + (road["bx"] - road["vx"]) * t
    half_width = (0.6 + 0.8 * t) * k
    # dashes shorten toward the vanishing point, as in perspective
    along = np.sqrt(np.maximum(t, 0)) * h * 1.6
    return (np.abs(xx + 0.5 - center) < half_width) & (((along + phase) % period) < dash)


def _building(
    rng: np.random.Generator, ins: _Instance, yy: np.ndarray, xx: np.ndarray, k: float
) -> np.ndarray:
    p = ins.params
    x0, y0, _, _ = ins.box
    facade = _hsv(p["h"], p["s"], p["v"])
    col = (
        np.broadcast_to(facade, yy.shape + (3,))
        * (1 + 0.05 * rng.uniform(-1, 1, yy.shape).astype(np.float32))[..., None]
    )
    px, py = p["px"] * k, p["py"] * k
    rx, ry = xx - np.floor(x0) - p["ox"] * k, yy - np.floor(y0) - p["oy"] * k
    win = (rx >= 0) & (ry >= 0) & ((rx % px) < px - k) & ((ry % py) < max(py - 1.5 * k, k))
    cell = (np.floor(rx / px) * 31 + np.floor(ry / py) * 17 + p["seed"]) % 101
    lit = cell < p["lit"] * 101
    dark = _hsv(0.6, 0.35, 0.2)
    bright = _hsv(0.13, 0.6, 0.92)
    col = np.where((win & lit)[..., None], bright, np.where(win[..., None], dark, col))
    out: np.ndarray = col.astype(np.float32)
    return out


def _tree(ins: _Instance, yy: np.ndarray, xx: np.ndarray, k: float) -> np.ndarray:
    p = ins.params
    rng = np.random.default_rng(int(p["seed"]))
    h, w = yy.shape
    base = _hsv(p["h"], p["s"], p["v"])
    leaves = _fractal2d(rng, h, w, 2.5 * k, octaves=2)
    shade = 1 + 0.35 * np.clip(-((xx - p["cx"]) + (yy - p["cy"])) / (1.4 * p["r"]), -1, 1)
    col = base * (shade * (0.85 + 0.3 * leaves))[..., None]
    trunk = (yy > p["cy"] + 0.85 * p["r"])[..., None]
    bark = _hsv(0.07, 0.55, 0.3) * (1 + 0.1 * leaves)[..., None]
    out: np.ndarray = np.where(trunk, bark, col).astype(np.float32)
    return out


def _car(rng: np.random.Generator, ins: _Instance, yy: np.ndarray, xx: np.ndarray, k: float) -> np.ndarray:
    p = ins.params
    x0, y0, x1, y1 = ins.box
    ch, cw = y1 - y0, x1 - x0
    paint = _hsv(p["h"], p["s"], p["v"])
    col = np.broadcast_to(paint, yy.shape + (3,)).astype(np.float32)
    body_top = y0 + 0.45 * ch
    col = np.where(
        ((yy >= body_top) & (yy < body_top + k))[..., None], np.minimum(paint * 1.25 + 0.1, 1), col
    )
    glass = (yy >= y0 + k) & (yy < body_top) & (xx >= p["c0"] + k) & (xx < p["c1"] - k)
    col = np.where(glass[..., None], _hsv(0.58, 0.25, 0.32) + 0.12 * (yy < y0 + 2 * k)[..., None], col)
    wr = 0.24 * ch
    wheels = np.zeros(yy.shape, bool)
    for fx in (0.22, 0.78):
        wheels |= (yy + 0.5 - (y1 - wr)) ** 2 + (xx + 0.5 - (x0 + fx * cw)) ** 2 <= wr**2
    col = np.where(wheels[..., None], np.float32(0.07), col)
    out: np.ndarray = col.astype(np.float32)
    return out


# --------------------------------------------------------------------------------------------------
# Writing the dataset


def _sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, _SPLIT_CODES[split], index]))


def generate_sample(
    seed: int, split: str, index: int, size: int = 64
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (image [H, W, 3] uint8, label [H, W] uint8, instance [H, W] uint8) triple, deterministic."""
    rng = _sample_rng(seed, split, index)
    scene = _layout(rng, size)
    image = _render(rng, scene)
    return image, scene.label, scene.inst


def _write_chunk(args: tuple[str, int, str, Sequence[int], int]) -> list[int]:
    out, seed, split, indices, size = args
    root = Path(out)
    hist = np.zeros(len(CLASS_NAMES) + 1, np.int64)  # pixels per class, then images per class
    present = np.zeros(len(CLASS_NAMES), np.int64)
    for i in indices:
        image, label, inst = generate_sample(seed, split, i, size)
        stem = f"{split}_{i:05d}"
        Image.fromarray(image).save(root / f"{split}_img" / f"{stem}.png")
        Image.fromarray(label).save(root / f"{split}_label" / f"{stem}.png")
        Image.fromarray(inst).save(root / f"{split}_inst" / f"{stem}.png")
        counts = np.bincount(label.ravel(), minlength=len(CLASS_NAMES))[: len(CLASS_NAMES)]
        hist[: len(CLASS_NAMES)] += counts
        present += counts > 0
    return [int(v) for v in hist[: len(CLASS_NAMES)]] + [int(v) for v in present]


def write_synthetic(
    out: Path | str,
    *,
    size: int = 64,
    n_train: int = 2000,
    n_val: int = 200,
    seed: int = 0,
    workers: int = 2,
    overwrite: bool = False,
) -> Path:
    """Write the synthetic dataset in the custom layout, with a ``dataset.json`` describing it.

    Args:
        out: Folder to write: missing, empty, or an earlier synthetic dataset (its files are replaced,
            the ones this call does not produce removed), following :mod:`bench.outputs`.
        size: Image side in px (the generator is tuned for 64; other sizes scale every length).
        n_train: Number of training samples.
        n_val: Number of validation samples.
        seed: Master seed; the same arguments give byte-identical files.
        workers: Processes used to render (1 = in this process).
        overwrite: Also write into a non-empty folder sisbench did not write (same-named files are
            replaced, nothing is deleted).

    Returns:
        ``out``.

    Raises:
        ConfigError: A size or count is out of range. ``OutputDirError`` (a ConfigError): ``out`` is a
            non-empty folder sisbench did not write, and not ``overwrite``.
    """
    if size < 32:
        raise ConfigError(f"synthetic size must be >= 32 px, got {size}")
    if n_train < 0 or n_val < 0 or n_train > 99_999 or n_val > 99_999:
        raise ConfigError(f"n_train and n_val must be in 0..99999, got {n_train}, {n_val}")
    from bench.outputs import prepare_output_dir

    root = Path(out)
    target = prepare_output_dir(root, overwrite=overwrite, kind="synthetic dataset")
    names = [
        f"{split}_{kind}/{split}_{i:05d}.png"
        for split, n in (("train", n_train), ("val", n_val))
        for kind in ("img", "label", "inst")
        for i in range(n)
    ]
    target.claim([*names, "dataset.json"])  # before the workers write them (they save in place)
    for split in ("train", "val"):
        for kind in ("img", "label", "inst"):
            target.makedirs(f"{split}_{kind}")

    chunk = 50
    jobs = [
        (str(root), seed, split, list(range(s, min(s + chunk, n))), size)
        for split, n in (("train", n_train), ("val", n_val))
        for s in range(0, n, chunk)
    ]
    if workers > 1 and len(jobs) > 1:
        # fork: children inherit sys.path, so this works from tests and notebooks without installation
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
        with ctx.Pool(min(workers, len(jobs))) as pool:
            results = pool.map(_write_chunk, jobs, chunksize=1)
    else:
        results = [_write_chunk(j) for j in jobs]

    nc = len(CLASS_NAMES)
    stats: dict[str, dict[str, Any]] = {}
    for split, n in (("train", n_train), ("val", n_val)):
        rows = [r for j, r in zip(jobs, results, strict=True) if j[2] == split]
        pixels = np.sum([r[:nc] for r in rows], axis=0) if rows else np.zeros(nc, np.int64)
        images = np.sum([r[nc:] for r in rows], axis=0) if rows else np.zeros(nc, np.int64)
        total = max(int(pixels.sum()), 1)
        stats[split] = {
            "pixel_fraction": {c: round(int(p) / total, 5) for c, p in zip(CLASS_NAMES, pixels, strict=True)},
            "image_fraction": {
                c: round(int(m) / max(n, 1), 5) for c, m in zip(CLASS_NAMES, images, strict=True)
            },
        }
    meta = {
        "name": "synthetic",
        "generator": "bench.datasets.synthetic",
        "generator_version": GENERATOR_VERSION,
        "size": size,
        "seed": seed,
        "counts": {"train": n_train, "val": n_val},
        "class_names": list(CLASS_NAMES),
        "thing_classes": list(THING_CLASSES),
        "ignore_index": 255,
        "instance_ids": "per image 1..N for building/tree/car pixels, 0 elsewhere (8-bit PNG)",
        "stats": stats,
    }
    target.record(names)
    target.write_text("dataset.json", json.dumps(meta, indent=2, sort_keys=True) + "\n")
    target.finish()
    return root


def _cache_root(cache_dir: Path | str | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    from bench.cache import cache_dir as bench_cache

    return bench_cache()


def ensure_synthetic(cache_dir: Path | str | None = None, **kw: Any) -> Path:
    """Return the cached synthetic dataset, generating it on first use.

    The dataset lives in ``<cache>/datasets/synthetic-<size>-<seed>-<n_train>-<n_val>-<code>/`` where ``<code>``
    fingerprints this module's source (an edited generator writes a new folder) and
    ``<cache>`` is ``cache_dir`` or ``$BENCH_CACHE`` (default ``~/.cache/sisbench``). It is built in a
    temporary sibling folder and moved into place with ``os.replace``, so an interrupted or
    concurrent run never leaves a half-written dataset behind.

    Args:
        cache_dir: Cache root to use instead of ``$BENCH_CACHE``.
        **kw: Arguments of :func:`write_synthetic` (``size``, ``n_train``, ``n_val``, ``seed``, ``workers``).

    Returns:
        The dataset root.
    """
    size = int(kw.get("size", 64))
    seed = int(kw.get("seed", 0))
    n_train, n_val = int(kw.get("n_train", 2000)), int(kw.get("n_val", 200))
    unknown = set(kw) - {"size", "seed", "n_train", "n_val", "workers"}
    if unknown:
        raise ConfigError(
            f"unknown ensure_synthetic arguments {sorted(unknown)}; valid: size, seed, n_train, n_val, workers"
        )
    from bench.outputs import make_temp_dir

    parent = _cache_root(cache_dir) / "datasets"
    from bench.cache import code_fingerprint

    # keyed by the generator's own code too: an edited generator never serves a dataset it would not write
    final = parent / f"synthetic-{size}-{seed}-{n_train}-{n_val}-{code_fingerprint(__name__)[:8]}"
    if _current(final):
        return final
    parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(parent, prefix=f".{final.name}.tmp-")  # umask mode: it becomes the dataset folder
    try:
        write_synthetic(
            tmp, size=size, n_train=n_train, n_val=n_val, seed=seed, workers=int(kw.get("workers", 2))
        )
        if final.exists() and not _current(final):  # written by an older generator: replace it
            stale = make_temp_dir(parent, prefix=f".{final.name}.old-")
            os.replace(final, stale / "d")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp, final)
        except OSError:
            if not _current(final):  # a concurrent run that won the race leaves a complete dataset
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final


def _current(root: Path) -> bool:
    try:
        meta = json.loads((root / "dataset.json").read_text())
    except (OSError, ValueError):
        return False
    return bool(meta.get("generator_version") == GENERATOR_VERSION)
