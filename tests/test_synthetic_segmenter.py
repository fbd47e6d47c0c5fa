"""The shipped synthetic segmenter: checksum, accuracy on real synthetic images, errors, training."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from bench.datasets.synthetic import CLASS_NAMES, GENERATOR_VERSION, generate_sample, write_synthetic
from bench.errors import BenchError, CheckpointError, ConfigError, WeightsNotFoundError
from bench.metrics.segmentation import SegmentationScores
from segmenters import SEGMENTERS
from segmenters.mmseg_model import file_sha256
from segmenters.synthetic import (
    CHECKPOINT,
    SyntheticSegConfig,
    SyntheticSegmenter,
    default_data_fingerprint,
    evaluate_segmenter,
    read_sha256_file,
    state_dict_sha256,
    train_synthetic_segmenter,
)

SHA_FILE = CHECKPOINT.with_name(CHECKPOINT.name + ".sha256")


@pytest.fixture(scope="module")
def segmenter() -> SyntheticSegmenter:
    return SyntheticSegmenter()


def _val_samples(n: int, start: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The first val images of the default synthetic dataset (seed 0, 64 px), straight from the generator."""
    samples = [generate_sample(0, "val", i, 64) for i in range(start, start + n)]
    images = torch.from_numpy(np.stack([s[0] for s in samples])).permute(0, 3, 1, 2).float() / 255
    labels = torch.from_numpy(np.stack([s[1] for s in samples]))
    return images, labels


def test_shipped_checkpoint_checksum_and_size() -> None:
    assert CHECKPOINT.is_file() and SHA_FILE.is_file()
    assert file_sha256(CHECKPOINT) == read_sha256_file(SHA_FILE)
    assert SHA_FILE.read_text().split()[1] == CHECKPOINT.name
    assert CHECKPOINT.stat().st_size <= 10 * 2**20


def test_shipped_checkpoint_matches_the_current_generator() -> None:
    """Fails when the dataset generator changes: retrain with segmenters/weights/README.md."""
    ckpt = torch.load(CHECKPOINT, map_location="cpu", weights_only=True)
    meta = ckpt["meta"]
    assert state_dict_sha256(ckpt["state_dict"]) == meta["weights_sha256"]
    assert tuple(meta["dataset_meta"]["classes"]) == CLASS_NAMES
    assert meta["generator_version"] == GENERATOR_VERSION
    assert meta["data_fingerprint"] == default_data_fingerprint(seed=0, size=64)
    assert meta["seed"] == 0 and meta["image_size"] == [64, 64] and meta["train_images"] == 2000


def test_registered(segmenter: SyntheticSegmenter) -> None:
    assert SEGMENTERS.get("synthetic") is SyntheticSegmenter
    assert segmenter.class_names == CLASS_NAMES and segmenter.num_classes == 8
    assert segmenter.ignore_index == 255


def test_segments_real_val_images(segmenter: SyntheticSegmenter) -> None:
    images, labels = _val_samples(16)
    pred = segmenter.predict(images)
    assert pred.shape == labels.shape and pred.dtype == torch.int64
    scores = SegmentationScores(num_classes=len(CLASS_NAMES), ignore_index=255)
    scores.update(pred, labels)
    assert scores.pixel_accuracy() >= 0.95
    assert scores.miou() >= 0.85


def test_full_val_miou(segmenter: SyntheticSegmenter, tmp_path: Path) -> None:
    """The acceptance criterion: mIoU >= 0.90 on the 200 val images of the default dataset."""
    images, labels = _val_samples(200)
    scores = SegmentationScores(num_classes=len(CLASS_NAMES), ignore_index=255)
    for start in range(0, 200, 50):
        scores.update(segmenter.predict(images[start : start + 50]), labels[start : start + 50])
    assert scores.miou() >= 0.90


