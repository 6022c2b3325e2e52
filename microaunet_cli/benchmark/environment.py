"""Where the numbers were measured: recorded with every report, since they mean nothing without it."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

import torch

from microaunet_cli.version import __version__


def _cpu_name() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def _visible_cores() -> int | None:
    # The cores this process may run on (a container or taskset can allow fewer than the machine has).
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def describe_environment(device: torch.device) -> dict[str, Any]:
    env: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "toolkit_version": __version__,
        "torch_version": torch.__version__,
        "onnxruntime_version": _package_version("onnxruntime") or _package_version("onnxruntime-gpu"),
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "device": str(device),
        "cpu": _cpu_name(),
        "cpu_cores_visible": _visible_cores(),
        "cpu_threads": torch.get_num_threads(),
        "cpu_interop_threads": torch.get_num_interop_threads(),
    }
    if device.type == "cuda":
        props = torch.cuda.get_device_properties(device)
        env.update(device_name=props.name, cuda_version=torch.version.cuda,
                   gpu_memory_gb=round(props.total_memory / 2**30, 1),
                   compute_capability=f"{props.major}.{props.minor}")
    else:
        env["device_name"] = env["cpu"]
    return env
