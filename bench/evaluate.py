"""Scoring generated images under one pinned protocol: FID/KID, segmentation mIoU/accuracy, PSNR/SSIM/RMSE.

Protocols (named in every record):

* ``native``: segment at the generated resolution; ground-truth labels are resized nearest to it.
* ``upsampled``: images are upsampled (bicubic) to the segmenter's own evaluation resolution and the
  labels nearest to it.

The real-image ceiling always goes through the same protocol: the real validation images, resized
exactly as the generator's inputs were, are segmented and scored like generated ones.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image
from tqdm import tqdm

if TYPE_CHECKING:  # torch loads when a function runs: `bench` fails on a bad name before importing it
    import torch

from bench.cache import cache_dir, code_fingerprint, files_fingerprint, key_digest
from bench.errors import DataError, MetricError

#: bootstrap resamples of the default intervals (their cost, measured by bench/perf/bootstrap_cost.py: about
#: 0.4 s for the 200 synthetic validation images, ~1% of the evaluation)
DEFAULT_BOOTSTRAP = 1000
MIOU_CONVENTION = "all"  # mean over every class of the segmenter (classes absent everywhere count as 0? see metrics)
FID_RESIZE = "torch-fidelity: bilinear (TF-compatible) to 299x299 inside the Inception graph"
#: images per Inception forward pass (:func:`bench.metrics.fid.fid_kid`'s default); under torchrun also the unit
#: the real and generated files are split across ranks in
FID_BATCH = 64


@dataclass
class Evaluation:
    """What :func:`evaluate` measured: the metrics, their ceiling and intervals, and the per-image data."""

    metrics: dict[str, float]
    ceiling: dict[str, float]
    weights: dict[str, Any]
    protocol: dict[str, Any]
    n_images: int
    extra: dict[str, Any] = field(default_factory=dict)
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_image: Any = None  # bench.intervals.PerImage
    skipped: dict[str, str] = field(default_factory=dict)  # metric -> why it could not be computed


def segmenter_name(spec: Any) -> str:
    """The segmenter a dataset is scored with (``spec.extra['segmenter']``, else the dataset's name)."""
    return str((spec.extra or {}).get("segmenter", spec.name))


def evaluation_identity(spec: Any, *, protocol: str, fid_layer: str, bootstrap: int = 1000) -> dict[str, Any]:
    """Everything about the evaluation that changes the numbers (and their intervals); hashed into the run id."""
    return {
        "intervals": (f"95%, seed 0, percentile bootstrap B={bootstrap} (means, mIoU, accuracy), delta method "
                      "(FID), 100-group jackknife (KID, precision, recall)") if bootstrap else "none",
        "segmenter": segmenter_name(spec),
        "segmentation_protocol": protocol,
        "miou_convention": MIOU_CONVENTION,
        "fid_feature_layer": fid_layer,
        "fid_resize": FID_RESIZE,
        "reconstruction": "skimage psnr/ssim(gaussian, sigma=1.5, sample_cov=False)/rmse on [0,1]",
    }


def to_eval_labels(spec: Any, label: torch.Tensor) -> torch.Tensor:
    """Map dataset label ids to the segmenter's evaluation ids (e.g. Cityscapes 35 ids → 19 train ids)."""
    import torch

    mapping = (spec.extra or {}).get("eval_label_map")
    if mapping is None:
        return label
    lut = torch.full((256,), 255, dtype=torch.int64)
    for k, v in dict(mapping).items():
        lut[int(k)] = int(v)
    return lut[label.clamp(0, 255)]


#: bump when the exported PNGs change for the same inputs (the code fingerprint catches most edits)
REALS_FORMAT = 2
#: the code that decodes and preprocesses the real images: part of every reals cache key
_REALS_CODE = ("bench.datasets.io", "bench.datasets.transforms", "bench.datasets.custom", "bench.datasets.layouts")


def reals_identity(val: Any, spec: Any) -> dict[str, Any] | None:
    """Everything that determines the exported real images, or ``None`` when ``val`` lists no files.

    The preprocessing plan (mode, load and crop size, aspect ratio, flip), the loader and the version of
    its code, the dataset's name and each image's id and content digest. Two datasets that differ in any
    of these never share an export, whichever filled the cache first.
    """
    samples = getattr(val, "samples", None)
    if samples is None or not all(hasattr(s, "image") for s in samples):
        return None
    pre = getattr(val, "preprocess", None)
    loader = type(val)
    return {
        "format": REALS_FORMAT,
        "code": code_fingerprint(*_REALS_CODE, loader.__module__),
        "loader": f"{loader.__module__}.{loader.__qualname__}",
        "dataset": spec.name,
        "preprocess": dataclasses.asdict(pre) if dataclasses.is_dataclass(pre) else repr(pre),
        "images": files_fingerprint((str(s.id), s.image) for s in samples),
    }


def export_reals(val: Any, spec: Any) -> Path:
    """The real validation images as the generator saw them (eval preprocessing), cached as PNGs.

    Args:
        val: The validation split, opened with the evaluation preprocessing; ``val[i]["image"]`` is float32
            ``[3, H, W]`` in [-1, 1].
        spec: Its dataset spec.

    Returns:
        ``$BENCH_CACHE/reals/<dataset>-val-<H>x<W>-<key>/<id>.png``, uint8 RGB, where ``key`` hashes
        :func:`reals_identity`. A split that lists no files is exported to a folder keyed by the hash of
        the exported pixels themselves.

    Raises:
        DataError: a validation file is unreadable (raised by the loader, naming the file).
    """
    import torch

    ident = reals_identity(val, spec)
    first = val[0]["image"]
    h, w = first.shape[-2:]
    parent = cache_dir("reals")
    if ident is not None:
        out = parent / f"{spec.name}-val-{h}x{w}-{key_digest(ident)}"
        if (out / _REALS_DONE).is_file():
            return out
    tmp = Path(tempfile.mkdtemp(prefix=".reals.", dir=parent))
    try:
        pixels = hashlib.sha256()
        for i in range(len(val)):
            s = val[i]
            img = ((s["image"].clamp(-1, 1) + 1) / 2 * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            Image.fromarray(img).save(tmp / f"{s['id']}.png")
            pixels.update(f"{s['id']}\0{img.shape}\0".encode() + img.tobytes())
        if ident is None:
            out = parent / f"{spec.name}-val-{h}x{w}-px{pixels.hexdigest()[:16]}"
            if (out / _REALS_DONE).is_file():
                return out
        (tmp / _REALS_DONE).write_text(json.dumps(ident or {"pixels": pixels.hexdigest()}, indent=1, default=str))
        try:
            os.replace(tmp, out)  # atomic; fails if a concurrent run already put a complete export there
        except OSError:
            if not (out / _REALS_DONE).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # our own temp folder (already renamed on success)
    return out


_REALS_DONE = "reals.json"  # written last: a folder without it is incomplete and never used


def _load_unit(path: Path) -> torch.Tensor:
    import torch

    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGB"), dtype=np.float32) / 255.0
    except OSError as e:
        raise DataError(f"{path}: unreadable image ({e})") from None
    return torch.from_numpy(arr).permute(2, 0, 1)


def segmentation_scores(segmenter: Any, folder: Path, val: Any, spec: Any, *, protocol: str,
                        batch_size: int = 32, progress: bool = True, desc: str = "segment",
                        dist: Any = None) -> dict[str, float]:
    """Confusion-matrix mIoU and pixel accuracy of ``segmenter`` on the images in ``folder``.

    Under torchrun (``dist``: a :class:`bench.training.distributed.Dist` of several ranks) each rank segments its
    whole batches (:func:`~bench.training.distributed.shard_batches`, the batches of one process), the confusion
    matrices are all-reduced (int64: exact) and the per-image ones gathered in split order, so every rank
    returns what one process returns (``images_per_s``: this rank's).

    Returns:
        ``miou``/``accu`` (fractions), the convention, ``n_pixels``, ``images_per_s``, the summed ``confusion``
        (int64 ``[K, K]``, ``conf[gt, pred]``), ``per_class_iou`` (float64 ``[K]``, NaN: absent class), and
        ``per_image`` (per image, split order: the non-zero flat cells ``gt * K + pred`` and their int64
        counts) with their ``ids``.
    """
    import torch
    import torch.nn.functional as F

    from bench.metrics.segmentation import SegmentationScores, confusion_matrix
    from bench.training.distributed import SINGLE, shard_batches

    ctx = dist or SINGLE
    scores = SegmentationScores(num_classes=segmenter.num_classes, ignore_index=segmenter.ignore_index,
                                convention=MIOU_CONVENTION)
    n = len(val)
    per_image: list[tuple[np.ndarray, np.ndarray]] = []
    ids: list[str] = []
    eval_size = getattr(segmenter, "eval_size", None)
    bar = tqdm(total=n, desc=desc, file=sys.stderr, disable=not progress, leave=False)
    import time

    t0 = time.perf_counter()
    for batch in shard_batches(n, batch_size, ctx):  # one process: range(0, n, batch_size)
        samples = [val[i] for i in batch]
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
            pred = segmenter.predict(images).cpu()
        for j in range(len(samples)):  # one matrix per image: their sum is the set's (bootstrap intervals)
            cm = confusion_matrix(pred[j], labels[j], segmenter.num_classes, segmenter.ignore_index)
            scores.conf += cm
            flat = cm.ravel()
            nz = np.flatnonzero(flat)
            per_image.append((nz, flat[nz]))  # sparse: a few of K^2 cells per image
            ids.append(str(samples[j]["id"]))
        bar.update(len(samples))
    bar.close()
    if ctx.enabled:
        per_image, ids = _merge_shards(ctx, n, batch_size, per_image, ids)
        scores.conf = _all_reduce_sum(scores.conf, ctx)
    out = scores.summary()
    out["images_per_s"] = n / max(time.perf_counter() - t0, 1e-9)
    out["per_image"] = per_image  # per image, split order: (flat cells gt * K + pred, int64 counts)
    out["ids"] = ids
    out["confusion"] = scores.conf
    out["per_class_iou"] = scores.per_class_iou()
    return out


def _merge_shards(ctx: Any, n: int, batch_size: int, *lists: list[Any]) -> list[list[Any]]:
    """Every rank's per-item lists (its :func:`~bench.training.distributed.shard_indices` order), gathered and put
    back in split order, on every rank."""
    from bench.training.distributed import Dist, shard_indices

    merged: list[list[Any]] = [[None] * n for _ in lists]
    for rank, parts in enumerate(ctx.gather(lists)):
        where = shard_indices(n, batch_size, Dist(rank=rank, world_size=ctx.world_size))
        for out, part in zip(merged, parts):
            for i, item in zip(where, part):
                out[i] = item
    return merged


def _all_reduce_sum(array: np.ndarray, ctx: Any) -> np.ndarray:
    """The sum over ranks of an int64/float64 array (an all-reduce; integers exactly)."""
    import torch

    t = torch.from_numpy(np.ascontiguousarray(array)).to(ctx._comm_device())
    torch.distributed.all_reduce(t)
    return t.cpu().numpy()


def fid_kid_sharded(images: Path, reals: Path, *, feature_layer: str, device: str, prc: bool, ctx: Any,
                    batch_size: int | None = None) -> dict[str, Any]:
    """:func:`bench.metrics.fid.fid_kid` (``return_features=True``) with the Inception features extracted by all
    ranks: each takes whole batches of both folders' sorted files (the batches one process forms, so each feature
    row is the one a single process computes), the rows are gathered in file order, and rank 0 computes FID,
    KID and precision/recall with torch-fidelity's own functions and the same options, then broadcasts them.

    The real-image features are extracted (sharded) each time instead of read from torch-fidelity's cache,
    which one process fills and reuses: at N >= 2 ranks the wall time is no more than one cached process's.

    Returns:
        The dict :func:`~bench.metrics.fid.fid_kid` returns (``real_cache``: None), on every rank.

    Raises:
        DataError, MetricError: as :func:`~bench.metrics.fid.fid_kid`, on every rank (the first failing rank's).
    """
    import torch_fidelity
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.metric_fid import fid_features_to_statistics, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_featuresdict_to_metric
    from torch_fidelity.metric_prc import prc_featuresdict_to_metric
    from torch_fidelity.utils import create_feature_extractor, get_featuresdict_from_dataset

    from bench.metrics.fid import IMAGE_EXTS, KID_SUBSETS, PRC_NEIGHBORHOOD, check_images, list_images
    from bench.metrics.inception import resolve_inception_weights
    from bench.training.distributed import all_or_none, everywhere, shard_indices

    cuda = device.startswith("cuda")
    batch_size = batch_size or FID_BATCH
    with all_or_none(ctx):
        files = {"generated": list_images(images), "real": list_images(reals)}
        for name, fs in files.items():
            if len(fs) < 2:
                raise MetricError(f"FID/KID need at least 2 {name} images, found {len(fs)} in "
                                  f"{images if name == 'generated' else reals}")
        mine = {k: [fs[i] for i in shard_indices(len(fs), batch_size, ctx)] for k, fs in files.items()}
        sizes = {k: check_images(fs) if fs else None for k, fs in mine.items()}
        weights = resolve_inception_weights(None)
    for name in files:  # one size per set, across the shards too
        seen = {s[name] for s in ctx.gather(sizes) if s[name] is not None}
        if len(seen) > 1:
            raise everywhere(DataError(f"the {name} images do not share one size ({' vs '.join(map(str, sorted(seen)))}); "
                                       "all images of a set must share one size"), ctx)
    kwargs: dict[str, Any] = {
        "feature_extractor_weights_path": str(weights.path), "kid_subsets": KID_SUBSETS,
        "kid_subset_size": min(1000, len(files["generated"]), len(files["real"])), "prc_neighborhood": PRC_NEIGHBORHOOD,
        "samples_find_ext": ",".join(IMAGE_EXTS), "verbose": False, "cuda": cuda,
    }
    with all_or_none(ctx):
        extractor = create_feature_extractor("inception-v3-compat", [feature_layer], **kwargs)
        feats = {}
        for k, fs in mine.items():
            if fs:
                got = get_featuresdict_from_dataset(ImagesPathDataset([str(f) for f in fs]), extractor, batch_size,
                                                    cuda, True, False)[feature_layer]
                feats[k] = got.cpu().numpy()  # float32: torch-fidelity computes the statistics from these
            else:
                feats[k] = np.zeros((0, 0), np.float32)
    full = {k: np.concatenate(_merge_shards(ctx, len(files[k]), batch_size, list(feats[k]))[0]).reshape(
        len(files[k]), -1) for k in files}
    prc_on = prc and min(len(files["generated"]), len(files["real"])) > PRC_NEIGHBORHOOD
    scores: dict[str, Any] = {}
    if ctx.is_main:
        import torch

        fd = [{feature_layer: torch.from_numpy(full[k])} for k in ("generated", "real")]
        with contextlib.redirect_stdout(sys.stderr):  # torch-fidelity prints a KID remark
            stats = [fid_features_to_statistics(f[feature_layer]) for f in fd]
            scores = dict(fid_statistics_to_metric(stats[0], stats[1], False))
            scores.update(kid_featuresdict_to_metric(fd[0], fd[1], feature_layer, **kwargs))
            if prc_on:
                scores.update(prc_featuresdict_to_metric(fd[0], fd[1], feature_layer, **kwargs))
        scores = {k: float(v) for k, v in scores.items()}
    scores = ctx.broadcast(scores)
    extra: dict[str, Any] = {"features": (full["generated"].astype(np.float64), full["real"].astype(np.float64))}
    if prc_on:
        extra.update(precision=scores["precision"], recall=scores["recall"], prc_neighborhood=PRC_NEIGHBORHOOD)
    elif prc:
        extra["prc_skipped"] = f"precision/recall need more than {PRC_NEIGHBORHOOD} images per set"
    return {**extra, "fid": scores["frechet_inception_distance"], "kid": scores["kernel_inception_distance_mean"],
            "kid_std": scores["kernel_inception_distance_std"], "inception": weights.identity(),
            "feature_layer": feature_layer, "n_generated": len(files["generated"]), "n_real": len(files["real"]),
            "kid_subset_size": kwargs["kid_subset_size"], "kid_subsets": KID_SUBSETS,
            "torch_fidelity": torch_fidelity.__version__, "real_cache": None}


def reconstruction_sharded(images: Path, reals: Path, ctx: Any, batch_size: int = 32) -> dict[str, Any]:
    """:func:`bench.metrics.reconstruction.reconstruction_scores` of the two folders, the pairs split across ranks
    and the per-image scores gathered in pair order; the means are summed in that order, as one process does."""
    from bench.metrics.reconstruction import pair_folders, reconstruction_scores
    from bench.training.distributed import all_or_none, shard_indices

    with all_or_none(ctx):
        pairs = pair_folders(images, reals)
        mine = [pairs[i] for i in shard_indices(len(pairs), batch_size, ctx)]
        part = reconstruction_scores(mine) if mine else {"per_image": {"psnr": [], "ssim": [], "rmse": []}, "ids": []}
    keys = ("psnr", "ssim", "rmse")
    *per, ids = _merge_shards(ctx, len(pairs), batch_size, *(part["per_image"][k] for k in keys), part["ids"])
    out: dict[str, Any] = {k: sum(v, 0.0) / len(pairs) for k, v in zip(keys, per)}
    return {**out, "n": len(pairs), "per_image": dict(zip(keys, per)), "ids": ids}


def evaluate(spec: Any, val: Any, images: Path, *, protocol: str = "native", fid_layer: str = "2048",
             device: str = "cpu", progress: bool = True, reconstruction: bool = True,
             metrics: tuple[str, ...] | None = None, segmenter: Any = None,
             bootstrap: int = DEFAULT_BOOTSTRAP, dist: Any = None) -> Evaluation:
    """All requested metrics of the generated ``images`` (one PNG per validation label, named by id).

    Args:
        spec: The dataset spec (its segmenter, its evaluation label map).
        val: The validation split, evaluation preprocessing (``val[i]["image"]`` float32 [3, H, W] in [-1, 1]).
        images: Folder of ``<id>.png``, uint8 RGB, at the evaluated size.
        protocol: ``native`` or ``upsampled`` (see the module docstring).
        fid_layer: Inception feature for FID/KID ("2048" standard).
        device: Where the networks run.
        reconstruction: Compute PSNR/SSIM/RMSE against the paired real image (when ``metrics`` is None).
        metrics: Metric keys to compute (``bench.preflight.ALL_METRICS``); ``None``: FID, KID, mIoU,
            accuracy, and the reconstruction metrics when ``reconstruction``.
        segmenter: A loaded segmenter (the preflight loads it); default: loaded here.
        bootstrap: Resamples B of the percentile-bootstrap intervals (per-image means, mIoU, accuracy);
            0 skips every interval. FID uses the delta method and KID/precision/recall a 100-group
            jackknife whatever B is (:mod:`bench.intervals`).
        dist: Under torchrun, the :class:`~bench.training.distributed.Dist` of the ranks that share the work:
            rank 0 exports the real images, every rank extracts the Inception features, segments and scores
            its share of whole batches, and the per-image data are gathered in split order
            (:func:`fid_kid_sharded`, :func:`segmentation_scores`, :func:`reconstruction_sharded`). The metrics
            are those of one process (confusion matrices exactly); rank 0 alone computes the intervals.

    Returns:
        The metrics (FID/KID raw, mIoU/accuracy fractions in [0, 1], PSNR dB, SSIM, RMSE on [0, 1]), the
        real-image ceiling of the segmentation metrics, the weights and protocol identities, each metric's
        95% interval (seeded, recorded; under ``dist`` on rank 0 only) and the per-image data they come from.

    Raises:
        MetricError: unknown protocol, a generated image missing.
        WeightsNotFoundError: the Inception or segmenter weights are missing.
    """
    from bench.metrics.fid import fid_kid
    from bench.metrics.reconstruction import reconstruction_scores

    if protocol not in ("native", "upsampled"):
        raise MetricError(f"unknown segmentation protocol {protocol!r}; use native or upsampled")
    if metrics is None:
        metrics = ("fid", "kid", "precision", "recall", "miou", "accu") + (
            ("psnr", "ssim", "rmse") if reconstruction else ())
    from bench.intervals import PerImage, compact, evaluation_intervals
    from bench.metrics.fid import list_images
    from bench.training.distributed import SINGLE, main_first

    ctx = dist or SINGLE
    with main_first(ctx):  # rank 0 exports (and caches) the real images, the others then find them
        reals = export_reals(val, spec)
    h, w = val[0]["image"].shape[-2:]
    per = PerImage()
    skipped: dict[str, str] = {}
    out: dict[str, float] = {}
    ceiling: dict[str, float] = {}
    weights: dict[str, Any] = {}
    proto: dict[str, Any] = {"segmentation": protocol, "fid_resize": FID_RESIZE}
    extra: dict[str, Any] = {"reals": str(reals), "labels": str(Path(val[0]["path"]).parent)}
    if any(m in metrics for m in ("fid", "kid", "precision", "recall")):
        prc = "precision" in metrics or "recall" in metrics
        if ctx.enabled:
            fk = fid_kid_sharded(images, reals, feature_layer=fid_layer, device=device, prc=prc, ctx=ctx)
        else:
            fk = fid_kid(images, reals, cache_key=f"{reals.name}-inception-{fid_layer}", feature_layer=fid_layer,
                         device=device, verbose=False, save_cpu_ram=True, prc=prc, return_features=True,
                         batch_size=FID_BATCH)
        gen_f, real_f = fk["features"]
        per.gen_features, per.real_features = gen_f.astype(np.float32), real_f.astype(np.float32)
        per.feat_ids = [p.stem for p in list_images(images)]
        out.update({k: float(fk[k]) for k in ("fid", "kid", "precision", "recall") if k in metrics and k in fk})
        if "prc_skipped" in fk:
            skipped.update({m: fk["prc_skipped"] for m in ("precision", "recall") if m in metrics})
        weights["inception"] = fk["inception"]
        proto["fid"] = {k: fk[k] for k in ("feature_layer", "kid_subset_size", "kid_subsets", "torch_fidelity",
                                           "prc_neighborhood") if k in fk}
        extra["kid_std"] = float(fk.get("kid_std", float("nan")))
    if "miou" in metrics or "accu" in metrics:
        if segmenter is None:
            from segmenters import load_segmenter

            segmenter = load_segmenter(segmenter_name(spec), device=device)
        seg = segmentation_scores(segmenter, images, val, spec, protocol=protocol, progress=progress, dist=ctx)
        ceil = segmentation_scores(segmenter, reals, val, spec, protocol=protocol, progress=progress,
                                   desc="segment reals", dist=ctx)
        out.update({k: float(seg[k]) for k in ("miou", "accu") if k in metrics})
        per.num_classes, per.seg_ids = int(segmenter.num_classes), seg["ids"]
        per.cm_cells, per.cm_counts = compact(seg["per_image"])
        extra["per_class_iou"] = [None if np.isnan(x) else float(x) for x in seg["per_class_iou"]]
        extra["ceiling_per_class_iou"] = [None if np.isnan(x) else float(x) for x in ceil["per_class_iou"]]
        extra["confusion"] = seg["confusion"].tolist()
        ceiling.update({k: float(ceil[k]) for k in ("miou", "accu") if k in metrics})
        weights["segmenter"] = segmenter.identity()
        size = getattr(segmenter, "eval_size", None) if protocol == "upsampled" else None
        proto["segmentation_size"] = list(size or (h, w))
        proto["miou_convention"] = seg["miou_convention"]
        extra["segment_images_per_s"] = seg["images_per_s"]
    if any(m in metrics for m in ("psnr", "ssim", "rmse")):
        rec = reconstruction_sharded(images, reals, ctx) if ctx.enabled else reconstruction_scores(images, reals)
        out.update({k: float(rec[k]) for k in ("psnr", "ssim", "rmse") if k in metrics})
        per.rec_ids, per.rec = rec["ids"], {k: np.asarray(v, np.float64) for k, v in rec["per_image"].items()}
        proto["reconstruction_reference"] = "paired real validation image"
    order = ("fid", "kid", "precision", "recall", "miou", "accu", "psnr", "ssim", "rmse")
    ordered = {k: out[k] for k in order if k in out}
    intervals: dict[str, dict[str, Any]] = {}
    if bootstrap > 0 and ctx.is_main:
        intervals, seconds = evaluation_intervals(per, ordered, n_resamples=bootstrap)
        extra["intervals_s"] = seconds
    return Evaluation(
        skipped=skipped,
        intervals=intervals,
        per_image=per,
        metrics=ordered,
        ceiling=ceiling,
        weights=weights,
        protocol=proto,
        n_images=len(val),
        extra=extra,
    )
