"""Pretrained evaluation segmenters, registered by name (lazily: listing never imports torch)."""

from __future__ import annotations

from bench.registry import Registry

SEGMENTERS: Registry[type] = Registry("segmenter")
