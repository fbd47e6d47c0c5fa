"""Name → object registries with helpful errors (timm-style decorator, lm-eval-style suggestions)."""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from bench.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A registry of named objects.

    Entries are either objects registered with :meth:`register`, or lazy ``"package.module:attr"``
    strings (added with :meth:`register_lazy`) that are imported on first :meth:`get`, so listing
    names never imports torch.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T | str] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator: register ``obj`` under ``name``; registering a name twice raises."""

        def deco(obj: T) -> T:
            self.add(name, obj)
            return obj

        return deco

    def add(self, name: str, obj: T | str) -> None:
        """Register ``obj`` (or a lazy ``"module:attr"`` string) under ``name``."""
        key = name.lower()
        existing = self._entries.get(key)
        if existing is not None and not (isinstance(existing, str) and not isinstance(obj, str)):
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._entries[key] = obj

    register_lazy = add

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; raise ``UnknownNameError`` with suggestions."""
        key = name.lower()
        if key not in self._entries:
            close = difflib.get_close_matches(key, self._entries, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {', '.join(self.names()) or 'none'})"
            )
        obj = self._entries[key]
        if isinstance(obj, str):
            module, _, attr = obj.partition(":")
            loaded = getattr(importlib.import_module(module), attr)
            # importing the module may have registered the real object under the same name
            current = self._entries[key]
            obj = loaded if isinstance(current, str) else current
            self._entries[key] = obj
        return obj  # type: ignore[return-value]
