"""CelebAMask-HQ in its official release layout or in the prepared folders SEAN distributes.

Official release (``CelebAMask-HQ.zip`` unpacked; ROOT may also hold it as ``CelebAMask-HQ/``)::

    ROOT/CelebA-HQ-img/<idx>.jpg                                   30,000 photos, 1024x1024
    ROOT/CelebAMask-HQ-mask-anno/<idx // 2000>/<idx:05d>_<part>.png  one binary mask per part, 512x512
    ROOT/CelebA-HQ-to-CelebA-mapping.txt                           "idx orig_idx orig_file" per image

The part masks are combined into one 19-class map as the release's ``g_mask.py`` does: background 0,
then the parts of :data:`PARTS` painted in that order with class ``position + 1`` wherever the
mask's first (blue) channel is non-zero, later parts overwriting earlier ones. The class order is the
one of the face-parsing U-Net (:data:`CELEBAMASK_CLASSES`). The 512-pixel map is brought to the
photo's size by nearest-neighbour upsampling (an integer factor is required), so the photo is
resampled once, by the shared preprocessing; for the 1024 -> 256 SPADE resize this gives exactly the
label pixels a direct 512 -> 256 nearest resize would pick.

Splits follow the release's ``g_partition.py``, which assigns each image by its CelebA index
``orig_idx`` (0-based, from the mapping file): ``orig_idx < 162771`` train (24,183), ``162771 <=
orig_idx < 182638`` CelebA val (2,993), ``orig_idx >= 182638`` test (2,824, the split the U-Net's
reported accuracy is measured on). Note these thresholds sit one above CelebA's own
``list_eval_partition.txt`` (files 162771.jpg and 182638.jpg, 0-based 162770 and 182637, start its
val and test); we follow the CelebAMask-HQ script because its split is the one its segmenter used.

SEAN's prepared data (``CelebA-HQ/`` from SEAN's README; ROOT may be that folder or hold it)::

    ROOT/train/images/<n>.jpg   ROOT/train/labels/<n>.png     values 0..18
    ROOT/test/images/<n>.jpg    ROOT/test/labels/<n>.png

Split names: ``train`` is the training split in both layouts; ``val`` is the held-out split the
benchmark scores on: the official **test** partition, or SEAN's ``test/``. ``test`` is accepted as a
synonym of ``val``, and ``celeba_val`` names the official CelebA val partition (official layout only).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.datasets.io import (
    IMAGE_EXTENSIONS,
    OTHER_MAP_EXTENSIONS,
    Decoded,
    decode_image,
    other_format_files,
    wrong_format_message,
)
from bench.datasets.layouts import (
    FileSample,
    LayoutDataset,
    LayoutSummary,
    Listing,
    files_by_stem,
    pair,
    require_dir,
)
from bench.datasets.spec import DatasetSpec
from bench.datasets.transforms import Plan, Preprocess, apply
from bench.errors import DataError

#: Painting order of the per-part masks (``g_mask.py``'s ``label_list``); class id = position + 1.
PARTS: tuple[str, ...] = (
    "skin", "nose", "eye_g", "l_eye", "r_eye", "l_brow", "r_brow", "l_ear", "r_ear", "mouth", "u_lip",
    "l_lip", "hair", "hat", "ear_r", "neck_l", "neck", "cloth",
)  # fmt: skip
CELEBAMASK_CLASSES: tuple[str, ...] = ("background", *PARTS)
PART_ID = {name: i + 1 for i, name in enumerate(PARTS)}

# g_partition.py thresholds on the 0-based CelebA index.
VAL_START, TEST_START = 162771, 182638
MAPPING_FILE = "CelebA-HQ-to-CelebA-mapping.txt"

SPEC = DatasetSpec(
    name="celebamask",
    class_names=CELEBAMASK_CLASSES,
    ignore_index=None,  # every pixel has a class (background is class 0)
    native_size=(256, 256),
    has_instances=False,
    layout="celebamask",
    extra={
        "segmenter": "unet_celebamask",
        "label_files": "official: per-part binary masks painted in g_mask.py order; SEAN: values 0..18",
        "splits": {
            "train": "official train partition (24,183) / SEAN train/",
            "val": "official test partition (2,824) / SEAN test/ (alias: test)",
            "celeba_val": "official CelebA val partition (2,993), official layout only",
        },
    },
)

OFFICIAL_HINT = (
    f"expected ROOT/CelebA-HQ-img/<idx>.jpg, ROOT/CelebAMask-HQ-mask-anno/<folder>/<idx:05d>_<part>.png and "
    f"ROOT/{MAPPING_FILE} (or SEAN's ROOT/{{train,test}}/{{images,labels}}/)"
)
SEAN_HINT = "expected SEAN's prepared layout ROOT/{train,test}/{images,labels}/ (images *.jpg, labels *.png)"


def find_official(root: Path) -> Path | None:
    for base in (root, root / "CelebAMask-HQ"):
        if (base / "CelebA-HQ-img").is_dir():
            return base
    return None


def find_sean(root: Path) -> Path | None:
    for base in (root, root / "CelebA-HQ"):
        if (base / "train" / "labels").is_dir() or (base / "test" / "labels").is_dir():
            return base
    return None


def read_partition(path: Path) -> dict[int, str]:
    """CelebA-HQ index -> ``train`` / ``celeba_val`` / ``val`` (the test partition) from the mapping file.

    Raises:
        DataError: The file is missing or a line is not ``idx orig_idx orig_file``.
    """
    if not path.is_file():
        raise DataError(f"{path}: missing; the official split is read from it ({OFFICIAL_HINT})")
    out: dict[int, str] = {}
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields or (n == 1 and not fields[0].isdigit()):  # header "idx orig_idx orig_file"
                continue
            try:
                idx, orig = int(fields[0]), int(fields[1])
            except (IndexError, ValueError):
                raise DataError(f"{path}:{n}: expected 'idx orig_idx orig_file', got {line.strip()!r}") from None
            out[idx] = "train" if orig < VAL_START else ("celeba_val" if orig < TEST_START else "val")
    return out


def _upsample_to(image: np.ndarray, array: np.ndarray, s: FileSample, path: Path) -> np.ndarray:
    """Nearest-upsample a label map to the photo's size by an integer factor; refuse other sizes."""
    (h, w), (mh, mw) = image.shape[:2], array.shape[:2]
    if (h, w) == (mh, mw):
        return array
    if h % mh or w % mw or h // mh != w // mw:
        raise DataError(
            f"{path}: size {mw}x{mh} (WxH) does not divide the photo {s.image.name} ({w}x{h}); "
            "masks must be the photo's size or a whole fraction of it (512 for the 1024 release)"
        )
    return apply(array, Plan(resize=(w, h), crop=None, flip=False), kind="label")


