"""Loaders of the four real datasets on tiny fixture trees in their official layouts, and `bench data check`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import bench.datasets.real  # noqa: F401  (registers the real datasets, whether or not bench.datasets does)
from bench.cli import cli
from bench.datasets import DATASETS, open_split
from bench.datasets.custom import CustomDataset
from bench.datasets.transforms import Preprocess
from bench.errors import ConfigError, DataError
from tests import fixtures_real as F


def ids(ds, i: int) -> np.ndarray:  # noqa: ANN001
    return ds[i]["label"][0].numpy()


def same(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and bool((a == b).all())


# --- registry and specs ----------------------------------------------------------------------------------
def test_specs_are_registered_lazily() -> None:
    code = (
        "import sys, bench.datasets.real; from bench.datasets import DATASETS; "
        "names = DATASETS.names(); "
        "print(all(n in names for n in ('ade20k', 'coco', 'cityscapes', 'celebamask')), "
        "any(m in sys.modules for m in ('bench.datasets.ade20k', 'bench.datasets.cityscapes', 'cityscapesscripts')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]


@pytest.mark.parametrize(
    ("name", "n_classes", "layout", "segmenter", "size"),
    [
        ("ade20k", 150, "ade20k", "upernet101_ade20k", (256, 256)),
        ("coco", 182, "cocostuff", "deeplabv2_cocostuff", (256, 256)),
        ("cityscapes", 35, "cityscapes", "drn105_cityscapes", (256, 512)),
        ("celebamask", 19, "celebamask", "unet_celebamask", (256, 256)),
    ],
)
def test_spec_facts(name: str, n_classes: int, layout: str, segmenter: str, size: tuple[int, int]) -> None:
    from bench.evaluate import segmenter_name
    from segmenters import SEGMENTERS

    spec = DATASETS.get(name)
    assert (spec.num_classes, spec.layout, segmenter_name(spec), spec.native_size) == (n_classes, layout, segmenter, size)
    assert segmenter in SEGMENTERS


def test_class_lists_match_the_segmenters() -> None:
    from segmenters import papers

    assert DATASETS.get("ade20k").class_names == papers.ADE20K_CLASSES
    assert DATASETS.get("coco").class_names == papers.COCOSTUFF_CLASSES
    assert DATASETS.get("celebamask").class_names == papers.CELEBAMASK_CLASSES
    assert DATASETS.get("cityscapes").eval_class_names == papers.CITYSCAPES_TRAIN_CLASSES


def test_cityscapes_tables_come_from_cityscapesscripts() -> None:
    from cityscapesscripts.helpers.labels import id2label

    spec = DATASETS.get("cityscapes")
    for i in range(34):
        assert spec.class_names[i] == id2label[i].name
        tid = id2label[i].trainId
        assert spec.extra["eval_label_map"][i] == (tid if 0 <= tid < 255 else 255)
    assert spec.class_names[34] == "unused" and spec.extra["eval_label_map"][34] == 255
    assert spec.extra["eval_label_map"][26] == 13 and spec.eval_class_names[13] == "car"
    assert spec.thing_classes == tuple(range(24, 34))


# --- ADE20K ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, F.Expected]:
    root = tmp_path_factory.mktemp("ade")
    return root, F.write_ade20k(root, n_train=3, n_val=2)


def test_ade20k_ids_sizes_splits(ade: tuple[Path, F.Expected]) -> None:
    root, expected = ade
    spec = DATASETS.get("ade20k")
    for split, n in (("train", 3), ("val", 2)):
        ds = open_split(spec, root, split, Preprocess.fixed((40, 56)))
        assert len(ds) == n and [s.id for s in ds.samples] == sorted(expected[split])
        for i in range(n):
            sample = ds[i]
            assert same(sample["label"][0].numpy(), expected[split][sample["id"]])
            assert sample["image"].shape == (3, 40, 56) and sample["image"].dtype == torch.float32
            assert -1.0 <= float(sample["image"].min()) and float(sample["image"].max()) <= 1.0
            assert not sample["instance"].any()
    label = ids(open_split(spec, root, "val", Preprocess.fixed((40, 56))), 0)
    assert label[0, 0] == 255 and label[0, 1] == 149  # "other" -> ignore, flag (150) -> 149


def test_ade20k_root_may_be_the_inner_folder(ade: tuple[Path, F.Expected]) -> None:
    root, expected = ade
    ds = open_split("ade20k", root / "ADEChallengeData2016", "val", Preprocess.fixed((40, 56)))
    assert same(ids(ds, 1), expected["val"][ds.samples[1].id])


def test_ade20k_ids_survive_oasis_and_spade_conventions(ade: tuple[Path, F.Expected]) -> None:
    """OASIS's +1 shift gives back the file values: the convention the official ADE20K checkpoints use."""
    from methods.common.labels import oasis_ids

    root, _ = ade
    ds = open_split("ade20k", root, "val", Preprocess.fixed((40, 56)))
    raw = np.asarray(Image.open(ds.samples[0].label))
    assert same(oasis_ids(ds[0]["label"], ignore_index=255)[0].numpy(), raw.astype(np.int64))
    assert DATASETS.get("ade20k").extra["dontcare_channel_first"] is True


