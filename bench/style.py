"""Style control for methods with per-region style codes (SEAN): transfer, region swap, interpolation."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench.errors import BenchError, ConfigError


def style_transform(model: Any, dataset: Any, *, style_from: str, swap_regions: list[str] | None = None,
                    interpolate: float | None = None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A batch transform that sets ``style_codes`` from the validation image ``style_from``.

    * no other option: every region takes the style image's code for its class (classes the style image
      lacks keep their own code);
    * ``swap_regions``: only those classes take the style image's codes;
    * ``interpolate=t``: ``(1 - t) own + t style`` for every class (with ``swap_regions``, only those).
    """
    try:
        from methods.sean import class_ids, encode_styles, with_fallback
        from methods.sean import interpolate as lerp_codes
        from methods.sean import swap_regions as swap_codes
    except ImportError:
        raise BenchError("style control needs the SEAN method (methods/sean.py)") from None
    if not hasattr(model.nets.get("netG"), "Zencoder"):
        raise BenchError(f"method {model.name!r} has no per-region style codes; style control works with sean")
    ids = [dataset[i]["id"] for i in range(len(dataset))] if not hasattr(dataset, "samples") else [s.id for s in dataset.samples]
    if style_from not in ids:
        raise ConfigError(f"--style-from {style_from!r}: no such image id in the split (e.g. {', '.join(ids[:3])})")
    if interpolate is not None and not 0.0 <= interpolate <= 1.0:
        raise ConfigError(f"--interpolate expects t in [0, 1], got {interpolate}")
    src = dataset[ids.index(style_from)]
    model.train_mode(False)
    src_codes = encode_styles(model, src["image"][None], src["label"][None])
    classes = class_ids(model.spec, swap_regions) if swap_regions else None

    def transform(batch: dict[str, Any]) -> dict[str, Any]:
        own = encode_styles(model, batch["image"], batch["label"])
        if interpolate is not None:
            codes = lerp_codes(own, src_codes, interpolate, classes)
        elif classes is not None:
            codes = swap_codes(own, src_codes, classes)
        else:
            codes = with_fallback(src_codes.to(own).expand_as(own), own)
        return {**batch, "style_codes": codes}

    return transform
