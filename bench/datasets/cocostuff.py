"""COCO-Stuff 164k in SPADE's layout or in the official COCO + stuffthingmaps layout.

SPADE's layout (``datasets/coco_stuff/`` of NVlabs/SPADE; read by ``CustomDataset``)::

    ROOT/{train,val}_img/000000000139.jpg
    ROOT/{train,val}_label/000000000139.png    values 0..181 (= COCO-Stuff id - 1), 255 unlabeled
    ROOT/{train,val}_inst/000000000139.png     SPADE's instance maps (coco_generate_instance_map.py)

Official layout (the zips of cocodataset.org and nightrome/cocostuff, unpacked under ROOT)::

    ROOT/images/{train,val}2017/000000000139.jpg                  train2017.zip, val2017.zip
    ROOT/stuffthingmaps_trainval2017/{train,val}2017/000000000139.png   stuffthingmaps_trainval2017.zip
    ROOT/annotations/instances_{train,val}2017.json               annotations_trainval2017.zip

Label ids: the files' values are the dataset ids (182 classes: things 0..90, stuff 91..181; 11 thing
ids are never annotated), 255 = unlabeled = ``ignore_index``. SPADE puts 255 in its dontcare channel
182 (``spade_ids``), OASIS shifts by one with 255 -> 0 (``oasis_ids``); DeepLabV2's 182 outputs are the
same ids, so evaluation needs no mapping.

Instance maps in the official layout are built on the fly the way SPADE's
``datasets/coco_generate_instance_map.py`` builds ``*_inst``: start from the label map and paint the
polygons of every non-crowd annotation of the image, in annotation order, with a running counter
(stored as 8 bits, so the counter wraps at 256 as SPADE's uint8 file does). Polygon vertices are
shifted by -1 as in that script and clipped to the image (the script relies on them being inside).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from bench.datasets.custom import CustomDataset
from bench.datasets.custom import check_split as custom_check_split
from bench.datasets.io import IMAGE_EXTENSIONS, Decoded, other_format_files, wrong_format_message
from bench.datasets.layouts import (
    FileSample,
    LayoutDataset,
    LayoutSummary,
    Listing,
    as_summary,
    files_by_stem,
    pair,
    require_dir,
)
from bench.datasets.spec import DatasetSpec
from bench.datasets.transforms import Preprocess
from bench.errors import DataError

# COCO-Stuff labels.txt order: index = COCO-Stuff id - 1 (= kazuto1011/deeplab-pytorch's output order).
COCOSTUFF_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "street sign", "stop sign", "parking meter", "bench", "bird",
    "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "hat", "backpack",
    "umbrella", "shoe", "eye glasses", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard",
    "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "plate", "wine glass", "cup", "fork", "knife", "spoon", "bowl",
    "banana", "apple", "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake",
    "chair", "couch", "potted plant", "bed", "mirror", "dining table", "window", "desk", "toilet",
    "door", "tv", "laptop", "mouse", "remote", "keyboard", "cell phone", "microwave", "oven",
    "toaster", "sink", "refrigerator", "blender", "book", "clock", "vase", "scissors", "teddy bear",
    "hair drier", "toothbrush", "hair brush", "banner", "blanket", "branch", "bridge",
    "building-other", "bush", "cabinet", "cage", "cardboard", "carpet", "ceiling-other",
    "ceiling-tile", "cloth", "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff",
    "dirt", "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile",
    "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass", "gravel",
    "ground-other", "hill", "house", "leaves", "light", "mat", "metal", "mirror-stuff", "moss",
    "mountain", "mud", "napkin", "net", "paper", "pavement", "pillow", "plant-other", "plastic",
    "platform", "playingfield", "railing", "railroad", "river", "road", "rock", "roof", "rug", "salad",
    "sand", "sea", "shelf", "sky-other", "skyscraper", "snow", "solid-other", "stairs", "stone",
    "straw", "structural-other", "table", "tent", "textile-other", "towel", "tree", "vegetable",
    "wall-brick", "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood",
    "water-other", "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip

N_THINGS = 91  # ids 0..90 are things (COCO ids 1..91), 91..181 stuff
#: Thing ids without a single annotation in COCO 2017 (mmseg's 171-class COCO-Stuff drops them).
UNANNOTATED_IDS: tuple[int, ...] = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)

SPEC = DatasetSpec(
    name="coco",
    class_names=COCOSTUFF_CLASSES,
    ignore_index=255,
    native_size=(256, 256),
    has_instances=True,
    thing_classes=tuple(range(N_THINGS)),
    layout="cocostuff",
    extra={
        "segmenter": "deeplabv2_cocostuff",
        "label_files": "values are ids 0..181 (COCO-Stuff id - 1), 255 unlabeled",
        "unannotated_ids": UNANNOTATED_IDS,
        "splits": {"train": "train2017 (118,287)", "val": "val2017 (5,000)"},
    },
)

SPADE_HINT = "expected SPADE's layout ROOT/{train,val}_{img,label,inst}/ or the official one (see bench/datasets/cocostuff.py)"
OFFICIAL_HINT = (
    "expected ROOT/images/{train,val}2017/*.jpg, ROOT/stuffthingmaps_trainval2017/{train,val}2017/*.png "
    "and ROOT/annotations/instances_{train,val}2017.json (or SPADE's layout ROOT/{train,val}_{img,label,inst}/)"
)


def is_spade_layout(root: Path) -> bool:
    """SPADE's layout has ``{split}_label`` folders at the root."""
    return (root / "train_label").is_dir() or (root / "val_label").is_dir()


