"""The library API behind the CLI: train, generate, run (train/load → generate → evaluate → record)."""

from __future__ import annotations

import hashlib
import logging
import platform
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import __version__
from bench.config import resolve, to_dict
from bench.errors import CheckpointError, DataError
from bench.store import RunRecord, RunStore, run_id

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setup:
    """A resolved (method, dataset) pair: config, dataset spec, data root."""

    method_cls: Any
    cfg: Any
    spec: Any
    data_root: Path

    def preprocess(self, *, train: bool) -> Any:
        from bench.datasets.transforms import Preprocess

        c = self.cfg
        p = Preprocess(
            preprocess_mode=c.preprocess_mode,
            load_size=c.load_size,
            crop_size=c.crop_size,
            aspect_ratio=c.aspect_ratio,
            no_flip=c.no_flip,
        )
        return p if train else p.for_eval()

    def open(self, split: str, *, train: bool = False, spec: Any = None) -> Any:
        """Open ``split`` with the training (random crop/flip) or evaluation preprocessing; ``spec``
        overrides the dataset spec (:func:`bench.preflight.data_spec` drops unread instance maps)."""
        from bench.datasets import open_split

        return open_split(spec or self.spec, self.data_root, split, self.preprocess(train=train))

    def build(self, device: str = "cpu", seed: int = 0) -> Any:
        return self.method_cls(self.cfg, self.spec, device, seed=seed)


def data_root_for(spec: Any, data_root: str | Path | None) -> Path:
    """Where the dataset lives; the synthetic one is generated into the cache on first use, a user
    dataset's spec (:mod:`bench.datasets.user`) names its own folder."""
    if data_root is not None:
        root = Path(data_root)
        if not root.is_dir():
            raise DataError(f"--data-root {root}: no such folder")
        return root
    if spec.extra and spec.extra.get("data_root"):
        return Path(str(spec.extra["data_root"]))
    gen = spec.extra.get("generator") if spec.extra else None
    if gen:
        import importlib

        module, _, attr = str(gen).partition(":")
        return Path(getattr(importlib.import_module(module), attr)())
    raise DataError(f"dataset {spec.name!r} needs --data-root DIR (see `bench data check --dataset {spec.name}`)")


def setup(method: str, dataset: str, *, data_root: str | Path | None = None,
          overrides: dict[str, Any] | None = None) -> Setup:
    """Resolve ``method`` on ``dataset``: a registered name, ``"custom"`` (your own dataset in ``data_root``)
    or the path of a dataset config file (``sisbench.toml``; see :mod:`bench.datasets.user`).

    For a user dataset, ``overrides`` may also hold its ``label_nc`` and ``ignore_id``; the method config
    then gets the options the data decides (:func:`bench.datasets.user.adapt_config`).

    Raises:
        BenchError: an unknown method or dataset, a bad override, a bad user dataset (one line).
    """
    from bench.datasets import DATASETS
    from bench.datasets.user import adapt_config, is_user_dataset, resolve_user_dataset
    from methods import load_method

    if is_user_dataset(dataset):
        user = resolve_user_dataset(dataset, data_root, overrides)
        cfg = adapt_config(resolve(method, user.spec.name, user.overrides), user.spec, user.overrides)
        return Setup(load_method(method), cfg, user.spec, user.root)
    spec = DATASETS.get(dataset)
    cfg = resolve(method, spec.name, overrides)
    return Setup(load_method(method), cfg, spec, data_root_for(spec, data_root))


def dataset_for(dataset: str, data_root: str | Path | None = None,
                overrides: dict[str, Any] | None = None) -> tuple[Any, Path]:
    """The spec and folder of ``dataset`` (a registered name, ``"custom"`` or a dataset config file) for
    commands without a method (``bench data check``, ``bench segmenter train``, ``bench eval``).

    Args:
        overrides: ``--set`` values; only a user dataset's keys (``label_nc``, ``ignore_id``) are accepted.

    Raises:
        ConfigError: another ``--set`` key; BenchError: as :func:`setup` for the dataset.
    """
    from bench.datasets import DATASETS
    from bench.datasets.user import DATASET_KEYS, is_user_dataset, resolve_user_dataset
    from bench.errors import ConfigError

    rest = dict(overrides or {})
    if is_user_dataset(dataset):
        user = resolve_user_dataset(dataset, data_root, rest)
        spec, root, rest = user.spec, user.root, user.overrides
    else:
        spec = DATASETS.get(dataset)
        root = data_root_for(spec, data_root)
    if rest:
        raise ConfigError(f"--set {next(iter(rest))}: this command takes only the dataset keys "
                          f"{', '.join(DATASET_KEYS)} of a custom dataset")
    return spec, root


