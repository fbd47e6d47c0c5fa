"""Facts about a dataset: classes, label conventions, native size, instance maps."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class DatasetSpec:
    """What every consumer of a dataset needs to know, stated once.

    Label ids as the loader returns them are ``0 .. num_classes - 1`` for real classes and
    ``ignore_index`` for unlabeled pixels ("dontcare"). How a method turns that into its input
    channels (SPADE's extra dontcare channel, OASIS's +1 shift) lives with the method.
    """

    name: str
    class_names: tuple[str, ...]
    ignore_index: int | None = 255
    native_size: tuple[int, int] = (256, 256)  # (H, W) at which images are generated and scored
    has_instances: bool = False
    thing_classes: tuple[int, ...] = ()  # countable classes whose instances are separated
    layout: str = "custom"  # on-disk layout the loader reads
    eval_class_names: tuple[str, ...] | None = None  # classes scored by the segmenter, if different
    extra: dict[str, object] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        if not self.class_names:
            raise ValueError("a dataset needs at least one class")
        if self.ignore_index is not None and 0 <= self.ignore_index < len(self.class_names):
            raise ValueError(
                f"ignore_index {self.ignore_index} collides with a class id (0..{len(self.class_names) - 1})"
            )
        if any(not 0 <= c < len(self.class_names) for c in self.thing_classes):
            raise ValueError("thing_classes must be class ids")

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @classmethod
    def tiny(cls, num_classes: int = 5, image_size: tuple[int, int] = (32, 32), *, instances: bool = True) -> DatasetSpec:
        """A small spec for unit tests."""
        return cls(
            name="tiny",
            class_names=tuple(f"class{i}" for i in range(num_classes)),
            native_size=image_size,
            has_instances=instances,
            thing_classes=(num_classes - 1,) if instances else (),
        )
