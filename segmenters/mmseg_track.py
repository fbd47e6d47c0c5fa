"""The mmsegmentation track: modern segmenters from mmseg's model zoo, clearly apart from the papers' ones.

**Numbers from this track are not comparable with the papers' mIoU.** The papers scored with
UPerNet-101 (CSAIL), DRN-D-105 and DeepLabV2 (:mod:`segmenters.papers`); those networks are not in
mmseg and their weights do not load into mmseg configs. This track offers mmseg's closest
equivalents, built from the configs shipped inside the installed mmseg package:

=======================================  ==============================================================  =======
name                                     mmseg config (``mmseg/.mim/configs/``)                            classes
=======================================  ==============================================================  =======
``mmseg_upernet_r101_ade20k``            ``upernet/upernet_r101_4xb4-160k_ade20k-512x512.py``              150
``mmseg_deeplabv3_r101_cocostuff164k``   ``deeplabv3/deeplabv3_r101-d8_4xb4-320k_coco-stuff164k-512x512.py``  171
``mmseg_deeplabv3plus_r101_cityscapes``  ``deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py``  19
=======================================  ==============================================================  =======

Protocol: images are segmented at their native (generated) resolution -- the configs' test-pipeline
``Resize`` to 512 or 1024 rows is *not* applied -- through the model's own ``data_preprocessor``
(BGR->RGB, ImageNet mean/std on 0..255) and ``test_step`` (``mode='whole'``), after rounding to 8 bits
as a saved PNG would be (:func:`segmenters.mmseg_model.predict_labels`). Checkpoints come from the
weights registry and load with ``weights_only=True`` and ``strict=True``.

Class lists are pinned here, never read from a checkpoint: ADE20K's 150 classes in our order with
mmseg's spelling (``"bed "`` keeps its trailing space, as in mmseg's ``ADE20KDataset``), the 171
annotated COCO-Stuff classes, and the 19 Cityscapes train ids from ``cityscapesscripts``. A checkpoint
that names its classes must agree, or it is refused.

Label ids: ``dataset_label_map`` maps the benchmark dataset's ids to this segmenter's ids where they
differ. Only COCO-Stuff needs one: its 182 ids (0..181) lose the 11 never-annotated thing ids
(:data:`bench.datasets.cocostuff.UNANNOTATED_IDS` -> 255) and the rest are renumbered 0..170 in order,
which is mmseg's ``tools/dataset_converters/coco_stuff164k.py`` ``clsID_to_trID``. ADE20K's dataset ids
already are mmseg's ``reduce_zero_label`` ids, and Cityscapes uses the dataset's own label-id -> train-id
map (``DatasetSpec.extra["eval_label_map"]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from bench.datasets.ade20k import ADE20K_CLASSES
from bench.datasets.cocostuff import COCOSTUFF_CLASSES, UNANNOTATED_IDS
from bench.errors import ConfigError
from segmenters.base import Segmenter
from segmenters.mmseg_model import build_segmentor, file_sha256, predict_labels

TRACK = "mmsegmentation"

MMSEG_ADE20K_CLASSES: tuple[str, ...] = tuple("bed " if c == "bed" else c for c in ADE20K_CLASSES)

_KEPT_IDS = [i for i in range(len(COCOSTUFF_CLASSES)) if i not in UNANNOTATED_IDS]
#: COCO-Stuff dataset id (0..181) -> mmseg's 171-class id; the 11 unannotated ids -> 255.
COCOSTUFF_182_TO_171: dict[int, int] = dict(
    sorted({**{i: 255 for i in UNANNOTATED_IDS}, **{i: k for k, i in enumerate(_KEPT_IDS)}}.items())
)
MMSEG_COCOSTUFF_CLASSES: tuple[str, ...] = tuple(COCOSTUFF_CLASSES[i] for i in _KEPT_IDS)


def _cityscapes_train_classes() -> tuple[str, ...]:
    from bench.datasets.cityscapes import CITYSCAPES_TRAIN_CLASSES

    return CITYSCAPES_TRAIN_CLASSES


class MMSegSegmenter(Segmenter):
    """An mmseg zoo model run at native resolution; subclasses pin config, classes and weights.

    Args:
        checkpoint: The checkpoint file; by default the registry entry :attr:`weights` (see
            ``bench weights ls``), as :func:`segmenters.load_segmenter` passes it.
        overrides: Dotted-key config overrides (tests build thin variants with them).
        batch_size: Images per forward pass (results do not depend on it).
        device: Where the network runs.
        network: An already-built segmentor instead of config + checkpoint (tests).
    """

    track: ClassVar[str] = TRACK
    config: ClassVar[str]
    weights: ClassVar[str]
    dataset_label_map: ClassVar[Mapping[int, int] | None] = None

    def __init__(
        self,
        checkpoint: str | Path | None = None,
        *,
        overrides: Mapping[str, Any] | None = None,
        batch_size: int = 8,
        device: str | torch.device = "cpu",
        network: nn.Module | None = None,
    ) -> None:
        if checkpoint is not None and network is not None:
            raise ConfigError(f"{self.name}: pass either checkpoint= or network=, not both")
        if batch_size < 1:
            raise ConfigError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self._sha256: str | None = None
        if network is None:
            if checkpoint is None:
                from bench.weights import resolve

                checkpoint = resolve(self.weights)  # one-line error with the URL and import command
            network = build_segmentor(
                self.config, class_names=self.class_names, checkpoint=checkpoint, overrides=overrides, device=device
            )
            self._sha256 = file_sha256(checkpoint)
        elif int(getattr(getattr(network, "decode_head", None), "num_classes", -1)) != self.num_classes:
            raise ConfigError(f"{self.name}: the given network does not predict {self.num_classes} classes")
        self.network = network.to(device).eval()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.overrides = dict(overrides or {})

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Segment RGB ``[B, 3, H, W]`` images in ``[0, 1]`` at their own resolution."""
        out = predict_labels(self.network, images.to(self.device), batch_size=self.batch_size)
        return out.to(images.device)

    def identity(self) -> dict[str, str]:
        """Name, track, config, checkpoint sha256 and protocol, for the run record."""
        import mmseg

        ident = {
            "name": self.name,
            "track": self.track,
            "config": self.config,
            "mmseg": str(mmseg.__version__),
            "checkpoint_sha256": self._sha256 or "none (network given)",
            "protocol": "native resolution, no test-pipeline resize; mmseg data_preprocessor; whole-image test_step; "
                        "8-bit rounding",
        }
        if self.overrides:
            ident["overrides"] = repr(sorted(self.overrides.items()))
        return ident