def check_names(method: str | None, dataset: str | None) -> None:
    """Refuse an unknown method or dataset name in one line before torch is imported (start-up < 2 s).

    Raises:
        UnknownNameError: the name is not registered (with suggestions).
    """
    from methods import available, load_method

    if method is not None and method.lower() not in available():
        load_method(method)  # raises with "did you mean", importing nothing
    if dataset is not None:
        from bench.datasets import DATASETS
        from bench.datasets.user import is_user_dataset

        if not is_user_dataset(dataset):
            DATASETS.get(dataset)


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# --- checkpoints ----------------------------------------------------------------------------------
def setup_from_checkpoint(checkpoint: str | Path, method: str | None = None, dataset: str | None = None, *,
                          data_root: str | Path | None = None,
                          overrides: dict[str, Any] | None = None) -> tuple[Setup, Any]:
    """The :class:`Setup` a checkpoint describes: its method, stored configuration and dataset spec.

    ``--method``/``--dataset`` are optional for a sisbench checkpoint (checked against it when given) and
    ``overrides`` are validated against its configuration; official files need both and use the preset plus
    their ``opt.pkl``/``opt.txt`` (see :func:`bench.checkpoint_config.resolve_checkpoint`, which this wraps
    with the data root; labels-only generation calls it directly, needing no dataset folder).

    Returns:
        ``(setup, resolved)``: ``resolved`` is the :class:`~bench.checkpoint_config.ResolvedCheckpoint`, whose
        ``data`` :func:`load_weights` reuses.

    Raises:
        BenchError: see :func:`bench.checkpoint_config.resolve_checkpoint`; a missing data root (one line).
    """
    from bench.checkpoint_config import resolve_checkpoint

    rc = resolve_checkpoint(checkpoint, method=method, dataset=dataset, overrides=overrides, data_root=data_root)
    return Setup(rc.method_cls, rc.cfg, rc.spec, data_root_for(rc.spec, data_root)), rc


def _config_differences(model: Any, data: dict[str, Any]) -> str:
    stored = data.get("config")
    if not isinstance(stored, dict):
        return ""
    diff = [f"{k}={v!r}" for k, v in stored.items() if hasattr(model.cfg, k) and getattr(model.cfg, k) != v]
    return f"; it was trained with {', '.join(diff[:6])}" if diff else ""


def load_weights(model: Any, checkpoint: str | Path, *, data: Any = None) -> dict[str, Any]:
    """Load a sisbench or an official checkpoint strictly into ``model``; returns its identity
    ``{"path", "sha256", "format": "sisbench" | "official"}``.

    ``data`` is the checkpoint already read (:func:`setup_from_checkpoint`), so it is not read twice.

    Raises:
        CheckpointError: unreadable file, another method, networks that do not fit ``model`` (for a sisbench
            checkpoint the line names the config fields it was trained with that differ from ``model``'s).
    """
    from bench.cache import sha256_file
    from bench.checkpoint_io import read_checkpoint
    from bench.training.trainer import restore

    path = Path(checkpoint)
    if data is None:
        data = read_checkpoint(path)
    if isinstance(data, dict) and data.get("format") == "sisbench-checkpoint":
        if data.get("method") != model.name:
            raise CheckpointError(f"{path}: checkpoint is for method {data.get('method')!r}, not {model.name!r}")
        try:
            restore(model, data, path)
        except CheckpointError as e:
            raise CheckpointError(f"{e}{_config_differences(model, data)}") from None
        kind = "sisbench"
    else:
        try:
            from methods.checkpoints import load_official
        except ImportError:
            raise CheckpointError(f"{path}: not a sisbench checkpoint, and official formats are not supported") from None
        load_official(model, path, data=data)
        kind = "official"
    return {"path": str(path.resolve()), "sha256": sha256_file(path), "format": kind}


