"""Label-map encodings: one-hot, instance edges, and each method family's id convention."""

from __future__ import annotations

import torch


def one_hot(label: torch.Tensor, num_channels: int) -> torch.Tensor:
    """``[B,1,H,W]`` int ids → ``[B,C,H,W]`` float one-hot (``scatter_``, as the official code)."""
    b, _, h, w = label.shape
    out = torch.zeros(b, num_channels, h, w, device=label.device)
    return out.scatter_(1, label.long(), 1.0)


def instance_edges(instance: torch.Tensor) -> torch.Tensor:
    """1 where a pixel's instance id differs from one of its 4 neighbours (official ``get_edges``)."""
    t = instance
    edge = torch.zeros_like(t, dtype=torch.bool)
    dx = t[:, :, :, 1:] != t[:, :, :, :-1]
    dy = t[:, :, 1:, :] != t[:, :, :-1, :]
    edge[:, :, :, 1:] |= dx
    edge[:, :, :, :-1] |= dx
    edge[:, :, 1:, :] |= dy
    edge[:, :, :-1, :] |= dy
    return edge.float()


def spade_ids(
    label: torch.Tensor, *, num_classes: int, ignore_index: int | None, dontcare: bool, dontcare_first: bool = False
) -> torch.Tensor:
    """SPADE family: class ids stay; unlabeled pixels go to the extra channel ``num_classes``.

    ``dontcare_first`` reproduces the official ADE20K models, which were trained with the raw file values
    as channels ("other" = 0 in channel 0, class k in channel k + 1) because SPADE's label shift never
    took effect; the dataset states it once as ``spec.extra["dontcare_channel_first"]``.
    Without a dontcare channel an unlabeled pixel has nowhere to go (the official code fails deep in
    ``scatter_``); we refuse it with a clear message.
    """
    if dontcare and dontcare_first:
        return oasis_ids(label, ignore_index=ignore_index)
    if ignore_index is None:
        return label
    ids = label.clone()
    mask = ids == ignore_index
    if mask.any():
        if not dontcare:
            from bench.errors import DataError

            raise DataError(
                f"label map has unlabeled pixels ({ignore_index}) but the method has no dontcare channel; "
                "use --set contain_dontcare_label=true"
            )
        ids[mask] = num_classes
    return ids


def dontcare_channel_first(spec: object) -> bool:
    """Whether ``spec`` asks for the official ADE20K channel order (see :func:`spade_ids`)."""
    return bool((getattr(spec, "extra", None) or {}).get("dontcare_channel_first"))


def oasis_ids(label: torch.Tensor, *, ignore_index: int | None) -> torch.Tensor:
    """OASIS: shift ids by +1 and put unlabeled pixels in class 0 ("unknown", weight 0 in the loss)."""
    ids = label + 1
    if ignore_index is not None:
        ids[label == ignore_index] = 0
    return ids
