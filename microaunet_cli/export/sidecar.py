"""The JSON written beside an exported file: everything needed to feed it and read its output.

``predict --onnx`` reads ``input_size``, ``mean``, ``std``, ``threshold`` and ``output`` from it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from microaunet_cli.checkpoints import TrainedModel
from microaunet_cli.export.formats import INPUT_NAME, OUTPUT_NAME, Written
from microaunet_cli.export.parity import Parity
from microaunet_cli.inference.resize import THRESHOLD
from microaunet_cli.version import __version__


def build_sidecar(
    *,
    fmt: str,
    out: Path,
    model_name: str,
    size: tuple[int, int],
    channels: int,
    mean: Sequence[float],
    std: Sequence[float],
    written: Written,
    parity: Sequence[Parity],
    checkpoint: Path,
    trained: TrainedModel,
) -> dict[str, Any]:
    return {
        "format": fmt,
        "file": out.name,
        "model": model_name,
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_size": list(size),  # [H, W]
        "channels": channels,
        "layout": "NCHW float32, RGB, batch axis dynamic",
        "mean": [float(v) for v in mean],
        "std": [float(v) for v in std],
        "normalization": "x = (rgb / 255 - mean) / std, per channel",
        "threshold": THRESHOLD,
        "output": "logits",
        "postprocess": "apply sigmoid, then mask = probability > threshold",
        "opset": written.opset,
        "exporter": written.exporter,
        "parity": {
            "reference": "eager PyTorch fp32 on CPU, image-like inputs",
            "max_abs_diff_probability": max(p.max_abs_diff for p in parity),
            "min_dice": min(p.dice for p in parity),
            "per_batch": [p.as_dict() for p in parity],
        },
        "source_checkpoint": str(checkpoint.resolve()),
        "checkpoint_epoch": trained.epoch,
        "dataset": trained.dataset,
        "toolkit_version": __version__,
        "torch_version": torch.__version__,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
