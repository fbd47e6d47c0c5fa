"""Colour-coded label images <-> single-channel id maps, with each dataset's published palette.

Papers and datasets ship label maps as colour images; sisbench reads single-channel PNGs of ids
(:func:`bench.datasets.io.read_map`). This module holds the palettes and converts both ways.

Palettes (ids are the **dataset ids** of each :class:`DatasetSpec`, the ids its loader returns):

==================  ======================================================================================
``cityscapes``      label ids 0..33 -> ``labels[i].color`` of ``cityscapesscripts.helpers.labels`` (the
                    ``*_gtFine_color.png`` colours); id 34 ("unused") has no colour, license plate (-1)
                    is no sisbench id, so its colour (= car's) decodes to car, as in ``*_labelIds.png``.
``cityscapes-train``  train ids 0..18 -> their colours (= mmseg's Cityscapes palette); 255 -> black; the
                    colours of the other label ids (trainId 255) decode to 255.
``ade20k``          ids 0..149 -> ``mmseg.datasets.ADE20KDataset.METAINFO['palette']`` (matched by class
                    name); "other" (ignore 255, file value 0) -> black, as in DeepLab's ADE20K colormap.
``coco``            the 171 classes of ``mmseg.datasets.COCOStuffDataset`` mapped by name onto the 182
                    COCO-Stuff ids; the 11 never-annotated thing ids have no colour; 255 has no colour.
``celebamask``      ids 0..18 -> ``color_list`` of CelebAMask-HQ's ``face_parsing/Data_preprocessing/g_color.py``.
``synthetic``       ids 0..7 -> the colours ``reports/render.py`` draws them with; 255 -> black.
FILE                a user palette (:func:`read_palette_file`).
==================  ======================================================================================

**Shared colours.** Some official palettes give one colour to several ids: Cityscapes black = ids
0..4 and (153, 153, 153) = pole (17) and polegroup (18); ADE20K (140, 140, 140) = road and skyscraper;
mmseg's COCO-Stuff palette has 8 shared colours (person/bicycle, car/fog, ...). A colour map cannot
tell those ids apart, so :func:`colour_to_ids` refuses such pixels unless ``ambiguous="lowest"``
(take the lowest id, stated in the summary). Round trips are exact for every id with its own colour.

**File values.** ADE20K's annotation PNGs store ``id + 1`` (0 = "other"); every other dataset stores
its ids. ``values="file"`` converts to / from what the dataset's label files hold.

mmseg's palettes are read from the installed package's source with ``ast.literal_eval`` (no
retyping); importing ``mmseg.datasets`` would import ``mmcv.ops``, which mmcv-lite lacks.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import io
import json
import sys
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image

from bench.datasets.io import IMAGE_EXTENSIONS, read_map
from bench.errors import ConfigError, DataError

RGB = tuple[int, int, int]
Ambiguous = Literal["error", "lowest"]
Values = Literal["dataset", "file"]

BUILTIN: tuple[str, ...] = ("ade20k", "celebamask", "cityscapes", "cityscapes-train", "coco", "synthetic")
IDS_KIND = "label id maps"  # the kinds of bench.outputs manifests this module writes
COLOUR_KIND = "colour label maps"
MAX_ID = 65535  # 16-bit PNG

# CelebAMask-HQ face_parsing/Data_preprocessing/g_color.py, `color_list` (switchablenorms/CelebAMask-HQ),
# index = class id of g_mask.py's label_list order (0 background, 1 skin, ..., 18 cloth).
_CELEBAMASK_COLOURS: tuple[RGB, ...] = (
    (0, 0, 0), (204, 0, 0), (76, 153, 0), (204, 204, 0), (51, 51, 255), (204, 0, 204), (0, 255, 255),
    (255, 204, 204), (102, 51, 0), (255, 0, 0), (102, 204, 0), (255, 255, 0), (0, 0, 153), (0, 0, 204),
    (255, 51, 153), (0, 204, 204), (0, 51, 0), (255, 153, 51), (0, 204, 0),
)  # fmt: skip
# reports/render.py PALETTE[:8] (ids 0..7 of the synthetic dataset; its colorize draws 255 black).
_SYNTHETIC_COLOURS: tuple[RGB, ...] = (
    (70, 130, 180), (120, 100, 80), (30, 90, 200), (90, 180, 60), (128, 64, 128), (200, 120, 60),
    (30, 110, 40), (220, 20, 60),
)  # fmt: skip
BLACK: RGB = (0, 0, 0)
# What PIL and zlib raise on truncated or corrupt files (as bench.datasets.io reads label maps).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)


def hex_colour(c: Iterable[int]) -> str:
    r, g, b = (int(v) for v in c)
    return f"#{r:02x}{g:02x}{b:02x}"


def _pack(rgb: np.ndarray) -> np.ndarray:
    """uint8 ``[..., 3]`` -> uint32 ``r << 16 | g << 8 | b``."""
    rgb = rgb.astype(np.uint32)
    key: np.ndarray = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    return key


def _unpack(key: int) -> RGB:
    return (key >> 16) & 255, (key >> 8) & 255, key & 255


@dataclass(frozen=True, eq=False)
class Palette:
    """Colours of a label id space.

    Attributes:
        name: ``"cityscapes"``, ..., or ``"file:<path>"``.
        ids: The ids that have a colour, ascending (0..65535).
        colours: uint8 ``[len(ids), 3]`` RGB, row ``k`` for ``ids[k]``; used both ways.
        names: Class name per id of ``ids``.
        ignore_index: The dataset's ignore id (None when it has none).
        ignore_colour: Colour of ``ignore_index`` in colour maps, if the palette defines one.
        aliases: Extra ``(colour, id)`` pairs that decode to ``id`` (never used to encode).
        file_offset: ADE20K only: label files store ``id + 1`` and 0 for ``ignore_index``.
        source: Where the colours come from.
    """

    name: str
    ids: tuple[int, ...]
    colours: np.ndarray
    names: tuple[str, ...]
    ignore_index: int | None = None
    ignore_colour: RGB | None = None
    aliases: tuple[tuple[RGB, int], ...] = ()
    file_offset: bool = False
    source: str = ""
    _cache: dict[str, object] = field(default_factory=dict, repr=False)

    def name_of(self, i: int) -> str:
        if i in self.ids:
            return self.names[self.ids.index(i)]
        return "ignore" if i == self.ignore_index else f"id {i}"

    def colour_of(self, i: int) -> RGB | None:
        if i in self.ids:
            return tuple(int(v) for v in self.colours[self.ids.index(i)])  # type: ignore[return-value]
        return self.ignore_colour if i == self.ignore_index else None

    @property
    def decoder(self) -> tuple[np.ndarray, np.ndarray, dict[int, tuple[int, ...]]]:
        """Sorted packed colours, the id each decodes to (lowest when shared), and the shared ones."""
        if "decoder" not in self._cache:
            by_key: dict[int, set[int]] = {}
            pairs = [(tuple(c), i) for c, i in zip(self.colours.tolist(), self.ids)] + list(self.aliases)
            if self.ignore_colour is not None and self.ignore_index is not None:
                pairs.append((self.ignore_colour, self.ignore_index))
            for c, i in pairs:
                by_key.setdefault(int(_pack(np.array(c, dtype=np.uint8))), set()).add(i)
            keys = np.array(sorted(by_key), dtype=np.uint32)
            ids = np.array([min(by_key[int(k)]) for k in keys], dtype=np.int64)
            shared = {k: tuple(sorted(v)) for k, v in by_key.items() if len(v) > 1}
            self._cache["decoder"] = (keys, ids, shared)
        return self._cache["decoder"]  # type: ignore[return-value]

    @property
    def lookup(self) -> np.ndarray:
        """``[2**24]``: packed colour -> row of :attr:`decoder`'s arrays, or :attr:`missing` (32 MB as uint16)."""
        if "lookup" not in self._cache:
            n = len(self.decoder[0])
            lut = np.full(1 << 24, self.missing, np.uint16 if n < 0xFFFF else np.uint32)
            lut[self.decoder[0]] = np.arange(n)
            self._cache["lookup"] = lut
        return self._cache["lookup"]  # type: ignore[return-value]

    @property
    def missing(self) -> int:
        """The :attr:`lookup` value of colours not in the palette."""
        return 0xFFFF if len(self.decoder[0]) < 0xFFFF else 0xFFFFFFFF

    @property
    def shared_colours(self) -> dict[RGB, tuple[int, ...]]:
        """Colours given to more than one id: ``{colour: ids}`` (these ids cannot be told apart)."""
        return {_unpack(k): v for k, v in self.decoder[2].items()}

    def max_value(self, values: Values = "dataset") -> int:
        """The largest value a converted map can hold (decides 8- or 16-bit PNGs)."""
        top = max([*self.ids, *([self.ignore_index] if self.ignore_index is not None else [])])
        return len(self.ids) if values == "file" and self.file_offset else top

    def to_file(self, ids: np.ndarray) -> np.ndarray:
        """Dataset ids -> the values the dataset's label files store (ADE20K: ``id + 1``, ignore -> 0)."""
        if not self.file_offset:
            return ids
        out = ids.astype(np.int64) + 1
        out[ids == self.ignore_index] = 0
        return out

    def from_file(self, values: np.ndarray, path: Path | str = "<array>") -> np.ndarray:
        """Label-file values -> dataset ids (the inverse of :meth:`to_file`); refuses values of no class."""
        if not self.file_offset:
            return values
        v = values.astype(np.int64)
        bad = np.unique(v[(v < 0) | (v > len(self.ids))])
        if bad.size:
            raise DataError(f"{path}: values {', '.join(map(str, bad[:8].tolist()))} are not {self.name} label-file "
                            f"values (0 = other, 1..{len(self.ids)}); pass --ids dataset if the map holds dataset ids")
        out = v - 1
        out[v == 0] = self.ignore_index if self.ignore_index is not None else 0
        return out