# --- train / generate ----------------------------------------------------------------------------
def train(method: str, dataset: str, out_dir: str | Path, *, data_root: str | Path | None = None,
          overrides: dict[str, Any] | None = None, seed: int = 0, resume: bool = True,
          device: str | None = None, progress: bool = True, stop_at: int | None = None) -> Any:
    """Train ``method`` on ``dataset``'s train split into ``out_dir/latest.pth`` (resumed when present).

    The preflight (VGG weights, instance maps, the first sample, the generated size, norm statistics)
    runs before the first iteration. Under torchrun every rank joins one process group
    (:mod:`bench.training.distributed`): rank 0 fills the caches (synthetic data, RESAIL's database) before
    the others read them, a preflight failure on any rank stops all, and training runs DDP.

    Raises:
        BenchError: a preflight failure or a training failure (non-finite state), in one line.
    """
    check_names(method, dataset)  # before torch loads: a misspelt name fails in well under 2 s
    from bench import preflight as pf
    from bench.training import distributed
    from bench.training.trainer import train as train_loop

    ctx = distributed.init_from_env(device or default_device())
    with distributed.main_first(ctx):
        s = setup(method, dataset, data_root=data_root, overrides=overrides)
    model = s.build(ctx.device(device or default_device()), seed)
    with distributed.all_or_none(ctx):
        train_set = s.open("train", train=True, spec=pf.data_spec(model, s.spec))
        pf.check_vgg(model)
        pf.check_samples(("train", train_set), progress=progress)
    with distributed.main_first(ctx):
        model.bind_data(s.data_root, progress=progress and ctx.is_main)
    with distributed.all_or_none(ctx):
        pf.check_shapes(model, train=train_set, seed=seed)
    return train_loop(model, train_set, out_dir, seed=seed, dataset_name=s.spec.name,
                      resume=resume, stop_at=stop_at, progress=progress)


def check_world_size(method: str, dataset: str, out_dir: str | Path, nproc: int, *,
                     data_root: str | Path | None = None, overrides: dict[str, Any] | None = None,
                     resume: bool = True) -> None:
    """Before starting ``nproc`` training processes (``bench train --nproc``): the global ``batch_size`` divides
    over them, and ``out_dir/latest.pth``, when it is to be resumed, can be split that way.

    Raises:
        ConfigError: the batch does not divide; CheckpointError: the checkpoint cannot be resumed by ``nproc``
            processes; BenchError: as :func:`setup` (each one line).
    """
    from bench.checkpoint_io import load_checkpoint
    from bench.training import distributed

    cfg = setup(method, dataset, data_root=data_root, overrides=overrides).cfg
    ctx = distributed.Dist(world_size=nproc)
    ckpt = Path(out_dir) / "latest.pth"
    if resume and ckpt.is_file():
        distributed.check_resume(load_checkpoint(ckpt), ckpt, cfg.batch_size, ctx)
    distributed.per_rank_batch(cfg.batch_size, ctx)


