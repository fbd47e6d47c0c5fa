"""The four segmentation networks semantic image synthesis papers score their images with.

Each class wraps one network with the preprocessing and test-time procedure of its authors'
evaluation code (channel order, mean/std, resizes, multi-scale merging), so that
``predict`` on an image gives the label map the official script would give on the same image
saved as an 8-bit file:

========================  ==========================================  =============================
name                      network (authors' repo @ commit)            released weight file(s)
========================  ==========================================  =============================
``upernet101_ade20k``     ResNet-101 + UPerNet (CSAILVision @8f27c9b)  encoder/decoder_epoch_50.pth
``drn105_cityscapes``     DRN-D-105 DRNSeg (fyu/drn @d75db2e)          drn-d-105_ms_cityscapes.pth
``deeplabv2_cocostuff``   DeepLab v2 R101 + MSC (kazuto1011 @4219467)  deeplabv2_resnet101_msc-
                                                                       cocostuff164k-100000.pth
``unet_celebamask``       face-parsing U-Net (CelebAMask-HQ @3f6c45d)  model.pth
========================  ==========================================  =============================

Images arrive as floats in ``[0, 1]``; they are first rounded to uint8 the way
``torchvision.utils.save_image`` does (``x * 255 + 0.5``, clamped, truncated), because every
official script reads 8-bit image files. Checkpoints load with ``strict=True``; the only keys a
file may lack are buffers that never influence inference (``num_batches_tracked`` and, for the
CSAIL files, SyncBN's private ``_tmp_running_*``/``_running_iter``), which keep their defaults.
"""

from __future__ import annotations

import hashlib
import os
from abc import abstractmethod
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

# Class lists are stated once, with the datasets (the segmenters' output order is the dataset order).
from bench.datasets.ade20k import ADE20K_CLASSES  # noqa: E402
from bench.datasets.celebamask import CELEBAMASK_CLASSES  # noqa: E402
from bench.datasets.cocostuff import COCOSTUFF_CLASSES  # noqa: E402
from bench.errors import CheckpointError, ConfigError, DataError, WeightsNotFoundError
from segmenters import SEGMENTERS
from segmenters.base import Segmenter
from segmenters.deeplabv2 import MSC, deeplabv2_resnet101_msc
from segmenters.drn import DRNSeg
from segmenters.face_parsing import UNet
from segmenters.upernet import SYNCBN_PRIVATE_BUFFERS, UPerNet101

PathLike = str | os.PathLike[str]
Device = str | torch.device


CITYSCAPES_TRAIN_CLASSES = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
    "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
    "bicycle",
)  # fmt: skip

# COCOSTUFF_CLASSES follows kazuto1011/deeplab-pytorch's labels.txt (index = COCO-Stuff id - 1). Eleven
# thing ids (street sign, hat, shoe, ...) have no annotations; the network still outputs all 182.


# Leaves of state_dict keys that never influence an eval-mode forward: a file may lack them.
_INERT_BUFFERS = ("num_batches_tracked",)


# --------------------------------------------------------------------------- checkpoints


def file_sha256(path: PathLike) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _examples(keys: Collection[str], n: int = 3) -> str:
    shown = sorted(keys)[:n]
    return ", ".join(shown) + (", ..." if len(keys) > n else "")


