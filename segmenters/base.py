"""The interface every evaluation segmenter implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import torch


class Segmenter(ABC):
    """A frozen, pretrained semantic segmentation network used to score generated images.

    ``predict`` takes RGB images as float tensors in ``[0, 1]``, shape ``[B, 3, H, W]`` (any size;
    the segmenter does its own preprocessing exactly as its authors' evaluation code), and returns
    class ids ``[B, H, W]`` (int64) in the segmenter's evaluation label space, at the input size.
    """

    name: ClassVar[str]
    class_names: ClassVar[tuple[str, ...]]
    ignore_index: ClassVar[int] = 255
    #: (H, W) the ``upsampled`` protocol resizes generated images to (bicubic) before ``predict``:
    #: the resolution the segmenter was published at. None: the segmenter has no single size (it
    #: rescales per image itself, or its dataset's images vary), so ``upsampled`` equals ``native``.
    eval_size: tuple[int, int] | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @abstractmethod
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Segment a batch of images in [0, 1]; returns int64 labels at the input resolution."""

    def identity(self) -> dict[str, str]:
        """What was used, for the run record (name, checkpoint sha256, protocol notes)."""
        return {"name": self.name}
