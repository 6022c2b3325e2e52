"""The teacher's CPU training paths (models/cpu_training.py) compute what the stock layers compute, and
are taken exactly where they should be: channels-last CPU training maps, never at inference or export."""

from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from microaunet_cli.cpu_memory import keep_freed_memory
from microaunet_cli.models import cpu_training, create_model
from microaunet_cli.models.cpu_training import GroupNorm, PointwiseConv, also_without_gradients
from microaunet_cli.models.malunet import InvertedExternalAttention


def channels_last(*shape: int, seed: int = 0, scale: float = 1.0, shift: float = 0.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*shape, generator=g) * scale + shift
    return x.contiguous(memory_format=torch.channels_last)


def grads(fn, x: torch.Tensor, params: list[torch.Tensor], upstream: torch.Tensor):
    x = x.detach().requires_grad_()
    y = fn(x)
    return (y.detach(), *torch.autograd.grad(y, [x, *params], upstream)), y


@pytest.fixture
def stock_paths(monkeypatch):
    """A function that runs its argument with the training paths switched off."""

    def run(fn, *args):
        monkeypatch.setattr(cpu_training, "ENABLED", False)
        try:
            return fn(*args)
        finally:
            monkeypatch.setattr(cpu_training, "ENABLED", True)

    return run


@pytest.mark.parametrize(
    "shape, groups",
    [
        ((2, 8, 64, 64), 4),
        ((3, 16, 54, 50), 4),
        ((2, 8, 71, 61), 2),
        ((2, 12, 60, 50), 3),
        ((2, 32, 32, 36), 8),
        ((1, 8, 128, 128), 4),
    ],
)
def test_folded_group_norm_matches_the_stock_layer(shape, groups):
    """Value and all three gradients against F.group_norm on the same channels-last map, with an offset
    mean, on maps whose pixel counts do not divide the row length evenly (54×50 folds 6 pixels a row,
    71×61 one)."""
    c = shape[1]
    norm = GroupNorm(groups, c)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, c))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, c))
    x = channels_last(*shape, scale=3.0, shift=2.0)
    upstream = channels_last(*shape, seed=1)
    params = [norm.weight, norm.bias]
    folded, y = grads(norm, x, params, upstream)
    assert type(y.grad_fn).__name__ == "_FoldedGroupNormBackward"
    stock, y0 = grads(
        lambda t: F.group_norm(t, groups, norm.weight, norm.bias, norm.eps), x, params, upstream
    )
    assert type(y0.grad_fn).__name__ == "NativeGroupNormBackward0"
    for got, want in zip(folded, stock):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * float(want.abs().max()))
    assert folded[1].is_contiguous(memory_format=torch.channels_last)


def test_group_norm_takes_the_stock_path_where_the_fold_does_not_pay_or_apply():
    norm = GroupNorm(4, 8)
    small = channels_last(2, 8, 16, 16).requires_grad_()  # 2,048 values a sample: under MIN_FOLDED
    contiguous = torch.randn(2, 8, 64, 64, requires_grad=True)
    frozen = channels_last(2, 8, 64, 64)  # needs no input gradient: nothing to fold
    for x in (small, contiguous):
        assert type(norm(x).grad_fn).__name__ == "NativeGroupNormBackward0"
    with torch.no_grad():
        assert norm(channels_last(2, 8, 64, 64).requires_grad_()).grad_fn is None
    assert type(norm(frozen).grad_fn).__name__ == "NativeGroupNormBackward0"


def test_without_gradients_a_new_thread_takes_the_stock_path():
    """The block's flag is per thread, and a thread that never entered it is off."""
    import threading

    seen = []

    def check():
        with torch.no_grad():
            seen.append(cpu_training.takes_training_path(channels_last(1, 8, 8, 8)))

    with also_without_gradients():
        thread = threading.Thread(target=check)
        thread.start()
        thread.join()
    assert seen == [False]


def test_fold_factor_divides_the_pixels_near_the_row_length():
    assert cpu_training.fold_factor(128 * 128, 8) == 16  # 16 pixels of 8 channels: 128 values
    assert cpu_training.fold_factor(54 * 50, 16) == 6  # 8 does not divide 2,700; 7 neither
    assert cpu_training.fold_factor(71 * 61, 8) == 1  # 4,331 = 71 × 61: nothing below 16 divides
    assert cpu_training.fold_factor(16, 256) == 1  # wider than a row: one pixel a row


def test_group_norm_keeps_its_eps_on_both_paths():
    norm = GroupNorm(4, 8, eps=0.5)
    for x in (channels_last(2, 8, 4, 4), channels_last(2, 8, 64, 64).requires_grad_()):
        want = F.group_norm(x, 4, norm.weight, norm.bias, 0.5)
        torch.testing.assert_close(norm(x), want)