def test_preprocessing_and_augmentation_seeds(ade: tuple[Path, F.Expected]) -> None:
    root, _ = ade
    p = Preprocess(preprocess_mode="resize_and_crop", load_size=48, crop_size=32)
    ds = open_split("ade20k", root, "train", p)
    a, b, c = ds[0, 1], ds[0, 1], ds[0, 2]
    assert a["image"].shape == (3, 32, 32) and torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    assert any(not torch.equal(ds[0, s]["label"], a["label"]) for s in range(2, 8))  # other seeds, other crops
    assert torch.equal(c["label"], ds[0, 2]["label"])
    ev = open_split("ade20k", root, "val", p.for_eval())
    assert ev[0]["label"].shape == (1, 32, 32)


def test_ade20k_errors(tmp_path: Path) -> None:
    F.write_ade20k(tmp_path, n_train=1, n_val=1)
    with pytest.raises(ConfigError, match="unknown split 'test'"):
        open_split("ade20k", tmp_path, "test")
    label = next((tmp_path / "ADEChallengeData2016" / "annotations" / "validation").glob("*.png"))
    arr = np.asarray(Image.open(label)).copy()
    arr[3, 3] = 151
    Image.fromarray(arr).save(label)
    ds = open_split("ade20k", tmp_path, "val")
    with pytest.raises(DataError, match=r"label values 151 .*0 \(other\) \.\. 150"):
        ds[0]
    shutil.rmtree(tmp_path / "ADEChallengeData2016" / "images" / "training")
    with pytest.raises(DataError, match="images/training: missing folder"):
        open_split("ade20k", tmp_path, "train")


# --- COCO-Stuff ------------------------------------------------------------------------------------------
def test_coco_spade_layout(tmp_path: Path) -> None:
    expected = F.write_coco_spade(tmp_path)
    ds = open_split("coco", tmp_path, "val", Preprocess.fixed((40, 56)))
    assert isinstance(ds, CustomDataset)
    s = ds[1]
    assert same(s["label"][0].numpy(), expected["val"][s["id"]])
    assert int(s["instance"][0, 0, 0]) == 7 and 255 in s["label"]  # the inst file, and unlabeled kept as 255


def test_coco_official_layout_and_spade_instance_maps(tmp_path: Path) -> None:
    expected, boxes = F.write_coco_official(tmp_path)
    for split in ("train", "val"):
        ds = open_split("coco", tmp_path, split, Preprocess.fixed((40, 56)))
        assert type(ds).__name__ == "CocoStuffOfficialDataset" and len(ds) == 2
        for i in range(2):
            s = ds[i]
            label, inst = expected[split][s["id"]], s["instance"][0].numpy()
            assert same(s["label"][0].numpy(), label)
            painted = np.zeros(label.shape, dtype=bool)
            for k, (x0, y0, x1, y1) in enumerate(boxes[s["id"]]):
                assert (inst[y0 + 1 : y1, x0 + 1 : x1] == k).all()  # interior: the annotation counter
                painted[y0 : y1 + 1, x0 : x1 + 1] = True
            assert same(inst[~painted], label[~painted])  # elsewhere the label (crowd RLE skipped)


