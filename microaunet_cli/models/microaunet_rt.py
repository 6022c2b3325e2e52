"""``microaunet_rt``: a latency-first MicroAUNet student (at most 100k parameters).

At 256×256 on a CPU these networks are bound by the memory traffic of their large feature maps,
not by arithmetic (docs/ARCHITECTURE.md, "Speed"). This design therefore:

- never makes a full-resolution map: two strided 3×3 convs take the image to strides 2 and 4;
- predicts logits at stride 2 and upsamples them once, bilinearly, to the input size; every decoder
  block runs before its upsampling, on the smaller map;
- keeps the seed's depthwise (dilated) separable convs, its sigmoid spatial gate (LDGA) and a light
  cross-stage bridge (LSCAB: shared channel attention, shared 7×7 spatial attention), all where the
  maps are small;
- uses BatchNorm and ReLU only, so that ``fuse()`` folds every norm into its conv and ONNX Runtime
  fuses every activation into it; the depthwise convs train with extra 1×1 and identity branches
  (MobileOne-style) that ``fuse()`` merges into one 3×3 kernel.

``forward(x, return_features=True)`` also returns the five skips ``t1..t5`` at strides 2..32 (the
first stem conv's output is ``t1``) and the last decoder feature (stride 2, ``c_list[0]``
channels), as distillation expects; both are maps the inference graph computes anyway, so handing
them out costs nothing and the exported graph is that of ``forward(x)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.models.base import init_malunet_style, six_widths
from microaunet_cli.models.layers import channel_pool, check_input, global_descriptor
from microaunet_cli.models.registry import register_model
from microaunet_cli.models.reparam import ConvBN, RepDWConv, fuse_modules

RT_C_LIST = (8, 24, 32, 48, 64, 80)


class SeparableConv(nn.Module):
    """Re-parameterisable depthwise 3×3 (stride s, dilation d) -> ReLU -> 1×1 conv -> BN -> ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = RepDWConv(c_in, stride, dilation)
        self.pointwise = ConvBN(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pointwise(F.relu(self.depthwise(x))))


