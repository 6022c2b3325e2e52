"""FLOPs and MACs of one forward pass, counted by ``torch.utils.flop_counter``."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

CONVENTION = (
    "FLOPs counted by torch.utils.flop_counter.FlopCounterMode on one fp32 forward pass at 1×3×H×W: "
    "2 FLOPs per multiply-accumulate of convolutions (1-D and 2-D, bias excluded) and matrix products "
    "(linear/mm/addmm/bmm, bias excluded). MACs = FLOPs / 2."
)
NOT_COUNTED = (
    "Not counted: normalisation (GroupNorm, BatchNorm), activations (GELU, ReLU, sigmoid, softmax), "
    "pooling, interpolation, padding, elementwise add/mul and reductions (mean, max). Counters that "
    "include them (thop, fvcore-style) report more MACs for the same network."
)


@dataclass(frozen=True)
class FlopCount:
    flops: int
    by_op: dict[str, int]

    @property
    def macs(self) -> int:
        return self.flops // 2


def count_flops(model: nn.Module, x: torch.Tensor) -> FlopCount:
    """FLOPs of ``model(x)``; the values in ``x`` do not matter, only its shape."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        model(x)
    by_op = {str(op): int(n) for op, n in counter.get_flop_counts().get("Global", {}).items()}
    return FlopCount(int(counter.get_total_flops()), by_op)
