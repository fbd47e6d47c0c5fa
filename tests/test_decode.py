"""Decoding every photo mode, label map kind and EXIF orientation a user may have, or refusing it by name."""

from __future__ import annotations

import dataclasses
import json
import shutil
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch
from click.testing import CliRunner
from PIL import Image, ImageOps

import bench.datasets.real  # noqa: F401  (registers the real datasets)
from bench.cli import cli
from bench.datasets import DATASETS, DatasetSpec, open_split
from bench.datasets import io as dio
from bench.datasets.custom import CustomDataset, check_split, list_split, load_files
from bench.datasets.io import apply_orientation, decode_image, decode_map, read_image, read_map
from bench.datasets.transforms import Preprocess
from bench.errors import DataError
from tests import fixtures_real as F

SPEC = DatasetSpec.tiny(num_classes=5, image_size=(8, 12))  # has instances
SPEC_NO_INST = dataclasses.replace(SPEC, has_instances=False)
RNG = np.random.default_rng(0)
V16 = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
V16[0, :6] = [0, 65535, 128, 129, 257 * 100 + 128, 257 * 100 + 129]  # rounding edges: 0, 255, 0, 1, 100, 101


def r257(v: np.ndarray) -> np.ndarray:
    """The expected 8-bit value of a 16-bit sample: round(v / 257), computed in float."""
    return np.round(v.astype(np.float64) / 257).astype(np.uint8)


def grey3(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[:, :, None], 3, axis=2)


