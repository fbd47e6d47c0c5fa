"""Every external weight file beyond VGG19 and the FID Inception: the papers' segmenters, the mmseg
track's checkpoints and the official method checkpoints, registered in :data:`bench.weights.WEIGHTS`.

None of these releases publishes a sha256 (the URLs and file names come from the authors' READMEs
and configs; see the ``description`` of each entry), so ``sha256`` is ``None`` everywhere: an
imported file is hashed and its digest recorded with every result, but it cannot be checked against
a published value. The mmseg file names end in 8 hex digits that ``publish_model.py`` computed on
the checkpoint *before* stripping it, so they are not the downloaded file's sha256 prefix either.

Their content is checked instead: every entry names a ``manifest`` (``bench/manifests/NAME.json``)
with the keys and shapes of the released file, taken from the parity manifests of the official
networks (``tests/parity``) and, for the mmseg track, from the configs' models;
``python -m tests.test_weights_import`` regenerates them.

Several URLs are pages or archives rather than the file itself (Google Drive, Dropbox, a tar.gz):
download by hand, unpack if needed, then ``bench weights import NAME PATH``. Cache file names are
unique per entry and keep the release's name as a suffix, so the checkpoint loaders, which recognise
``..._net_G.pth`` and ``..._EMA.pth``, still know what each file holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from bench.weights import WEIGHTS, WeightFile, register, resolve


def _add(wf: WeightFile) -> None:
    if wf.name not in WEIGHTS:  # importing twice (reloads in tests) must not raise
        register(wf)


# --- the papers' segmenters -----------------------------------------------------------------------
_CSAIL = "http://sceneparsing.csail.mit.edu/model/pytorch/ade20k-resnet101-upernet/"
_add(WeightFile(
    name="upernet101-ade20k-encoder",
    manifest="upernet101-ade20k-encoder",
    filename="ade20k-resnet101-upernet-encoder_epoch_50.pth",
    urls=(_CSAIL + "encoder_epoch_50.pth",),
    description="CSAIL ResNet-101 encoder of UPerNet (ADE20K, epoch 50); config ade20k-resnet101-upernet.yaml",
))
_add(WeightFile(
    name="upernet101-ade20k-decoder",
    manifest="upernet101-ade20k-decoder",
    filename="ade20k-resnet101-upernet-decoder_epoch_50.pth",
    urls=(_CSAIL + "decoder_epoch_50.pth",),
    description="CSAIL UPerNet decoder (ADE20K, epoch 50), paired with upernet101-ade20k-encoder",
))
_add(WeightFile(
    name="drn105-cityscapes",
    manifest="drn105-cityscapes",
    filename="drn-d-105_ms_cityscapes.pth",
    urls=("http://go.yf.io/drn-cityscapes-models",),
    description="fyu/drn DRN-D-105 Cityscapes segmentation weights (19 train ids); the URL is fyu/drn's "
                "README link to the models page",
))
_add(WeightFile(
    name="deeplabv2-cocostuff",
    manifest="deeplabv2-cocostuff",
    filename="deeplabv2_resnet101_msc-cocostuff164k-100000.pth",
    urls=("https://github.com/kazuto1011/deeplab-pytorch/releases/download/v1.0/"
          "deeplabv2_resnet101_msc-cocostuff164k-100000.pth",),
    description="kazuto1011/deeplab-pytorch DeepLabV2-ResNet101-MSC, COCO-Stuff 164k, 182 outputs (hubconf.py)",
))
_add(WeightFile(
    name="unet-celebamask",
    manifest="unet-celebamask",
    filename="celebamask-hq-face-parsing-unet-model.pth",
    urls=("https://drive.google.com/file/d/1Me181DqwnE-yptAh04cZ1wsHViYrZuhc/view?usp=sharing",),
    description="switchablenorms/CelebAMask-HQ face_parsing U-Net, released as model.pth (Google Drive page)",
))

# --- mmsegmentation track (download.openmmlab.com; URLs from mmseg 1.2.2's metafile.yaml) --------------
_MM = "https://download.openmmlab.com/mmsegmentation/v0.5/"
_add(WeightFile(
    name="mmseg-upernet-r101-ade20k",
    manifest="mmseg-upernet-r101-ade20k",
    filename="upernet_r101_512x512_160k_ade20k_20200615_161951-91b32684.pth",
    urls=(_MM + "upernet/upernet_r101_512x512_160k_ade20k/upernet_r101_512x512_160k_ade20k_20200615_161951-91b32684.pth",),
    description="mmseg track: configs/upernet/upernet_r101_4xb4-160k_ade20k-512x512.py (150 classes)",
))
_add(WeightFile(
    name="mmseg-deeplabv3-r101-cocostuff164k",
    manifest="mmseg-deeplabv3-r101-cocostuff164k",
    filename="deeplabv3_r101-d8_512x512_4x4_320k_coco-stuff164k_20210709_155402-3cbca14d.pth",
    urls=(_MM + "deeplabv3/deeplabv3_r101-d8_512x512_4x4_320k_coco-stuff164k/"
          "deeplabv3_r101-d8_512x512_4x4_320k_coco-stuff164k_20210709_155402-3cbca14d.pth",),
    description="mmseg track: configs/deeplabv3/deeplabv3_r101-d8_4xb4-320k_coco-stuff164k-512x512.py (171 classes)",
))
_add(WeightFile(
    name="mmseg-deeplabv3plus-r101-cityscapes",
    manifest="mmseg-deeplabv3plus-r101-cityscapes",
    filename="deeplabv3plus_r101-d8_512x1024_80k_cityscapes_20200606_114143-068fcfe9.pth",
    urls=(_MM + "deeplabv3plus/deeplabv3plus_r101-d8_512x1024_80k_cityscapes/"
          "deeplabv3plus_r101-d8_512x1024_80k_cityscapes_20200606_114143-068fcfe9.pth",),
    description="mmseg track: configs/deeplabv3plus/deeplabv3plus_r101-d8_4xb2-80k_cityscapes-512x1024.py (19 train ids)",
))

# --- official method checkpoints ------------------------------------------------------------------
_SPADE_TAR = "https://drive.google.com/file/d/12gvlTbMvUcJewQlSEaZdeb2CdOB-b8kQ/view?usp=sharing"
for _ds in ("coco", "ade20k", "cityscapes"):
    _add(WeightFile(
        name=f"spade-{_ds}",
        manifest=f"spade-{_ds}",
        filename=f"spade-{_ds}_pretrained-latest_net_G.pth",
        urls=(_SPADE_TAR,),
        description=f"SPADE generator, member {_ds}_pretrained/latest_net_G.pth of checkpoints.tar.gz "
                    "(NVlabs/SPADE README, Google Drive)",
    ))
_OASIS = "https://www.dropbox.com/sh/nf6of02pyk84zjg/AAC8hnnj0T_MAiPx3tzdAyiWa?dl=0"
for _ds in ("ade20k", "cityscapes", "coco"):
    _add(WeightFile(
        name=f"oasis-{_ds}",
        manifest=f"oasis-{_ds}",
        filename=f"oasis_{_ds}_pretrained-best_EMA.pth",
        urls=(_OASIS,),
        description=f"OASIS EMA generator, oasis_{_ds}_pretrained/models/best_EMA.pth in oasis_{_ds}_pretrained.zip "
                    "(boschresearch/OASIS README, Dropbox folder; loaded by test.py --ckpt_iter best)",
    ))
_add(WeightFile(
    name="pix2pixhd-cityscapes-1024p",
    manifest="pix2pixhd-cityscapes-1024p",
    filename="pix2pixhd-label2city_1024p-latest_net_G.pth",
    urls=("https://drive.google.com/file/d/1h9SykUnuZul7J3Nbms2QGH1wa85nbN2-/view?usp=sharing",),
    description="pix2pixHD label2city_1024p/latest_net_G.pth (--netG local --ngf 32; NVIDIA/pix2pixHD README)",
))
_add(WeightFile(
    name="sean-celebamask",
    manifest="sean-celebamask",
    filename="sean-CelebA-HQ_pretrained-latest_net_G.pth",
    urls=("https://drive.google.com/file/d/1UMgKGdVqlulfgOBV4Z0ajEwPdgt3_EDK/view?usp=sharing",),
    description="SEAN generator, member CelebA-HQ_pretrained/latest_net_G.pth of CelebA-HQ_pretrained.tar.gz "
                "(ZPdesu/SEAN README, Google Drive)",
))

# --- metric backbones -----------------------------------------------------------------------------
# LPIPS-VGG (bench.metrics.diversity): the lpips package ships its linear layers (weights/v0.1/vgg.pth) but
# takes the VGG16 trunk from torchvision's download, which an offline machine cannot make
_add(WeightFile(
    name="vgg16",
    manifest="vgg16",
    filename="vgg16-397923af.pth",
    urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
    sha256_prefix="397923af",
    description="torchvision VGG16 (ImageNet, VGG16_Weights.IMAGENET1K_V1), the trunk of LPIPS-VGG for the "
                "diversity metrics (bench run/eval --diversity K)",
    also_look_in=("~/.cache/torch/hub/checkpoints",),
))

#: segmenter name -> {keyword argument of its class: registry name of the file}
SEGMENTER_WEIGHTS: dict[str, dict[str, str]] = {
    "upernet101_ade20k": {
        "encoder_checkpoint": "upernet101-ade20k-encoder",
        "decoder_checkpoint": "upernet101-ade20k-decoder",
    },
    "drn105_cityscapes": {"checkpoint": "drn105-cityscapes"},
    "deeplabv2_cocostuff": {"checkpoint": "deeplabv2-cocostuff"},
    "unet_celebamask": {"checkpoint": "unet-celebamask"},
    "mmseg_upernet_r101_ade20k": {"checkpoint": "mmseg-upernet-r101-ade20k"},
    "mmseg_deeplabv3_r101_cocostuff164k": {"checkpoint": "mmseg-deeplabv3-r101-cocostuff164k"},
    "mmseg_deeplabv3plus_r101_cityscapes": {"checkpoint": "mmseg-deeplabv3plus-r101-cityscapes"},
}

#: (method, dataset) -> registry name of the authors' released generator
OFFICIAL_CHECKPOINTS: dict[tuple[str, str], str] = {
    **{("spade", ds): f"spade-{ds}" for ds in ("coco", "ade20k", "cityscapes")},
    **{("oasis", ds): f"oasis-{ds}" for ds in ("ade20k", "cityscapes", "coco")},
    ("pix2pixhd", "cityscapes"): "pix2pixhd-cityscapes-1024p",
    ("sean", "celebamask"): "sean-celebamask",
}


def segmenter_weight_kwargs(segmenter: str, given: Mapping[str, object] | None = None) -> dict[str, Path]:
    """The weight-file keyword arguments of a segmenter, resolved in the cache.

    Arguments already in ``given`` are left alone, and nothing is resolved when ``given`` holds a
    ready ``network``; segmenters without registered files (the synthetic one) get ``{}``.

    Raises:
        WeightsNotFoundError: A file is missing; one line naming it, its URL and the import command.
    """
    given = given or {}
    if "network" in given:
        return {}
    return {kw: resolve(name) for kw, name in SEGMENTER_WEIGHTS.get(segmenter, {}).items() if kw not in given}


def official_checkpoint(method: str, dataset: str) -> Path:
    """The cached official generator of ``method`` on ``dataset``.

    Raises:
        WeightsNotFoundError: None was released, or it is not in the cache (one line with URL and import command).
    """
    from bench.errors import WeightsNotFoundError

    name = OFFICIAL_CHECKPOINTS.get((method, dataset))
    if name is None:
        released = ", ".join(f"{m}/{d}" for m, d in sorted(OFFICIAL_CHECKPOINTS))
        raise WeightsNotFoundError(f"no official checkpoint of {method!r} on {dataset!r} was released (released: {released})")
    return resolve(name)
