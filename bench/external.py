"""``bench eval``: score a folder of images made by any model under the pinned protocol.

The images are paired with the label maps of a dataset split by stem (``<id>.png|jpg|jpeg|webp``, any case).
They may have any resolution: the *evaluated size* is theirs, and the protocol records it.

* The real images for FID/KID (and the ceiling, and PSNR/SSIM/RMSE with ``reconstruction``) are the
  split's photos resized to the evaluated size: bicubic (PIL, as SPADE resizes its inputs), no crop.
* The label maps are resized nearest to it for segmentation; ``upsampled`` works as in ``bench run``.
* Every image is decoded once, checked, and staged as a lossless PNG of exactly the decoded pixels, so
  JPEG and WebP inputs score as their decoded pixels do.

The result is an ordinary run record of kind ``external``: ``bench report``, ``bench check`` and
``bench ls runs`` treat it like any other run. Its id hashes the images' content, the split's content
and the evaluation identity, so a re-run is a cache hit and a changed image is not.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from PIL import Image

from bench.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: file types accepted as generated images (matched case-insensitively)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
#: largest relative difference between an image's and its label map's aspect ratio
ASPECT_TOLERANCE = 0.01
REAL_RESIZE = "PIL bicubic to the evaluated size (no crop); label maps nearest"
#: skimage's SSIM with gaussian_weights and sigma 1.5 uses an 11x11 window (bench.metrics.reconstruction)
SSIM_MIN_SIDE = 11
#: below this evaluated size a warning says the scores only compare with runs of the same size
SMALL_SIDE = 32


@dataclass(frozen=True)
class Pairing:
    """Images matched to the split's label maps: ``files[id]`` for every sample id, in split order."""

    files: dict[str, Path]
    extra: list[Path]
    size: tuple[int, int]  # (H, W) shared by all images


def find_images(folder: Path, *, recursive: bool = False) -> dict[str, Path]:
    """``{stem: path}`` of the image files in ``folder`` (sub-folders only with ``recursive``).

    Raises:
        DataError: ``folder`` is missing or not a folder, or two files share a stem.
    """
    if not folder.is_dir():
        raise DataError(f"--images {folder}: no such folder")
    files: dict[str, Path] = {}
    walk = sorted(folder.rglob("*")) if recursive else sorted(folder.iterdir())
    for p in walk:
        if not p.is_file() or p.name.startswith(".") or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if p.stem in files:
            raise DataError(f"{p}: two images share the stem {p.stem!r} ({files[p.stem]}); keep one per label map")
        files[p.stem] = p
    return files


def _decode(path: Path) -> Any:
    """Fully decode one generated image to uint8 RGB ``[H, W, 3]`` with its EXIF orientation applied (as any
    viewer shows it), through the dataset decoder (16-bit, CMYK, palette, alpha: :mod:`bench.datasets.io`).

    Returns:
        :class:`bench.datasets.io.Decoded` (array, source format, conversion, orientation, rotated).

    Raises:
        DataError: unreadable, truncated, or in a mode with no 8-bit RGB reading (names the file).
    """
    from bench.datasets.io import decode_image

    return decode_image(path, exif=True)


def pair_images(ids: list[str], label_sizes: list[tuple[int, int]], folder: Path, *,
                recursive: bool = False) -> Pairing:
    """Match every label id to an image and check sizes, before any scoring.

    Args:
        ids: The split's sample ids, in order.
        label_sizes: Each sample's label map size (H, W) as stored on disk.
        folder: The images to score.
        recursive: Also look in sub-folders.

    Raises:
        DataError: the folder is empty; images are missing for some labels (the count and the first three
            stems); an image is unreadable (named); images differ in size; an image's aspect ratio differs
            from its label map's by more than 1%.
    """
    found = find_images(folder, recursive=recursive)
    if not found:
        raise DataError(f"--images {folder}: no {'/'.join(s[1:] for s in IMAGE_SUFFIXES)} images"
                        + ("" if recursive else " (sub-folders are ignored without --recursive)"))
    missing = [i for i in ids if i not in found]
    if missing:
        raise DataError(f"{folder}: no image for {len(missing)} of {len(ids)} label maps, e.g. "
                        f"{', '.join(missing[:3])} (images are matched to label maps by file stem)")
    extra = sorted(found[s] for s in found.keys() - set(ids))
    sizes: dict[tuple[int, int], str] = {}
    for i, (hl, wl) in zip(ids, label_sizes):
        w, h = _peek_size(found[i])
        sizes.setdefault((h, w), i)
        if abs((w / h) / (wl / hl) - 1.0) > ASPECT_TOLERANCE:
            raise DataError(f"{found[i]}: aspect ratio {w}x{h} (WxH) differs from its label map's {wl}x{hl} by more "
                            f"than {ASPECT_TOLERANCE:.0%}; generate at the label map's aspect ratio")
    if len(sizes) > 1:
        (a, ia), (b, ib) = list(sizes.items())[:2]
        raise DataError(f"{folder}: images have different sizes ({ia}: {a[1]}x{a[0]}, {ib}: {b[1]}x{b[0]} WxH); "
                        "FID/KID score one evaluated size, resize them to one")
    return Pairing({i: found[i] for i in ids}, extra, next(iter(sizes)))