class DilatedResidual(nn.Module):
    """The seed's DWDBlock, cheap: a dilated separable conv then a plain one, added to the input."""

    def __init__(self, channels: int, dilation: int = 2) -> None:
        super().__init__()
        self.dilated = SeparableConv(channels, channels, dilation=dilation)
        self.plain = RepDWConv(channels)
        self.project = ConvBN(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(F.relu(self.plain(self.dilated(x))))
        return F.relu(x + y)


class SpatialGate(nn.Module):
    """LDGA's gate: one sigmoid map from a 1×1 conv, multiplied into every channel."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.score = nn.Conv2d(channels, 1, 1)

    def reset_parameters(self) -> None:
        # Start half open everywhere: with the fan-out init the score of a wide ReLU map is large,
        # the sigmoid saturates and the gate neither passes gradient nor learns.
        nn.init.zeros_(self.score.weight)
        nn.init.zeros_(self.score.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.score(x))


class LightBridge(nn.Module):
    """LSCAB on the skips the decoder uses (strides 4..32): one shared linear gives every channel
    attention; one shared 7×7 conv gives the spatial attention of the stride-8..32 skips (at stride
    4 its extra passes over the largest skip would cost more than it brings);
    ``t = (α·catt + β·satt)·t + t``."""

    def __init__(self, channels: Sequence[int]) -> None:
        super().__init__()
        self.splits = [int(c) for c in channels]
        total = sum(self.splits)
        self.mix = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.channel_fc = nn.Linear(total, total)
        self.spatial = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.beta = nn.Parameter(torch.tensor(0.5))

    def forward(self, skips: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        catt = torch.sigmoid(self.channel_fc(self.mix(global_descriptor(tuple(skips))))).squeeze(1)
        out = []
        for i, (t, ca) in enumerate(zip(skips, torch.split(catt, self.splits, dim=1))):
            att = self.alpha * ca[:, :, None, None]
            if i > 0:
                att = att + self.beta * torch.sigmoid(self.spatial(channel_pool(t)))
            out.append(att * t + t)
        return out


def _up(x: torch.Tensor, factor: int) -> torch.Tensor:
    return F.interpolate(x, scale_factor=float(factor), mode="bilinear", align_corners=False)


class MicroAUNetRT(nn.Module):
    def __init__(
        self,
        c_list: Sequence[int] = RT_C_LIST,
        bridge: bool = True,
        num_classes: int = 1,
        input_channels: int = 3,
    ) -> None:
        super().__init__()
        c = self.c_list = six_widths(c_list)
        self.num_classes, self.input_channels = num_classes, input_channels
        self.stem1 = ConvBN(input_channels, c[0], 3, stride=2)
        self.stem2 = ConvBN(c[0], c[1], 3, stride=2)
        # One dilated residual block at strides 4 and 8: without them the encoder has two convs before
        # stride 8 and trains far worse (Kvasir, 10 epochs: val mDice 0.46 -> 0.53).
        self.enc2 = DilatedResidual(c[1])
        self.down3 = nn.Sequential(SeparableConv(c[1], c[2], stride=2), DilatedResidual(c[2]))
        self.down4 = nn.Sequential(SeparableConv(c[2], c[3], stride=2), DilatedResidual(c[3]))
        self.down5 = nn.Sequential(
            SeparableConv(c[3], c[4], stride=2), DilatedResidual(c[4]), SpatialGate(c[4])
        )
        self.middle = nn.Sequential(SeparableConv(c[4], c[5]), SpatialGate(c[5]))
        self.bridge = LightBridge(c[1:5]) if bridge else None
        self.up5 = nn.Sequential(SeparableConv(c[5], c[4]), SpatialGate(c[4]))
        self.up4 = SeparableConv(c[4], c[3])
        self.up3 = SeparableConv(c[3], c[2])
        # Dense 3×3 convs at the two outer levels: cheap there (run at strides 8 and 4, before the
        # upsampling) and they carry the fine detail the thin separable ones lost.
        self.up2 = ConvBN(c[2], c[1], 3)
        self.up1 = ConvBN(c[1], c[0], 3)
        self.head = nn.Conv2d(c[0], num_classes, 1)
        self.apply(init_malunet_style)
        for m in self.modules():
            if isinstance(m, SpatialGate):
                m.reset_parameters()

    def forward(self, x: torch.Tensor, return_features: bool = False):
        check_input(x, self.input_channels)
        t1 = F.relu(self.stem1(x))
        t2 = self.enc2(F.relu(self.stem2(t1)))
        t3 = self.down3(t2)
        t4 = self.down4(t3)
        t5 = self.down5(t4)
        out = self.middle(t5)
        b2, b3, b4, b5 = self.bridge([t2, t3, t4, t5]) if self.bridge is not None else (t2, t3, t4, t5)
        out = self.up5(out) + b5  # stride 32
        out = _up(self.up4(out), 2) + b4
        out = _up(self.up3(out), 2) + b3
        out = _up(F.relu(self.up2(out)), 2) + b2
        dec = _up(F.relu(self.up1(out)), 2) + t1  # stride 2: the stem's own detail, as in a U-Net
        logits = _up(self.head(dec), 2)
        if return_features:
            return logits, (t1, t2, t3, t4, t5), dec
        return logits

    def deep_supervision_taps(self) -> list[tuple[nn.Module, int]]:
        """The decoder stages deep supervision reads, with their channels: up4, up3 and up2 (strides
        32, 16 and 8, before their upsampling)."""
        c = self.c_list
        return [(self.up4, c[3]), (self.up3, c[2]), (self.up2, c[1])]

    def fuse(self) -> MicroAUNetRT:
        """Fold BatchNorms and merge the training branches (in place, eval mode); same outputs."""
        return fuse_modules(self)


@register_model(
    "microaunet_rt",
    role="student",
    summary="latency-first MicroAUNet: strided stem (no full-resolution map), logits at 1/2, "
    "BN+ReLU folded, re-parameterised depthwise convs, LDGA gates, light bridge",
)
def microaunet_rt(**kwargs) -> MicroAUNetRT:
    return MicroAUNetRT(**kwargs)
