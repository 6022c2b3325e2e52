"""The network contract of models/base.py: checked when a network registers, kept by the base."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.models import registry
from microaunet_cli.models.base import UNetBase
from microaunet_cli.models.malunet import InvertedExternalAttention, MALUNet
from microaunet_cli.models.microaunet import MicroAUNetFast


class TinyNet(nn.Module):
    """The smallest network that keeps the contract: one conv per stride, a 1×1 head."""

    skips_given = 5

    def __init__(self, c_list=(8, 8, 8, 8, 8, 8), **_options) -> None:
        super().__init__()
        self.c_list, self.input_channels = tuple(c_list), 3
        widths = (3, *self.c_list[:5])
        self.down = nn.ModuleList(
            nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in itertools.pairwise(widths)
        )
        self.head = nn.Conv2d(self.c_list[0], 1, 1)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        skips = []
        for conv in self.down:
            x = conv(x)
            skips.append(x)
        dec = skips[0]
        logits = F.interpolate(self.head(dec), scale_factor=2.0)
        if return_features:
            return logits, tuple(skips[: self.skips_given]), dec
        return logits


class NoFeatures(TinyNet):
    def forward(self, x: torch.Tensor):  # no return_features
        return super().forward(x)


class FourSkips(TinyNet):
    skips_given = 4


class NoChannelList(TinyNet):
    def __init__(self, **options) -> None:
        super().__init__(**options)
        del self.c_list


@pytest.fixture
def empty_registry(monkeypatch):
    monkeypatch.setattr(registry, "_REGISTRY", {})


def test_a_network_keeping_the_contract_registers(empty_registry):
    registry.register_model("tiny", role="student", summary="test")(TinyNet)
    assert registry.list_models() == ["tiny"]


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        (NoFeatures, "forward does not take return_features"),
        (FourSkips, "skips as (channels, side) are [(8, 16), (8, 8), (8, 4), (8, 2)]"),
        (NoChannelList, "its c_list is missing"),
    ],
)
def test_a_network_breaking_the_contract_is_refused_at_registration(empty_registry, bad, says):
    with pytest.raises(registry.ModelInterfaceError, match="model 'bad'") as caught:
        registry.register_model("bad", role="student", summary="test")(bad)
    assert says in str(caught.value)
    assert "return_features=True" in str(caught.value)  # says what distillation needs
    assert registry.list_models() == []


def test_registering_does_not_move_the_seeded_generator(empty_registry):
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    registry.register_model("tiny", role="student", summary="test")(TinyNet)
    assert torch.equal(torch.rand(3), expected)


def test_strided_stages_is_a_class_attribute():
    assert MicroAUNetFast.strided_stages == frozenset({0})
    assert UNetBase.strided_stages == frozenset()


def test_malunet_memories_are_tied_after_the_generic_init():
    torch.manual_seed(0)
    ieas = [m for m in MALUNet().modules() if isinstance(m, InvertedExternalAttention)]
    assert len(ieas) == 6
    for m in ieas:
        assert torch.equal(m.from_slots.weight, m.to_slots.weight.permute(1, 0, 2))
