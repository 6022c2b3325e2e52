"""Which operators take the time: ``torch.profiler`` self time per operator, largest first.

At these sizes the answer explains the speed better than FLOPs do: the networks are bound by the
memory traffic of full-resolution feature maps (norms, activations, elementwise ops), not arithmetic.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.profiler import ProfilerActivity, profile


def top_operators(
    fn: Callable[[Any], Any], x: Any, device: torch.device, top: int, runs: int = 5
) -> list[dict[str, Any]]:
    """The ``top`` operators by self time per forward (ms), with calls per forward and share of total."""
    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    with torch.inference_mode(), profile(activities=activities) as prof:
        for _ in range(runs):
            fn(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = [e for e in prof.key_averages() if getattr(e, attr) > 0]
    total = sum(getattr(e, attr) for e in events) or 1.0
    events.sort(key=lambda e: getattr(e, attr), reverse=True)
    return [
        {
            "op": e.key,
            "self_ms": getattr(e, attr) / runs / 1000.0,
            "calls": e.count // runs,
            "share": getattr(e, attr) / total,
        }
        for e in events[:top]
    ]
