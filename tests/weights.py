"""Networks with every weight drawn at random, for output pins that see what freshly initialised
weights hide: at initialisation a spatial gate's score is exactly 0, BatchNorm is the identity and
LSCAB's α and β are equal, so a wrong activation, fold or operand order can leave the output unchanged."""

from __future__ import annotations

import math

import torch
from torch import nn


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """Every parameter and BatchNorm statistic drawn from a seeded generator, in eval mode: kernels
    ~ N(0, 1/fan-in), norm gains around 1, biases, shifts and scalar gates (α, β) spread around 0."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = torch.randn(p.shape, generator=g)
            if p.ndim >= 2:
                p.copy_(noise / math.sqrt(p[0].numel()))
            elif p.ndim == 1 and name.endswith("weight"):
                p.copy_(1 + 0.3 * noise)
            else:
                p.copy_(0.5 * noise)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(0.2 * torch.randn(m.num_features, generator=g))
                m.running_var.copy_(0.5 + torch.rand(m.num_features, generator=g))
    return model.eval()
