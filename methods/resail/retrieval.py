"""RESAIL's segment retrieval (Shi et al., CVPR 2022, Sec. 3.1): a database of training segments, exact
shape/size scoring with matrix products, and guidance images for any label map.

Scoring follows ``data/data_base.py`` of Shi-Yupeng/RESAIL-For-SIS: for a query segment ``q`` and a
database segment ``d`` of the same class, with binary masks cropped to their boxes and nearest-resized
to 128x128,

    score(q, d) = sum((m_q - m_d)^2) / max(|m_q|, |m_d|) + [box areas differ by a factor >= 2]

and the ``k`` lowest scores are the matches. The official code loops over queries and builds the
squared differences elementwise; for binary masks ``sum((m_q - m_d)^2) = |m_q| + |m_d| - 2 m_q.m_d``,
so one matrix product scores every pair of a class. All terms are integers below 2^24, hence exact in
float32, and the two formulations give bit-identical scores (``reference_scores`` keeps the direct one
for tests and the speed benchmark). Ties are broken by the lower database index, in both.

Unlike the official code, whose retrieval is a table precomputed for the dataset's own segments,
:func:`retrieve` extracts the query segments of *any* label map on the fly, so edited or new label
maps get guidance too.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage
from tqdm import tqdm

from bench.cache import atomic_write, cache_dir, code_fingerprint
from bench.errors import DataError

MASK_SIZE = 128  # official: masks are compared at 128x128
DB_VERSION = 1
_EIGHT = np.ones((3, 3), dtype=bool)  # 8-connectivity, as cv2.connectedComponentsWithStats(connectivity=8)

Box = tuple[int, int, int, int]  # (y0, x0, y1, x1), end-exclusive


# --------------------------------------------------------------------------------------------------
# Segments


@dataclass(frozen=True, eq=False)
class Segment:
    """One segment of a label map: its class, box and the binary mask inside the box."""

    cls: int
    box: Box
    mask: np.ndarray  # bool [y1 - y0, x1 - x0]
    is_thing: bool

    @property
    def area(self) -> int:
        return int(self.mask.sum())

    @property
    def box_area(self) -> int:
        y0, x0, y1, x1 = self.box
        return (y1 - y0) * (x1 - x0)

    def mask_in(self, box: Box) -> np.ndarray:
        """This segment's mask in the coordinates of another ``box`` (False outside its own box)."""
        y0, x0, y1, x1 = box
        out = np.zeros((y1 - y0, x1 - x0), dtype=bool)
        sy0, sx0, sy1, sx1 = self.box
        iy0, ix0, iy1, ix1 = max(y0, sy0), max(x0, sx0), min(y1, sy1), min(x1, sx1)
        if iy0 < iy1 and ix0 < ix1:
            out[iy0 - y0 : iy1 - y0, ix0 - x0 : ix1 - x0] = self.mask[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0]
        return out


def _keep_largest(segments: list[Segment], ratio: float) -> list[Segment]:
    """Official ``sort_segments_by_area``: per class, the largest segments until ``ratio`` of its area.

    A segment is kept while the area kept *before* it is below ``ratio`` x the class area, so the segment
    that crosses the threshold is kept too.
    """
    if ratio >= 1.0:
        return segments
    by_class: dict[int, list[Segment]] = {}
    for s in segments:
        by_class.setdefault(s.cls, []).append(s)
    kept = []
    for cls in sorted(by_class):
        segs = sorted(by_class[cls], key=lambda s: -s.area)  # stable: equal areas keep raster order
        total = sum(s.area for s in segs)
        acc = 0
        for s in segs:
            if acc < ratio * total:
                kept.append(s)
            acc += s.area
    return kept


