"""A ``torch.export`` program (.pt2) with a dynamic batch axis: for AOTInductor and ExecuTorch."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from microaunet_cli.export.formats import Written, batch_dim, temp_output
from microaunet_cli.export.parity import Predict


def write(
    model: nn.Module, example: torch.Tensor, path: Path, opset: int = 0, exporter: str = "auto"
) -> Written:
    program = torch.export.export(model, (example,), dynamic_shapes=({0: batch_dim()},))
    with temp_output(path) as tmp:
        torch.export.save(program, str(tmp))
    return Written(exporter="torch.export")


def load(path: Path) -> Predict:
    return torch.export.load(str(path)).module()
