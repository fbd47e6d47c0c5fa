"""Multi-modal diversity, the OASIS protocol: mean pairwise LPIPS and MS-SSIM over K samples per label map.

OASIS (Sushko, Schönfeld et al., ICLR 2021, Sec. 4 "multi-modal synthesis") generates 20 images per label
map, scores every pair of them with MS-SSIM (Wang et al. 2003) and LPIPS (Zhang et al. 2018), takes the
mean over the pairs and averages over the label maps. boschresearch/OASIS ships no script for this; the
authors named their tools in boschresearch/OASIS#16 (2021-12 and 2022-01): ``lpips.LPIPS(net='vgg')``
(version 0.1, the official PerceptualSimilarity code, called on images in [-1, 1]) and
``pytorch_msssim.ms_ssim(image_1, image_2, data_range=1, size_average=False)`` (one value per pair, images
in [0, 1]); their environment (``oasis.yml``) pins ``pytorch-msssim``. The pairing and the averaging below
follow the paper's text (no code of theirs states it). The protocol, exactly:

* **samples**: ``K >= 2`` images per label map, ``<stem>_s<k>.png`` for ``k < K`` (``bench generate
  --samples K``; sample ``k`` of image ``i`` draws its noise from ``image_seed(seed + 7919 k, i)``).
* **pairs**: the ``K (K - 1) / 2`` unordered pairs ``(s_a, s_b), a < b``; both scores are symmetric.
* **averaging**: per label map the mean over its pairs; the reported value is the unweighted mean of those
  per-map means over the label maps (equal to the mean over all pairs, as every map has as many).
* **LPIPS**: the ``lpips`` package, ``LPIPS(net="vgg", version="0.1")``: its linear layers ship inside the
  package (``lpips/weights/v0.1/vgg.pth``); the VGG16 ImageNet trunk, which it would download from
  torchvision, comes from the weights registry (``vgg16``, ``bench weights import vgg16 PATH``). Inputs are
  the decoded uint8 RGB images mapped to [-1, 1]; full resolution, no resizing. Higher = more diverse.
  For speed each sample's normalised VGG features are computed once and all pairs are scored from them
  (``K`` trunk passes per map instead of ``K (K - 1)``), the same arithmetic as ``LPIPS.forward`` (tested).
* **MS-SSIM**: ``pytorch_msssim.ms_ssim`` on [0, 1] images, ``data_range=1``, 11x11 Gaussian window with
  sigma 1.5, the five standard scale weights ``(0.0448, 0.2856, 0.3001, 0.2363, 0.1333)``, per channel,
  averaged over RGB. Lower = more diverse.

**Small images.** Five scales need a short side of at least 161 px (the library asserts
``min(H, W) > 10 * 2**4``). Below that, :func:`msssim_levels` takes the most scales ``L`` for which the
coarsest one still exceeds the window (``min(H, W) > 10 * 2**(L - 1)``: 3 scales at 64 px, 4 at 128 px,
1 = plain SSIM at 11..20 px) and the first ``L`` standard weights renormalised to sum to 1
(:func:`msssim_weights`). The library refuses these sizes, so :func:`ms_ssim` then runs the same per-scale
loop on the library's own ``_ssim`` (tested equal to ``pytorch_msssim.ms_ssim`` with those weights on
larger images). The scales used are recorded in the protocol; numbers at different ``L`` do not compare.
"""

from __future__ import annotations

import logging
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.errors import CheckpointError, ConfigError, DataError, MetricError

log = logging.getLogger(__name__)

#: the weights registry entry of LPIPS's VGG16 trunk (bench/weights_catalog.py)
BACKBONE = "vgg16"
LPIPS_NET = "vgg"
LPIPS_VERSION = "0.1"
#: MS-SSIM scale weights of Wang et al. (2003), pytorch-msssim's default
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MSSSIM_WIN = 11
MSSSIM_SIGMA = 1.5
#: conv layers of torchvision's ``vgg16().features`` in LPIPS's five slices (lpips/pretrained_networks.py):
#: slice k holds features[a:b] under their original indices, so ``net.slice2.5.weight`` is ``features.5.weight``
LPIPS_SLICES = ((1, 0, 4), (2, 4, 9), (3, 9, 16), (4, 16, 23), (5, 23, 30))
#: indices of the 13 conv layers in ``vgg16().features``
VGG16_CONVS = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
AVERAGING = ("mean over the K(K-1)/2 unordered pairs of each label map's K samples, then the unweighted mean "
             "over label maps (OASIS, ICLR 2021)")