def _make(name: str, pairs: list[tuple[int, RGB, str]], source: str, **kw: object) -> Palette:
    pairs = sorted(pairs)
    return Palette(name=name, ids=tuple(p[0] for p in pairs), colours=np.array([p[1] for p in pairs], np.uint8).reshape(-1, 3),
                   names=tuple(p[2] for p in pairs), source=source, **kw)  # type: ignore[arg-type]


def _mmseg_metainfo(module: str, cls: str) -> dict[str, list]:
    """``METAINFO`` of an mmseg dataset class, read from the installed source (see the module docstring).

    Raises:
        ConfigError: mmsegmentation is not installed, or the class no longer has a literal METAINFO.
    """
    spec = importlib.util.find_spec("mmseg")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("the ade20k and coco palettes are read from mmsegmentation; install it "
                          "(`pip install 'mmsegmentation>=1.2,<1.3'`)")
    path = Path(next(iter(spec.submodule_search_locations))) / "datasets" / f"{module}.py"
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == cls:
                for stmt in node.body:
                    if (isinstance(stmt, ast.Assign) and getattr(stmt.targets[0], "id", None) == "METAINFO"
                            and isinstance(stmt.value, ast.Call)):  # METAINFO = dict(classes=(...), palette=[...])
                        return {k.arg: list(ast.literal_eval(k.value)) for k in stmt.value.keywords if k.arg}
    except (OSError, SyntaxError, ValueError) as e:
        raise ConfigError(f"{path}: cannot read {cls}.METAINFO ({e}); reinstall mmsegmentation 1.2") from None
    raise ConfigError(f"{path}: no literal {cls}.METAINFO; the palette needs mmsegmentation 1.2")