def extract_segments(
    label: np.ndarray,
    instance: np.ndarray | None = None,
    *,
    thing_classes: Sequence[int] = (),
    ignore_index: int | None = 255,
    preserved_ratio: float = 0.9,
) -> list[Segment]:
    """Segments of one label map, as the official ``parse_segments``.

    Thing classes are split by instance id when an instance map is given (pixels with instance id 0
    fall back to connected components); every other class is split into 8-connected components.

    Args:
        label: ``[H, W]`` class ids.
        instance: ``[H, W]`` instance ids, or None.
        thing_classes: Countable classes (separated by instance id).
        ignore_index: Unlabeled id, never a segment.
        preserved_ratio: Keep per class only the largest segments covering this share of its area
            (official: 0.9); 1.0 keeps all.

    Returns:
        Segments ordered by class id, then by decreasing area.
    """
    label = np.asarray(label)
    things = set(int(c) for c in thing_classes)
    # one map of segment ids for the whole image, so a single find_objects call gives every box
    seg_map = np.zeros(label.shape, np.int32)
    info: list[tuple[int, bool]] = []  # (class, is_thing) of segment id i + 1
    for c in np.unique(label):
        c = int(c)
        if ignore_index is not None and c == ignore_index:
            continue
        m = label == c
        is_thing = c in things
        parts = m
        if is_thing and instance is not None:
            inst = np.asarray(instance)[m]
            ids, inverse = np.unique(inst, return_inverse=True)
            ranks = np.cumsum(ids > 0)  # 1.. for positive ids, 0 for id 0 (instance-free thing pixels)
            seg_map[m] = np.where(ids[inverse] > 0, ranks[inverse] + len(info), 0)
            info += [(c, True)] * int((ids > 0).sum())
            parts = m & (seg_map == 0)
            if not parts.any():
                continue
        comp, n = ndimage.label(parts, structure=_EIGHT)
        seg_map[parts] = comp[parts] + len(info)
        info += [(c, is_thing)] * n
    segments = []
    for i, slc in enumerate(ndimage.find_objects(seg_map), start=1):
        if slc is None:
            continue
        box = (slc[0].start, slc[1].start, slc[0].stop, slc[1].stop)
        segments.append(Segment(info[i - 1][0], box, seg_map[slc] == i, info[i - 1][1]))
    segments.sort(key=lambda s: s.cls)  # stable: within a class, instances then components, raster order
    return _keep_largest(segments, preserved_ratio)


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """Source index of each output pixel of torch's ``mode='nearest'``: min(floor(i * in/out), in - 1) in float32."""
    scale = np.float32(n_in) / np.float32(n_out)
    return np.minimum(np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64), n_in - 1)


def resize_mask(mask: np.ndarray, size: int = MASK_SIZE) -> np.ndarray:
    """Nearest resize of a box mask to ``size x size``, index-exact with ``F.interpolate(mode='nearest')``
    (the official resize) without a torch call per segment."""
    h, w = mask.shape
    return np.asarray(mask, bool)[np.ix_(_nearest_index(h, size), _nearest_index(w, size))]


