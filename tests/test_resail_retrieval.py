"""RESAIL retrieval: segment extraction, exact matrix-product scoring, database, guidance, distortion."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from methods.resail.distortion import (
    color_transfer,
    control_points,
    distorted_ground_truth,
    lab_to_rgb,
    rgb_to_lab,
    tps_flow,
)
from methods.resail.retrieval import (
    MASK_SIZE,
    SegmentDB,
    build_database,
    descriptors,
    ensure_database,
    extract_segments,
    guidance_from,
    guidance_image,
    packed_dots,
    pair_scores,
    reference_scores,
    reference_topk,
    resize_mask,
    retrieve_batch,
    topk_lowest,
)

NUM_CLASSES = 6
THING = 5  # the countable class of the blob datasets
PALETTE = np.array([[40, 90, 220], [30, 170, 40], [140, 140, 140], [200, 60, 40], [230, 210, 60], [250, 20, 200]])


def blob_label(rng: np.random.Generator, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A random scene: two stuff bands, a few stuff rectangles/discs, and thing instances (class 5)."""
    label = np.zeros((size, size), np.uint8)
    label[size // 2 + int(rng.integers(-6, 6)) :] = 1
    yy, xx = np.mgrid[:size, :size]
    for _ in range(int(rng.integers(2, 5))):
        c = int(rng.integers(2, 5))
        y, x = rng.integers(0, size, 2)
        r = int(rng.integers(3, size // 4))
        if rng.random() < 0.5:
            label[(yy - y) ** 2 + (xx - x) ** 2 < r * r] = c
        else:
            label[max(0, y - r) : y + r, max(0, x - r // 2) : x + r] = c
    instance = np.zeros_like(label)
    for j in range(int(rng.integers(1, 4))):
        y, x = rng.integers(4, size - 8, 2)
        h, w = rng.integers(3, 10, 2)
        label[y : y + h, x : x + w] = THING
        instance[y : y + h, x : x + w] = j + 1
    label[rng.random((size, size)) < 0.01] = 255  # a few unlabeled pixels
    return label, instance


def render(label: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each class in its own colour (unlabeled black), plus a little noise."""
    img = PALETTE[np.minimum(label, NUM_CLASSES - 1)] + rng.integers(-12, 13, (*label.shape, 3))
    img[label == 255] = 0
    return np.clip(img, 0, 255).astype(np.uint8)


def blob_samples(n: int, seed: int = 0, size: int = 48) -> list[dict]:
    """A map-style dataset (a list) returning what the loader returns."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        label, inst = blob_label(rng, size)
        img = torch.from_numpy(render(label, rng)).permute(2, 0, 1).float() / 127.5 - 1
        out.append({"image": img, "label": torch.from_numpy(label.astype(np.int64))[None],
                    "instance": torch.from_numpy(inst.astype(np.int64))[None], "id": f"s{i:03d}"})
    return out


def blob_db(n: int = 30, seed: int = 0, **kw) -> SegmentDB:
    return build_database(blob_samples(n, seed), thing_classes=(THING,), ignore_index=255, use_instances=True,
                          progress=False, **kw)


# --- segments --------------------------------------------------------------------------------------


def test_extract_segments_splits_stuff_by_8_connectivity_and_things_by_instance() -> None:
    label = np.full((10, 12), 0, np.uint8)
    label[1:3, 1:3] = 1  # two class-1 squares touching only at a corner: one 8-connected segment
    label[3:5, 3:5] = 1
    label[7:9, 9:11] = 1  # a separate class-1 square
    label[6:9, 1:7] = 2  # thing class: two adjacent instances
    inst = np.zeros_like(label)
    inst[6:9, 1:4] = 1
    inst[6:9, 4:7] = 2
    label[0, 11] = 255
    segs = extract_segments(label, inst, thing_classes=(2,), ignore_index=255, preserved_ratio=1.0)
    by_class = {c: [s for s in segs if s.cls == c] for c in (0, 1, 2)}
    assert sorted(s.area for s in by_class[1]) == [4, 8]
    assert {s.box for s in by_class[1]} == {(1, 1, 5, 5), (7, 9, 9, 11)}
    assert sorted((s.box, s.area) for s in by_class[2]) == [((6, 1, 9, 4), 9), ((6, 4, 9, 7), 9)]
    assert all(s.is_thing for s in by_class[2]) and not any(s.is_thing for s in by_class[1])
    assert sum(s.area for s in segs) == label.size - 1  # every labeled pixel, the unlabeled one excluded
    # without instance maps the two touching instances are one component
    assert len(extract_segments(label, None, thing_classes=(2,), preserved_ratio=1.0)) == len(segs) - 1


def test_preserved_ratio_keeps_largest_segments_covering_the_share() -> None:
    label = np.zeros((20, 20), np.uint8)
    label[0:10, 0:10] = 1  # 100 px
    label[12:17, 12:17] = 1  # 25 px
    label[0:2, 18:20] = 1  # 4 px
    segs = [s for s in extract_segments(label, preserved_ratio=0.9) if s.cls == 1]
    # 100 < 0.9 * 129 → keep the next; 125 >= 116.1 → drop the 4-px one
    assert [s.area for s in segs] == [100, 25]


@pytest.mark.parametrize("shape", [(1, 1), (3, 200), (129, 7), (64, 64), (255, 128)])
def test_resize_mask_is_torch_nearest(shape: tuple[int, int]) -> None:
    m = np.random.default_rng(0).random(shape) < 0.5
    ref = F.interpolate(torch.from_numpy(m).float()[None, None], size=(MASK_SIZE, MASK_SIZE), mode="nearest")[0, 0]
    assert np.array_equal(resize_mask(m), ref.numpy() > 0.5)


# --- scoring ---------------------------------------------------------------------------------------


def _class_tensors(db: SegmentDB, cls: int) -> tuple[torch.Tensor, torch.Tensor]:
    idx = db.members(cls)
    return torch.from_numpy(db.unpacked_masks(idx)).float(), torch.from_numpy(db.box_area[idx])


@pytest.fixture(scope="module")
def db40() -> SegmentDB:
    db = blob_db(40, k=10)
    assert len(db) > 200  # "a few hundred segments"
    return db


@pytest.fixture(scope="module")
def reference(db40: SegmentDB) -> dict[int, torch.Tensor]:
    """The direct (official) scores of every pair of each class."""
    out = {}
    for cls in np.unique(db40.classes):
        m, box = _class_tensors(db40, int(cls))
        out[int(cls)] = reference_scores(m, box, m, box)
    return out


def test_matrix_product_scores_equal_the_direct_reference_bit_for_bit(db40: SegmentDB, reference) -> None:
    db = db40
    for cls in np.unique(db.classes):
        m, box = _class_tensors(db, int(cls))
        fast = pair_scores(m, box, m, box)
        assert torch.equal(fast, reference[int(cls)]), cls
        dots = packed_dots(db.masks[db.members(int(cls))], db.masks[db.members(int(cls))])
        assert np.array_equal(dots, (m @ m.T).numpy().astype(np.int64))
        # the diagonal is the segment itself: shape 0, no size penalty
        assert torch.all(torch.diagonal(fast) == 0)


def test_packed_dots_without_numpy_bitwise_count(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    q, d = rng.random((3, MASK_SIZE**2)) < 0.5, rng.random((7, MASK_SIZE**2)) < 0.3
    want = q.astype(np.int64) @ d.T.astype(np.int64)
    assert np.array_equal(packed_dots(np.packbits(q, axis=1), np.packbits(d, axis=1)), want)
    monkeypatch.delattr(np, "bitwise_count", raising=False)  # numpy < 2
    assert np.array_equal(packed_dots(np.packbits(q, axis=1), np.packbits(d, axis=1), block_bytes=64), want)


def test_scores_follow_the_official_formula_on_a_hand_example() -> None:
    q = torch.zeros(1, 16)
    q[0, :8] = 1  # |q| = 8
    d = torch.zeros(4, 16)
    d[0, :8] = 1  # identical
    d[1, 4:12] = 1  # overlap 4: ssd = 8, max area 8 → 1.0
    d[2, :2] = 1  # ssd 6, max 8 → 0.75; box 4x smaller → +1
    d[3, :12] = 1  # ssd 4, max 12 → 1/3; box exactly 2x larger → +1
    scores = pair_scores(q, torch.tensor([100]), d, torch.tensor([100, 51, 25, 200]))
    # 100 / 51 < 2: no penalty; 100 / 25 and 200 / 100 >= 2: penalty
    assert scores.tolist() == [[0.0, 1.0, 1.75, (torch.tensor(4.0) / 12 + 1).item()]]
    assert torch.equal(scores, reference_scores(q, torch.tensor([100]), d, torch.tensor([100, 51, 25, 200])))


def test_topk_ties_go_to_the_lower_index_and_match_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    scores = torch.randint(0, 4, (20, 50), generator=g).float() / 2  # many ties
    exclude = torch.rand(20, 50, generator=g) < 0.2
    got = topk_lowest(scores, 10, exclude)
    assert got.tolist() == reference_topk(scores, 10, exclude)
    few = topk_lowest(scores[:, :3], 5)
    assert (few[:, 3:] == -1).all() and few[:, :3].tolist() == reference_topk(scores[:, :3], 3)


def test_database_top_k_equals_the_reference_top_k(db40: SegmentDB, reference) -> None:
    db = db40
    assert db.matches is not None
    checked = 0
    for cls in np.unique(db.classes):
        members = db.members(int(cls))
        top = reference_topk(reference[int(cls)], 10, torch.eye(len(members), dtype=torch.bool))
        for i, row in enumerate(top):
            want = [int(members[j]) for j in row] + [-1] * (10 - len(row))
            assert db.matches[members[i]].tolist() == want
            checked += 1
    assert checked == len(db)


def test_query_kernels_agree_and_exclude_the_own_image() -> None:
    db = blob_db(30)
    samples = blob_samples(30)
    segs = extract_segments(samples[3]["label"][0].numpy(), samples[3]["instance"][0].numpy(), thing_classes=(THING,))
    masks, box, cls = descriptors(segs)
    a = db.query(masks, box, cls, k=5, kernel="matmul")
    b = db.query(masks, box, cls, k=5, kernel="popcount")
    assert np.array_equal(a, b)
    # a training image's segments find themselves first (score 0) ...
    assert all(db.image_index[r[0]] == 3 for r in a)
    # ... unless their image is excluded
    c = db.query(masks, box, cls, k=5, exclude_image=np.full(len(cls), 3))
    assert not np.isin(db.image_index[c[c >= 0]], [3]).any()
    assert all(db.classes[r[r >= 0]].tolist() == [s.cls] * int((r >= 0).sum()) for r, s in zip(c, segs))


def test_database_save_load_roundtrip(tmp_path) -> None:
    db = blob_db(8, k=4)
    db2 = SegmentDB.load(db.save(tmp_path / "db.npz"))
    for name in ("classes", "boxes", "is_thing", "image_index", "masks", "crop_offsets", "crop_rgb", "crop_mask", "matches"):
        assert np.array_equal(getattr(db, name), getattr(db2, name)), name
    assert db2.sources == db.sources
    rgb, mask = db2.crop(5)
    assert rgb.shape[:2] == mask.shape and (rgb[~mask] == 0).all()


def test_ensure_database_builds_once_and_caches(tmp_path, bench_cache) -> None:
    from bench.datasets import SYNTHETIC_SPEC, write_synthetic
    from bench.datasets.transforms import Preprocess

    root = write_synthetic(tmp_path / "syn", n_train=6, n_val=2, workers=1)
    pre = Preprocess.fixed((64, 64))
    db = ensure_database(root, SYNTHETIC_SPEC, preprocess=pre, k=3, progress=False)
    files = list((bench_cache / "resail").glob("*.npz"))
    assert len(files) == 1 and len(db) > 10 and db.sources == tuple(f"train_{i:05d}" for i in range(6))
    again = ensure_database(root, SYNTHETIC_SPEC, preprocess=pre, k=3, progress=False)
    assert np.array_equal(again.masks, db.masks) and again.meta["root"] == str(root.resolve())
    assert set(np.unique(db.classes)) <= set(range(SYNTHETIC_SPEC.num_classes))


# --- guidance ---------------------------------------------------------------------------------------


def _nearest_class(rgb: np.ndarray) -> np.ndarray:
    d = ((rgb[..., None, :].astype(int) - PALETTE[None, None]) ** 2).sum(-1)
    return d.argmin(-1)


def test_guidance_of_an_edited_label_map_uses_segments_of_the_painted_class() -> None:
    db = blob_db(30)
    label, inst = blob_label(np.random.default_rng(123))  # not in the database
    label[label == 3] = 0
    label[20:34, 10:30] = 3  # paint a new class-3 region
    r = retrieve_batch(db, [label], [inst], thing_classes=(THING,), ignore_index=255)[0]
    new = [s for s in r.segments if s.cls == 3]
    assert len(new) == 1 and new[0].box == (20, 10, 34, 30)
    match = r.matches[r.segments.index(new[0])]
    assert (match >= 0).all() and (db.classes[match] == 3).all()
    g = guidance_from(db, r)
    region = g[20:34, 10:30]
    lit = region.sum(-1) > 60  # retrieved crops are black outside their own segment
    assert lit.mean() > 0.5 and (_nearest_class(region[lit]) == 3).mean() > 0.9
    t = guidance_image(db, torch.from_numpy(label.astype(np.int64))[None], torch.from_numpy(inst.astype(np.int64))[None],
                       thing_classes=(THING,), ignore_index=255)
    assert t.shape == (3, 48, 48) and t.min() >= -1 and t.max() <= 1
    assert torch.equal(t, torch.from_numpy(g).permute(2, 0, 1).float() / 127.5 - 1)


def test_classes_missing_from_the_database_stay_black() -> None:
    samples = [s for s in blob_samples(20) if not (s["label"] == 4).any()]
    db = build_database(samples, thing_classes=(THING,), ignore_index=255, score=False, progress=False)
    label = np.zeros((48, 48), np.uint8)
    label[10:30, 10:30] = 4
    g = guidance_from(db, retrieve_batch(db, [label], thing_classes=(THING,))[0])
    assert (g[10:30, 10:30] == 0).all() and g[40:].sum() > 0


def test_things_are_composited_over_stuff() -> None:
    db = blob_db(30)
    label = np.zeros((48, 48), np.uint8)
    inst = np.zeros_like(label)
    label[20:30, 20:30] = THING
    inst[20:30, 20:30] = 1
    g = guidance_from(db, retrieve_batch(db, [label], [inst], thing_classes=(THING,))[0])
    lit = g[20:30, 20:30].sum(-1) > 60
    assert (_nearest_class(g[20:30, 20:30][lit]) == THING).mean() > 0.9


# --- distortion --------------------------------------------------------------------------------------


def test_lab_roundtrip_and_color_transfer_moves_statistics() -> None:
    rng = np.random.default_rng(0)
    rgb = rng.integers(20, 235, (500, 3))
    assert np.abs(lab_to_rgb(rgb_to_lab(rgb)).astype(int) - rgb).max() <= 1  # truncation to uint8
    ref = np.clip(rng.normal([200, 60, 40], 10, (300, 3)), 0, 255).astype(np.uint8)
    src = np.clip(rng.normal([40, 90, 220], 20, (400, 3)), 0, 255).astype(np.uint8)
    out = color_transfer(src, ref)
    lo, lr = rgb_to_lab(out), rgb_to_lab(ref)
    assert np.allclose(lo.mean(0), lr.mean(0), atol=0.02) and np.allclose(lo.std(0), lr.std(0), rtol=0.1)


def test_thin_plate_spline_moves_control_points_exactly() -> None:
    before = np.array([[5, 5], [5, 25], [25, 25], [25, 5], [15, 15]], float)
    after = before.copy()
    after[4] = [18, 12]
    flow = tps_flow(before, after, (32, 32))
    for b, a in zip(before, after):
        y, x = a.astype(int)
        assert np.allclose(flow[:, y, x], a - b, atol=1e-6)  # output(after) reads input(before)


def test_control_points_are_seeded_and_skip_tiny_segments() -> None:
    mask = np.zeros((30, 30), bool)
    mask[5:25, 8:22] = True
    a = control_points(mask, np.random.default_rng(4))
    b = control_points(mask, np.random.default_rng(4))
    assert a is not None and np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert a[0].shape == (10, 2) and 1 <= (np.abs(a[1] - a[0]).sum(1) > 0).sum() <= 3
    assert control_points(np.ones((2, 2), bool), np.random.default_rng(0)) is None


def test_distorted_ground_truth_keeps_the_scene_and_is_seeded() -> None:
    db = blob_db(30)
    s = blob_samples(1, seed=9)[0]
    label, inst = s["label"][0].numpy(), s["instance"][0].numpy()
    image = ((s["image"].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
    r = retrieve_batch(db, [label], [inst], thing_classes=(THING,))[0]
    a = distorted_ground_truth(image, r, db, np.random.default_rng(1))
    b = distorted_ground_truth(image, r, db, np.random.default_rng(1))
    c = distorted_ground_truth(image, r, db, np.random.default_rng(2))
    assert np.array_equal(a, b) and not np.array_equal(a, c) and a.shape == image.shape
    lit = a.sum(-1) > 60
    assert lit.mean() > 0.7
    # colours move toward other segments of the same class, so each pixel stays near its class colour
    agree = (_nearest_class(a[lit]) == np.minimum(label[lit], NUM_CLASSES - 1)).mean()
    assert agree > 0.8
