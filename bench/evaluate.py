"""Scoring generated images under one pinned protocol: FID/KID, segmentation mIoU/accuracy, PSNR/SSIM/RMSE.

Protocols (named in every record):

* ``native``: segment at the generated resolution; ground-truth labels are resized nearest to it.
* ``upsampled``: images are upsampled (bicubic) to the segmenter's own evaluation resolution and the
  labels nearest to it.

The real-image ceiling always goes through the same protocol: the real validation images, resized
exactly as the generator's inputs were, are segmented and scored like generated ones.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from tqdm import tqdm

from bench.cache import cache_dir
from bench.errors import DataError, MetricError

MIOU_CONVENTION = "all"  # mean over every class of the segmenter (classes absent everywhere count as 0? see metrics)
FID_RESIZE = "torch-fidelity: bilinear (TF-compatible) to 299x299 inside the Inception graph"


@dataclass
class Evaluation:
    metrics: dict[str, float]
    ceiling: dict[str, float]
    weights: dict[str, Any]
    protocol: dict[str, Any]
    n_images: int
    extra: dict[str, Any] = field(default_factory=dict)


def segmenter_name(spec: Any) -> str:
    """The segmenter a dataset is scored with (``spec.extra['segmenter']``, else the dataset's name)."""
    return str((spec.extra or {}).get("segmenter", spec.name))


def evaluation_identity(spec: Any, *, protocol: str, fid_layer: str) -> dict[str, Any]:
    """Everything about the evaluation that changes the numbers; hashed into the run id."""
    return {
        "segmenter": segmenter_name(spec),
        "segmentation_protocol": protocol,
        "miou_convention": MIOU_CONVENTION,
        "fid_feature_layer": fid_layer,
        "fid_resize": FID_RESIZE,
        "reconstruction": "skimage psnr/ssim(gaussian, sigma=1.5, sample_cov=False)/rmse on [0,1]",
    }


def to_eval_labels(spec: Any, label: torch.Tensor) -> torch.Tensor:
    """Map dataset label ids to the segmenter's evaluation ids (e.g. Cityscapes 35 ids → 19 train ids)."""
    mapping = (spec.extra or {}).get("eval_label_map")
    if mapping is None:
        return label
    lut = torch.full((256,), 255, dtype=torch.int64)
    for k, v in dict(mapping).items():
        lut[int(k)] = int(v)
    return lut[label.clamp(0, 255)]


def export_reals(val: Any, spec: Any) -> Path:
    """The real validation images as the generator saw them (eval preprocessing), cached as PNGs."""
    ids = [s.id for s in val.samples] if hasattr(val, "samples") else [val[i]["id"] for i in range(len(val))]
    first = val[0]["image"]
    h, w = first.shape[-2:]
    key = hashlib.sha256(
        ("\n".join(f"{p.image}:{p.image.stat().st_size}" for p in val.samples) if hasattr(val, "samples")
         else "\n".join(ids)).encode()
    ).hexdigest()[:16]
    out = cache_dir("reals") / f"{spec.name}-val-{h}x{w}-{key}"
    if out.is_dir() and len(list(out.glob("*.png"))) == len(ids):
        return out
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for i in range(len(val)):
            s = val[i]
            img = ((s["image"].clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(img).save(tmp / f"{s['id']}.png")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _load_unit(path: Path) -> torch.Tensor:
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as e:
        raise DataError(f"{path}: unreadable image ({e})") from None
    return torch.from_numpy(arr).permute(2, 0, 1)


def segmentation_scores(segmenter: Any, folder: Path, val: Any, spec: Any, *, protocol: str,
                        batch_size: int = 32, progress: bool = True, desc: str = "segment") -> dict[str, float]:
    """Confusion-matrix mIoU and pixel accuracy of ``segmenter`` on the images in ``folder``."""
    from bench.metrics.segmentation import SegmentationScores

    scores = SegmentationScores(num_classes=segmenter.num_classes, ignore_index=segmenter.ignore_index,
                                convention=MIOU_CONVENTION)
    n = len(val)
    eval_size = getattr(segmenter, "eval_size", None)
    bar = tqdm(total=n, desc=desc, file=sys.stderr, disable=not progress, leave=False)
    import time

    t0 = time.perf_counter()
    for start in range(0, n, batch_size):
        samples = [val[i] for i in range(start, min(n, start + batch_size))]
        paths = [folder / f"{s['id']}.png" for s in samples]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise MetricError(f"{missing[0]}: generated image missing for label {samples[0]['path']}")
        images = torch.stack([_load_unit(p) for p in paths])
        labels = torch.stack([to_eval_labels(spec, s["label"]) for s in samples])[:, 0]
        if protocol == "upsampled" and eval_size is not None:
            images = F.interpolate(images, size=tuple(eval_size), mode="bicubic", align_corners=False).clamp(0, 1)
        if labels.shape[-2:] != images.shape[-2:]:
            labels = F.interpolate(labels[:, None].float(), size=images.shape[-2:], mode="nearest")[:, 0].long()
        with torch.no_grad():
            pred = segmenter.predict(images)
        scores.update(pred.cpu(), labels)
        bar.update(len(samples))
    bar.close()
    out = scores.summary()
    out["images_per_s"] = n / max(time.perf_counter() - t0, 1e-9)
    return out


def evaluate(spec: Any, val: Any, images: Path, *, protocol: str = "native", fid_layer: str = "2048",
             device: str = "cpu", progress: bool = True, reconstruction: bool = True) -> Evaluation:
    """All metrics of the generated ``images`` (one PNG per validation label, named by id)."""
    from bench.metrics.fid import fid_kid
    from bench.metrics.reconstruction import reconstruction_scores
    from segmenters import load_segmenter

    if protocol not in ("native", "upsampled"):
        raise MetricError(f"unknown segmentation protocol {protocol!r}; use native or upsampled")
    reals = export_reals(val, spec)
    h, w = val[0]["image"].shape[-2:]
    fk = fid_kid(images, reals, cache_key=f"{reals.name}-inception-{fid_layer}", feature_layer=fid_layer,
                 device=device, verbose=False, save_cpu_ram=True)
    segmenter = load_segmenter(segmenter_name(spec), device=device)
    seg = segmentation_scores(segmenter, images, val, spec, protocol=protocol, progress=progress)
    ceil = segmentation_scores(segmenter, reals, val, spec, protocol=protocol, progress=progress, desc="segment reals")
    metrics = {"fid": float(fk["fid"]), "kid": float(fk["kid"]), "miou": float(seg["miou"]), "accu": float(seg["accu"])}
    if reconstruction:
        rec = reconstruction_scores(images, reals)
        metrics.update({"psnr": float(rec["psnr"]), "ssim": float(rec["ssim"]), "rmse": float(rec["rmse"])})
    return Evaluation(
        metrics=metrics,
        ceiling={"miou": float(ceil["miou"]), "accu": float(ceil["accu"])},
        weights={"segmenter": segmenter.identity(), "inception": fk["inception"]},
        protocol={
            "segmentation": protocol,
            "segmentation_size": list(getattr(segmenter, "eval_size", None) or (h, w)) if protocol == "upsampled" else [h, w],
            "miou_convention": seg["miou_convention"],
            "fid": {k: fk[k] for k in ("feature_layer", "kid_subset_size", "kid_subsets", "torch_fidelity") if k in fk},
            "fid_resize": FID_RESIZE,
            "reconstruction_reference": "paired real validation image",
        },
        n_images=len(val),
        extra={
            "kid_std": float(fk.get("kid_std", float("nan"))),
            "segment_images_per_s": seg["images_per_s"],
            "reals": str(reals),
            "labels": str(Path(val[0]["path"]).parent),
        },
    )
