"""Convolutions that train with BatchNorm (and extra branches) and fold into one conv for inference.

``fuse_modules(model)`` calls ``fuse()`` on every such block: afterwards each is a single
``nn.Conv2d`` with a bias, the same function in eval mode, with no BatchNorm left in the graph.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def fold_bn(
    weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.BatchNorm2d
) -> tuple[torch.Tensor, torch.Tensor]:
    """Weight and bias of ``bn(conv(x))`` as one conv, using the running statistics (eval mode)."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    base = bias if bias is not None else torch.zeros_like(bn.running_mean)
    return weight * scale.reshape(-1, 1, 1, 1), (base - bn.running_mean) * scale + bn.bias


class ConvBN(nn.Module):
    """k×k conv (no bias) -> BatchNorm; ``fuse()`` folds the norm into the conv."""

    def __init__(
        self, c_in: int, c_out: int, kernel_size: int = 1, stride: int = 1, dilation: int = 1, groups: int = 1
    ) -> None:
        super().__init__()
        padding = dilation * (kernel_size // 2)
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride, padding, dilation, groups, bias=False)
        self.bn: nn.Module = nn.BatchNorm2d(c_out)

    @classmethod
    def around(cls, conv: nn.Conv2d) -> ConvBN:
        """A ConvBN over a given conv (e.g. a ``DepthwiseScale``), drawing no other random weights."""
        block = cls.__new__(cls)
        nn.Module.__init__(block)
        block.conv = conv
        block.bn = nn.BatchNorm2d(conv.out_channels)
        return block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    @torch.no_grad()
    def fuse(self) -> None:
        if not isinstance(self.bn, nn.BatchNorm2d):
            return
        w, b = fold_bn(self.conv.weight, self.conv.bias, self.bn)
        c = self.conv
        fused = nn.Conv2d(
            c.in_channels, c.out_channels, c.kernel_size, c.stride, c.padding, c.dilation, c.groups, bias=True
        ).to(w.device, w.dtype)
        fused.weight.copy_(w)
        fused.bias.copy_(b)
        self.conv, self.bn = fused, nn.Identity()


class DepthwiseScale(nn.Conv2d):
    """A depthwise 1×1 conv without bias (stride s): each channel times its weight, every s-th pixel.

    The same parameters, state-dict keys and outputs as ``nn.Conv2d(c, c, 1, s, groups=c,
    bias=False)``, computed as one broadcast multiply. PyTorch runs a 1×1 grouped conv on one CPU
    thread at batch < 16 as one tiny conv per channel (hundreds of calls per training step of the
    default student); the multiply is a single op on any device and thread count.
    """

    def __init__(self, channels: int, stride: int = 1) -> None:
        super().__init__(channels, channels, 1, stride, groups=channels, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.stride[0]
        if s > 1:
            x = x[:, :, ::s, ::s]
        return x * self.weight.view(1, -1, 1, 1)


class RepDWConv(nn.Module):
    """Depthwise 3×3 conv (dilation d) trained as three branches, MobileOne-style, merged by ``fuse()``.

    Branches: 3×3 conv -> BN, 1×1 conv -> BN, and (stride 1) BN alone. Each is linear in the input,
    so their sum is one depthwise 3×3 conv whose centre tap absorbs the 1×1 and identity branches
    (the centre tap is the same pixel whatever the dilation). Extra branches make optimisation
    easier (RepVGG, Ding et al. 2021) and cost nothing at inference.
    """

    def __init__(self, channels: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.channels, self.stride, self.dilation = channels, stride, dilation
        self.dense = ConvBN(channels, channels, 3, stride, dilation, groups=channels)
        self.scale = ConvBN.around(DepthwiseScale(channels, stride))
        self.identity = nn.BatchNorm2d(channels) if stride == 1 else None
        self.fused: nn.Conv2d | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fused is not None:
            return self.fused(x)
        out = self.dense(x) + self.scale(x)
        if self.identity is not None:
            out = out + self.identity(x)
        return out

    @torch.no_grad()
    def fuse(self) -> None:
        if self.fused is not None:
            return
        w, b = fold_bn(self.dense.conv.weight, None, self.dense.bn)
        w1, b1 = fold_bn(self.scale.conv.weight, None, self.scale.bn)
        w = w.clone()
        w[:, :, 1, 1] += w1[:, :, 0, 0]
        b = b + b1
        if self.identity is not None:
            ones = torch.ones(self.channels, 1, 1, 1, device=w.device, dtype=w.dtype)
            wi, bi = fold_bn(ones, None, self.identity)
            w[:, :, 1, 1] += wi[:, :, 0, 0]
            b = b + bi
        conv = nn.Conv2d(
            self.channels,
            self.channels,
            3,
            self.stride,
            self.dilation,
            self.dilation,
            groups=self.channels,
            bias=True,
        ).to(w.device, w.dtype)
        conv.weight.copy_(w)
        conv.bias.copy_(b)
        self.fused = conv
        del self.dense, self.scale, self.identity


def fuse_modules(model: nn.Module) -> nn.Module:
    """Fold every foldable block of ``model`` in place (eval-mode semantics); returns ``model``."""
    if model.training:
        raise RuntimeError("fuse() uses BatchNorm running statistics: call model.eval() first")
    for module in list(model.modules()):
        if isinstance(module, (ConvBN, RepDWConv)):
            module.fuse()
    return model


def inference_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` for deployment (export, benchmark): eval mode, folded when it can ``fuse()``."""
    net = copy.deepcopy(model).eval()
    fuse = getattr(net, "fuse", None)
    if callable(fuse):
        fuse()
    return net
