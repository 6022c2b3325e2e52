"""MALUNet (Ruan et al., BIBM 2022): the teacher. 177,943 parameters with the defaults."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.models.base import UNetBase
from microaunet_cli.models.cpu_training import GroupNorm, PointwiseConv, takes_training_path
from microaunet_cli.models.layers import DWConv, channel_pool, global_descriptor
from microaunet_cli.models.registry import register_model


class DilatedGatedAttention(nn.Module):
    """DGA: four dilated depthwise branches on channel quarters, then a gated attention unit."""

    DILATIONS = (7, 5, 2, 1)

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        quarter = c_in // 4
        self.branches = nn.ModuleList(
            nn.Conv2d(quarter, quarter, 3, padding=d, dilation=d, groups=quarter) for d in self.DILATIONS
        )
        self.norm = GroupNorm(4, c_in)
        self.mix = PointwiseConv(c_in, c_in)
        self.gate = DWConv(c_in, c_in, 3)
        self.value = DWConv(c_in, c_in, 5)
        self.project = DWConv(c_in, c_out, 3)
        self.shortcut = PointwiseConv(c_in, c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        chunks = torch.chunk(x, 4, dim=1)
        x = torch.cat([branch(c) for branch, c in zip(self.branches, chunks)], dim=1)
        x = F.gelu(self.mix(self.norm(x)))
        gated = torch.sigmoid(self.gate(x)) * F.gelu(self.value(x))
        return F.gelu(self.project(gated)) + self.shortcut(x)


class InvertedExternalAttention(nn.Module):
    """IEA: external attention through a 4×-wider memory, softmax over pixels then over memory slots."""

    def __init__(self, channels: int, expansion: int = 4) -> None:
        super().__init__()
        slots = channels * expansion
        self.inp = PointwiseConv(channels, channels)
        self.to_slots = nn.Conv1d(channels, slots, 1, bias=False)
        self.from_slots = nn.Conv1d(slots, channels, 1, bias=False)
        self.out = nn.Sequential(PointwiseConv(channels, channels, bias=False), GroupNorm(4, channels))
        self.tie_memory()

    def tie_memory(self) -> None:
        """Initialise the read-out memory as the transpose of the write memory (one memory matrix,
        written to and read from), as MALUNet does. Called when built and again by ``MALUNet`` after
        the generic initialisation, which redraws both Conv1d weights independently."""
        with torch.no_grad():
            self.from_slots.weight.copy_(self.to_slots.weight.permute(1, 0, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if takes_training_path(x):
            # The same products on the map's pixel rows (B×HW×C, a view of channels-last memory):
            # no copy to B×C×HW and back, and the output stays channels-last.
            rows = self.inp(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
            attn = F.linear(rows, self.to_slots.weight.flatten(1)).softmax(dim=1)  # B×HW×slots
            attn = attn / (attn.sum(dim=2, keepdim=True) + 1e-9)
            y = F.linear(attn, self.from_slots.weight.flatten(1)).view(b, h, w, c).permute(0, 3, 1, 2)
            return F.gelu(self.out(y) + x)
        attn = self.to_slots(self.inp(x).flatten(2))
        attn = attn.softmax(dim=-1)
        attn = attn / (attn.sum(dim=1, keepdim=True) + 1e-9)
        y = self.from_slots(attn).view(b, c, h, w)
        return F.gelu(self.out(y) + x)


class SpatialChannelBridge(nn.Module):
    """SC_Att_Bridge: a shared spatial attention on every skip, then a cross-stage channel attention."""

    def __init__(self, c_list: Sequence[int]) -> None:
        super().__init__()
        total = sum(c_list)
        self.spatial = nn.Sequential(nn.Conv2d(2, 1, 7, padding=9, dilation=3), nn.Sigmoid())
        self.mix = nn.Conv1d(1, 1, 3, padding=1, bias=False)
        self.per_stage = nn.ModuleList(nn.Linear(total, c) for c in c_list)

    def forward(self, *skips: torch.Tensor) -> list[torch.Tensor]:
        gated = [t * self.spatial(channel_pool(t)) for t in skips]  # satt·t
        mixed = [g + t for g, t in zip(gated, skips)]  # s = satt·t + t
        desc = self.mix(global_descriptor(tuple(mixed)))  # B×1×total
        out = []
        for s, g, fc in zip(mixed, gated, self.per_stage):
            att = torch.sigmoid(fc(desc)).transpose(1, 2).unsqueeze(-1)  # B×C×1×1
            # The published bridge adds the spatially gated skip (satt·t) back, not s: no extra identity.
            out.append(s * att + g)
        return out


def _conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class MALUNet(UNetBase):
    def build_encoder(self, c: tuple[int, ...], input_channels: int) -> nn.ModuleList:
        return nn.ModuleList(
            [
                _conv3(input_channels, c[0]),
                _conv3(c[0], c[1]),
                _conv3(c[1], c[2]),
                nn.Sequential(InvertedExternalAttention(c[2]), DilatedGatedAttention(c[2], c[3])),
                nn.Sequential(InvertedExternalAttention(c[3]), DilatedGatedAttention(c[3], c[4])),
                nn.Sequential(InvertedExternalAttention(c[4]), DilatedGatedAttention(c[4], c[5])),
            ]
        )

    def build_bridge(self, skip_channels: tuple[int, ...]) -> nn.Module:
        return SpatialChannelBridge(skip_channels)

    def build_decoder(self, c: tuple[int, ...]) -> nn.ModuleList:
        return nn.ModuleList(
            [
                nn.Sequential(DilatedGatedAttention(c[5], c[4]), InvertedExternalAttention(c[4])),
                nn.Sequential(DilatedGatedAttention(c[4], c[3]), InvertedExternalAttention(c[3])),
                nn.Sequential(DilatedGatedAttention(c[3], c[2]), InvertedExternalAttention(c[2])),
                _conv3(c[2], c[1]),
                _conv3(c[1], c[0]),
            ]
        )

    def after_init(self) -> None:
        # The generic initialisation just drew the read-out Conv1d (from_slots) independently of the
        # write one (to_slots), undoing the tie made when each IEA was built. MALUNet starts its
        # external memory as one matrix used both ways (read-out = transpose of write), so tie again.
        for m in self.modules():
            if isinstance(m, InvertedExternalAttention):
                m.tie_memory()


@register_model(
    "malunet", role="teacher", summary="MALUNet (BIBM 2022): DGA + IEA blocks, SC attention bridge"
)
def malunet(**kwargs) -> MALUNet:
    return MALUNet(**kwargs)
