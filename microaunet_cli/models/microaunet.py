"""MicroAUNet: the student. Depthwise-separable dilated convs, light attention, a light bridge.

``microaunet`` is the faithful design (84,281 parameters with the defaults).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.models.base import UNetBase
from microaunet_cli.models.layers import DWConv, channel_pool, global_descriptor
from microaunet_cli.models.registry import register_model


class DWDConv(nn.Module):
    """Depthwise 3×3 (dilation d) -> BN -> ReLU -> pointwise 1×1 -> BN -> ReLU, no conv biases."""

    def __init__(self, c_in: int, c_out: int, dilation: int = 1) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(
            c_in, c_in, 3, padding=dilation, dilation=dilation, groups=c_in, bias=False
        )
        self.bn1 = nn.BatchNorm2d(c_in)
        self.pointwise = nn.Conv2d(c_in, c_out, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.depthwise(x)))
        return F.relu(self.bn2(self.pointwise(x)))


class DWDBlock(nn.Module):
    """Residual pair of DWDConvs: a dilated one (d=2) widens the view, a plain one refines."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.dilated = DWDConv(channels, channels, dilation=2)
        self.plain = DWDConv(channels, channels, dilation=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.gelu(x + self.plain(F.gelu(self.dilated(x))))


class LDGA(nn.Module):
    """Lightweight dilated-guided attention: DW(k3), a sigmoid spatial gate, a DW(k1) projection."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.context = DWConv(c_in, c_in, 3)
        self.gate = nn.Conv2d(c_in, 1, 1, bias=False)
        self.project = DWConv(c_in, c_out, 1)
        self.shortcut = DWConv(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.context(x)
        y = y * torch.sigmoid(self.gate(y))
        return self.project(y) + self.shortcut(x)


class LSCAB(nn.Module):
    """Lightweight cross-stage attention bridge: one shared linear for the channel attention of all
    stages, one shared 7×7 spatial attention, fused with learnable weights α, β."""

    def __init__(self, c_list: Sequence[int]) -> None:
        super().__init__()
        self.splits = [int(c) for c in c_list]
        total = sum(self.splits)
        self.mix = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.channel_fc = nn.Linear(total, total)
        self.spatial = nn.Conv2d(2, 1, 7, bias=False)
        self.alpha = nn.Parameter(torch.tensor(0.5))
        self.beta = nn.Parameter(torch.tensor(0.5))

    def forward(self, *skips: torch.Tensor) -> list[torch.Tensor]:
        catt = torch.sigmoid(self.channel_fc(self.mix(global_descriptor(skips)))).squeeze(1)
        out = []
        for t, ca in zip(skips, torch.split(catt, self.splits, dim=1)):
            sa = torch.sigmoid(self.spatial(_pad3(channel_pool(t))))
            out.append((self.alpha * ca[:, :, None, None] + self.beta * sa) * t + t)
        return out


def _pad3(x: torch.Tensor) -> torch.Tensor:
    """Reflect-pad by 3; maps too small to reflect (under 4 px, i.e. inputs under 128 px) replicate."""
    mode = "reflect" if min(x.shape[-2:]) > 3 else "replicate"
    return F.pad(x, (3, 3, 3, 3), mode=mode)


class MicroAUNet(UNetBase):
    def build_encoder(self, c: tuple[int, ...], input_channels: int) -> nn.ModuleList:
        return nn.ModuleList(
            [DWDConv(input_channels, c[0])]
            + [nn.Sequential(DWDBlock(c[i - 1]), LDGA(c[i - 1], c[i])) for i in range(1, 6)]
        )

    def build_bridge(self, skip_channels: tuple[int, ...]) -> nn.Module:
        return LSCAB(skip_channels)

    def build_decoder(self, c: tuple[int, ...]) -> nn.ModuleList:
        return nn.ModuleList(nn.Sequential(LDGA(c[i], c[i - 1]), DWDBlock(c[i - 1])) for i in range(5, 0, -1))


@register_model(
    "microaunet", role="student", summary="MicroAUNet, faithful: DWDConv + LDGA blocks, LSCAB bridge"
)
def microaunet(**kwargs) -> MicroAUNet:
    return MicroAUNet(**kwargs)


class MicroAUNetFast(UNetBase):
    """``microaunet_fast``: the student's blocks where they are cheap, plain convs where maps are large.

    At these sizes the networks are bound by memory traffic of the high-resolution maps, not by
    arithmetic (docs/ARCHITECTURE.md, "Speed"): the faithful student runs ~20 thin passes
    (depthwise, norm, activation, pointwise...) at 1/2 and 1/4 resolution where the teacher runs one
    conv. This variant keeps
    DWDBlock + LDGA for stages 3-6 and decoder stages 1-3 and the LSCAB bridge, but uses a strided
    3×3 stem (no full-resolution map at all) and plain 3×3 convs at the two outermost levels.
    """

    strided_stages = frozenset({0})

    def build_encoder(self, c: tuple[int, ...], input_channels: int) -> nn.ModuleList:
        return nn.ModuleList(
            [nn.Conv2d(input_channels, c[0], 3, stride=2, padding=1), nn.Conv2d(c[0], c[1], 3, padding=1)]
            + [nn.Sequential(DWDBlock(c[i - 1]), LDGA(c[i - 1], c[i])) for i in range(2, 6)]
        )

    def build_bridge(self, skip_channels: tuple[int, ...]) -> nn.Module:
        return LSCAB(skip_channels)

    def build_decoder(self, c: tuple[int, ...]) -> nn.ModuleList:
        return nn.ModuleList(
            [nn.Sequential(LDGA(c[i], c[i - 1]), DWDBlock(c[i - 1])) for i in range(5, 2, -1)]
            + [nn.Conv2d(c[2], c[1], 3, padding=1), nn.Conv2d(c[1], c[0], 3, padding=1)]
        )


@register_model(
    "microaunet_fast",
    role="student",
    summary="MicroAUNet variant: strided stem and plain convs at the outer levels, "
    "DWDConv + LDGA inside, LSCAB bridge",
)
def microaunet_fast(**kwargs) -> MicroAUNetFast:
    return MicroAUNetFast(**kwargs)
