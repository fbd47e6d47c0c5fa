"""The numbers the papers report, as data: one JSON file per paper beside this module.

Each file (``spade.json``, ``sean.json``, ``oasis.json``, ``resail.json``) holds the published tables of
one paper with their sources and the protocol the paper used, and marks every figure as verified or not:
``"verified": true`` only where a figure was checked against the paper (or, for the one SEAN cell, quoted
by its authors in ZPdesu/SEAN#8); everything recalled or copied from secondary notes is ``false`` and must
be checked against the PDF before it is cited. pix2pixHD's own paper reports no FID and scores
Cityscapes at 2048x1024 with PSPNet, so its rows here are the ones the SPADE and OASIS papers quote.

Units: the files store mIoU and pixel accuracy in **percent, as the papers print them** (each file says so
in ``"units"``); :func:`load_reported` divides them by 100, so :attr:`ReportedRow.metrics` uses the run
records' convention (fractions in [0, 1]; see :mod:`bench.metrics`). All other metrics are stored raw
(FID, KID; PSNR in dB; SSIM; RMSE on the [0, 1] pixel scale; LPIPS; MS-SSIM).

Metric keys are sisbench's (:data:`bench.metrics.METRICS`) plus the two diversity metrics the OASIS paper
reports, :data:`EXTRA_METRICS` (``lpips``, ``ms_ssim``), which sisbench does not compute. Method and
dataset keys are sisbench's too (``bench ls methods``, ``bench ls datasets``); rows of methods or datasets
sisbench lacks (CRN, SIMS, CC-FPSE, SPADE+, ADE20K-outdoor, Facades) are left out and listed in each file's
``"omitted"``. This module imports neither torch nor numpy.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from bench.errors import BenchError
from bench.metrics import METRICS, MetricInfo

__all__ = [
    "EXTRA_METRICS",
    "PERCENT_METRICS",
    "Paper",
    "PaperProtocol",
    "ReportedDataError",
    "ReportedRow",
    "format_reported",
    "format_row",
    "format_value",
    "load_reported",
    "metric_info",
    "reported_for",
]

DATA_DIR = Path(__file__).parent
SCHEMA = 1

#: Metrics the papers print in percent and run records store as fractions in [0, 1].
PERCENT_METRICS = ("miou", "accu")

#: Diversity metrics reported by the OASIS paper that sisbench does not compute (boschresearch/OASIS#16:
#: ``lpips.LPIPS(net='vgg')`` v0.1 and ``pytorch_msssim.ms_ssim(data_range=1)`` between samples of one label map).
EXTRA_METRICS: dict[str, MetricInfo] = {
    "lpips": MetricInfo(name="lpips", label="LPIPS", higher_is_better=True, fmt=".3f",
                        description="mean LPIPS (VGG) between samples for the same label map; higher = more diverse"),
    "ms_ssim": MetricInfo(name="ms_ssim", label="MS-SSIM", higher_is_better=False, fmt=".2f",
                          description="mean MS-SSIM between samples for the same label map; lower = more diverse"),
}

DAGGER = "†"


class ReportedDataError(BenchError):
    """A reported-numbers file is malformed (unknown method, dataset or metric key, missing field, ...)."""


@dataclass(frozen=True, kw_only=True)
class Paper:
    """Where a reported number comes from.

    Attributes:
        key: file stem, e.g. ``"spade"``.
        short: display name, e.g. ``"SPADE paper"``.
        title, authors, venue: bibliographic facts (``venue`` e.g. ``"CVPR 2019"``).
        arxiv: arXiv id, with a version suffix where the numbers are tied to one (``"1903.07291v2"``).
    """

    key: str
    short: str
    title: str
    authors: str
    venue: str
    arxiv: str


@dataclass(frozen=True, kw_only=True)
class PaperProtocol:
    """How a paper produced one dataset's numbers in one table.

    Attributes:
        resolution: generated image size ``(H, W)`` in pixels, or None where the paper does not say.
        segmenter: sisbench segmenter name (``bench ls segmenters``) the paper used, or None if not stated.
        n_images: number of validation images scored, or None if not stated.
        reconstruction: True when the real image was an input (SEAN: style from the ground-truth image).
        fid: FID implementation and reference set, as the sources describe it.
        segmentation_resolution: at which size the segmenter saw the images (free text; "not stated" often).
        sources: where these protocol facts come from.
    """

    resolution: tuple[int, int] | None
    segmenter: str | None
    n_images: int | None
    reconstruction: bool
    fid: str
    segmentation_resolution: str
    sources: str


@dataclass(frozen=True, kw_only=True)
class ReportedRow:
    """One method on one dataset as one paper's table reports it.

    Attributes:
        paper: the source paper.
        table: the table in that paper (``"Table 1"``).
        caption: what the table measures.
        method, dataset: sisbench keys.
        metrics: metric key -> value in the run records' units (mIoU/accu as fractions in [0, 1]).
        decimals: metric key -> decimals as printed in the paper (``14.30`` -> 2), for display.
        verified: metric key -> True only where the figure was checked against the paper (same keys as metrics).
        verified_by: what the verified figures were checked against ("" when none is verified).
        protocol: the paper's protocol for this dataset in this table.
        note: a remark on this row ("" if none), e.g. "quoted from SPADE Table 1".
        file: the data file the row was read from.
    """

    paper: Paper
    table: str
    caption: str
    method: str
    dataset: str
    metrics: dict[str, float] = field(hash=False)
    decimals: dict[str, int] = field(hash=False)
    verified: dict[str, bool] = field(hash=False)
    verified_by: str
    protocol: PaperProtocol
    note: str
    file: Path = field(compare=False)

    @property
    def source(self) -> str:
        """``"SPADE paper (CVPR 2019), Table 1"``."""
        return f"{self.paper.short} ({self.paper.venue}), {self.table}"

    def all_verified(self) -> bool:
        return all(self.verified.values())


def metric_info(name: str) -> MetricInfo:
    """Presentation facts of a metric key: :data:`bench.metrics.METRICS` or :data:`EXTRA_METRICS`.

    Raises:
        UnknownNameError: for any other key.
    """
    return EXTRA_METRICS[name] if name in EXTRA_METRICS else METRICS.get(name)


def format_value(name: str, value: float, *, decimals: int | None = None, verified: bool = True) -> str:
    """A value as the papers print it: mIoU/accu in percent, ``decimals`` digits (default: the metric's
    format), with † appended when not verified."""
    shown = value * 100 if name in PERCENT_METRICS else value
    if decimals is not None:
        text = f"{shown:.{decimals}f}"
    elif name in PERCENT_METRICS:
        text = f"{shown:.1f}"
    else:
        text = metric_info(name).format(shown)
    return text if verified else text + DAGGER


def format_reported(row: ReportedRow, name: str) -> str:
    """``row``'s value of metric ``name`` as the paper prints it, with † if not verified; "–" if absent."""
    if name not in row.metrics:
        return "–"
    return format_value(name, row.metrics[name], decimals=row.decimals[name], verified=row.verified[name])


