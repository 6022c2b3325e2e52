"""The default student (models/microaunet_rt.py) and its folding (models/reparam.py) with every weight
randomised: at initialisation each spatial gate's score is exactly 0 (the gate passes half of every
pixel whatever the activation), BatchNorm is the identity and LSCAB's α and β are equal, so a pin
taken there cannot see a wrong activation, a swapped α/β or a wrong fold. Small blocks are checked
against formulas worked out by hand.

If the architecture changes on purpose, re-pin with ``python tests/test_student_mutants.py`` and say
why in the commit.
"""

from __future__ import annotations

import math
import sys

import pytest
import torch
from torch import nn
from weights import randomised

from microaunet_cli.models import create_model, inference_copy
from microaunet_cli.models.microaunet_rt import DilatedResidual, LightBridge, SeparableConv, SpatialGate
from microaunet_cli.models.reparam import ConvBN, RepDWConv, fold_bn, fuse_modules

NAME = "microaunet_rt"
REFERENCE_INDICES = (0, 1000, 2080, 4095)
# (mean |logit|, logits at REFERENCE_INDICES) of randomised(create_model(NAME)) on _input(), eval mode
PINNED = (0.924284446558, (1.46948051453, 0.826690554619, 0.919435977936, -0.086582660675))


def _input() -> torch.Tensor:
    return torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def reference_output() -> tuple[float, tuple[float, ...]]:
    model = randomised(create_model(NAME))
    with torch.no_grad():
        y = model(_input()).flatten().double()
    return float(y.abs().mean()), tuple(float(y[i]) for i in REFERENCE_INDICES)


def test_randomised_gates_are_not_at_their_starting_point():
    model = randomised(create_model(NAME))
    gates = [m for m in model.modules() if isinstance(m, SpatialGate)]
    assert gates and all(g.score.weight.abs().min() > 0 for g in gates)
    assert model.bridge.alpha.item() != model.bridge.beta.item()


def test_randomised_output_is_pinned():
    mean_abs, values = reference_output()
    want_mean_abs, want_values = PINNED
    assert mean_abs == pytest.approx(want_mean_abs, rel=1e-4)
    assert values == pytest.approx(want_values, rel=1e-4, abs=1e-4 * want_mean_abs)


def test_randomised_network_folds_exactly():
    model = randomised(create_model(NAME))
    x = torch.randn(2, 3, 64, 96, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        want = model(x)
        folded = inference_copy(model)
        got = folded(x)
        again = model(x)
    assert all(m.fused is not None for m in folded.modules() if isinstance(m, RepDWConv))
    assert not any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
    assert torch.equal(again, want)  # the copy was folded, not the original
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4 * float(want.abs().mean()))


def test_spatial_gate_by_hand():
    gate = SpatialGate(2)
    with torch.no_grad():
        gate.score.weight.copy_(torch.tensor([1.0, -2.0]).view(1, 2, 1, 1))
        gate.score.bias.fill_(0.5)
    x = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])  # pixel 0: (1, 0), pixel 1: (0, 1)
    s0, s1 = 1 / (1 + math.exp(-1.5)), 1 / (1 + math.exp(1.5))  # scores 1.5 and -1.5
    want = torch.tensor([[[[s0, 0.0]], [[0.0, s1]]]])
    torch.testing.assert_close(gate(x), want)
    fresh = SpatialGate(3)
    fresh.reset_parameters()
    assert fresh.score.weight.abs().sum() == 0 and fresh.score.bias.abs().sum() == 0


def test_light_bridge_is_alpha_channel_plus_beta_spatial_attention():
    bridge = randomised(LightBridge([2, 3]))
    skips = [torch.randn(1, 2, 4, 4), torch.randn(1, 3, 2, 2)]
    with torch.no_grad():
        bridge.alpha.zero_()
        bridge.beta.zero_()
        assert all(torch.equal(o, s) for o, s in zip(bridge(skips), skips))  # no attention: t + 0
        bridge.alpha.fill_(1.0)
        only_channel = bridge(skips)
        bridge.alpha.zero_()
        bridge.beta.fill_(1.0)
        only_spatial = bridge(skips)
    # the first (stride-4) skip has no spatial attention; the channel attention is one factor per channel
    assert torch.equal(only_spatial[0], skips[0])
    factor = only_channel[0] / skips[0] - 1
    assert torch.allclose(factor, factor[..., :1, :1].expand_as(factor), atol=1e-5)
    assert ((factor > 0) & (factor < 1)).all()
    # the spatial attention is one factor per pixel, shared by the channels
    factor = only_spatial[1] / skips[1] - 1
    assert torch.allclose(factor, factor[:, :1].expand_as(factor), atol=1e-5)
    assert ((factor > 0) & (factor < 1)).all()


def test_separable_and_residual_blocks_keep_their_shapes():
    x = torch.randn(1, 4, 8, 8)
    assert SeparableConv(4, 6, stride=2).eval()(x).shape == (1, 6, 4, 4)
    block = randomised(DilatedResidual(4))
    out = block(x)
    assert out.shape == x.shape and out.min() >= 0  # relu(x + y)
    assert not torch.allclose(out, torch.relu(x))  # the residual branch adds something


