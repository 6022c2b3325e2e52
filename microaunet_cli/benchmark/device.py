"""Which device to measure on, and how to wait for it (timings are wrong without the wait)."""

from __future__ import annotations

from collections.abc import Callable

import torch

from microaunet_cli.errors import ConfigError


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"--device {name} asked for CUDA but no CUDA GPU is visible; use --device cpu")
        return torch.device("cuda", device.index if device.index is not None else torch.cuda.current_device())
    if device.type != "cpu":
        raise ConfigError(f"--device {name}: benchmarks run on cpu or cuda only")
    return device


def synchronizer(device: torch.device) -> Callable[[], None]:
    """A function that returns once all queued work on ``device`` is done.

    CUDA kernels run asynchronously: without this, a timer measures only the launch.
    """
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