def _peek_size(path: Path) -> tuple[int, int]:
    """Displayed (W, H) from the file header (EXIF orientations 5-8 swap the sides); one line naming the
    file when it is not an image."""
    from bench.datasets.io import orientation_of

    try:
        with Image.open(path) as im:
            return im.size[::-1] if orientation_of(im) in (5, 6, 7, 8) else im.size
    except Exception as e:  # noqa: BLE001 - PIL raises many types on corrupt files
        reason = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise DataError(f"{path}: unreadable image ({reason}); re-export it") from None


def stage(pairing: Pairing, out: Path) -> tuple[Path, dict[str, int]]:
    """Decode every image (named on failure) and write it as ``out/<id>.png``: lossless, the decoded pixels.

    Returns:
        The folder and ``{conversion: count}`` of what decoding took beyond a plain 8-bit RGB read (e.g.
        ``"RGBA: alpha dropped"``, ``"EXIF orientation 6 applied"``), for the record and one log line.

    Raises:
        DataError: an image cannot be decoded, or is not a photo.
    """
    from collections import Counter

    from bench.cache import atomic_write

    out.mkdir(parents=True, exist_ok=True)
    notes: Counter[str] = Counter()
    for i, path in pairing.files.items():
        dec = _decode(path)
        if dec.conversion:
            notes[dec.conversion] += 1
        if dec.rotated:
            notes[f"EXIF orientation {dec.orientation} applied"] += 1
        if dec.array.shape[:2] != pairing.size:
            raise DataError(f"{path}: size changed while reading; re-export it")
        img = Image.fromarray(dec.array)
        atomic_write(out / f"{i}.png", lambda f, im=img: im.save(f, format="PNG"))
    return out, dict(notes)


