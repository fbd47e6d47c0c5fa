"""Run records: JSON is the truth, keyed by the hash of a run's inputs; tables are views of it."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.cache import atomic_write, atomic_write_text
from bench.errors import BenchError

SCHEMA_VERSION = 1


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


#: how a non-finite float is spelt in a record (strict JSON has no Infinity or NaN; PSNR of identical images
#: is +inf): the string below, turned back into the float when the record is read
NONFINITE = {"inf": "Infinity", "-inf": "-Infinity", "nan": "NaN"}
_FROM_TEXT = {text: float(key) for key, text in NONFINITE.items()}


def strict_json_value(obj: Any) -> Any:
    """``obj`` with every non-finite float replaced by ``"Infinity"``, ``"-Infinity"`` or ``"NaN"`` (strings),
    so that ``json.dumps(..., allow_nan=False)`` accepts it and jq or a browser can parse the file."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return NONFINITE["nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")]
    if isinstance(obj, dict):
        return {k: strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json_value(v) for v in obj]
    return obj


def from_strict_json(obj: Any) -> Any:
    """The inverse of :func:`strict_json_value`: ``"Infinity"``/``"-Infinity"``/``"NaN"`` strings become floats."""
    if isinstance(obj, str):
        return _FROM_TEXT.get(obj, obj)
    if isinstance(obj, dict):
        return {k: from_strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_strict_json(v) for v in obj]
    return obj


def run_id(inputs: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of everything that determines a run's result (first 16 hex)."""
    return hashlib.sha256(canonical_json(inputs).encode()).hexdigest()[:16]


@dataclass(frozen=True, kw_only=True)
class RunRecord:
    """One benchmark run: what went in, what came out, and the environment it ran in."""

    schema_version: int = SCHEMA_VERSION
    run_id: str
    kind: str = "run"  # "run": sisbench generated the images; "external": `bench eval` scored a folder
    label: str = ""  # the name an external record carries in tables (`bench eval --name`)
    method: str
    dataset: str
    seed: int
    inputs: dict[str, Any]  # everything hashed into run_id
    config: dict[str, Any]  # the resolved method config
    weights: dict[str, Any]  # generator checkpoint, segmenter, FID Inception: names and sha256
    protocol: dict[str, Any]  # named protocols (segmentation, mIoU convention, FID resize)
    metrics: dict[str, float]  # fid, kid, miou, accu, psnr, ssim, rmse
    ceiling: dict[str, float] = field(default_factory=dict)  # the same metrics on real images
    intervals: dict[str, dict[str, Any]] = field(default_factory=dict)  # metric -> 95% Interval.to_dict()
    timings: dict[str, float] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """Strict JSON (RFC 8259): non-finite floats are written as strings (:func:`strict_json_value`)."""
        return json.dumps(strict_json_value(asdict(self)), indent=2, sort_keys=True, default=str, allow_nan=False)

    def summary(self) -> str:
        m = ", ".join(f"{k}={v:.4g}" for k, v in sorted(self.metrics.items()) if isinstance(v, int | float))
        who = f"{self.label} (external)" if self.kind == "external" else self.method
        return f"{self.run_id}  {who}/{self.dataset}  {m}"


class RunStore:
    """``<root>/runs/<run_id>.json``, one file per run, each written atomically.

    There is no shared index file: listing scans the folder, so concurrent runs never lose a record.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.runs = self.root / "runs"

    def path(self, rid: str) -> Path:
        return self.runs / f"{rid}.json"

    def get(self, rid: str) -> RunRecord | None:
        p = self.path(rid)
        if not p.is_file():
            return None
        return self._read(p)

    def _read(self, p: Path) -> RunRecord:
        try:
            data = from_strict_json(json.loads(p.read_text()))
            return RunRecord(**data)
        except (json.JSONDecodeError, TypeError) as e:
            raise BenchError(f"{p}: not a valid run record ({e})") from None

    def put(self, record: RunRecord, per_image: bytes | None = None) -> Path:
        """Write ``<run_id>.json`` atomically; ``per_image`` (an ``.npz``) first, beside it, so a record never
        points at a missing or half-written file."""
        if per_image is not None:
            atomic_write(self.per_image_path(record.run_id), lambda f: f.write(per_image))
        return atomic_write_text(self.path(record.run_id), record.to_json())

    def per_image_path(self, rid: str) -> Path:
        """``<root>/runs/<run_id>.npz``: the per-image data behind a record's intervals."""
        return self.runs / f"{rid}.npz"

    def all(self) -> list[RunRecord]:
        if not self.runs.is_dir():
            return []
        return [self._read(p) for p in sorted(self.runs.glob("*.json"))]

    def work_dir(self, rid: str) -> Path:
        """Per-run scratch space (checkpoints, generated images); resumable across interruptions."""
        p = self.root / "work" / rid
        p.mkdir(parents=True, exist_ok=True)
        return p
