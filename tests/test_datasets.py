"""The custom-layout loader: shapes, determinism, augmentation, preprocessing modes and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.datasets import DATASETS, SYNTHETIC_SPEC, DatasetSpec, open_split
from bench.datasets.custom import CustomDataset, check_split
from bench.datasets.transforms import PREPROCESS_MODES, Preprocess
from bench.errors import ConfigError, DataError, UnknownNameError

SPEC = DatasetSpec.tiny(num_classes=5, image_size=(40, 48))  # thing class: 4
SPEC_NO_INST = DatasetSpec.tiny(num_classes=5, image_size=(40, 48), instances=False)


def _write(
    root: Path,
    split: str,
    stem: str,
    *,
    h: int = 40,
    w: int = 48,
    seed: int = 0,
    label: np.ndarray | None = None,
    image: np.ndarray | None = None,
    inst: bool = True,
) -> None:
    rng = np.random.default_rng(seed)
    for kind in ("img", "label", "inst"):
        (root / f"{split}_{kind}").mkdir(parents=True, exist_ok=True)
    if label is None:
        label = rng.integers(0, 5, (h, w), dtype=np.uint8)
        label[:3, :3] = 255
    if image is None:
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    Image.fromarray(image).save(root / f"{split}_img" / f"{stem}.png")
    Image.fromarray(label).save(root / f"{split}_label" / f"{stem}.png")
    if inst:
        ids = ((label == 4) * (1000 + np.arange(w)[None, :] // 8)).astype(np.uint16)  # 16-bit ids
        Image.fromarray(ids).save(root / f"{split}_inst" / f"{stem}.png")


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    for i in range(3):
        _write(root, "train", f"s{i}", seed=i)
    _write(root, "val", "v0", seed=9)
    return root


def test_sample_shapes_dtypes_ranges(tree: Path) -> None:
    ds = CustomDataset(tree, "train", SPEC, Preprocess(load_size=36, crop_size=32))
    assert len(ds) == 3
    s = ds[0]
    assert s["image"].shape == (3, 32, 32) and s["image"].dtype == torch.float32
    assert s["image"].min() >= -1 and s["image"].max() <= 1
    assert s["label"].shape == (1, 32, 32) and s["label"].dtype == torch.int64
    assert s["instance"].shape == (1, 32, 32) and s["instance"].dtype == torch.int64
    assert set(s["label"].unique().tolist()) <= {0, 1, 2, 3, 4, 255}
    assert s["id"] == "s0" and s["path"].endswith("train_label/s0.png")
    # instance ids survive (16-bit, nearest resize) and sit on the thing class only
    inst, lab = s["instance"], s["label"]
    assert (inst[lab != 4] == 0).all() and (inst[lab == 4] >= 1000).all()


def test_no_resize_image_is_exact(tree: Path) -> None:
    ds = CustomDataset(tree, "val", SPEC, Preprocess(preprocess_mode="none"))  # 48x40 -> rounds to 64x32
    s = ds[0]
    assert s["image"].shape == (3, 32, 64)
    ds = CustomDataset(tree, "val", SPEC, Preprocess.fixed((40, 48)))
    raw = np.array(Image.open(tree / "val_img" / "v0.png"))
    expected = torch.from_numpy(raw).permute(2, 0, 1).float() / 127.5 - 1
    assert torch.allclose(ds[0]["image"], expected)


def test_eval_is_deterministic_and_centred(tree: Path) -> None:
    ds = CustomDataset(tree, "train", SPEC, Preprocess(preprocess_mode="crop", crop_size=16))
    a, b = ds[1], ds[1]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    raw = np.asarray(Image.open(tree / "train_label" / "s1.png"))
    assert np.array_equal(a["label"][0].numpy(), raw[12:28, 16:32])  # centred 16x16 crop of 40x48


def test_augmentation_reproducible_and_aligned(tmp_path: Path) -> None:
    # the image encodes the label, so any misalignment between the two shows up
    rng = np.random.default_rng(3)
    label = rng.integers(0, 5, (40, 48), dtype=np.uint8)
    _write(tmp_path, "train", "a", label=label, image=np.repeat(label[..., None] * 50, 3, axis=2), inst=False)
    ds = CustomDataset(tmp_path, "train", SPEC_NO_INST, Preprocess(preprocess_mode="crop", crop_size=24))
    outs = [ds[0, seed] for seed in range(12)]
    assert torch.equal(ds[0, 5]["image"], outs[5]["image"]) and torch.equal(
        ds[0, 5]["label"], outs[5]["label"]
    )
    assert len({o["label"].numpy().tobytes() for o in outs}) > 1  # seeds move the crop / flip
    for o in outs:
        from_image = torch.round((o["image"][0] + 1) * 127.5 / 50).long()
        assert torch.equal(from_image, o["label"][0])
        assert torch.equal(o["instance"], torch.zeros_like(o["label"]))  # spec without instances


def test_no_flip_disables_flip(tmp_path: Path) -> None:
    _write(tmp_path, "train", "a", inst=False)
    p = Preprocess.fixed((40, 48), no_flip=True)
    ds = CustomDataset(tmp_path, "train", SPEC_NO_INST, p)
    assert all(torch.equal(ds[0, s]["label"], ds[0]["label"]) for s in range(8))
    flipping = CustomDataset(tmp_path, "train", SPEC_NO_INST, Preprocess.fixed((40, 48)))
    flips = [torch.equal(flipping[0, s]["label"], ds[0]["label"].flip(-1)) for s in range(16)]
    assert any(flips) and not all(flips)


@pytest.mark.parametrize(
    ("pre", "shape"),
    [
        (Preprocess(preprocess_mode="resize_and_crop", load_size=36, crop_size=32), (32, 32)),
        (Preprocess(preprocess_mode="scale_width", load_size=24), (20, 24)),
        (Preprocess(preprocess_mode="scale_width_and_crop", load_size=24, crop_size=16), (16, 16)),
        (Preprocess(preprocess_mode="scale_shortside", load_size=20), (20, 24)),
        (Preprocess(preprocess_mode="scale_shortside_and_crop", load_size=20, crop_size=16), (16, 16)),
        (Preprocess(preprocess_mode="fixed", crop_size=32, aspect_ratio=2.0), (16, 32)),
        (Preprocess(preprocess_mode="crop", crop_size=20), (20, 20)),
    ],
)
def test_preprocess_modes_output_size(tree: Path, pre: Preprocess, shape: tuple[int, int]) -> None:
    ds = CustomDataset(tree, "train", SPEC, pre)
    for s in (ds[0], ds[0, 1]):
        assert (
            s["image"].shape[1:] == shape
            and s["label"].shape[1:] == shape
            and s["instance"].shape[1:] == shape
        )


def test_preprocess_config_errors() -> None:
    with pytest.raises(ConfigError, match="scale_width_and_crop"):
        Preprocess(preprocess_mode="zoom")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="crop_size"):
        Preprocess(load_size=32, crop_size=64)
    assert "fixed" in PREPROCESS_MODES and len(PREPROCESS_MODES) == 8
    assert Preprocess().for_eval() == Preprocess(load_size=256, crop_size=256, no_flip=True)


def test_crop_larger_than_image_is_refused(tree: Path) -> None:
    ds = CustomDataset(tree, "train", SPEC, Preprocess(preprocess_mode="crop", crop_size=44))
    with pytest.raises(DataError, match=r"s0\.png.*crop_size=44"):
        ds[0]


def test_label_id_beyond_classes(tree: Path) -> None:
    label = np.zeros((40, 48), np.uint8)
    label[5, 5] = 7
    _write(tree, "train", "s1", label=label)
    ds = CustomDataset(tree, "train", SPEC, Preprocess.fixed((40, 48)))
    ds[0]
    with pytest.raises(DataError, match=r"train_label/s1\.png: label ids 7 .*0\.\.4 or the ignore index 255"):
        ds[1]


def test_size_mismatch(tree: Path) -> None:
    Image.fromarray(np.zeros((30, 48), np.uint8)).save(tree / "train_label" / "s2.png")
    ds = CustomDataset(tree, "train", SPEC, Preprocess.fixed((40, 48)))
    with pytest.raises(DataError, match=r"s2\.png: size 48x30 .*does not match s2\.png \(48x40\)"):
        ds[2]


def test_missing_split_folder(tree: Path) -> None:
    for p in (tree / "val_label").iterdir():
        p.unlink()
    (tree / "val_label").rmdir()
    with pytest.raises(DataError, match=r"val_label: missing split folder; expected the custom layout"):
        CustomDataset(tree, "val", SPEC)
    for p in (tree / "train_inst").iterdir():
        p.unlink()
    (tree / "train_inst").rmdir()
    with pytest.raises(DataError, match=r"train_inst: missing split folder \(the dataset spec says"):
        CustomDataset(tree, "train", SPEC)
    CustomDataset(tree, "train", SPEC_NO_INST)  # instance maps are optional without instances


def test_truncated_png(tree: Path) -> None:
    path = tree / "train_img" / "s0.png"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    ds = CustomDataset(tree, "train", SPEC, Preprocess.fixed((40, 48)))
    with pytest.raises(DataError, match=r"train_img/s0\.png: cannot read image .*truncated or corrupt"):
        ds[0]
    ds[1]


@pytest.mark.parametrize("which", ["img", "label"])
def test_unpaired_files(tree: Path, which: str) -> None:
    (tree / f"train_{which}" / "s1.png").unlink()
    expected = r"s1\.png has no label" if which == "label" else r"train_label/s1\.png has no image"
    with pytest.raises(DataError, match=r"unpaired file: .*" + expected):
        CustomDataset(tree, "train", SPEC)


def test_colour_label_and_duplicate_stem(tree: Path) -> None:
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(tree / "train_label" / "s0.png")
    ds = CustomDataset(tree, "train", SPEC)
    with pytest.raises(DataError, match=r"s0\.png: label map has mode RGB"):
        ds[0]
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(tree / "train_img" / "s1.jpg")
    with pytest.raises(DataError, match=r"two files share the stem 's1'"):
        CustomDataset(tree, "train", SPEC)


def test_check_split_summary(tree: Path) -> None:
    label = np.full((40, 48), 2, np.uint8)
    label[0, :4] = 9
    _write(tree, "train", "s1", label=label)
    (tree / "train_img" / "s2.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    Image.fromarray(np.zeros((40, 48, 3), np.uint8)).save(tree / "train_img" / "lonely.png")
    summary = check_split(tree, "train", SPEC)
    assert (summary.n_images, summary.n_labels, summary.n_instances, summary.n_pairs) == (4, 3, 3, 3)
    assert summary.unpaired == [
        f"{tree / 'train_img' / 'lonely.png'} has no label {tree / 'train_label' / 'lonely.png'}"
    ]
    assert summary.unknown_ids == {9: 1}
    assert summary.sizes == {"48x40": 2}
    assert summary.label_histogram[2] == 40 * 48 - 4 + int(
        (np.asarray(Image.open(tree / "train_label" / "s0.png")) == 2).sum()
    )
    assert any("s2.png" in p and "cannot read image" in p for p in summary.problems)
    assert not summary.ok and summary.to_dict()["ok"] is False
    assert check_split(tree, "val", SPEC).ok


def test_registry_and_open_split(tree: Path) -> None:
    assert DATASETS.get("synthetic") is SYNTHETIC_SPEC
    with pytest.raises(UnknownNameError, match="did you mean 'synthetic'"):
        DATASETS.get("synthetc")
    ds = open_split(SPEC, tree, "train", Preprocess.fixed((40, 48)))
    assert isinstance(ds, CustomDataset) and len(ds) == 3
    with pytest.raises(ConfigError, match="unknown split 'test'"):
        open_split(SPEC, tree, "test")
