"""``UNetBase``: the U-shape the teacher and the students share, in the style of
segmentation_models_pytorch: the base builds the norms, the head and the initialisation and runs the
forward pass; a subclass gives only its encoder, decoder and bridge.

Distillation's needs of a network are part of this interface, and ``registry.register_model``
checks them on every network it registers (one that does not build on this base included):

- ``c_list``: the six channel widths, so distillation can size its feature adapters;
- ``forward(x)`` returns logits ``B×num_classes×H×W``;
- ``forward(x, return_features=True)`` returns ``(logits, skips, decoder_feature)``: the five encoder
  outputs ``t1..t5`` at strides 2..32 with ``c_list[:5]`` channels, and the last decoder stage's
  output (stride 2, ``c_list[0]`` channels). The exported graph is that of ``forward(x)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.models.cpu_training import GroupNorm, PointwiseConv
from microaunet_cli.models.layers import check_input

DEFAULT_C_LIST = (8, 16, 24, 32, 48, 64)


def six_widths(c_list: Sequence[int]) -> tuple[int, ...]:
    """``c_list`` as six ints: the encoder has six stages, whatever the network."""
    if len(c_list) != 6:
        raise ValueError(f"c_list needs six channel widths, got {list(c_list)}")
    return tuple(int(v) for v in c_list)


class UNetBase(nn.Module):
    """Six encoder stages (five pooled, with their GroupNorms), an optional bridge over the five skips,
    five decoder stages (with their GroupNorms) and a 1×1 head, initialised MALUNet's way."""

    # Encoder stages whose block already halves the resolution (a strided stem): no max-pool after.
    strided_stages: frozenset[int] = frozenset()

    def __init__(
        self,
        c_list: Sequence[int] = DEFAULT_C_LIST,
        bridge: bool = True,
        num_classes: int = 1,
        input_channels: int = 3,
    ) -> None:
        super().__init__()
        c = self.c_list = six_widths(c_list)
        self.num_classes = num_classes
        self.input_channels = input_channels
        # Built in this order on purpose: the default initialisers draw from the random generator, so
        # the order fixes which weights a seed gives (tests/test_models.py pins the outputs).
        self.encoder = self.build_encoder(c, input_channels)
        self.encoder_norms = nn.ModuleList(GroupNorm(4, w) for w in c[:5])
        self.bridge = self.build_bridge(c[:5]) if bridge else None
        self.decoder = self.build_decoder(c)
        self.decoder_norms = nn.ModuleList(GroupNorm(4, w) for w in reversed(c[:5]))
        self.head = PointwiseConv(c[0], num_classes)
        self.apply(init_malunet_style)
        self.after_init()

    def build_encoder(self, c: tuple[int, ...], input_channels: int) -> nn.ModuleList:
        """Six blocks: stage i maps ``c[i-1]`` (the image for i = 0) to ``c[i]`` channels."""
        raise NotImplementedError

    def build_decoder(self, c: tuple[int, ...]) -> nn.ModuleList:
        """Five blocks, from ``c[5]`` down to ``c[0]`` channels."""
        raise NotImplementedError

    def build_bridge(self, skip_channels: tuple[int, ...]) -> nn.Module:
        """A module taking the five skips (as arguments) and returning five, of the same shapes."""
        raise NotImplementedError

    def after_init(self) -> None:
        """Hook run after the generic initialisation, for weights that must keep a relation."""

    def deep_supervision_taps(self) -> list[tuple[nn.Module, int]]:
        """The decoder stages deep supervision reads, with their channels: the normalised outputs of
        decoder stages 2-4 (strides 32, 16 and 8, before their upsampling)."""
        c = self.c_list
        return [(self.decoder_norms[1], c[3]), (self.decoder_norms[2], c[2]), (self.decoder_norms[3], c[1])]

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
