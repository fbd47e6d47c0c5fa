"""Resolving a (method, dataset) preset and applying type-checked ``--set key=value`` overrides."""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from typing import Any, Literal, get_args, get_origin

from bench.errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def parse_kv(items: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``["a=1", "b=x"]`` → ``{"a": "1", "b": "x"}``; a malformed item is a ConfigError."""
    out: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        out[key.strip()] = value.strip()
    return out


def _cast(name: str, tp: Any, raw: Any) -> Any:
    """Cast ``raw`` (usually a string from the command line) to the annotated type ``tp``."""
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        for c in choices:
            if raw == c or str(c) == str(raw):
                return c
        raise ConfigError(f"--set {name}={raw!r}: expected one of {', '.join(map(str, choices))}")
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if raw is None or (isinstance(raw, str) and raw.lower() in ("none", "null", "")):
            if len(args) < len(get_args(tp)):
                return None
        errors = []
        for a in args:
            try:
                return _cast(name, a, raw)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(errors[0] if errors else f"--set {name}={raw!r}: invalid value")
    if tp is bool:
        if isinstance(raw, bool):
            return raw
        s = str(raw).lower()
        if s in _TRUE:
            return True
        if s in _FALSE:
            return False
        raise ConfigError(f"--set {name}={raw!r}: expected a boolean (on/off, true/false, 1/0)")
    if tp in (int, float):
        if isinstance(raw, bool):
            raise ConfigError(f"--set {name}={raw!r}: expected {tp.__name__}")
        try:
            value = tp(raw)
        except (TypeError, ValueError):
            raise ConfigError(f"--set {name}={raw!r}: expected {tp.__name__}") from None
        if tp is int and isinstance(raw, float) and raw != int(raw):
            raise ConfigError(f"--set {name}={raw!r}: expected int")
        return value
    if tp is str:
        return str(raw)
    if origin in (tuple, list):
        items = json.loads(raw) if isinstance(raw, str) and raw.startswith("[") else (
            raw if isinstance(raw, list | tuple) else [x for x in str(raw).split(",") if x]
        )
        inner = get_args(tp)[0] if get_args(tp) else str
        return origin(_cast(name, inner, x) for x in items)
    return raw


def config_fields(cfg_cls: type) -> dict[str, Any]:
    """``{field name: resolved type annotation}`` of a config dataclass."""
    hints = typing.get_type_hints(cfg_cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cfg_cls)}


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    """A copy of the frozen ``cfg`` with ``overrides`` cast to each field's type and range-checked."""
    if not overrides:
        return cfg
    types_ = config_fields(type(cfg))
    values = {}
    for key, raw in overrides.items():
        if key not in types_:
            close = difflib.get_close_matches(key, types_, n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(close)}?" if close else ""
            raise ConfigError(
                f"--set {key}: no such option for {type(cfg).__name__}{hint} (see `bench config --method M --dataset D`)"
            )
        values[key] = _cast(key, types_[key], raw)
    try:
        return dataclasses.replace(cfg, **values)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"invalid configuration: {e}") from None


def resolve(method: str, dataset: str, overrides: dict[str, Any] | None = None) -> Any:
    """The frozen preset for (method, dataset) with overrides applied."""
    from methods import load_method

    cls = load_method(method)  # an unknown name fails here, before torch is imported
    from methods.base import PRESETS

    cfg = PRESETS.get((cls.name, dataset))
    if cfg is None:
        known = sorted(d for m, d in PRESETS if m == cls.name)
        raise ConfigError(
            f"no preset for method {cls.name!r} on dataset {dataset!r} (presets exist for: {', '.join(known)})"
        )
    return apply_overrides(cfg, overrides or {})


def to_dict(cfg: Any) -> dict[str, Any]:
    """JSON-ready dict of a config (with its class name, so a record says what it was)."""
    d = dataclasses.asdict(cfg)
    d["_class"] = type(cfg).__name__
    return d
