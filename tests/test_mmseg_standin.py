"""The mmcv._ext stand-in, and building / loading / running mmseg models from mmseg's own configs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from bench.errors import BenchError, CheckpointError, ConfigError, DataError, WeightsNotFoundError
from segmenters import mmcv_ext_standin
from segmenters.mmcv_ext_standin import CompiledOpUnavailableError, ensure_mmseg_importable, standin_installed
from segmenters.mmseg_model import build_segmentor, file_sha256, load_config, predict_labels

CLASSES = tuple(f"class{i}" for i in range(19))  # the Cityscapes configs predict 19 classes

# The r18 variants of the configs shipped with mmseg, with thinner heads so a CPU build is quick.
CONFIGS = {
    "upernet": (
        "upernet/upernet_r18_4xb2-40k_cityscapes-512x1024.py",
        {"model.decode_head.channels": 32, "model.auxiliary_head.channels": 16},
    ),
    "deeplabv3": (
        "deeplabv3/deeplabv3_r18-d8_4xb2-80k_cityscapes-512x1024.py",
        {"model.decode_head.channels": 32, "model.auxiliary_head.channels": 16},
    ),
    "deeplabv3plus": (
        "deeplabv3plus/deeplabv3plus_r18-d8_4xb2-80k_cityscapes-512x1024.py",
        {"model.decode_head.channels": 32, "model.auxiliary_head.channels": 16},
    ),
}


def test_ensure_is_idempotent_and_mmseg_imports() -> None:
    first = ensure_mmseg_importable()
    module = sys.modules["mmcv._ext"]
    assert ensure_mmseg_importable() is first
    assert sys.modules["mmcv._ext"] is module
    assert standin_installed() is first
    import mmseg.models  # noqa: F401  (imports mmcv.ops, which loads mmcv._ext)


def test_standin_op_raises_naming_the_op() -> None:
    ext = mmcv_ext_standin._make_standin()
    with pytest.raises(CompiledOpUnavailableError, match="'roi_align_forward'") as info:
        ext.roi_align_forward(torch.zeros(1))
    assert isinstance(info.value, BenchError) and "\n" not in str(info.value)
    assert "mmcv-lite" in str(info.value)
    with pytest.raises(AttributeError):
        ext.__wrapped__  # noqa: B018  (dunders must not turn into ops)
    assert ext.__spec__ is not None and ext.__spec__.name == "mmcv._ext"


def test_mmcv_op_through_public_api_raises_naming_error() -> None:
    if not ensure_mmseg_importable():
        pytest.skip("full mmcv with compiled ops is installed; the stand-in is not in use")
    from mmcv.ops import roi_align

    rois = torch.tensor([[0.0, 0.0, 0.0, 4.0, 4.0]])
    with pytest.raises(CompiledOpUnavailableError, match="roi_align"):
        roi_align(torch.rand(1, 3, 8, 8), rois, (2, 2))


def test_standin_reports_no_full_mmcv() -> None:
    if not ensure_mmseg_importable():
        pytest.skip("full mmcv with compiled ops is installed; the stand-in is not in use")
    from mmengine.utils.dl_utils import mmcv_full_available

    # mmengine must keep taking its mmcv-lite code paths (e.g. no DeformConv in optim constructors)
    assert mmcv_full_available() is False


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_packaged_config_forward(name: str) -> None:
    relpath, overrides = CONFIGS[name]
    model = build_segmentor(relpath, class_names=CLASSES, overrides=overrides)
    assert not model.training
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    assert model.decode_head.channels == 32  # the override reached the model
    torch.manual_seed(0)
    images = torch.rand(1, 3, 64, 64)
    labels = predict_labels(model, images)
    assert labels.shape == (1, 64, 64) and labels.dtype == torch.int64
    assert 0 <= int(labels.min()) and int(labels.max()) < len(CLASSES)
    logits = model(torch.rand(1, 3, 64, 64), mode="tensor")
    assert logits.shape[:2] == (1, len(CLASSES)) and torch.isfinite(logits).all()


def _deeplab(tmp_path: Path) -> tuple[torch.nn.Module, Path]:
    relpath, overrides = CONFIGS["deeplabv3"]
    torch.manual_seed(1)
    model = build_segmentor(relpath, class_names=CLASSES, overrides=overrides)
    ckpt = tmp_path / "ckpt.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"dataset_meta": {"classes": list(CLASSES)}}}, ckpt)
    return model, ckpt


def test_checkpoint_round_trip_and_batch_independence(tmp_path: Path) -> None:
    model, ckpt = _deeplab(tmp_path)
    relpath, overrides = CONFIGS["deeplabv3"]
    torch.manual_seed(2)  # a different random init, overwritten by the checkpoint
    loaded = build_segmentor(
        relpath, class_names=CLASSES, overrides=overrides, checkpoint=ckpt, sha256=file_sha256(ckpt)
    )
    images = torch.rand(3, 3, 48, 40)
    expected = predict_labels(model, images, batch_size=3)
    assert torch.equal(predict_labels(loaded, images, batch_size=3), expected)
    assert torch.equal(predict_labels(loaded, images, batch_size=1), expected)


def test_checkpoint_errors(tmp_path: Path) -> None:
    model, ckpt = _deeplab(tmp_path)
    relpath, overrides = CONFIGS["deeplabv3"]

    def build(path: Path, **kw: object) -> None:
        build_segmentor(
            relpath, class_names=kw.pop("classes", CLASSES), overrides=overrides, checkpoint=path, **kw
        )  # type: ignore[arg-type]

    with pytest.raises(WeightsNotFoundError, match="missing.pth"):
        build(tmp_path / "missing.pth")
    with pytest.raises(CheckpointError, match="sha256"):
        build(ckpt, sha256="0" * 64)

    extra = tmp_path / "extra.pth"
    torch.save({**model.state_dict(), "decode_head.bogus": torch.zeros(1)}, extra)
    with pytest.raises(CheckpointError, match="1 unexpected keys"):
        build(extra)

    partial = tmp_path / "partial.pth"
    state = model.state_dict()
    state.pop("decode_head.conv_seg.weight")
    torch.save(state, partial)
    with pytest.raises(CheckpointError, match="1 missing keys"):
        build(partial)

    pickled = tmp_path / "pickled.pth"
    torch.save({"state_dict": model.state_dict(), "meta": {"obj": Path("x")}}, pickled)
    with pytest.raises(CheckpointError, match="weights_only"):
        build(pickled)

    renamed = tuple(c.upper() for c in CLASSES)
    with pytest.raises(CheckpointError, match="pinned"):
        build(ckpt, classes=renamed)

    for err in (WeightsNotFoundError, CheckpointError):
        assert issubclass(err, BenchError)


def test_class_count_must_match_config() -> None:
    relpath, overrides = CONFIGS["deeplabv3"]
    with pytest.raises(ConfigError, match="19 classes but 5"):
        build_segmentor(relpath, class_names=CLASSES[:5], overrides=overrides)


def test_config_sources() -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config("deeplabv3/no_such_config.py")
    cfg = load_config({"model": {"type": "EncoderDecoder"}}, {"model.test_cfg": {"mode": "whole"}})
    assert cfg.model.test_cfg.mode == "whole"


def test_predict_rejects_bad_images() -> None:
    relpath, overrides = CONFIGS["deeplabv3plus"]
    model = build_segmentor(relpath, class_names=CLASSES, overrides=overrides)
    with pytest.raises(DataError, match=r"\[0, 1\]"):
        predict_labels(model, torch.rand(1, 3, 16, 16) * 2 - 1)
    with pytest.raises(DataError, match=r"\[B, 3, H, W\]"):
        predict_labels(model, torch.rand(3, 16, 16))
