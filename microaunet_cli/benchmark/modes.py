"""The ways a network can run, each ready to time: eager fp32, bf16 autocast, torch.compile, ONNX Runtime.

A mode that cannot run here raises ``ModeUnavailable`` with the reason; the report shows it.
"""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from microaunet_cli import onnx_runtime
from microaunet_cli.errors import ConfigError, MicroAUNetError

DESCRIPTIONS = {
    "eager": "eager PyTorch, fp32, NCHW",
    "bf16": "eager PyTorch under torch.autocast(bfloat16); weights stay fp32",
    "compile": "torch.compile(model, dynamic=False), inductor backend, one specialisation per batch size",
    "onnx": "ONNX Runtime on an export of the same weights (opset 18, graph optimisations on, thread "
    "spinning off); on CUDA the input is a host array, so copies to and from the GPU are included",
    "onnx-int8": "ONNX Runtime on the same export after static INT8 quantisation (QDQ, int8 weights per "
    "channel, uint8 activations; calibrated on synthetic image-like inputs, which sets the "
    "ranges but not the work done); CPU execution provider",
}


@dataclass(frozen=True)
class Target:
    """Where and at what input size the runner will be timed."""

    device: torch.device
    size: tuple[int, int]  # (H, W)
    threads: int  # CPU threads, shared by torch and ONNX Runtime


class ModeUnavailable(Exception):
    """This mode cannot run on this machine; the message says why."""


@dataclass
class NetworkInMode:
    """A network in one mode. ``run(prepare(x))`` is what gets timed."""

    mode: str
    run: Callable[[Any], Any]
    prepare: Callable[[torch.Tensor], Any] = lambda x: x
    # Why peak memory cannot be measured for this runner; None when it can.
    memory_note: str | None = None
    note: str = ""
    setup_s: float = 0.0


def _eager(model: nn.Module, target: Target) -> NetworkInMode:
    return NetworkInMode("eager", model)


def _bf16(model: nn.Module, target: Target) -> NetworkInMode:
    device = target.device
    if device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ModeUnavailable(f"{torch.cuda.get_device_name(device)} has no bfloat16 support")

    def run(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16):
            return model(x)

    return NetworkInMode("bf16", run)


def _compiler_missing(device: torch.device) -> str | None:
    if device.type == "cuda":
        if importlib.util.find_spec("triton") is None:
            return "torch.compile on CUDA needs triton (pip install triton)"
        return None
    candidates = [os.environ.get("CXX"), "g++", "clang++", "c++"]
    if not any(c and shutil.which(c) for c in candidates):
        return "torch.compile on CPU needs a C++ compiler (g++ or clang++) on PATH"
    return None


def _compile(model: nn.Module, target: Target) -> NetworkInMode:
    device = target.device
    missing = _compiler_missing(device)
    if missing:
        raise ModeUnavailable(missing)
    # Compilation happens lazily at the first call; the warm-up reports its time as "first call".
    compiled = torch.compile(model, dynamic=False)
    note = "compilation time is the first call's"
    memory_note = None if device.type == "cuda" else "compiled CPU kernels allocate outside the dispatcher"
    return NetworkInMode("compile", compiled, memory_note=memory_note, note=note)


def _onnx_tools(purpose: str) -> Any:
    try:
        return onnx_runtime.onnxruntime(purpose)
    except MicroAUNetError as exc:
        raise ModeUnavailable(str(exc)) from None


def _export(model: nn.Module, target: Target, path: Path) -> str:
    """Write ``model`` (already the inference form) as ONNX with a dynamic batch; returns the exporter."""
    from microaunet_cli.export.formats import write_onnx

    cpu_model = copy.deepcopy(model).float().cpu().eval()
    example = torch.randn(2, 3, *target.size)  # batch 2: a batch of 1 would be frozen in
    return write_onnx(cpu_model, example, path, opset=18, exporter="auto").exporter


def _session_runner(
    mode: str, path: Path, target: Target, providers: list[str], note: str, start: float
) -> NetworkInMode:
    sess = onnx_runtime.session(path, threads=target.threads, providers=providers)
    name = sess.get_inputs()[0].name
    return NetworkInMode(
        mode,
        run=lambda arr: sess.run(None, {name: arr}),
        prepare=lambda x: x.detach().cpu().numpy(),
        memory_note="ONNX Runtime allocates outside PyTorch",
        note=f"{note}, {sess.get_providers()[0]}",
        setup_s=time.perf_counter() - start,
    )


def _onnx(model: nn.Module, target: Target) -> NetworkInMode:
    _onnx_tools("the onnx benchmark mode")
    try:
        providers = onnx_runtime.providers(str(target.device), strict=True)
    except ConfigError as exc:
        raise ModeUnavailable(str(exc)) from None
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="microaunet-bench-") as tmp:
        path = Path(tmp) / "model.onnx"
        exporter = _export(model, target, path)
        return _session_runner("onnx", path, target, providers, f"{exporter} exporter", start)


# A registry network carries no statistics: its INT8 ranges are calibrated on synthetic images normalised
# as colonoscopy frames are (Kvasir-SEG's training split, as prepare-data measured it at 128 px).
CALIBRATION_MEAN = (0.5576, 0.3226, 0.2370)
CALIBRATION_STD = (0.3157, 0.2184, 0.1837)


def _onnx_int8(model: nn.Module, target: Target) -> NetworkInMode:
    _onnx_tools("the onnx-int8 benchmark mode")
    if target.device.type != "cpu":
        raise ModeUnavailable("INT8 quantisation targets CPU deployment: run onnx-int8 with --device cpu")
    from microaunet_cli.export import int8
    from microaunet_cli.export.parity import image_like_batch

    try:
        int8.quantization_module()
    except MicroAUNetError as exc:
        raise ModeUnavailable(str(exc)) from None
    start = time.perf_counter()
    calibration = [
        image_like_batch(4, target.size, CALIBRATION_MEAN, CALIBRATION_STD, seed=s).numpy() for s in (0, 1)
    ]
    with tempfile.TemporaryDirectory(prefix="microaunet-bench-") as tmp:
        fp32, quantized = Path(tmp) / "model.onnx", Path(tmp) / "model.int8.onnx"
        exporter = _export(model, target, fp32)
        int8.quantize(fp32, quantized, calibration)
        return _session_runner(
            "onnx-int8", quantized, target, [onnx_runtime.CPU], f"{exporter} exporter, static INT8", start
        )


BUILDERS: dict[str, Callable[[nn.Module, Target], NetworkInMode]] = {
    "eager": _eager,
    "bf16": _bf16,
    "compile": _compile,
    "onnx": _onnx,
    "onnx-int8": _onnx_int8,
}


def build_mode(mode: str, model: nn.Module, target: Target) -> NetworkInMode:
    """``model`` (on the target device, eval mode) wrapped for ``mode``; raises ModeUnavailable."""
    return BUILDERS[mode](model, target)