def format_row(row: ReportedRow) -> str:
    """One line for ``bench ls reported``: ``SPADE paper (CVPR 2019), Table 1  spade  ade20k  mIoU 38.5 ...``."""
    metrics = "  ".join(f"{metric_info(k).label} {format_reported(row, k)}" for k in row.metrics)
    return f"{row.source}\t{row.method}\t{row.dataset}\t{metrics}"


# --- loading and validation ----------------------------------------------------------------------


def _known(kind: str) -> list[str]:
    if kind == "method":
        from methods import MODULES  # names only; imports no method module (and no torch)

        return sorted(MODULES)
    if kind == "dataset":
        from bench.datasets import DATASETS

        return [d for d in DATASETS.names() if d != "synthetic"]  # the synthetic dataset has no papers
    if kind == "segmenter":
        from segmenters import SEGMENTERS

        return SEGMENTERS.names()
    return sorted({*METRICS.names(), *EXTRA_METRICS})


class _Reader:
    """Field access that raises :class:`ReportedDataError` naming the file and the place in it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, msg: str) -> ReportedDataError:
        return ReportedDataError(f"{self.path}: {where}: {msg}; fix the file (see the bench.reported docstring)")

    def get(self, obj: Any, key: str, typ: type | tuple[type, ...], where: str, *, optional: bool = False) -> Any:
        if not isinstance(obj, dict):
            raise self.fail(where, f"expected an object, got {type(obj).__name__}")
        if key not in obj:
            if optional:
                return None
            raise self.fail(where, f"missing field {key!r}")
        value = obj[key]
        if optional and value is None:
            return None
        if not isinstance(value, typ) or (isinstance(value, bool) and bool not in _as_tuple(typ)):
            raise self.fail(where, f"field {key!r} must be {_type_names(typ)}, got {value!r}")
        return value

    def only(self, obj: dict[str, Any], allowed: set[str], where: str) -> None:
        extra = sorted(set(obj) - allowed)
        if extra:
            raise self.fail(where, f"unknown field(s) {', '.join(map(repr, extra))} (allowed: {', '.join(sorted(allowed))})")

    def name(self, kind: str, value: str, where: str) -> str:
        known = _known(kind)
        if value not in known:
            raise self.fail(where, f"unknown {kind} {value!r} (known: {', '.join(known)})")
        return value


def _as_tuple(typ: type | tuple[type, ...]) -> tuple[type, ...]:
    return typ if isinstance(typ, tuple) else (typ,)


def _type_names(typ: type | tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in _as_tuple(typ))


_FILE_FIELDS = {"schema", "paper", "units", "tables", "omitted"}
_PAPER_FIELDS = {"key", "short", "title", "authors", "venue", "arxiv"}
_TABLE_FIELDS = {"table", "caption", "protocol", "rows"}
_PROTOCOL_FIELDS = {"reconstruction", "fid", "segmentation_resolution", "datasets", "sources"}
_DATASET_PROTOCOL_FIELDS = {"resolution", "segmenter", "n_images"}
_ROW_FIELDS = {"method", "dataset", "metrics", "verified", "verified_by", "note"}


def _protocols(r: _Reader, proto: Any, where: str) -> dict[str, PaperProtocol]:
    r.get({"protocol": proto}, "protocol", dict, where)
    r.only(proto, _PROTOCOL_FIELDS, where + " protocol")
    common = {
        "reconstruction": r.get(proto, "reconstruction", bool, where + " protocol"),
        "fid": r.get(proto, "fid", str, where + " protocol"),
        "segmentation_resolution": r.get(proto, "segmentation_resolution", str, where + " protocol"),
        "sources": r.get(proto, "sources", str, where + " protocol"),
    }
    out = {}
    for ds, spec in r.get(proto, "datasets", dict, where + " protocol").items():
        w = f"{where} protocol for {ds!r}"
        r.name("dataset", ds, w)
        r.get({"d": spec}, "d", dict, w)
        r.only(spec, _DATASET_PROTOCOL_FIELDS, w)
        res = r.get(spec, "resolution", list, w, optional=True)
        if res is not None and (len(res) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                          for v in res)):
            raise r.fail(w, f"resolution must be [H, W] in pixels or null, got {res!r}")
        seg = r.get(spec, "segmenter", str, w, optional=True)
        if seg is not None:
            r.name("segmenter", seg, w)
        n = r.get(spec, "n_images", int, w, optional=True)
        if n is not None and n <= 0:
            raise r.fail(w, f"n_images must be positive, got {n}")
        out[ds] = PaperProtocol(resolution=tuple(res) if res else None, segmenter=seg, n_images=n, **common)
    return out


def _row(r: _Reader, raw: Any, where: str, paper: Paper, table: str, caption: str,
         protocols: dict[str, PaperProtocol]) -> ReportedRow:
    r.get({"row": raw}, "row", dict, where)
    r.only(raw, _ROW_FIELDS, where)
    method = r.name("method", r.get(raw, "method", str, where), where)
    dataset = r.name("dataset", r.get(raw, "dataset", str, where), where)
    where = f"{where} ({method}/{dataset})"
    if dataset not in protocols:
        raise r.fail(where, f"the table's protocol has no entry for dataset {dataset!r}")
    metrics_raw = r.get(raw, "metrics", dict, where)
    verified = r.get(raw, "verified", dict, where)
    if not metrics_raw:
        raise r.fail(where, "no metrics")
    metrics: dict[str, float] = {}
    decimals: dict[str, int] = {}
    for key, raw_value in metrics_raw.items():
        r.name("metric", key, where)
        # numbers are parsed as Decimal, so "14.30" keeps its printed precision
        if isinstance(raw_value, bool) or not isinstance(raw_value, int | Decimal) or not math.isfinite(raw_value):
            raise r.fail(where, f"metric {key!r} must be a finite number, got {raw_value!r}")
        exponent = raw_value.as_tuple().exponent if isinstance(raw_value, Decimal) else 0
        decimals[key] = max(0, -exponent) if isinstance(exponent, int) else 0
        value = float(raw_value)
        if key in PERCENT_METRICS:
            if not 0 <= value <= 100:
                raise r.fail(where, f"{key} is in percent (0..100) in these files, got {raw_value}")
            if 0 < value < 1:  # no paper here prints a score under 1 %; a fraction in a percent field
                raise r.fail(where, f"{key} {raw_value} looks like a fraction; these files store percent (38.5, not 0.385)")
            value = value / 100.0
        metrics[key] = value
    if set(verified) != set(metrics) or not all(isinstance(v, bool) for v in verified.values()):
        raise r.fail(where, f"'verified' must give true/false for exactly the metrics {sorted(metrics)}, got {verified!r}")
    verified_by = r.get(raw, "verified_by", str, where, optional=True) or ""
    if any(verified.values()) and not verified_by:
        raise r.fail(where, "a verified figure needs 'verified_by' (what it was checked against)")
    return ReportedRow(paper=paper, table=table, caption=caption, method=method, dataset=dataset, metrics=metrics,
                       decimals=decimals, verified=dict(verified), verified_by=verified_by, protocol=protocols[dataset],
                       note=r.get(raw, "note", str, where, optional=True) or "", file=r.path)


def load_file(path: str | Path) -> list[ReportedRow]:
    """Read and validate one paper's file.

    Returns:
        Its rows in file order, metrics in run-record units (mIoU/accu as fractions in [0, 1]).

    Raises:
        ReportedDataError: unreadable JSON, a missing or unknown field, an unknown method, dataset,
            segmenter or metric key, a value out of range, a metric without a verified flag, or a
            duplicate (table, method, dataset) row; the message names the file and the row.
    """
    path = Path(path)
    r = _Reader(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ReportedDataError(f"{path}: not readable JSON ({e}); fix the file") from None
    r.get({"file": data}, "file", dict, "top level")
    r.only(data, _FILE_FIELDS, "top level")
    if r.get(data, "schema", int, "top level") != SCHEMA:
        raise r.fail("top level", f"schema must be {SCHEMA}, got {data['schema']!r}")
    units = r.get(data, "units", dict, "top level")
    if units != {m: "percent" for m in PERCENT_METRICS}:
        raise r.fail("top level", f"'units' must be {{'miou': 'percent', 'accu': 'percent'}} (as the papers print them), "
                                  f"got {units!r}")
    p = r.get(data, "paper", dict, "top level")
    r.only(p, _PAPER_FIELDS, "paper")
    paper = Paper(**{k: r.get(p, k, str, "paper") for k in sorted(_PAPER_FIELDS)})
    if paper.key != path.stem:
        raise r.fail("paper", f"key {paper.key!r} must equal the file name {path.stem!r}")
    r.get(data, "omitted", list, "top level", optional=True)
    rows: list[ReportedRow] = []
    seen: set[tuple[str, str, str]] = set()
    for t_i, t in enumerate(r.get(data, "tables", list, "top level")):
        where = f"tables[{t_i}]"
        r.get({"t": t}, "t", dict, where)
        r.only(t, _TABLE_FIELDS, where)
        table = r.get(t, "table", str, where)
        where = f"{table!r}"
        caption = r.get(t, "caption", str, where)
        protocols = _protocols(r, t.get("protocol"), where)
        for i, raw in enumerate(r.get(t, "rows", list, where)):
            row = _row(r, raw, f"{where} row {i + 1}", paper, table, caption, protocols)
            key = (table, row.method, row.dataset)
            if key in seen:
                raise r.fail(f"{where} row {i + 1}", f"duplicate row for {row.method}/{row.dataset}")
            seen.add(key)
            rows.append(row)
    return rows


@lru_cache(maxsize=1)
def _shipped() -> tuple[ReportedRow, ...]:
    return tuple(row for p in sorted(DATA_DIR.glob("*.json")) for row in load_file(p))


def load_reported(paths: list[str | Path] | None = None) -> list[ReportedRow]:
    """Every reported row, validated.

    Args:
        paths: data files to read; default: the files shipped beside this module (read once, cached).

    Returns:
        Rows ordered by file name, then as in the file; metrics in run-record units.

    Raises:
        ReportedDataError: a file is malformed (see :func:`load_file`); the message names it.
    """
    if paths is None:
        return list(_shipped())
    return [row for p in paths for row in load_file(p)]


def reported_for(dataset: str, method: str | None = None,
                 rows: list[ReportedRow] | None = None) -> list[ReportedRow]:
    """The reported rows of one dataset (and method, if given), in :func:`load_reported` order."""
    return [r for r in (load_reported() if rows is None else rows)
            if r.dataset == dataset and (method is None or r.method == method)]
