"""Wall-clock timing, interleaved across everything measured so that machine noise hits all equally.

Each repeat runs every (model, mode) once in turn — A, B, A, B, ... — instead of all of A's repeats
then all of B's: a background job or a thermal throttle then slows every entry, not just one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

CONVENTION = (
    "Latency: wall-clock time of one batch-1 forward under torch.inference_mode, after warm-up calls, "
    "p50/p90 over the repeats; on CUDA the device is synchronised before and after each call "
    "(cudnn.benchmark on). "
    "Throughput: batch size / median time of a batch-N forward. Models and modes are interleaved "
    "within each repeat (A, B, A, B, ...) so machine noise hits all of them equally."
)


@dataclass
class Timed:
    """One entry to time: a key, a function and its (prepared) input."""

    key: Any
    fn: Callable[[Any], Any]
    arg: Any


def warm_up(fn: Callable[[Any], Any], arg: Any, calls: int, sync: Callable[[], None]) -> float:
    """Run ``calls`` untimed calls; return the duration of the first (compilation shows up here)."""
    first = 0.0
    with torch.inference_mode():
        for i in range(calls):
            start = time.perf_counter()
            fn(arg)
            sync()
            if i == 0:
                first = time.perf_counter() - start
    return first


def time_interleaved(
    entries: Sequence[Timed], repeats: int, sync: Callable[[], None]
) -> dict[Any, list[float]]:
    """Seconds per call of every entry, ``repeats`` times each, interleaved."""
    samples: dict[Any, list[float]] = {e.key: [] for e in entries}
    with torch.inference_mode():
        for _ in range(repeats):
            for e in entries:
                sync()  # nothing queued from the previous entry may land in this one's time
                start = time.perf_counter()
                e.fn(e.arg)
                sync()
                samples[e.key].append(time.perf_counter() - start)
    return samples


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
