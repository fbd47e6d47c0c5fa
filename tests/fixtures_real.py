"""Tiny fixture trees in each real dataset's official layout, with the label ids the loaders should return.

Every writer is deterministic (``seed``), writes a handful of small files, and returns what a test
needs to check the loader: for each split, ``{sample id: expected dataset ids}`` at the stored label
size (and, where relevant, expected instance maps).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

Expected = dict[str, dict[str, np.ndarray]]


def photo(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """A smooth random RGB image (compresses well as JPEG, so decoding noise stays small)."""
    base = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3)).astype(np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR))


def blocks(rng: np.random.Generator, h: int, w: int, values: list[int], n: int = 5) -> np.ndarray:
    """A label map of rectangles with values drawn from ``values`` on a background of ``values[0]``."""
    out = np.full((h, w), values[0], dtype=np.int64)
    for _ in range(n):
        y0, x0 = int(rng.integers(0, h - 4)), int(rng.integers(0, w - 4))
        y1, x1 = int(rng.integers(y0 + 2, h + 1)), int(rng.integers(x0 + 2, w + 1))
        out[y0:y1, x0:x1] = values[int(rng.integers(0, len(values)))]
    return out


def save_map(path: Path, array: np.ndarray, *, bits: int = 8) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dtype = np.uint8 if bits == 8 else np.uint16
    Image.fromarray(array.astype(dtype)).save(path)


def save_photo(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".jpg":
        Image.fromarray(array).save(path, quality=95)
    else:
        Image.fromarray(array).save(path)


# --- ADE20K --------------------------------------------------------------------------------------------
def write_ade20k(root: Path, *, n_train: int = 2, n_val: int = 2, size: tuple[int, int] = (40, 56),
                 seed: int = 0) -> Expected:
    """``root/ADEChallengeData2016/{images,annotations}/{training,validation}``; file values 0..150."""
    rng = np.random.default_rng(seed)
    h, w = size
    base = root / "ADEChallengeData2016"
    expected: Expected = {}
    for split, folder, n in (("train", "training", n_train), ("val", "validation", n_val)):
        expected[split] = {}
        for i in range(1, n + 1):
            stem = f"ADE_{split}_{i:08d}"
            raw = blocks(rng, h, w, [0, 1, 5, 13, 150])  # 0 = other, 150 = flag
            raw[0, 0], raw[0, 1] = 0, 150
            save_photo(base / "images" / folder / f"{stem}.jpg", photo(rng, h, w))
            save_map(base / "annotations" / folder / f"{stem}.png", raw)
            expected[split][stem] = np.where(raw == 0, 255, raw - 1)
    return expected


# --- COCO-Stuff ----------------------------------------------------------------------------------------
COCO_VALUES = [255, 0, 2, 90, 91, 156, 181]  # unlabeled, person, car, toothbrush, banner, sky-other, wood


def write_coco_spade(root: Path, *, n_train: int = 2, n_val: int = 2, size: tuple[int, int] = (40, 56),
                     seed: int = 0) -> Expected:
    """SPADE's ``{train,val}_{img,label,inst}``; label values 0..181 and 255."""
    rng = np.random.default_rng(seed)
    h, w = size
    expected: Expected = {}
    for split, n in (("train", n_train), ("val", n_val)):
        expected[split] = {}
        for i in range(n):
            stem = f"{i + 1:012d}"
            label = blocks(rng, h, w, COCO_VALUES)
            inst = label.copy()
            inst[: h // 2, : w // 2] = 7
            save_photo(root / f"{split}_img" / f"{stem}.jpg", photo(rng, h, w))
            save_map(root / f"{split}_label" / f"{stem}.png", label)
            save_map(root / f"{split}_inst" / f"{stem}.png", inst)
            expected[split][stem] = label
    return expected


def write_coco_official(root: Path, *, n_train: int = 2, n_val: int = 2, size: tuple[int, int] = (40, 56),
                        seed: int = 0) -> tuple[Expected, dict[str, list[tuple[int, int, int, int]]]]:
    """``images/{split}2017``, ``stuffthingmaps_trainval2017/{split}2017`` and ``annotations/instances_{split}2017.json``.

    Each image gets two polygon annotations (rectangles, returned as ``(x0, y0, x1, y1)`` in pixel
    coordinates, in annotation order) and one crowd (RLE) annotation that SPADE's script skips.
    """
    rng = np.random.default_rng(seed)
    h, w = size
    expected: Expected = {}
    boxes: dict[str, list[tuple[int, int, int, int]]] = {}
    for split, n in (("train", n_train), ("val", n_val)):
        expected[split] = {}
        images, anns = [], []
        for i in range(n):
            image_id = 1000 * (split == "val") + i + 1
            stem = f"{image_id:012d}"
            label = blocks(rng, h, w, COCO_VALUES)
            save_photo(root / "images" / f"{split}2017" / f"{stem}.jpg", photo(rng, h, w))
            save_map(root / "stuffthingmaps_trainval2017" / f"{split}2017" / f"{stem}.png", label)
            expected[split][stem] = label
            images.append({"id": image_id, "file_name": f"{stem}.jpg", "height": h, "width": w})
            rects = [(3, 4, 20, 18), (25, 10, 50, 30)]
            boxes[stem] = rects
            for k, (x0, y0, x1, y1) in enumerate(rects):
                # COCO polygon coordinates are 1 px beyond the pixel grid SPADE paints (it subtracts 1)
                poly = [x0 + 1, y0 + 1, x1 + 1, y0 + 1, x1 + 1, y1 + 1, x0 + 1, y1 + 1]
                anns.append({"id": 10 * image_id + k, "image_id": image_id, "category_id": 1, "iscrowd": 0,
                             "segmentation": [poly], "area": 1.0, "bbox": [x0, y0, x1 - x0, y1 - y0]})
            anns.append({"id": 10 * image_id + 9, "image_id": image_id, "category_id": 1, "iscrowd": 1,
                         "segmentation": {"counts": [0, h * w], "size": [h, w]}, "area": 1.0, "bbox": [0, 0, w, h]})
        ann_path = root / "annotations" / f"instances_{split}2017.json"
        ann_path.parent.mkdir(parents=True, exist_ok=True)
        ann_path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "person"}]}))
    return expected, boxes


