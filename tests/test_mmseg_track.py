"""The mmsegmentation track: pinned classes and label maps agree with mmseg, weights come from the registry.

The full R101 networks are only configured here (their config is read, not built); forward passes use
ResNet-18 variants of the same configs, built through the same code path with config overrides.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from bench.errors import CheckpointError, WeightsNotFoundError
from bench.weights import WEIGHTS, import_file
from segmenters.mmcv_ext_standin import ensure_mmseg_importable
from segmenters.mmseg_model import build_segmentor, load_config, packaged_config_dir
from segmenters.mmseg_track import (
    COCOSTUFF_182_TO_171,
    TRACK,
    TRACK_SEGMENTERS,
    MMSegDeepLabV3PlusR101Cityscapes,
    MMSegDeepLabV3R101COCOStuff,
    MMSegUPerNetR101ADE20K,
)

# ResNet-18 widths for each config (backbone depth 18 halves nothing but the channel counts below).
THIN = {
    "mmseg_upernet_r101_ade20k": {
        "model.backbone.depth": 18, "model.decode_head.in_channels": [64, 128, 256, 512],
        "model.decode_head.channels": 16, "model.auxiliary_head.in_channels": 256, "model.auxiliary_head.channels": 8,
    },
    "mmseg_deeplabv3_r101_cocostuff164k": {
        "model.backbone.depth": 18, "model.decode_head.in_channels": 512, "model.decode_head.channels": 16,
        "model.auxiliary_head.in_channels": 256, "model.auxiliary_head.channels": 8,
    },
    "mmseg_deeplabv3plus_r101_cityscapes": {
        "model.backbone.depth": 18, "model.decode_head.in_channels": 512, "model.decode_head.channels": 16,
        "model.decode_head.c1_in_channels": 64, "model.decode_head.c1_channels": 8,
        "model.auxiliary_head.in_channels": 256, "model.auxiliary_head.channels": 8,
    },
}


def test_pinned_classes_equal_mmseg_dataset_classes() -> None:
    ensure_mmseg_importable()
    from mmseg.datasets import ADE20KDataset, CityscapesDataset, COCOStuffDataset

    assert MMSegUPerNetR101ADE20K.class_names == ADE20KDataset.METAINFO["classes"]
    assert MMSegDeepLabV3R101COCOStuff.class_names == COCOStuffDataset.METAINFO["classes"]
    assert MMSegDeepLabV3PlusR101Cityscapes.class_names == CityscapesDataset.METAINFO["classes"]


def test_cocostuff_182_to_171_is_mmseg_converter_table() -> None:
    path = packaged_config_dir().parent / "tools" / "dataset_converters" / "coco_stuff164k.py"
    spec = importlib.util.spec_from_file_location("_mmseg_coco_stuff164k", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    table = module.clsID_to_trID
    assert {k: v for k, v in COCOSTUFF_182_TO_171.items() if v != 255} == {k: v for k, v in table.items() if v != 255}
    assert sorted(k for k, v in COCOSTUFF_182_TO_171.items() if v == 255) == sorted(set(range(182)) - set(table))
    assert MMSegDeepLabV3R101COCOStuff.dataset_label_map is COCOSTUFF_182_TO_171
    assert MMSegUPerNetR101ADE20K.dataset_label_map is None and MMSegDeepLabV3PlusR101Cityscapes.dataset_label_map is None


@pytest.mark.parametrize("name", sorted(TRACK_SEGMENTERS))
def test_configs_predict_the_pinned_number_of_classes(name: str) -> None:
    cls = TRACK_SEGMENTERS[name]
    cfg = load_config(cls.config)
    assert cfg.model.decode_head.num_classes == len(cls.class_names)
    assert cfg.model.backbone.depth == 101 and cfg.model.test_cfg.mode == "whole"
    assert WEIGHTS.get(cls.weights).urls[0].endswith(WEIGHTS.get(cls.weights).filename)


@pytest.fixture
def thin_checkpoint(request: pytest.FixtureRequest, tmp_path: Path, bench_cache: Path,
                    monkeypatch: pytest.MonkeyPatch) -> tuple[type, Path]:
    """A thin model's checkpoint (mmengine layout, with dataset_meta) imported under the class's registry entry."""
    cls = TRACK_SEGMENTERS[request.param]
    torch.manual_seed(0)
    model = build_segmentor(cls.config, class_names=cls.class_names, overrides=THIN[cls.name])
    path = tmp_path / "thin.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": list(cls.class_names)}}}, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    monkeypatch.setitem(WEIGHTS._entries, cls.weights, replace(WEIGHTS.get(cls.weights), sha256=digest))
    import_file(cls.weights, path)
    return cls, path


@pytest.mark.parametrize("thin_checkpoint", sorted(TRACK_SEGMENTERS), indirect=True)
def test_thin_variant_loads_from_the_registry_and_segments(thin_checkpoint: tuple[type, Path]) -> None:
    cls, path = thin_checkpoint
    seg = cls(overrides=THIN[cls.name], batch_size=2)  # checkpoint resolved in the weights cache
    images = torch.rand(3, 3, 32, 48)
    pred = seg.predict(images)
    assert pred.shape == (3, 32, 48) and pred.dtype == torch.int64
    assert 0 <= int(pred.min()) and int(pred.max()) < seg.num_classes
    ident = seg.identity()
    assert ident["track"] == TRACK == "mmsegmentation" and ident["config"] == cls.config
    assert ident["checkpoint_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("thin_checkpoint", ["mmseg_upernet_r101_ade20k"], indirect=True)
def test_checkpoint_with_other_classes_is_refused(thin_checkpoint: tuple[type, Path], tmp_path: Path) -> None:
    cls, path = thin_checkpoint
    ckpt = torch.load(path, weights_only=True)
    ckpt["meta"]["dataset_meta"]["classes"][7] = "bed"  # mmseg spells it "bed " (trailing space)
    other = tmp_path / "other.pth"
    torch.save(ckpt, other)
    with pytest.raises(CheckpointError, match="pinned class list"):
        cls(other, overrides=THIN[cls.name])


def test_missing_checkpoint_is_one_line(bench_cache: Path) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        MMSegDeepLabV3PlusR101Cityscapes()
    msg = str(info.value)
    assert "\n" not in msg and "download.openmmlab.com" in msg
    assert "bench weights import mmseg-deeplabv3plus-r101-cityscapes PATH" in msg