def test_coco_official_needs_the_annotations(tmp_path: Path) -> None:
    F.write_coco_official(tmp_path)
    (tmp_path / "annotations" / "instances_val2017.json").unlink()
    with pytest.raises(DataError, match=r"instances_val2017\.json: missing.*SPADE's layout"):
        open_split("coco", tmp_path, "val")


# --- Cityscapes ------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, F.Expected, F.Expected]:
    root = tmp_path_factory.mktemp("cs")
    labels, insts = F.write_cityscapes(root, n_train=2, n_val=3)
    return root, labels, insts


def test_cityscapes_pairs_ids_instances(city: tuple[Path, F.Expected, F.Expected]) -> None:
    from bench.evaluate import to_eval_labels
    from methods.common.labels import instance_edges

    root, labels, insts = city
    spec = DATASETS.get("cityscapes")
    ds = open_split(spec, root, "val", Preprocess.fixed((32, 64)))
    assert [s.id for s in ds.samples] == sorted(labels["val"])  # decoy gtFine files ignored
    for i in range(len(ds)):
        s = ds[i]
        assert same(s["label"][0].numpy(), labels["val"][s["id"]])
        assert same(s["instance"][0].numpy(), insts["val"][s["id"]])  # 16-bit ids kept (26000, 26001)
    s = ds[0]
    edges = instance_edges(s["instance"][None])[0, 0]
    assert edges[-1, 19] == 1 and edges[-1, 20] == 1 and edges[-1, 10] == 0  # between the two cars only
    train_ids = to_eval_labels(spec, s["label"])[0]
    assert int(train_ids[-1, 10]) == 13  # car
    assert set(train_ids.unique().tolist()) <= set(range(19)) | {255}


def test_cityscapes_fixed_preprocess(city: tuple[Path, F.Expected, F.Expected]) -> None:
    root, _, _ = city
    s = open_split("cityscapes", root, "train", Preprocess.fixed((16, 32)))[1]
    assert s["image"].shape == (3, 16, 32) and s["label"].shape == (1, 16, 32) and s["instance"].shape == (1, 16, 32)


def test_cityscapes_missing_instance_map(tmp_path: Path) -> None:
    F.write_cityscapes(tmp_path, n_train=1, n_val=1)
    next((tmp_path / "gtFine" / "val").rglob("*_instanceIds.png")).unlink()
    with pytest.raises(DataError, match="has no instance map"):
        open_split("cityscapes", tmp_path, "val")


# --- CelebAMask-HQ ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def celeba(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, F.Expected]:
    root = tmp_path_factory.mktemp("celeba")
    return root, F.write_celebamask_official(root, mask_size=16, scale=2)


@pytest.mark.parametrize(("split", "key"), [("train", "train"), ("val", "val"), ("test", "val"), ("celeba_val", "celeba_val")])
def test_celebamask_official_split_and_combined_masks(celeba: tuple[Path, F.Expected], split: str, key: str) -> None:
    root, expected = celeba
    ds = open_split("celebamask", root, split, Preprocess.fixed((16, 16)))
    assert [s.id for s in ds.samples] == [str(i) for i in F.CELEBA_SPLITS[key]]
    for i in range(len(ds)):
        assert same(ids(ds, i), expected[key][ds.samples[i].id])


def test_celebamask_official_paint_order_and_size(celeba: tuple[Path, F.Expected]) -> None:
    root, _ = celeba
    ds = open_split("celebamask", root, "val", Preprocess.fixed((32, 32)))  # the photos' own size
    s = ds[1]  # odd index: has a hat over the hair
    label = s["label"][0].numpy()
    assert s["image"].shape == (3, 32, 32) and label.shape == (32, 32)
    assert label[16, 16] == 2 and label[6, 6] == 1  # nose painted over skin
    assert label[0, 0] == 14 and label[5, 0] == 13  # hat over hair; hair (an RGB mask file) read
    assert label[9, 9] == 4  # l_eye
    assert (label[::2, ::2] == label[1::2, 1::2]).all()  # 16 -> 32 by pixel repetition