def descriptors(segments: Sequence[Segment]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(masks [q, 128*128] bool, box_area [q] int64, classes [q] int64)`` of query segments."""
    if not segments:
        return np.zeros((0, MASK_SIZE * MASK_SIZE), bool), np.zeros(0, np.int64), np.zeros(0, np.int64)
    masks = np.stack([resize_mask(s.mask).reshape(-1) for s in segments])
    return masks, np.array([s.box_area for s in segments], np.int64), np.array([s.cls for s in segments], np.int64)


# --------------------------------------------------------------------------------------------------
# Scoring


def pair_scores(
    q: torch.Tensor, q_box: torch.Tensor, d: torch.Tensor, d_box: torch.Tensor,
    q_area: torch.Tensor | None = None, d_area: torch.Tensor | None = None,
) -> torch.Tensor:
    """Official shape + size score of every (query, database) pair with one matrix product.

    Args:
        q: ``[nq, D]`` float32 binary masks (flattened 128x128).
        q_box: ``[nq]`` int64 box areas.
        d: ``[nd, D]`` float32 binary masks.
        d_box: ``[nd]`` int64 box areas.
        q_area, d_area: Mask areas (row sums) if already known.

    Returns:
        ``[nq, nd]`` float32 scores (lower is better).
    """
    qa = q.sum(1) if q_area is None else q_area
    da = d.sum(1) if d_area is None else d_area
    return scores_from_dot(q @ d.T, qa, da, q_box, d_box)


def scores_from_dot(
    dot: torch.Tensor, q_area: torch.Tensor, d_area: torch.Tensor, q_box: torch.Tensor, d_box: torch.Tensor
) -> torch.Tensor:
    """Scores from the mask inner products ``m_q . m_d`` (exact integers, whichever kernel computed them)."""
    dot = dot.float()
    qa, da = q_area.float()[:, None], d_area.float()[None, :]
    ssd = qa + da - 2 * dot  # = sum((m_q - m_d)^2) for binary masks; integers < 2^24, exact in float32
    # an empty 128x128 mask (possible for a thin diagonal box shrunk by nearest resize) would divide 0/0
    shape = ssd / torch.maximum(qa, da).clamp_min(1)
    return shape + _size_penalty(q_box, d_box).to(shape.dtype)


_POP8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def _popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per byte/word (``np.bitwise_count`` from numpy 2; a byte lookup table before)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x)
    return _POP8[x.view(np.uint8)]  # per byte: sums over the last axis stay the same


def packed_dots(q: np.ndarray, d: np.ndarray, *, block_bytes: int = 1 << 24) -> np.ndarray:
    """``m_q . m_d`` of bit-packed masks (``[nq, 2048]``, ``[nd, 2048]`` uint8) as popcount(q AND d).

    The same inner products as the matrix product, from 32x less memory than float32 masks; batched
    over blocks of database rows (never a Python loop over pairs).
    """
    qv = np.ascontiguousarray(q).view(np.uint64)
    dv = np.ascontiguousarray(d).view(np.uint64)
    out = np.empty((qv.shape[0], dv.shape[0]), np.int64)
    step = max(1, block_bytes // max(1, qv.shape[0] * qv.shape[1] * 8))
    for s in range(0, dv.shape[0], step):
        both = np.bitwise_and(qv[:, None, :], dv[None, s : s + step, :])
        out[:, s : s + step] = _popcount(both).sum(-1, dtype=np.int64)
    return out


def _size_penalty(q_box: torch.Tensor, d_box: torch.Tensor) -> torch.Tensor:
    """1 where the box areas differ by a factor of 2 or more (the official float ratio test, in integers)."""
    qb, db = q_box[:, None], d_box[None, :]
    return torch.maximum(qb, db) >= 2 * torch.minimum(qb, db)


def reference_scores(q: torch.Tensor, q_box: torch.Tensor, d: torch.Tensor, d_box: torch.Tensor) -> torch.Tensor:
    """The direct formulation of ``DataBase.process_dataset``: per query, squared differences elementwise.

    Kept for tests and the speed benchmark; :func:`pair_scores` returns the same values.
    """
    out = torch.empty(q.shape[0], d.shape[0], dtype=torch.float32, device=q.device)
    area_d = (d == 1).sum(1)
    for i in range(q.shape[0]):
        src = q[i].unsqueeze(0).expand_as(d)
        ssd = ((src - d) ** 2).sum(1)
        area_q = (src == 1).sum(1)
        shape = ssd / torch.maximum(area_q, area_d).clamp_min(1)
        out[i] = shape + _size_penalty(q_box[i : i + 1], d_box)[0].to(shape.dtype)
    return out


def topk_lowest(scores: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> torch.Tensor:
    """Column indices of the ``k`` lowest scores per row, ties to the lower index; -1 pads missing ones.

    Args:
        scores: ``[nq, nd]``.
        k: Matches per row.
        exclude: Optional ``[nq, nd]`` bool of pairs that may not match (the query itself).
    """
    if exclude is not None:
        scores = scores.masked_fill(exclude, float("inf"))
    k_eff = min(k, scores.shape[1])
    order = torch.sort(scores, dim=1, stable=True).indices[:, :k_eff]
    valid = torch.isfinite(torch.gather(scores, 1, order))
    order = torch.where(valid, order, torch.full_like(order, -1))
    if k_eff < k:
        order = torch.cat([order, order.new_full((order.shape[0], k - k_eff), -1)], 1)
    return order


def reference_topk(scores: torch.Tensor, k: int, exclude: torch.Tensor | None = None) -> list[list[int]]:
    """Pure-Python top-k by ``(score, index)``: the tie-break rule spelled out, for tests."""
    rows = []
    s = scores.tolist()
    ex = exclude.tolist() if exclude is not None else None
    for i, row in enumerate(s):
        cand = [j for j in range(len(row)) if not (ex is not None and ex[i][j])]
        rows.append(sorted(cand, key=lambda j: (row[j], j))[:k])
    return rows


# --------------------------------------------------------------------------------------------------
# Database


@dataclass(eq=False)
class SegmentDB:
    """The segments of a dataset's training split.

    Attributes:
        classes: ``[N]`` class id of each segment.
        boxes: ``[N, 4]`` (y0, x0, y1, x1) in its image.
        is_thing: ``[N]`` whether it is an instance of a thing class.
        image_index: ``[N]`` index into ``sources``.
        masks: ``[N, 2048]`` the 128x128 masks, bit-packed (``np.packbits``).
        crop_offsets: ``[N + 1]`` start of each segment's crop in ``crop_rgb`` / ``crop_mask``.
        crop_rgb: ``[P, 3]`` uint8 box crops of the images (black outside the segment), flattened.
        crop_mask: ``[P]`` bool masks at crop resolution.
        sources: Sample id (file stem) of every image.
        matches: ``[N, k]`` top-k database matches of every segment (itself excluded), -1 padded;
            None until :meth:`score_all`.
        meta: Where the database came from (dataset, preprocessing, options).
    """

    classes: np.ndarray
    boxes: np.ndarray
    is_thing: np.ndarray
    image_index: np.ndarray
    masks: np.ndarray
    crop_offsets: np.ndarray
    crop_rgb: np.ndarray
    crop_mask: np.ndarray
    sources: tuple[str, ...]
    matches: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    _cache: dict[Any, Any] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return int(self.classes.shape[0])

    @property
    def box_area(self) -> np.ndarray:
        return (self.boxes[:, 2] - self.boxes[:, 0]).astype(np.int64) * (self.boxes[:, 3] - self.boxes[:, 1])

    def crop(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """``(rgb [h, w, 3] uint8, mask [h, w] bool)`` of segment ``i`` at its original resolution."""
        y0, x0, y1, x1 = (int(v) for v in self.boxes[i])
        a, b = int(self.crop_offsets[i]), int(self.crop_offsets[i + 1])
        h, w = y1 - y0, x1 - x0
        return self.crop_rgb[a:b].reshape(h, w, 3), self.crop_mask[a:b].reshape(h, w)

    def unpacked_masks(self, idx: np.ndarray) -> np.ndarray:
        """``[len(idx), 128*128]`` bool masks."""
        return np.unpackbits(self.masks[idx], axis=1, count=MASK_SIZE * MASK_SIZE).astype(bool)

    def members(self, cls: int) -> np.ndarray:
        """Sorted database indices of class ``cls``."""
        key = ("members", cls)
        if key not in self._cache:
            self._cache[key] = np.flatnonzero(self.classes == cls)
        return self._cache[key]

    def class_tensors(self, cls: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
        """``(masks [n, D] float32, mask area [n], box area [n] int64, image index [n])`` on ``device``.

        Cached: the float32 masks of a class are what queries read, so unpacking them once is what
        keeps a query fast (4 bytes x 16384 per segment).
        """
        device = torch.device(device)
        key = ("tensors", cls, str(device))
        if key not in self._cache:
            idx = self.members(cls)
            masks = torch.from_numpy(self.unpacked_masks(idx)).to(device=device, dtype=torch.float32)
            self._cache[key] = (
                masks,
                masks.sum(1),
                torch.from_numpy(self.box_area[idx]).to(device),
                torch.from_numpy(self.image_index[idx].astype(np.int64)).to(device),
            )
        return self._cache[key]

    # --- queries ----------------------------------------------------------------------------------
    def query(
        self,
        masks: np.ndarray,
        box_area: np.ndarray,
        classes: np.ndarray,
        *,
        k: int = 10,
        exclude_image: Sequence[int] | np.ndarray | None = None,
        device: torch.device | str = "cpu",
        kernel: str = "auto",
    ) -> np.ndarray:
        """Top-k database matches of query segments, scored against the segments of their class.

        Args:
            masks: ``[nq, 128*128]`` bool query masks (:func:`descriptors`).
            box_area: ``[nq]`` query box areas.
            classes: ``[nq]`` query classes.
            k: Matches per query.
            exclude_image: ``[nq]`` database image index whose segments a query may not match (its own
                training image), -1 for none.
            device: Where to score.
            kernel: ``"matmul"`` (float32 product of cached unpacked masks) or ``"popcount"`` (AND +
                popcount of the packed masks, CPU); ``"auto"``: popcount on CPU, where a query is bound
                by reading the database (packed masks are 32x smaller), matmul on GPU. Both give the
                same integer inner products, hence identical matches.

        Returns:
            ``[nq, k]`` int64 database indices, -1 where a class has fewer than ``k`` candidates.
        """
        device = torch.device(device)
        if kernel not in ("auto", "matmul", "popcount"):
            raise ValueError(f"kernel must be auto, matmul or popcount, got {kernel!r}")
        popcount = kernel == "popcount" or (kernel == "auto" and device.type == "cpu")
        nq = len(classes)
        out = np.full((nq, k), -1, np.int64)
        excl = np.full(nq, -1, np.int64) if exclude_image is None else np.asarray(exclude_image, np.int64)
        box_area = np.asarray(box_area, np.int64)
        for cls in np.unique(classes):
            rows = np.flatnonzero(classes == cls)
            members = self.members(int(cls))
            if len(members) == 0:
                continue
            qb = torch.from_numpy(box_area[rows])
            if popcount:
                q_packed = np.packbits(masks[rows], axis=1)
                dot = torch.from_numpy(packed_dots(q_packed, self.masks[members]))
                qa = torch.from_numpy(_popcount(q_packed).sum(1, dtype=np.int64))
                d_area, d_box, d_img = (torch.from_numpy(a) for a in self.class_stats(int(cls)))
                scores = scores_from_dot(dot, qa, d_area, qb, d_box)
            else:
                d, d_area, d_box, d_img = self.class_tensors(int(cls), device)
                q = torch.from_numpy(masks[rows]).to(device=device, dtype=torch.float32)
                scores = pair_scores(q, qb.to(device), d, d_box, d_area=d_area)
            ex = d_img.to(scores.device)[None, :] == torch.from_numpy(excl[rows]).to(scores.device)[:, None]
            top = topk_lowest(scores, k, ex).cpu().numpy()
            out[rows] = np.where(top >= 0, members[np.maximum(top, 0)], -1)
        return out

    def class_stats(self, cls: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(mask area, box area, image index)`` int64 arrays of the class's segments (cached)."""
        key = ("stats", cls)
        if key not in self._cache:
            idx = self.members(cls)
            self._cache[key] = (
                _popcount(self.masks[idx]).sum(1, dtype=np.int64),
                self.box_area[idx],
                self.image_index[idx].astype(np.int64),
            )
        return self._cache[key]

    def score_all(self, *, k: int = 10, device: torch.device | str = "cpu", chunk: int = 1024,
                  progress: bool = True) -> np.ndarray:
        """The official match table: top-k of every database segment among its class, itself excluded.

        All pairs of a class are scored with matrix products, ``chunk`` query rows at a time.
        """
        device = torch.device(device)
        matches = np.full((len(self), k), -1, np.int64)
        classes = np.unique(self.classes)
        total = int(sum(len(self.members(int(c))) ** 2 for c in classes))
        bar = tqdm(total=total, desc="resail: scoring pairs", unit="pair", unit_scale=True, file=sys.stderr,
                   disable=not progress, leave=False)
        for cls in classes:
            members = self.members(int(cls))
            n = len(members)
            masks = torch.from_numpy(self.unpacked_masks(members)).to(device=device, dtype=torch.float32)
            area = masks.sum(1)
            box = torch.from_numpy(self.box_area[members]).to(device)
            for s in range(0, n, chunk):
                e = min(n, s + chunk)
                scores = pair_scores(masks[s:e], box[s:e], masks, box, q_area=area[s:e], d_area=area)
                self_pair = torch.zeros_like(scores, dtype=torch.bool)
                self_pair[torch.arange(e - s), torch.arange(s, e)] = True
                top = topk_lowest(scores, k, self_pair).cpu().numpy()
                matches[members[s:e]] = np.where(top >= 0, members[np.maximum(top, 0)], -1)
                bar.update((e - s) * n)
            del masks
        bar.close()
        self.matches = matches
        return matches

    # --- persistence ------------------------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write the database as one ``.npz`` file, atomically."""
        names = ("classes", "boxes", "is_thing", "image_index", "masks", "crop_offsets", "crop_rgb")
        arrays = {n: getattr(self, n) for n in names}
        arrays.update(crop_mask=np.packbits(self.crop_mask), crop_mask_len=np.array(len(self.crop_mask)),
                      sources=np.array(self.sources, dtype=str),
                      meta=np.array(json.dumps({**self.meta, "version": DB_VERSION}, sort_keys=True)))
        if self.matches is not None:
            arrays["matches"] = self.matches

        def write(f: IO[bytes]) -> None:
            np.savez(f, **arrays)

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> SegmentDB:
        """Read a database written by :meth:`save`.

        Raises:
            DataError: The file is unreadable or was written by another database version.
        """
        try:
            with np.load(path, allow_pickle=False) as z:
                meta = json.loads(str(z["meta"]))
                if meta.get("version") != DB_VERSION:
                    raise DataError(
                        f"{path}: RESAIL database version {meta.get('version')} != {DB_VERSION}; rebuild it with "
                        "`bench resail index --dataset D --rebuild`"
                    )
                n = int(z["crop_mask_len"])
                return cls(
                    classes=z["classes"], boxes=z["boxes"], is_thing=z["is_thing"], image_index=z["image_index"],
                    masks=z["masks"], crop_offsets=z["crop_offsets"], crop_rgb=z["crop_rgb"],
                    crop_mask=np.unpackbits(z["crop_mask"], count=n).astype(bool),
                    sources=tuple(str(s) for s in z["sources"]),
                    matches=z["matches"] if "matches" in z.files else None, meta=meta,
                )
        except (OSError, ValueError, KeyError) as e:
            raise DataError(f"{path}: cannot read the RESAIL database ({e}); delete it and rebuild") from None

    def source_index(self, sample_id: str) -> int:
        """Index of a sample id in ``sources``, or -1."""
        key = ("sources",)
        if key not in self._cache:
            self._cache[key] = {s: i for i, s in enumerate(self.sources)}
        return int(self._cache[key].get(sample_id, -1))


def _to_uint8(image: torch.Tensor | np.ndarray) -> np.ndarray:
    """``[3, H, W]`` float in [-1, 1] (the loader's images) or ``[H, W, 3]`` uint8 → ``[H, W, 3]`` uint8."""
    if isinstance(image, torch.Tensor):
        x = image.detach().float().cpu().numpy()  # numpy: tiny torch ops pay thread-pool overhead per call
        return np.rint((np.clip(x, -1, 1) + 1) * 127.5).astype(np.uint8).transpose(1, 2, 0)
    return np.asarray(image, dtype=np.uint8)


def _np(t: Any) -> np.ndarray:
    a = t.cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    return a.reshape(a.shape[-2:])


_FROM_SPEC: Any = object()


def build_database(
    dataset: Any,
    *,
    thing_classes: Sequence[int] | None = None,
    ignore_index: int | None = _FROM_SPEC,
    use_instances: bool | None = None,
    preserved_ratio: float = 0.9,
    max_images: int | None = None,
    k: int = 10,
    score: bool = True,
    device: torch.device | str = "cpu",
    progress: bool = True,
) -> SegmentDB:
    """Extract the segments of every sample of ``dataset`` (and score all pairs).

    Args:
        dataset: Map-style dataset returning ``image``/``label``/``instance``/``id`` as
            :class:`bench.datasets.custom.CustomDataset` does; its ``spec`` supplies the defaults below.
        thing_classes: Classes split by instance id (default: ``dataset.spec.thing_classes``).
        ignore_index: Unlabeled id (default: ``dataset.spec.ignore_index``).
        use_instances: Read instance maps (default: ``dataset.spec.has_instances``).
        preserved_ratio: Per image and class, keep the largest segments covering this share (0.9).
        max_images: Index only the first ``max_images`` samples (a smaller, faster database).
        k: Matches per segment in the precomputed table.
        score: Compute the table of top-k matches (:meth:`SegmentDB.score_all`).
        device: Where to score.
        progress: Show progress bars on stderr.
    """
    spec = getattr(dataset, "spec", None)
    if thing_classes is None:
        thing_classes = tuple(spec.thing_classes) if spec is not None else ()
    if ignore_index is _FROM_SPEC:
        ignore_index = spec.ignore_index if spec is not None else 255
    if use_instances is None:
        use_instances = bool(spec.has_instances) if spec is not None else True
    n = len(dataset) if max_images is None else min(len(dataset), max_images)
    cols: dict[str, list[Any]] = {k_: [] for k_ in ("cls", "box", "thing", "img", "mask", "rgb", "cmask")}
    sources: list[str] = []
    for i in tqdm(range(n), desc="resail: extracting segments", file=sys.stderr, disable=not progress, leave=False):
        sample = dataset[i]
        image = _to_uint8(sample["image"])
        label = _np(sample["label"])
        instance = _np(sample["instance"]) if use_instances and sample.get("instance") is not None else None
        sources.append(str(sample.get("id", i)))
        for s in extract_segments(label, instance, thing_classes=thing_classes, ignore_index=ignore_index,
                                  preserved_ratio=preserved_ratio):
            y0, x0, y1, x1 = s.box
            cols["cls"].append(s.cls)
            cols["box"].append(s.box)
            cols["thing"].append(s.is_thing)
            cols["img"].append(i)
            cols["mask"].append(np.packbits(resize_mask(s.mask).reshape(-1)))
            cols["rgb"].append((image[y0:y1, x0:x1] * s.mask[..., None]).reshape(-1, 3))
            cols["cmask"].append(s.mask.reshape(-1))
    if not cols["cls"]:
        raise DataError(f"no segments found in the {n} indexed samples; are the label maps empty (all unlabeled)?")
    sizes = np.array([len(m) for m in cols["cmask"]], np.int64)
    db = SegmentDB(
        classes=np.array(cols["cls"], np.int32),
        boxes=np.array(cols["box"], np.int32),
        is_thing=np.array(cols["thing"], bool),
        image_index=np.array(cols["img"], np.int32),
        masks=np.stack(cols["mask"]),
        crop_offsets=np.concatenate([[0], np.cumsum(sizes)]),
        crop_rgb=np.concatenate(cols["rgb"]).astype(np.uint8),
        crop_mask=np.concatenate(cols["cmask"]),
        sources=tuple(sources),
        meta={"thing_classes": list(thing_classes), "ignore_index": ignore_index, "preserved_ratio": preserved_ratio,
              "images": n, "k": k, "split": str(getattr(dataset, "split", "train"))},
    )
    if getattr(dataset, "root", None) is not None:  # lets a training batch recognise its own image
        db.meta["root"] = str(Path(dataset.root).resolve())
    if score:
        db.score_all(k=k, device=device, progress=progress)
    return db


def _fingerprint(root: Path, spec: Any, preprocess: Any) -> str:
    """Content digest of every file of ``root``'s train split, as its layout's loader lists them.

    Works for every layout (custom, the official Cityscapes/ADE20K/COCO-Stuff/CelebAMask-HQ ones,
    synthetic): a changed, added or removed file gives a new database.
    """
    from bench.cache import files_fingerprint
    from bench.datasets import open_split

    ds = open_split(spec, root, "train", preprocess)
    files: list[tuple[str, Path]] = []
    for s in getattr(ds, "samples", []):
        for role in ("image", "label", "instance"):
            p = getattr(s, role, None)
            if p is not None:
                files.append((f"{s.id}/{role}", Path(p)))
        files += [(f"{s.id}/part{cls}", Path(p)) for cls, p in getattr(s, "parts", ())]
    return files_fingerprint(files)


def database_path(root: str | Path, spec: Any, *, preprocess: Any = None, preserved_ratio: float = 0.9,
                  max_images: int | None = None, k: int = 10) -> Path:
    """Where :func:`ensure_database` caches the database of ``root``: ``$BENCH_CACHE/resail/<key>.npz``."""
    root = Path(root).resolve()
    key = {
        "version": DB_VERSION, "root": str(root), "spec": spec.name, "classes": spec.num_classes,
        "things": list(spec.thing_classes), "ignore": spec.ignore_index, "instances": spec.has_instances,
        "preprocess": asdict(preprocess) if is_dataclass(preprocess) else repr(preprocess),
        "ratio": preserved_ratio, "max_images": max_images, "k": k, "files": _fingerprint(root, spec, preprocess),
        "code": code_fingerprint(__name__, "bench.datasets.io", "bench.datasets.transforms"),
    }
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return cache_dir("resail") / f"{spec.name}-{digest}.npz"


def ensure_database(
    root: str | Path,
    spec: Any,
    *,
    preprocess: Any = None,
    preserved_ratio: float = 0.9,
    max_images: int | None = None,
    k: int = 10,
    device: torch.device | str = "cpu",
    progress: bool = True,
    rebuild: bool = False,
) -> SegmentDB:
    """The cached database of ``root``'s training split, built on first use.

    Args:
        root: Dataset root (the custom layout, ``train_img``/``train_label``/...).
        spec: Its :class:`bench.datasets.spec.DatasetSpec`.
        preprocess: How samples are resized (:class:`bench.datasets.transforms.Preprocess`); the
            evaluation variant is used (no flip, centred crop). Default: the loader's default.
        preserved_ratio, max_images, k: See :func:`build_database`.
        device: Where to score pairs.
        progress: Progress bars on stderr.
        rebuild: Ignore a cached copy.
    """
    from bench.datasets import open_split

    if preprocess is not None and hasattr(preprocess, "for_eval"):
        preprocess = preprocess.for_eval()
    path = database_path(root, spec, preprocess=preprocess, preserved_ratio=preserved_ratio, max_images=max_images, k=k)
    if path.is_file() and not rebuild:
        return SegmentDB.load(path)
    dataset = open_split(spec, root, "train", preprocess)
    db = build_database(dataset, preserved_ratio=preserved_ratio, max_images=max_images, k=k, device=device,
                        progress=progress)
    db.meta.update({"root": str(Path(root).resolve()), "dataset": spec.name})
    db.save(path)
    return db


# --------------------------------------------------------------------------------------------------
# Guidance


@dataclass(eq=False)
class Layer:
    """Content pasted for one query segment: ``rgb`` where ``paste`` inside ``box``."""

    box: Box
    rgb: np.ndarray  # uint8 [h, w, 3]
    paste: np.ndarray  # bool [h, w]
    query: Segment


def composite(shape: tuple[int, int], layers: Sequence[Layer]) -> np.ndarray:
    """Compose layers into an ``[H, W, 3]`` uint8 image: things over stuff, uncovered pixels black.

    As the official ``compose``: a stuff layer fills its query segment's mask (with black where its
    content has none) except where a thing's content lands; a thing layer places its content inside
    its box except on the masks of the *other* query things. Unlike the official sum, overlapping
    contents replace each other instead of adding up, so the result stays in range.
    """
    h, w = shape
    canvas = np.zeros((h, w, 3), np.uint8)
    thing_count = np.zeros((h, w), np.int16)
    thing_paste = np.zeros((h, w), bool)
    for lay in layers:
        if lay.query.is_thing:
            y0, x0, y1, x1 = lay.query.box
            thing_count[y0:y1, x0:x1] += lay.query.mask
            y0, x0, y1, x1 = lay.box
            thing_paste[y0:y1, x0:x1] |= lay.paste
    for lay in layers:
        if lay.query.is_thing:
            continue
        y0, x0, y1, x1 = lay.box
        sel = lay.query.mask_in(lay.box) & ~thing_paste[y0:y1, x0:x1]
        canvas[y0:y1, x0:x1][sel] = lay.rgb[sel]
    for lay in layers:
        if not lay.query.is_thing:
            continue
        y0, x0, y1, x1 = lay.box
        others = (thing_count[y0:y1, x0:x1] - lay.query.mask_in(lay.box)) > 0
        sel = lay.paste & ~others
        canvas[y0:y1, x0:x1][sel] = lay.rgb[sel]
    return canvas


def fit_crop(db: SegmentDB, index: int, box: Box) -> tuple[np.ndarray, np.ndarray]:
    """Database crop ``index`` resized into ``box``: rgb bicubic, mask nearest (as official)."""
    rgb, mask = db.crop(index)
    y0, x0, y1, x1 = box
    size = (x1 - x0, y1 - y0)
    rgb_r = np.asarray(Image.fromarray(rgb).resize(size, Image.BICUBIC))
    mask_r = np.asarray(Image.fromarray(mask.astype(np.uint8) * 255).resize(size, Image.NEAREST)) > 127
    return rgb_r, mask_r


@dataclass(eq=False)
class Retrieval:
    """The query segments of one label map and their top-k database matches (-1 = none)."""

    shape: tuple[int, int]
    segments: list[Segment]
    matches: np.ndarray  # int64 [len(segments), k]


def retrieve_batch(
    db: SegmentDB,
    labels: Sequence[np.ndarray],
    instances: Sequence[np.ndarray | None] | None = None,
    *,
    thing_classes: Sequence[int] = (),
    ignore_index: int | None = 255,
    preserved_ratio: float = 0.9,
    k: int = 10,
    exclude_images: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    kernel: str = "auto",
) -> list[Retrieval]:
    """Extract the segments of several label maps and retrieve them in one scoring pass per class.

    Args:
        db: The database.
        labels: ``[H, W]`` label maps.
        instances: Matching instance maps (or None entries).
        thing_classes, ignore_index, preserved_ratio: As :func:`extract_segments`.
        k: Matches per segment.
        exclude_images: Per label map, the database image it was taken from (-1 or None: none), whose
            segments it may not retrieve (during training the query would otherwise find itself).
        device: Where to score.
        kernel: Inner-product kernel (:meth:`SegmentDB.query`).
    """
    instances = instances if instances is not None else [None] * len(labels)
    segs = [
        extract_segments(lab, ins, thing_classes=thing_classes, ignore_index=ignore_index,
                         preserved_ratio=preserved_ratio)
        for lab, ins in zip(labels, instances)
    ]
    flat = [s for ss in segs for s in ss]
    masks, box_area, classes = descriptors(flat)
    excl = np.concatenate([
        np.full(len(ss), -1 if exclude_images is None or exclude_images[i] is None else exclude_images[i], np.int64)
        for i, ss in enumerate(segs)
    ]) if flat else np.zeros(0, np.int64)
    matches = db.query(masks, box_area, classes, k=k, exclude_image=excl, device=device, kernel=kernel)
    out, start = [], 0
    for lab, ss in zip(labels, segs):
        out.append(Retrieval(tuple(np.asarray(lab).shape[-2:]), ss, matches[start : start + len(ss)]))
        start += len(ss)
    return out


def guidance_from(db: SegmentDB, retrieval: Retrieval) -> np.ndarray:
    """The guidance image I^r: every segment's top-1 crop resized into its box, composited."""
    layers = []
    for seg, m in zip(retrieval.segments, retrieval.matches):
        if m[0] < 0:
            continue  # no segment of this class in the database: left black, as official
        rgb, paste = fit_crop(db, int(m[0]), seg.box)
        layers.append(Layer(seg.box, rgb, paste, seg))
    return composite(retrieval.shape, layers)


def to_tensor(images: Sequence[np.ndarray]) -> torch.Tensor:
    """``[H, W, 3]`` uint8 images → ``[B, 3, H, W]`` float in [-1, 1]."""
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)


def guidance_image(
    db: SegmentDB,
    label: np.ndarray | torch.Tensor,
    instance: np.ndarray | torch.Tensor | None = None,
    **kwargs: Any,
) -> torch.Tensor:
    """Guidance image ``[3, H, W]`` in [-1, 1] for one label map (keyword arguments: :func:`retrieve_batch`)."""
    lab = _np(label)
    ins = _np(instance) if instance is not None else None
    r = retrieve_batch(db, [lab], [ins], **kwargs)[0]
    return to_tensor([guidance_from(db, r)])[0]