def test_prediction_is_batch_independent_and_any_size(segmenter: SyntheticSegmenter) -> None:
    images, _ = _val_samples(4, start=20)
    together = segmenter.predict(images)
    alone = torch.cat([segmenter.predict(images[i : i + 1]) for i in range(4)])
    assert torch.equal(together, alone)
    odd = segmenter.predict(images[:, :, :60, :52])  # not a multiple of the UNet's stride: padded
    assert odd.shape == (4, 60, 52)


def test_identity_names_the_checkpoint(segmenter: SyntheticSegmenter) -> None:
    ident = segmenter.identity()
    assert ident["name"] == "synthetic" and ident["sha256"] == read_sha256_file(SHA_FILE)


def _one_line(err: BaseException) -> str:
    msg = str(err)
    assert msg and "\n" not in msg
    return msg


def test_missing_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        SyntheticSegmenter(tmp_path / "nope.pth")
    assert "nope.pth" in _one_line(info.value)


def test_corrupt_checkpoint_fails_checksum(tmp_path: Path) -> None:
    bad = tmp_path / "synthetic_seg.pth"
    shutil.copy(CHECKPOINT, bad)
    shutil.copy(SHA_FILE, tmp_path / SHA_FILE.name)
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256") as info:
        SyntheticSegmenter(bad)
    _one_line(info.value)


def test_missing_checksum_file(tmp_path: Path) -> None:
    ckpt = tmp_path / "copy.pth"
    shutil.copy(CHECKPOINT, ckpt)
    with pytest.raises(CheckpointError, match="copy.pth.sha256"):
        SyntheticSegmenter(ckpt)
    assert SyntheticSegmenter(ckpt, sha256=read_sha256_file(SHA_FILE)).checkpoint == ckpt


def test_wrong_network_fails_strict_load(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"backbone.conv.weight": torch.zeros(1)}}, wrong)
    with pytest.raises(CheckpointError, match="does not match the network") as info:
        SyntheticSegmenter(wrong, sha256=file_sha256(wrong))
    _one_line(info.value)


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="crop_size"):
        SyntheticSegConfig(crop_size=30)
    with pytest.raises(ConfigError, match="base_channels"):
        SyntheticSegConfig(base_channels=0)
    assert issubclass(ConfigError, BenchError)


def test_training_is_deterministic_and_loadable(tmp_path: Path) -> None:
    root = write_synthetic(tmp_path / "data", size=32, n_train=6, n_val=3, seed=0, workers=1)
    cfg = SyntheticSegConfig(base_channels=8, num_stages=3, batch_size=4, crop_size=16, warmup_iters=1)
    a = train_synthetic_segmenter(root, tmp_path / "a.pth", iters=3, seed=0, config=cfg, log_every=0)
    b = train_synthetic_segmenter(
        root, tmp_path / "b.pth", iters=3, seed=0, config=cfg, evaluate=False, log_every=0
    )
    c = train_synthetic_segmenter(
        root, tmp_path / "c.pth", iters=3, seed=1, config=cfg, evaluate=False, log_every=0
    )
    # torch.save embeds a random id, so compare the weights, not the files
    assert a.weights_sha256 == b.weights_sha256 != c.weights_sha256
    state_a = torch.load(a.checkpoint, weights_only=True)["state_dict"]
    state_b = torch.load(b.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(state_a[k], state_b[k]) for k in state_a)
    assert state_dict_sha256(state_a) == a.weights_sha256
    assert read_sha256_file(tmp_path / "a.pth.sha256") == a.sha256
    assert a.val_miou is not None and 0.0 <= a.val_miou <= 1.0 and b.val_miou is None
    assert torch.get_num_threads() >= 1
    seg = SyntheticSegmenter(a.checkpoint, config=cfg)
    scores = evaluate_segmenter(seg, root, "val")
    assert scores["miou"] == pytest.approx(a.val_miou)
    with pytest.raises(CheckpointError, match="does not match the network"):
        SyntheticSegmenter(a.checkpoint)  # default architecture, small checkpoint