def sample_name(stem: str, k: int) -> str:
    """The file stem of sample ``k`` of label map ``stem``: ``<stem>_s<k>`` (as :func:`bench.generate.generate_split`)."""
    return f"{stem}_s{k}"


def check_request(k: int, *, method: str | None = None, stochastic: bool | None = None) -> None:
    """Refuse a diversity request that cannot give a meaningful score, before any generation.

    Args:
        k: samples per label map (``--diversity K``).
        method: the method's name, for the message; with ``stochastic``.
        stochastic: whether the method's configuration draws noise (``Method.stochastic``); ``None`` for
            images scored from a folder, where the samples decide.

    Raises:
        ConfigError: ``k < 2``, or a method that draws no noise (its K samples would be identical: LPIPS 0 and
            MS-SSIM 1 by construction), with the settings that make the methods sample.
    """
    if k < 2:
        raise ConfigError(f"--diversity {k}: needs K >= 2 samples per label map to form pairs (OASIS used 20)")
    if stochastic is False:
        raise ConfigError(
            f"--diversity: {method} with this configuration draws no noise, so its {k} samples per label map would "
            "be identical (LPIPS 0, MS-SSIM 1 trivially); use a configuration that samples: spade --set "
            "use_vae=true, oasis --set no_3dnoise=false, sean --set noise=true"
        )


def group_samples(found: Mapping[str, Path], ids: Sequence[str], k: int, where: str | Path) -> dict[str, list[Path]]:
    """The K sample files of every label map, from a ``{file stem: path}`` listing of a folder.

    Args:
        found: every image file of the folder by stem (e.g. :func:`bench.external.find_images`).
        ids: the label map ids (split order).
        k: samples per label map; ``<id>_s0`` .. ``<id>_s{k-1}`` must all be there (more are ignored).
        where: the folder, for the message.

    Returns:
        ``{id: [path of sample 0, ..., path of sample k-1]}`` in ``ids`` order.

    Raises:
        DataError: some samples are missing: one line with the number of label maps concerned, the first
            three missing names and the command that writes them.
    """
    missing = [sample_name(i, j) for i in ids for j in range(k) if sample_name(i, j) not in found]
    if missing:
        maps = len({m.rsplit("_s", 1)[0] for m in missing})
        raise DataError(f"{where}: {maps} of {len(ids)} label maps lack some of their {k} samples, e.g. "
                        f"{', '.join(missing[:3])} (--diversity {k} reads <id>_s0 .. <id>_s{k - 1}, as "
                        f"`bench generate --samples {k}` writes them)")
    return {i: [found[sample_name(i, j)] for j in range(k)] for i in ids}


def check_sample_sizes(samples: Mapping[str, Sequence[Path]], size: tuple[int, int]) -> None:
    """Every sample file is ``size`` = ``(H, W)`` (read from the file headers, nothing decoded).

    Raises:
        DataError: an unreadable file or one of another size, named, in one line.
    """
    from PIL import Image

    for files in samples.values():
        for p in files:
            try:
                with Image.open(p) as im:
                    w, h = im.size
            except Exception as e:  # noqa: BLE001 - PIL raises many types on corrupt files
                reason = (str(e).splitlines() or [type(e).__name__])[0][:120]
                raise DataError(f"{p}: unreadable image ({reason}); re-export it") from None
            if (h, w) != tuple(size):
                raise DataError(f"{p}: {w}x{h} (WxH), but sample 0 of the label maps is {size[1]}x{size[0]}; "
                                "all samples must have one size")


# --- MS-SSIM ----------------------------------------------------------------------------------------
def msssim_levels(height: int, width: int, win_size: int = MSSSIM_WIN) -> int:
    """The MS-SSIM scales an ``height x width`` image allows, at most 5.

    ``L`` scales downsample ``L - 1`` times by 2; the coarsest must still exceed the window:
    ``min(H, W) > (win_size - 1) * 2**(L - 1)`` (pytorch-msssim's own condition for ``L = 5``).

    Raises:
        MetricError: the short side is at most ``win_size - 1`` (10 px): not even one SSIM window fits.
    """
    side = min(height, width)
    for levels in range(len(MSSSIM_WEIGHTS), 0, -1):
        if side > (win_size - 1) * 2 ** (levels - 1):
            return levels
    raise MetricError(f"MS-SSIM needs images larger than {win_size - 1} px on the short side, got {width}x{height}")