def generate(method: str | None, dataset: str | None, checkpoint: str | Path, out_dir: Any, *,
             data_root: str | Path | None = None, overrides: dict[str, Any] | None = None, seed: int = 0,
             batch_size: int = 8, samples: int = 1, split: str = "val", device: str | None = None,
             progress: bool = True, style: dict[str, Any] | None = None, overwrite: bool = False,
             labels: str | Path | None = None, instances: str | Path | None = None,
             native_size: bool = False) -> Path:
    """Generate ``split`` (or, with ``labels``, any folder of label maps) with a trained or official checkpoint.

    The configuration is the checkpoint's (:func:`setup_from_checkpoint`): a sisbench checkpoint needs neither
    ``method``/``dataset`` nor ``overrides``, which, when given, are checked against it (a shape-changing
    ``--set`` is refused in one line, others are logged as overrides). ``style`` is SEAN's style control: for
    a split ``{"style_from": id, "swap_regions": [names], "interpolate": t}`` (see :mod:`bench.style`); with
    ``labels`` ``{"style_from": PHOTO, "style_label": MAP}`` (see :mod:`bench.labels_only`).

    Writes ``<id>.png`` (uint8 RGB) per label map into ``out_dir``. A non-empty folder that sisbench did not
    write is refused unless ``overwrite`` (which still deletes nothing sisbench did not write; see
    :mod:`bench.outputs`). The folder check and the preflight (every label map's ids with ``labels``, the
    first sample, the generated size) run before any image is written.

    Args:
        labels: A folder of single-channel PNG label maps to synthesise instead of a split; no photos and no
            training data are read unless the method needs them (:mod:`bench.labels_only`; ``data_root`` then
            names the training dataset).
        instances: With ``labels``, a folder of ``<stem>.png`` instance maps.
        native_size: With ``labels``, keep each map's size instead of the evaluation preprocessing.

    Raises:
        BenchError: a foreign output folder, a wrong checkpoint or override, a preflight failure, a label id
            outside the checkpoint's classes, bad style arguments, training data a method needs, in one line.
    """
    check_names(method, dataset)  # before torch loads: a misspelt name fails in well under 2 s
    from bench import preflight as pf
    from bench.generate import GENERATED_KIND, generate_split
    from bench.outputs import as_output_dir
    from bench.training import distributed

    out_dir = as_output_dir(out_dir, overwrite=overwrite, kind=GENERATED_KIND)
    ctx = distributed.init_from_env(device or default_device())
    if labels is not None:
        from bench.checkpoint_config import resolve_checkpoint
        from bench.labels_only import generate_labels

        with distributed.main_first(ctx):  # labels-only generation is not sharded: rank 0 writes it all
            if not ctx.is_main:
                return out_dir.path
            root = data_root_for_labels(data_root)
            rc = resolve_checkpoint(checkpoint, method=method, dataset=dataset, overrides=overrides,
                                    data_root=data_root)
            model = rc.method_cls(rc.cfg, rc.spec, device or default_device())
            load_weights(model, checkpoint, data=rc.data)
            return generate_labels(model, labels, out_dir, instances=instances, data_root=root, seed=seed,
                                   batch_size=batch_size, samples=samples, progress=progress, style=style,
                                   native_size=native_size)
    with distributed.main_first(ctx):
        s, rc = setup_from_checkpoint(checkpoint, method, dataset, data_root=data_root, overrides=overrides)
    model = s.build(ctx.device(device or default_device()))
    with distributed.all_or_none(ctx):
        load_weights(model, checkpoint, data=rc.data)
        dspec = pf.data_spec(model, s.spec)
        ds = s.open(split, spec=dspec)
        pf.check_samples((split, ds), progress=progress)
    with distributed.main_first(ctx):
        model.bind_data(s.data_root, progress=progress and ctx.is_main)
    with distributed.all_or_none(ctx):
        pf.check_shapes(model, ds, seed=seed)
        transform = None
        if style:
            from bench.style import style_transform

            transform = style_transform(model, ds, **style)
    return generate_split(model, ds, out_dir, seed=seed, batch_size=batch_size, samples=samples,
                          progress=progress, transform_batch=transform, stats_dataset=s.open("train", spec=dspec),
                          dist=ctx)


def data_root_for_labels(data_root: str | Path | None) -> Path | None:
    """``--data-root`` for labels-only generation: optional (only some methods read training data)."""
    if data_root is None:
        return None
    root = Path(data_root)
    if not root.is_dir():
        raise DataError(f"--data-root {root}: no such folder")
    return root


# --- run ----------------------------------------------------------------------------------------
def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def environment() -> dict[str, str]:
    import numpy
    import torch

    env = {
        "sisbench": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "git_commit": _git_commit(),
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }
    for pkg in ("torch_fidelity", "skimage", "mmseg", "torchvision"):
        try:
            env[pkg] = __import__(pkg).__version__
        except Exception:  # noqa: BLE001 - optional, version is informational
            pass
    return env


def sample_files(ds: Any) -> list[tuple[str, Path]]:
    """``(name, path)`` of every file a split's samples read: image, label, instance map, CelebAMask parts."""
    from bench.preflight import _sample_files

    return _sample_files(ds)


def data_fingerprint(splits: dict[str, Any]) -> dict[str, Any]:
    """Identify the data a run used by content: sha256 over every sample's id, role and file digest.

    Paths are relative (sample ids), so the same data in another folder or on another machine has the
    same fingerprint, and any changed byte gives a new one. Digests are memoised by file stat
    (:func:`bench.cache.file_digest`), so a re-run costs a ``stat`` per file.
    """
    from bench.cache import files_fingerprint

    out: dict[str, Any] = {"kind": "content"}
    for name, ds in splits.items():
        files = sample_files(ds)
        if not files:  # a loader without a file listing: fall back to the ids it returns
            files_sha = hashlib.sha256("\n".join(str(ds[i]["id"]) for i in range(len(ds))).encode()).hexdigest()
        else:
            files_sha = files_fingerprint(files)
        out[name] = {"n": len(ds), "files_sha256": files_sha}
    return out


