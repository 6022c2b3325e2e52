"""Batches of one split for one process: uint8 arrays held on the device when they fit, sharded
across distributed ranks, in an order fixed by (seed, epoch)."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

log = logging.getLogger(__name__)


class SplitFeed:
    """Yields ``(indices, images uint8 B×H×W×3, masks uint8 B×H×W)`` on the device."""

    def __init__(
        self, arrays: Any, device: torch.device, on_device: str = "auto", rank: int = 0, world_size: int = 1
    ) -> None:
        self.arrays = arrays
        self.device = device
        self.rank, self.world_size = rank, world_size
        self.n = len(arrays)
        self.resident = self._fits(on_device)
        if self.resident:
            self.images, self.masks = arrays.to_tensors(device)
        log.debug(
            "split of %d images %s",
            self.n,
            "resident on " + str(device) if self.resident else "memory-mapped",
        )

    def _fits(self, on_device: str) -> bool:
        if on_device == "never":
            return False
        return on_device == "always" or self.device.type != "cuda" or self.arrays.fits_on(self.device)

    def shard(self, order: torch.Tensor) -> torch.Tensor:
        """This rank's share of ``order``, padded by wrapping so every rank gets as many samples."""
        if self.world_size == 1:
            return order
        per_rank = math.ceil(len(order) / self.world_size)
        padded = torch.cat([order, order[: per_rank * self.world_size - len(order)]])
        return padded[self.rank :: self.world_size]

    def order(self, epoch: int, seed: int, shuffle: bool) -> torch.Tensor:
        if not shuffle:
            return self.shard(torch.arange(self.n))
        g = torch.Generator()
        g.manual_seed(seed * 7919 + epoch)
        return self.shard(torch.randperm(self.n, generator=g))

    def num_batches(self, batch_size: int) -> int:
        per_rank = math.ceil(self.n / self.world_size)
        return math.ceil(per_rank / batch_size)

    def batches(self, order: torch.Tensor, batch_size: int, start: int = 0) -> Iterator[tuple]:
        """Batches of ``order`` from batch number ``start`` on (resume in mid-epoch)."""
        # One copy of the epoch's order to the device, not one (stalling) copy per batch.
        dev_order = order.to(self.device) if self.resident else order
        for b in range(start, math.ceil(len(order) / batch_size)):
            window = slice(b * batch_size, (b + 1) * batch_size)
            yield b, order[window], *self._gather(order[window], dev_order[window])

    def _gather(self, idx: torch.Tensor, dev_idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.resident:
            return self.images[dev_idx], self.masks[dev_idx]
        sel = np.sort(idx.numpy())  # memory-mapped reads are faster in file order
        inverse = np.argsort(np.argsort(idx.numpy()))
        images = torch.from_numpy(np.ascontiguousarray(self.arrays.images[sel][inverse]))
        masks = torch.from_numpy(np.ascontiguousarray(self.arrays.masks[sel][inverse]))
        pin = self.device.type == "cuda"
        if pin:
            images, masks = images.pin_memory(), masks.pin_memory()
        return images.to(self.device, non_blocking=pin), masks.to(self.device, non_blocking=pin)