def test_fold_bn_by_hand():
    bn = nn.BatchNorm2d(1, eps=1.0).eval()
    with torch.no_grad():
        bn.weight.fill_(3.0)
        bn.bias.fill_(0.5)
        bn.running_mean.fill_(1.0)
        bn.running_var.fill_(3.0)  # sqrt(3 + eps) = 2: scale 1.5
    w, b = fold_bn(torch.full((1, 1, 1, 1), 2.0), None, bn)
    assert w.flatten().tolist() == [3.0] and b.tolist() == [-1.0]  # (0 - 1)·1.5 + 0.5
    w, b = fold_bn(torch.full((1, 1, 1, 1), 2.0), torch.tensor([4.0]), bn)
    assert b.tolist() == [5.0]  # (4 - 1)·1.5 + 0.5


def test_rep_depthwise_conv_folds_every_branch_into_the_centre_tap():
    for stride in (1, 2):
        block = randomised(RepDWConv(3, stride=stride, dilation=2))
        x = torch.randn(1, 3, 9, 9)
        with torch.no_grad():
            want = block(x)
            block.fuse()
            block.fuse()  # a second fuse leaves the folded conv alone
            got = block(x)
        assert block.fused.dilation == (2, 2) and block.fused.stride == (stride, stride)
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_conv_bn_fuses_once_and_keeps_its_geometry():
    block = randomised(ConvBN(2, 4, 3, stride=2, dilation=1, groups=2))
    x = torch.randn(1, 2, 7, 7)
    with torch.no_grad():
        want = block(x)
        fuse_modules(block)
        conv = block.conv
        fuse_modules(block)
        got = block(x)
    assert block.conv is conv and conv.groups == 2 and conv.stride == (2, 2) and conv.padding == (1, 1)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_folding_refuses_training_mode_and_inference_copy_is_a_folded_eval_copy():
    model = create_model(NAME)
    with pytest.raises(RuntimeError) as err:
        fuse_modules(model.train())
    assert str(err.value) == "fuse() uses BatchNorm running statistics: call model.eval() first"
    net = inference_copy(model.train())
    assert model.training and not net.training
    assert not any(isinstance(m, nn.BatchNorm2d) for m in net.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    plain = nn.Conv2d(1, 1, 1)
    assert not inference_copy(plain).training and inference_copy(plain) is not plain


@pytest.mark.parametrize("kernel, dilation", [(1, 1), (3, 1), (3, 2), (5, 1), (5, 3), (7, 2)])
def test_conv_bn_keeps_the_size_for_any_odd_kernel_and_dilation(kernel, dilation):
    block = ConvBN(2, 3, kernel_size=kernel, dilation=dilation)
    assert block.conv.bias is None  # the BatchNorm's shift is the bias
    assert block(torch.zeros(1, 2, 9, 11)).shape == (1, 3, 9, 11)


if __name__ == "__main__":  # print the PINNED line
    mean_abs, values = reference_output()
    print(f"PINNED = ({mean_abs:.12g}, ({', '.join(f'{v:.12g}' for v in values)}))")
    sys.exit(0)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("shape", [(2, 5, 9, 9), (1, 5, 8, 11)])
def test_depthwise_scale_is_a_grouped_1x1_conv_as_one_multiply(stride, shape):
    from microaunet_cli.models.reparam import DepthwiseScale

    conv = nn.Conv2d(5, 5, 1, stride, groups=5, bias=False)
    scale = DepthwiseScale(5, stride)
    assert scale.weight.shape == conv.weight.shape and scale.bias is None
    scale.load_state_dict(conv.state_dict())  # the same keys: checkpoints load either way
    x = torch.randn(*shape).contiguous(memory_format=torch.channels_last)
    x.requires_grad_(True)
    want, got = conv(x), scale(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    g = torch.randn_like(want)
    dx_want, dw_want = torch.autograd.grad(want, (x, conv.weight), g)
    dx_got, dw_got = torch.autograd.grad(got, (x, scale.weight), g)
    torch.testing.assert_close(dx_got, dx_want)
    torch.testing.assert_close(dw_got, dw_want)


def test_conv_bn_around_a_conv_draws_nothing_else_and_fuses():
    from microaunet_cli.models.reparam import DepthwiseScale

    torch.manual_seed(0)
    block = ConvBN.around(DepthwiseScale(4, 2))
    after = torch.rand(1)
    torch.manual_seed(0)
    DepthwiseScale(4, 2)
    assert torch.equal(torch.rand(1), after)  # the wrapper itself draws no random numbers
    assert isinstance(block.bn, nn.BatchNorm2d) and block.bn.num_features == 4
    block = randomised(block).eval()
    x = torch.randn(2, 4, 7, 7)
    with torch.no_grad():
        want = block(x)
        block.fuse()
        torch.testing.assert_close(block(x), want, rtol=1e-5, atol=1e-6)
    assert block.conv.stride == (2, 2) and type(block.conv) is nn.Conv2d
