"""Cityscapes (fine annotations) in its official layout.

Layout (``leftImg8bit_trainvaltest.zip`` and ``gtFine_trainvaltest.zip`` unpacked under ROOT)::

    ROOT/leftImg8bit/{train,val}/<city>/<city>_<seq>_<frame>_leftImg8bit.png
    ROOT/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png     8-bit label ids 0..33
    ROOT/gtFine/{train,val}/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png  16-bit: id, or id*1000+k

Files are paired by ``<city>_<seq>_<frame>`` (SPADE's ``paths_match``), which is also the sample id.
Other gtFine files (``_color.png``, ``_polygons.json``, ``_labelTrainIds.png``) are ignored.

Label ids: the generators see the 35 label ids (SPADE's and OASIS's ``label_nc``: ids 0..33 of the
Cityscapes label table, id 34 is never used, and "license plate" (id -1) is never written to
``labelIds``). The segmenters score the 19 train ids: ``extra["eval_label_map"]`` maps every label id
to its train id (255 = ignored in evaluation), read from ``cityscapesscripts.helpers.labels``, the
table the dataset's own tools use, never a hand-written copy.
"""

from __future__ import annotations

from pathlib import Path

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
from bench.errors import ConfigError

try:
    from cityscapesscripts.helpers.labels import labels as _CS_LABELS
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ConfigError(
        "the Cityscapes loader needs the label table of the `cityscapesscripts` package; "
        "install it with `pip install 'cityscapesscripts>=2.2,<2.4'`"
    ) from e

NUM_LABEL_IDS = 35  # SPADE/OASIS label_nc; ids 0..33 are used, 34 is an empty channel
UNUSED_NAME = "unused"

_BY_ID = {lab.id: lab for lab in _CS_LABELS if lab.id >= 0}
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(
    _BY_ID[i].name if i in _BY_ID else UNUSED_NAME for i in range(NUM_LABEL_IDS)
)
#: label id -> train id (0..18), 255 for ids not scored.
EVAL_LABEL_MAP: dict[int, int] = {
    i: (_BY_ID[i].trainId if i in _BY_ID and 0 <= _BY_ID[i].trainId < 255 else 255) for i in range(NUM_LABEL_IDS)
}
CITYSCAPES_TRAIN_CLASSES: tuple[str, ...] = tuple(
    lab.name for lab in sorted((lab for lab in _BY_ID.values() if 0 <= lab.trainId < 255), key=lambda lab: lab.trainId)
)
THING_IDS: tuple[int, ...] = tuple(sorted(i for i, lab in _BY_ID.items() if lab.hasInstances))

SPEC = DatasetSpec(
    name="cityscapes",
    class_names=CITYSCAPES_CLASSES,
    ignore_index=255,  # never present in labelIds; kept so a stray 255 is reported, not taken for a class
    native_size=(256, 512),
    has_instances=True,
    thing_classes=THING_IDS,
    layout="cityscapes",
    eval_class_names=CITYSCAPES_TRAIN_CLASSES,
    extra={
        "segmenter": "drn105_cityscapes",
        "eval_label_map": EVAL_LABEL_MAP,
        "label_files": "gtFine *_labelIds.png values are the ids 0..33; *_instanceIds.png id or id*1000+k",
        "splits": {"train": "leftImg8bit/train (2,975)", "val": "leftImg8bit/val (500)"},
    },
)

HINT = (
    "expected ROOT/leftImg8bit/{train,val}/<city>/*_leftImg8bit.png and "
    "ROOT/gtFine/{train,val}/<city>/*_gtFine_{labelIds,instanceIds}.png"
)


def _key(stem: str) -> str:
    """``<city>_<seq>_<frame>`` of a Cityscapes file stem."""
    return "_".join(stem.split("_")[:3])


class CityscapesDataset(LayoutDataset):
    """Cityscapes train or val split with label ids and (when the spec says so) instance ids."""

    layout = "cityscapes"
    hint = HINT

    @classmethod
    def list_split(cls, root: Path, split: str, spec: DatasetSpec) -> Listing:
        img_dir = require_dir(root / "leftImg8bit" / split, HINT)
        gt_dir = require_dir(root / "gtFine" / split, HINT)
        images = {_key(k): p for k, p in files_by_stem(img_dir, IMAGE_EXTENSIONS, recursive=True, suffix="_leftImg8bit").items()}
        labels = {_key(k): p for k, p in files_by_stem(gt_dir, (".png",), recursive=True, suffix="_gtFine_labelIds").items()}
        bad = other_format_files(gt_dir, labels, recursive=True, suffix="_gtFine_labelIds", key=_key)
        refused = [wrong_format_message(p, "label") for _, p in sorted(bad.items())]
        insts = None
        if spec.has_instances:  # only when the method's config reads instance maps (see bench.preflight)
            insts = {_key(k): p for k, p in files_by_stem(gt_dir, (".png",), recursive=True, suffix="_gtFine_instanceIds").items()}
            bad_insts = other_format_files(gt_dir, insts, recursive=True, suffix="_gtFine_instanceIds", key=_key)
            refused += [wrong_format_message(p, "instance") for _, p in sorted(bad_insts.items())]
            bad = {**bad, **bad_insts}
        keys, unpaired = pair(images, labels, gt_dir, img_dir, insts, gt_dir, refused=bad)
        samples = [FileSample(k, images[k], labels[k], insts[k] if insts is not None else None) for k in keys]
        return Listing(samples, unpaired, n_images=len(images), n_labels=len(labels),
                       n_instances=len(insts) if insts is not None else 0, refused=refused)


def load(root: Path | str, split: str, spec: DatasetSpec, preprocess: Preprocess | None = None) -> CityscapesDataset:
    """Open a split (the ``LOADERS`` entry of layout ``cityscapes``)."""
    return CityscapesDataset(root, split, spec, preprocess)


def check(root: Path | str, split: str, spec: DatasetSpec, *, max_problems: int = 100) -> LayoutSummary:
    """Scan a split for ``bench data check``."""
    return CityscapesDataset.check_split(root, split, spec, max_problems=max_problems)
