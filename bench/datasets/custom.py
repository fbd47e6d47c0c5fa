"""Loader for SPADE's "custom" on-disk layout, and a whole-split checker.

Layout::

    ROOT/train_img/   *.png | *.jpg     photos
    ROOT/train_label/ *.png             one channel, class ids 0..num_classes-1, ignore_index = unlabeled
    ROOT/train_inst/  *.png             optional, instance ids (8- or 16-bit)
    ROOT/val_img/ ...                   same for the validation split

Files are paired by stem (``train_img/a.jpg`` with ``train_label/a.png``). Photos may be in any of
:data:`~bench.datasets.io.IMAGE_EXTENSIONS` and any PIL mode (see :mod:`bench.datasets.io`); label and
instance maps must be PNGs, and a map in another format is refused by name. EXIF orientation follows
the ``"pair"`` policy of :func:`~bench.datasets.io.read_pair` for the custom layout (tags applied when
photo and maps agree, the sample refused when they differ); an official dataset in SPADE's layout
(COCO-Stuff) decodes stored pixels, as its labels were made on them.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset

from bench.datasets.io import (
    IMAGE_EXTENSIONS,
    MAP_EXTENSIONS,
    Decoded,
    ExifPolicy,
    check_label_ids,
    check_same_size,
    label_histogram,
    other_format_files,
    read_pair,
    unknown_label_ids,
    wrong_format_message,
)
from bench.datasets.spec import DatasetSpec
from bench.datasets.transforms import Preprocess, apply, plan
from bench.errors import ConfigError, DataError

Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")
LAYOUT_HINT = (
    "expected the custom layout ROOT/{train,val}_{img,label}/ (+ optional _inst/), files paired by stem"
)
#: Why an instance map is read, and how not to, for messages about missing instance files.
INSTANCE_WHY = (
    "the dataset spec says it has instance maps and a config with no_instance=false reads them; "
    "add them, or --set no_instance=true if the method does not need them"
)


class Sample(TypedDict):
    """What ``CustomDataset[i]`` returns."""

    image: torch.Tensor  # float32 [3, H, W] in [-1, 1]
    label: torch.Tensor  # int64 [1, H, W], class ids and ignore_index
    instance: torch.Tensor  # int64 [1, H, W], zeros when the dataset has no instance maps
    id: str  # file stem
    path: str  # label file path


@dataclass(frozen=True)
class SampleFiles:
    """The files of one sample."""

    id: str
    image: Path
    label: Path
    instance: Path | None


@dataclass(frozen=True)
class SplitListing:
    """Files found in one split, paired by stem, and those that found no partner."""

    samples: list[SampleFiles]
    unpaired: list[str]  # one human-readable line per unpaired file
    instance_dir: Path | None
    refused: list[str] = field(default_factory=list)  # files in a format that is not read, one line each


def split_dirs(root: Path, split: str) -> tuple[Path, Path, Path]:
    """The image, label and instance folders of ``split`` under ``root``."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")
    return root / f"{split}_img", root / f"{split}_label", root / f"{split}_inst"