def run(method: str, dataset: str, *, data_root: str | Path | None = None, checkpoint: str | Path | None = None,
        overrides: dict[str, Any] | None = None, seed: int = 0, results: str | Path = "results",
        force: bool = False, cached_only: bool = False, device: str | None = None, progress: bool = True,
        batch_size: int = 16, fid_layer: str = "2048", protocol: str = "native",
        metrics: str | tuple[str, ...] | None = None,
        bootstrap: int | None = None, diversity: int = 0) -> RunRecord:
    """Train (or load ``checkpoint``) → generate the validation set → evaluate → one RunRecord.

    The record is keyed by a hash of the inputs (config, seed, checkpoint digest, the data's content,
    the evaluation identity, the metric set); an existing record is returned unless ``force``.
    Before any long work the preflight (:mod:`bench.preflight`) checks weights, data, instance maps and
    the generated size. Training and generation live in ``results/work/<run_id>/`` and resume after an
    interruption.

    Args:
        metrics: ``"fid,kid"``-style list or tuple of metric keys to compute; ``None`` computes every
            metric the dataset supports (a dataset with no evaluation segmenter skips mIoU/accuracy).
            Skipped metrics and the reason are recorded in ``record.extra["skipped_metrics"]``.
        bootstrap: Resamples of the percentile-bootstrap intervals (default
            :data:`bench.evaluate.DEFAULT_BOOTSTRAP`; 0: no intervals). See :mod:`bench.intervals`.
        diversity: K >= 2: also generate K samples per label map and record the OASIS diversity metrics
            ``lpips`` and ``ms_ssim`` (:mod:`bench.metrics.diversity`; K more generations); 0: off.

    Raises:
        BenchError: any preflight failure (one line), or a failure of training, generation or evaluation.
    """
    check_names(method, dataset)  # before torch loads: a misspelt name fails in well under 2 s
    from bench import preflight as pf
    from bench.cache import sha256_file
    from bench.datasets.user import record_extra, record_identity
    from bench.evaluate import DEFAULT_BOOTSTRAP, evaluate, evaluation_identity

    bootstrap = DEFAULT_BOOTSTRAP if bootstrap is None else int(bootstrap)
    requested = pf.parse_metrics(metrics if isinstance(metrics, str) or metrics is None else ",".join(metrics))
    from bench.training import distributed

    ctx = distributed.init_from_env(device or default_device())  # torchrun: the ranks share every stage
    with distributed.main_first(ctx):  # rank 0 fills the caches (synthetic data) first
        if checkpoint is None:
            s = setup(method, dataset, data_root=data_root, overrides=overrides)
        else:  # the checkpoint's own configuration; --set is an override validated against it
            s = setup_from_checkpoint(checkpoint, method, dataset, data_root=data_root, overrides=overrides)[0]
    plan = pf.metric_plan(s.spec, requested)
    store = RunStore(results)
    if checkpoint is not None and not Path(checkpoint).is_file():
        what = "is a folder, not a checkpoint file" if Path(checkpoint).is_dir() else "no such checkpoint file"
        raise CheckpointError(f"{checkpoint}: {what} (e.g. runs/spade/latest.pth or an official latest_net_G.pth)")
    ckpt_id = {"path": str(Path(checkpoint).resolve()), "sha256": sha256_file(checkpoint)} if checkpoint else None
    dev = ctx.device(device or default_device())
    model = s.build(dev, seed)
    if diversity:  # a method that draws no noise, or K < 2, is refused before any long work
        from bench.metrics.diversity import check_request

        check_request(diversity, method=s.method_cls.name, stochastic=model.stochastic)
    dspec = pf.data_spec(model, s.spec)
    train_set = s.open("train", train=True, spec=dspec)
    val = s.open("val", spec=dspec)
    eval_id = evaluation_identity(s.spec, protocol=protocol, fid_layer=fid_layer, bootstrap=bootstrap)
    inputs = {
        "method": s.method_cls.name,
        "dataset": s.spec.name,
        "config": to_dict(s.cfg),
        "seed": seed,
        "checkpoint": ckpt_id["sha256"] if ckpt_id else "trained",
        "data": data_fingerprint({"train": train_set, "val": val}),
        "evaluation": eval_id,
        "metrics": list(plan.metrics),
        "sisbench": __version__,
    }
    if (dataset_identity := record_identity(s.spec)) is not None:  # a user dataset: name, classes, content
        inputs["dataset_identity"] = dataset_identity
    if checkpoint is None and ctx.enabled:  # DDP training is another computation (one process: ids unchanged)
        inputs["training_world_size"] = ctx.world_size
    if diversity:  # only then: default run ids stay as they were; a missing LPIPS trunk fails here
        from bench.metrics.diversity import request_identity

        inputs["diversity"] = request_identity(diversity)
    rid = run_id(inputs)
    if not force and (existing := store.get(rid)) is not None:
        log.info("cache hit: %s", store.path(rid))
        return existing
    if cached_only:  # cached_run(): the inputs have no record yet; nothing is done
        raise _NotCached(rid)

    # preflight: everything that can fail is checked before training, generation and evaluation
    t = time.perf_counter()
    with distributed.all_or_none(ctx):  # a failure on any rank stops every rank, in one line
        plan = pf.load_segmenter_for(plan, s.spec, device=dev)
        if checkpoint is None:
            pf.check_vgg(model)
        pf.check_samples(("train", train_set), ("val", val), progress=progress)
        if checkpoint is not None:
            weights_g = load_weights(model, checkpoint)
    with distributed.main_first(ctx):
        model.bind_data(s.data_root, progress=progress and ctx.is_main)
    with distributed.all_or_none(ctx):
        pf.check_shapes(model, val, train=train_set if checkpoint is None else None, seed=seed)
    preflight_s = time.perf_counter() - t

    work = store.work_dir(rid)
    timings: dict[str, float] = {"preflight_s": preflight_s}
    t = time.perf_counter()
    if checkpoint is None:
        from bench.training.trainer import train as train_loop

        res = train_loop(model, train_set, work / "train", seed=seed, dataset_name=s.spec.name, progress=progress)
        ckpt_path = res.checkpoint
        weights_g = load_weights(model, ckpt_path)
        weights_g["iterations"] = res.iterations
    timings["train_or_load_s"] = time.perf_counter() - t

    from bench.generate import generate_split

    t = time.perf_counter()
    images = generate_split(model, val, work / "images", seed=seed, batch_size=batch_size, progress=progress,
                            stats_dataset=s.open("train", spec=dspec), overwrite=True, dist=ctx)  # our own folder
    timings["generate_s"] = time.perf_counter() - t

    t = time.perf_counter()
    ev = evaluate(s.spec, val, images, protocol=protocol, fid_layer=fid_layer, device=dev, progress=progress,
                  metrics=plan.metrics, segmenter=plan.segmenter, bootstrap=bootstrap, dist=ctx)
    timings["evaluate_s"] = time.perf_counter() - t
    if diversity:  # K samples per label map from recorded seeds, then pairwise LPIPS / MS-SSIM
        from bench.metrics.diversity import score_generated

        t = time.perf_counter()
        samples = generate_split(model, val, work / "samples", seed=seed, batch_size=batch_size, samples=diversity,
                                 progress=progress, stats_dataset=s.open("train", spec=dspec), overwrite=True,
                                 dist=ctx)  # torchrun: shared by the ranks (each then scores the whole folder)
        div = score_generated(samples, diversity, device=dev, progress=progress and ctx.is_main)
        ev.metrics.update(div.metrics)
        ev.intervals.update(div.intervals(bootstrap))
        ev.protocol["diversity"] = div.protocol()
        ev.extra["diversity_samples"] = str(samples)
        timings["diversity_s"] = time.perf_counter() - t
    timings["total_s"] = sum(timings.values())
    record = RunRecord(
        run_id=rid,
        method=s.method_cls.name,
        dataset=s.spec.name,
        seed=seed,
        inputs=inputs,
        config=to_dict(s.cfg),
        weights={"generator": weights_g, **ev.weights},
        protocol=ev.protocol,
        metrics=ev.metrics,
        ceiling=ev.ceiling,
        intervals=ev.intervals,
        timings=timings,
        env=environment(),
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        extra={"images": str(Path(images).resolve()), "n_images": ev.n_images, "data_root": str(s.data_root.resolve()),
               "distributed": {**ctx.describe(), "per_rank_batch": s.cfg.batch_size // ctx.world_size
                               if checkpoint is None else None},
               **({"skipped_metrics": skipped} if (skipped := {**plan.skipped, **ev.skipped}) else {}),
               **ev.extra,
               **({"dataset": dataset_extra} if (dataset_extra := record_extra(s.spec)) else {})},
    )
    if ctx.is_main:  # rank 0 writes the one record; every rank returns it
        store.put(record, ev.per_image.to_bytes() if ev.per_image is not None else None)
    return ctx.broadcast(record) if ctx.enabled else record


