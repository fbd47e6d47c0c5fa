"""Image grids of ``bench report``: for the same validation ids, the label map (in the dataset's palette),
the real photo and every run's image; and for SEAN runs a style-control grid (each label map rendered with
the per-region styles of each other photo).

Label maps are read from the run's label folder (``record.extra["labels"]``: ``<id>.png``, or a
Cityscapes ``<city>/<id>_gtFine_labelIds.png``) as the file values they hold and coloured with the
dataset's published palette (:mod:`bench.datasets.palettes`: the official Cityscapes colours from
cityscapesscripts, mmseg's ADE20K/COCO-Stuff palettes, CelebAMask-HQ's, the synthetic one); a dataset
without a published palette (a user dataset) gets the fixed palette of :func:`reports.render.colorize`.
"""

from __future__ import annotations

import hashlib
import io
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from bench.errors import BenchError, ConfigError
from bench.outputs import OutputDir
from bench.store import RunRecord
from reports.significance import RowGroup

log = logging.getLogger(__name__)

GRID_IDS = 4  # ids shown when --grid-ids is not given


def _png(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def colour_label(ids: np.ndarray, dataset: str) -> np.ndarray:
    """uint8 ``[H, W, 3]`` of a label file's values in ``dataset``'s palette (fixed palette for others)."""
    from bench.datasets.palettes import BUILTIN, ids_to_colour, load_palette

    if dataset in BUILTIN:
        return ids_to_colour(ids, load_palette(dataset), values="file")
    from reports.render import colorize

    return colorize(np.clip(ids, 0, 255).astype(np.uint8))


def find_label(label_dir: Path, sample_id: str) -> Path | None:
    """The label file of ``sample_id`` near ``label_dir`` (the folder of the split's first label map)."""
    for cand in (label_dir / f"{sample_id}.png", *sorted(label_dir.glob(f"{sample_id}_*labelIds.png")),
                 *sorted(label_dir.parent.glob(f"*/{sample_id}_gtFine_labelIds.png"))):
        if cand.is_file():
            return cand
    return None


def _images_dir(r: RunRecord) -> Path | None:
    for key in ("staged_images", "images"):  # an external record: the copy that was scored, not the user's folder
        p = r.extra.get(key)
        if p and Path(p).is_dir() and any(Path(p).glob("*.png")):
            return Path(p)
    return None


def available_ids(groups: Sequence[RowGroup]) -> list[str]:
    """Ids with a generated image in the first run of ``groups`` that has an image folder (sorted)."""
    for g in groups:
        d = _images_dir(g.records[0])
        if d is not None:
            return sorted(p.stem for p in d.glob("*.png"))
    return []


def check_grid_ids(ids: Sequence[str], per_dataset: dict[str, list[str]]) -> None:
    """Refuse ``--grid-ids`` that no dataset of the report has generated images for.

    Raises:
        ConfigError: an id is in no run's image folder (names it, with example ids).
    """
    known = {i for v in per_dataset.values() for i in v}
    missing = [i for i in ids if i not in known]
    if missing:
        examples = ", ".join(sorted(known)[:3]) or "none: no run has its images on disk"
        raise ConfigError(f"--grid-ids {','.join(missing)}: no run of the report has generated images with these "
                          f"ids (ids look like {examples})")


def sample_grid(dataset: str, groups: Sequence[RowGroup], out: OutputDir,
                grid_ids: Sequence[str] | None = None) -> dict[str, Any] | None:
    """Write the grid's PNGs under ``out/images/`` and describe the grid for the template.

    Args:
        dataset: the dataset key (used in file names and for the palette).
        groups: the dataset's rows; each shows the images of its first record (lowest seed).
        out: the report folder.
        grid_ids: the ids to show (those this dataset has); default the first :data:`GRID_IDS` ids.

    Returns:
        ``{"dataset", "header": ["label", "real", row labels...], "rows": [{"id", "cells": [path|None]}]}``,
        or ``None`` when no run has images on disk.
    """
    runs = [(g, d) for g in groups if (d := _images_dir(g.records[0])) is not None]
    if not runs:
        return None
    ref = runs[0][0].records[0]
    have = available_ids([g for g, _ in runs])
    ids = [i for i in grid_ids if i in have] if grid_ids else have[:GRID_IDS]
    if not ids:
        return None
    reals = Path(ref.extra.get("reals", "") or "/nonexistent")
    label_dir = Path(ref.extra.get("labels", "") or "/nonexistent")
    rows = []
    for i in ids:
        cells: list[str | None] = []
        lab = find_label(label_dir, i)
        size = None
        first = runs[0][1] / f"{i}.png"
        if first.is_file():
            with Image.open(first) as im:
                size = im.size
        if lab is not None:
            from bench.datasets.io import read_map

            rgb = colour_label(read_map(lab), ref.dataset)
            img = Image.fromarray(rgb)
            if size and img.size != size:
                img = img.resize(size, Image.NEAREST)
            dst = f"images/{dataset}-{i}-label.png"
            out.write_bytes(dst, _png(np.asarray(img)))
            cells.append(dst)
        else:
            cells.append(None)
        real = reals / f"{i}.png"
        if real.is_file():
            dst = f"images/{dataset}-{i}-real.png"
            out.copy_file(dst, real)
            cells.append(dst)
        else:
            cells.append(None)
        for g, d in runs:
            src = d / f"{i}.png"
            dst = f"images/{dataset}-{i}-{hashlib.sha256(g.label.encode()).hexdigest()[:8]}.png"
            if src.is_file():
                out.copy_file(dst, src)
                cells.append(dst)
            else:
                cells.append(None)
        rows.append({"id": i, "cells": cells})
    header = ["label", "real", *(g.label + (f" (seed {g.records[0].seed})" if len(g.records) > 1 else "")
                                 for g, _ in runs)]
    return {"dataset": dataset, "header": header, "rows": rows}


# --- SEAN style control ------------------------------------------------------------------------------
def style_source(g: RowGroup) -> RunRecord | None:
    """The record of a SEAN row whose checkpoint is still on disk (the style grid needs the network)."""
    for r in g.records:
        ckpt = (r.weights.get("generator") or {}).get("path") if isinstance(r.weights, dict) else None
        if r.kind == "run" and r.method == "sean" and ckpt and Path(ckpt).is_file():
            return r
    return None


def style_matrix(r: RunRecord, ids: Sequence[str], cache: Path, *, device: str | None = None) -> dict[str, Path]:
    """PNG paths of ``ids x ids``: label map ``t`` rendered with the per-region styles of photo ``s``
    (``bench generate --style-from s``; :func:`bench.style.style_transform`), keyed ``"t|s"``.

    The diagonal is each image with its own styles (SEAN's reconstruction). The images are generated
    once from the run's checkpoint and kept under ``cache`` (the run's work folder), keyed by the ids.

    Raises:
        BenchError: the checkpoint, the data or an id cannot be used (one line).
    """
    key = hashlib.sha256(("|".join(ids) + f"|{r.run_id}").encode()).hexdigest()[:12]
    folder = cache / f"style_grid-{key}"
    want = {f"{t}|{s}": folder / f"{t}__{s}.png" for t in ids for s in ids}
    if all(p.is_file() for p in want.values()):
        return want
    import torch

    from bench import api
    from bench import preflight as pf
    from bench.cache import atomic_write
    from bench.generate import to_uint8
    from bench.seeding import image_seed
    from bench.style import style_transform
    from bench.training.trainer import collate

    ckpt = r.weights["generator"]["path"]
    s, rc = api.setup_from_checkpoint(ckpt, r.method, r.dataset, data_root=r.extra.get("data_root"))
    model = s.build(device or api.default_device(), r.seed)
    api.load_weights(model, ckpt, data=rc.data)
    ds = s.open("val", spec=pf.data_spec(model, s.spec))
    all_ids = [smp.id for smp in ds.samples]
    missing = [i for i in ids if i not in all_ids]
    if missing:
        raise ConfigError(f"{', '.join(missing)}: not in the validation split of {r.dataset}")
    targets = [all_ids.index(i) for i in ids]
    model.train_mode(False)
    batch = collate([ds[t] for t in targets])
    for src in ids:
        transform = style_transform(model, ds, style_from=src)
        data = model.prepare(transform(dict(batch)))
        with torch.no_grad():
            images = to_uint8(model.generate(data, [image_seed(r.seed, t) for t in targets]))
        for t, img in zip(ids, images):
            png = _png(np.ascontiguousarray(img))
            atomic_write(want[f"{t}|{src}"], lambda f, png=png: f.write(png))
    return want


def style_grid(g: RowGroup, dataset: str, ids: Sequence[str], out: OutputDir, results: Path,
               *, labels: dict[str, str | None] | None = None, device: str | None = None) -> dict[str, Any] | None:
    """The style-control grid of one SEAN row for the template: rows are label maps, columns style photos.

    ``labels`` maps an id to its coloured label map in the report (written by :func:`sample_grid`).

    Returns ``{"title", "header": [style photo paths], "rows": [{"id", "label", "cells": [path]}], "error"}``
    (``error`` set, and no cells, when the checkpoint or data cannot be used), or ``None`` for a row that
    has no SEAN checkpoint on disk.
    """
    r = style_source(g)
    if r is None or not ids:
        return None
    title = f"{g.label}: style control (seed {r.seed})"
    try:
        paths = style_matrix(r, ids, results / "work" / r.run_id, device=device)
    except BenchError as e:
        log.warning("style grid of %s skipped: %s", g.label, e)
        return {"title": title, "header": [], "rows": [], "error": str(e).splitlines()[0]}
    tag = hashlib.sha256(g.label.encode()).hexdigest()[:8]
    reals = Path(r.extra.get("reals", "") or "/nonexistent")
    header = []
    for s in ids:
        real = reals / f"{s}.png"
        if real.is_file():
            header.append(f"images/{dataset}-{s}-real.png")
            out.copy_file(header[-1], real)
        else:
            header.append(None)
    rows = []
    for t in ids:
        cells = []
        for s in ids:
            dst = f"images/{dataset}-style-{tag}-{t}-{s}.png"
            out.copy_file(dst, paths[f"{t}|{s}"])
            cells.append(dst)
        rows.append({"id": t, "label": (labels or {}).get(t), "cells": cells})
    return {"title": title, "header": header, "style_ids": list(ids), "rows": rows, "error": None}


__all__ = ["GRID_IDS", "available_ids", "check_grid_ids", "colour_label", "find_label", "sample_grid",
           "style_grid", "style_matrix"]
