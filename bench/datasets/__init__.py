"""Datasets: a registry of :class:`DatasetSpec` by name, and loaders by on-disk layout.

Adding a real dataset takes a spec and, when its files are not in SPADE's custom layout, a loader::

    DATASETS.add("cityscapes", DatasetSpec(name="cityscapes", class_names=(...), layout="cityscapes"))
    LOADERS.register_lazy("cityscapes", "bench.datasets.cityscapes:CityscapesDataset")

A loader is a class called as ``Loader(root, split, spec, preprocess)`` that returns the samples
:class:`bench.datasets.custom.CustomDataset` returns. Loaders are registered lazily so that listing
datasets never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.datasets.spec import DatasetSpec
from bench.datasets.synthetic import SYNTHETIC_SPEC, ensure_synthetic, write_synthetic
from bench.registry import Registry

if TYPE_CHECKING:
    from torch.utils.data import Dataset

    from bench.datasets.transforms import Preprocess

__all__ = [
    "DATASETS",
    "check_dataset",
    "check_split",
    "LOADERS",
    "SYNTHETIC_SPEC",
    "DatasetSpec",
    "ensure_synthetic",
    "open_split",
    "write_synthetic",
]

DATASETS: Registry[DatasetSpec] = Registry("dataset")
LOADERS: Registry[type] = Registry("dataset layout")

LOADERS.register_lazy("custom", "bench.datasets.custom:CustomDataset")
DATASETS.add("synthetic", SYNTHETIC_SPEC)


def open_split(
    dataset: DatasetSpec | str, root: Path | str, split: str, preprocess: Preprocess | None = None
) -> Dataset[Any]:
    """Open one split of a dataset with the loader its spec's ``layout`` names.

    Args:
        dataset: A spec, or the name of a registered one.
        root: Where the dataset's files are (for ``synthetic``, see :func:`ensure_synthetic`).
        split: ``"train"`` or ``"val"``.
        preprocess: Resize / crop / flip options; the loader's default when None.

    Returns:
        A map-style dataset: ``ds[i]`` for evaluation, ``ds[i, aug_seed]`` for augmented training.
    """
    spec = DATASETS.get(dataset) if isinstance(dataset, str) else dataset
    loader = LOADERS.get(spec.layout)
    ds: Dataset[Any] = loader(root, split, spec, preprocess)
    return ds


from bench.datasets.real import check_dataset, check_split  # noqa: E402  (registers ade20k, coco, cityscapes, celebamask)