class _NotCached(Exception):
    """``run(..., cached_only=True)`` found no record of its inputs."""


def cached_run(method: str, dataset: str, **kwargs: Any) -> RunRecord | None:
    """The stored record :func:`run` would return for these arguments without recomputing, or None: the inputs
    are resolved and hashed, nothing is trained, generated or evaluated (how ``bench ablate --launcher`` finds the
    cells to submit). ``force=True`` gives None."""
    try:
        return run(method, dataset, cached_only=True, **kwargs)
    except _NotCached:
        return None


def eval_images(dataset: str, images: str | Path, name: str, **kwargs: Any) -> RunRecord:
    """Score a folder of images made by any model; one ``external`` record (see
    :func:`bench.external.evaluate_images` for the arguments, the protocol and the errors)."""
    from bench.external import evaluate_images

    return evaluate_images(dataset, images, name, **kwargs)


def parse_seeds(text: str | None) -> list[int] | None:
    """``"0,1,2"`` → ``[0, 1, 2]``; ``"0-4"`` → ``[0, 1, 2, 3, 4]``; ``None`` → ``None``.

    Raises:
        ConfigError: an empty part (``0,,1``), not integers, a reversed range (``3-1``), more than
            :data:`MAX_SEEDS` seeds, a seed outside ``[0, 2**32 - 1]`` (numpy's), or a repeated seed.
    """
    from bench.errors import ConfigError

    if text is None:
        return None
    out: list[int] = []
    parts = [p.strip() for p in text.split(",")]
    if not text.strip() or any(not p for p in parts):
        raise ConfigError(f"--seeds {text!r}: an empty entry; expected integers like 0,1,2 or 0-4")
    for part in parts:
        lo, sep, hi = part.partition("-")
        try:
            first, last = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ConfigError(f"--seeds {text!r}: expected integers like 0,1,2 or 0-4 (not {part!r})") from None
        if last < first:
            raise ConfigError(f"--seeds {text!r}: the range {part!r} is reversed; write {last}-{first}")
        if last - first + 1 + len(out) > MAX_SEEDS:
            raise ConfigError(f"--seeds {text!r}: more than {MAX_SEEDS} seeds (each is a full training)")
        out += range(first, last + 1)
    for sd in out:
        check_seed(sd, "--seeds")
    if len(set(out)) != len(out):
        raise ConfigError(f"--seeds {text!r}: expected distinct non-negative integers like 0,1,2")
    return out


