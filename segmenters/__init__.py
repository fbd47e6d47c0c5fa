"""Pretrained evaluation segmenters, registered by name (lazily: listing never imports torch)."""

from __future__ import annotations

from bench.registry import Registry

SEGMENTERS: Registry[type] = Registry("segmenter")

SEGMENTERS.register_lazy("synthetic", "segmenters.synthetic:SyntheticSegmenter")
SEGMENTERS.register_lazy("upernet101_ade20k", "segmenters.papers:UPerNet101ADE20K")
SEGMENTERS.register_lazy("drn105_cityscapes", "segmenters.papers:DRN105Cityscapes")
SEGMENTERS.register_lazy("deeplabv2_cocostuff", "segmenters.papers:DeepLabV2COCOStuff")
SEGMENTERS.register_lazy("unet_celebamask", "segmenters.papers:UNetCelebAMask")


def load_segmenter(name: str, **kwargs: object) -> object:
    """Instantiate the segmenter registered as ``name`` (its weights are loaded and verified)."""
    cls = SEGMENTERS.get(name)
    return cls(**kwargs)