def _from_mmseg(name: str, module: str, cls: str, dataset: str) -> Palette:
    """mmseg's palette of ``cls``, each colour given to the sisbench id of the same class name."""
    from bench.datasets import DATASETS

    spec = DATASETS.get(dataset)
    meta = _mmseg_metainfo(module, cls)
    index = {n: i for i, n in enumerate(spec.class_names)}
    pairs = []
    for cname, colour in zip(meta["classes"], meta["palette"], strict=True):
        if cname.strip() not in index:  # mmseg writes 'bed ' with a trailing space
            raise ConfigError(f"mmseg {cls} class {cname!r} is no class of sisbench's {dataset}; "
                              "the palette needs mmsegmentation 1.2")
        pairs.append((index[cname.strip()], tuple(colour), cname.strip()))
    extra: dict[str, object] = {}
    if dataset == "ade20k":  # "other": black, as in DeepLab's create_ade20k_label_colormap; no class uses it
        extra = {"ignore_colour": BLACK, "file_offset": True}
    return _make(name, pairs, f"mmseg.datasets.{cls}.METAINFO['palette'] (mmsegmentation {_mmseg_version()})",
                 ignore_index=spec.ignore_index, **extra)


def _mmseg_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mmsegmentation")
    except PackageNotFoundError:  # pragma: no cover
        return "?"


