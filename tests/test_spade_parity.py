"""SPADE: state_dict keys/shapes equal the official manifests; golden forward cases pass."""

from __future__ import annotations

import pytest

from methods.common.discriminator import MultiscaleDiscriminator
from methods.spade import ConvEncoder, SPADEGenerator
from tests.parity.runner import assert_same_keys, check_case

# (manifest, builder) for the official configurations: ade20k (151 = 150 + dontcare), coco (182 + dontcare
# + edge = 184), cityscapes (35 + edge = 36, 'more', 512x256), ade20k with --use_vae.
G_BUILDERS = {
    "ade20k": lambda: SPADEGenerator(151),
    "coco": lambda: SPADEGenerator(184),
    "cityscapes": lambda: SPADEGenerator(36, crop_size=512, aspect_ratio=2.0, num_upsampling_layers="more"),
    "ade20k-vae": lambda: SPADEGenerator(151, use_vae=True),
}
D_BUILDERS = {
    "ade20k": lambda: MultiscaleDiscriminator(154),
    "coco": lambda: MultiscaleDiscriminator(187),
    "cityscapes": lambda: MultiscaleDiscriminator(39),
    "ade20k-vae": lambda: MultiscaleDiscriminator(154),
}


@pytest.mark.parametrize("config", sorted(G_BUILDERS))
def test_generator_keys_match_official(config: str) -> None:
    assert_same_keys(G_BUILDERS[config](), f"SPADE_{config}_G")


@pytest.mark.parametrize("config", sorted(D_BUILDERS))
def test_discriminator_keys_match_official(config: str) -> None:
    assert_same_keys(D_BUILDERS[config](), f"SPADE_{config}_D")


def test_vae_encoder_keys_match_official() -> None:
    assert_same_keys(ConvEncoder(), "SPADE_ade20k-vae_E")


@pytest.mark.parametrize(
    "case, build, net_name",
    [
        ("spade_ade20k_G", G_BUILDERS["ade20k"], "netG"),
        ("spade_coco_G", G_BUILDERS["coco"], "netG"),
        ("spade_cityscapes_G", G_BUILDERS["cityscapes"], "netG"),
        ("spade_ade20k_vae_G", G_BUILDERS["ade20k-vae"], "netG"),
        ("spade_ade20k_vae_E", ConvEncoder, "netE"),
        ("spade_ade20k_D", D_BUILDERS["ade20k"], "netD"),
    ],
)
def test_golden_case(case: str, build, net_name: str) -> None:
    check_case(case, build, net_name)


@pytest.mark.parametrize(
    "case, build, net_name, key",
    [
        ("spade_ade20k_G", G_BUILDERS["ade20k"], "netG", "up_1.conv_0.weight_orig"),
        ("spade_ade20k_D", D_BUILDERS["ade20k"], "netD", "discriminator_1.model0.0.weight"),
    ],
)
def test_perturbed_weight_fails_golden(case: str, build, net_name: str, key: str) -> None:
    """The comparison is sharp: a relative 1e-3 change of one mid-network tensor must fail it."""
    with pytest.raises(AssertionError):
        check_case(case, build, net_name, perturb=key)
