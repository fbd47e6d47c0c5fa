"""Speed of RESAIL's retrieval: database scoring (all pairs) and per-label-map queries, ours vs the direct
reference formulation of the official code.

    python -m bench.perf.resail_speed [--images 360] [--queries 20] [--ref-rows 16] [--ref-queries 5] [--json]

The database indexes the first ``--images`` training images of the synthetic dataset (a few thousand
segments). "Reference" is :func:`methods.resail.retrieval.reference_scores`: per query segment, squared
differences with every segment of its class computed elementwise, as ``DataBase.process_dataset`` does.
Timing the reference on every pair would take far longer than the rest, so its build time is measured
on ``--ref-rows`` query rows per class and extrapolated by the number of pairs; the table says so. Both
sides produce the same top-k (checked on the timed rows). Results go to stdout, progress to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch


def _timed(fn: Any, repeat: int = 1, warmup: bool = True) -> tuple[float, Any]:
    out = fn() if warmup else None  # warm-up (allocations, caches)
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    return (time.perf_counter() - t0) / repeat, out


def _reference_build(db: Any, rows_per_class: int, k: int) -> tuple[float, int, int, bool]:
    """Seconds for ``rows_per_class`` reference rows per class, rows timed, total pairs, and agreement."""
    from methods.resail.retrieval import reference_scores, topk_lowest

    seconds, pairs_timed, agree = 0.0, 0, True
    for cls in np.unique(db.classes):
        members = db.members(int(cls))
        masks = torch.from_numpy(db.unpacked_masks(members)).float()
        box = torch.from_numpy(db.box_area[members])
        r = min(rows_per_class, len(members))
        t0 = time.perf_counter()
        ref = reference_scores(masks[:r], box[:r], masks, box)
        self_pair = torch.zeros_like(ref, dtype=torch.bool)
        self_pair[torch.arange(r), torch.arange(r)] = True
        top = topk_lowest(ref, k, self_pair).numpy()
        seconds += time.perf_counter() - t0
        pairs_timed += r * len(members)
        want = np.where(top >= 0, members[np.maximum(top, 0)], -1)
        agree &= bool(np.array_equal(want, db.matches[members[:r]]))
    return seconds, pairs_timed, int(sum(len(db.members(int(c))) ** 2 for c in np.unique(db.classes))), agree


def _reference_query(db: Any, masks: np.ndarray, box: np.ndarray, classes: np.ndarray, k: int) -> np.ndarray:
    """Top-k of query segments with the reference scores, on the float masks ours caches too."""
    from methods.resail.retrieval import reference_scores, topk_lowest

    out = np.full((len(classes), k), -1, np.int64)
    for cls in np.unique(classes):
        rows = np.flatnonzero(classes == cls)
        members = db.members(int(cls))
        if len(members) == 0:
            continue
        d, _, d_box, _ = db.class_tensors(int(cls))
        s = reference_scores(torch.from_numpy(masks[rows]).float(), torch.from_numpy(box[rows]), d, d_box)
        top = topk_lowest(s, k).numpy()
        out[rows] = np.where(top >= 0, members[np.maximum(top, 0)], -1)
    return out


def run(images: int, queries: int, ref_rows: int, ref_queries: int, k: int, data_root: str | None,
        device: str) -> dict[str, Any]:
    from bench.datasets import SYNTHETIC_SPEC, ensure_synthetic, open_split
    from bench.datasets.transforms import Preprocess
    from methods.resail.retrieval import (
        build_database,
        descriptors,
        extract_segments,
        guidance_from,
        retrieve_batch,
    )

    spec = SYNTHETIC_SPEC
    root = Path(data_root) if data_root else ensure_synthetic()
    pre = Preprocess.fixed(spec.native_size)
    train = open_split(spec, root, "train", pre)
    val = open_split(spec, root, "val", pre)
    print(f"indexing {images} training images of {root}", file=sys.stderr)
    t0 = time.perf_counter()
    db = build_database(train, max_images=images, score=False, progress=True)
    extract_s = time.perf_counter() - t0
    ours_build_s, _ = _timed(lambda: db.score_all(k=k, device="cpu", progress=False))
    print("reference build (subset) ...", file=sys.stderr)
    ref_s, ref_pairs, total_pairs, build_agree = _reference_build(db, ref_rows, k)
    ref_build_est = ref_s * total_pairs / ref_pairs

    samples = [val[i] for i in range(min(queries, len(val)))]
    labels = [s["label"][0].numpy() for s in samples]
    insts = [s["instance"][0].numpy() for s in samples]
    kw = dict(thing_classes=spec.thing_classes, ignore_index=spec.ignore_index, k=k)
    timings: dict[str, float] = {}
    results: dict[str, list[np.ndarray]] = {}
    for kernel in ("popcount", "matmul"):
        for c in np.unique(db.classes):  # caches (the matmul kernel's float masks) are built outside the timing
            db.class_tensors(int(c))
            db.class_stats(int(c))
        per = []
        res = []
        for lab, ins in zip(labels, insts):
            t, r = _timed(lambda lab=lab, ins=ins, kn=kernel: retrieve_batch(db, [lab], [ins], kernel=kn, **kw)[0], repeat=3)
            per.append(t)
            res.append(r.matches)
        timings[kernel] = float(np.median(per))
        results[kernel] = res
    per_ref, agree_q = [], True
    for lab, ins, mine in list(zip(labels, insts, results["popcount"]))[:ref_queries]:
        segs = extract_segments(lab, ins, thing_classes=spec.thing_classes, ignore_index=spec.ignore_index)
        m, b, c = descriptors(segs)  # the reference's extraction is not timed: it only scores and ranks
        t, ref = _timed(lambda m=m, b=b, c=c: _reference_query(db, m, b, c, k), warmup=False)
        per_ref.append(t)
        agree_q &= bool(np.array_equal(ref, mine))
    agree_q &= all(np.array_equal(a, b) for a, b in zip(results["popcount"], results["matmul"]))
    r0 = retrieve_batch(db, labels, insts, **kw)
    compose_s = float(np.median([_timed(lambda r=r: guidance_from(db, r))[0] for r in r0]))

    out: dict[str, Any] = {
        "segments": len(db), "classes": int(len(np.unique(db.classes))), "pairs": total_pairs,
        "images_indexed": images, "label_maps": len(labels), "segments_per_map": float(np.mean([len(r.segments) for r in r0])),
        "extract_s": extract_s, "build_ours_s": ours_build_s, "build_ref_est_s": ref_build_est,
        "build_ref_rows": ref_rows, "build_ref_measured_s": ref_s, "build_speedup": ref_build_est / ours_build_s,
        "build_topk_identical": build_agree, "query_popcount_ms": timings["popcount"] * 1e3,
        "query_matmul_ms": timings["matmul"] * 1e3, "query_ref_ms": float(np.median(per_ref)) * 1e3,
        "query_topk_identical": agree_q, "ref_queries": min(ref_queries, len(labels)), "compose_ms": compose_s * 1e3, "threads": torch.get_num_threads(),
        "load_avg_1min": os.getloadavg()[0],
    }
    if device.startswith("cuda") and torch.cuda.is_available():
        torch.backends.cuda.matmul.allow_tf32 = False
        t, m = _timed(lambda: db.score_all(k=k, device=device, progress=False))
        out["build_ours_gpu_s"] = t
    return out


def table(r: dict[str, Any]) -> str:
    q = r["query_popcount_ms"]
    rows = [
        ("database", f"{r['segments']} segments, {r['classes']} classes, {r['pairs']:,} same-class pairs "
                     f"({r['images_indexed']} images; extraction {r['extract_s']:.1f} s)"),
        ("build: ours (matrix products, CPU)", f"{r['build_ours_s']:.2f} s"),
        ("build: reference (direct, CPU)", f"{r['build_ref_est_s']:.1f} s (EXTRAPOLATED from {r['build_ref_rows']} rows/class "
                                           f"timed in {r['build_ref_measured_s']:.1f} s)"),
        ("build speed-up", f"{r['build_speedup']:.0f}x (top-k identical on the timed rows: {r['build_topk_identical']})"),
        ("query per label map: ours, popcount kernel (CPU default; extract + score + rank)", f"{q:.1f} ms ({r['segments_per_map']:.1f} segments/map)"),
        ("query per label map: ours, matmul kernel", f"{r['query_matmul_ms']:.1f} ms"),
        ("query per label map: reference (score + rank only)", f"{r['query_ref_ms']:.1f} ms (median of {r['ref_queries']} maps)"),
        ("query speed-up", f"{r['query_ref_ms'] / q:.0f}x (top-k identical: {r['query_topk_identical']})"),
        ("guidance compositing per map", f"{r['compose_ms']:.1f} ms"),
    ]
    if "build_ours_gpu_s" in r:
        rows.insert(2, ("build: ours (matrix products, GPU)", f"{r['build_ours_gpu_s']:.3f} s"))
    rows.append(("machine", f"{r['threads']} torch threads, 1-min load average {r['load_avg_1min']:.1f}"))
    w = max(len(a) for a, _ in rows)
    lines = [f"| {'RESAIL retrieval':<{w}} | result |", f"|{'-' * (w + 2)}|--------|"]
    lines += [f"| {a:<{w}} | {b} |" for a, b in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=360, help="training images to index (~11 segments each)")
    p.add_argument("--queries", type=int, default=20, help="validation label maps to query")
    p.add_argument("--ref-rows", type=int, default=16, help="query rows per class timed for the reference build")
    p.add_argument("--ref-queries", type=int, default=5, help="label maps timed for the reference query")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--data-root", default=None, help="synthetic dataset root (default: the cached one)")
    p.add_argument("--device", default="cpu", help="also time the build on this CUDA device")
    p.add_argument("--json", action="store_true", help="print the measurements as JSON")
    a = p.parse_args(argv)
    r = run(a.images, a.queries, a.ref_rows, a.ref_queries, a.k, a.data_root, a.device)
    print(json.dumps(r, indent=1) if a.json else table(r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
