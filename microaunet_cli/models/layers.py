"""Blocks and the U-shaped forward pass shared by the teacher and the student."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.errors import MicroAUNetError

DEFAULT_C_LIST = (8, 16, 24, 32, 48, 64)
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
        self.norm = nn.GroupNorm(4, c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.norm(self.depthwise(x)))


class UNetBase(nn.Module):
    """The U-shape both networks share; subclasses only build the blocks.

    Subclasses set ``encoder`` (6 blocks), ``encoder_norms`` (5), ``decoder`` (5 blocks),
    ``decoder_norms`` (5), ``bridge`` (a module taking and returning the five skips, or None)
    and ``head`` (1×1 conv to ``num_classes``).

    ``forward(x)`` returns logits ``B×num_classes×H×W``. ``forward(x, return_features=True)``
    returns ``(logits, skips, decoder_feature)`` where ``skips`` are the five encoder outputs
    ``t1..t5`` taken before the bridge (strides 2..32) and ``decoder_feature`` is the last decoder
    stage's output (stride 2); the exported graph is that of ``forward(x)``.
    """

    encoder: nn.ModuleList
    encoder_norms: nn.ModuleList
    decoder: nn.ModuleList
    decoder_norms: nn.ModuleList
    bridge: nn.Module | None
    head: nn.Module
    # Encoder stages whose block already halves the resolution (a strided stem): no max-pool after.
    strided_stages: frozenset[int] = frozenset()

    def __init__(self, c_list: tuple[int, ...], num_classes: int, input_channels: int) -> None:
        super().__init__()
        if len(c_list) != 6:
            raise ValueError(f"c_list needs six channel widths, got {list(c_list)}")
        self.c_list = tuple(int(c) for c in c_list)
        self.num_classes = num_classes
        self.input_channels = input_channels

    def forward(self, x: torch.Tensor, return_features: bool = False):
        check_input(x, self.input_channels)
        out = x
        skips = []
        for i, (block, norm) in enumerate(zip(self.encoder[:5], self.encoder_norms)):
            out = norm(block(out))
            if i not in self.strided_stages:
                out = F.max_pool2d(out, 2, 2)
            out = F.gelu(out)
            skips.append(out)
        out = F.gelu(self.encoder[5](out))
        bridged = self.bridge(*skips) if self.bridge is not None else skips
        for i, (block, norm) in enumerate(zip(self.decoder, self.decoder_norms)):
            out = norm(block(out))
            if i > 0:  # the first decoder stage stays at stride 32
                out = F.interpolate(out, scale_factor=2.0, mode="bilinear", align_corners=True)
            out = F.gelu(out) + bridged[4 - i]
        logits = F.interpolate(self.head(out), scale_factor=2.0, mode="bilinear", align_corners=True)
        if return_features:
            return logits, tuple(skips), out
        return logits


def encoder_norms(c_list: tuple[int, ...]) -> nn.ModuleList:
    """GroupNorm(4) after each of the five pooled encoder stages."""
    return nn.ModuleList(nn.GroupNorm(4, c) for c in c_list[:5])


def decoder_norms(c_list: tuple[int, ...]) -> nn.ModuleList:
    """GroupNorm(4) after each decoder stage, widths c4 down to c0."""
    return nn.ModuleList(nn.GroupNorm(4, c) for c in reversed(c_list[:5]))


def check_input(x: torch.Tensor, channels: int) -> None:
    if torch.jit.is_scripting() or torch.compiler.is_compiling():
        return
    if x.dim() != 4 or x.shape[1] != channels:
        raise InputShapeError(f"expected a B×{channels}×H×W image batch, got shape {tuple(x.shape)}")
    h, w = int(x.shape[2]), int(x.shape[3])
    if h % STRIDE or w % STRIDE:
        fit_h, fit_w = math.ceil(h / STRIDE) * STRIDE, math.ceil(w / STRIDE) * STRIDE
        raise InputShapeError(f"input height and width must be multiples of {STRIDE}, got {h}×{w}: "
                              f"pad or resize to {fit_h}×{fit_w}")


def init_malunet_style(module: nn.Module) -> None:
    """MALUNet's initialisation: trunc-normal linears, He-normal convs by fan-out, zero biases."""
    if isinstance(module, nn.Linear):
        nn.init.trunc_normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv1d):
        n = module.kernel_size[0] * module.out_channels
        module.weight.data.normal_(0, math.sqrt(2.0 / n))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Conv2d):
        fan_out = module.kernel_size[0] * module.kernel_size[1] * module.out_channels // module.groups
        module.weight.data.normal_(0, math.sqrt(2.0 / fan_out))
        if module.bias is not None:
            nn.init.zeros_(module.bias)
