"""Shared fixtures: an isolated cache, the parity fill function, a CUDA fixture that fails without a GPU."""

from __future__ import annotations

import os

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see bench/__init__.py
from pathlib import Path

import pytest
import torch

PARITY = Path(__file__).parent / "parity"


@pytest.fixture(autouse=True)
def _isolated_threads() -> None:
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def bench_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private $BENCH_CACHE so tests never touch the user's cache."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("BENCH_CACHE", str(cache))
    return cache


@pytest.fixture
def cuda() -> torch.device:
    """A CUDA device; a GPU test fails (never skips) where there is none, so CPU CI stays honest."""
    if not torch.cuda.is_available():
        pytest.fail("this test needs a CUDA device; run GPU tests with `tox -e gpu` on a GPU machine")
    return torch.device("cuda")
