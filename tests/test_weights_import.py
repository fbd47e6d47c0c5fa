"""`bench weights import` checks a file's content against the entry's key manifest when no sha256 is published.

The manifests (``bench/manifests/NAME.json``) are package data generated from the parity manifests of the
official networks (``tests/parity``), the mmseg configs' models, torchvision's VGG19 and torch-fidelity's
Inception, all built on the meta device (nothing is allocated or downloaded). Regenerate them with
``python -m tests.test_weights_import``; :func:`test_shipped_manifests_match_their_sources` fails until then.

Correct files are built from a manifest as zeros expanded from a single element (stride 0), so a file with
the 54M parameters of DRN-D-105 takes a few kilobytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
import zipfile
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner

import bench.weights_catalog as catalog
from bench.cli import cli
from bench.errors import BenchError, CheckpointError
from bench.weights import MANIFEST_DIR, WEIGHTS, fetch, import_file, load_manifest, locate

ROOT = Path(__file__).resolve().parents[1]
PARITY = ROOT / "tests" / "parity"
INERT = ["num_batches_tracked"]  # BatchNorm's load hook fills it in; no loader requires it


# --- generating the manifests ---------------------------------------------------------------------------
def _from_parity_net(file: str) -> tuple[dict[str, list[int]], str]:
    d = json.loads((PARITY / "manifests" / file).read_text())
    keys = {e["key"]: list(e["shape"]) for e in d["state_dict"]}
    return keys, f"{d['class']} state_dict ({d['source']['repo']} @ {d['source']['commit'][:7]}); tests/parity/manifests/{file}"


def _from_parity_segmenter(file: str, member: str) -> tuple[dict[str, list[int]], str]:
    d = json.loads((PARITY / "segmenters" / "manifests" / file).read_text())
    keys = {k: list(shape) for k, shape, _dtype in d["weight_files"][member]["keys"]}
    return keys, f"{member} of {d['repo']} @ {d['commit'][:7]}; tests/parity/segmenters/manifests/{file}"


def _from_module(build: Any, source: str) -> tuple[dict[str, list[int]], str]:
    with torch.device("meta"):
        net = build()
    return {k: list(v.shape) for k, v in net.state_dict().items()}, source


def expected_manifests() -> dict[str, dict[str, Any]]:
    """Every registry entry's manifest, computed from its source (see the module docstring)."""
    from segmenters.upernet import SYNCBN_PRIVATE_BUFFERS

    sources: dict[str, tuple[tuple[dict[str, list[int]], str], list[str]]] = {}
    for ds in ("coco", "ade20k", "cityscapes"):
        sources[f"spade-{ds}"] = (_from_parity_net(f"SPADE_{ds}_G.json"), INERT)
        sources[f"oasis-{ds}"] = (_from_parity_net(f"OASIS_{ds}_G.json"), INERT)  # best_EMA.pth: netEMA = netG's keys
    sources["pix2pixhd-cityscapes-1024p"] = (_from_parity_net("pix2pixHD_cityscapes-1024p_G.json"), INERT)
    sources["sean-celebamask"] = (_from_parity_net("SEAN_celebamaskhq_G.json"), INERT)
    csail = [*INERT, *SYNCBN_PRIVATE_BUFFERS]  # segmenters.papers loads the CSAIL files without them
    sources["upernet101-ade20k-encoder"] = (_from_parity_segmenter("ade20k_resnet101_upernet.json", "encoder_epoch_50.pth"), csail)
    sources["upernet101-ade20k-decoder"] = (_from_parity_segmenter("ade20k_resnet101_upernet.json", "decoder_epoch_50.pth"), csail)
    sources["drn105-cityscapes"] = (_from_parity_segmenter("cityscapes_drn_d_105.json", "drn-d-105_ms_cityscapes.pth"), INERT)
    sources["deeplabv2-cocostuff"] = (
        _from_parity_segmenter("cocostuff164k_deeplabv2_resnet101_msc.json", "deeplabv2_resnet101_msc-cocostuff164k-100000.pth"),
        INERT,
    )
    sources["unet-celebamask"] = (_from_parity_segmenter("celebamaskhq_unet.json", "model.pth"), INERT)

    from segmenters.mmseg_model import build_segmentor
    from segmenters.mmseg_track import TRACK_SEGMENTERS

    for seg in TRACK_SEGMENTERS.values():
        build = lambda seg=seg: build_segmentor(seg.config, class_names=seg.class_names, device="meta")  # noqa: E731
        # exact: segmenters.mmseg_model.load_checkpoint loads strictly, with no optional key
        sources[seg.weights] = (_from_module(build, f"mmseg {seg.config} model (mmseg's packaged config)"), [])

    import torchvision

    from bench.metrics.inception import empty_feature_extractor

    sources["vgg19"] = (_from_module(lambda: torchvision.models.vgg19(weights=None), "torchvision.models.vgg19()"), [])
    sources["vgg16"] = (_from_module(lambda: torchvision.models.vgg16(weights=None), "torchvision.models.vgg16()"), [])
    sources["inception-fid"] = (
        _from_module(empty_feature_extractor, "torch_fidelity FeatureExtractorInceptionV3('inception-v3-compat')"), INERT
    )
    return {
        name: {"name": name, "source": source, "optional_leaves": optional, "keys": keys}
        for name, ((keys, source), optional) in sorted(sources.items())
    }


