"""The four real datasets of the papers, registered by name, and ``bench data check`` for every layout.

=============  ==============  ==========================================  =====================
dataset        layout          where the files come from                   segmenter
=============  ==============  ==========================================  =====================
``ade20k``     ``ade20k``      ADEChallengeData2016.zip                    ``upernet101_ade20k``
``coco``       ``cocostuff``   SPADE's {train,val}_{img,label,inst} or     ``deeplabv2_cocostuff``
                               COCO 2017 + stuffthingmaps_trainval2017
``cityscapes`` ``cityscapes``  leftImg8bit + gtFine                        ``drn105_cityscapes``
``celebamask`` ``celebamask``  CelebAMask-HQ.zip or SEAN's CelebA-HQ/      ``unet_celebamask``
=============  ==============  ==========================================  =====================

Each layout module documents its files, its label ids and each method family's convention for them.
Specs and loaders are registered lazily (``"module:attr"``), so listing datasets imports neither torch
nor the layout modules; ``DATASETS.get(name)`` imports the one module it needs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.datasets import DATASETS, LOADERS

if TYPE_CHECKING:
    from bench.datasets.layouts import LayoutSummary
    from bench.datasets.spec import DatasetSpec

#: dataset name -> layout module (its ``SPEC``, ``load`` and ``check``)
REAL: dict[str, str] = {
    "ade20k": "bench.datasets.ade20k",
    "coco": "bench.datasets.cocostuff",
    "cityscapes": "bench.datasets.cityscapes",
    "celebamask": "bench.datasets.celebamask",
}
#: layout name (``DatasetSpec.layout``) -> module with ``load(root, split, spec, preprocess)`` and ``check(...)``
LAYOUTS: dict[str, str] = {
    "ade20k": "bench.datasets.ade20k",
    "cocostuff": "bench.datasets.cocostuff",
    "cityscapes": "bench.datasets.cityscapes",
    "celebamask": "bench.datasets.celebamask",
}

for _name, _module in REAL.items():
    if _name not in DATASETS:
        DATASETS.register_lazy(_name, f"{_module}:SPEC")
for _layout, _module in LAYOUTS.items():
    if _layout not in LOADERS:
        LOADERS.register_lazy(_layout, f"{_module}:load")

#: The splits ``bench data check`` scans; every layout names its evaluation split ``val``.
CHECK_SPLITS: tuple[str, ...] = ("train", "val")


def check_split(root: Path | str, split: str, spec: DatasetSpec, *, max_problems: int = 100) -> LayoutSummary:
    """Scan one split of ``spec``'s layout under ``root`` (the custom layout included).

    Returns:
        A :class:`~bench.datasets.layouts.LayoutSummary`: counts, sizes, label histogram, unknown ids,
        unpaired files, problems; ``.describe()`` for text, ``.first_problem()`` for the failing line.

    Raises:
        DataError: A folder the layout needs is missing.
    """
    from bench.datasets.layouts import as_summary

    if spec.layout == "custom":
        from bench.datasets.custom import check_split as custom_check

        return as_summary(custom_check(root, split, spec, max_problems=max_problems), "custom")  # type: ignore[arg-type]
    module = LAYOUTS.get(spec.layout)
    if module is None:
        from bench.errors import ConfigError

        raise ConfigError(f"dataset {spec.name!r} has layout {spec.layout!r}, which `bench data check` does not know; "
                          f"known: custom, {', '.join(LAYOUTS)}")
    summary: LayoutSummary = importlib.import_module(module).check(root, split, spec, max_problems=max_problems)
    return summary


def check_dataset(root: Path | str, spec: DatasetSpec, splits: tuple[str, ...] = CHECK_SPLITS) -> dict[str, Any]:
    """:func:`check_split` for each of ``splits``: ``{split: LayoutSummary}``."""
    return {split: check_split(root, split, spec) for split in splits}
