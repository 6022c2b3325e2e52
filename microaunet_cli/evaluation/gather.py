"""Gathering per-image statistics across DDP ranks, and merging them without duplicates.

A DistributedSampler pads the split by repeating samples so every rank gets the same number of
batches; averaging the raw gathered rows would count those samples twice. Each row carries its
sample index, so the merge keeps one row per index and restores the split's order.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import Tensor


def merge_gathered(
    indices: list[Tensor], counts: list[Tensor], abs_err: list[Tensor]
) -> tuple[Tensor, Tensor, Tensor]:
    """Concatenate per-rank tables, order by sample index and keep the first row of each index."""
    idx = torch.cat(indices)
    cnt = torch.cat(counts)
    err = torch.cat(abs_err)
    order = torch.sort(idx, stable=True).indices
    idx, cnt, err = idx[order], cnt[order], err[order]
    keep = torch.ones_like(idx, dtype=torch.bool)
    keep[1:] = idx[1:] != idx[:-1]
    return idx[keep], cnt[keep], err[keep]


def all_gather_rows(tensors: list[Tensor]) -> list[list[Tensor]]:
    """All-gather tensors whose first dimension differs between ranks.

    Returns, for each input tensor, the list of every rank's tensor (trimmed to its true length).
    ``all_gather`` needs equal shapes, so lengths are exchanged first and rows zero-padded.
    """
    world = dist.get_world_size()
    device = tensors[0].device
    length = torch.tensor([tensors[0].shape[0]], dtype=torch.int64, device=device)
    lengths = [torch.zeros_like(length) for _ in range(world)]
    dist.all_gather(lengths, length)
    sizes = [int(n) for n in lengths]
    longest = max(sizes)
    out: list[list[Tensor]] = []
    for t in tensors:
        padded = t.new_zeros((longest, *t.shape[1:]))
        padded[: t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in range(world)]
        dist.all_gather(parts, padded.contiguous())
        out.append([p[:n] for p, n in zip(parts, sizes)])
    return out
