"""ADE20K (MIT Scene Parsing, ``ADEChallengeData2016``) in its official layout.

Layout (``--data-root`` is the folder holding ``ADEChallengeData2016/``, or that folder itself)::

    ADEChallengeData2016/images/training/ADE_train_00000001.jpg       20,210 photos
    ADEChallengeData2016/annotations/training/ADE_train_00000001.png  8-bit, values 0..150
    ADEChallengeData2016/images/validation/ADE_val_00000001.jpg       2,000 photos ("val")
    ADEChallengeData2016/annotations/validation/ADE_val_00000001.png

Label ids, decided once here:

* **File values**: 0 = "other" (pixels outside the 150 classes), ``v`` in 1..150 = class ``v`` of
  ``objectInfo150`` (``wall`` = 1, ..., ``flag`` = 150).
* **DatasetSpec ids** (what the loader returns): class ``v`` -> id ``v - 1`` (0..149, the order of
  :data:`ADE20K_CLASSES`), "other" -> ``ignore_index`` 255. This is CSAIL's ``segm_transform`` and
  mmseg's ``reduce_zero_label``, so the UPerNet-101 segmenter's outputs 0..149 need no mapping and
  "other" is never scored.
* **OASIS** (``oasis_ids``: ``id + 1``, 255 -> 0) gets back the file values: 151 channels with
  "other" in channel 0 (weight 0 in its loss) -- exactly the official OASIS dataloader.
* **SPADE family** (SPADE, SEAN, pix2pixHD, RESAIL with ``contain_dontcare_label=True``, 151
  channels): the official ``ADE20KDataset.postprocess`` computes ``label - 1`` into a local variable
  and never returns it, so the released checkpoints were trained with the *file values* as channels:
  "other" in channel 0 and class ``v`` in channel ``v``, not SPADE's usual "dontcare in the last
  channel". The spec states this once as ``extra["dontcare_channel_first"] = True``; the SPADE-family
  encoder must then use the OASIS mapping (``id + 1``, 255 -> 0) instead of ``spade_ids`` (255 -> 150)
  for this dataset, or the official ``ade20k_pretrained`` generator sees every class one channel off.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.datasets.io import IMAGE_EXTENSIONS, other_format_files, wrong_format_message
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
from bench.datasets.transforms import Preprocess

# objectInfo150 order (the first name of each entry), = CSAIL's and SPADE's class order.
ADE20K_CLASSES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane", "grass",
    "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair",
    "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair",
    "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box",
    "column", "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
    "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table", "pillow",
    "screen door", "stairway", "river", "bridge", "bookcase", "blind", "coffee table", "toilet",
    "flower", "book", "hill", "bench", "countertop", "stove", "palm", "kitchen island", "computer",
    "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower",
    "chandelier", "awning", "streetlight", "booth", "television receiver", "airplane", "dirt track",
    "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
    "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle",
    "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle",
    "lake", "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light",
    "tray", "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower",
    "radiator", "glass", "clock", "flag",
)  # fmt: skip

OTHER_VALUE = 0  # file value of "other"
IGNORE = 255

SPEC = DatasetSpec(
    name="ade20k",
    class_names=ADE20K_CLASSES,
    ignore_index=IGNORE,
    native_size=(256, 256),
    has_instances=False,
    layout="ade20k",
    extra={
        "segmenter": "upernet101_ade20k",
        "label_files": "ADE PNG value v: 0 = other -> ignore_index 255, 1..150 -> v - 1",
        # SPADE's ADE20K postprocess bug: official SPADE-family checkpoints use the file values as channels.
        "dontcare_channel_first": True,
        "splits": {"train": "images/training (20,210)", "val": "images/validation (2,000)"},
    },
)

HINT = (
    "expected ADEChallengeData2016/{images,annotations}/{training,validation}/ (ADE_*.jpg with ADE_*.png) "
    "under --data-root, from ADEChallengeData2016.zip"
)
SPLIT_DIRS = {"train": "training", "val": "validation"}

# File value -> dataset id, as a lookup table over all 8-bit values (151..255 never occur in valid files).
_LUT = np.full(256, IGNORE, dtype=np.uint8)
_LUT[1:151] = np.arange(150, dtype=np.uint8)


def dataset_root(root: Path) -> Path:
    """``root/ADEChallengeData2016`` if present, else ``root`` (the folder itself was given)."""
    inner = root / "ADEChallengeData2016"
    return inner if inner.is_dir() else root


class ADE20KDataset(LayoutDataset):
    """ADE20K train (``training``) or val (``validation``) split; see the module docstring for ids."""

    layout = "ade20k"
    hint = HINT

    @classmethod
    def list_split(cls, root: Path, split: str, spec: DatasetSpec) -> Listing:
        base = dataset_root(root)
        img_dir = require_dir(base / "images" / SPLIT_DIRS[split], HINT)
        ann_dir = require_dir(base / "annotations" / SPLIT_DIRS[split], HINT)
        images = files_by_stem(img_dir, IMAGE_EXTENSIONS)
        labels = files_by_stem(ann_dir, (".png",))
        bad = other_format_files(ann_dir, labels)
        keys, unpaired = pair(images, labels, ann_dir, img_dir, refused=bad)
        samples = [FileSample(k, images[k], labels[k]) for k in keys]
        return Listing(samples, unpaired, n_images=len(images), n_labels=len(labels),
                       refused=[wrong_format_message(p) for _, p in sorted(bad.items())])

    def unknown_ids(self, raw: np.ndarray) -> list[int]:
        present = np.flatnonzero(np.bincount(raw.ravel(), minlength=256)) if raw.dtype == np.uint8 else np.unique(raw)
        return [int(v) for v in present if not 0 <= v <= len(ADE20K_CLASSES)]

    def valid_values(self) -> str:
        return f"0 (other) .. {len(ADE20K_CLASSES)}"

    def to_ids(self, raw: np.ndarray) -> np.ndarray:
        return _LUT[raw]  # values were checked to be 0..150, so the uint8 table covers them


def load(root: Path | str, split: str, spec: DatasetSpec, preprocess: Preprocess | None = None) -> ADE20KDataset:
    """Open a split (the ``LOADERS`` entry of layout ``ade20k``)."""
    return ADE20KDataset(root, split, spec, preprocess)


def check(root: Path | str, split: str, spec: DatasetSpec, *, max_problems: int = 100) -> LayoutSummary:
    """Scan a split for ``bench data check``."""
    return ADE20KDataset.check_split(root, split, spec, max_problems=max_problems)
