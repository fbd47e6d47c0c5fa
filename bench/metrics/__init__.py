"""Metric names and how to present them; the metric code lives in the submodules.

``METRICS`` tells reports what a metric key in a run record means: its label, whether higher is better
(arrows and best-value marking) and a format spec for ``format(value, fmt)``. Values are stored as the
submodules return them: FID/KID raw, mIoU and pixel accuracy as fractions in [0, 1] (``fmt`` prints them
as percentages), PSNR in dB, SSIM in [-1, 1], RMSE on the [0, 1] pixel scale, the diversity metrics LPIPS
(>= 0) and MS-SSIM (in [0, 1]) raw (:mod:`bench.metrics.diversity`).

This module imports no torch, so ``bench ls metrics`` and report rendering stay fast; the compute
functions are in :mod:`bench.metrics.fid`, :mod:`bench.metrics.segmentation` and
:mod:`bench.metrics.reconstruction`.
"""

from __future__ import annotations

from dataclasses import dataclass

from bench.registry import Registry


@dataclass(frozen=True, kw_only=True)
class MetricInfo:
    """Presentation facts about one metric key.

    Attributes:
        name: the key in run records (lowercase, e.g. ``"fid"``).
        label: column header for tables.
        higher_is_better: direction used for arrows and for marking the best value.
        fmt: format spec applied as ``format(value, fmt)``.
        description: one sentence for ``bench ls metrics`` and report footnotes.
    """

    name: str
    label: str
    higher_is_better: bool
    fmt: str
    description: str

    def __post_init__(self) -> None:
        if self.name != self.name.lower():
            raise ValueError(f"metric names are lowercase, got {self.name!r}")
        format(0.5, self.fmt)  # a bad spec fails here, at import, not in a report

    def format(self, value: float) -> str:
        """``value`` formatted with :attr:`fmt`."""
        return format(value, self.fmt)


METRICS: Registry[MetricInfo] = Registry("metric")

for _info in (
    MetricInfo(
        name="fid",
        label="FID",
        higher_is_better=False,
        fmt=".2f",
        description="Fréchet Inception Distance (torch-fidelity, Inception-v3 pool 2048) to the real images",
    ),
    MetricInfo(
        name="kid",
        label="KID",
        higher_is_better=False,
        fmt=".4f",
        description="Kernel Inception Distance (torch-fidelity, cubic polynomial kernel, mean over subsets)",
    ),
    MetricInfo(
        name="precision",
        label="Prec",
        higher_is_better=True,
        fmt=".3f",
        description="improved precision (Kynkäänniemi et al. 2019, k=3) on the Inception pool features: share of "
                    "generated images inside the real images' k-NN balls (torch-fidelity)",
    ),
    MetricInfo(
        name="recall",
        label="Rec",
        higher_is_better=True,
        fmt=".3f",
        description="improved recall (Kynkäänniemi et al. 2019, k=3) on the Inception pool features: share of "
                    "real images inside the generated images' k-NN balls (torch-fidelity)",
    ),
    MetricInfo(
        name="miou",
        label="mIoU",
        higher_is_better=True,
        fmt=".1%",
        description="mean intersection-over-union of a segmenter's prediction on generated images vs the input labels",
    ),
    MetricInfo(
        name="accu",
        label="Acc",
        higher_is_better=True,
        fmt=".1%",
        description="pixel accuracy of a segmenter's prediction on generated images vs the input labels",
    ),
    MetricInfo(
        name="psnr",
        label="PSNR",
        higher_is_better=True,
        fmt=".2f",
        description="peak signal-to-noise ratio (dB) of reconstructions vs the real images, mean per image",
    ),
    MetricInfo(
        name="ssim",
        label="SSIM",
        higher_is_better=True,
        fmt=".4f",
        description="structural similarity (Gaussian 11x11 window, sigma 1.5) of reconstructions, mean per image",
    ),
    MetricInfo(
        name="rmse",
        label="RMSE",
        higher_is_better=False,
        fmt=".4f",
        description="root mean squared error on the [0, 1] pixel scale of reconstructions, mean per image",
    ),
    MetricInfo(
        name="lpips",
        label="LPIPS",
        higher_is_better=True,  # higher = more diverse samples
        fmt=".4f",
        description="diversity (--diversity K, OASIS): mean pairwise LPIPS (VGG, v0.1) over the K samples of each "
                    "label map, averaged over label maps; higher = more diverse",
    ),
    MetricInfo(
        name="ms_ssim",
        label="MS-SSIM",
        higher_is_better=False,  # lower = more diverse samples
        fmt=".4f",
        description="diversity (--diversity K, OASIS): mean pairwise MS-SSIM (pytorch-msssim, data_range 1) over the "
                    "K samples of each label map, averaged over label maps; lower = more diverse",
    ),
):
    METRICS.add(_info.name, _info)
del _info

__all__ = ["METRICS", "MetricInfo"]
