"""Make mmsegmentation importable with mmcv-lite, which ships no compiled ops.

mmsegmentation 1.2.2 imports ``mmcv.ops`` at import time (``mmseg.models.utils.point_sample``,
``mmseg.models.decode_heads.*``), and every ``mmcv.ops`` module loads the compiled extension
``mmcv._ext`` through ``mmcv.utils.ext_loader.load_ext``, which only checks ``hasattr(ext, op)``.
mmcv-lite has no ``mmcv._ext``, and building full mmcv takes about half an hour, yet the
segmenters we evaluate with (UperNet, DeepLabV3, DeepLabV3+, FCN) never call a compiled op.

So, when (and only when) the real extension is missing, :func:`ensure_mmseg_importable` puts a
stand-in module into ``sys.modules["mmcv._ext"]``. Every attribute of the stand-in is a callable
that raises :class:`CompiledOpUnavailableError` naming the op, so a model that really needs an op
(e.g. PointRend's ``point_sample`` on some paths, CCNet's criss-cross attention) fails loudly and
never silently computes something else.

The stand-in's ``__spec__`` has ``loader=None``: ``pkgutil.find_loader("mmcv._ext")`` (used by
``mmengine.utils.dl_utils.mmcv_full_available`` and ``mmcv.utils.ext_loader.check_ops_exist``)
then returns ``None``, so mmengine/mmcv keep reporting, correctly, that full mmcv is absent.
"""

from __future__ import annotations

import importlib
import importlib.machinery
import sys
import threading
import types
from typing import Any, NoReturn

from bench.errors import BenchError

EXT_NAME = "mmcv._ext"
_ORIGIN = "sisbench stand-in for mmcv._ext (segmenters/mmcv_ext_standin.py)"
_lock = threading.Lock()


class CompiledOpUnavailableError(BenchError, NotImplementedError):
    """A model called an mmcv compiled op, but only mmcv-lite (no ``mmcv._ext``) is installed."""


class UnavailableOp:
    """Placeholder for one compiled op of ``mmcv._ext``; calling it raises a naming error."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.__name__ = name
        self.__qualname__ = name

    def __call__(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise CompiledOpUnavailableError(
            f"mmcv compiled op {self.name!r} is not available (mmcv-lite is installed, which has no "
            f"compiled extension {EXT_NAME}); use a segmenter that does not need it, or install full "
            "mmcv 2.1.0 with its ops (`pip install mmcv==2.1.0`, about 30 min to compile)"
        )

    def __repr__(self) -> str:
        return f"<unavailable mmcv compiled op {self.name!r}>"


class _StandinExtModule(types.ModuleType):
    """``mmcv._ext`` look-alike: any op name resolves to an :class:`UnavailableOp`."""

    def __getattr__(self, name: str) -> UnavailableOp:
        # dunder/private look-ups (copy, pickle, inspect, typing) must behave like a normal module
        if name.startswith("_"):
            raise AttributeError(f"module {EXT_NAME!r} has no attribute {name!r}")
        op = UnavailableOp(name)
        setattr(self, name, op)  # cache, so identity checks on the op stay stable
        return op


def _make_standin() -> types.ModuleType:
    module = _StandinExtModule(EXT_NAME, "Stand-in for mmcv's compiled ops; every op raises when called.")
    # loader=None: find_spec() succeeds (mmengine reads __spec__) yet find_loader() reports no extension
    module.__spec__ = importlib.machinery.ModuleSpec(EXT_NAME, loader=None, origin=_ORIGIN)
    module.__file__ = None
    return module


def standin_installed() -> bool:
    """Whether ``mmcv._ext`` in this process is our stand-in (for run records and error hints)."""
    return isinstance(sys.modules.get(EXT_NAME), _StandinExtModule)


def ensure_mmseg_importable() -> bool:
    """Make ``import mmseg`` work; call this before any mmseg import.

    Imports the real ``mmcv._ext`` if it exists; otherwise installs the stand-in. Idempotent and
    thread-safe.

    Returns:
        True if the stand-in is in use, False if the real compiled extension is.

    Raises:
        BenchError: mmcv is not installed at all, or the real extension exists but fails to load.
    """
    with _lock:
        present = sys.modules.get(EXT_NAME)
        if present is not None:
            return isinstance(present, _StandinExtModule)
        try:
            importlib.import_module(EXT_NAME)
        except ModuleNotFoundError as exc:
            if exc.name == "mmcv":
                raise BenchError(
                    "mmcv is not installed; mmsegmentation segmenters need it: "
                    "`pip install 'mmcv-lite>=2.0,<2.2'` (or full mmcv 2.1.0)"
                ) from exc
            if exc.name != EXT_NAME:
                raise
            sys.modules[EXT_NAME] = _make_standin()
            return True
        except ImportError as exc:  # the extension exists but is broken (e.g. built for another torch)
            raise BenchError(
                f"mmcv's compiled extension {EXT_NAME} exists but fails to load ({exc}); rebuild mmcv "
                "for this torch version, or uninstall it and use mmcv-lite"
            ) from exc
        return False