def _by_stem(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for p in sorted(folder.iterdir()):
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in extensions:
            continue  # stray files (Thumbs.db, .DS_Store, notes) are not samples
        if p.stem in files:
            raise DataError(
                f"{p}: two files share the stem {p.stem!r} ({files[p.stem].name}, {p.name}); "
                "keep one file per sample"
            )
        files[p.stem] = p
    return files


def list_split(root: Path | str, split: str, spec: DatasetSpec) -> SplitListing:
    """Pair the files of one split by stem.

    Args:
        root: Dataset root holding ``{split}_img`` etc.
        split: ``"train"`` or ``"val"``.
        spec: The dataset; instance maps are read only when ``spec.has_instances``.

    Returns:
        The paired samples (sorted by stem), a line per unpaired file, and a line per file in a
        format that is not read (a label ``a.jpg``, a photo ``a.heic``): those are named, never
        reported as missing.

    Raises:
        DataError: A required folder is missing, or a folder holds two files with one stem.
    """
    root = Path(root)
    img_dir, label_dir, inst_dir = split_dirs(root, split)
    for d in (img_dir, label_dir):
        if not d.is_dir():
            raise DataError(f"{d}: missing split folder; {LAYOUT_HINT}")
    if spec.has_instances and not inst_dir.is_dir():
        raise DataError(f"{inst_dir}: missing split folder ({INSTANCE_WHY}); {LAYOUT_HINT}")
    images = _by_stem(img_dir, IMAGE_EXTENSIONS)
    labels = _by_stem(label_dir, MAP_EXTENSIONS)
    insts = _by_stem(inst_dir, MAP_EXTENSIONS) if spec.has_instances else {}
    bad_labels = other_format_files(label_dir, labels)
    bad_insts = other_format_files(inst_dir, insts) if spec.has_instances else {}
    refused = [wrong_format_message(p, "label") for _, p in sorted(bad_labels.items())]
    refused += [wrong_format_message(p, "instance") for _, p in sorted(bad_insts.items())]
    odd_photos = {p.stem: p for p in sorted(img_dir.iterdir()) if p.is_file() and not p.name.startswith(".")
                  and p.suffix.lower() not in IMAGE_EXTENSIONS}

    unpaired = [
        f"{images[s]} has no label {label_dir / (s + '.png')}"
        for s in sorted(images.keys() - labels.keys() - bad_labels.keys())
    ]
    for s in sorted(labels.keys() - images.keys()):
        if s in odd_photos:
            refused.append(f"{odd_photos[s]}: photo format {odd_photos[s].suffix} is not read (readable: "
                           f"{' '.join(IMAGE_EXTENSIONS)}); convert it to PNG or JPEG")
        else:
            unpaired.append(f"{labels[s]} has no image in {img_dir}")
    if spec.has_instances:
        unpaired += [
            f"{labels[s]} has no instance map {inst_dir / (s + '.png')} ({INSTANCE_WHY})"
            for s in sorted(labels.keys() - insts.keys() - bad_insts.keys())
        ]
        unpaired += [f"{insts[s]} has no label in {label_dir}"
                     for s in sorted(insts.keys() - labels.keys() - bad_labels.keys())]
    stems = sorted(images.keys() & labels.keys() & (insts.keys() if spec.has_instances else labels.keys()))
    samples = [SampleFiles(s, images[s], labels[s], insts.get(s)) for s in stems]
    return SplitListing(samples, unpaired, inst_dir if spec.has_instances else None, refused)


def exif_policy(spec: DatasetSpec) -> ExifPolicy:
    """``"pair"`` for a user's dataset (layout ``custom``); ``"ignore"`` for an official dataset in SPADE's layout."""
    return "pair" if spec.layout == "custom" else "ignore"


def resolve_index(index: int | tuple[int, int], n: int) -> tuple[int, np.random.Generator | None]:
    """``ds[i]`` (evaluation: no randomness) or ``ds[i, aug_seed]`` (augmentation drawn from the seed)."""
    if isinstance(index, tuple):
        i, aug_seed = index
        rng: np.random.Generator | None = np.random.default_rng(int(aug_seed))
    else:
        i, rng = index, None
    i = int(i)
    if not -n <= i < n:
        raise IndexError(f"index {i} out of range for {n} samples")
    return i, rng


def preprocessed_sample(preprocess: Preprocess, image: np.ndarray, label: np.ndarray, instance: np.ndarray | None,
                        rng: np.random.Generator | None, *, sample_id: str, image_path: Path,
                        label_path: Path) -> Sample:
    """One crop/flip plan applied to image, label and instance map, as tensors in SPADE's conventions."""
    pl = plan(preprocess, (image.shape[1], image.shape[0]), rng, path=image_path)
    image = apply(image, pl, kind="image")
    label = apply(label, pl, kind="label")
    # Scale like SPADE's ToTensor + Normalize(0.5, 0.5): x / 255 * 2 - 1.
    image_t = torch.from_numpy(image).permute(2, 0, 1).to(torch.float32).div_(127.5).sub_(1.0)
    label_t = torch.from_numpy(label.astype(np.int64))[None]
    if instance is not None:
        instance_t = torch.from_numpy(apply(instance, pl, kind="label").astype(np.int64))[None]
    else:
        instance_t = torch.zeros_like(label_t)
    return {"image": image_t, "label": label_t, "instance": instance_t, "id": sample_id, "path": str(label_path)}


class CustomDataset(Dataset[Sample]):
    """A split of a dataset in the custom layout, preprocessed as SPADE does.

    ``dataset[i]`` is deterministic (evaluation: centred crop, no flip). ``dataset[i, aug_seed]``
    draws the crop and flip from ``np.random.default_rng(aug_seed)``, so a training run that
    records its seeds can be reproduced and resumed exactly.

    Args:
        root: Dataset root.
        split: ``"train"`` or ``"val"``.
        spec: Facts about the dataset (classes, ignore index, instances).
        preprocess: Resize / crop / flip options; defaults to SPADE's (resize 286, crop 256).

    Raises:
        DataError: Missing folder or unpaired files (at construction); unreadable, mis-sized or
            out-of-range files (when the sample is read).
    """

    def __init__(
        self, root: Path | str, split: Split, spec: DatasetSpec, preprocess: Preprocess | None = None
    ) -> None:
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.preprocess = preprocess if preprocess is not None else Preprocess()
        listing = list_split(self.root, split, spec)
        if listing.refused:
            n = len(listing.refused)
            more = f" (and {n - 1} more; run `bench data check` for all)" if n > 1 else ""
            raise DataError(f"{listing.refused[0]}{more}")
        if listing.unpaired:
            n = len(listing.unpaired)
            more = f" (and {n - 1} more; run `bench data check` for all)" if n > 1 else ""
            raise DataError(f"unpaired file: {listing.unpaired[0]}{more}; {LAYOUT_HINT}")
        if not listing.samples:
            raise DataError(f"{self.root}: split {split!r} has no samples; {LAYOUT_HINT}")
        self.samples = listing.samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int | tuple[int, int]) -> Sample:
        i, rng = resolve_index(index, len(self.samples))
        files = self.samples[i]

        img, lab, inst = load_files(files, exif_policy(self.spec))
        image, label = img.array, lab.array
        check_label_ids(label, self.spec, files.label)
        instance = inst.array if inst is not None else None

        return preprocessed_sample(self.preprocess, image, label, instance, rng, sample_id=files.id,
                                   image_path=files.image, label_path=files.label)