def write_png(path: Path, arr: np.ndarray, color_type: int) -> Path:
    """A minimal PNG writer for what PIL cannot write (16-bit RGB, RGBA, grey+alpha): unfiltered rows."""
    h, w = arr.shape[:2]
    depth = 16 if arr.dtype == np.uint16 else 8
    rows = b"".join(b"\x00" + arr[y].astype(">u2" if depth == 16 else "u1").tobytes() for y in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    return path


# --- photos: every mode ---------------------------------------------------------------------------------
def test_16bit_grey_png_is_scaled_not_clipped(tmp_path: Path) -> None:
    lum = RNG.integers(0, 256, (6, 7), dtype=np.uint8)
    Image.fromarray(lum.astype(np.uint16) * 257).save(tmp_path / "g.png")  # luminance * 257
    d = decode_image(tmp_path / "g.png")
    assert d.array.dtype == np.uint8 and d.array.shape == (6, 7, 3)
    assert np.array_equal(d.array, grey3(lum))  # was all 255 (mean 255) before
    assert (d.source, d.conversion) == ("PNG I;16 16-bit", "16-bit grey -> 8-bit RGB")
    Image.fromarray(V16).save(tmp_path / "v.png")
    assert np.array_equal(read_image(tmp_path / "v.png"), grey3(r257(V16)))
    assert read_image(tmp_path / "v.png")[0, :6, 0].tolist() == [0, 255, 0, 1, 100, 101]


@pytest.mark.parametrize("byteorder", [">", "<"])
def test_16bit_grey_tiff_both_byte_orders(tmp_path: Path, byteorder: str) -> None:
    tifffile.imwrite(tmp_path / "g.tif", V16.astype(f"{byteorder}u2"), byteorder=byteorder)
    with Image.open(tmp_path / "g.tif") as im:
        assert im.mode == ("I;16B" if byteorder == ">" else "I;16")
    assert np.array_equal(read_image(tmp_path / "g.tif"), grey3(r257(V16)))


@pytest.mark.parametrize("mode", ["I;16L", "I;16B", "I;16"])
def test_16bit_modes_in_memory(tmp_path: Path, mode: str) -> None:
    dtype = ">u2" if mode == "I;16B" else "<u2"
    im = Image.frombytes(mode, (7, 6), V16.astype(dtype).tobytes())
    array, note = dio._photo(im, mode, tmp_path / "x.png")
    assert np.array_equal(array, grey3(r257(V16))) and note == "16-bit grey -> 8-bit RGB"


def test_mode_I_from_a_16bit_png_as_old_pillow_reads_it(tmp_path: Path) -> None:
    Image.fromarray(V16).save(tmp_path / "v.png")
    with Image.open(tmp_path / "v.png") as im:
        i = im.convert("I")  # Pillow < 10 opened 16-bit PNGs in mode "I"
    i.format = "PNG"
    array, note = dio._photo(i, "I", tmp_path / "v.png")
    assert np.array_equal(array, grey3(r257(V16))) and note == "16-bit grey -> 8-bit RGB"


def test_32bit_unsigned_grey_tiff(tmp_path: Path) -> None:
    v = (RNG.integers(0, 256, (4, 5)).astype(np.uint64) * 16843009).astype(np.uint32)  # k * (2**32-1)/255
    v[0, 0], v[0, 1] = 2**32 - 1, 16843009 // 2 + 1
    tifffile.imwrite(tmp_path / "u.tif", v)
    d = decode_image(tmp_path / "u.tif")
    expected = np.round(v.astype(np.float64) / 16843009).astype(np.uint8)
    assert np.array_equal(d.array, grey3(expected)) and d.array[0, 0, 0] == 255 and d.array[0, 1, 0] == 1
    assert d.conversion == "32-bit grey -> 8-bit RGB"
    tifffile.imwrite(tmp_path / "s.tif", v.astype(np.int64).astype(np.int32))
    with pytest.raises(DataError, match=r"s\.tif: 32-bit signed integer grey photo .*8- or 16-bit PNG"):
        read_image(tmp_path / "s.tif")


def test_float_photo_0_to_1(tmp_path: Path) -> None:
    f = RNG.random((4, 5)).astype(np.float32)
    tifffile.imwrite(tmp_path / "f.tif", f)
    assert np.array_equal(read_image(tmp_path / "f.tif"), grey3(np.round(f * 255).astype(np.uint8)))
    tifffile.imwrite(tmp_path / "big.tif", f * 300)
    with pytest.raises(DataError, match=r"big\.tif: float photo holds values outside 0\.\.1"):
        read_image(tmp_path / "big.tif")


@pytest.mark.parametrize(("color_type", "channels", "note"), [
    (2, 3, "16-bit RGB -> 8-bit RGB"),
    (6, 4, "16-bit RGBA -> 8-bit RGB: alpha dropped"),
    (4, 2, "16-bit LA -> 8-bit RGB: alpha dropped"),
])
def test_16bit_colour_png_rounds_every_sample(tmp_path: Path, color_type: int, channels: int, note: str) -> None:
    v = RNG.integers(0, 65536, (5, 6, channels), dtype=np.uint16)
    v[0, 0, 0], v[0, 1, 0] = 511, 257 * 3 + 129  # Pillow's high byte gives 1 and 3; round(v/257) 2 and 4
    d = decode_image(write_png(tmp_path / "c.png", v, color_type))
    rgb = grey3(v[:, :, 0]) if channels == 2 else v[:, :, :3]
    assert np.array_equal(d.array, r257(rgb)) and d.conversion == note
    assert d.array[0, 0, 0] == 2 and d.array[0, 1, 0] == 4


def test_16bit_rgb_tiff(tmp_path: Path) -> None:
    v = RNG.integers(0, 65536, (5, 6, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "c.tif", v, photometric="rgb")
    assert np.array_equal(read_image(tmp_path / "c.tif"), r257(v))


def test_8bit_modes(tmp_path: Path) -> None:
    grey = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    rgb = RNG.integers(0, 256, (4, 5, 3), dtype=np.uint8)
    alpha = RNG.integers(0, 256, (4, 5), dtype=np.uint8)
    alpha[0, 0] = 0  # a fully transparent pixel keeps its colour: alpha is dropped, not composited
    bits = grey > 127
    Image.fromarray(bits).save(tmp_path / "b.png")
    Image.fromarray(grey).save(tmp_path / "l.png")
    Image.fromarray(np.stack([grey, alpha], -1), "LA").save(tmp_path / "la.png")
    Image.fromarray(rgb).save(tmp_path / "rgb.png")
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(tmp_path / "rgba.png")
    cases = {
        "b.png": (np.where(grey3(bits), 255, 0), "1-bit -> 8-bit RGB"),
        "l.png": (grey3(grey), "8-bit grey -> RGB"),
        "la.png": (grey3(grey), "grey+alpha -> RGB: alpha dropped"),
        "rgb.png": (rgb, None),
        "rgba.png": (rgb, "RGBA: alpha dropped"),
    }
    for name, (expected, note) in cases.items():
        d = decode_image(tmp_path / name)
        assert d.array.dtype == np.uint8 and np.array_equal(d.array, expected), name
        assert d.conversion == note, name


@pytest.mark.parametrize("transparency", [None, 1, bytes([255, 0, 128])])
def test_palette_photo_with_and_without_transparency(tmp_path: Path, transparency: int | bytes | None) -> None:
    idx = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    palette = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    im = Image.fromarray(idx, "P")
    im.putpalette(palette)
    kwargs = {} if transparency is None else {"transparency": transparency}
    im.save(tmp_path / "p.png", **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # PIL's "Palette images with Transparency ..." warning is silenced
        d = decode_image(tmp_path / "p.png")
    assert np.array_equal(d.array, np.array(palette, np.uint8).reshape(3, 3)[idx])
    assert d.conversion == ("palette -> RGB" if transparency is None else "palette with transparency -> RGB: alpha dropped")


def test_cmyk_photos(tmp_path: Path) -> None:
    cmyk = RNG.integers(0, 256, (4, 5, 4), dtype=np.uint8)
    Image.fromarray(cmyk, "CMYK").save(tmp_path / "c.tif")
    c = cmyk.astype(np.float64)
    expected = np.round((255 - c[:, :, :3]) * (255 - c[:, :, 3:]) / 255).astype(np.uint8)
    d = decode_image(tmp_path / "c.tif")
    assert np.array_equal(d.array, expected) and d.conversion == "CMYK -> RGB (no colour management)"
    # JPEG CMYK (Adobe files store it inverted; PIL undoes that): pure cyan stays cyan, black stays black
    block = np.zeros((16, 16, 4), np.uint8)
    block[:, :8, 0] = 255
    block[:, 8:, 3] = 255
    Image.fromarray(block, "CMYK").save(tmp_path / "c.jpg", quality=100)
    d = decode_image(tmp_path / "c.jpg")
    assert d.source == "JPEG CMYK 8-bit"
    assert np.abs(d.array[:, :8].astype(int) - [0, 255, 255]).max() <= 2 and d.array[:, 8:].max() <= 2


def test_multi_frame_photo_reads_the_first_frame_and_says_so(tmp_path: Path) -> None:
    frames = [Image.fromarray(np.full((4, 5, 3), v, np.uint8)) for v in (10, 200)]
    frames[0].save(tmp_path / "m.tif", save_all=True, append_images=frames[1:])
    d = decode_image(tmp_path / "m.tif")
    assert (d.array == 10).all() and d.conversion == "first of 2 frames"


def test_unconvertible_photo_mode_is_refused_in_one_line(tmp_path: Path) -> None:
    im = Image.new("La", (3, 3))
    with pytest.raises(DataError, match=r"x\.png: photo mode La cannot be converted to RGB"):
        dio._photo(im, "La", tmp_path / "x.png")


# --- EXIF orientation ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("orientation", range(1, 9))
def test_orientation_table_matches_exif_transpose(tmp_path: Path, orientation: int) -> None:
    a = RNG.integers(0, 256, (3, 5, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(a).save(tmp_path / "o.png", exif=exif)
    with Image.open(tmp_path / "o.png") as im:
        upright = np.asarray(ImageOps.exif_transpose(im).convert("RGB"))
    d = decode_image(tmp_path / "o.png", exif=True)
    assert d.orientation == orientation and d.rotated == (orientation != 1)
    assert np.array_equal(d.array, upright) and np.array_equal(apply_orientation(a, orientation), upright)


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif


def _blocky_pair(root: Path, split: str, stem: str, *, photo_tag: int, label_tag: int, inst_tag: int | None = None,
                 size: tuple[int, int] = (16, 24)) -> np.ndarray:
    """A JPEG photo that encodes its PNG label (8x8 blocks, grey = 50 * id), with the given EXIF tags."""
    h, w = size
    label = np.kron(RNG.integers(0, 5, (h // 8, w // 8)), np.ones((8, 8), np.int64)).astype(np.uint8)
    for kind in ("img", "label", "inst"):
        (root / f"{split}_{kind}").mkdir(parents=True, exist_ok=True)
    Image.fromarray(grey3(label * 50)).save(root / f"{split}_img" / f"{stem}.jpg", quality=100, exif=_exif(photo_tag))
    Image.fromarray(label).save(root / f"{split}_label" / f"{stem}.png", exif=_exif(label_tag))
    if inst_tag is not None:
        Image.fromarray(label * 3).save(root / f"{split}_inst" / f"{stem}.png", exif=_exif(inst_tag))
    return label


def test_exif_rotated_jpeg_and_png_label_stay_aligned(tmp_path: Path) -> None:
    label = _blocky_pair(tmp_path, "train", "a", photo_tag=6, label_tag=6, inst_tag=6)
    _blocky_pair(tmp_path, "train", "b", photo_tag=3, label_tag=3, inst_tag=3, size=(24, 16))  # 180: same shape
    img, lab, inst = load_files(list_split(tmp_path, "train", SPEC).samples[0], "pair")
    assert img.array.shape == (24, 16, 3) and lab.array.shape == inst.array.shape == (24, 16)  # stored 16x24
    ds = CustomDataset(tmp_path, "train", SPEC, Preprocess.fixed((24, 16)))
    for i in range(2):
        s = ds[i]
        from_image = torch.round((s["image"][0] + 1) * 127.5 / 50).long()
        assert torch.equal(from_image, s["label"][0]) and torch.equal(s["instance"][0], s["label"][0] * 3)
    assert np.array_equal(ds[0]["label"][0].numpy(), np.rot90(label, -1))  # orientation 6: 90 clockwise
    summary = check_split(tmp_path, "train", SPEC)
    assert summary.ok and summary.conversions["photos EXIF-rotated (orientation 6)"] == 1
    assert summary.conversions["labels EXIF-rotated (orientation 3)"] == 1
    assert summary.conversions["instance maps EXIF-rotated (orientation 6)"] == 1


@pytest.mark.parametrize(("photo_tag", "label_tag"), [(6, 1), (1, 8), (3, 6)])
def test_exif_tags_that_disagree_are_refused(tmp_path: Path, photo_tag: int, label_tag: int) -> None:
    _blocky_pair(tmp_path, "train", "a", photo_tag=photo_tag, label_tag=label_tag, size=(16, 16))
    ds = CustomDataset(tmp_path, "train", SPEC_NO_INST)
    with pytest.raises(DataError, match=rf"train_img/a\.jpg: EXIF orientation {photo_tag} .* but a\.png has "
                                        rf"{label_tag} .*exif_transpose") as e:
        ds[0]
    assert "\n" not in str(e.value)
    summary = check_split(tmp_path, "train", SPEC_NO_INST)
    assert not summary.ok and "EXIF orientation" in summary.problems[0]


def test_official_layouts_ignore_exif(tmp_path: Path) -> None:
    F.write_ade20k(tmp_path, n_train=1, n_val=1)
    photo = next((tmp_path / "ADEChallengeData2016" / "images" / "validation").glob("*.jpg"))
    with Image.open(photo) as im:
        im.load()
    im.save(photo, quality=100, exif=_exif(6))  # a tag, but the ADE label follows the stored pixels
    with Image.open(photo) as im:
        stored = np.asarray(im.convert("RGB"))
    ds = open_split("ade20k", tmp_path, "val", Preprocess.fixed((40, 56)))
    img = ((ds[0]["image"].permute(1, 2, 0) + 1) * 127.5).round().to(torch.uint8).numpy()
    assert np.array_equal(img, stored)  # 56x40 as stored, not turned to 40x56
    s = bench.datasets.real.check_split(tmp_path, "val", DATASETS.get("ade20k"))
    assert s.ok and s.conversions == {"photos with an EXIF orientation tag: ignored (labels follow stored pixels)": 1}


def test_coco_in_spade_layout_ignores_exif(tmp_path: Path) -> None:
    """The custom loader reads official COCO-Stuff in SPADE's layout: stored pixels, like SPADE."""
    F.write_coco_spade(tmp_path, n_train=1)
    photo = sorted((tmp_path / "val_img").glob("*.jpg"))[0]
    with Image.open(photo) as im:
        im.load()
    im.save(photo, quality=100, exif=_exif(8))
    ds = open_split("coco", tmp_path, "val", Preprocess.fixed((40, 56)))
    assert isinstance(ds, CustomDataset) and ds[0]["image"].shape == (3, 40, 56)  # not refused, not turned


# --- label maps ---------------------------------------------------------------------------------------------
def _tree(root: Path, stems: tuple[str, ...] = ("a", "b"), *, inst: bool = True) -> Path:
    for stem in stems:
        for kind in ("img", "label", "inst"):
            (root / f"train_{kind}").mkdir(parents=True, exist_ok=True)
        label = RNG.integers(0, 5, (8, 12), dtype=np.uint8)
        Image.fromarray(grey3(label * 50)).save(root / "train_img" / f"{stem}.png")
        Image.fromarray(label).save(root / "train_label" / f"{stem}.png")
        if inst:
            Image.fromarray(label.astype(np.uint16) * 1000).save(root / "train_inst" / f"{stem}.png")
    return root


@pytest.mark.parametrize(("ext", "fmt"), [(".jpg", "JPEG"), (".bmp", "BMP"), (".tif", "TIFF"), (".webp", "WEBP")])
def test_label_in_another_format_is_named_not_missing(tmp_path: Path, ext: str, fmt: str) -> None:
    root = _tree(tmp_path)
    label = root / "train_label" / "a.png"
    with Image.open(label) as im:
        im.save(label.with_suffix(ext))
    label.unlink()
    expected = rf"train_label/a{ext}: label a{ext} is {fmt}; label maps must be lossless single-channel PNG ids"
    with pytest.raises(DataError, match=expected) as e:
        CustomDataset(root, "train", SPEC)
    assert "has no label" not in str(e.value) and "missing" not in str(e.value)
    assert ("JPEG is lossy" in str(e.value)) == (fmt == "JPEG")
    summary = check_split(root, "train", SPEC)
    assert summary.unpaired == [] and summary.n_pairs == 1 and not summary.ok
    assert summary.problems[0].startswith(str(label.with_suffix(ext)))


def test_instance_map_in_another_format_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "train_inst" / "b.png").rename(root / "train_inst" / "b.tif")
    with pytest.raises(DataError, match=r"train_inst/b\.tif: instance b\.tif is a PNG with a \.tif extension; rename"):
        CustomDataset(root, "train", SPEC)
    Image.open(root / "train_inst" / "b.tif").save(root / "train_inst" / "b.tif", format="TIFF")
    with pytest.raises(DataError, match=r"b\.tif: instance b\.tif is TIFF; instance maps must be lossless single"):
        CustomDataset(root, "train", SPEC)
    CustomDataset(root, "train", SPEC_NO_INST)  # not read without instances


def test_label_with_png_name_but_jpeg_content(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    label = root / "train_label" / "a.png"
    Image.open(label).convert("L").save(label, format="JPEG")
    with pytest.raises(DataError, match=r"a\.png: label a\.png is JPEG data under a \.png name; .*JPEG is lossy"):
        CustomDataset(root, "train", SPEC)[0]


def test_a_png_label_wins_over_a_jpeg_preview(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    Image.open(root / "train_label" / "a.png").convert("RGB").save(root / "train_label" / "a.jpg")
    assert len(CustomDataset(root, "train", SPEC)) == 2


def test_photo_in_an_unread_format_is_named(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "train_img" / "a.png").rename(root / "train_img" / "a.heic")
    with pytest.raises(DataError, match=r"train_img/a\.heic: photo format \.heic is not read .*convert it to PNG or JPEG"):
        CustomDataset(root, "train", SPEC)


def test_official_layout_label_in_another_format(tmp_path: Path) -> None:
    F.write_ade20k(tmp_path, n_train=1, n_val=2)
    label = sorted((tmp_path / "ADEChallengeData2016" / "annotations" / "validation").glob("*.png"))[0]
    Image.open(label).save(label.with_suffix(".jpg"), quality=95)
    label.unlink()
    result = CliRunner().invoke(cli, ["data", "check", "--dataset", "ade20k", "--data-root", str(tmp_path)])
    assert result.exit_code == 1
    assert f"{label.with_suffix('.jpg')}: label {label.stem}.jpg is JPEG; label maps must be lossless" in result.output
    assert "has no label" not in result.output
    with pytest.raises(DataError, match=r"label ADE_val_00000001\.jpg is JPEG"):
        open_split("ade20k", tmp_path, "val")


def test_cityscapes_label_in_another_format(tmp_path: Path) -> None:
    F.write_cityscapes(tmp_path, n_train=1, n_val=1)
    label = next((tmp_path / "gtFine" / "val").rglob("*_labelIds.png"))
    Image.open(label).save(label.with_suffix(".bmp"))
    label.unlink()
    with pytest.raises(DataError, match=r"_gtFine_labelIds\.bmp: label .* is BMP; .*convert it losslessly"):
        open_split("cityscapes", tmp_path, "val")


def test_celebamask_part_mask_in_another_format(tmp_path: Path) -> None:
    F.write_celebamask_official(tmp_path)
    mask = sorted((tmp_path / "CelebAMask-HQ-mask-anno").rglob("00004_hair.png"))[0]
    Image.open(mask).convert("RGB").save(mask.with_suffix(".jpg"))
    mask.unlink()  # its hair would silently be missing from the label
    with pytest.raises(DataError, match=r"00004_hair\.jpg: part mask 00004_hair\.jpg is JPEG; CelebAMask-HQ part masks are PNGs"):
        open_split("celebamask", tmp_path, "val")


def test_palette_label_indices_are_ids(tmp_path: Path) -> None:
    idx = RNG.integers(0, 5, (6, 7), dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette([200, 0, 0, 0, 200, 0, 0, 0, 200, 9, 9, 9, 250, 250, 250])  # colours unrelated to ids
    im.save(tmp_path / "p.png", transparency=0)
    d = decode_map(tmp_path / "p.png")
    assert d.array.dtype == np.uint8 and np.array_equal(d.array, idx) and d.conversion == "palette: indices kept as ids"


def test_16bit_and_1bit_maps(tmp_path: Path) -> None:
    Image.fromarray(V16).save(tmp_path / "i.png")
    d = decode_map(tmp_path / "i.png", "instance")
    assert d.array.dtype == np.uint16 and np.array_equal(d.array, V16) and d.source == "PNG I;16 16-bit"
    bits = RNG.integers(0, 2, (6, 7)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    assert np.array_equal(read_map(tmp_path / "b.png"), bits.astype(np.uint8))


def test_grey_alpha_label_opaque_accepted_transparent_refused(tmp_path: Path) -> None:
    ids = RNG.integers(0, 5, (6, 7), dtype=np.uint8)
    Image.fromarray(np.stack([ids, np.full_like(ids, 255)], -1), "LA").save(tmp_path / "la.png")
    d = decode_map(tmp_path / "la.png")
    assert np.array_equal(d.array, ids) and d.conversion == "grey+alpha: opaque alpha dropped"
    alpha = np.full_like(ids, 255)
    alpha[0, :3] = 0
    Image.fromarray(np.stack([ids, alpha], -1), "LA").save(tmp_path / "t.png")
    with pytest.raises(DataError, match=r"t\.png: label map has an alpha channel with 3 non-opaque pixels"):
        read_map(tmp_path / "t.png")
    ids16 = RNG.integers(0, 65536, (6, 7), dtype=np.uint16)
    write_png(tmp_path / "la16.png", np.stack([ids16, np.full_like(ids16, 65535)], -1), 4)
    d = decode_map(tmp_path / "la16.png", "instance")
    assert d.array.dtype == np.uint16 and np.array_equal(d.array, ids16)


def test_colour_labels_keep_their_refusal(tmp_path: Path) -> None:
    ids = RNG.integers(0, 5, (6, 7), dtype=np.uint8)
    Image.fromarray(grey3(ids)).save(tmp_path / "g.png")
    with pytest.raises(DataError, match=r"g\.png: label map has mode RGB \(3 channels\) \(its colour channels are equal"):
        read_map(tmp_path / "g.png")
    Image.fromarray(RNG.integers(0, 5, (6, 7, 3), dtype=np.uint8)).save(tmp_path / "c.png")
    with pytest.raises(DataError, match=r"c\.png: label map has mode RGB \(3 channels\); expected a single-channel"):
        read_map(tmp_path / "c.png")


# --- instance maps only when the config reads them ------------------------------------------------------------
def test_custom_instance_folder_only_when_read(tmp_path: Path) -> None:
    root = _tree(tmp_path, inst=False)
    (root / "train_inst").rmdir()
    with pytest.raises(DataError, match=r"train_inst: missing split folder \(the dataset spec says it has instance "
                                        r"maps and a config with no_instance=false reads them; add them, or --set "
                                        r"no_instance=true"):
        CustomDataset(root, "train", SPEC)
    ds = CustomDataset(root, "train", SPEC_NO_INST, Preprocess.fixed((8, 12)))
    assert len(ds) == 2 and not ds[0]["instance"].any()
    assert check_split(root, "train", SPEC_NO_INST).ok


def test_custom_missing_instance_file_says_why(tmp_path: Path) -> None:
    root = _tree(tmp_path)
    (root / "train_inst" / "a.png").unlink()
    with pytest.raises(DataError, match=r"a\.png has no instance map .*no_instance=false.*--set no_instance=true"):
        CustomDataset(root, "train", SPEC)
    assert len(CustomDataset(root, "train", SPEC_NO_INST)) == 2


def test_cityscapes_without_instance_files(tmp_path: Path) -> None:
    F.write_cityscapes(tmp_path, n_train=1, n_val=2)
    spec = DATASETS.get("cityscapes")
    for p in (tmp_path / "gtFine" / "val").rglob("*_instanceIds.png"):
        p.unlink()
    with pytest.raises(DataError, match=r"has no instance map in .*no_instance=false.*--set no_instance=true"):
        open_split(spec, tmp_path, "val")
    ds = open_split(dataclasses.replace(spec, has_instances=False), tmp_path, "val", Preprocess.fixed((32, 64)))
    assert len(ds) == 2 and not ds[1]["instance"].any()


def test_coco_without_annotations_json(tmp_path: Path) -> None:
    F.write_coco_official(tmp_path, n_train=1)
    (tmp_path / "annotations" / "instances_val2017.json").unlink()
    spec = DATASETS.get("coco")
    with pytest.raises(DataError, match=r"instances_val2017\.json: missing; .*no_instance=false.*--set no_instance=true"):
        open_split(spec, tmp_path, "val")
    ds = open_split(dataclasses.replace(spec, has_instances=False), tmp_path, "val", Preprocess.fixed((40, 56)))
    assert len(ds) == 2 and not ds[0]["instance"].any()
    shutil.rmtree(tmp_path / "annotations")
    assert bench.datasets.real.check_split(tmp_path, "val", dataclasses.replace(spec, has_instances=False)).ok


# --- bench data check reports what it decoded ----------------------------------------------------------------
def test_data_check_reports_formats_and_conversions(tmp_path: Path) -> None:
    root = _tree(tmp_path, ("a", "b", "c", "d"))
    lum = np.asarray(Image.open(root / "train_img" / "a.png"))[:, :, 0]
    Image.fromarray(lum.astype(np.uint16) * 257).save(root / "train_img" / "a.png")  # 16-bit grey
    Image.fromarray(lum.astype(np.uint16) * 257).save(root / "train_img" / "b.png")
    rgb = np.asarray(Image.open(root / "train_img" / "c.png"))
    Image.fromarray(np.dstack([rgb, np.full(rgb.shape[:2], 9, np.uint8)]), "RGBA").save(root / "train_img" / "c.png")
    label_d = Image.open(root / "train_label" / "d.png")
    label_d.save(root / "train_label" / "d.png", exif=_exif(3))
    img_d = Image.open(root / "train_img" / "d.png")
    img_d.save(root / "train_img" / "d.png", exif=_exif(3))
    inst_d = Image.open(root / "train_inst" / "d.png")
    inst_d.save(root / "train_inst" / "d.png", exif=_exif(3))
    s = check_split(root, "train", SPEC)
    assert s.ok, s.problems
    assert s.image_formats == {"PNG I;16 16-bit": 2, "PNG RGB 8-bit": 1, "PNG RGBA 8-bit": 1}
    assert s.label_formats == {"PNG L 8-bit": 4} and s.instance_formats == {"PNG I;16 16-bit": 4}
    assert s.conversions == {
        "photos 16-bit grey -> 8-bit RGB": 2, "photos RGBA: alpha dropped": 1,
        "photos EXIF-rotated (orientation 3)": 1, "labels EXIF-rotated (orientation 3)": 1,
        "instance maps EXIF-rotated (orientation 3)": 1,
    }
    text = bench.datasets.real.check_split(root, "train", SPEC).describe()
    assert "2 photos 16-bit grey -> 8-bit RGB" in text and "1 photos RGBA: alpha dropped" in text
    assert "decoded photos: PNG I;16 16-bit x2" in text and "decoded labels: PNG L 8-bit x4" in text

    # through the CLI, on a tree the synthetic spec accepts (custom layout, with instance maps)
    (root / "val_img").mkdir()
    for kind in ("img", "label", "inst"):
        (root / f"val_{kind}").mkdir(exist_ok=True)
        shutil.copy(root / f"train_{kind}" / "a.png", root / f"val_{kind}" / "a.png")
    out = CliRunner().invoke(cli, ["data", "check", "--dataset", "synthetic", "--data-root", str(root)])
    assert out.exit_code == 0, out.output
    assert "conversions: 2 photos 16-bit grey -> 8-bit RGB" in out.output
    js = CliRunner().invoke(cli, ["data", "check", "--dataset", "synthetic", "--data-root", str(root), "--json"])
    data = json.loads(js.output)
    assert data["val"]["conversions"] == {"photos 16-bit grey -> 8-bit RGB": 1}
    assert data["train"]["image_formats"]["PNG I;16 16-bit"] == 2
