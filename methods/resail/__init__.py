"""RESAIL (Shi et al., CVPR 2022): retrieval-based guidance for semantic image synthesis.

``retrieval`` builds the segment database and guidance images, ``distortion`` the distorted ground
truth used in training, ``model`` the networks and the registered method (importing this package
registers ``resail``).
"""

from methods.resail.model import (
    SIN,
    RESAILConfig,
    RESAILGenerator,
    RESAILMethod,
    SesameMultiscaleDiscriminator,
)
from methods.resail.retrieval import SegmentDB, build_database, ensure_database, guidance_image

__all__ = [
    "SIN",
    "RESAILConfig",
    "RESAILGenerator",
    "RESAILMethod",
    "SegmentDB",
    "SesameMultiscaleDiscriminator",
    "build_database",
    "ensure_database",
    "guidance_image",
]