def dumps(manifest: dict[str, Any]) -> str:
    """JSON with one key per line (diffable), compact shapes."""
    head = ",\n".join(f" {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest.items() if k != "keys")
    keys = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v)}" for k, v in manifest["keys"].items())
    return "{\n" + head + ',\n "keys": {\n' + keys + "\n }\n}\n"


def write_manifests() -> None:
    from bench.cache import atomic_write_text

    for name, manifest in expected_manifests().items():
        atomic_write_text(MANIFEST_DIR / f"{name}.json", dumps(manifest)).chmod(0o644)  # package data: world-readable


# --- helpers ------------------------------------------------------------------------------------------
def zeros_state(name: str, **changes: list[int]) -> OrderedDict[str, torch.Tensor]:
    """A state_dict fitting ``name``'s manifest: zeros expanded from one element (a few bytes per tensor)."""
    keys = load_manifest(WEIGHTS.get(name).manifest)["keys"]
    return OrderedDict((k, torch.zeros(()).expand(changes.get(k, shape))) for k, shape in keys.items())


def save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


ALL = sorted(n for n in WEIGHTS.names() if WEIGHTS.get(n).manifest)


# --- the manifests ------------------------------------------------------------------------------------------
def test_every_registered_file_has_a_manifest() -> None:
    catalog_names = {*catalog.OFFICIAL_CHECKPOINTS.values(), *(n for d in catalog.SEGMENTER_WEIGHTS.values() for n in d.values())}
    assert set(ALL) == catalog_names | {"vgg19", "vgg16", "inception-fid"}
    for name in ALL:
        m = load_manifest(WEIGHTS.get(name).manifest)
        assert m["name"] == name and len(m["keys"]) >= 30, name


def test_shipped_manifests_match_their_sources() -> None:
    expected = expected_manifests()
    assert sorted(p.stem for p in MANIFEST_DIR.glob("*.json")) == sorted(expected)
    for name, manifest in expected.items():
        assert (MANIFEST_DIR / f"{name}.json").read_text() == dumps(manifest), f"{name}: run python -m tests.test_weights_import"
    # spot checks against published numbers: SPADE-COCO G has 234 entries and a 184-channel first conv,
    # torchvision's VGG19 38, CSAIL's encoder 954 (8 per SyncBN)
    assert len(expected["spade-coco"]["keys"]) == 234 and expected["spade-coco"]["keys"]["fc.weight"] == [1024, 184, 3, 3]
    assert len(expected["vgg19"]["keys"]) == 38 and expected["vgg19"]["keys"]["classifier.6.weight"] == [1000, 4096]
    assert len(expected["upernet101-ade20k-encoder"]["keys"]) == 954


def test_the_segmenter_networks_fit_their_manifests() -> None:
    """What segmenters.papers loads strictly is what an import accepts (the methods' side is in the parity tests)."""
    from bench.weights import manifest_mismatch
    from segmenters.papers import DeepLabV2COCOStuff, DRN105Cityscapes, UNetCelebAMask, UPerNet101ADE20K

    with torch.device("meta"):
        upernet = UPerNet101ADE20K.build_network()
        nets = {"upernet101-ade20k-encoder": upernet.encoder, "upernet101-ade20k-decoder": upernet.decoder,
                "drn105-cityscapes": DRN105Cityscapes.build_network(),
                "deeplabv2-cocostuff": DeepLabV2COCOStuff.build_network(),
                "unet-celebamask": UNetCelebAMask.build_network()}
    for name, net in nets.items():
        assert manifest_mismatch(net.state_dict(), load_manifest(name)) is None, name
    assert manifest_mismatch(nets["drn105-cityscapes"].state_dict(), load_manifest("deeplabv2-cocostuff")) is not None