@functools.lru_cache(maxsize=4)
def _polygons(path: str, mtime_ns: int, size: int) -> dict[str, list[list[list[float]]]]:
    """Image stem -> polygon lists of its non-crowd annotations, in annotation order (cached per file version)."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        names = {img["id"]: Path(img["file_name"]).stem for img in data["images"]}
        out: dict[str, list[list[list[float]]]] = {stem: [] for stem in names.values()}
        for ann in data["annotations"]:
            seg = ann.get("segmentation")
            if isinstance(seg, list) and ann["image_id"] in names:  # RLE (crowd) regions are skipped, as SPADE's script does
                out[names[ann["image_id"]]].append(seg)
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path}: cannot read COCO instance annotations ({type(e).__name__}: {e}); "
                        "re-extract annotations_trainval2017.zip") from None
    return out


def instance_map(label: np.ndarray, polygons: list[list[list[float]]]) -> np.ndarray:
    """SPADE's COCO instance map: the label map with each annotation's polygons painted by a counter."""
    from skimage.draw import polygon

    out = label.astype(np.uint8).copy()
    for count, ann in enumerate(polygons):
        for seg in ann:
            xy = np.asarray(seg, dtype=np.float64).reshape(-1, 2)
            rr, cc = polygon(xy[:, 1] - 1, xy[:, 0] - 1, shape=out.shape)
            out[rr, cc] = count % 256
    return out


class CocoStuffOfficialDataset(LayoutDataset):
    """COCO-Stuff in the official COCO 2017 + stuffthingmaps layout."""

    layout = "cocostuff"
    hint = OFFICIAL_HINT

    @classmethod
    def list_split(cls, root: Path, split: str, spec: DatasetSpec) -> Listing:
        img_dir = require_dir(root / "images" / f"{split}2017", OFFICIAL_HINT)
        label_dir = require_dir(root / "stuffthingmaps_trainval2017" / f"{split}2017", OFFICIAL_HINT)
        images = files_by_stem(img_dir, IMAGE_EXTENSIONS)
        labels = files_by_stem(label_dir, (".png",))
        bad = other_format_files(label_dir, labels)
        keys, unpaired = pair(images, labels, label_dir, img_dir, refused=bad)
        ann = root / "annotations" / f"instances_{split}2017.json"
        # has_instances is False when the method's config does not read instance maps (bench.preflight)
        if spec.has_instances and not ann.is_file():
            raise DataError(
                f"{ann}: missing; SPADE's COCO instance maps are built from it (annotations_trainval2017.zip) "
                "because a config with no_instance=false reads them; add it, or --set no_instance=true, "
                "or use SPADE's layout with {train,val}_inst/"
            )
        samples = [FileSample(k, images[k], labels[k], ann if spec.has_instances else None) for k in keys]
        return Listing(samples, unpaired, n_images=len(images), n_labels=len(labels),
                       n_instances=len(samples) if spec.has_instances else 0,
                       refused=[wrong_format_message(p) for _, p in sorted(bad.items())])

    def read_instance(self, s: FileSample, raw_label: np.ndarray) -> Decoded | None:
        if s.instance is None:
            return None
        st = s.instance.stat()
        polygons = _polygons(str(s.instance), st.st_mtime_ns, st.st_size)
        return Decoded(instance_map(raw_label, polygons.get(s.id, [])), f"polygons of {s.instance.name}", None)


def load(root: Path | str, split: str, spec: DatasetSpec, preprocess: Preprocess | None = None) -> Any:
    """Open a split in whichever of the two layouts ``root`` holds (the ``LOADERS`` entry ``cocostuff``)."""
    root = Path(root)
    if is_spade_layout(root):
        return CustomDataset(root, split, spec, preprocess)  # type: ignore[arg-type]
    return CocoStuffOfficialDataset(root, split, spec, preprocess)


def check(root: Path | str, split: str, spec: DatasetSpec, *, max_problems: int = 100) -> LayoutSummary:
    """Scan a split for ``bench data check``, in whichever layout ``root`` holds."""
    root = Path(root)
    if is_spade_layout(root):
        return as_summary(custom_check_split(root, split, spec, max_problems=max_problems),  # type: ignore[arg-type]
                          "cocostuff (SPADE)")
    return CocoStuffOfficialDataset.check_split(root, split, spec, max_problems=max_problems)
