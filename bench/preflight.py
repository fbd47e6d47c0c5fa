"""Preflight: everything that can be known before training, generation or evaluation, checked first.

A benchmark run that fails after minutes of training because a weight file is missing, or writes
images of the wrong size with exit 0, wastes the user's time and can poison results. Each check here
costs at most a forward pass on one sample and raises a one-line :class:`~bench.errors.BenchError`
that says what to change. The checks, in order (cheapest first):

1. the metrics asked for exist, and the evaluation segmenter and its weights are there when
   segmentation metrics are asked for (:func:`metric_plan`, :func:`load_segmenter_for`);
2. the VGG19 weights, when the configuration trains with the VGG loss;
3. the instance maps the configuration reads;
4. every sample of each split decodes (once per content: :func:`check_samples`);
5. one generator forward pass on the first validation sample gives an image of the label map's size
   (and, for training, of the training crop's size), with hooks that check every BatchNorm and
   InstanceNorm layer has more than one value per channel at the per-device batch size
   (:func:`check_shapes`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch loads only when a check runs: a bad name or metric fails in well under 2 s
    from torch import nn

from bench.errors import BenchError, ConfigError, DataError, UnknownNameError, WeightsNotFoundError

log = logging.getLogger(__name__)

#: every metric `bench run` computes, by group
FID_METRICS = ("fid", "kid", "precision", "recall")
SEGMENTATION_METRICS = ("miou", "accu")
RECONSTRUCTION_METRICS = ("psnr", "ssim", "rmse")
ALL_METRICS = FID_METRICS + SEGMENTATION_METRICS + RECONSTRUCTION_METRICS


def parse_metrics(text: str | None) -> tuple[str, ...] | None:
    """``"fid,kid"`` → ``("fid", "kid")``; ``None``/``"all"`` → ``None`` (every metric the dataset supports).

    Raises:
        ConfigError: an unknown metric name, or an empty list.
    """
    if text is None or text.strip().lower() == "all":
        return None
    if not text.strip():
        raise ConfigError("--metrics '': name at least one metric (or omit --metrics for all); "
                          f"choose from {','.join(ALL_METRICS)}")
    names = tuple(dict.fromkeys(m.strip().lower() for m in text.split(",") if m.strip()))
    bad = [m for m in names if m not in ALL_METRICS]
    if bad or not names:
        raise ConfigError(f"--metrics {text!r}: unknown metric {', '.join(bad) or '(none)'}; "
                          f"choose from {','.join(ALL_METRICS)}")
    return names


@dataclasses.dataclass(frozen=True)
class MetricPlan:
    """Which metrics a run computes, and why the others are skipped.

    Attributes:
        metrics: metric keys to compute, in :data:`ALL_METRICS` order.
        skipped: ``{metric: reason}`` for each metric not computed.
        segmenter: the loaded segmenter when segmentation metrics are computed, else ``None``.
    """

    metrics: tuple[str, ...]
    skipped: dict[str, str]
    segmenter: Any = None

    def wants(self, *names: str) -> bool:
        return any(n in self.metrics for n in names)


def metric_plan(spec: Any, requested: tuple[str, ...] | None) -> MetricPlan:
    """Decide the metrics of a run (without loading anything), before any long work.

    Args:
        spec: The dataset spec; its segmenter is ``spec.extra["segmenter"]`` or its name.
        requested: Metric keys (:func:`parse_metrics`), or ``None`` for every metric the dataset supports.

    Returns:
        The plan. With ``requested=None`` a dataset that has no evaluation segmenter (a user dataset before
        ``bench segmenter train``, see :mod:`bench.datasets.user`) skips mIoU/accuracy with one logged line
        saying how to get them.

    Raises:
        BenchError: mIoU/accuracy were asked for explicitly on a dataset with no segmenter.
    """
    from bench.evaluate import segmenter_name
    from segmenters import SEGMENTERS

    metrics = list(requested or ALL_METRICS)
    skipped: dict[str, str] = {}
    if requested is not None:
        skipped.update({m: "not requested (--metrics)" for m in ALL_METRICS if m not in requested})
    if any(m in metrics for m in SEGMENTATION_METRICS):
        name = segmenter_name(spec)
        extra = spec.extra or {}
        reason = None
        if extra.get("user_dataset"):
            if not extra.get("segmenter_checkpoint"):
                reason = (f"no evaluation segmenter trained for this {spec.name} dataset yet; train one on its train "
                          f"split with `bench segmenter train {extra.get('hint', '--dataset ' + spec.name)}`, "
                          "then re-run")
        elif name not in SEGMENTERS:
            reason = (f"dataset {spec.name!r} has no evaluation segmenter {name!r} (train one with "
                      f"`bench segmenter train --dataset {spec.name}` where supported)")
        if reason is not None:
            if requested is not None:
                raise BenchError(f"{reason}; drop mIoU/accuracy with --metrics {_no_seg()}")
            log.warning("skipping mIoU and accuracy: %s", reason)
            skipped.update({m: reason for m in SEGMENTATION_METRICS})
            metrics = [m for m in metrics if m not in SEGMENTATION_METRICS]
    return MetricPlan(tuple(m for m in ALL_METRICS if m in metrics), skipped)


def _no_seg() -> str:
    return ",".join(m for m in ALL_METRICS if m not in SEGMENTATION_METRICS)


def load_segmenter_for(plan: MetricPlan, spec: Any, *, device: str = "cpu") -> MetricPlan:
    """The plan with its segmenter loaded (weights located and verified) when it computes mIoU/accuracy.

    Raises:
        WeightsNotFoundError: the segmenter's weights are missing; the message names the file, where to
            get it, and the ``--metrics`` that scores without segmentation.
    """
    if not plan.wants(*SEGMENTATION_METRICS) or plan.segmenter is not None:
        return plan
    from bench.evaluate import segmenter_name
    from segmenters import load_segmenter

    try:
        if (spec.extra or {}).get("user_dataset"):  # the segmenter trained on this dataset's train split
            from segmenters.custom import CustomSegmenter

            seg = CustomSegmenter(spec.extra["segmenter_checkpoint"], spec=spec, device=device)
        else:
            seg = load_segmenter(segmenter_name(spec), device=device)
    except (WeightsNotFoundError, UnknownNameError) as e:
        raise type(e)(f"{e}; or score without segmentation: --metrics {_no_seg()}") from None
    return dataclasses.replace(plan, segmenter=seg)


def check_vgg(method: Any) -> None:
    """The VGG19 weights are present when the configuration trains with the VGG loss.

    Raises:
        WeightsNotFoundError: one line naming the file, where to put it, and ``--set no_vgg_loss=true``.
    """
    if not method.uses_vgg_loss():
        return
    from bench.weights import WEIGHTS, locate

    path = getattr(method.cfg, "vgg_weights", None)
    if path:
        from pathlib import Path

        if not Path(path).is_file():
            raise WeightsNotFoundError(f"vgg_weights={path}: no such file; or train without the VGG loss: "
                                       f"{_vgg_off(method)}")
        return
    if locate("vgg19") is None:
        raise WeightsNotFoundError(f"{WEIGHTS.get('vgg19').missing_message()}; or train without the VGG loss: "
                                   f"{_vgg_off(method)}")


def _vgg_off(method: Any) -> str:
    return "--set add_vgg_loss=false" if hasattr(method.cfg, "add_vgg_loss") else "--set no_vgg_loss=true"


def data_spec(method: Any, spec: Any) -> Any:
    """The spec to open the data with: instance maps are listed and read only when the method reads them.

    Raises:
        ConfigError: the configuration reads instance maps the dataset does not have.
    """
    reads = method.reads_instances()
    if reads and not spec.has_instances:
        raise ConfigError(f"this {method.name} configuration reads instance maps (no_instance=false) but dataset "
                          f"{spec.name!r} has none; use --set no_instance=true")
    return spec if reads == spec.has_instances else dataclasses.replace(spec, has_instances=reads)


def check_samples(*splits: tuple[str, Any], progress: bool = True) -> None:
    """Decode every sample of each ``(name, dataset)`` once, so a bad file fails now, not mid-run.

    Each sample is read exactly as training and evaluation read it (``ds[i]``: decode, id and size checks,
    preprocessing). A split that passed is remembered under ``$BENCH_CACHE/validated/`` by a key over its
    files' content digests, the dataset spec and the loaders' code, so a later run re-checks only what
    changed: a ``stat`` per file.

    Raises:
        DataError: an empty split, or the loader's one-line error for the first bad file (it names the file).
    """
    import sys

    from tqdm import tqdm

    from bench.cache import atomic_write_text, cache_dir, code_fingerprint, files_fingerprint, key_digest

    for name, ds in splits:
        if ds is None:
            continue
        if len(ds) == 0:
            raise DataError(f"the {name} split has no samples")
        files = _sample_files(ds)
        if not files:  # a loader without a file listing: its first sample at least
            ds[0]
            continue
        spec = getattr(ds, "spec", None)
        key = key_digest({
            "files": files_fingerprint(files),
            "spec": [getattr(spec, a, None) for a in ("name", "class_names", "ignore_index", "has_instances")],
            "preprocess": repr(getattr(ds, "preprocess", None)),
            "code": code_fingerprint("bench.datasets.io", "bench.datasets.transforms", "bench.datasets.custom",
                                     "bench.datasets.layouts", type(ds).__module__),
        })
        marker = cache_dir("validated") / f"{key}.json"
        if marker.is_file():
            continue
        for i in tqdm(range(len(ds)), desc=f"check {name} files", file=sys.stderr, disable=not progress,
                      leave=False):
            ds[i]
        atomic_write_text(marker, f'{{"split": "{name}", "samples": {len(ds)}}}\n')


def _sample_files(ds: Any) -> list[tuple[str, Any]]:
    """``(name, path)`` of every file a split's samples read (image, label, instance map, CelebAMask parts)."""
    from pathlib import Path

    files: list[tuple[str, Any]] = []
    for smp in getattr(ds, "samples", None) or []:
        for role in ("image", "label", "instance"):
            p = getattr(smp, role, None)
            if p is not None:
                files.append((f"{smp.id}/{role}", Path(p)))
        files += [(f"{smp.id}/part{cls}", Path(p)) for cls, p in getattr(smp, "parts", ())]
    return files