def test_pointwise_conv_matches_conv2d_and_stays_channels_last():
    conv = PointwiseConv(24, 32)
    x = channels_last(2, 24, 16, 12)
    upstream = channels_last(2, 32, 16, 12, seed=1)
    params = [conv.weight, conv.bias]
    fast, y = grads(conv, x, params, upstream)
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert type(y.grad_fn).__name__ != "ConvolutionBackward0"
    stock, y0 = grads(lambda t: F.conv2d(t, conv.weight, conv.bias), x, params, upstream)
    assert type(y0.grad_fn).__name__ == "ConvolutionBackward0"
    for got, want in zip(fast, stock):
        torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    no_bias = PointwiseConv(24, 32, bias=False)
    torch.testing.assert_close(no_bias(x), F.conv2d(x, no_bias.weight), rtol=1e-5, atol=1e-5)


@pytest.mark.filterwarnings("ignore:`torch.jit.trace")
def test_inference_export_and_contiguous_maps_take_the_stock_convolution():
    conv = PointwiseConv(8, 4)
    x = channels_last(1, 8, 8, 8)
    with torch.no_grad():
        assert not cpu_training.takes_training_path(x)
        with also_without_gradients():
            assert cpu_training.takes_training_path(x)
        assert not cpu_training.takes_training_path(x)  # the block restores the state it found
    assert not cpu_training.takes_training_path(x.contiguous())
    assert not cpu_training.takes_training_path(x.double())
    assert not cpu_training.takes_training_path(x[:, ::2])  # neither layout: a channel slice
    on_meta = torch.empty(1, 8, 8, 8, device="meta").contiguous(memory_format=torch.channels_last)
    assert not cpu_training.takes_training_path(on_meta)  # another device
    assert cpu_training.takes_training_path(x)
    traced = torch.jit.trace(conv, x, check_trace=False)
    assert "aten::_convolution" in str(traced.graph) and "aten::linear" not in str(traced.graph)


def test_external_attention_rows_path_matches_the_stock_path(stock_paths):
    torch.manual_seed(0)
    block = InvertedExternalAttention(24)
    x = channels_last(2, 24, 16, 16)
    upstream = channels_last(2, 24, 16, 16, seed=1)
    params = list(block.parameters())
    fast, y = grads(block, x, params, upstream)
    assert y.is_contiguous(memory_format=torch.channels_last)
    stock, _ = stock_paths(grads, block, x, params, upstream)
    for got, want in zip(fast, stock):
        # The inp bias gets a zero gradient in exact arithmetic (a softmax over the pixels ignores a
        # per-slot shift): compare on the scale of the whole gradient.
        scale = max(float(want.abs().max()), max(float(p.abs().max()) for p in stock[1:]))
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5 * scale)


def test_teacher_training_step_is_the_same_with_and_without_the_paths(stock_paths):
    """A whole teacher: logits and every parameter's gradient at 128 px, batch 2, in train mode."""
    torch.manual_seed(0)
    model = create_model("malunet").to(memory_format=torch.channels_last)
    x = channels_last(2, 3, 128, 128)

    def step():
        model.zero_grad(set_to_none=True)
        y = model(x)
        (y.square().mean() + y.mean()).backward()
        return y.detach(), {n: p.grad.clone() for n, p in model.named_parameters()}

    y_fast, g_fast = step()
    y_stock, g_stock = stock_paths(step)
    torch.testing.assert_close(y_fast, y_stock, rtol=1e-4, atol=1e-5)
    scale = max(float(g.abs().max()) for g in g_stock.values())
    for name, want in g_stock.items():
        torch.testing.assert_close(g_fast[name], want, rtol=1e-3, atol=1e-5 * scale, msg=name)


def test_teacher_forward_without_gradients_is_the_same_inside_the_block():
    torch.manual_seed(0)
    model = create_model("malunet").eval().to(memory_format=torch.channels_last)
    x = channels_last(2, 3, 64, 64)
    with torch.no_grad():
        stock = model(x, return_features=True)
        with also_without_gradients():
            fast = model(x, return_features=True)
    for a, b in zip(torch.utils._pytree.tree_leaves(fast), torch.utils._pytree.tree_leaves(stock)):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_state_dicts_are_those_of_the_stock_layers():
    """Checkpoints written before these layers load into them and back: same keys and shapes."""
    assert isinstance(GroupNorm(4, 8), nn.GroupNorm) and isinstance(PointwiseConv(8, 4), nn.Conv2d)
    assert {k: v.shape for k, v in PointwiseConv(8, 4).state_dict().items()} == {
        k: v.shape for k, v in nn.Conv2d(8, 4, 1).state_dict().items()
    }


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt is Linux-only")
def test_freed_memory_is_kept_on_linux():
    assert keep_freed_memory() is True