def _cityscapes(train: bool) -> Palette:
    try:
        from cityscapesscripts.helpers.labels import labels
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError("the cityscapes palettes need `pip install 'cityscapesscripts>=2.2,<2.4'`") from e
    source = "cityscapesscripts.helpers.labels"
    if not train:
        pairs = [(lab.id, tuple(lab.color), lab.name) for lab in labels if lab.id >= 0]
        return _make("cityscapes", pairs, source, ignore_index=255)
    pairs = [(lab.trainId, tuple(lab.color), lab.name) for lab in labels if 0 <= lab.trainId < 255]
    aliases = tuple((tuple(lab.color), 255) for lab in labels if lab.id >= 0 and lab.trainId == 255)
    return _make("cityscapes-train", pairs, source + " (trainId)", ignore_index=255, ignore_colour=BLACK,
                 aliases=aliases)  # type: ignore[arg-type]


def _fixed(name: str, dataset: str, colours: tuple[RGB, ...], source: str, ignore_colour: RGB | None) -> Palette:
    from bench.datasets import DATASETS

    spec = DATASETS.get(dataset)
    pairs = [(i, c, spec.class_names[i]) for i, c in enumerate(colours)]
    return _make(name, pairs, source, ignore_index=spec.ignore_index, ignore_colour=ignore_colour)


@functools.cache
def builtin_palette(name: str) -> Palette:
    """One of :data:`BUILTIN` (see the module docstring for each one's source and ids).

    Cached for the process, with its 32 MB decoding table once :func:`colour_to_ids` has used it.

    Raises:
        ConfigError: Unknown name, or the library a palette is read from is missing.
    """
    if name == "cityscapes":
        return _cityscapes(train=False)
    if name == "cityscapes-train":
        return _cityscapes(train=True)
    if name == "ade20k":
        return _from_mmseg(name, "ade", "ADE20KDataset", "ade20k")
    if name == "coco":
        return _from_mmseg(name, "coco_stuff", "COCOStuffDataset", "coco")
    if name == "celebamask":
        return _fixed(name, "celebamask", _CELEBAMASK_COLOURS,
                      "CelebAMask-HQ face_parsing/Data_preprocessing/g_color.py color_list", None)
    if name == "synthetic":
        return _fixed(name, "synthetic", _SYNTHETIC_COLOURS, "reports/render.py PALETTE", BLACK)
    raise ConfigError(f"unknown palette {name!r}; built-in: {', '.join(BUILTIN)}, or a palette file")