# --- import ---------------------------------------------------------------------------------------------
def test_random_bytes_are_refused(bench_cache: Path, tmp_path: Path) -> None:
    junk = tmp_path / "latest_net_G.pth"
    junk.write_bytes(bytes(range(256)) * 64)
    for name in ("spade-coco", "drn105-cityscapes", "mmseg-upernet-r101-ade20k"):
        with pytest.raises(CheckpointError, match=rf"not a readable PyTorch checkpoint .* cannot be {name}'s weights") as e:
            import_file(name, junk)
        assert "\n" not in str(e.value) and f"bench weights import {name} PATH" in str(e.value)
        assert locate(name) is None
    assert not (bench_cache / "weights").exists() or not any((bench_cache / "weights").iterdir())
    result = CliRunner().invoke(cli, ["weights", "import", "spade-coco", str(junk)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert [ln for ln in result.output.splitlines() if ln.startswith("Error: ")][0].count("\n") == 0


def test_wrong_keys_are_refused_naming_the_first(bench_cache: Path, tmp_path: Path) -> None:
    f = save({"conv.weight": torch.zeros(3, 3)}, tmp_path / "G.pth")
    # 234 entries, of which the 18 num_batches_tracked may be absent
    with pytest.raises(CheckpointError, match=r"does not hold spade-coco's weights \(216 missing keys \(first fc\.weight\), "
                                              r"1 unexpected keys \(first conv\.weight\)\)"):
        import_file("spade-coco", f)
    sd = zeros_state("spade-coco")
    del sd["head_0.conv_0.weight_u"]
    sd["head_0.conv_0.weight_w"] = torch.zeros(1)
    with pytest.raises(CheckpointError, match=r"1 missing keys \(first head_0\.conv_0\.weight_u\), 1 unexpected keys "
                                              r"\(first head_0\.conv_0\.weight_w\)"):
        import_file("spade-coco", save(sd, tmp_path / "G2.pth"))
    assert locate("spade-coco") is None


def test_a_wrong_shape_is_refused(bench_cache: Path, tmp_path: Path) -> None:
    # an ADE20K generator (151 label channels + edge) is not the COCO one (184)
    f = save(zeros_state("spade-coco", **{"fc.weight": [1024, 152, 3, 3]}), tmp_path / "G.pth")
    with pytest.raises(CheckpointError, match=r"1 shape mismatches \(first fc\.weight: file \[1024, 152, 3, 3\], "
                                              r"expected \[1024, 184, 3, 3\]\)"):
        import_file("spade-coco", f)
    assert locate("spade-coco") is None


@pytest.mark.parametrize("name", ALL)
def test_a_file_with_the_manifest_keys_is_accepted(name: str, bench_cache: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    f = save(zeros_state(name), tmp_path / "w.pth")
    if WEIGHTS.get(name).sha256_prefix:  # vgg19: the real file's digest starts with its published prefix
        digest = hashlib.sha256(f.read_bytes()).hexdigest()
        monkeypatch.setitem(WEIGHTS._entries, name, replace(WEIGHTS.get(name), sha256_prefix=digest[:8]))
    path = import_file(name, f)
    assert path == bench_cache / "weights" / WEIGHTS.get(name).filename and path.read_bytes() == f.read_bytes()


def test_the_loaders_unwrapping_is_applied(bench_cache: Path, tmp_path: Path) -> None:
    """Containers and layouts the loaders accept are accepted here too, and only those."""
    sd = zeros_state("mmseg-upernet-r101-ade20k")
    import_file("mmseg-upernet-r101-ade20k", save({"state_dict": sd, "meta": {"CLASSES": ["wall"]}}, tmp_path / "mm.pth"))
    sd = zeros_state("drn105-cityscapes")
    import_file("drn105-cityscapes", save(OrderedDict(("module." + k, v) for k, v in sd.items()), tmp_path / "dp.pth"))
    # a 2017 file without num_batches_tracked; CSAIL's files without SyncBN's private buffers
    sd = OrderedDict((k, v) for k, v in zeros_state("drn105-cityscapes").items() if not k.endswith("num_batches_tracked"))
    import_file("drn105-cityscapes", save(sd, tmp_path / "old.pth"))
    sd = OrderedDict((k, v) for k, v in zeros_state("upernet101-ade20k-encoder").items() if "._" not in k)
    assert len(sd) == 636  # num_keys_without_syncbn_private_buffers in the parity manifest
    import_file("upernet101-ade20k-encoder", save(sd, tmp_path / "enc.pth"))
    # pre-1.0 spectral norm: weight_orig, weight_u and the derived weight, no weight_v
    sd = zeros_state("spade-coco")
    legacy = OrderedDict()
    for k, v in sd.items():
        if k.endswith(".weight_v"):
            legacy[k[: -len("_v")]] = sd[k[: -len("_v")] + "_orig"]
        else:
            legacy[k] = v
    import_file("spade-coco", save(legacy, tmp_path / "legacy.pth"))
    # but the mmseg loader is exact: no key may be left out
    sd = zeros_state("mmseg-upernet-r101-ade20k")
    first_bn = next(k for k in sd if k.endswith("num_batches_tracked"))
    del sd[first_bn]
    with pytest.raises(CheckpointError, match=rf"1 missing keys \(first {first_bn}\)"):
        import_file("mmseg-upernet-r101-ade20k", save(sd, tmp_path / "mm2.pth"))


def test_non_finite_values_are_refused(bench_cache: Path, tmp_path: Path) -> None:
    sd = zeros_state("unet-celebamask")
    key = next(k for k in sd if k.endswith("running_var"))
    sd[key] = torch.full(tuple(sd[key].shape), float("inf"))
    with pytest.raises(CheckpointError, match=rf"{key} is inf; refused to load a non-finite state: the file is corrupt"):
        import_file("unet-celebamask", save(sd, tmp_path / "model.pth"))
    assert locate("unet-celebamask") is None


def test_archives_are_refused_with_what_to_unpack(bench_cache: Path, tmp_path: Path) -> None:
    member = io.BytesIO()
    torch.save(zeros_state("spade-ade20k"), member)
    tgz = tmp_path / "checkpoints.tar.gz"
    with tarfile.open(tgz, "w:gz") as t:
        info = tarfile.TarInfo("checkpoints/ade20k_pretrained/latest_net_G.pth")
        info.size = len(member.getvalue())
        t.addfile(info, io.BytesIO(member.getvalue()))
    with pytest.raises(CheckpointError, match=r"is a tar\.gz archive, not the weights file itself: unpack it and import "
                                              r"the file it holds \(SPADE generator, member ade20k_pretrained/latest_net_G\.pth"):
        import_file("spade-ade20k", tgz)
    zipped = tmp_path / "oasis_ade20k_pretrained.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("oasis_ade20k_pretrained/models/best_EMA.pth", member.getvalue())
    with pytest.raises(CheckpointError, match=r"is a zip archive"):
        import_file("oasis-ade20k", zipped)
    with pytest.raises(CheckpointError, match=r"holds no state_dict of tensors"):
        import_file("oasis-ade20k", save({"epoch": 3}, tmp_path / "x.pth"))


def test_an_html_page_is_refused_before_anything_is_unpickled(bench_cache: Path, tmp_path: Path) -> None:
    page = tmp_path / "uc"
    page.write_bytes(b"<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>")
    with pytest.raises(BenchError, match="is an HTML page, not the sean-CelebA-HQ_pretrained-latest_net_G.pth weights"):
        import_file("sean-celebamask", page)


def test_a_published_sha256_is_enough(bench_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file whose full sha256 is published is identified by it (tests import thin variants that way)."""
    f = save({"conv.weight": torch.zeros(2)}, tmp_path / "thin.pth")
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    monkeypatch.setitem(WEIGHTS._entries, "drn105-cityscapes", replace(WEIGHTS.get("drn105-cityscapes"), sha256=digest))
    assert import_file("drn105-cityscapes", f).is_file()
    # a published prefix is not (vgg19 publishes 8 hex digits): the content is checked too
    monkeypatch.setitem(WEIGHTS._entries, "vgg19", replace(WEIGHTS.get("vgg19"), sha256_prefix=digest[:8]))
    with pytest.raises(CheckpointError, match=r"does not hold vgg19's weights \(38 missing keys"):
        import_file("vgg19", f)


def test_fetch_refuses_a_wrong_download(bench_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wrong = save({"conv.weight": torch.zeros(2)}, tmp_path / "served.pth")
    good = save(zeros_state("deeplabv2-cocostuff"), tmp_path / "good.pth")
    monkeypatch.setitem(WEIGHTS._entries, "deeplabv2-cocostuff",
                        replace(WEIGHTS.get("deeplabv2-cocostuff"), urls=(wrong.as_uri(),)))
    with pytest.raises(CheckpointError, match="does not hold deeplabv2-cocostuff's weights"):
        fetch("deeplabv2-cocostuff")
    assert locate("deeplabv2-cocostuff") is None
    monkeypatch.setitem(WEIGHTS._entries, "deeplabv2-cocostuff",
                        replace(WEIGHTS.get("deeplabv2-cocostuff"), urls=(good.as_uri(),)))
    assert fetch("deeplabv2-cocostuff").read_bytes() == good.read_bytes()


if __name__ == "__main__":
    write_manifests()
    print(f"wrote {len(list(MANIFEST_DIR.glob('*.json')))} manifests to {MANIFEST_DIR}")
