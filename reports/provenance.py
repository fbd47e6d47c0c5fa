"""Where each number of ``bench report`` comes from: per run, the commit, the configuration's difference
from its preset, the weights' sha256, the protocol, and a one-line protocol caption per table.

Everything is read from the run record (``results/runs/<run_id>.json``); nothing is recomputed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench.store import RunRecord


def config_diff(r: RunRecord) -> dict[str, tuple[Any, Any]] | None:
    """``{field: (preset value, run value)}`` for the fields that differ from the method's preset for the
    dataset; ``None`` when this checkout has no such preset (an external record, a removed method)."""
    if r.kind == "external":
        return None
    try:
        from bench.config import resolve, to_dict

        preset = to_dict(resolve(r.method, r.dataset))
    except Exception:  # noqa: BLE001 - a record from a method or preset this checkout lacks
        return None
    return {k: (preset[k], v) for k, v in sorted(r.config.items()) if k in preset and preset[k] != v}


def _short(x: Any, n: int = 12) -> str:
    return str(x or "")[:n]


def weights_rows(r: RunRecord) -> list[tuple[str, str]]:
    """``(role, "name/format sha256")`` for the generator, segmenter and Inception weights of a record."""
    out = []
    for role, w in sorted((r.weights or {}).items()):
        if not isinstance(w, dict):
            continue
        what = w.get("name") or w.get("format") or ""
        sha = w.get("sha256") or ""
        extra = f", {w['iterations']} iterations" if isinstance(w.get("iterations"), int) else ""
        out.append((role, f"{what} {sha}{extra}".strip()))
    return out


def _flat(d: Any, prefix: str = "") -> list[tuple[str, str]]:
    if not isinstance(d, dict):
        return [(prefix, str(d))]
    out: list[tuple[str, str]] = []
    for k, v in sorted(d.items()):
        key = f"{prefix}.{k}" if prefix else str(k)
        out += _flat(v, key) if isinstance(v, dict) else [(key, ", ".join(map(str, v)) if isinstance(v, list) else str(v))]
    return out


def provenance(r: RunRecord, label: str) -> dict[str, Any]:
    """The provenance block of one record for the template.

    Returns:
        ``{"run_id", "label", "anchor", "rows": [(key, value)]}``: commit, sisbench and torch versions,
        device, seed, creation time, the config diff from the preset (or "preset" / "no preset"), every
        weight file's sha256, the protocol (flattened) and the intervals' method.
    """
    env = r.env or {}
    diff = config_diff(r)
    if diff is None:
        cfg = "no preset to compare with" if r.kind != "external" else f"external images ({r.extra.get('images', '')})"
    else:
        cfg = "; ".join(f"{k}={v!r} (preset {p!r})" for k, (p, v) in diff.items()) or "the preset, unchanged"
    rows: list[tuple[str, str]] = [
        ("commit", env.get("git_commit") or "unknown"),
        ("versions", ", ".join(f"{k} {env[k]}" for k in ("sisbench", "torch", "torch_fidelity", "mmseg") if env.get(k))),
        ("device", env.get("device", "")),
        ("method / dataset / seed", f"{r.method} / {r.dataset} / {r.seed}"),
        ("created", r.created),
        ("config vs preset", cfg),
    ]
    rows += [(f"weights: {role}", text) for role, text in weights_rows(r)]
    rows += [(f"protocol: {k}", v) for k, v in _flat(r.protocol or {})]
    ivs = r.intervals or {}
    if ivs:
        kinds: dict[str, list[str]] = {}
        for m, v in sorted(ivs.items()):
            if isinstance(v, dict):
                kinds.setdefault(_interval_kind(v), []).append(m)
        rows.append(("intervals (95%)", "; ".join(f"{k}: {', '.join(ms)}" for k, ms in kinds.items())))
    if r.extra.get("n_images"):
        rows.append(("images scored", str(r.extra["n_images"])))
    return {"run_id": r.run_id, "label": label, "anchor": f"run-{r.run_id}", "rows": [(k, v) for k, v in rows if v]}


def _interval_kind(v: dict[str, Any]) -> str:
    method, n, seed = v.get("method"), v.get("n_resamples"), v.get("seed")
    if method == "percentile":
        return f"percentile bootstrap, B={n}, seed {seed}"
    if method == "jackknife":
        return f"grouped jackknife, {n} groups, seed {seed}"
    if method == "delta":
        return "delta method"
    return str(method)


def protocol_caption(records: Sequence[RunRecord]) -> str:
    """The protocol of a table's runs in one sentence (from the newest record), e.g. ``"Protocol: 200
    validation images, segmented at 64×64 by synthetic (native), mIoU over all classes; FID on Inception pool
    2048 (torch-fidelity 0.3.0); ± = half-width of the 95% interval (percentile bootstrap, B=1000, seed 0:
    accu, miou; delta method: fid), or the sd over seeds for rows over seeds"``."""
    if not records:
        return ""
    r = max(records, key=lambda x: x.created)
    p, parts = r.protocol or {}, []
    n = r.extra.get("n_images")
    if n:
        parts.append(f"{n} validation images")
    seg = (r.weights.get("segmenter") or {}).get("name") if isinstance(r.weights, dict) else None
    if p.get("segmentation") and seg:
        size = p.get("segmentation_size")
        at = f" at {size[0]}×{size[1]}" if isinstance(size, list) and len(size) == 2 else ""
        conv = f", mIoU over {p['miou_convention']} classes" if p.get("miou_convention") else ""
        parts.append(f"segmented{at} by {seg} ({p['segmentation']}){conv}")
    fid = p.get("fid") if isinstance(p.get("fid"), dict) else None
    if fid:
        tf = f" (torch-fidelity {fid['torch_fidelity']})" if fid.get("torch_fidelity") else ""
        parts.append(f"FID on Inception pool {fid.get('feature_layer', '')}{tf}".replace("pool  ", "pool "))
    if p.get("reconstruction_reference"):
        parts.append(f"reconstruction against the {p['reconstruction_reference']}")
    kinds: dict[str, list[str]] = {}
    for m, v in sorted((r.intervals or {}).items()):
        if isinstance(v, dict):
            kinds.setdefault(_interval_kind(v), []).append(m)
    if kinds:
        parts.append("± = half-width of the 95% interval (" + "; ".join(f"{k}: {', '.join(ms)}" for k, ms in kinds.items())
                     + "), or the sd over seeds for rows over seeds")
    return ("Protocol: " + "; ".join(parts)) if parts else ""


__all__ = ["config_diff", "protocol_caption", "provenance", "weights_rows"]