def load_weights(
    module: nn.Module,
    path: PathLike | None,
    *,
    what: str,
    optional_buffers: Collection[str] = _INERT_BUFFERS,
) -> str:
    """Load a released weight file into ``module`` with ``strict=True``; return its sha256.

    Accepts a raw state_dict (the layout of all released files), a dict holding one under
    ``"state_dict"`` (fyu/drn's own training checkpoints), and keys carrying the ``module.``
    prefix of ``nn.DataParallel``. Buffers whose leaf name is in ``optional_buffers`` may be
    absent from the file and keep the module's values; everything else must match exactly.

    Raises:
        ConfigError: ``path`` is None.
        WeightsNotFoundError: ``path`` is not a file.
        CheckpointError: the file cannot be read, or its keys or shapes do not match.
    """
    if path is None:
        raise ConfigError(f"no {what} weight file given; pass the path of the authors' released file")
    p = Path(path)
    if not p.is_file():
        raise WeightsNotFoundError(
            f"{what} weights not found at {p}; download the released file and pass its path"
        )
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several types for corrupt / non-torch files
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else ""
        raise CheckpointError(
            f"cannot read {what} weights {p} ({type(e).__name__}: {first_line}); expected a torch state_dict file"
        ) from e

    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{what} weights {p} hold a {type(obj).__name__} that is not a state_dict of tensors; "
            "expected the raw state_dict the authors released"
        )
    state: dict[str, torch.Tensor] = {str(k): v for k, v in obj.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}

    expected = module.state_dict()
    missing = {k for k in expected.keys() - state.keys() if k.rsplit(".", 1)[-1] not in optional_buffers}
    unexpected = state.keys() - expected.keys()
    if missing or unexpected:
        raise CheckpointError(
            f"{what} weights {p} do not match the network: {len(missing)} missing keys"
            f"{' (' + _examples(missing) + ')' if missing else ''}, {len(unexpected)} unexpected keys"
            f"{' (' + _examples(unexpected) + ')' if unexpected else ''}; "
            "pass the authors' released file (see segmenters/papers.py)"
        )
    wrong_shape = {k for k, v in state.items() if v.shape != expected[k].shape}
    if wrong_shape:
        k0 = sorted(wrong_shape)[0]
        raise CheckpointError(
            f"{what} weights {p}: {len(wrong_shape)} tensors have the wrong shape (e.g. {k0}: file "
            f"{tuple(state[k0].shape)}, network {tuple(expected[k0].shape)}); pass the authors' released file"
        )
    for k in expected.keys() - state.keys():  # only inert buffers are left here
        state[k] = expected[k]
    module.load_state_dict(state, strict=True)
    return file_sha256(p)


# --------------------------------------------------------------------------- image helpers


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Round ``[0, 1]`` floats to uint8 as ``torchvision.utils.save_image`` does ([B, 3, H, W])."""
    return images.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8)


def _hwc_numpy(u8: torch.Tensor) -> np.ndarray:
    """uint8 [B, 3, H, W] tensor -> contiguous uint8 [B, H, W, 3] array on the CPU (for PIL)."""
    return np.ascontiguousarray(u8.permute(0, 2, 3, 1).cpu().numpy())


def _from_hwc(arrays: list[np.ndarray], device: torch.device) -> torch.Tensor:
    """A list of uint8 [H, W, 3] arrays -> uint8 [B, 3, H, W] tensor on ``device``."""
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).to(device)


def _normalize(x: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """``torchvision.transforms.Normalize`` arithmetic (float32 mean/std, subtract then divide)."""
    m = torch.tensor(mean, dtype=x.dtype, device=x.device)[:, None, None]
    s = torch.tensor(std, dtype=x.dtype, device=x.device)[:, None, None]
    return (x - m) / s


def resize_labels_nearest(labels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize [B, h, w] integer maps with PIL's NEAREST rule (source pixel ``floor((i + 0.5) * h / H)``)."""
    h, w = labels.shape[-2:]
    H, W = size
    if (h, w) == (H, W):
        return labels
    rows = ((torch.arange(H, dtype=torch.float64) + 0.5) * (h / H)).floor().long().clamp_(max=h - 1)
    cols = ((torch.arange(W, dtype=torch.float64) + 0.5) * (w / W)).floor().long().clamp_(max=w - 1)
    return labels[:, rows.to(labels.device)][:, :, cols.to(labels.device)]


def _check_images(images: torch.Tensor, who: str) -> None:
    if images.dim() != 4 or images.shape[1] != 3 or not images.is_floating_point():
        raise DataError(
            f"{who}.predict expects float RGB images [B, 3, H, W] in [0, 1]; got {images.dtype} "
            f"{tuple(images.shape)}"
        )


