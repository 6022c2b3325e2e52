"""Which device to measure on, and how to wait for it (timings are wrong without the wait)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from microaunet_cli.devices import pick_device
from microaunet_cli.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    """The shared device choice (devices.pick_device), limited to what the timers support (cpu and cuda)."""
    if name == "auto" and not torch.cuda.is_available():
        return torch.device("cpu")  # auto would pick mps, which the benchmark cannot time
    device = pick_device(name, torch.cuda.current_device() if torch.cuda.is_available() else 0)
    if device.type not in ("cpu", "cuda"):
        raise ConfigError(f"--device {name}: benchmarks run on cpu or cuda only")
    return device


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that returns once all queued work on ``device`` is done.

    CUDA kernels run asynchronously: without this, a timer measures only the launch.
    """
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
