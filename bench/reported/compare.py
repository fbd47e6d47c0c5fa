"""A reproduced run beside a paper's reported row: the metric differences and the protocol differences.

Differences are ``run - reported``, in display units: percentage points for mIoU and pixel accuracy
(run records store fractions, the papers print percent), raw units for everything else (FID, PSNR in
dB, ...). The protocol comparison covers what changes the numbers most (methods.md §9, evaluation.md
§3.3): the generated resolution, the segmenter, the number of validation images and whether the real
image was an input (reconstruction).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from bench.reported import PERCENT_METRICS, ReportedRow, metric_info

if TYPE_CHECKING:
    from bench.store import RunRecord

#: Methods whose generator takes the paired real image as an input at test time: SEAN encodes its
#: per-region styles from the ground-truth image (methods/sean.py ``generate``), so its runs are
#: reconstructions, as every number in the SEAN paper is (ZPdesu/SEAN#8).
RECONSTRUCTION_METHODS = frozenset({"sean"})

#: Metrics whose values depend on the segmenter.
SEGMENTER_METRICS = frozenset(PERCENT_METRICS)


def difference(metric: str, run_value: float, reported: float) -> float:
    """``run_value - reported`` in display units (percentage points for mIoU/accu, else raw).

    Both values are in run-record units (mIoU/accu as fractions in [0, 1]).
    """
    d = run_value - reported
    return d * 100.0 if metric in PERCENT_METRICS else d


def format_difference(metric: str, run_value: float | None, row: ReportedRow) -> str:
    """``"+8.7"`` (FID), ``"-3.1 pp"`` (mIoU), with the paper's printed decimals; "–" if either is missing.

    The sign is always shown; lower-is-better metrics (FID, RMSE) are better when negative.
    """
    if run_value is None or metric not in row.metrics or run_value != run_value:  # NaN
        return "–"
    d = difference(metric, run_value, row.metrics[metric])
    text = f"{d:+.{row.decimals[metric]}f}"
    return text + " pp" if metric in PERCENT_METRICS else text


def run_resolution(record: RunRecord) -> tuple[int, int] | None:
    """The run's generated image size ``(H, W)``.

    Under the ``native`` protocol the segmenter saw the generated images, so
    ``record.protocol["segmentation_size"]`` is that size; otherwise it follows SPADE's convention from
    the config: ``W = crop_size``, ``H = round(crop_size / aspect_ratio)``. None if neither is recorded.
    """
    size = record.protocol.get("segmentation_size")
    if record.protocol.get("segmentation") == "native" and isinstance(size, list | tuple) and len(size) == 2:
        return int(size[0]), int(size[1])
    crop = record.config.get("crop_size")
    if isinstance(crop, int | float) and crop > 0:
        aspect = record.config.get("aspect_ratio", 1.0) or 1.0
        return round(crop / float(aspect)), int(crop)
    return None


def run_segmenter(record: RunRecord) -> str | None:
    """The segmenter name of a run (``record.weights["segmenter"]["name"]``), None if not recorded."""
    seg: Any = record.weights.get("segmenter")
    if isinstance(seg, dict):
        name = seg.get("name")
        return str(name) if name else None
    return str(seg) if seg else None


def run_is_reconstruction(record: RunRecord) -> bool:
    """True when the run's generator took the real validation image as an input (see RECONSTRUCTION_METHODS)."""
    return record.method in RECONSTRUCTION_METHODS


def _size(hw: tuple[int, int] | list[int]) -> str:
    return f"{hw[0]}×{hw[1]}"


def protocol_differences(row: ReportedRow, record: RunRecord, metrics: Iterable[str] | None = None) -> list[str]:
    """How ``record``'s protocol departs from the one ``row``'s paper used, one phrase per difference.

    Args:
        row: a reported row of the same dataset.
        record: a run record.
        metrics: the metrics being compared (default: the row's); the segmenter is compared only when
            mIoU or accuracy is among them.

    Returns:
        Phrases such as ``"generated at 64×64, paper 256×256"``, ``"200 images, paper 2000"``,
        ``"segmenter synthetic, paper upernet101_ade20k"``, ``"paper does not state its segmenter"``;
        empty when the recorded protocol matches on every point the paper states.
    """
    p = row.protocol
    shown = set(row.metrics if metrics is None else metrics)
    out: list[str] = []
    res = run_resolution(record)
    if p.resolution is None:
        out.append("paper does not state its resolution" + (f" (run {_size(res)})" if res else ""))
    elif res is None:
        out.append(f"run resolution not recorded, paper {_size(p.resolution)}")
    elif tuple(res) != tuple(p.resolution):
        out.append(f"generated at {_size(res)}, paper {_size(p.resolution)}")
    if record.protocol.get("segmentation") == "upsampled" and shown & SEGMENTER_METRICS \
            and p.segmentation_resolution.startswith("generated"):
        size = record.protocol.get("segmentation_size")
        out.append(f"segmented upsampled{f' to {_size(size)}' if size else ''}, paper at the generated size")
    if shown & SEGMENTER_METRICS:
        seg = run_segmenter(record)
        if p.segmenter is None:
            out.append("paper does not state its segmenter" + (f" (run {seg})" if seg else ""))
        elif seg != p.segmenter:
            out.append(f"segmenter {seg or 'not recorded'}, paper {p.segmenter}")
    n = record.extra.get("n_images")
    if p.n_images is None:
        out.append("paper does not state its image count")
    elif n is None:
        out.append(f"image count not recorded, paper {p.n_images}")
    elif int(n) != p.n_images:
        out.append(f"{int(n)} images, paper {p.n_images}")
    rec = run_is_reconstruction(record)
    if rec and not p.reconstruction:
        out.append("run reconstructs (style from the real image), paper generates from labels only")
    elif p.reconstruction and not rec:
        out.append("paper reconstructs (style from the real image), run generates from labels only")
    return out


def comparable_metrics(row: ReportedRow, record: RunRecord) -> list[str]:
    """Metric keys both the row and the record have, in the row's order."""
    return [m for m in row.metrics if m in record.metrics]


def describe(row: ReportedRow, record: RunRecord) -> str:
    """One line: ``"FID 52.1 (+18.2 vs SPADE paper (CVPR 2019), Table 1)"`` for each shared metric."""
    parts = []
    for m in comparable_metrics(row, record):
        info = metric_info(m)
        v = record.metrics[m]
        shown = f"{v * 100:.1f}" if m in PERCENT_METRICS else info.format(v)
        parts.append(f"{info.label} {shown} ({format_difference(m, v, row)} vs {row.source})")
    return "; ".join(parts)
