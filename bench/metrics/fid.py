"""FID and KID between two folders of images, delegated to torch-fidelity.

Nothing here computes a Fréchet distance or an MMD: :func:`fid_kid` checks the inputs, locates the
Inception weights (:mod:`bench.metrics.inception`) and calls ``torch_fidelity.calculate_metrics`` once for
both metrics, so features are extracted a single time. Protocol choices that torch-fidelity leaves open
are fixed and recorded in the result:

* images are read from files (PNG/JPEG, not recursive) as uint8 and resized to 299x299 by
  torch-fidelity's TF1-compatible bilinear resize, as in the TTUR reference code;
* the KID subset size is clamped to the smaller set, so a 500-image Cityscapes val set still gets a KID
  (torch-fidelity refuses ``kid_subset_size`` larger than a set);
* real-image features and statistics are cached by torch-fidelity under ``$BENCH_CACHE/fidelity``, under a
  name built from the caller's key, the weight file's sha256 and a fingerprint of the real folder's
  file list, so changing weights or files can never reuse stale statistics.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.cache import cache_dir
from bench.errors import ConfigError, DataError, MetricError
from bench.metrics.inception import resolve_inception_weights

FEATURE_LAYERS = ("64", "192", "768", "2048")
IMAGE_EXTS = ("png", "jpg", "jpeg")  # torch-fidelity's default ``samples_find_ext``
KID_SUBSETS = 100
#: k of the k-nearest-neighbour balls of precision and recall (Kynkäänniemi et al. 2019; torch-fidelity's default)
PRC_NEIGHBORHOOD = 3
_CACHE_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+=-]*$")


def list_images(folder: str | Path) -> list[Path]:
    """The image files torch-fidelity will read from ``folder`` (same extensions, not recursive), sorted.

    Raises:
        DataError: the folder does not exist or holds no image.
    """
    path = Path(folder)
    if not path.is_dir():
        raise DataError(f"image folder {path} does not exist; generate or extract the images first")
    files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower().lstrip(".") in IMAGE_EXTS)
    if not files:
        raise DataError(f"no {'/'.join(IMAGE_EXTS)} images in {path}; expected one image file per sample")
    return files


def check_images(files: list[Path]) -> tuple[int, int]:
    """Check that every file is a readable image and that all share one size; return that (W, H).

    torch-fidelity batches images with ``torch.stack``, which fails deep inside a DataLoader worker on a
    corrupt file or on mixed sizes; checking first turns that into a one-line error naming the file.

    Raises:
        DataError: a file cannot be decoded, or its size differs from the first file's.
    """
    from PIL import Image

    size: tuple[int, int] | None = None
    for f in files:
        try:
            with Image.open(f) as img:
                this = img.size
                img.verify()  # reads the chunks and checks CRCs without decoding the pixels
        except Exception as exc:  # PIL raises several unrelated types for bad files
            raise DataError(f"cannot read image {f}: {exc}; re-export it as PNG") from exc
        if size is None:
            size = this
        elif this != size:
            raise DataError(
                f"image {f} is {this[0]}x{this[1]} but {files[0].name} is {size[0]}x{size[1]}; "
                "all images of a set must share one size (resize them when exporting)"
            )
    if size is None:
        raise DataError("no images to check")
    return size


def fid_kid(
    generated: str | Path,
    real: str | Path,
    *,
    cache_key: str | None = None,
    feature_layer: str = "2048",
    kid_subset_size: int = 1000,
    kid_subsets: int = KID_SUBSETS,
    prc: bool = True,
    return_features: bool = False,
    device: str = "cpu",
    batch_size: int = 64,
    weights_path: str | Path | None = None,
    save_cpu_ram: bool = False,
    verbose: bool = False,
) -> dict[str, Any]:
    """FID and KID of the generated images against the real ones, computed by torch-fidelity.

    Args:
        generated: folder of generated images (PNG preferred; JPEG accepted as torch-fidelity does).
        real: folder of real images, already resized to the evaluation size by the caller.
        cache_key: names the cached real-image features/statistics; build it from everything that changes
            them (dataset, split, size, resize filter, extractor, ...). ``None`` disables caching.
        feature_layer: Inception feature for both metrics: "2048" (standard), or "64"/"192"/"768" for
            quick tests (the 2048x2048 matrix square root alone takes ~25 s on 2 cores).
        kid_subset_size: KID subset size, clamped to ``min(kid_subset_size, n_generated, n_real)``.
        kid_subsets: number of KID subsets (torch-fidelity's default 100).
        prc: also precision and recall (Kynkäänniemi et al., NeurIPS 2019; k = 3 nearest neighbours),
            computed by torch-fidelity on the same Inception features as FID/KID. Needs at least
            ``PRC_NEIGHBORHOOD + 1`` images per set; fewer skip them (``prc_skipped`` says why).
        return_features: also return ``features``: ``(generated, real)`` float64 numpy arrays ``[N, D]`` of
            the Inception features the metrics were computed from (generated in file-name order), for
            bootstrap intervals.
        device: "cpu", "cuda" or "cuda:N".
        batch_size: images per Inception forward pass.
        weights_path: explicit torch-fidelity Inception weights; default see
            :func:`~bench.metrics.inception.resolve_inception_weights`.
        save_cpu_ram: torch-fidelity's switch to decode images in the main process instead of up to 4
            DataLoader workers; faster for tiny sets, slower for real ones.
        verbose: let torch-fidelity log and show progress bars; everything goes to stderr.

    Returns:
        ``{"fid", "kid", "kid_std"}`` as floats, plus what a run record needs to reproduce them:
        ``inception`` (weights identity), ``feature_layer``, ``n_generated``, ``n_real``,
        ``kid_subset_size`` (after clamping), ``kid_subsets``, ``torch_fidelity`` (version) and
        ``real_cache`` (the cache entry name, or ``None``).

    Raises:
        ConfigError: bad layer, key, device or sizes.
        DataError: a folder is missing or empty, an image is unreadable, or sizes are mixed within a set.
        MetricError: fewer than 2 images in a set, or torch-fidelity rejects the inputs.
    """
    import torch_fidelity

    if feature_layer not in FEATURE_LAYERS:
        raise ConfigError(f"feature_layer {feature_layer!r} is not one of {', '.join(FEATURE_LAYERS)}")
    if kid_subset_size < 2 or kid_subsets < 1 or batch_size < 1:
        raise ConfigError(
            f"need kid_subset_size >= 2, kid_subsets >= 1 and batch_size >= 1, got "
            f"{kid_subset_size}, {kid_subsets}, {batch_size}"
        )
    if cache_key is not None and not _CACHE_KEY_RE.match(cache_key):
        raise ConfigError(
            f"cache_key {cache_key!r} must be a file-name-safe string (letters, digits, . _ + = -), "
            "e.g. 'ade20k-val-256x256-bicubic'"
        )

    gen_files, real_files = list_images(generated), list_images(real)
    for name, files, folder in (("generated", gen_files, generated), ("real", real_files, real)):
        if len(files) < 2:
            raise MetricError(f"FID/KID need at least 2 {name} images, found {len(files)} in {folder}")
        check_images(files)

    weights = resolve_inception_weights(weights_path)
    subset = min(kid_subset_size, len(gen_files), len(real_files))
    real_cache = None
    if cache_key is not None:
        # torch-fidelity's cache name covers neither the weight file, nor the folder's content, nor its own
        # version (which computes the features): add all three.
        real_cache = (f"{cache_key}-w{weights.sha256[:12]}-f{_content_fingerprint(real_files)[:12]}"
                      f"-tf{torch_fidelity.__version__}")

    prc_on = prc and min(len(gen_files), len(real_files)) > PRC_NEIGHBORHOOD
    kwargs: dict[str, Any] = {
        "input1": str(Path(generated)),
        "input2": str(Path(real)),
        "fid": True,
        "kid": True,
        "feature_extractor": "inception-v3-compat",
        "feature_layer_fid": feature_layer,
        "feature_layer_kid": feature_layer,
        "feature_extractor_weights_path": str(weights.path),
        "kid_subsets": kid_subsets,
        "kid_subset_size": subset,
        "batch_size": batch_size,
        "save_cpu_ram": save_cpu_ram,
        "samples_find_deep": False,
        "samples_find_ext": ",".join(IMAGE_EXTS),
        "prc": prc_on,
        "feature_layer_prc": feature_layer,
        "prc_neighborhood": PRC_NEIGHBORHOOD,
        "cache": real_cache is not None,
        "cache_root": str(cache_dir("fidelity")),
        "input2_cache_name": real_cache,
        "verbose": verbose,
    }
    with _on_device(device) as cuda:
        kwargs["cuda"] = cuda
        # torch-fidelity prints one KID remark with print(); keep stdout for results only.
        with contextlib.redirect_stdout(sys.stderr):
            try:
                out, features = _metrics_with_features(kwargs, feature_layer, prc_on)
            except ValueError as exc:  # torch-fidelity's vassert: an input it cannot use
                raise MetricError(f"torch-fidelity rejected {generated} vs {real}: {exc}") from exc

    extra: dict[str, Any] = {}
    if prc_on:
        extra = {"precision": float(out["precision"]), "recall": float(out["recall"]),
                 "prc_neighborhood": PRC_NEIGHBORHOOD}
    elif prc:
        extra = {"prc_skipped": f"precision/recall need more than {PRC_NEIGHBORHOOD} images per set"}
    if return_features:
        extra["features"] = features
    return {
        **extra,
        "fid": float(out["frechet_inception_distance"]),
        "kid": float(out["kernel_inception_distance_mean"]),
        "kid_std": float(out["kernel_inception_distance_std"]),
        "inception": weights.identity(),
        "feature_layer": feature_layer,
        "n_generated": len(gen_files),
        "n_real": len(real_files),
        "kid_subset_size": subset,
        "kid_subsets": kid_subsets,
        "torch_fidelity": torch_fidelity.__version__,
        "real_cache": real_cache,
    }


def _metrics_with_features(kwargs: dict[str, Any], layer: str, prc: bool) -> tuple[dict[str, Any], tuple[Any, Any]]:
    """torch-fidelity's own steps of ``calculate_metrics`` for one feature extractor, keeping the features.

    The same calls in the same order (features of both inputs, the real ones through its cache; FID from
    the cached statistics; KID; precision/recall), so every number equals ``calculate_metrics``'s; the
    features come back for the intervals instead of being extracted a second time.
    """
    from torch_fidelity.helpers import process_deprecations
    from torch_fidelity.metric_fid import fid_featuresdict_to_statistics_cached, fid_statistics_to_metric
    from torch_fidelity.metric_kid import kid_featuresdict_to_metric
    from torch_fidelity.metric_prc import prc_featuresdict_to_metric
    from torch_fidelity.utils import (
        create_feature_extractor,
        extract_featuresdict_from_input_id_cached,
        get_cacheable_input_name,
        resolve_feature_extractor,
    )

    process_deprecations(kwargs)
    extractor = create_feature_extractor(resolve_feature_extractor(**kwargs), [layer], **kwargs)
    feats = [extract_featuresdict_from_input_id_cached(i, extractor, **kwargs) for i in (1, 2)]
    stats = [fid_featuresdict_to_statistics_cached(f, get_cacheable_input_name(i, **kwargs), extractor, layer, **kwargs)
             for i, f in ((1, feats[0]), (2, feats[1]))]
    out = dict(fid_statistics_to_metric(stats[0], stats[1], kwargs.get("verbose", False)))
    out.update(kid_featuresdict_to_metric(feats[0], feats[1], layer, **kwargs))
    if prc:
        out.update(prc_featuresdict_to_metric(feats[0], feats[1], layer, **kwargs))
    return out, (feats[0][layer].double().cpu().numpy(), feats[1][layer].double().cpu().numpy())


def _content_fingerprint(files: list[Path]) -> str:
    """sha256 over file names and content digests: any changed byte gives a new real-feature cache entry."""
    from bench.cache import files_fingerprint

    return files_fingerprint((f.name, f) for f in files)


@contextlib.contextmanager
def _on_device(device: str) -> Iterator[bool]:
    """Translate ``device`` into torch-fidelity's ``cuda`` flag, selecting the CUDA device index."""
    if device == "cpu":
        yield False
        return
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match is None:
        raise ConfigError(f"device {device!r} is not 'cpu', 'cuda' or 'cuda:N'")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use device='cpu'")
    index = int(match.group(1) or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise ConfigError(
            f"device {device!r} does not exist; {torch.cuda.device_count()} CUDA device(s) visible"
        )
    with torch.cuda.device(index):  # torch-fidelity calls .cuda(), which uses the current device
        yield True
