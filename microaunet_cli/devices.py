"""Device and precision choice, shared by every stage (training, evaluation, inference, benchmark)."""

from __future__ import annotations

import contextlib

import torch

from microaunet_cli.errors import ConfigError


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """``auto`` takes cuda, then mps, then cpu; an explicit device that is absent is an error."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", _local_gpu(local_rank))
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ConfigError(f"--device {name!r} is not a device; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {name} asked for CUDA but no CUDA GPU is visible; use --device cpu")
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", _local_gpu(local_rank))
    return device


def _local_gpu(local_rank: int) -> int:
    """The GPU of this process among those it sees: all of the node's (torchrun, plain srun), or only its
    own one when Slurm binds a GPU to each task (--gpus-per-task, --gpu-bind)."""
    return local_rank % torch.cuda.device_count()


def pick_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """auto: bf16 on GPUs that support it, off elsewhere (CPU autocast is slower than fp32 here)."""
    if mode == "off":
        return None
    if mode == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return None
    if mode == "fp16" and device.type == "cpu":
        raise ConfigError("--amp fp16 needs a GPU; use --amp bf16 or --amp off on the CPU")
    return torch.bfloat16 if mode == "bf16" else torch.float16


def autocast(device: torch.device | str, amp_dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Mixed precision in ``amp_dtype``, or plain float32 when it is None."""
    if amp_dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=amp_dtype)
