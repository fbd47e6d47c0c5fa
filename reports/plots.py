"""SVG figures of ``bench report``, drawn with matplotlib (Agg, no display): the row-normalised confusion
matrix of a run and its training curves (losses and learning rates against iterations).

SVGs keep their text as ``<text>`` (``svg.fonttype = "none"``: the browser's sans-serif, searchable, small
files) and carry no date, so a report rebuilt from the same records is byte-identical.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

STYLE = {"svg.fonttype": "none", "svg.hashsalt": "sisbench", "font.size": 8, "font.family": "sans-serif",
         "axes.spines.top": False, "axes.spines.right": False}


def _svg(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    return buf.getvalue()


def row_normalise(conf: np.ndarray) -> np.ndarray:
    """``conf[gt, pred]`` pixel counts -> fractions of each ground-truth row (float64 ``[K, K]``, rows sum to
    1); a class absent from the ground truth (row sum 0) gives a row of NaN."""
    c = np.asarray(conf, dtype=np.float64)
    tot = c.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(tot > 0, c / np.where(tot > 0, tot, 1.0), np.nan)


def confusion_svg(conf: np.ndarray, class_names: Sequence[str], title: str) -> bytes:
    """Heatmap of the row-normalised confusion matrix (rows: ground truth, columns: prediction), as SVG.

    Args:
        conf: int ``[K, K]`` pixel counts, ``conf[gt][pred]`` (``record.extra["confusion"]``).
        class_names: ``K`` names for the axes (longer than 18 characters are cut).
        title: the figure title (the run's row label).

    Returns:
        The SVG document (UTF-8 bytes). Cells show the percentage when ``K <= 20``; absent classes are grey.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    norm = row_normalise(conf)
    k = norm.shape[0]
    names = [n if len(n) <= 18 else n[:17] + "…" for n in class_names]
    side = min(max(3.2, 0.32 * k + 1.6), 14.0)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(side + 0.8, side))
        cmap = matplotlib.colormaps["Blues"].with_extremes(bad="#dddddd")
        im = ax.imshow(np.ma.masked_invalid(norm), cmap=cmap, vmin=0.0, vmax=1.0, interpolation="nearest")
        tick_fs = 8 if k <= 20 else max(3, int(8 - (k - 20) / 20))
        ax.set_xticks(range(k), names, rotation=60, ha="right", rotation_mode="anchor", fontsize=tick_fs)
        ax.set_yticks(range(k), names, fontsize=tick_fs)
        ax.set_xlabel("predicted class")
        ax.set_ylabel("ground-truth class")
        ax.set_title(title, fontsize=9)
        if k <= 20:
            for (i, j), v in np.ndenumerate(norm):
                if math.isfinite(v) and v >= 0.005:
                    ax.text(j, i, f"{100 * v:.0f}", ha="center", va="center", fontsize=6,
                            color="white" if v > 0.6 else "#222222")
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the row's pixels")
        return _svg(fig)


def curves_svg(series: Sequence[tuple[str, list[dict[str, Any]]]], title: str) -> bytes:
    """Training curves as SVG: one panel per loss, plus one for the learning rates, iterations on x.

    Args:
        series: ``(name, entries)`` per training run of the row (one per seed), ``entries`` the lines of its
            ``train_log.jsonl`` (:func:`bench.training.log.read_log`): ``iteration``, ``losses``, ``lr``.
        title: the figure title (the row label).

    Returns:
        The SVG document. Losses are plotted as logged (no smoothing); null (non-finite) values are gaps.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    losses = list(dict.fromkeys(k for _, entries in series for e in entries for k in e.get("losses", {})))
    groups = list(dict.fromkeys(k for _, entries in series for e in entries for k in e.get("lr", {})))
    panels = [*losses, *(["learning rate"] if groups else [])]
    cols = min(3, max(1, len(panels)))
    rows = max(1, math.ceil(len(panels) / cols))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.4, 1.9 * rows + 0.5), squeeze=False,
                                 sharex=True)
        flat = list(axes.ravel())
        for ax, panel in zip(flat, panels):
            for name, entries in series:
                its = [e["iteration"] for e in entries]
                if panel == "learning rate":
                    for g in groups:
                        ys = [_first(e.get("lr", {}).get(g)) for e in entries]
                        ax.plot(its, ys, lw=1, label=f"{g} {name}".strip())
                else:
                    ys = [_nan(e.get("losses", {}).get(panel)) for e in entries]
                    ax.plot(its, ys, lw=1, label=name or None)
            ax.set_title(panel, fontsize=8)
            ax.grid(alpha=0.3, lw=0.5)
            if panel == "learning rate" or any(name for name, _ in series):
                ax.legend(fontsize=6, frameon=False)
        for ax in flat[len(panels):]:
            ax.set_visible(False)
        for ax in axes[-1]:
            ax.set_xlabel("iteration")
        fig.suptitle(title, fontsize=9)
        fig.tight_layout()
        return _svg(fig)


def _nan(x: Any) -> float:
    return float(x) if isinstance(x, int | float) else float("nan")


def _first(x: Any) -> float:
    return _nan(x[0] if isinstance(x, list) and x else x)


__all__ = ["confusion_svg", "curves_svg", "row_normalise"]