class MMSegUPerNetR101ADE20K(MMSegSegmenter):
    """mmseg UPerNet-R101, ADE20K 160k schedule (150 classes, ``reduce_zero_label`` ids)."""

    name = "mmseg_upernet_r101_ade20k"
    config = "upernet/upernet_r101_4xb4-160k_ade20k-512x512.py"
    weights = "mmseg-upernet-r101-ade20k"
    class_names = MMSEG_ADE20K_CLASSES


class MMSegDeepLabV3R101COCOStuff(MMSegSegmenter):
    """mmseg DeepLabV3-R101-D8, COCO-Stuff 164k 320k schedule (171 classes; 182 -> 171 label map)."""

    name = "mmseg_deeplabv3_r101_cocostuff164k"
    config = "deeplabv3/deeplabv3_r101-d8_4xb4-320k_coco-stuff164k-512x512.py"
    weights = "mmseg-deeplabv3-r101-cocostuff164k"
    class_names = MMSEG_COCOSTUFF_CLASSES
    dataset_label_map = COCOSTUFF_182_TO_171


class MMSegDeepLabV3PlusR101Cityscapes(MMSegSegmenter):
    """mmseg DeepLabV3+-R101-D8, Cityscapes 80k schedule (19 train ids)."""

    name = "mmseg_deeplabv3plus_r101_cityscapes"
    config = "deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py"
    weights = "mmseg-deeplabv3plus-r101-cityscapes"
    class_names = _cityscapes_train_classes()


TRACK_SEGMENTERS: dict[str, type[MMSegSegmenter]] = {
    cls.name: cls for cls in (MMSegUPerNetR101ADE20K, MMSegDeepLabV3R101COCOStuff, MMSegDeepLabV3PlusR101Cityscapes)
}

# Attributes named as the registry entries, for lazy ``"segmenters.mmseg_track:<name>"`` registration.
mmseg_upernet_r101_ade20k = MMSegUPerNetR101ADE20K
mmseg_deeplabv3_r101_cocostuff164k = MMSegDeepLabV3R101COCOStuff
mmseg_deeplabv3plus_r101_cityscapes = MMSegDeepLabV3PlusR101Cityscapes