def evaluate_images(dataset: str, images: str | Path, name: str, *, data_root: str | Path | None = None,
                    split: str = "val", protocol: str = "native", reconstruction: bool = False,
                    results: str | Path = "results", force: bool = False, device: str | None = None,
                    progress: bool = True, fid_layer: str = "2048", recursive: bool = False,
                    metrics: str | None = None, overrides: dict[str, Any] | None = None,
                    bootstrap: int | None = None, diversity: int = 0) -> Any:
    """Score a folder of images made by anything; write and return one ``external`` run record.

    Args:
        dataset: A registered dataset (``bench ls datasets``).
        images: Folder of ``<label id>.<png|jpg|jpeg|webp>``, uint8 RGB, any resolution (one for all).
        name: The label the record carries in tables (e.g. ``"SDM (authors' samples)"``).
        split: The split whose label maps the images were generated from.
        protocol: ``native`` or ``upsampled`` segmentation (:mod:`bench.evaluate`).
        reconstruction: Also PSNR/SSIM/RMSE against the paired real image (the SEAN protocol).
        metrics: ``"fid,kid"``-style subset, default every metric the dataset supports.
        bootstrap: Resamples of the percentile-bootstrap intervals (0: none); see :mod:`bench.intervals`.
        overrides: ``--set`` keys of a user dataset (``label_nc``, ``ignore_id``; see :mod:`bench.datasets.user`).
        diversity: K >= 2: ``images`` holds ``<id>_s<k>.<ext>`` for ``k < K`` (``bench generate --samples K``);
            the other metrics score sample 0 and ``lpips``/``ms_ssim`` all K (:mod:`bench.metrics.diversity`).

    Returns:
        The :class:`bench.store.RunRecord` (kind ``external``), FID/KID raw, mIoU/accuracy fractions.

    Raises:
        DataError: any bad input (missing, unreadable or mis-sized images, an empty folder, a wrong split),
            in one line, before scoring; no record is written.

    Under torchrun every rank joins one process group: rank 0 decodes and stages the images, each rank
    scores its share (:func:`bench.evaluate.evaluate` with ``dist``), and rank 0 writes the one record.
    """
    from bench import __version__
    from bench import preflight as pf
    from bench.api import data_fingerprint, dataset_for, environment
    from bench.cache import files_fingerprint
    from bench.datasets.transforms import Preprocess
    from bench.datasets.user import record_extra, record_identity
    from bench.evaluate import DEFAULT_BOOTSTRAP, evaluate, evaluation_identity
    from bench.store import RunRecord, RunStore, run_id

    if not Path(images).is_dir():  # before the dataset is opened (or, for synthetic, generated)
        raise DataError(f"--images {images}: no such folder")
    if not str(name).strip():
        raise ConfigError("--name '': give the label this record carries in tables (e.g. --name \"my model\")")
    requested = pf.parse_metrics(metrics)
    if bootstrap is not None and int(bootstrap) < 0:
        raise ConfigError(f"--bootstrap {bootstrap}: the number of resamples is >= 0 (0: no intervals)")
    bootstrap = DEFAULT_BOOTSTRAP if bootstrap is None else int(bootstrap)
    if not reconstruction and requested is None:
        requested = tuple(m for m in pf.ALL_METRICS if m not in pf.RECONSTRUCTION_METRICS)
    from bench.training import distributed

    ctx = distributed.init_from_env(device or _default_device())  # torchrun: the ranks share the scoring
    with distributed.main_first(ctx):  # rank 0 fills the caches (synthetic data) first
        spec, root = dataset_for(dataset, data_root, overrides)
    plan = pf.metric_plan(spec, requested)
    if not reconstruction and metrics is None:  # say why, not "not requested"
        plan = dataclasses.replace(plan, skipped={**plan.skipped, **{m: "needs --reconstruction (the paired "
                                                  "real image as the reference)" for m in pf.RECONSTRUCTION_METRICS}})
    t0 = time.perf_counter()
    raw = _open_split(spec, root, split, None)
    ids = [str(s.id) for s in raw.samples]
    label_sizes = [_sample_size(raw, k) for k in range(len(ids))]
    samples: dict[str, list[Path]] = {}
    if diversity:  # every <id>_s<k> must be there; the fidelity metrics score <id>_s0
        from bench.metrics.diversity import check_request, check_sample_sizes, group_samples, sample_name

        check_request(diversity)
        samples = group_samples(find_images(Path(images), recursive=recursive), ids, diversity, images)
        first = pair_images([sample_name(i, 0) for i in ids], label_sizes, Path(images), recursive=recursive)
        check_sample_sizes(samples, first.size)
        taken = {p for ps in samples.values() for p in ps}
        pairing = Pairing(dict(zip(ids, first.files.values())), [p for p in first.extra if p not in taken], first.size)
    else:
        pairing = pair_images(ids, label_sizes, Path(images), recursive=recursive)
    if pairing.extra:
        log.warning("ignoring %d images that match no label map of split %r (e.g. %s)", len(pairing.extra), split,
                    pairing.extra[0].name)
    h, w = pairing.size
    if plan.wants(*pf.RECONSTRUCTION_METRICS) and min(h, w) < SSIM_MIN_SIDE:
        raise DataError(f"{images}: {w}x{h} (WxH) images are smaller than SSIM's {SSIM_MIN_SIDE}x{SSIM_MIN_SIDE} "
                        "Gaussian window; score them without --reconstruction")
    if min(h, w) < SMALL_SIDE:
        log.warning("%dx%d (WxH) images are tiny: Inception upsamples them to 299 px and the segmenter sees a few "
                    "pixels; compare only with runs evaluated at the same size", w, h)
    val = _open_split(spec, root, split, Preprocess.fixed((h, w), no_flip=True))
    eval_id = evaluation_identity(spec, protocol=protocol, fid_layer=fid_layer, bootstrap=bootstrap)
    inputs = {
        "kind": "external",
        "label": name,  # a record is named: the same images under another --name are another record
        "dataset": spec.name,
        "split": split,
        "images": files_fingerprint(pairing.files.items()),
        "evaluated_size": [h, w],
        "real_resize": REAL_RESIZE,
        "data": data_fingerprint({split: val}),
        "evaluation": eval_id,
        "metrics": list(plan.metrics),
        "sisbench": __version__,
    }
    if (dataset_identity := record_identity(spec)) is not None:  # a user dataset: name, classes, content
        inputs["dataset_identity"] = dataset_identity
    if diversity:
        from bench.metrics.diversity import request_identity

        inputs["diversity"] = {**request_identity(diversity), "samples": files_fingerprint(
            (f"{i}/s{j}", p) for i, ps in samples.items() for j, p in enumerate(ps))}
    rid = run_id(inputs)
    store = RunStore(results)
    if not force and (existing := store.get(rid)) is not None:
        log.info("cache hit: %s", store.path(rid))
        return existing
    dev = ctx.device(device or _default_device())
    with distributed.all_or_none(ctx):  # missing weights on any rank stop every rank, in one line
        plan = pf.load_segmenter_for(plan, spec, device=dev)
    work = store.work_dir(rid)
    conversions: dict[str, int] = {}
    # rank 0 stages; the others wait in all_or_none's closing collective, and an error stops every rank
    with distributed.all_or_none(ctx):
        if ctx.is_main:
            staged, conversions = stage(pairing, work / "images")
    staged = work / "images"
    if conversions:
        log.warning("decoded with conversions: %s", "; ".join(f"{n} images {c}" for c, n in conversions.items()))
    prep_s = time.perf_counter() - t0
    t = time.perf_counter()
    ev = evaluate(spec, val, staged, protocol=protocol, fid_layer=fid_layer, device=dev, progress=progress,
                  metrics=plan.metrics, segmenter=plan.segmenter, bootstrap=bootstrap, dist=ctx)
    timings = {"prepare_s": prep_s, "evaluate_s": time.perf_counter() - t}
    if diversity:
        from bench.metrics.diversity import score_samples

        t = time.perf_counter()
        div = score_samples(samples, device=dev, progress=progress)
        ev.metrics.update(div.metrics)
        ev.intervals.update(div.intervals(bootstrap))
        ev.protocol["diversity"] = div.protocol()
        timings["diversity_s"] = time.perf_counter() - t
    timings["total_s"] = sum(timings.values())
    record = RunRecord(
        run_id=rid, kind="external", label=name, method="external", dataset=spec.name, seed=0, inputs=inputs,
        config={}, weights=ev.weights, protocol={**ev.protocol, "evaluated_size": [h, w], "real_resize": REAL_RESIZE,
                                                  "split": split},
        metrics=ev.metrics, ceiling=ev.ceiling, intervals=ev.intervals, timings=timings, env=environment(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra={"images": str(Path(images).resolve()), "staged_images": str(staged), "n_images": ev.n_images,
               **({"conversions": conversions} if conversions else {}),
               "n_extra_images": len(pairing.extra), "data_root": str(root.resolve()),
               **({"skipped_metrics": skipped} if (skipped := {**plan.skipped, **ev.skipped}) else {}),
               **ev.extra,
               **({"dataset": dataset_extra} if (dataset_extra := record_extra(spec)) else {})},
    )
    if ctx.is_main:  # rank 0 writes the one record; every rank returns it
        store.put(record, ev.per_image.to_bytes() if ev.per_image is not None else None)
    return record


def _open_split(spec: Any, root: Path, split: str, preprocess: Any) -> Any:
    from bench.datasets import open_split
    from bench.errors import ConfigError

    try:
        ds = open_split(spec, root, split, preprocess)
    except ConfigError as e:  # an unknown split name
        raise DataError(f"--split {split}: {e}") from None
    if not getattr(ds, "samples", None):
        raise DataError(f"split {split!r} of {spec.name} has no samples under {root}")
    return ds


def _sample_size(ds: Any, k: int) -> tuple[int, int]:
    """(H, W) of sample ``k`` as stored: its photo's size, to which every loader aligns the label map."""
    s = ds.samples[k]
    path = getattr(s, "image", None) or s.label
    with Image.open(path) as im:
        w, h = im.size
    return h, w


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


__all__ = ["IMAGE_SUFFIXES", "evaluate_images", "find_images", "pair_images", "stage"]