#: the most seeds one --seeds accepts (each seed is a full training run)
MAX_SEEDS = 1000


def check_seed(seed: int, flag: str = "--seed") -> int:
    """``seed`` when it is a valid training seed: an integer in ``[0, 2**32 - 1]`` (numpy's SeedSequence
    and torch accept it). Raises ConfigError in one line otherwise."""
    from bench.errors import ConfigError

    if not 0 <= int(seed) <= 2**32 - 1:
        raise ConfigError(f"{flag} {seed}: a seed is an integer from 0 to {2**32 - 1}")
    return int(seed)


def run_seeds(method: str, dataset: str, seeds: list[int], **kwargs: Any) -> list[RunRecord]:
    """:func:`run` once per training seed (each an ordinary cached record, in seed order)."""
    return [run(method, dataset, seed=sd, **kwargs) for sd in seeds]


def as_dict(record: RunRecord) -> dict[str, Any]:
    return asdict(record)


# --- ablation grids ------------------------------------------------------------------------------
def parse_grid(items: tuple[str, ...] | list[str]) -> dict[str, list[str]]:
    """``["noise=on,off", "downsampling=on,off"]`` → ``{"noise": ["on", "off"], ...}``."""
    from bench.errors import ConfigError

    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not key.strip() or not vals:
            raise ConfigError(f"--grid expects FIELD=V1,V2,..., got {item!r}")
        if key.strip() in grid:
            raise ConfigError(f"--grid names {key.strip()!r} twice")
        grid[key.strip()] = vals
    if not grid:
        raise ConfigError("--grid needs at least one FIELD=V1,V2")
    return grid