# --- Cityscapes ----------------------------------------------------------------------------------------
CITY_IDS = [7, 8, 11, 21, 23, 0]  # road, sidewalk, building, vegetation, sky, unlabeled
CAR = 26


def write_cityscapes(root: Path, *, n_train: int = 2, n_val: int = 2, size: tuple[int, int] = (32, 64),
                     seed: int = 0) -> tuple[Expected, Expected]:
    """``leftImg8bit`` + ``gtFine`` with labelIds, 16-bit instanceIds (two adjacent cars) and decoy files."""
    rng = np.random.default_rng(seed)
    h, w = size
    labels: Expected = {}
    insts: Expected = {}
    for split, n in (("train", n_train), ("val", n_val)):
        labels[split], insts[split] = {}, {}
        for i in range(n):
            city = ("aachen", "bremen")[i % 2]
            key = f"{city}_{i:06d}_000019"
            label = blocks(rng, h, w, CITY_IDS)
            inst = label.copy()
            # two cars side by side: same class, different instances -> an instance edge between them
            label[h // 2 :, 4:20] = CAR
            label[h // 2 :, 20:36] = CAR
            inst[h // 2 :, 4:20] = CAR * 1000 + 0
            inst[h // 2 :, 20:36] = CAR * 1000 + 1
            save_photo(root / "leftImg8bit" / split / city / f"{key}_leftImg8bit.png", photo(rng, h, w))
            gt = root / "gtFine" / split / city
            save_map(gt / f"{key}_gtFine_labelIds.png", label)
            save_map(gt / f"{key}_gtFine_instanceIds.png", inst, bits=16)
            save_map(gt / f"{key}_gtFine_labelTrainIds.png", np.zeros_like(label))  # decoys the loader skips
            save_photo(gt / f"{key}_gtFine_color.png", photo(rng, h, w))
            (gt / f"{key}_gtFine_polygons.json").write_text("{}")
            labels[split][key], insts[split][key] = label, inst
    return labels, insts


# --- CelebAMask-HQ -------------------------------------------------------------------------------------
#: CelebA-HQ index -> CelebA orig_idx, chosen around g_partition.py's thresholds.
CELEBA_ORIG = {0: 100, 1: 162770, 2: 162771, 3: 182637, 4: 182638, 5: 200000}
CELEBA_SPLITS = {"train": [0, 1], "celeba_val": [2, 3], "val": [4, 5]}


def write_celebamask_official(root: Path, *, mask_size: int = 16, scale: int = 2, seed: int = 0) -> Expected:
    """``CelebA-HQ-img`` (photos ``scale`` x the masks), per-part masks and the mapping file.

    Returns the expected combined 19-class maps at the mask size, keyed by split then id.
    """
    from bench.datasets.celebamask import PART_ID

    rng = np.random.default_rng(seed)
    s = mask_size
    lines = ["idx orig_idx orig_file"]
    expected: Expected = {split: {} for split in CELEBA_SPLITS}
    for idx, orig in CELEBA_ORIG.items():
        lines.append(f"{idx} {orig} {orig + 1:06d}.jpg")
        save_photo(root / "CelebA-HQ-img" / f"{idx}.jpg", photo(rng, s * scale, s * scale))
        parts = {
            "skin": (2, 2, 14, 14),
            "nose": (6, 6, 10, 10),  # painted after skin: overwrites it
            "hair": (0, 0, 16, 3),
            "l_eye": (4, 4, 6, 6),
        }
        if idx % 2:
            parts["hat"] = (0, 0, 16, 2)  # painted after hair
        label = np.zeros((s, s), dtype=np.int64)
        for name in sorted(parts, key=lambda p: PART_ID[p]):
            x0, y0, x1, y1 = parts[name]
            mask = np.zeros((s, s), dtype=np.uint8)
            mask[y0:y1, x0:x1] = 255
            label[mask != 0] = PART_ID[name]
            path = root / "CelebAMask-HQ-mask-anno" / str(idx // 2000) / f"{idx:05d}_{name}.png"
            if name == "hair":  # one colour file: the loader reads OpenCV's channel 0 (blue) as g_mask.py does
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.stack([mask, mask, mask], -1)).save(path)
            else:
                save_map(path, mask)
        split = next(k for k, v in CELEBA_SPLITS.items() if idx in v)
        expected[split][str(idx)] = label
    (root / "CelebA-HQ-to-CelebA-mapping.txt").write_text("\n".join(lines) + "\n")
    return expected


def write_celebamask_sean(root: Path, *, n_train: int = 2, n_test: int = 2, size: int = 16, seed: int = 0) -> Expected:
    """SEAN's prepared ``CelebA-HQ/{train,test}/{images,labels}``; label values 0..18."""
    rng = np.random.default_rng(seed)
    base = root / "CelebA-HQ"
    expected: Expected = {}
    for split, folder, n in (("train", "train", n_train), ("val", "test", n_test)):
        expected[split] = {}
        for i in range(n):
            stem = str(28000 * (folder == "test") + i)
            label = blocks(rng, size, size, [0, 1, 2, 13, 18])
            save_photo(base / folder / "images" / f"{stem}.jpg", photo(rng, size, size))
            save_map(base / folder / "labels" / f"{stem}.png", label)
            expected[split][stem] = label
    return expected