class _PaperSegmenter(Segmenter):
    """Shared plumbing: device placement, eval mode, identity record."""

    source: str  # "owner/repo@commit" of the authors' evaluation code

    def _setup(self, network: nn.Module, device: Device, weights: dict[str, str]) -> None:
        self.device = torch.device(device)
        self.network = network.to(self.device).eval().requires_grad_(False)
        self._weights = weights

    @abstractmethod
    def protocol(self) -> str:
        """One line describing the preprocessing and test-time procedure, for the run record."""

    def identity(self) -> dict[str, str]:
        """Name, source code, weight hashes and protocol, for the run record."""
        return {"name": self.name, "source": self.source, **self._weights, "protocol": self.protocol()}

    def _check_source(self, checkpoint: object, network: object) -> None:
        if checkpoint is not None and network is not None:
            raise ConfigError(f"{self.name}: pass either the released weight file(s) or network=, not both")


# --------------------------------------------------------------------------- ADE20K


@SEGMENTERS.register("upernet101_ade20k")
class UPerNet101ADE20K(_PaperSegmenter):
    """ADE20K: CSAIL ResNet-101 + UPerNet, 5-scale test as in the authors' ``eval.py``.

    Per image: for every short side ``s`` in ``img_sizes``, scale by
    ``min(s / short, max_size / long)``, round each side *up* to a multiple of ``padding``,
    resize with PIL bilinear, normalize, and average the softmax probabilities (resized back to
    the input size) over the scales; the label is the argmax. No flip.

    Args:
        encoder_checkpoint: ``encoder_epoch_50.pth``.
        decoder_checkpoint: ``decoder_epoch_50.pth``.
        network: an already-built :class:`UPerNet101` instead of the two files (tests).
        img_sizes: short sides of the test scales (the config's ``DATASET.imgSizes``).
        max_size: cap on the long side (``imgMaxSize``).
        padding: sizes are rounded up to multiples of this (``padding_constant``).
        preprocessing: ``"rgb"`` is the code at the pinned commit (RGB, /255, ImageNet mean/std);
            ``"legacy_bgr"`` is the code before 2019-08-03 (cv2 BGR 0..255 minus the Caffe mean,
            cv2 bilinear resize). Which one the hosted epoch-50 files expect is unverified.
        device: where the network runs.
    """

    name = "upernet101_ade20k"
    eval_size = None  # its test rescales every image by short side itself (300..600), whatever the input
    class_names = ADE20K_CLASSES
    source = "CSAILVision/semantic-segmentation-pytorch@8f27c9b97d2ca7c6e05333d5766d144bf7d8c31b"
    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)
    LEGACY_MEAN_BGR = (102.9801, 115.9465, 122.7717)

    def __init__(
        self,
        encoder_checkpoint: PathLike | None = None,
        decoder_checkpoint: PathLike | None = None,
        *,
        network: UPerNet101 | None = None,
        img_sizes: tuple[int, ...] = (300, 375, 450, 525, 600),
        max_size: int = 1000,
        padding: int = 32,
        preprocessing: Literal["rgb", "legacy_bgr"] = "rgb",
        device: Device = "cpu",
    ) -> None:
        if preprocessing not in ("rgb", "legacy_bgr"):
            raise ConfigError(
                f"upernet101_ade20k: preprocessing={preprocessing!r}; use 'rgb' or 'legacy_bgr'"
            )
        if not img_sizes or min(img_sizes) <= 0 or max_size <= 0 or padding <= 0:
            raise ConfigError("upernet101_ade20k: img_sizes, max_size and padding must be positive")
        self._check_source(encoder_checkpoint, network)
        if network is None and (encoder_checkpoint is None or decoder_checkpoint is None):
            raise ConfigError(
                "upernet101_ade20k needs both released files, encoder_epoch_50.pth and decoder_epoch_50.pth"
            )
        weights = {}
        if network is None:
            network = self.build_network()
            optional = (*_INERT_BUFFERS, *SYNCBN_PRIVATE_BUFFERS)
            weights["encoder_sha256"] = load_weights(
                network.encoder,
                encoder_checkpoint,
                what="UPerNet-101 ADE20K encoder",
                optional_buffers=optional,
            )
            weights["decoder_sha256"] = load_weights(
                network.decoder,
                decoder_checkpoint,
                what="UPerNet-101 ADE20K decoder",
                optional_buffers=optional,
            )
        self.img_sizes = tuple(img_sizes)
        self.max_size = max_size
        self.padding = padding
        self.preprocessing = preprocessing
        self._setup(network, device, weights)

    @staticmethod
    def build_network() -> UPerNet101:
        """The bare network (random init); fill ``.encoder`` / ``.decoder`` from the two files."""
        return UPerNet101()

    def protocol(self) -> str:
        return (
            f"{self.preprocessing} preprocessing; scales short side {self.img_sizes}, long side <= "
            f"{self.max_size}, sizes rounded up to x{self.padding}, PIL bilinear; mean of softmax at input size"
        )

    def target_size(self, h: int, w: int, short_side: int) -> tuple[int, int]:
        """``ValDataset``'s resized (H, W) for one test scale."""
        scale = min(short_side / float(min(h, w)), self.max_size / float(max(h, w)))
        th, tw = int(h * scale), int(w * scale)
        p = self.padding
        return ((th - 1) // p + 1) * p, ((tw - 1) // p + 1) * p

    def preprocess(self, u8: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
        """uint8 RGB [B, H, W, 3] -> the normalized [B, 3, h, w] network input at ``size``."""
        th, tw = size
        if self.preprocessing == "rgb":
            same = u8.shape[1:3] == (th, tw)  # PIL returns a plain copy for the same size
            imgs = [
                a if same else np.asarray(Image.fromarray(a).resize((tw, th), Image.BILINEAR)) for a in u8
            ]
            x = _from_hwc(imgs, self.device).float() / 255.0
            return _normalize(x, self.MEAN, self.STD)
        import cv2  # only the legacy path uses OpenCV

        bgr = [np.ascontiguousarray(a[:, :, ::-1]) for a in u8]
        imgs = [a if a.shape[:2] == (th, tw) else cv2.resize(a, (tw, th)) for a in bgr]
        return _normalize(_from_hwc(imgs, self.device).float(), self.LEGACY_MEAN_BGR, (1.0, 1.0, 1.0))

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.name)
        u8 = _hwc_numpy(to_uint8(images))
        b, h, w = u8.shape[:3]
        scores = torch.zeros(b, self.num_classes, h, w, device=self.device)
        for s in self.img_sizes:
            x = self.preprocess(u8, self.target_size(h, w, s))
            scores = scores + self.network(x, (h, w)) / len(self.img_sizes)
        return scores.argmax(1).to(images.device)


# --------------------------------------------------------------------------- Cityscapes


@SEGMENTERS.register("drn105_cityscapes")
class DRN105Cityscapes(_PaperSegmenter):
    """Cityscapes: DRN-D-105 with fyu/drn's ``segment.py test`` procedure.

    Single scale (default, ``test()``): normalize with ``info.json``'s mean/std and take the
    argmax of the log-probabilities at the input size; H and W must be multiples of 8. With
    ``multi_scale=True`` (``test_ms()``, the ``--ms`` flag): add PIL-bicubic copies at
    ``int(w * s), int(h * s)`` for s in 0.5, 0.75, 1.25, 1.5, 1.75, resize each log-prob map back
    per channel with PIL bilinear, sum the six and take the argmax. No flip.

    SIS papers that say how they ran it (CLADE, OASIS) used single scale, at the generated size.
    """

    name = "drn105_cityscapes"
    eval_size = (1024, 2048)  # Cityscapes' own resolution, at which DRN-D-105's 75.6% val mIoU was measured
    class_names = CITYSCAPES_TRAIN_CLASSES
    source = "fyu/drn@d75db2ee7070426db7a9264ee61cf489f8cf178c"
    MEAN = (0.29010095242892997, 0.32808144844279574, 0.28696394422942517)
    STD = (0.1829540508368939, 0.18656561047509476, 0.18447508988480435)
    MS_SCALES = (0.5, 0.75, 1.25, 1.5, 1.75)

    def __init__(
        self,
        checkpoint: PathLike | None = None,
        *,
        network: DRNSeg | None = None,
        multi_scale: bool = False,
        device: Device = "cpu",
    ) -> None:
        self._check_source(checkpoint, network)
        weights = {}
        if network is None:
            network = self.build_network()
            weights["checkpoint_sha256"] = load_weights(network, checkpoint, what="DRN-D-105 Cityscapes")
        self.multi_scale = multi_scale
        self._setup(network, device, weights)

    @staticmethod
    def build_network() -> DRNSeg:
        """The bare ``DRNSeg('drn_d_105', 19)`` (random init, bilinear ``up``)."""
        return DRNSeg()

    def protocol(self) -> str:
        if self.multi_scale:
            return "RGB/255, info.json mean/std; test_ms: 1.0 + PIL-bicubic x(0.5..1.75), summed log-probs"
        return "RGB/255, info.json mean/std; single scale at the input size (test())"

    def preprocess(self, u8: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B, 3, H, W] -> normalized float input (``ToTensor`` + ``Normalize``)."""
        return _normalize(u8.to(self.device).float().div(255), self.MEAN, self.STD)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.name)
        u8 = to_uint8(images)
        h, w = u8.shape[2:]
        if not self.multi_scale:
            if h % 8 or w % 8:
                raise ConfigError(
                    f"drn105_cityscapes: single-scale DRN needs H and W divisible by 8, got {h}x{w}; "
                    "resize the images (e.g. 256x512) or use multi_scale=True"
                )
            logp, _ = self.network(self.preprocess(u8))
            return logp.argmax(1).to(images.device)

        hwc = _hwc_numpy(u8)
        total = self.network(self.preprocess(u8))[0].cpu().numpy()  # the original image comes first
        for s in self.MS_SCALES:
            size = (int(w * s), int(h * s))
            x = _from_hwc(
                [np.asarray(Image.fromarray(a).resize(size, Image.BICUBIC)) for a in hwc], self.device
            )
            logp = self.network(self.preprocess(x))[0].cpu().numpy()
            total = total + self._resize_back(logp, w, h)  # same order as the official sum()
        return torch.from_numpy(total.argmax(axis=1)).to(images.device)

    @staticmethod
    def _resize_back(logp: np.ndarray, w: int, h: int) -> np.ndarray:
        """``segment.resize_4d_tensor``: per-channel PIL bilinear on float32 maps."""
        if logp.shape[2:] == (h, w):
            return logp
        out = np.empty((*logp.shape[:2], h, w), dtype=np.float32)
        for i in range(logp.shape[0]):
            for j in range(logp.shape[1]):
                out[i, j] = np.asarray(Image.fromarray(logp[i, j]).resize((w, h), Image.BILINEAR))
        return out


# --------------------------------------------------------------------------- COCO-Stuff


@SEGMENTERS.register("deeplabv2_cocostuff")
class DeepLabV2COCOStuff(_PaperSegmenter):
    """COCO-Stuff: DeepLab v2 ResNet-101 + MSC with kazuto1011's ``main.py test`` procedure.

    The image is fed at its own size as BGR 0..255 minus the Caffe mean (no std), the MSC logits
    (max over 1.0x, 0.5x, 0.75x inputs) are resized bilinearly to the input size, softmaxed and
    argmaxed. No flip, no CRF. Outputs 0..181 (COCO-Stuff id - 1).
    """

    name = "deeplabv2_cocostuff"
    eval_size = None  # COCO images have no common size; the authors feed each at its own
    class_names = COCOSTUFF_CLASSES
    source = "kazuto1011/deeplab-pytorch@4219467fa5de07985f834f1bd8c04c186dc8f6d8"
    MEAN_BGR = (104.008, 116.669, 122.675)

    def __init__(
        self,
        checkpoint: PathLike | None = None,
        *,
        network: MSC | None = None,
        device: Device = "cpu",
    ) -> None:
        self._check_source(checkpoint, network)
        weights = {}
        if network is None:
            network = self.build_network()
            weights["checkpoint_sha256"] = load_weights(network, checkpoint, what="DeepLab v2 COCO-Stuff")
        self._setup(network, device, weights)

    @staticmethod
    def build_network() -> MSC:
        """The bare ``DeepLabV2_ResNet101_MSC(n_classes=182)`` (random init)."""
        return deeplabv2_resnet101_msc()

    def protocol(self) -> str:
        return "BGR 0..255 minus (104.008, 116.669, 122.675); MSC max over x1, x0.5, x0.75; bilinear to input size"

    def preprocess(self, u8: torch.Tensor) -> torch.Tensor:
        """uint8 RGB [B, 3, H, W] -> BGR float32 minus the mean, subtracted in float64 as numpy does."""
        bgr = u8.to(self.device).flip(1).to(torch.float64)
        mean = torch.tensor(self.MEAN_BGR, dtype=torch.float64, device=self.device)[:, None, None]
        return (bgr - mean).to(torch.float32)

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.name)
        u8 = to_uint8(images)
        logits = self.network(self.preprocess(u8))
        logits = F.interpolate(logits, size=tuple(u8.shape[2:]), mode="bilinear", align_corners=False)
        return F.softmax(logits, dim=1).argmax(1).to(images.device)


# --------------------------------------------------------------------------- CelebAMask-HQ


@SEGMENTERS.register("unet_celebamask")
class UNetCelebAMask(_PaperSegmenter):
    """CelebAMask-HQ: the face-parsing U-Net with the authors' ``tester.py`` transform.

    PIL NEAREST resize to ``imsize`` x ``imsize`` (512 in ``run_test.sh``), ToTensor, normalize to
    [-1, 1], argmax of the logits. The label map is brought back to the input size with the same
    nearest rule -- our addition: the official test scores at 512 against 512 masks, while
    ``predict`` must answer at the input size.
    """

    name = "unet_celebamask"
    class_names = CELEBAMASK_CLASSES
    source = "switchablenorms/CelebAMask-HQ@3f6c45df5e67130568f9459f24f8d6a5ff836d30"

    def __init__(
        self,
        checkpoint: PathLike | None = None,
        *,
        network: UNet | None = None,
        imsize: int = 512,
        device: Device = "cpu",
    ) -> None:
        if imsize <= 0 or imsize % 16:
            raise ConfigError(f"unet_celebamask: imsize={imsize}; the U-Net needs a positive multiple of 16")
        self._check_source(checkpoint, network)
        weights = {}
        if network is None:
            network = self.build_network()
            weights["checkpoint_sha256"] = load_weights(
                network, checkpoint, what="CelebAMask-HQ face-parsing U-Net"
            )
        self.imsize = imsize
        self.eval_size = (imsize, imsize)  # the official test scores 512x512 predictions
        self._setup(network, device, weights)

    @staticmethod
    def build_network() -> UNet:
        """The bare ``unet()`` with the tester's defaults (random init)."""
        return UNet()

    def protocol(self) -> str:
        return f"PIL nearest to {self.imsize}x{self.imsize}, [-1, 1]; argmax; nearest back to the input size"

    def preprocess(self, u8: np.ndarray) -> torch.Tensor:
        """uint8 RGB [B, H, W, 3] -> ``transformer(True, True, True, False, imsize)`` output."""
        n = self.imsize
        imgs = [
            a if a.shape[:2] == (n, n) else np.asarray(Image.fromarray(a).resize((n, n), Image.NEAREST))
            for a in u8
        ]
        x = _from_hwc(imgs, self.device).float().div(255)
        return _normalize(x, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))

    @torch.inference_mode()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        _check_images(images, self.name)
        u8 = _hwc_numpy(to_uint8(images))
        labels = self.network(self.preprocess(u8)).argmax(1)
        return resize_labels_nearest(labels, (images.shape[2], images.shape[3])).to(images.device)
