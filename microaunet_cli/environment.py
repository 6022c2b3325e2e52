"""Where a run or a measurement happened: versions, machine, device and threads.

One description, with one set of key names, for a training run's ``env.json`` and a benchmark
report: numbers mean little without it, and two vocabularies for the same facts cannot be compared.
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import socket
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import torch

from microaunet_cli.version import __version__


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _package_version(*names: str) -> str | None:
    """The first installed of ``names`` (a package may ship under several names)."""
    for name in names:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


def _visible_cores() -> int | None:
    # The cores this process may run on (a container or taskset can allow fewer than the machine has).
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def _git_revision() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            check=False,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def describe_environment(device: torch.device, **extra: Any) -> dict[str, Any]:
    """The environment on ``device``; ``extra`` adds what only the caller knows (e.g. the world size)."""
    env: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "toolkit_version": __version__,
        "git_revision": _git_revision(),
        "python_version": platform.python_version(),
        "torch_version": torch.__version__,
        "torchvision_version": _package_version("torchvision"),
        "numpy_version": np.__version__,
        "onnxruntime_version": _package_version("onnxruntime", "onnxruntime-gpu"),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_cores_visible": _visible_cores(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_interop_threads": torch.get_num_interop_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(
            device_name=props.name,
            cuda_version=torch.version.cuda,
            gpu_memory_gb=round(props.total_memory / 2**30, 1),
            compute_capability=f"{props.major}.{props.minor}",
        )
    else:
        env["device_name"] = env["cpu"]
    return {**env, **extra}