def test_celebamask_partition_thresholds() -> None:
    from bench.datasets.celebamask import TEST_START, VAL_START

    assert (VAL_START, TEST_START) == (162771, 182638)  # g_partition.py
    assert F.CELEBA_SPLITS == {"train": [0, 1], "celeba_val": [2, 3], "val": [4, 5]}


def test_celebamask_sean_layout(tmp_path: Path) -> None:
    expected = F.write_celebamask_sean(tmp_path, n_train=2, n_test=3)
    for split, key, n in (("train", "train", 2), ("val", "val", 3), ("test", "val", 3)):
        ds = open_split("celebamask", tmp_path, split, Preprocess.fixed((16, 16)))
        assert len(ds) == n
        assert all(same(ids(ds, i), expected[key][ds.samples[i].id]) for i in range(n))
    with pytest.raises(ConfigError, match="celeba_val"):
        open_split("celebamask", tmp_path, "celeba_val")


def test_celebamask_mask_size_must_divide_the_photo(celeba: tuple[Path, F.Expected], tmp_path: Path) -> None:
    root = Path(shutil.copytree(celeba[0], tmp_path / "c"))
    Image.new("L", (12, 12)).save(root / "CelebAMask-HQ-mask-anno" / "0" / "00004_nose.png")
    ds = open_split("celebamask", root, "val")
    with pytest.raises(DataError, match="00004_nose.png: size 12x12"):
        ds[0]


# --- bench data check --------------------------------------------------------------------------------------
def _first(root: Path, pattern: str) -> Path:
    return sorted(root.rglob(pattern))[0]


def _set_pixel(path: Path, value: int) -> None:
    arr = np.asarray(Image.open(path)).copy()
    arr[1, 1] = value
    Image.fromarray(arr).save(path)


def _shrink(path: Path) -> None:
    im = Image.open(path)
    im.resize((im.width - 2, im.height - 2), Image.Resampling.NEAREST).save(path)


def _extra_image(path: Path) -> None:
    shutil.copy(path, path.with_name(path.name.replace("1", "9", 1) if "1" in path.name else "9" + path.name))


LAYOUTS: dict[str, tuple[str, Callable[[Path], object], str, str]] = {
    # name: (dataset, writer, val label glob, val image glob)
    "ade20k": ("ade20k", lambda r: F.write_ade20k(r, n_train=1, n_val=2), "ADE_val_*.png", "ADE_val_*.jpg"),
    "coco-spade": ("coco", lambda r: F.write_coco_spade(r, n_train=1), "val_label/*.png", "val_img/*.jpg"),
    "coco-official": ("coco", lambda r: F.write_coco_official(r, n_train=1), "val2017/*.png", "images/val2017/*.jpg"),
    "cityscapes": ("cityscapes", lambda r: F.write_cityscapes(r, n_train=1), "val/*/*_labelIds.png",
                   "leftImg8bit/val/*/*.png"),
    "celebamask-official": ("celebamask", lambda r: F.write_celebamask_official(r), "00004_*.png", "CelebA-HQ-img/4.jpg"),
    "celebamask-sean": ("celebamask", lambda r: F.write_celebamask_sean(r), "test/labels/*.png", "test/images/*.jpg"),
}


@pytest.fixture(scope="module")
def clean_trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    trees = {}
    for key, (_, writer, _, _) in LAYOUTS.items():
        trees[key] = tmp_path_factory.mktemp(key)
        writer(trees[key])
    return trees


