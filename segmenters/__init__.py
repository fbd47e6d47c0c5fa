"""Pretrained evaluation segmenters, registered by name (lazily: listing never imports torch)."""

from __future__ import annotations

from bench.registry import Registry

SEGMENTERS: Registry[type] = Registry("segmenter")

SEGMENTERS.register_lazy("synthetic", "segmenters.synthetic:SyntheticSegmenter")
for _name in ("upernet101_ade20k", "drn105_cityscapes", "deeplabv2_cocostuff", "unet_celebamask"):
    SEGMENTERS.register_lazy(_name, "segmenters.papers:" + _name)


def load_segmenter(name: str, **kwargs: object) -> object:
    """Instantiate the segmenter registered as ``name`` (its weights are loaded and verified)."""
    cls = SEGMENTERS.get(name)
    return cls(**kwargs)
