"""Peak memory of one forward pass, above what was allocated before it (weights and input excluded).

CUDA: the caching allocator's own high-water mark. CPU: PyTorch has no CPU allocator statistics, so
a dispatch mode tracks the storages that the forward pass creates, and when each is freed; this sees
every tensor made by eager PyTorch operators (fp32 and autocast) but not buffers that compiled CPU
kernels or other runtimes allocate themselves.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

CONVENTION = (
    "Peak memory: the most bytes allocated at once during one forward pass at the throughput batch, "
    "above what was allocated before it (weights and input excluded). CUDA: "
    "torch.cuda.max_memory_allocated; CPU: live tensor storages created by PyTorch operators. "
    "Not measured for compiled code on CPU nor for ONNX Runtime (they allocate outside PyTorch)."
)


@dataclass(frozen=True)
class MemoryStats:
    peak_bytes: int
    # Bytes of every tensor the pass created (CPU tracking only): a floor on its memory traffic.
    written_bytes: int | None = None


class _StorageTracker(TorchDispatchMode):
    """Counts bytes of storages created under it and still alive; remembers the highest count."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self.written = 0
        self._seen: set[int] = set()

    def _freed(self, key: int, nbytes: int) -> None:
        self.live -= nbytes
        self._seen.discard(key)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self._track(t.untyped_storage())
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        key = storage._cdata  # identity of the underlying storage; views share it
        if key in self._seen:
            return
        nbytes = storage.nbytes()
        self._seen.add(key)
        self.live += nbytes
        self.written += nbytes
        self.peak = max(self.peak, self.live)
        weakref.finalize(storage, self._freed, key, nbytes)


def forward_memory(fn: Callable[[Any], Any], x: Any, device: torch.device) -> MemoryStats:
    """Peak extra memory of ``fn(x)``; on CPU also the bytes it wrote."""
    if device.type == "cuda":
        return _cuda_peak(fn, x, device)
    tracker = _StorageTracker()
    with torch.inference_mode(), tracker:
        out = fn(x)
    del out
    return MemoryStats(tracker.peak, tracker.written)


def _cuda_peak(fn: Callable[[Any], Any], x: Any, device: torch.device) -> MemoryStats:
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device)
    with torch.inference_mode():
        out = fn(x)
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - base
    del out
    return MemoryStats(peak)
