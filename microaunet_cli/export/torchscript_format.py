"""TorchScript by tracing (what C++ libtorch loads). PyTorch deprecates it; kept for old stacks."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from microaunet_cli.export.formats import Written, temp_output
from microaunet_cli.export.parity import Predict


def write(
    model: nn.Module, example: torch.Tensor, path: Path, opset: int = 0, exporter: str = "auto"
) -> Written:
    # Tracing, not scripting: forward() has an optional feature output scripting cannot type. Traced
    # shapes stay symbolic for the batch axis; the parity check at two batch sizes proves it.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # deprecation notice and the traced input-shape check
        traced = torch.jit.trace(model, example, check_trace=False)
        with temp_output(path) as tmp:
            torch.jit.save(traced, str(tmp))
    return Written(exporter="torch.jit.trace")


def load(path: Path) -> Predict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        module = torch.jit.load(str(path), map_location="cpu").eval()
    return module