def load_files(files: SampleFiles, exif: ExifPolicy) -> tuple[Decoded, Decoded, Decoded | None]:
    """Decode one sample's files (:func:`~bench.datasets.io.read_pair`) and check that their sizes agree.

    Raises:
        DataError: A file is unreadable, orientation tags disagree, or sizes differ.
    """
    img, lab, inst = read_pair(files.image, files.label, files.instance, exif=exif)
    size = (img.array.shape[1], img.array.shape[0])
    check_same_size(size, (lab.array.shape[1], lab.array.shape[0]), files.image, files.label)
    if inst is not None and files.instance is not None:
        check_same_size(size, (inst.array.shape[1], inst.array.shape[0]), files.image, files.instance)
    return img, lab, inst


class DecodeTally:
    """Counts of the stored formats seen and the conversions done while decoding a split."""

    def __init__(self, exif: ExifPolicy) -> None:
        self.exif = exif
        self.images: Counter[str] = Counter()
        self.labels: Counter[str] = Counter()
        self.instances: Counter[str] = Counter()
        self.conversions: Counter[str] = Counter()

    def add(self, image: Decoded, label: Decoded | None, instance: Decoded | None) -> None:
        """Count one decoded sample (``label`` None: a label built from several files, not counted here)."""
        for d, counter, noun in ((image, self.images, "photos"), (label, self.labels, "labels"),
                                 (instance, self.instances, "instance maps")):
            if d is None:
                continue
            counter[d.source] += 1
            if d.conversion:
                self.conversions[f"{noun} {d.conversion}"] += 1
            if d.rotated:
                self.conversions[f"{noun} EXIF-rotated (orientation {d.orientation})"] += 1
            elif d.orientation != 1 and self.exif == "ignore":
                self.conversions[f"{noun} with an EXIF orientation tag: ignored (labels follow stored pixels)"] += 1

    def fill(self, summary: SplitSummary) -> None:
        """Write the counts into ``summary``'s ``*_formats`` and ``conversions`` fields, most common first."""
        summary.image_formats = dict(self.images.most_common())
        summary.label_formats = dict(self.labels.most_common())
        summary.instance_formats = dict(self.instances.most_common())
        summary.conversions = dict(self.conversions.most_common())


