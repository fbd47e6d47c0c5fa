"""Segmentation scores of generated images: confusion matrix, mIoU, pixel accuracy.

All scores are fractions in [0, 1] (multiply by 100 for the percentages papers print).

The confusion matrix is ``conf[g, p]`` = number of pixels with ground-truth class ``g`` predicted as
``p`` (rows: ground truth, columns: prediction), over pixels whose ground truth is not ``ignore_index``.
It is additive, so a whole evaluation set is scored by summing per-image matrices, exactly as the
reference segmenters' evaluation code accumulates intersections and unions over the set (CSAIL
semantic-segmentation-pytorch, fyu/drn, kazuto1011/deeplab-pytorch, mmseg).

Per class: ``IoU_c = conf[c, c] / (sum_p conf[c, p] + sum_g conf[g, c] - conf[c, c])``. When that union
is 0 (the class is neither in the ground truth nor predicted anywhere in the accumulated set), IoU_c is
undefined: NaN in :func:`per_class_iou`, left out of both means below. This is the ``nanmean`` of
DRN, deeplab-pytorch and mmseg.

mIoU conventions (:func:`miou`):

* ``"all"``: mean over every class with a non-zero union. A class that is predicted but absent from the
  ground truth has IoU 0 and pulls the mean down.
* ``"present"``: mean over the classes present in the ground truth (non-zero row sum) only, so false
  positives of absent classes are ignored (they still lower the IoU of the true class of those pixels).

The two agree whenever no class is predicted without being in the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from bench.errors import MetricError

MiouConvention = Literal["all", "present"]


def _as_int_array(x: Any, name: str) -> np.ndarray:
    """numpy view of a numpy array or torch tensor (any device) of integer labels."""
    if hasattr(x, "detach"):  # torch.Tensor, without importing torch here
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    if not np.issubdtype(arr.dtype, np.integer):
        raise MetricError(f"{name} labels must be integers, got dtype {arr.dtype}; pass argmax class ids")
    return arr


def confusion_matrix(pred: Any, gt: Any, num_classes: int, ignore_index: int | None = 255) -> np.ndarray:
    """Confusion matrix ``conf[gt_class, pred_class]`` of one image or a batch (int64, CxC).

    Args:
        pred: predicted class ids (numpy array or torch tensor), any shape.
        gt: ground-truth class ids, same shape; pixels equal to ``ignore_index`` are skipped.
        num_classes: number of classes C; valid ids are ``0 .. C-1``.
        ignore_index: the "unlabeled" id in ``gt``, or ``None`` when every pixel is labeled.

    Returns:
        A ``(C, C)`` int64 matrix; sum the matrices of several images to score the set.

    Raises:
        MetricError: shapes differ, labels are not integers, or an id is out of range (a prediction
            outside ``0..C-1``, or a ground-truth id that is neither a class nor ``ignore_index``; both
            mean the label mapping is wrong).
    """
    if num_classes < 1:
        raise MetricError(f"num_classes must be >= 1, got {num_classes}")
    p = _as_int_array(pred, "predicted")
    g = _as_int_array(gt, "ground-truth")
    if p.shape != g.shape:
        raise MetricError(
            f"prediction shape {p.shape} differs from ground-truth shape {g.shape}; "
            "resize the labels (nearest) to the prediction size first"
        )
    p = p.ravel()
    g = g.ravel()
    if ignore_index is not None:
        keep = g != ignore_index
        p = p[keep]
        g = g[keep]
    if g.size == 0:
        return np.zeros((num_classes, num_classes), dtype=np.int64)
    for name, a in (("ground-truth", g), ("predicted", p)):
        lo, hi = int(a.min()), int(a.max())
        if lo < 0 or hi >= num_classes:
            bad = lo if lo < 0 else hi
            extra = (
                f" or ignore_index {ignore_index}"
                if name == "ground-truth" and ignore_index is not None
                else ""
            )
            raise MetricError(
                f"{name} label {bad} is outside 0..{num_classes - 1}{extra}; "
                "check the dataset's label mapping and the segmenter's class count"
            )
    # one bincount over the flattened (gt, pred) pair index: far faster than np.add.at or a python loop
    idx = g.astype(np.int64) * num_classes + p.astype(np.int64)
    return np.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _check_conf(conf: np.ndarray) -> np.ndarray:
    conf = np.asarray(conf)
    if conf.ndim != 2 or conf.shape[0] != conf.shape[1]:
        raise MetricError(f"a confusion matrix must be square, got shape {conf.shape}")
    if conf.sum() == 0:
        raise MetricError("the confusion matrix is empty (every pixel ignored); no score can be computed")
    return conf


def per_class_iou(conf: np.ndarray) -> np.ndarray:
    """IoU of each class (float64, length C); NaN where the union is 0 (class absent and never predicted)."""
    conf = _check_conf(conf).astype(np.float64)
    inter = np.diag(conf)
    union = conf.sum(axis=0) + conf.sum(axis=1) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, np.nan)


def miou(conf: np.ndarray, convention: MiouConvention = "all") -> float:
    """Mean IoU in [0, 1] under ``convention`` (see the module docstring).

    Raises:
        MetricError: the matrix is empty, or the convention is unknown.
    """
    iou = per_class_iou(conf)
    if convention == "all":
        chosen = ~np.isnan(iou)
    elif convention == "present":
        chosen = np.asarray(conf).sum(axis=1) > 0
    else:
        raise MetricError(f"unknown mIoU convention {convention!r}; use 'all' or 'present'")
    return float(iou[chosen].mean())


def pixel_accuracy(conf: np.ndarray) -> float:
    """Fraction in [0, 1] of non-ignored pixels whose predicted class equals the ground truth."""
    conf = _check_conf(conf)
    return float(np.trace(conf) / conf.sum())


@dataclass
class SegmentationScores:
    """Accumulates a confusion matrix over batches and reports the scores of the whole set.

    Example:
        >>> scores = SegmentationScores(num_classes=3, ignore_index=255)
        >>> for pred, gt in batches:  # doctest: +SKIP
        ...     scores.update(pred, gt)
        >>> scores.summary()  # doctest: +SKIP
        {'miou': ..., 'accu': ..., 'n_pixels': ...}
    """

    num_classes: int
    ignore_index: int | None = 255
    convention: MiouConvention = "all"
    conf: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise MetricError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.convention not in ("all", "present"):
            raise MetricError(f"unknown mIoU convention {self.convention!r}; use 'all' or 'present'")
        self.conf = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def update(self, pred: Any, gt: Any) -> None:
        """Add the pixels of one image or batch (numpy arrays or torch tensors of class ids)."""
        self.conf += confusion_matrix(pred, gt, self.num_classes, self.ignore_index)

    def miou(self) -> float:
        return miou(self.conf, self.convention)

    def pixel_accuracy(self) -> float:
        return pixel_accuracy(self.conf)

    def per_class_iou(self) -> np.ndarray:
        return per_class_iou(self.conf)

    def summary(self) -> dict[str, Any]:
        """``{"miou", "accu"}`` (fractions), the convention and the number of scored pixels."""
        return {
            "miou": self.miou(),
            "accu": self.pixel_accuracy(),
            "miou_convention": self.convention,
            "n_pixels": int(self.conf.sum()),
        }
