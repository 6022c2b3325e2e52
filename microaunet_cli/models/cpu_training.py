"""Faster CPU training paths for the teacher's layers: the same functions, parameters and state dicts.

Training on a CPU runs channels-last float32 maps (docs/training.md). On those, two stock kernels are
slow for this network's small channel counts, and each layer here replaces one where it is:

- ``GroupNorm``: PyTorch's backward of a channels-last GroupNorm is several times slower than its
  forward (2.4 ms against 0.5 ms on the teacher's 8×8×128×128 first map, two threads). In
  channels-last memory a map is ``N×(H·W)×C``, so the backward needs two sums over the pixels (of
  ``dy`` and of ``dy·x``), a few ``N×C`` coefficients and one fused pass ``dx = a·dy + b·x + c``. The
  pixels are folded into rows of about 128 values, so that each pass runs along long contiguous rows
  instead of rows of ``C`` values. The forward is PyTorch's (it also gives the mean and 1/std).
- ``PointwiseConv``: a 1×1 convolution of a channels-last map is a matrix product of its
  ``(N·H·W)×C`` rows with the weight; ``F.linear`` does it, with its backward, faster than oneDNN's
  convolution for these maps (0.11 against 0.24 ms at 48→64 channels on 4×4 maps, forward and
  backward, batch 8, two threads of a 2-core CPU, nothing else running).

Anywhere else (inference, export, tracing, scripting, compilation, contiguous maps, other devices or
dtypes) each layer is the ``nn`` module it extends, running its stock forward: the inference graphs,
the exported files and every latency figure are unchanged. Set ``ENABLED = False`` to take the stock
path everywhere (the tests compare the two).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd.function import once_differentiable

ENABLED = True
# Per-sample size (C·H·W) from which GroupNorm's folded backward is used: measured faster from the
# teacher's 16×64×64 maps up, slower (fixed per-op costs) from 24×32×32 down (two threads, batch 8).
MIN_FOLDED = 1 << 15
# Length of the rows the pixels are folded into.
ROW = 128

_without_gradients = threading.local()


@contextlib.contextmanager
def also_without_gradients() -> Iterator[None]:
    """Inside this block the training paths run with gradients off too: for a frozen teacher's forward
    during distillation, which is part of training but runs under ``torch.no_grad``."""
    before = getattr(_without_gradients, "on", False)
    _without_gradients.on = True
    try:
        yield
    finally:
        _without_gradients.on = before


def takes_training_path(x: torch.Tensor) -> bool:
    """Whether a layer here runs its CPU training path on ``x``: a channels-last float32 CPU map, with
    gradients on, outside tracing, scripting, export and compilation."""
    if not ENABLED or not (torch.is_grad_enabled() or getattr(_without_gradients, "on", False)):
        return False
    # ONNX export traces (TorchScript exporter) or compiles (torch.export): both covered here.
    if torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling():
        return False
    if x.dim() != 4 or x.device.type != "cpu" or x.dtype != torch.float32:
        return False
    # A map with one channel or one pixel is both layouts at once: nothing to gain.
    return x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous()


def fold_factor(pixels: int, channels: int) -> int:
    """How many pixels go in one row: about ``ROW // channels``, and dividing ``pixels``."""
    k = max(1, ROW // channels)
    while pixels % k:
        k -= 1
    return k


class _FoldedGroupNorm(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, groups: int, eps: float):
        n, c, h, w = x.shape
        y, mean, rstd = torch.native_group_norm(x, weight, bias, n, c, h * w, groups, eps)
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.groups = groups
        return y

    @staticmethod
    @once_differentiable
    def backward(ctx, dy):
        x, weight, mean, rstd = ctx.saved_tensors
        n, c, h, w = x.shape
        g = ctx.groups
        cg = c // g
        k = fold_factor(h * w, c)
        rows = (n, h * w // k, k * c)
        xv = x.permute(0, 2, 3, 1).reshape(rows)  # a view: x is channels-last
        dyv = dy.permute(0, 2, 3, 1).reshape(rows)  # a copy only if dy is not channels-last
        sum_dy = dyv.sum(1).view(n, k, c).sum(1).view(n, g, cg)  # Σ over pixels, per sample and channel
        sum_dyx = (dyv * xv).sum(1).view(n, k, c).sum(1).view(n, g, cg)
        mu, rs = mean.view(n, g, 1), rstd.view(n, g, 1)
        gamma = weight.view(1, g, cg)
        count = h * w * cg
        # dx = rs·γ·dy + b·x + c, with b and c constant over a group (PyTorch's own formulation).
        db = (sum_dy * gamma).sum(2, keepdim=True)
        ds = (sum_dyx * gamma).sum(2, keepdim=True)
        coef_x = (db * mu - ds) * rs.pow(3) / count
        coef_1 = -coef_x * mu - db * rs / count

        def per_row(t: torch.Tensor) -> torch.Tensor:  # N×G×{1,cg} -> N×1×(k·C): one value per slot
            return t.expand(n, g, cg).reshape(n, 1, c).repeat(1, 1, k)

        dx = torch.addcmul(per_row(coef_1), xv, per_row(coef_x)).addcmul_(dyv, per_row(gamma * rs))
        dx = dx.view(n, h, w, c).permute(0, 3, 1, 2)  # channels-last, like x
        d_weight = ((sum_dyx - mu * sum_dy) * rs).sum(0).reshape(c)
        d_bias = sum_dy.sum(0).reshape(c)
        return dx, d_weight, d_bias, None, None


class GroupNorm(nn.GroupNorm):
    """``nn.GroupNorm`` whose backward is folded on large channels-last CPU training maps."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.affine and x.requires_grad and x[0].numel() >= MIN_FOLDED and takes_training_path(x):
            return _FoldedGroupNorm.apply(x, self.weight, self.bias, self.num_groups, self.eps)
        return F.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)


class PointwiseConv(nn.Conv2d):
    """A 1×1 ``nn.Conv2d`` run as a matrix product on channels-last CPU training maps."""

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True) -> None:
        super().__init__(in_channels, out_channels, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if takes_training_path(x):
            y = F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias)
            return y.permute(0, 3, 1, 2)  # channels-last
        return super().forward(x)