def read_palette_file(path: Path | str) -> Palette:
    """Read a user palette.

    Formats: JSON ``{"0": [r, g, b], "1": [r, g, b], ...}`` (keys are ids) or ``[[r, g, b], ...]``
    (the index is the id); any other file is text with one ``id r g b [name]`` per line (``#``
    starts a comment). Ids are 0..65535, components 0..255; ids and colours must be unique.

    Raises:
        DataError: Unreadable file, bad syntax, a bad value, a duplicate id or colour (one line, with
            the file and, for text files, the line number).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read palette file ({e.__class__.__name__}: {e})") from None
    entries: list[tuple[int, list[object], str, str]] = []  # id, colour, name, where
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}:{e.lineno}: invalid JSON ({e.msg}); expected {{\"id\": [r, g, b], ...}}") from None
        items = list(enumerate(data)) if isinstance(data, list) else list(data.items()) if isinstance(data, dict) else None
        if items is None:
            raise DataError(f"{path}: expected a JSON object {{\"id\": [r, g, b]}} or a list of [r, g, b]")
        for k, v in items:
            try:
                i = int(k)
            except ValueError:
                raise DataError(f"{path}: key {k!r} is not an integer id; expected {{\"id\": [r, g, b]}}") from None
            entries.append((i, v if isinstance(v, list) else [v], f"id {i}", f"{path}: id {k}"))
    else:
        for n, line in enumerate(text.splitlines(), 1):
            fields = line.split("#", 1)[0].split()
            if not fields:
                continue
            where = f"{path}:{n}"
            if len(fields) < 4:
                raise DataError(f"{where}: expected 'id r g b [name]', got {line.strip()!r}")
            try:
                i = int(fields[0])
                colour: list[object] = [int(f) for f in fields[1:4]]
            except ValueError:
                raise DataError(f"{where}: expected integers 'id r g b [name]', got {line.strip()!r}") from None
            entries.append((i, colour, " ".join(fields[4:]) or f"id {i}", where))
    if not entries:
        raise DataError(f"{path}: the palette is empty; expected 'id r g b' lines or JSON {{\"id\": [r, g, b]}}")
    seen_ids: dict[int, str] = {}
    seen_colours: dict[RGB, int] = {}
    pairs: list[tuple[int, RGB, str]] = []
    for i, colour, name, where in entries:
        if not 0 <= i <= MAX_ID:
            raise DataError(f"{where}: id {i} is outside 0..{MAX_ID}")
        if len(colour) != 3 or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in colour):
            raise DataError(f"{where}: colour {colour} is not three integers 0..255")
        c: RGB = tuple(colour)  # type: ignore[assignment]
        if i in seen_ids:
            raise DataError(f"{where}: id {i} is listed twice (first at {seen_ids[i]}); give each id one colour")
        if c in seen_colours:
            raise DataError(f"{where}: colour {list(c)} is already id {seen_colours[c]}; colours must be unique "
                            "to be converted back to ids")
        seen_ids[i], seen_colours[c] = where, i
        pairs.append((i, c, name))
    return _make(f"file:{path}", pairs, str(path))


def load_palette(name_or_path: str | Path) -> Palette:
    """A built-in palette by name, else a palette file (:func:`read_palette_file`).

    Raises:
        ConfigError: Neither a built-in name nor an existing file.
        DataError: The file is malformed.
    """
    s = str(name_or_path)
    if s in BUILTIN:
        return builtin_palette(s)
    if not Path(s).is_file():
        raise ConfigError(f"--palette {s!r} is neither a built-in palette ({', '.join(BUILTIN)}) nor a file")
    return read_palette_file(s)


# --- array conversions ------------------------------------------------------------------------------
def _counts_text(keys: np.ndarray, counts: np.ndarray, top: int = 3) -> str:
    order = np.argsort(-counts, kind="stable")[:top]
    return ", ".join(f"{hex_colour(_unpack(int(keys[k])))} {int(counts[k]):,} px" for k in order)


def colour_to_ids(
    rgb: np.ndarray,
    palette: Palette,
    *,
    path: Path | str = "<array>",
    ignore_unknown: int | None = None,
    ambiguous: Ambiguous = "error",
    values: Values = "dataset",
    stats: dict[str, int] | None = None,
) -> np.ndarray:
    """Decode a colour-coded label map by exact colour match.

    Args:
        rgb: uint8 ``[H, W, 3]`` RGB.
        palette: See :func:`load_palette`.
        path: Named in error messages.
        ignore_unknown: Write this dataset id for colours not in the palette instead of refusing them.
        ambiguous: ``"error"`` refuses pixels whose colour several ids share; ``"lowest"`` writes the lowest.
        values: ``"dataset"`` ids, or ``"file"`` values as the dataset's label files store them.
        stats: If given, receives ``unknown_pixels``, ``unknown_colours`` and ``ambiguous_pixels``.

    Returns:
        ``[H, W]`` uint8 when every possible value is < 256, else uint16.

    Raises:
        DataError: Colours not in the palette (pixel and colour counts, the 3 most frequent as hex),
            or shared colours with ``ambiguous="error"``; one line naming ``path``.
    """
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise DataError(f"{path}: expected a uint8 [H, W, 3] colour map, got {rgb.dtype} {list(rgb.shape)}")
    if ignore_unknown is not None:
        check_ignore_unknown(palette, ignore_unknown, values)
    keys, ids, shared = palette.decoder
    flat = _pack(rgb).ravel()
    pos = palette.lookup[flat]  # a dense 2**24 table: 10x faster than searchsorted on 2-megapixel maps
    found = pos != palette.missing
    pos = np.where(found, pos, 0)
    out = ids[pos]  # row 0 for unknown colours: those pixels are refused or overwritten below
    st = {"unknown_pixels": 0, "unknown_colours": 0, "ambiguous_pixels": 0}
    if not found.all():
        ukeys, ucounts = np.unique(flat[~found], return_counts=True)
        st.update(unknown_pixels=int(ucounts.sum()), unknown_colours=len(ukeys))
        if ignore_unknown is None:
            n = int(ucounts.sum())
            raise DataError(
                f"{path}: {n:,} pixels ({100 * n / flat.size:.1f}%) in {len(ukeys)} colours are not in the "
                f"{palette.name} palette (most frequent: {_counts_text(ukeys, ucounts)}); label colours must be "
                "exact (lossless PNG, never JPEG or interpolated resizing): re-export the map, choose the "
                "matching --palette, or pass --ignore-unknown ID to write ID there"
            )
        out[~found] = ignore_unknown
    if shared:
        is_shared = np.isin(keys, np.array(sorted(shared), dtype=np.uint32))
        hit = found & is_shared[pos]
        st["ambiguous_pixels"] = int(hit.sum())
        if hit.any() and ambiguous == "error":
            akeys, acounts = np.unique(flat[hit], return_counts=True)
            k = int(akeys[np.argmax(acounts)])
            cands = ", ".join(f"{i} ({palette.name_of(i)})" for i in shared[k])
            more = f" (and {len(akeys) - 1} more shared colours)" if len(akeys) > 1 else ""
            raise DataError(
                f"{path}: {int(acounts.max()):,} pixels have colour {hex_colour(_unpack(k))}, which the "
                f"{palette.name} palette gives to ids {cands}{more}; a colour map cannot tell them apart: "
                f"convert the dataset's id files instead, or pass --ambiguous lowest to write id {shared[k][0]}"
            )
    if stats is not None:
        stats.update(st)
    out = out.reshape(rgb.shape[:2])
    if values == "file":
        out = palette.to_file(out)
    top = max(palette.max_value(values), ignore_unknown if ignore_unknown is not None else 0)
    return out.astype(np.uint8 if top < 256 else np.uint16)


def check_ignore_unknown(palette: Palette, value: int, values: Values = "dataset") -> None:
    """Refuse an ``--ignore-unknown`` id outside 0..65535, or one with no label-file value (ADE20K).

    Raises:
        ConfigError: Names the valid choices.
    """
    if not 0 <= value <= MAX_ID:
        raise ConfigError(f"--ignore-unknown {value} is outside 0..{MAX_ID}")
    if values == "file" and palette.file_offset and value != palette.ignore_index and value not in palette.ids:
        raise ConfigError(f"--ignore-unknown {value} has no {palette.name} label-file value; give a dataset id "
                          f"(0..{len(palette.ids) - 1}, or {palette.ignore_index} = other, written as 0)")


def ids_to_colour(
    ids: np.ndarray,
    palette: Palette,
    *,
    fill: RGB = BLACK,
    strict: bool = False,
    values: Values = "dataset",
    path: Path | str = "<array>",
) -> np.ndarray:
    """Encode an id map with ``palette`` (the inverse of :func:`colour_to_ids`).

    Args:
        ids: Integer ``[H, W]`` dataset ids (or label-file values with ``values="file"``).
        palette: See :func:`load_palette`.
        fill: Colour of ids without one (and of ``ignore_index`` when the palette gives it none).
        strict: Refuse ids without a colour (``ignore_index`` included when the palette gives it none)
            instead of drawing them with ``fill``.
        values: ``"dataset"`` or ``"file"``, as in :func:`colour_to_ids`.
        path: Named in error messages.

    Returns:
        uint8 ``[H, W, 3]`` RGB.

    Raises:
        DataError: With ``strict``, ids that have no colour (which, and how many pixels).
    """
    if ids.ndim != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise DataError(f"{path}: expected an integer [H, W] id map, got {ids.dtype} {list(ids.shape)}")
    if values == "file":
        ids = palette.from_file(ids, path)
    ids = ids.astype(np.int64)
    size = MAX_ID + 1
    lut = np.empty((size, 3), np.uint8)
    lut[:] = fill
    known = np.zeros(size, bool)
    lut[list(palette.ids)] = palette.colours
    known[list(palette.ids)] = True
    if palette.ignore_index is not None and palette.ignore_colour is not None:
        lut[palette.ignore_index] = palette.ignore_colour
        known[palette.ignore_index] = True
    inside = (ids >= 0) & (ids < size)
    idx = np.where(inside, ids, 0)
    if strict:
        bad_mask = ~inside | ~known[idx]
        if bad_mask.any():
            bad, counts = np.unique(ids[bad_mask], return_counts=True)
            shown = ", ".join(str(b) for b in bad[:8].tolist()) + (", ..." if len(bad) > 8 else "")
            hint = ("pass --ignore-colour R,G,B (a colour the palette does not use)"
                    if palette.ignore_index in bad.tolist() else "fix the map or choose the palette that matches it")
            raise DataError(f"{path}: ids {shown} ({int(counts.sum()):,} pixels) have no colour in the "
                            f"{palette.name} palette; {hint}")
    out = lut[idx]
    out[~inside] = fill
    return out


def colorize(ids: np.ndarray, palette: Palette | str) -> np.ndarray:
    """Render dataset ids for a report: uint8 ``[H, W, 3]``; ids without a colour are black."""
    return ids_to_colour(ids, palette if isinstance(palette, Palette) else load_palette(palette))


def parse_rgb(text: str) -> RGB:
    """``"R,G,B"`` (or ``#rrggbb``) -> an RGB triple.

    Raises:
        ConfigError: Not three integers 0..255.
    """
    t = text.strip()
    try:
        parts = [int(t[i:i + 2], 16) for i in (1, 3, 5)] if t.startswith("#") and len(t) == 7 else [int(v) for v in t.split(",")]
    except ValueError:
        parts = []
    if len(parts) != 3 or not all(0 <= v <= 255 for v in parts):
        raise ConfigError(f"colour {text!r} is not R,G,B with integers 0..255 (or #rrggbb)")
    return parts[0], parts[1], parts[2]


def with_ignore_colour(palette: Palette, colour: RGB) -> Palette:
    """``palette`` with ``colour`` for its ignore index (for palettes that have none, e.g. ``coco``).

    Raises:
        ConfigError: The palette has no ignore index, or ``colour`` is already a class colour.
    """
    if palette.ignore_index is None:
        raise ConfigError(f"the {palette.name} palette has no ignore index, so --ignore-colour does not apply")
    for c, i in zip(palette.colours.tolist(), palette.ids):
        if tuple(c) == tuple(colour):
            raise ConfigError(f"--ignore-colour {list(colour)} is already the colour of {i} "
                              f"({palette.name_of(i)}) in the {palette.name} palette; choose an unused colour")
    return Palette(name=palette.name, ids=palette.ids, colours=palette.colours, names=palette.names,
                   ignore_index=palette.ignore_index, ignore_colour=tuple(colour), aliases=palette.aliases,  # type: ignore[arg-type]
                   file_offset=palette.file_offset, source=palette.source)


# --- files ------------------------------------------------------------------------------------------
def read_colour_map(path: Path) -> np.ndarray:
    """Read a colour-coded label image as uint8 ``[H, W, 3]`` (RGB, opaque RGBA, or palette-mode PNG).

    A palette-mode PNG is read by its colours (``labels-from-colour`` was asked for); to use its
    indices as ids, give it to sisbench directly (:func:`bench.datasets.io.read_map` does that).

    Raises:
        DataError: Missing, corrupt, translucent, CMYK/other modes, or already single-channel.
    """
    try:
        with Image.open(path) as im:
            im.load()
    except FileNotFoundError:
        raise DataError(f"{path}: colour map not found") from None
    except _DECODE_ERRORS as e:
        raise DataError(f"{path}: cannot read colour map ({e}); the file is truncated or corrupt") from None
    if im.mode in ("L", "LA", "I", "I;16", "I;16B", "I;16L", "I;16N", "1"):
        raise DataError(f"{path}: mode {im.mode} is already a single-channel map, not a colour map; "
                        "use it as an id map directly")
    if im.mode not in ("RGB", "RGBA", "P", "PA"):
        raise DataError(f"{path}: mode {im.mode} is no RGB colour map (its colours would change on conversion); "
                        "re-export it as an RGB PNG")
    if im.mode != "RGB":
        rgba = im.convert("RGBA")
        alpha = np.asarray(rgba.getchannel("A"))
        if (alpha != 255).any():
            raise DataError(f"{path}: {int((alpha != 255).sum()):,} translucent pixels; colour maps must be opaque")
        im = rgba
    return np.asarray(im.convert("RGB"))


@dataclass
class ConversionSummary:
    """What :func:`convert_labels` did."""

    written: list[Path] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)  # one line per file
    unknown_pixels: int = 0
    unknown_files: int = 0
    ambiguous_pixels: int = 0
    bits: int = 8

    def describe(self, palette: Palette, ignore_unknown: int | None) -> str:
        parts = [f"wrote {len(self.written)} {self.bits}-bit maps with the {palette.name} palette"]
        if self.unknown_pixels:
            parts.append(f"{self.unknown_pixels:,} pixels of unknown colours in {self.unknown_files} files -> id {ignore_unknown}")
        if self.ambiguous_pixels:
            parts.append(f"{self.ambiguous_pixels:,} pixels of shared colours -> the lowest id")
        return "; ".join(parts)


def _sources(src: Path, extensions: tuple[str, ...]) -> list[tuple[Path, Path]]:
    """``(file, output path relative to DST)`` for a file or every matching file under a folder."""
    if src.is_file():
        return [(src, Path(src.stem + ".png"))]
    if not src.is_dir():
        raise DataError(f"{src}: no such file or folder")
    files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in extensions and not p.name.startswith("."))
    if not files:
        raise DataError(f"{src}: no {'/'.join(e.lstrip('.') for e in extensions)} files (searched recursively)")
    out: dict[Path, Path] = {}
    for p in files:
        rel = p.relative_to(src).with_suffix(".png")
        if rel in out:
            raise DataError(f"{p}: would write the same {rel} as {out[rel]}; rename one of them")
        out[rel] = p
    return [(p, rel) for rel, p in out.items()]


def _png_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def convert_labels(
    src: Path,
    dst: Path,
    palette: Palette,
    *,
    to_colour: bool = False,
    ignore_unknown: int | None = None,
    ambiguous: Ambiguous = "error",
    values: Values = "file",
    overwrite: bool = False,
    on_error: Callable[[str], None] | None = None,
    progress: bool = True,
) -> ConversionSummary:
    """Convert a file or a folder (recursively, keeping sub-folders) between colour maps and id PNGs.

    Colour maps -> ids (``to_colour=False``): ``*.png|*.jpg|*.jpeg`` -> ``DST/<rel>.png``, 8-bit when
    every value the palette can produce is < 256, else 16-bit. Ids -> colour maps: ``*.png`` -> RGB PNGs.
    ``DST`` follows :func:`bench.outputs.prepare_output_dir`: files are written atomically and listed
    in ``DST/.sisbench-manifest.json``, so a re-run replaces its own files (and removes its stale ones);
    a non-empty ``DST`` sisbench did not write is refused unless ``overwrite``, and files sisbench did
    not write are never deleted.

    Args:
        values: ``"file"`` (default): id PNGs hold what the dataset's label files hold (ADE20K: id + 1).
        on_error: Called with one line per file that failed; the other files are still converted.
        Others: as in :func:`colour_to_ids` / :func:`ids_to_colour`.

    Returns:
        The files written, one line per failed file, pixel counts of unknown / shared colours.

    Raises:
        DataError: No input files, or two inputs that would write the same output.
        ConfigError: ``DST`` is inside ``SRC``, or (``OutputDirError``) holds files sisbench did not write.
    """
    from tqdm import tqdm

    from bench.outputs import prepare_output_dir

    exts = (".png",) if to_colour else IMAGE_EXTENSIONS
    jobs = _sources(src, exts)
    if src.is_dir() and dst.resolve().is_relative_to(src.resolve()):
        raise ConfigError(f"{dst}: is inside SRC {src}; choose an output folder outside it")
    out_dir = prepare_output_dir(dst, overwrite=overwrite, kind=COLOUR_KIND if to_colour else IDS_KIND)
    out_dir.claim([rel.as_posix() for _, rel in jobs])  # a name taken by a user's file fails now, before any work
    top = max(palette.max_value(values), ignore_unknown or 0)
    summary = ConversionSummary(bits=8 if to_colour or top < 256 else 16)
    command = "labels-to-colour" if to_colour else "labels-from-colour"
    for path, rel in tqdm(jobs, desc=command, unit="map", file=sys.stderr, disable=not progress or len(jobs) < 2,
                          leave=False):
        try:
            if to_colour:
                out = ids_to_colour(read_map(path), palette, strict=True, values=values, path=path)
            else:
                st: dict[str, int] = {}
                out = colour_to_ids(read_colour_map(path), palette, path=path, ignore_unknown=ignore_unknown,
                                    ambiguous=ambiguous, values=values, stats=st)
                summary.unknown_pixels += st["unknown_pixels"]
                summary.unknown_files += st["unknown_pixels"] > 0
                summary.ambiguous_pixels += st["ambiguous_pixels"]
            summary.written.append(out_dir.write_bytes(rel.as_posix(), _png_bytes(out)))
        except DataError as e:
            summary.failed.append(str(e).splitlines()[0])
            if on_error is not None:
                with tqdm.external_write_mode(file=sys.stderr):  # the line goes above the progress bar
                    on_error(summary.failed[-1])
    out_dir.finish()
    return summary
