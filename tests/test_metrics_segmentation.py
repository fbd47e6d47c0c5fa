"""Exactness tests of the confusion matrix, mIoU and pixel accuracy against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.errors import MetricError
from bench.metrics.segmentation import (
    SegmentationScores,
    confusion_matrix,
    miou,
    per_class_iou,
    pixel_accuracy,
)

# A 3-class 4x4 example. 255 marks unlabeled pixels.
GT = np.array(
    [
        [0, 0, 1, 1],
        [0, 0, 1, 1],
        [2, 2, 2, 2],
        [2, 2, 255, 255],
    ]
)
PRED = np.array(
    [
        [0, 1, 1, 1],
        [0, 0, 1, 2],
        [2, 2, 1, 2],
        [0, 2, 0, 2],
    ]
)
# Worked out pixel by pixel, skipping the two ignored pixels (rows: GT, columns: prediction):
#   GT 0 (4 px): predicted 0 at (0,0) (1,0) (1,1), 1 at (0,1)          -> [3, 1, 0]
#   GT 1 (4 px): predicted 1 at (0,2) (0,3) (1,2), 2 at (1,3)          -> [0, 3, 1]
#   GT 2 (6 px): predicted 2 at (2,0) (2,1) (2,3) (3,1), 1 at (2,2),
#                0 at (3,0)                                            -> [1, 1, 4]
HAND_CONF = np.array([[3, 1, 0], [0, 3, 1], [1, 1, 4]])
# IoU = diag / (row sum + column sum - diag):
#   class 0: 3 / (4 + 4 - 3) = 3/5;  class 1: 3 / (4 + 5 - 3) = 1/2;  class 2: 4 / (6 + 5 - 4) = 4/7
HAND_IOU = np.array([3 / 5, 1 / 2, 4 / 7])
# pixel accuracy = trace / total = (3 + 3 + 4) / 14
HAND_ACC = 10 / 14


def test_confusion_matrix_matches_hand_computation() -> None:
    conf = confusion_matrix(PRED, GT, num_classes=3, ignore_index=255)
    assert conf.dtype == np.int64
    np.testing.assert_array_equal(conf, HAND_CONF)


def test_iou_and_accuracy_match_hand_computation() -> None:
    conf = confusion_matrix(PRED, GT, num_classes=3)
    np.testing.assert_allclose(per_class_iou(conf), HAND_IOU, rtol=0, atol=1e-15)
    assert miou(conf, "all") == pytest.approx(HAND_IOU.mean(), abs=1e-15)
    assert miou(conf, "present") == pytest.approx(HAND_IOU.mean(), abs=1e-15)  # every class is in GT
    assert pixel_accuracy(conf) == pytest.approx(HAND_ACC, abs=1e-15)


def test_matches_brute_force_count_on_random_labels() -> None:
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, size=(2, 17, 23))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = rng.integers(0, 5, size=gt.shape)
    expected = np.zeros((5, 5), dtype=np.int64)
    for g, p in zip(gt.ravel(), pred.ravel()):
        if g != 255:
            expected[g, p] += 1
    np.testing.assert_array_equal(confusion_matrix(pred, gt, 5), expected)


def test_ignored_pixels_do_not_count_whatever_is_predicted() -> None:
    pred = PRED.copy()
    pred[3, 2:] = [7, 99]  # out-of-range predictions under ignored pixels are harmless
    np.testing.assert_array_equal(confusion_matrix(pred, GT, 3, ignore_index=255), HAND_CONF)


def test_ignore_index_none_counts_every_pixel_and_rejects_255() -> None:
    gt = np.array([[0, 1], [1, 1]])
    pred = np.array([[0, 0], [1, 1]])
    np.testing.assert_array_equal(confusion_matrix(pred, gt, 2, ignore_index=None), [[1, 0], [1, 2]])
    with pytest.raises(MetricError, match="ground-truth label 255"):
        confusion_matrix(PRED, GT, 3, ignore_index=None)


def test_perfect_prediction_scores_one() -> None:
    conf = confusion_matrix(GT, GT, 3)
    assert miou(conf, "all") == 1.0
    assert miou(conf, "present") == 1.0
    assert pixel_accuracy(conf) == 1.0


def test_conventions_differ_when_a_class_is_predicted_but_absent_from_gt() -> None:
    gt = np.array([[0, 0], [1, 1]])
    pred = np.array([[0, 2], [1, 1]])
    # 4 classes: class 2 is predicted once but never in GT (IoU 0 / 1 = 0); class 3 is nowhere (union 0).
    # class 0: 1 / (2 + 1 - 1) = 1/2; class 1: 2 / (2 + 2 - 2) = 1
    conf = confusion_matrix(pred, gt, num_classes=4)
    iou = per_class_iou(conf)
    np.testing.assert_allclose(iou[:3], [0.5, 1.0, 0.0])
    assert math.isnan(iou[3])
    assert miou(conf, "all") == pytest.approx((0.5 + 1.0 + 0.0) / 3)  # union-0 class 3 left out
    assert miou(conf, "present") == pytest.approx((0.5 + 1.0) / 2)  # only GT classes 0 and 1


def test_accepts_torch_tensors() -> None:
    conf = confusion_matrix(torch.from_numpy(PRED), torch.from_numpy(GT).to(torch.uint8), 3)
    np.testing.assert_array_equal(conf, HAND_CONF)


def test_accumulating_batches_equals_scoring_all_at_once() -> None:
    rng = np.random.default_rng(1)
    gt = rng.integers(0, 4, size=(3, 8, 8))
    pred = np.where(rng.random(gt.shape) < 0.7, gt, rng.integers(0, 4, size=gt.shape))
    scores = SegmentationScores(num_classes=4, ignore_index=255)
    for i in range(3):
        scores.update(pred[i], gt[i])
    whole = confusion_matrix(pred, gt, 4)
    np.testing.assert_array_equal(scores.conf, whole)
    summary = scores.summary()
    assert summary["miou"] == pytest.approx(miou(whole))
    assert summary["accu"] == pytest.approx(pixel_accuracy(whole))
    assert summary["n_pixels"] == gt.size
    assert 0.0 <= summary["miou"] <= 1.0


@pytest.mark.parametrize(
    ("pred", "gt", "match"),
    [
        (np.zeros((2, 2), int), np.zeros((2, 3), int), "shape"),
        (np.zeros((2, 2), float), np.zeros((2, 2), int), "integers"),
        (np.full((2, 2), 3), np.zeros((2, 2), int), "predicted label 3"),
        (np.zeros((2, 2), int), np.full((2, 2), -1), "ground-truth label -1"),
    ],
)
def test_bad_inputs_raise_metric_error(pred: np.ndarray, gt: np.ndarray, match: str) -> None:
    with pytest.raises(MetricError, match=match):
        confusion_matrix(pred, gt, num_classes=3)


def test_all_ignored_gives_empty_matrix_and_scores_refuse_it() -> None:
    conf = confusion_matrix(np.zeros((2, 2), int), np.full((2, 2), 255), 3)
    assert conf.sum() == 0
    with pytest.raises(MetricError, match="empty"):
        miou(conf)
    with pytest.raises(MetricError, match="convention"):
        miou(HAND_CONF, "mean")  # type: ignore[arg-type]


def test_metric_registry_directions_and_formats() -> None:
    from bench.metrics import METRICS

    assert set(METRICS.names()) == {"fid", "kid", "precision", "recall", "miou", "accu", "psnr", "ssim", "rmse",
                                    "lpips", "ms_ssim"}
    lower_is_better = {n for n in METRICS.names() if not METRICS.get(n).higher_is_better}
    # MS-SSIM between samples of one label map: lower means more diverse (the OASIS protocol)
    assert lower_is_better == {"fid", "kid", "rmse", "ms_ssim"}
    # scores are stored as fractions; the format spec shows them as percentages
    assert METRICS.get("miou").format(miou(HAND_CONF)) == "55.7%"


def test_upsampled_protocol_segments_at_the_segmenters_size(tmp_path) -> None:  # noqa: ANN001
    """``upsampled`` feeds the segmenter bicubic copies at its ``eval_size`` and labels nearest-resized to it;
    ``native`` feeds the generated size; a segmenter with no ``eval_size`` is scored natively either way."""
    from PIL import Image

    from bench.datasets.spec import DatasetSpec
    from bench.evaluate import segmentation_scores

    spec = DatasetSpec.tiny(num_classes=2, image_size=(8, 8))
    label = torch.zeros(1, 8, 8, dtype=torch.int64)
    label[:, :, 4:] = 1  # right half class 1
    val = [{"id": "a", "label": label, "path": "a.png"}]
    img = np.zeros((8, 8, 3), np.uint8)
    img[:, 4:] = 255  # right half white
    Image.fromarray(img).save(tmp_path / "a.png")

    class Threshold:
        """Class 1 where the image is bright; records the size it was given."""

        class_names = ("dark", "bright")
        num_classes, ignore_index = 2, 255

        def __init__(self, eval_size):  # noqa: ANN001
            self.eval_size, self.seen = eval_size, []

        def predict(self, images: torch.Tensor) -> torch.Tensor:
            self.seen.append(tuple(images.shape[-2:]))
            return (images.mean(1) > 0.5).long()

    for eval_size, protocol, want in [((32, 16), "upsampled", (32, 16)), ((32, 16), "native", (8, 8)),
                                      (None, "upsampled", (8, 8))]:
        seg = Threshold(eval_size)
        out = segmentation_scores(seg, tmp_path, val, spec, protocol=protocol, progress=False)
        assert seg.seen == [want]
        assert out["accu"] == 1.0 and out["miou"] == 1.0  # labels were resized with the images