class CelebAMaskOfficialDataset(LayoutDataset):
    """CelebAMask-HQ from the official release: per-part masks combined into one 19-class map."""

    layout = "celebamask"
    hint = OFFICIAL_HINT
    splits = ("train", "val", "test", "celeba_val")

    @classmethod
    def list_split(cls, root: Path, split: str, spec: DatasetSpec) -> Listing:
        base = find_official(root) or root
        img_dir = require_dir(base / "CelebA-HQ-img", OFFICIAL_HINT)
        anno_dir = require_dir(base / "CelebAMask-HQ-mask-anno", OFFICIAL_HINT)
        partition = read_partition(base / MAPPING_FILE)
        want = "val" if split == "test" else split
        images = {k: p for k, p in files_by_stem(img_dir, IMAGE_EXTENSIONS).items() if k.isdigit()}
        parts: dict[int, list[tuple[int, Path]]] = {}
        unpaired: list[str] = []
        refused: list[str] = []
        n_masks = 0
        for p in sorted(anno_dir.rglob("*")):
            if p.suffix.lower() in OTHER_MAP_EXTENSIONS and p.is_file() and not p.name.startswith("."):
                # a part mask in another format would silently leave its part out of the label
                refused.append(wrong_format_message(p, "part mask", expected="CelebAMask-HQ part masks are PNGs"))
                continue
            if p.suffix.lower() != ".png" or not p.is_file():
                continue
            stem, _, part = p.stem.partition("_")
            if not stem.isdigit() or part not in PART_ID:
                unpaired.append(f"{p} is not <idx:05d>_<part>.png with a part of {', '.join(PARTS)}")
                continue
            n_masks += 1
            if partition.get(int(stem)) == want:
                parts.setdefault(int(stem), []).append((PART_ID[part], p))
        in_split = {int(k): p for k, p in images.items() if partition.get(int(k)) == want}
        samples = []
        for idx in sorted(in_split):
            masks = sorted(parts.get(idx, []))  # paint order = class id order
            if not masks:
                unpaired.append(f"{in_split[idx]} has no part masks in {anno_dir}")
                continue
            samples.append(FileSample(str(idx), in_split[idx], masks[0][1], parts=tuple(masks)))
        unpaired += [f"{parts[i][0][1]} has no image in {img_dir}" for i in sorted(parts.keys() - in_split.keys())]
        unpaired += [f"{images[k]} is not listed in {MAPPING_FILE}" for k in sorted(images) if int(k) not in partition]
        return Listing(samples, unpaired, n_images=len(in_split), n_labels=len(parts), refused=refused)

    def read_label(self, s: FileSample) -> Decoded:
        out: np.ndarray | None = None
        source = "part masks"
        for class_id, path in s.parts:
            decoded = decode_image(path)
            source = f"part masks, {decoded.source}"
            mask = decoded.array[:, :, 2]  # = OpenCV's channel 0 (blue) of the file g_mask.py reads
            if out is None:
                out = np.zeros(mask.shape, dtype=np.uint8)
            elif mask.shape != out.shape:
                raise DataError(
                    f"{path}: size {mask.shape[1]}x{mask.shape[0]} (WxH) differs from {s.parts[0][1].name} "
                    f"({out.shape[1]}x{out.shape[0]}); all part masks of an image must have one size"
                )
            out[mask != 0] = class_id
        if out is None:  # list_split keeps only images with a mask; this guards direct use
            raise DataError(f"{s.image}: no part masks to combine")
        return Decoded(out, source, None)

    def align(self, image: np.ndarray, array: np.ndarray, s: FileSample, path: Path) -> np.ndarray:
        return _upsample_to(image, array, s, path)


