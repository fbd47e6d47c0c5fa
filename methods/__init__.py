"""Semantic image synthesis methods, one module per method, registered by paper name.

Modules are imported on first use so that listing methods never imports torch.
"""

from __future__ import annotations

import importlib
from typing import Any

#: method name → module that registers it
MODULES: dict[str, str] = {
    "spade": "methods.spade",
    "pix2pixhd": "methods.pix2pixhd",
    "oasis": "methods.oasis",
    "sean": "methods.sean",
    "resail": "methods.resail",
}


def available() -> list[str]:
    """Names of the methods whose module exists in this checkout."""
    return sorted(n for n, m in MODULES.items() if importlib.util.find_spec(m) is not None)


def load_method(name: str) -> Any:
    """The Method subclass registered as ``name`` (imports its module)."""
    from bench.errors import UnknownNameError
    from bench.registry import Registry

    key = name.lower()
    if key not in MODULES or key not in available():
        probe: Registry[str] = Registry("method")
        for n in available():
            probe.add(n, n)
        probe.get(key)  # raises with suggestions
        raise UnknownNameError(f"unknown method {name!r}")
    importlib.import_module(MODULES[key])
    from methods.base import METHODS

    return METHODS.get(key)
