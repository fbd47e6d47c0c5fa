"""Shared machinery of the loaders for the datasets' official on-disk layouts.

Each layout module (:mod:`~bench.datasets.ade20k`, :mod:`~bench.datasets.cocostuff`,
:mod:`~bench.datasets.cityscapes`, :mod:`~bench.datasets.celebamask`) only says which files make a
sample and how its label files turn into dataset ids. Reading, size checks, SPADE preprocessing, the
sample dict and the whole-split scan behind ``bench data check`` live here, once, so every layout
returns exactly what :class:`bench.datasets.custom.CustomDataset` returns.

Photos and maps are decoded by :mod:`bench.datasets.io` (any photo mode -> RGB uint8; maps must be
PNG ids, and a label or instance file in another format is refused by name). EXIF orientation tags
are ignored in every official layout (policy ``"ignore"``): the datasets' labels were made on the
stored pixels, which is also what their official loaders read.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import ClassVar, NamedTuple

import numpy as np
from torch.utils.data import Dataset

from bench.datasets.custom import (
    INSTANCE_WHY,
    DecodeTally,
    Sample,
    SplitSummary,
    preprocessed_sample,
    resolve_index,
)
from bench.datasets.io import (
    IMAGE_EXTENSIONS,
    Decoded,
    ExifPolicy,
    check_same_size,
    decode_image,
    decode_map,
    label_histogram,
    unknown_label_ids,
)
from bench.datasets.spec import DatasetSpec
from bench.datasets.transforms import Preprocess
from bench.errors import ConfigError, DataError


@dataclass(frozen=True)
class FileSample:
    """The files of one sample in an official layout.

    Attributes:
        id: Unique name of the sample; generated images are saved as ``<id>.png``.
        image: The photo.
        label: The label file named in messages (for CelebAMask-HQ's per-part masks, the first part).
        instance: The instance map, when the layout has one.
        parts: CelebAMask-HQ only: ``(class id, mask file)`` pairs in painting order.
    """

    id: str
    image: Path
    label: Path
    instance: Path | None = None
    parts: tuple[tuple[int, Path], ...] = ()


@dataclass
class Listing:
    """The samples of one split, the files that found no partner, and file counts for the summary."""

    samples: list[FileSample]
    unpaired: list[str]
    n_images: int
    n_labels: int
    n_instances: int = 0
    refused: list[str] = field(default_factory=list)  # files in a format that is not read, one line each


@dataclass
class LayoutSummary(SplitSummary):
    """:class:`~bench.datasets.custom.SplitSummary` plus the layout it scanned and a text form."""

    layout: str = "custom"
    #: how the histogram's ids relate to the file values, when the layout shifts them (ADE20K: v -> v - 1)
    id_mapping: str = ""

    def first_problem(self) -> str:
        """The line ``bench data check`` fails with: the first problem, else the first unpaired file."""
        if self.problems:
            return self.problems[0]
        if self.unpaired:
            more = f" (and {len(self.unpaired) - 1} more unpaired files)" if len(self.unpaired) > 1 else ""
            return f"unpaired file: {self.unpaired[0]}{more}"
        if self.unknown_ids:
            return f"{self.root}: split {self.split!r} has unknown label ids {sorted(self.unknown_ids)}"
        return f"{self.root}: split {self.split!r} has no samples"

    def describe(self) -> str:
        """A few human-readable lines: counts, sizes, label histogram, unknown ids, unpaired files, problems."""
        lines = [
            f"{self.split} ({self.layout} layout, {self.root}): {self.n_pairs} samples "
            f"({self.n_images} images, {self.n_labels} labels"
            + (f", {self.n_instances} instance maps" if self.n_instances else "")
            + ")",
            "  sizes (WxH): " + (", ".join(f"{k} x{v}" for k, v in self.sizes.items()) or "none"),
        ]
        total = sum(self.label_histogram.values()) or 1
        top = sorted(self.label_histogram.items(), key=lambda kv: -kv[1])[:10]
        if self.id_mapping:
            lines.append(f"  label ids below are dataset ids, shifted from the file values ({self.id_mapping}); "
                         "unknown ids are file values")
        lines.append(
            f"  label ids ({len(self.label_histogram)} present): "
            + ", ".join(f"{k}: {100 * v / total:.1f}%" for k, v in top)
            + (" ..." if len(self.label_histogram) > 10 else "")
        )
        lines.append("  decoded photos: " + (", ".join(f"{k} x{v}" for k, v in self.image_formats.items()) or "none"))
        lines.append("  decoded labels: " + (", ".join(f"{k} x{v}" for k, v in self.label_formats.items()) or "none")
                     + ("; instance maps: " + ", ".join(f"{k} x{v}" for k, v in self.instance_formats.items())
                        if self.instance_formats else ""))
        lines.append("  conversions: " + ("; ".join(f"{v} {k}" for k, v in self.conversions.items()) or "none"))
        lines.append("  unknown ids: " + (", ".join(f"{k} (in {v} files)" for k, v in self.unknown_ids.items()) or "none"))
        lines.append(f"  unpaired files: {len(self.unpaired)}" + "".join(f"\n    {u}" for u in self.unpaired[:10]))
        lines.append(f"  problems: {len(self.problems)}" + "".join(f"\n    {p}" for p in self.problems[:10]))
        lines.append("  OK" if self.ok else "  NOT OK")
        return "\n".join(lines)


class Loaded(NamedTuple):
    """One sample read at its stored size (see :meth:`LayoutDataset.load`)."""

    image: np.ndarray  # [H, W, 3] uint8
    ids: np.ndarray  # [H, W] dataset ids
    instance: np.ndarray | None  # [H, W] instance ids
    unknown: list[int]  # file values that are no class (only when not checked)
    unknown_mask: np.ndarray | None  # pixels holding them
    decoded: tuple[Decoded, Decoded, Decoded | None]  # what decoding the photo, label and instance took


def files_by_stem(folder: Path, extensions: tuple[str, ...], *, recursive: bool = False,
                  suffix: str = "") -> dict[str, Path]:
    """Files of ``folder`` keyed by stem (minus ``suffix``); stray files (notes, .DS_Store) are skipped.

    Raises:
        DataError: Two files share a key.
    """
    files: dict[str, Path] = {}
    candidates = sorted(folder.rglob("*") if recursive else folder.iterdir())
    for p in candidates:
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in extensions:
            continue
        if suffix and not p.stem.endswith(suffix):
            continue
        key = p.stem[: len(p.stem) - len(suffix)] if suffix else p.stem
        if key in files:
            raise DataError(
                f"{p}: two files share the name {key!r} ({files[key]}, {p}); keep one file per sample"
            )
        files[key] = p
    return files


def pair(images: dict[str, Path], labels: dict[str, Path], label_dir: Path, image_dir: Path,
         instances: dict[str, Path] | None = None, instance_dir: Path | None = None, *,
         refused: Collection[str] = ()) -> tuple[list[str], list[str]]:
    """Keys present in all given maps (sorted) and one line per file without its partner.

    ``refused``: keys whose label or instance file is in a format that is not read; the caller names
    those files, so their photos are not also reported as having no label.
    """
    unpaired = [f"{images[k]} has no label in {label_dir}" for k in sorted(images.keys() - labels.keys() - set(refused))]
    unpaired += [f"{labels[k]} has no image in {image_dir}" for k in sorted(labels.keys() - images.keys())]
    keys = images.keys() & labels.keys()
    if instances is not None:
        unpaired += [f"{labels[k]} has no instance map in {instance_dir} ({INSTANCE_WHY})"
                     for k in sorted(labels.keys() - instances.keys() - set(refused))]
        unpaired += [f"{instances[k]} has no label in {label_dir}"
                     for k in sorted(instances.keys() - labels.keys() - set(refused))]
        keys &= instances.keys()
    return sorted(keys), unpaired


def require_dir(path: Path, hint: str, what: str = "folder") -> Path:
    """``path`` if it is a folder; else a one-line DataError naming it and the expected layout."""
    if not path.is_dir():
        raise DataError(f"{path}: missing {what}; {hint}")
    return path


def check_split_name(split: str, valid: tuple[str, ...], layout: str) -> None:
    if split not in valid:
        raise ConfigError(f"unknown split {split!r} for the {layout} layout; valid: {', '.join(valid)}")


class LayoutDataset(Dataset[Sample]):
    """A split of a dataset in an official layout, preprocessed as SPADE does.

    ``ds[i]`` is deterministic (evaluation: centred crop, no flip); ``ds[i, aug_seed]`` draws the
    crop and flip from ``np.random.default_rng(aug_seed)``, exactly as ``CustomDataset``.

    Subclasses implement :meth:`list_split` and override the reading hooks where their files differ:
    :meth:`read_label` (the file's values), :meth:`unknown_ids` (values that are no class),
    :meth:`to_ids` (file values -> dataset ids), :meth:`read_instance` and :meth:`align`. EXIF
    orientation tags are ignored (``exif = "ignore"``): official labels follow the stored pixels.

    Raises:
        DataError: Missing folder or unpaired files (at construction); unreadable, mis-sized or
            out-of-range files (when the sample is read).
    """

    layout: ClassVar[str]
    hint: ClassVar[str]
    splits: ClassVar[tuple[str, ...]] = ("train", "val")
    exif: ClassVar[ExifPolicy] = "ignore"

    def __init__(self, root: Path | str, split: str, spec: DatasetSpec, preprocess: Preprocess | None = None) -> None:
        self._setup(root, split, spec, preprocess)
        listing = self.listing
        if listing.refused:
            n = len(listing.refused)
            more = f" (and {n - 1} more; run `bench data check` for all)" if n > 1 else ""
            raise DataError(f"{listing.refused[0]}{more}")
        if listing.unpaired:
            n = len(listing.unpaired)
            more = f" (and {n - 1} more; run `bench data check` for all)" if n > 1 else ""
            raise DataError(f"unpaired file: {listing.unpaired[0]}{more}; {self.hint}")
        if not listing.samples:
            raise DataError(f"{self.root}: split {split!r} has no samples; {self.hint}")

    def _setup(self, root: Path | str, split: str, spec: DatasetSpec, preprocess: Preprocess | None) -> None:
        check_split_name(split, self.splits, self.layout)
        self.root = Path(root)
        self.split = split
        self.spec = spec
        self.preprocess = preprocess if preprocess is not None else Preprocess()
        self.listing = self.list_split(self.root, split, spec)
        self.samples = self.listing.samples

    @classmethod
    def unchecked(cls, root: Path | str, split: str, spec: DatasetSpec) -> LayoutDataset:
        """An instance that keeps unpaired files aside instead of refusing them (for :meth:`check_split`)."""
        self = cls.__new__(cls)
        self._setup(root, split, spec, None)
        return self

    # --- what a layout defines ----------------------------------------------------------------
    @classmethod
    def list_split(cls, root: Path, split: str, spec: DatasetSpec) -> Listing:
        """Pair the files of one split; raise DataError when a required folder is missing."""
        raise NotImplementedError

    def read_image(self, s: FileSample) -> Decoded:
        """The photo, RGB uint8 ``[H, W, 3]`` (stored pixels)."""
        return decode_image(s.image)

    def read_label(self, s: FileSample) -> Decoded:
        """The label file's values (before :meth:`to_ids`), ``[H, W]`` uint8 or uint16."""
        return decode_map(s.label, "label")

    def unknown_ids(self, raw: np.ndarray) -> list[int]:
        """File values that map to no class and are not the unlabeled value."""
        return unknown_label_ids(raw, self.spec)

    def valid_values(self) -> str:
        """The file values this layout accepts, for messages."""
        ignore = f" or {self.spec.ignore_index} (unlabeled)" if self.spec.ignore_index is not None else ""
        return f"0..{self.spec.num_classes - 1}{ignore}"

    def to_ids(self, raw: np.ndarray) -> np.ndarray:
        """File values -> dataset ids (``0..num_classes-1`` and ``ignore_index``)."""
        return raw

    def read_instance(self, s: FileSample, raw_label: np.ndarray) -> Decoded | None:
        """The instance map ``[H, W]`` (None when the sample has none or the spec reads none)."""
        return decode_map(s.instance, "instance") if s.instance is not None else None

    def align(self, image: np.ndarray, array: np.ndarray, s: FileSample, path: Path) -> np.ndarray:
        """Bring a label/instance map to the image's size, or refuse a mismatch (default: refuse)."""
        check_same_size((image.shape[1], image.shape[0]), (array.shape[1], array.shape[0]), s.image, path)
        return array

    # --- shared ---------------------------------------------------------------------------------
    def bad_ids_message(self, path: Path, bad: list[int]) -> str:
        shown = ", ".join(str(i) for i in bad[:8]) + (", ..." if len(bad) > 8 else "")
        return (
            f"{path}: label values {shown} are not classes of dataset {self.spec.name!r} "
            f"({self.layout} layout expects {self.valid_values()}); fix or re-export the label file"
        )

    def load(self, s: FileSample, *, check_ids: bool = True) -> Loaded:
        """Read one sample at its stored size.

        Raises:
            DataError: Unreadable file, size mismatch, or (with ``check_ids``) values that are no class.
        """
        img = self.read_image(s)
        image = img.array
        lab = self.read_label(s)
        raw = self.align(image, lab.array, s, s.label)
        bad = self.unknown_ids(raw)
        if bad and check_ids:
            raise DataError(self.bad_ids_message(s.label, bad))
        inst = self.read_instance(s, raw)
        instance = self.align(image, inst.array, s, s.instance or s.label) if inst is not None else None
        return Loaded(image, self.to_ids(raw), instance, bad, np.isin(raw, bad) if bad else None, (img, lab, inst))

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int | tuple[int, int]) -> Sample:
        i, rng = resolve_index(index, len(self.samples))
        s = self.samples[i]
        image, ids, instance, *_ = self.load(s)
        return preprocessed_sample(self.preprocess, image, ids, instance, rng, sample_id=s.id, image_path=s.image,
                                   label_path=s.label)

    @classmethod
    def check_split(cls, root: Path | str, split: str, spec: DatasetSpec, *, max_problems: int = 100) -> LayoutSummary:
        """Read every file of a split and summarise it without stopping at the first problem.

        The label histogram counts dataset ids (after :meth:`to_ids`); unknown ids are file values;
        refused files come first among the problems; formats and conversions are counted per file.

        Raises:
            DataError: A required folder is missing, so there is nothing to scan.
        """
        ds = cls.unchecked(root, split, spec)
        lst = ds.listing
        summary = LayoutSummary(root=str(ds.root), split=split, layout=cls.layout, unpaired=list(lst.unpaired),
                                n_images=lst.n_images, n_labels=lst.n_labels, n_instances=lst.n_instances,
                                n_pairs=len(lst.samples), id_mapping=str((spec.extra or {}).get("label_files", "")))
        sizes: Counter[str] = Counter()
        hist: Counter[int] = Counter()
        unknown: Counter[int] = Counter()
        tally = DecodeTally(cls.exif)
        n_problems = len(lst.refused)
        summary.problems.extend(lst.refused[:max_problems])
        for s in lst.samples:
            try:
                image, ids, _, bad, bad_mask, decoded = ds.load(s, check_ids=False)  # decodes fully: truncation shows
            except DataError as e:
                n_problems += 1
                if n_problems <= max_problems:
                    summary.problems.append(str(e))
                continue
            tally.add(*decoded)
            sizes[f"{image.shape[1]}x{image.shape[0]}"] += 1
            if bad:
                unknown.update(bad)
                n_problems += 1
                if n_problems <= max_problems:
                    summary.problems.append(ds.bad_ids_message(s.label, bad))
                ids = ids[~bad_mask]  # unknown values stay out of the id histogram
            hist.update(label_histogram(ids))
        if n_problems > max_problems:
            summary.problems.append(f"... and {n_problems - max_problems} more problems")
        summary.sizes = dict(sizes.most_common())
        summary.label_histogram = dict(sorted(hist.items()))
        summary.unknown_ids = dict(sorted(unknown.items()))
        tally.fill(summary)
        return summary


def count_files(folder: Path, extensions: tuple[str, ...] = IMAGE_EXTENSIONS, *, recursive: bool = False,
                suffix: str = "") -> int:
    """Number of files with one of ``extensions`` (and stem ending in ``suffix``) in ``folder``."""
    if not folder.is_dir():
        return 0
    it = folder.rglob("*") if recursive else folder.iterdir()
    return sum(1 for p in it if p.is_file() and p.suffix.lower() in extensions and p.stem.endswith(suffix))


def as_summary(summary: SplitSummary, layout: str) -> LayoutSummary:
    """Wrap a custom-layout summary so that every layout's summary can ``describe()`` itself."""
    return LayoutSummary(**asdict(summary), layout=layout)


__all__ = [
    "FileSample",
    "LayoutDataset",
    "LayoutSummary",
    "Listing",
    "Loaded",
    "as_summary",
    "count_files",
    "files_by_stem",
    "pair",
    "require_dir",
]