def ablate(method: str, dataset: str, grid: dict[str, list[str]], *, data_root: str | Path | None = None,
           overrides: dict[str, Any] | None = None, seed: int = 0, results: str | Path = "results",
           force: bool = False, device: str | None = None, progress: bool = True,
           fid_layer: str = "2048", seeds: list[int] | None = None,
           launcher: Any = None) -> tuple[Path, list[RunRecord]]:
    """Run every cell of the cartesian ``grid`` (each an ordinary cached run record) and write a manifest.

    With a ``launcher`` (:class:`bench.launchers.Launcher`: ``local`` processes or ``slurm`` jobs via submitit)
    every cell without a record becomes its own job and cached cells are skipped; the records land in the same
    run store. Without one, the cells run one after the other in this process.

    With ``seeds`` every cell is trained once per seed (each an ordinary cached run); the manifest then
    lists each cell's ``run_ids`` in seed order (``run_id`` stays the first, for older readers), and the
    report shows mean ± sd over them.

    The manifest ``results/ablations/<method>-<dataset>-<hash>.json`` lists the cells and their run ids;
    ``bench report`` renders it as an ablation table.
    """
    import itertools
    import json

    from bench.cache import atomic_write_text
    from bench.store import canonical_json

    base = dict(overrides or {})
    keys = list(grid)
    from bench.datasets.user import record_identity

    # validate every value before the first (long) run
    for combo in itertools.product(*(grid[k] for k in keys)):
        spec = setup(method, dataset, data_root=data_root, overrides={**base, **dict(zip(keys, combo))}).spec
    cells, records = [], []
    seed_list = list(seeds) if seeds else [seed]
    calls = {(combo, sd): {"method": method, "dataset": dataset, "data_root": data_root,
                           "overrides": {**base, **dict(zip(keys, combo))}, "seed": sd, "results": results,
                           "force": force, "device": device, "fid_layer": fid_layer}
             for combo in itertools.product(*(grid[k] for k in keys)) for sd in seed_list}
    done = _ablate_with(launcher, calls, keys) if launcher is not None else {}
    for combo in itertools.product(*(grid[k] for k in keys)):
        cell = dict(zip(keys, combo))
        ids = []
        for sd in seed_list:
            rec = done.get((combo, sd)) or run(**calls[combo, sd], progress=progress)
            records.append(rec)
            ids.append(rec.run_id)
        cells.append({"label": " ".join(f"{k}={v}" for k, v in cell.items()), "set": cell, "run_id": ids[0],
                      **({"run_ids": ids, "seeds": seed_list} if seeds else {})})
    manifest = {"method": method, "dataset": spec.name, "grid": grid, "base": base,
                "seed": seed_list if seeds else seed, "cells": cells}
    key = {k: manifest[k] for k in ("grid", "base", "seed")}
    if (ident := record_identity(spec)) is not None:  # a user dataset ("custom"): which one
        key["dataset_identity"] = manifest["dataset_identity"] = ident
    name = hashlib.sha256(canonical_json(key).encode()).hexdigest()[:10]
    path = Path(results) / "ablations" / f"{method}-{spec.name}-{name}.json"
    atomic_write_text(path, json.dumps(manifest, indent=2))
    return path, records


def _ablate_with(launcher: Any, calls: dict[Any, dict[str, Any]], keys: list[str]) -> dict[Any, RunRecord]:
    """The cells' records through ``launcher``: cached ones read, the others each run as a job."""
    from bench.launchers import run_cells

    done: dict[Any, RunRecord] = {}
    todo = []
    for key, kw in calls.items():
        rec = cached_run(**kw)
        if rec is None:
            todo.append(key)
        else:
            done[key] = rec
    labels = [" ".join(f"{k}={v}" for k, v in zip(keys, combo)) + f" seed={sd}" for combo, sd in todo]
    log.info("%d cell(s) cached, %d to run with the %s launcher", len(done), len(todo), launcher.kind)
    for key, rec in zip(todo, run_cells(launcher, [calls[k] for k in todo], labels)):
        done[key] = rec
    return done