def _check(dataset: str, root: Path):  # noqa: ANN202
    return CliRunner().invoke(cli, ["data", "check", "--dataset", dataset, "--data-root", str(root)])


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln[ln.index("Error: "):] for ln in result.output.splitlines() if "Error: " in ln]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_check_split_summary(tmp_path: Path) -> None:
    from bench.datasets.real import check_split

    F.write_ade20k(tmp_path, n_train=1, n_val=3)
    spec = DATASETS.get("ade20k")
    labels = sorted(tmp_path.rglob("ADE_val_*.png"))
    _set_pixel(labels[0], 200)
    image = sorted(tmp_path.rglob("ADE_val_*.jpg"))[1]
    image.write_bytes(image.read_bytes()[:200])  # truncated
    s = check_split(tmp_path, "val", spec)
    assert (s.n_images, s.n_labels, s.n_pairs, s.layout) == (3, 3, 3, "ade20k")
    assert s.unknown_ids == {200: 1} and s.sizes == {"56x40": 2} and not s.ok
    assert sum(s.label_histogram.values()) == 2 * 40 * 56 - 1  # the unknown pixel is not counted as an id
    assert set(s.label_histogram) <= set(range(150)) | {255}
    assert len(s.problems) == 2 and any(image.name in p and "truncated or corrupt" in p for p in s.problems)
    assert "NOT OK" in s.describe() and s.first_problem() == s.problems[0]


@pytest.mark.parametrize("key", sorted(LAYOUTS))
def test_data_check_reports_a_good_tree(key: str, clean_trees: dict[str, Path]) -> None:
    dataset = LAYOUTS[key][0]
    result = _check(dataset, clean_trees[key])
    assert result.exit_code == 0, result.output
    assert "train (" in result.output and "val (" in result.output and result.output.count("  OK") == 2
    assert "unknown ids: none" in result.output and "sizes (WxH)" in result.output
    js = CliRunner().invoke(cli, ["data", "check", "--dataset", dataset, "--data-root", str(clean_trees[key]), "--json"])
    assert js.exit_code == 0 and '"ok": true' in js.output


BREAKAGES = ["missing label", "wrong size", "id out of range", "unpaired image"]


@pytest.mark.parametrize("breakage", BREAKAGES)
@pytest.mark.parametrize("key", sorted(LAYOUTS))
def test_data_check_fails_on_a_broken_tree(key: str, breakage: str, clean_trees: dict[str, Path], tmp_path: Path) -> None:
    dataset, _, label_glob, image_glob = LAYOUTS[key]
    root = Path(shutil.copytree(clean_trees[key], tmp_path / "tree"))
    label, image = _first(root, label_glob), _first(root, image_glob)
    if breakage == "missing label":
        for p in sorted(root.rglob(label_glob)) if key == "celebamask-official" else [label]:
            p.unlink()  # CelebAMask-HQ: all part masks of image 4
        expect = "has no label" if key != "celebamask-official" else "has no part masks"
    elif breakage == "wrong size":
        _shrink(label)
        expect = "size"
    elif breakage == "id out of range":
        if key == "celebamask-official":  # composed from binary masks: no id to break; an unknown part instead
            shutil.copy(label, label.with_name("00004_tail.png"))
            expect = "00004_tail.png is not <idx:05d>_<part>.png"
        else:
            _set_pixel(label, 200)
            expect = "200"
    else:
        if key == "celebamask-official":
            shutil.copy(image, image.with_name("7.jpg"))
            expect = "7.jpg is not listed in CelebA-HQ-to-CelebA-mapping.txt"
        else:
            _extra_image(image)
            expect = "has no label"
    line = _one_line_error(_check(dataset, root))
    assert expect in line, line
    if breakage == "wrong size":
        assert label.name in line
        assert any(w in line for w in ("does not match", "does not divide", "differs from")), line


def test_data_check_one_split_and_the_ade20k_shift(clean_trees: dict[str, Path]) -> None:
    root = clean_trees[next(k for k in LAYOUTS if LAYOUTS[k][0] == "ade20k")]
    result = CliRunner().invoke(cli, ["data", "check", "--dataset", "ade20k", "--data-root", str(root),
                                      "--split", "val"])
    assert result.exit_code == 0, result.output
    assert "val (" in result.output and "train (" not in result.output and result.output.count("  OK") == 1
    assert "shifted from the file values" in result.output and "1..150 -> v - 1" in result.output
    bad = CliRunner().invoke(cli, ["data", "check", "--dataset", "ade20k", "--data-root", str(root), "--split", "test"])
    assert bad.exit_code == 2 and "'test' is not one of" in bad.output and "Traceback" not in bad.output  # click usage
