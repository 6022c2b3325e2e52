"""Blocks and checks shared by the networks (the U-shaped base is in ``models/base.py``)."""

from __future__ import annotations

import math

import torch
from torch import nn

from microaunet_cli.errors import MicroAUNetError
from microaunet_cli.models.cpu_training import GroupNorm, PointwiseConv

# Five max-pools: inputs must divide by 2**5.
STRIDE = 32


class InputShapeError(MicroAUNetError, ValueError):
    """The input tensor cannot go through the network as it is."""


def channel_pool(x: torch.Tensor) -> torch.Tensor:
    """Per-pixel mean and max over channels: ``B×2×H×W`` (input of the spatial attentions)."""
    return torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)


def global_descriptor(skips: tuple[torch.Tensor, ...]) -> torch.Tensor:
    """Global average of every skip, concatenated: ``B×1×sum(C)`` (input of the channel attentions)."""
    return torch.cat([t.mean(dim=(2, 3)) for t in skips], dim=1).unsqueeze(1)


class DWConv(nn.Module):
    """``DW(k)``: depthwise k×k conv -> GroupNorm(4) -> pointwise 1×1 conv."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(c_in, c_in, kernel_size, padding=kernel_size // 2, groups=c_in)
        self.norm = GroupNorm(4, c_in)
        self.pointwise = PointwiseConv(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)))


def check_input(x: torch.Tensor, channels: int) -> None:
    if torch.jit.is_scripting() or torch.compiler.is_compiling():
        return
    if x.dim() != 4 or x.shape[1] != channels:
        raise InputShapeError(f"expected a B×{channels}×H×W image batch, got shape {tuple(x.shape)}")
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % STRIDE or w % STRIDE:
        fit_h, fit_w = math.ceil(h / STRIDE) * STRIDE, math.ceil(w / STRIDE) * STRIDE
        raise InputShapeError(
            f"input height and width must be multiples of {STRIDE}, got {h}×{w}: "
            f"pad or resize to {fit_h}×{fit_w}"
        )
