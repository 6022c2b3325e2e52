"""ONNX Runtime for every stage: the optional import, provider choice, session creation, sidecar path.

Export checks its files with it, ``predict --onnx`` and ``evaluate`` run them, the benchmark times them.
It sits below the stages (it imports none of them), so each can use it without an import cycle.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

from microaunet_cli.errors import ConfigError

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'microaunet-cli[export]'"
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or fail with the command that installs it."""
    try:
        return __import__(module)
    except ImportError:
        raise ConfigError(
            f"{purpose} needs the '{module}' package, which is not installed: {INSTALL_HINT}"
        ) from None


def onnxruntime(purpose: str = "checking an ONNX export") -> ModuleType:
    return require("onnxruntime", purpose)


def onnx(purpose: str = "exporting to ONNX") -> ModuleType:
    # The dynamo exporter also builds its graph with onnxscript.
    require("onnxscript", purpose)
    return require("onnx", purpose)


def sidecar_path(graph: Path) -> Path:
    """The JSON ``microaunet export`` writes beside an exported file (``best.onnx`` -> ``best.onnx.json``)."""
    return Path(str(graph) + ".json")


def providers(device: str, *, strict: bool = False) -> list[str]:
    """Execution providers for a device name ("cpu", "cuda", "cuda:1", "auto"), CPU always last.

    Without a CUDA provider a CUDA request runs on the CPU with a warning, or fails when ``strict``
    (the benchmark must not time the CPU under a GPU label).
    """
    ort = onnxruntime()
    wants_gpu = device.startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if wants_gpu and CUDA in ort.get_available_providers():
        return [CUDA, CPU]
    if device.startswith("cuda"):
        if strict:
            raise ConfigError("this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu)")
        log.warning("onnxruntime has no CUDA provider here; running %s on the CPU", device)
    return [CPU]


def session(path: Path, threads: int | None = None, providers: list[str] | None = None) -> Any:
    """An onnxruntime session; spinning is off so idle ORT threads do not steal cores from others."""
    ort = onnxruntime()
    opts = ort.SessionOptions()
    if threads is not None:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), sess_options=opts, providers=providers or [CPU])
