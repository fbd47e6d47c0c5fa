"""Colour-coded label maps <-> id maps: official palettes, exact decoding, refusals, and the CLI."""

from __future__ import annotations

import ast
import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from bench.cli import cli
from bench.datasets import DATASETS
from bench.datasets.palettes import (
    BUILTIN,
    builtin_palette,
    colorize,
    colour_to_ids,
    ids_to_colour,
    load_palette,
    read_palette_file,
)
from bench.errors import ConfigError, DataError

# Ids whose colour the official palette also gives to a lower id: a colour map cannot tell them apart.
SHARED_LOSERS = {
    "cityscapes": {"ego vehicle", "rectification border", "out of roi", "static", "polegroup"},
    "cityscapes-train": set(),  # polegroup's grey decodes to pole (5) or 255; 5 is lower and has that colour
    "ade20k": {"skyscraper"},  # (140, 140, 140) = road
    "coco": {"bicycle", "fog", "remote", "traffic light", "cloth", "broccoli", "oven", "apple", "dirt"},
    "celebamask": set(),
    "synthetic": set(),
}


def _mmseg_file(rel: str) -> Path:
    spec = importlib.util.find_spec("mmseg")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / rel


def _mmseg_function(name: str) -> list:
    """The literal a function of mmseg/utils/class_names.py returns (a second copy of mmseg's palettes)."""
    tree = ast.parse(_mmseg_file("utils/class_names.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name)
    ret = fn.body[-1]
    assert isinstance(ret, ast.Return) and ret.value is not None
    return list(ast.literal_eval(ret.value))


def _all_ids_map(palette, *, with_ignore: bool) -> np.ndarray:
    ids = list(palette.ids) + ([palette.ignore_index] if with_ignore else [])
    rng = np.random.default_rng(0)
    grid = np.array(ids * 3, dtype=np.int64)
    rng.shuffle(grid)
    return grid.reshape(3, len(ids))


def _save_rgb(path: Path, rgb: np.ndarray, **kw: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rgb).save(path, **kw)
    return path


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


# --- palettes ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", BUILTIN)
def test_round_trip_every_palette(name: str) -> None:
    p = builtin_palette(name)
    with_ignore = p.ignore_colour is not None
    ids = _all_ids_map(p, with_ignore=with_ignore)
    colours = ids_to_colour(ids, p, strict=True)
    for k in np.unique(ids):
        assert (colours[ids == k] == p.colour_of(int(k))).all()
    back = colour_to_ids(colours, p, ambiguous="lowest")
    assert back.dtype == np.uint8
    lost = {p.name_of(int(k)) for k in np.unique(ids[back != ids])}
    assert lost == SHARED_LOSERS[name]
    for k in np.unique(ids[back != ids]):  # each lost id comes back as the lowest id of its colour
        assert int(np.unique(back[ids == k])[0]) == min(p.shared_colours[p.colour_of(int(k))])
    if any(p.shared_colours):
        with pytest.raises(DataError, match="a colour map cannot tell them apart"):
            colour_to_ids(colours, p)
    else:
        assert (colour_to_ids(colours, p) == ids).all()


def test_palette_ids_are_the_dataset_ids() -> None:
    for name, dataset in (("cityscapes", "cityscapes"), ("ade20k", "ade20k"), ("coco", "coco"),
                          ("celebamask", "celebamask"), ("synthetic", "synthetic")):
        p, spec = builtin_palette(name), DATASETS.get(dataset)
        assert all(p.name_of(i) == spec.class_names[i] for i in p.ids), name
        assert p.ignore_index == spec.ignore_index
    assert builtin_palette("cityscapes").ids == tuple(range(34))  # id 34 ("unused") never occurs
    assert len(builtin_palette("coco").ids) == 171  # 11 thing ids of the 182 are never annotated


def test_cityscapes_colours_are_cityscapesscripts() -> None:
    from cityscapesscripts.helpers.labels import labels

    p, t = builtin_palette("cityscapes"), builtin_palette("cityscapes-train")
    assert p.colour_of(7) == (128, 64, 128) and p.name_of(7) == "road"
    for lab in labels:
        if lab.id >= 0:
            assert p.colour_of(lab.id) == tuple(lab.color), lab.name
        if 0 <= lab.trainId < 255:
            assert t.colour_of(lab.trainId) == tuple(lab.color), lab.name
    road = np.array([[[128, 64, 128], [0, 0, 142]]], np.uint8)  # car; license plate shares it and has no id
    assert colour_to_ids(road, p).tolist() == [[7, 26]]
    assert colour_to_ids(road, t).tolist() == [[0, 13]]
    parking = np.array([[[250, 170, 160], [0, 0, 0]]], np.uint8)  # trainId 255 classes decode to 255
    assert colour_to_ids(parking, t).tolist() == [[255, 255]]
    assert colour_to_ids(np.array([[[153, 153, 153]]], np.uint8), t, ambiguous="lowest").tolist() == [[5]]


def test_ade20k_ids_and_the_file_shift() -> None:
    from bench.datasets.ade20k import ADE20K_CLASSES

    p = builtin_palette("ade20k")
    mm_classes, mm_palette = _mmseg_function("ade_classes"), _mmseg_function("ade_palette")
    for name in ("wall", "person", "flag"):
        colour = mm_palette[mm_classes.index(name)]
        rgb = np.array([[colour, [0, 0, 0]]], np.uint8)
        i = ADE20K_CLASSES.index(name)
        assert colour_to_ids(rgb, p).tolist() == [[i, 255]]  # dataset ids; black = "other" = ignore
        assert colour_to_ids(rgb, p, values="file").tolist() == [[i + 1, 0]]  # ADE annotation PNG values
    assert ADE20K_CLASSES.index("person") == 12 and mm_palette[12] == [150, 5, 61]
    file_values = np.array([[0, 1, 13, 150]])
    assert ids_to_colour(file_values, p, values="file").tolist() == [[[0, 0, 0], [120, 120, 120], [150, 5, 61],
                                                                       mm_palette[149]]]
    with pytest.raises(DataError, match="not ade20k label-file values"):
        ids_to_colour(np.array([[151]]), p, values="file")


def test_ade20k_converted_annotation_loads_with_the_right_classes(tmp_path: Path) -> None:
    from bench.datasets.ade20k import ADE20K_CLASSES, ADE20KDataset

    p = builtin_palette("ade20k")
    ids = np.array([[255, 0, 12], [149, 2, 255]])  # 6 (road) would share its colour with skyscraper
    base = tmp_path / "ADEChallengeData2016"
    _save_rgb(base / "images" / "validation" / "ADE_val_00000001.jpg", np.zeros((2, 3, 3), np.uint8))
    _save_rgb(tmp_path / "colour" / "ADE_val_00000001.png", ids_to_colour(ids, p))
    result = CliRunner().invoke(cli, ["data", "labels-from-colour", "--palette", "ade20k", str(tmp_path / "colour"),
                                      str(base / "annotations" / "validation")])
    assert result.exit_code == 0, result.output
    ds = ADE20KDataset(tmp_path, "val", DATASETS.get("ade20k"))
    loaded = ds.load(ds.samples[0]).ids
    assert loaded.tolist() == ids.tolist()
    assert ADE20K_CLASSES[int(loaded[0, 2])] == "person"


def test_coco_ids_follow_mmseg_converter() -> None:
    tree = ast.parse(_mmseg_file(".mim/tools/dataset_converters/coco_stuff164k.py").read_text())
    node = next(n for n in tree.body if isinstance(n, ast.Assign) and getattr(n.targets[0], "id", "") == "clsID_to_trID")
    cls_to_tr = {k: v for k, v in ast.literal_eval(node.value).items() if k != 255}
    mm_palette = _mmseg_function("cocostuff_palette")
    p = builtin_palette("coco")
    assert set(p.ids) == set(cls_to_tr)
    for k, t in cls_to_tr.items():
        assert p.colour_of(k) == tuple(mm_palette[t])
    assert p.colour_of(11) is None and p.name_of(11) == "id 11"  # "street sign": never annotated


def test_synthetic_palette_is_the_report_colours() -> None:
    from reports.render import colorize as report_colorize

    ids = np.array([[0, 1, 2, 3], [4, 5, 6, 7], [255, 255, 0, 1]], dtype=np.uint8)
    assert (colorize(ids, "synthetic") == report_colorize(ids)).all()


# --- decoding refusals ---------------------------------------------------------------------------
def test_unknown_colours_are_refused_with_counts() -> None:
    p = builtin_palette("synthetic")
    rgb = np.empty((10, 10, 3), np.uint8)
    rgb[:] = p.colour_of(0)
    rgb[0, :] = (1, 2, 3)
    rgb[1, :4] = (10, 11, 12)
    rgb[2, 0] = (254, 254, 254)
    rgb[3, :5] = p.colour_of(7)
    with pytest.raises(DataError) as e:
        colour_to_ids(rgb, p, path="maps/x.png")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("maps/x.png: 15 pixels (15.0%) in 3 colours are not in the synthetic")
    assert "#010203 10 px, #0a0b0c 4 px, #fefefe 1 px" in msg and "lossless PNG" in msg
    stats: dict[str, int] = {}
    ids = colour_to_ids(rgb, p, ignore_unknown=255, stats=stats)
    assert stats == {"unknown_pixels": 15, "unknown_colours": 3, "ambiguous_pixels": 0}
    assert (ids[0] == 255).all() and (ids[3, :5] == 7).all() and int((ids == 0).sum()) == 80


def test_jpeg_colour_map_is_refused(tmp_path: Path) -> None:
    p = builtin_palette("celebamask")
    ids = np.repeat(np.repeat(np.arange(16).reshape(4, 4), 8, 0), 8, 1)
    path = _save_rgb(tmp_path / "face.jpg", ids_to_colour(ids, p), quality=90)
    from bench.datasets.palettes import read_colour_map

    with pytest.raises(DataError, match=r"face\.jpg: .* pixels .* are not in the celebamask palette.*lossless PNG"):
        colour_to_ids(read_colour_map(path), p, path=path)


def test_read_colour_map_modes(tmp_path: Path) -> None:
    from bench.datasets.palettes import read_colour_map

    p = builtin_palette("celebamask")
    ids = np.array([[0, 1, 2], [13, 17, 18]])
    Image.fromarray(ids_to_colour(ids, p)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8).save(tmp_path / "p.png")
    assert colour_to_ids(read_colour_map(tmp_path / "p.png"), p).tolist() == ids.tolist()
    Image.fromarray(ids.astype(np.uint8)).save(tmp_path / "l.png")
    with pytest.raises(DataError, match="mode L is already a single-channel map"):
        read_colour_map(tmp_path / "l.png")
    rgba = np.dstack([ids_to_colour(ids, p), np.full((2, 3), 255, np.uint8)])
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "a.png")
    with pytest.raises(DataError, match="1 translucent pixels"):
        read_colour_map(tmp_path / "a.png")


# --- user palette files --------------------------------------------------------------------------
def test_user_palette_files(tmp_path: Path) -> None:
    (tmp_path / "p.txt").write_text("# id r g b name\n0 0 0 0 background\n1 255 0 0 road  # red\n\n300 0 0 255 sky\n")
    (tmp_path / "p.json").write_text(json.dumps({"0": [0, 0, 0], "1": [255, 0, 0], "300": [0, 0, 255]}))
    (tmp_path / "l.json").write_text(json.dumps([[0, 0, 0], [255, 0, 0]]))
    text, js, lst = (load_palette(tmp_path / f) for f in ("p.txt", "p.json", "l.json"))
    assert text.ids == js.ids == (0, 1, 300) and lst.ids == (0, 1)
    assert text.name_of(300) == "sky" and js.name_of(300) == "id 300" and text.colour_of(1) == (255, 0, 0)
    ids = np.array([[0, 1], [300, 1]])
    back = colour_to_ids(ids_to_colour(ids, js), js)
    assert back.dtype == np.uint16 and back.tolist() == ids.tolist()


@pytest.mark.parametrize(("content", "suffix", "expected"), [
    ("0 0 0 0\n1 0 0 0\n", ".txt", r"p\.txt:2: colour \[0, 0, 0\] is already id 0"),
    ("0 0 0 0\n0 1 1 1\n", ".txt", r"p\.txt:2: id 0 is listed twice \(first at .*p\.txt:1\)"),
    ("0 0 0 256\n", ".txt", r"p\.txt:1: colour \[0, 0, 256\] is not three integers 0\.\.255"),
    ("0 0 0\n", ".txt", r"p\.txt:1: expected 'id r g b \[name\]'"),
    ("a 1 2 3\n", ".txt", r"p\.txt:1: expected integers"),
    ("70000 1 2 3\n", ".txt", r"id 70000 is outside 0\.\.65535"),
    ('{"0": [1, 2, 3],}', ".json", r"p\.json:1: invalid JSON"),
    ('{"x": [1, 2, 3]}', ".json", r"key 'x' is not an integer id"),
    ('{"0": [1, 2]}', ".json", r"p\.json: id 0: colour \[1, 2\] is not three integers"),
    ("# nothing\n", ".txt", r"the palette is empty"),
])  # fmt: skip
def test_malformed_palette_files_are_refused(tmp_path: Path, content: str, suffix: str, expected: str) -> None:
    path = tmp_path / f"p{suffix}"
    path.write_text(content)
    with pytest.raises(DataError, match=expected) as e:
        read_palette_file(path)
    assert "\n" not in str(e.value)


def test_unknown_palette_name() -> None:
    with pytest.raises(ConfigError, match="neither a built-in palette .*cityscapes.* nor a file"):
        load_palette("cityscape")


# --- CLI -----------------------------------------------------------------------------------------
def _colour_tree(root: Path) -> dict[str, np.ndarray]:
    """Two Cityscapes colour maps (one in a sub-folder) and their label ids."""
    p = builtin_palette("cityscapes")
    rng = np.random.default_rng(1)
    usable = [i for i in p.ids if not any(i in v for v in p.shared_colours.values())]
    out = {}
    for rel in ("aachen/a_color.png", "b_color.png"):
        ids = rng.choice(usable, size=(6, 9))
        _save_rgb(root / rel, ids_to_colour(ids, p))
        out[rel] = ids
    return out


def test_cli_converts_a_folder_and_back(tmp_path: Path) -> None:
    src, dst, back = tmp_path / "colour", tmp_path / "ids", tmp_path / "back"
    expected = _colour_tree(src)
    run = CliRunner().invoke
    result = run(cli, ["data", "labels-from-colour", "--palette", "cityscapes", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    assert "wrote 2 8-bit maps with the cityscapes palette" in result.output
    for rel, ids in expected.items():
        with Image.open(dst / Path(rel).with_suffix(".png")) as im:
            assert im.mode == "L" and np.asarray(im).tolist() == ids.tolist()
    assert (dst / ".sisbench-manifest.json").is_file()
    again = run(cli, ["data", "labels-from-colour", "--palette", "cityscapes", str(src), str(dst)])
    assert again.exit_code == 0, again.output  # a re-run replaces its own files
    result = run(cli, ["data", "labels-to-colour", "--palette", "cityscapes", str(dst), str(back)])
    assert result.exit_code == 0, result.output
    for rel in expected:
        assert (np.asarray(Image.open(back / rel)) == np.asarray(Image.open(src / rel))).all()


def test_cli_refuses_a_foreign_folder_and_keeps_its_files(tmp_path: Path) -> None:
    src, dst = tmp_path / "colour", tmp_path / "mine"
    _colour_tree(src)
    dst.mkdir()
    (dst / "notes.txt").write_text("my notes")
    (dst / "b_color.png").write_bytes(b"not sisbench's")
    args = ["data", "labels-from-colour", "--palette", "cityscapes", str(src), str(dst)]
    line = _one_line_error(CliRunner().invoke(cli, args))
    assert str(dst) in line and "not empty" in line and "--overwrite" in line
    assert sorted(p.name for p in dst.iterdir()) == ["b_color.png", "notes.txt"]
    result = CliRunner().invoke(cli, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (dst / "notes.txt").read_text() == "my notes"  # not an output: untouched
    assert np.asarray(Image.open(dst / "b_color.png")).ndim == 2  # an output name: replaced, as asked


def test_cli_one_line_per_bad_file_and_exit_1(tmp_path: Path) -> None:
    src, dst = tmp_path / "colour", tmp_path / "ids"
    _colour_tree(src)
    rgb = np.asarray(Image.open(src / "b_color.png")).copy()
    rgb[0, 0] = (1, 2, 3)
    _save_rgb(src / "c_color.png", rgb)
    (src / "d_color.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    result = CliRunner().invoke(cli, ["data", "labels-from-colour", "--palette", "cityscapes", str(src), str(dst)])
    assert _one_line_error(result) == "Error: 2 of 4 files not converted (one line each above)"
    assert any(ln.startswith(f"{src / 'c_color.png'}: 1 pixels") for ln in result.output.splitlines())
    assert any(ln.startswith(f"{src / 'd_color.png'}: cannot read") for ln in result.output.splitlines())
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*.png")) == ["aachen/a_color.png", "b_color.png"]
    result = CliRunner().invoke(cli, ["data", "labels-from-colour", "--palette", "cityscapes", "--ignore-unknown",
                                      "255", str(src / "c_color.png"), str(dst)])
    assert result.exit_code == 0, result.output
    assert "1 pixels of unknown colours in 1 files -> id 255" in result.output
    assert int(np.asarray(Image.open(dst / "c_color.png"))[0, 0]) == 255


def test_cli_ignore_colour_and_16_bit(tmp_path: Path) -> None:
    ids = np.array([[4, 255], [181, 20]], np.uint8)  # ids with a colour of their own (0 = person shares one)
    Image.fromarray(ids).save(tmp_path / "coco.png")
    run = CliRunner().invoke
    line = _one_line_error(run(cli, ["data", "labels-to-colour", "--palette", "coco", str(tmp_path / "coco.png"),
                                     str(tmp_path / "c1")]))
    assert "ids 255 (1 pixels) have no colour in the coco palette" in line and "--ignore-colour" in line
    line = _one_line_error(run(cli, ["data", "labels-to-colour", "--palette", "coco", "--ignore-colour", "0,0,0",
                                     str(tmp_path / "coco.png"), str(tmp_path / "c1")]))
    assert "already the colour of 30 (handbag)" in line
    result = run(cli, ["data", "labels-to-colour", "--palette", "coco", "--ignore-colour", "#ffffff",
                       str(tmp_path / "coco.png"), str(tmp_path / "c2")])
    assert result.exit_code == 0, result.output
    result = run(cli, ["data", "labels-from-colour", "--palette", "coco", "--ignore-unknown", "255",
                       str(tmp_path / "c2"), str(tmp_path / "c3")])
    assert result.exit_code == 0, result.output
    assert np.asarray(Image.open(tmp_path / "c3" / "coco.png")).tolist() == ids.tolist()

    (tmp_path / "big.txt").write_text("0 0 0 0\n1 10 20 30\n1000 200 100 0\n")
    rgb = np.array([[[0, 0, 0], [200, 100, 0]], [[10, 20, 30], [200, 100, 0]]], np.uint8)
    _save_rgb(tmp_path / "big" / "m.png", rgb)
    result = run(cli, ["data", "labels-from-colour", "--palette", str(tmp_path / "big.txt"), str(tmp_path / "big"),
                       str(tmp_path / "big_ids")])
    assert result.exit_code == 0 and "16-bit" in result.output, result.output
    with Image.open(tmp_path / "big_ids" / "m.png") as im:
        assert im.mode.startswith("I") and np.asarray(im).tolist() == [[0, 1000], [1, 1000]]
