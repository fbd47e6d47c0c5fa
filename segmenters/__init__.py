"""Pretrained evaluation segmenters, registered by name (lazily: listing never imports torch)."""

from __future__ import annotations

from bench.registry import Registry

SEGMENTERS: Registry[type] = Registry("segmenter")

SEGMENTERS.register_lazy("synthetic", "segmenters.synthetic:SyntheticSegmenter")
SEGMENTERS.register_lazy("upernet101_ade20k", "segmenters.papers:UPerNet101ADE20K")
SEGMENTERS.register_lazy("drn105_cityscapes", "segmenters.papers:DRN105Cityscapes")
SEGMENTERS.register_lazy("deeplabv2_cocostuff", "segmenters.papers:DeepLabV2COCOStuff")
SEGMENTERS.register_lazy("unet_celebamask", "segmenters.papers:UNetCelebAMask")


for _name in ("mmseg_upernet_r101_ade20k", "mmseg_deeplabv3_r101_cocostuff164k", "mmseg_deeplabv3plus_r101_cityscapes"):
    SEGMENTERS.register_lazy(_name, "segmenters.mmseg_track:" + _name)


def load_segmenter(name: str, **kwargs: object) -> object:
    """Instantiate the segmenter registered as ``name`` (its weights are loaded and verified)."""
    from bench.weights_catalog import segmenter_weight_kwargs

    cls = SEGMENTERS.get(name)
    return cls(**segmenter_weight_kwargs(name, kwargs), **kwargs)