class CelebAMaskSEANDataset(LayoutDataset):
    """CelebAMask-HQ as SEAN's prepared ``train/`` and ``test/`` folders (label values 0..18)."""

    layout = "celebamask"
    hint = SEAN_HINT
    splits = ("train", "val", "test")

    @classmethod
    def list_split(cls, root: Path, split: str, spec: DatasetSpec) -> Listing:
        base = find_sean(root) or root
        folder = base / ("train" if split == "train" else "test")
        img_dir = require_dir(folder / "images", SEAN_HINT)
        label_dir = require_dir(folder / "labels", SEAN_HINT)
        images = files_by_stem(img_dir, IMAGE_EXTENSIONS)
        labels = files_by_stem(label_dir, (".png",))
        bad = other_format_files(label_dir, labels)
        keys, unpaired = pair(images, labels, label_dir, img_dir, refused=bad)
        samples = [FileSample(k, images[k], labels[k]) for k in keys]
        return Listing(samples, unpaired, n_images=len(images), n_labels=len(labels),
                       refused=[wrong_format_message(p) for _, p in sorted(bad.items())])

    def align(self, image: np.ndarray, array: np.ndarray, s: FileSample, path: Path) -> np.ndarray:
        return _upsample_to(image, array, s, path)


def _dataset_cls(root: Path) -> type[LayoutDataset]:
    if find_official(root) is not None:
        return CelebAMaskOfficialDataset
    if find_sean(root) is not None:
        return CelebAMaskSEANDataset
    raise DataError(f"{root}: no CelebAMask-HQ layout found; {OFFICIAL_HINT}")


def load(root: Path | str, split: str, spec: DatasetSpec, preprocess: Preprocess | None = None) -> LayoutDataset:
    """Open a split in whichever layout ``root`` holds (the ``LOADERS`` entry ``celebamask``)."""
    return _dataset_cls(Path(root))(root, split, spec, preprocess)


def check(root: Path | str, split: str, spec: DatasetSpec, *, max_problems: int = 100) -> LayoutSummary:
    """Scan a split for ``bench data check``, in whichever layout ``root`` holds."""
    return _dataset_cls(Path(root)).check_split(root, split, spec, max_problems=max_problems)