def _describe_size(cfg: Any) -> str:
    fields = ("preprocess_mode", "load_size", "crop_size", "aspect_ratio")
    return ", ".join(f"{f}={getattr(cfg, f)}" for f in fields if hasattr(cfg, f))


@contextlib.contextmanager
def _norm_probe(nets: dict[str, nn.Module], batch_size: int, found: list[str]) -> Iterator[None]:
    """Forward hooks that record norm layers left with one value per channel at ``batch_size``."""
    import torch
    from torch import nn

    handles = []

    def hook(name: str, module: nn.Module):
        def check(_m: nn.Module, args: tuple[Any, ...]) -> None:
            x = args[0] if args else None
            if not isinstance(x, torch.Tensor) or x.dim() < 2:
                return
            spatial = int(torch.tensor(x.shape[2:]).prod()) if x.dim() > 2 else 1
            per_batch = isinstance(module, nn.modules.batchnorm._BatchNorm)
            values = spatial * (batch_size if per_batch else 1)
            if values <= 1 and not found:
                kind = "BatchNorm" if per_batch else "InstanceNorm"
                size = "x".join(map(str, x.shape[2:])) or "1"
                found.append(f"{name} ({kind}) sees a {size} feature map"
                             + (f" at a per-device batch of {batch_size}" if per_batch else "")
                             + ": one value per channel, its statistics are undefined")
        return check

    for net_name, net in nets.items():
        for mod_name, m in net.named_modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm | nn.modules.instancenorm._InstanceNorm):
                handles.append(m.register_forward_pre_hook(hook(f"{net_name}.{mod_name}", m)))
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def check_shapes(method: Any, val: Any = None, *, train: Any = None, seed: int = 0,
                 batch_size: int | None = None) -> None:
    """One generator forward pass per split: the output has the label map's size, norms are defined.

    Runs under ``torch.no_grad`` (validation in evaluation mode, training in train mode, as the trainer
    prepares its batches) and restores every network's state (running statistics, spectral-norm vectors),
    its train/eval mode and the RNG state afterwards, so it changes neither the networks nor the random
    stream of the run. With ``train`` the training loss is also evaluated once on up to two samples
    (generator and discriminator forward), so norm layers of the discriminator are probed too.

    Args:
        method: A built :class:`methods.base.Method`.
        val: The split to generate (evaluation preprocessing), or ``None`` when only training.
        train: The training split (training preprocessing), or ``None`` when not training.
        seed: The run seed (for the training crop of the first sample).
        batch_size: Per-device training batch (default ``method.cfg.batch_size``).

    Raises:
        ConfigError: the generated size differs from the data size (names the sizes, the preprocessing
            options and a fix), or a norm layer would see one value per channel.
    """
    import torch

    from bench.training.trainer import aug_seed, collate

    bs = int(batch_size or method.cfg.batch_size)
    states = {k: {n: t.clone() for n, t in net.state_dict().items()} for k, net in method.nets.items()}
    modes = {k: net.training for k, net in method.nets.items()}
    found: list[str] = []
    try:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            method.train_mode(False)
            cases = [("validation", [val[0]])] if val is not None else []
            if train is not None:  # two samples when the batch has them: BatchNorm in train mode needs > 1 value
                k = max(1, min(bs, 2, len(train)))
                cases.append(("training", [train[j, aug_seed(seed, 0, j)] for j in range(k)]))
            for split, samples in cases:
                batch = collate(samples)
                want = tuple(samples[0]["label"].shape[-2:])
                try:
                    # training batches are prepared as the trainer does (RESAIL distorts the ground truth there)
                    method.train_mode(split == "training")
                    data = method.prepare(batch)
                    out = method.generate(data, list(range(len(samples))))
                    if split == "training":
                        with _norm_probe(method.nets, bs, found):
                            method.generator_loss(data)
                            method.discriminator_loss(data)
                except BenchError:
                    raise
                except (RuntimeError, ValueError) as e:
                    first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
                    raise ConfigError(
                        f"{method.name} cannot process a {want[1]}x{want[0]} (WxH) {split} label map "
                        f"({_describe_size(method.cfg)}): {first}; set crop_size/aspect_ratio to the data size "
                        "or use a preprocess_mode that resizes"
                    ) from None
                got = tuple(out.shape[-2:])
                if got != want:
                    crop = getattr(method.cfg, "crop_size", None)
                    ratio = want[1] / want[0]
                    if crop == want[1] and abs(getattr(method.cfg, "aspect_ratio", ratio) - ratio) < 1e-6:
                        fix = (f"the generator cannot produce crop_size={crop} exactly (it rounds its first feature "
                               f"map); use a size it produces, e.g. crop_size={got[1]} or {2 * got[1]}")
                    else:
                        fix = (f"set crop_size={want[1]} aspect_ratio={ratio:g}, or a preprocess_mode that resizes "
                               "to the crop")
                    raise ConfigError(
                        f"{method.name} would generate {got[1]}x{got[0]} (WxH) images for {want[1]}x{want[0]} "
                        f"{split} label maps ({_describe_size(method.cfg)}); {fix}"
                    )
                if found:
                    raise ConfigError(f"{found[0]}; use --set batch_size=2 or more, a larger crop_size, or an "
                                      "instance-free norm (e.g. param_free_norm=instance where the method has it)")
    finally:
        for k, net in method.nets.items():
            net.load_state_dict(states[k])
            net.train(modes[k])
