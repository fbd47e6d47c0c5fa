"""Generic runner for the golden parity cases (recipe: tests/parity/README.md, copied from shared/parity).

A case file is self-describing: it holds the inputs, the Python that builds the network input and calls
the network (``forward_call``), and expressions that pick the outputs to compare. We execute that call
against *our* freshly built and ``fill_``-ed network and compare with the recorded tolerance.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from tests.parity.fill import fill_

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
MANIFESTS = HERE / "manifests"


def load_case(name: str, folder: Path = GOLDEN) -> dict[str, Any]:
    return torch.load(folder / f"{name}.pt", weights_only=True)


def manifest_shapes(name: str, folder: Path = MANIFESTS) -> dict[str, tuple[int, ...]]:
    """``{key: shape}`` of an official network's state_dict."""
    data = json.loads((folder / f"{name}.json").read_text())
    return {e["key"]: tuple(e["shape"]) for e in data["state_dict"]}


def state_shapes(net: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in net.state_dict().items()}


def assert_same_keys(net: torch.nn.Module, manifest: str, folder: Path = MANIFESTS) -> None:
    """Keys and shapes equal the official manifest (order-free), with a readable diff on failure."""
    mine, theirs = state_shapes(net), manifest_shapes(manifest, folder)
    missing = sorted(set(theirs) - set(mine))
    unexpected = sorted(set(mine) - set(theirs))
    wrong = sorted(k for k in set(mine) & set(theirs) if mine[k] != theirs[k])
    assert not (missing or unexpected or wrong), (
        f"{manifest}: missing {missing[:8]} ({len(missing)}), unexpected {unexpected[:8]} ({len(unexpected)}), "
        f"wrong shape {[(k, mine[k], theirs[k]) for k in wrong[:8]]} ({len(wrong)})"
    )


def run_case(case: dict[str, Any], net: torch.nn.Module, net_name: str) -> dict[str, torch.Tensor]:
    """Execute the case's ``forward_call`` with ``net`` bound to ``net_name``; return {output: (mine, golden)}."""
    scope: dict[str, Any] = {
        "torch": torch,
        "F": F,
        "inputs": case["inputs"],
        "seeds": case.get("seeds", {}),
        net_name: net,
    }
    exec(case["forward_call"], scope)  # noqa: S102 - trusted test data shipped in the repo
    pairs = {}
    for name, expr in case["output_expressions"].items():
        pairs[name] = (eval(expr, scope), case["outputs"][name])  # noqa: S307
    for name, expr in (case.get("extra_output_expressions") or {}).items():
        pairs[name] = (eval(expr, scope), case["extra_outputs"][name])  # noqa: S307
    return pairs


def check_case(
    name: str,
    build: Callable[[], torch.nn.Module],
    net_name: str,
    *,
    perturb: str | None = None,
    folder: Path = GOLDEN,
) -> None:
    """Build, fill, (optionally perturb one tensor by a relative 1e-3), run and compare a golden case."""
    case = load_case(name, folder)
    torch.manual_seed(0)
    net = build()
    fill_(net.state_dict())
    if perturb is not None:
        with torch.no_grad():
            t = net.state_dict()[perturb]
            signs = torch.randint(0, 2, t.shape, generator=torch.Generator().manual_seed(1)) * 2 - 1
            t.mul_(1 + 1e-3 * signs.to(t.dtype))
    tol = case["tolerance"]
    for out, (mine, golden) in run_case(case, net, net_name).items():
        torch.testing.assert_close(
            mine.float(), golden.float(), rtol=tol["rtol"], atol=tol["atol"], msg=lambda m, o=out: f"{name}/{o}: {m}"
        )