@dataclass
class SplitSummary:
    """What :func:`check_split` found in one split; ``ok`` is False when anything needs fixing."""

    root: str
    split: str
    n_images: int = 0
    n_labels: int = 0
    n_instances: int = 0
    n_pairs: int = 0
    sizes: dict[str, int] = field(default_factory=dict)  # "WxH" -> number of samples
    label_histogram: dict[int, int] = field(default_factory=dict)  # id -> pixels, over the split
    unknown_ids: dict[int, int] = field(default_factory=dict)  # id -> number of label files holding it
    unpaired: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # unreadable / refused files, size mismatches, bad ids
    # What was decoded: stored format ("PNG I;16 16-bit", "JPEG RGB 8-bit") -> number of files.
    image_formats: dict[str, int] = field(default_factory=dict)
    label_formats: dict[str, int] = field(default_factory=dict)
    instance_formats: dict[str, int] = field(default_factory=dict)
    # Conversions done while decoding ("photos 16-bit grey -> 8-bit RGB", "photos RGBA: alpha dropped",
    # "photos EXIF-rotated (orientation 6)") -> number of files.
    conversions: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.unpaired or self.problems or self.unknown_ids) and self.n_pairs > 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (dict keys become strings in JSON)."""
        return {**asdict(self), "ok": self.ok}


def check_split(
    root: Path | str, split: Split, spec: DatasetSpec, *, max_problems: int = 100
) -> SplitSummary:
    """Read every file of a split and summarise it without stopping at the first problem.

    Args:
        root: Dataset root in the custom layout.
        split: ``"train"`` or ``"val"``.
        spec: The dataset the files should match.
        max_problems: Stop recording problem lines after this many (counts stay exact).

    Returns:
        Counts, sizes, a label histogram over all pixels, unknown ids, unpaired files, problems
        (refused files first), and the formats decoded and conversions done.

    Raises:
        DataError: A split folder is missing, so there is nothing to scan.
    """
    root = Path(root)
    listing = list_split(root, split, spec)
    img_dir, label_dir, _ = split_dirs(root, split)
    summary = SplitSummary(root=str(root), split=split, unpaired=listing.unpaired)
    exif = exif_policy(spec)
    tally = DecodeTally(exif)
    summary.n_images = sum(1 for p in img_dir.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    summary.n_labels = sum(1 for p in label_dir.iterdir() if p.suffix.lower() in MAP_EXTENSIONS)
    if listing.instance_dir is not None:
        summary.n_instances = sum(
            1 for p in listing.instance_dir.iterdir() if p.suffix.lower() in MAP_EXTENSIONS
        )
    summary.n_pairs = len(listing.samples)

    sizes: Counter[str] = Counter()
    hist: Counter[int] = Counter()
    unknown: Counter[int] = Counter()
    n_problems = 0

    def problem(msg: str) -> None:
        nonlocal n_problems
        n_problems += 1
        if n_problems <= max_problems:
            summary.problems.append(msg)

    for line in listing.refused:
        problem(line)
    for s in listing.samples:
        try:
            img, lab, inst = load_files(s, exif)  # decode fully: truncation only shows when pixels are read
        except DataError as e:
            problem(str(e))
            continue
        tally.add(img, lab, inst)
        label = lab.array
        sizes[f"{img.array.shape[1]}x{img.array.shape[0]}"] += 1
        hist.update(label_histogram(label))
        bad = unknown_label_ids(label, spec)
        unknown.update(bad)
        if bad:
            problem(
                f"{s.label}: label ids {', '.join(map(str, bad[:8]))} are not classes (0..{spec.num_classes - 1})"
            )
    if n_problems > max_problems:
        summary.problems.append(f"... and {n_problems - max_problems} more problems")
    summary.sizes = dict(sizes.most_common())
    summary.label_histogram = dict(sorted(hist.items()))
    summary.unknown_ids = dict(sorted(unknown.items()))
    tally.fill(summary)
    return summary