def msssim_weights(levels: int) -> tuple[float, ...]:
    """Scale weights for ``levels`` scales: the standard five for 5, else the first ``levels`` renormalised to 1.

    Raises:
        MetricError: ``levels`` outside 1..5.
    """
    if not 1 <= levels <= len(MSSSIM_WEIGHTS):
        raise MetricError(f"MS-SSIM scales must be 1..{len(MSSSIM_WEIGHTS)}, got {levels}")
    if levels == len(MSSSIM_WEIGHTS):
        return MSSSIM_WEIGHTS
    head = MSSSIM_WEIGHTS[:levels]
    return tuple(w / sum(head) for w in head)


def ms_ssim(x: torch.Tensor, y: torch.Tensor, *, levels: int | None = None) -> torch.Tensor:
    """MS-SSIM of image pairs, per pair: pytorch-msssim with ``data_range=1``, or fewer scales on small images.

    Args:
        x, y: float ``[N, 3, H, W]`` in [0, 1], the pairs ``(x[n], y[n])``.
        levels: scales (default :func:`msssim_levels` of ``H, W``); 5 calls ``pytorch_msssim.ms_ssim`` itself,
            fewer runs its per-scale loop with :func:`msssim_weights` (see the module docstring).

    Returns:
        float ``[N]``, in [0, 1] (the library clamps negative contrast terms at 0); 1 for identical images.

    Raises:
        MetricError: shapes differ, or the images are too small for ``levels`` scales.
    """
    import pytorch_msssim
    from pytorch_msssim.ssim import _fspecial_gauss_1d, _ssim

    if x.shape != y.shape or x.dim() != 4:
        raise MetricError(f"MS-SSIM needs two [N, C, H, W] batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    allowed = msssim_levels(x.shape[-2], x.shape[-1])
    levels = allowed if levels is None else levels
    if levels > allowed:
        raise MetricError(f"MS-SSIM at {levels} scales needs a short side > {(MSSSIM_WIN - 1) * 2 ** (levels - 1)} px, "
                          f"got {x.shape[-1]}x{x.shape[-2]}")
    weights = msssim_weights(levels)
    if levels == len(MSSSIM_WEIGHTS):
        return pytorch_msssim.ms_ssim(x, y, data_range=1.0, size_average=False, win_size=MSSSIM_WIN,
                                      win_sigma=MSSSIM_SIGMA, weights=list(weights))
    # pytorch_msssim.ms_ssim's loop without its fixed 5-scale size assertion (pytorch-msssim 1.0, ssim.py)
    win = _fspecial_gauss_1d(MSSSIM_WIN, MSSSIM_SIGMA).repeat([x.shape[1], 1, 1, 1])
    terms = []
    for i in range(levels):
        ssim_c, cs = _ssim(x, y, data_range=1.0, win=win, size_average=False)
        if i < levels - 1:
            terms.append(torch.relu(cs))
            pad = [s % 2 for s in x.shape[2:]]
            x = torch.nn.functional.avg_pool2d(x, kernel_size=2, padding=pad)
            y = torch.nn.functional.avg_pool2d(y, kernel_size=2, padding=pad)
    terms.append(torch.relu(ssim_c))
    stacked = torch.stack(terms, dim=0)  # [levels, N, C]
    return torch.prod(stacked ** x.new_tensor(weights).view(-1, 1, 1), dim=0).mean(1)


# --- LPIPS --------------------------------------------------------------------------------------------
def backbone_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The torchvision VGG16 file's conv weights under the keys of ``lpips.pn.vgg16`` (``slice{k}.{i}.*``).

    Args:
        path: a ``vgg16-397923af.pth``-style state_dict (``features.{i}.weight|bias`` of the 13 conv layers;
            the classifier is not used).

    Raises:
        CheckpointError: unreadable, or a conv layer LPIPS uses is missing (one line naming the file and key).
    """
    from bench.checkpoint_io import read_checkpoint
    from bench.weights import unwrap_state_dict

    sd = unwrap_state_dict(read_checkpoint(path))
    if sd is None:
        raise CheckpointError(f"{path}: holds no state_dict of tensors, so it is not torchvision's VGG16")
    out: dict[str, torch.Tensor] = {}
    for k, a, b in LPIPS_SLICES:
        for i in range(a, b):
            for leaf in ("weight", "bias"):
                src = f"features.{i}.{leaf}"
                if src in sd:
                    out[f"slice{k}.{i}.{leaf}"] = sd[src]
                elif i in VGG16_CONVS:  # ReLU and pooling layers have no keys
                    raise CheckpointError(f"{path}: no {src}, so it is not torchvision's VGG16; import the real file "
                                          f"with `bench weights import {BACKBONE} PATH`")
    return out


def load_lpips(backbone: str | Path | None = None, *, device: str | torch.device = "cpu") -> Any:
    """``lpips.LPIPS(net="vgg", version="0.1")`` in eval mode, its VGG16 trunk loaded from the weights registry.

    The network is built on the meta device (no download, and none of torchvision's 138M-parameter VGG16
    initialisation, ~3 s on CPU), then every tensor is loaded strictly: the scaling layer's constants, the
    package's calibrated linear layers (:func:`lpips_linear_file`, the file ``LPIPS(pretrained=True)`` reads)
    and the trunk from ``backbone``.

    Args:
        backbone: the VGG16 file; default: the registry's ``vgg16`` entry.
        device: where the network runs.

    Raises:
        WeightsNotFoundError: no ``vgg16`` file in the cache: one line naming the file, where to put it and its URL.
        CheckpointError: the file does not hold VGG16's conv layers.
    """
    import lpips

    from bench.weights import resolve

    path = resolve(BACKBONE, backbone)
    state = {f"net.{k}": v for k, v in backbone_state(path).items()}
    state.update({f"scaling_layer.{k}": v for k, v in lpips.ScalingLayer().state_dict().items()})
    lin = torch.load(lpips_linear_file(), map_location="cpu", weights_only=True)  # lin{l}.model.1.weight
    state.update({**lin, **{f"lins.{k[3:]}": v for k, v in lin.items()}})  # LPIPS.lins aliases lin0..lin4
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchvision's deprecation of vgg16(pretrained=False), lpips 0.1.4
        net = lpips.LPIPS(net=LPIPS_NET, version=LPIPS_VERSION, pretrained=False, pnet_rand=True, verbose=False)
    net = net.to_empty(device="cpu")
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as e:
        lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
        raise CheckpointError(f"{path}: does not fit LPIPS-VGG ({lines[-1][:160]}); import torchvision's VGG16 "
                              f"with `bench weights import {BACKBONE} PATH`") from None
    return net.eval().to(device)


def lpips_linear_file() -> Path:
    """The linear layers ``lpips`` ships for VGG, v0.1 (``lpips/weights/v0.1/vgg.pth``)."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{LPIPS_VERSION}" / f"{LPIPS_NET}.pth"


def lpips_features(net: Any, images: torch.Tensor) -> list[torch.Tensor]:
    """LPIPS's unit-normalised VGG features of ``images`` (float ``[K, 3, H, W]`` in [-1, 1]), one per slice.

    The arithmetic of ``LPIPS.forward`` up to the pairwise difference: scaling layer, trunk, ``normalize_tensor``.
    """
    import lpips

    with torch.no_grad():
        return [lpips.normalize_tensor(f) for f in net.net(net.scaling_layer(images))]


def lpips_pairs(net: Any, feats: Sequence[torch.Tensor]) -> torch.Tensor:
    """LPIPS of every unordered pair ``(a, b), a < b`` of the K images whose :func:`lpips_features` are ``feats``.

    Returns:
        float ``[K (K - 1) / 2]`` in ``itertools.combinations(range(K), 2)`` order, >= 0; 0 for identical images.
    """
    import lpips

    k = feats[0].shape[0]
    out = []
    with torch.no_grad():
        for a in range(k - 1):
            val: Any = 0
            for layer, f in enumerate(feats):  # LPIPS.forward: spatial mean of lin_l((f_a - f_b)^2), summed over l
                val = val + lpips.spatial_average(net.lins[layer]((f[a:a + 1] - f[a + 1:]) ** 2), keepdim=True)
            out.append(val.flatten())
    return torch.cat(out)


def msssim_pairs(images: torch.Tensor, *, levels: int | None = None) -> torch.Tensor:
    """MS-SSIM of every unordered pair of ``images`` (float ``[K, 3, H, W]`` in [0, 1]); float ``[K (K-1) / 2]``,
    in ``itertools.combinations`` order."""
    k = images.shape[0]
    with torch.no_grad():
        return torch.cat([ms_ssim(images[a:a + 1].expand(k - 1 - a, -1, -1, -1), images[a + 1:], levels=levels)
                          for a in range(k - 1)])


# --- scoring ------------------------------------------------------------------------------------------
def _load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except Exception as e:  # noqa: BLE001 - PIL raises many types on corrupt files
        reason = (str(e).splitlines() or [type(e).__name__])[0][:120]
        raise DataError(f"{path}: unreadable image ({reason}); re-export it") from None


@dataclass(frozen=True)
class DiversityResult:
    """Per-label-map diversity of K samples and how it was measured.

    Attributes:
        k: samples per label map.
        ids: label map ids, in order.
        lpips: float64 ``[n_maps]``, each map's mean pairwise LPIPS (>= 0, higher = more diverse).
        ms_ssim: float64 ``[n_maps]``, each map's mean pairwise MS-SSIM (in [0, 1], lower = more diverse).
        size: ``(H, W)`` of the samples.
        levels: MS-SSIM scales used (5 from 161 px on the short side; see the module docstring).
        identity: the LPIPS versions and weight digests (:func:`lpips_identity`).
        seeds: how the samples were drawn, when sisbench generated them (:func:`score_generated`).
        seconds: wall time of the scoring.
    """

    k: int
    ids: list[str]
    lpips: np.ndarray
    ms_ssim: np.ndarray
    size: tuple[int, int]
    levels: int
    identity: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    seeds: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics(self) -> dict[str, float]:
        """``{"lpips": mean over maps, "ms_ssim": mean over maps}``."""
        return {"lpips": float(self.lpips.mean()), "ms_ssim": float(self.ms_ssim.mean())}

    def protocol(self) -> dict[str, Any]:
        """What the record's ``protocol["diversity"]`` says: K, pairs, averaging, both metrics' settings."""
        from importlib.metadata import version

        return {
            "k": self.k, "pairs_per_label_map": self.k * (self.k - 1) // 2, "n_label_maps": len(self.ids),
            "averaging": AVERAGING, "size": list(self.size), **({"samples": self.seeds} if self.seeds else {}),
            "lpips": {**self.identity, "input": "uint8 RGB -> [-1, 1], full resolution"},
            "ms_ssim": {"package": f"pytorch-msssim {version('pytorch-msssim')}",
                        "data_range": 1, "win_size": MSSSIM_WIN, "win_sigma": MSSSIM_SIGMA,
                        "levels": self.levels, "weights": list(msssim_weights(self.levels)),
                        **({} if self.levels == len(MSSSIM_WEIGHTS) else
                           {"note": f"{self.levels} scales: images under 161 px (bench.metrics.diversity)"})},
        }

    def intervals(self, n_resamples: int, seed: int = 0) -> dict[str, dict[str, Any]]:
        """95% percentile-bootstrap intervals of both means, resampling label maps; ``{}`` when ``n_resamples``
        is 0 or there are fewer than 2 maps."""
        from bench.metrics.uncertainty import MeanStatistic, interval

        if n_resamples <= 0 or len(self.ids) < 2:
            return {}
        return {name: interval(MeanStatistic(values), n_resamples=n_resamples, seed=seed).to_dict()
                for name, values in (("lpips", self.lpips), ("ms_ssim", self.ms_ssim))}


def lpips_identity(backbone: Path) -> dict[str, Any]:
    """The LPIPS settings and the sha256 of both its weight files (trunk from the registry, linear layers
    from the package)."""
    from importlib.metadata import version

    from bench.cache import file_digest

    lin = lpips_linear_file()
    return {"package": f"lpips {version('lpips')}", "net": LPIPS_NET, "version": LPIPS_VERSION,
            "backbone": f"{BACKBONE} (torchvision ImageNet)", "backbone_file": backbone.name,
            "backbone_sha256": file_digest(backbone), "linear_sha256": file_digest(lin)}


def score_samples(samples: Mapping[str, Sequence[Path]], *, device: str | torch.device = "cpu",
                  backbone: str | Path | None = None, progress: bool = True) -> DiversityResult:
    """Mean pairwise LPIPS and MS-SSIM of each label map's samples (the OASIS protocol, module docstring).

    Args:
        samples: ``{label id: [K image files]}`` (:func:`group_samples`), K >= 2, the same for every map;
            uint8 RGB images of one size.
        device: where LPIPS and MS-SSIM run.
        backbone: the VGG16 file (default: the registry's ``vgg16``).
        progress: a progress bar on stderr.

    Returns:
        The per-map values and the protocol.

    Raises:
        WeightsNotFoundError: the VGG16 trunk is not in the cache (one line: file, folder, URL).
        DataError: an unreadable image, or samples of different sizes (naming the file).
        ConfigError: fewer than 2 samples for a map.
    """
    from tqdm import tqdm

    from bench.weights import resolve

    t0 = time.perf_counter()
    ks = {len(v) for v in samples.values()}
    if not samples or len(ks) != 1 or min(ks) < 2:
        raise ConfigError(f"diversity needs the same K >= 2 samples for every label map, got K in {sorted(ks) or '{}'}")
    path = resolve(BACKBONE, backbone)
    net = load_lpips(path, device=device)
    size: tuple[int, int] | None = None
    levels = 0
    lp, ms = [], []
    for files in tqdm(samples.values(), desc="diversity", file=sys.stderr, disable=not progress, leave=False):
        arrays = [_load_rgb(p) for p in files]
        for p, a in zip(files, arrays):
            if size is None:
                size, levels = a.shape[:2], msssim_levels(*a.shape[:2])
            elif a.shape[:2] != size:
                raise DataError(f"{p}: {a.shape[1]}x{a.shape[0]} (WxH), but the other samples are {size[1]}x{size[0]}; "
                                "all samples must have one size")
        x = torch.from_numpy(np.stack(arrays)).to(device).permute(0, 3, 1, 2).float() / 255.0  # [K, 3, H, W]
        lp.append(float(lpips_pairs(net, lpips_features(net, x * 2 - 1)).double().mean()))
        ms.append(float(msssim_pairs(x, levels=levels).double().mean()))
    h, w = size or (0, 0)
    if levels < len(MSSSIM_WEIGHTS):
        log.info("MS-SSIM on %dx%d images uses %d scales (5 need 161 px on the short side)", w, h, levels)
    return DiversityResult(k=ks.pop(), ids=list(samples), lpips=np.array(lp), ms_ssim=np.array(ms),
                           size=(int(h), int(w)), levels=levels, identity=lpips_identity(path),
                           seconds=time.perf_counter() - t0)


def request_identity(k: int, backbone: str | Path | None = None) -> dict[str, Any]:
    """What a diversity request adds to a record's inputs (hashed into its id): K, the protocol and the
    sha256 of the LPIPS trunk. Resolving the trunk here makes a missing file fail before any long work.

    Raises:
        WeightsNotFoundError: the VGG16 trunk is not in the cache (one line: file, folder, URL).
    """
    from bench.cache import file_digest
    from bench.weights import resolve

    return {"k": k, "protocol": "OASIS mean pairwise LPIPS-VGG v0.1 and MS-SSIM (data_range 1)",
            "backbone_sha256": file_digest(resolve(BACKBONE, backbone))}


def score_generated(folder: Path, k: int, **kwargs: Any) -> DiversityResult:
    """:func:`score_samples` on a folder written by ``generate_split(samples=k)``: the label ids and their
    seeds from its ``samples.json``, the files ``<id>_s<j>.png``; the seeds go into the protocol.

    Raises:
        DataError: no readable ``samples.json`` or missing samples (one line); see :func:`score_samples`.
    """
    import json

    try:
        record = json.loads((folder / "samples.json").read_text())
        seeds: dict[str, list[int]] = record["seeds"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise DataError(f"{folder}/samples.json: missing or unreadable ({e}); regenerate the samples") from None
    found = {p.stem: p for p in folder.glob("*.png")}
    result = score_samples(group_samples(found, list(seeds), k, folder), **kwargs)
    return replace(result, seeds={"seed": record.get("seed"),
                                  "rule": "sample k of image i: image_seed(seed + 7919 k, i) (bench.generate)"})


__all__ = ["AVERAGING", "BACKBONE", "MSSSIM_WEIGHTS", "DiversityResult", "backbone_state", "check_request",
           "group_samples", "load_lpips", "lpips_features", "lpips_pairs", "ms_ssim", "msssim_levels",
           "msssim_pairs", "msssim_weights", "request_identity", "sample_name", "score_generated", "score_samples"]
