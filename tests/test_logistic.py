"""The CPU log-sigmoid and BCE-with-logits (losses/logistic.py) against the exact values in float64,
their gradients against the stock functions', and the stock path off the CPU's float32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from microaunet_cli.losses.logistic import bce_with_logits, log_sigmoid


def _ulps(got: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """|got − exact| in units of the last place of float32 at the exact value (at least the smallest
    normal float32's, so that underflow to zero counts as exact)."""
    e32 = exact.float().abs().clamp_min(torch.finfo(torch.float32).tiny)
    spacing = torch.nextafter(e32, torch.tensor(float("inf"))) - e32
    return (got.double() - exact).abs() / spacing.double()


def _logits() -> torch.Tensor:
    """Every magnitude the losses meet, saturated ones included, and the points where e^−|x| leaves
    float32's range or 1 + e^−|x| rounds to 1."""
    edges = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 16.6, 17.0, -17.0, 87.0, 88.0, 103.0, 104.0, -104.0])
    return torch.cat([torch.linspace(-120.0, 120.0, 48001), edges])


def _softplus_neg_abs_exact(x: torch.Tensor) -> torch.Tensor:
    return torch.log1p(torch.exp(-x.double().abs()))


def test_log_sigmoid_is_within_a_few_ulps_of_the_exact_value():
    x = _logits()
    exact = x.double().clamp_max(0) - _softplus_neg_abs_exact(x)
    assert _ulps(log_sigmoid(x), exact).max() <= 4


@pytest.mark.parametrize("target", [0.0, 1.0, 0.3])
def test_bce_is_within_a_few_ulps_of_the_exact_value(target):
    """Including the tiny losses of confident right answers (x = −30, y = 0: 9e−14), which the stock
    CPU kernel itself rounds to 0."""
    x = _logits()
    y = torch.full_like(x, target)
    # (1 − y)·x − min(x, 0) first: exact in float64 for 0/1 targets, so tiny losses keep their digits.
    exact = ((1 - target) * x.double() - x.double().clamp_max(0)) + _softplus_neg_abs_exact(x)
    assert _ulps(bce_with_logits(x, y), exact).max() <= 4


def test_gradients_match_the_stock_functions():
    g = torch.Generator().manual_seed(0)
    x = (torch.randn(3, 1, 17, 13, generator=g) * 6).requires_grad_()
    y = (torch.rand(3, 1, 17, 13, generator=g) > 0.6).float().requires_grad_()
    w = torch.randn(3, 1, 17, 13, generator=g)
    for ours, stock, inputs in [
        (log_sigmoid(x), F.logsigmoid(x), (x,)),
        (bce_with_logits(x, y), F.binary_cross_entropy_with_logits(x, y, reduction="none"), (x, y)),
    ]:
        torch.testing.assert_close(ours, stock, rtol=1e-6, atol=1e-6)
        got = torch.autograd.grad((ours * w).sum(), inputs)
        want = torch.autograd.grad((stock * w).sum(), inputs)
        for a, b in zip(got, want):
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_bce_gradient_is_sigmoid_minus_a_soft_target():
    """The logits' gradient, with soft targets and no gradient asked for the target."""
    x = torch.randn(4, requires_grad=True)
    y = torch.rand(4)
    (d_x,) = torch.autograd.grad(bce_with_logits(x, y).sum(), x)
    torch.testing.assert_close(d_x, torch.sigmoid(x.detach()) - y)


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
@pytest.mark.parametrize("target", [0.0, 1.0, 0.5])
def test_non_finite_logits_give_what_the_stock_kernels_give(value, target):
    x, y = torch.tensor([value]), torch.tensor([target])
    torch.testing.assert_close(log_sigmoid(x), F.logsigmoid(x), equal_nan=True)
    stock = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    torch.testing.assert_close(bce_with_logits(x, y), stock, equal_nan=True)


def test_other_dtypes_and_shapes_take_the_stock_kernels():
    """float64 keeps the stock precision; a target of another shape is refused as the stock one is."""
    x = torch.linspace(-30, 30, 101, dtype=torch.float64)
    assert torch.equal(log_sigmoid(x), F.logsigmoid(x))
    y = torch.zeros_like(x)
    assert torch.equal(bce_with_logits(x, y), F.binary_cross_entropy_with_logits(x, y, reduction="none"))
    with pytest.raises(ValueError, match="must be the same as input size"):
        bce_with_logits(torch.randn(2, 1, 4, 4), torch.ones(1, 1, 4, 4))


def test_the_cpu_float32_path_is_the_one_taken():
    """What makes the losses faster is that CPU float32 maps take the functions here, not the stock
    kernels (whose values they match): their backward nodes say which ran."""
    x = torch.randn(2, 1, 4, 4, requires_grad=True)
    y = torch.ones(2, 1, 4, 4)
    assert type(log_sigmoid(x).grad_fn).__name__ == "_LogSigmoidBackward"
    assert type(bce_with_logits(x, y).grad_fn).__name__ == "_BCEWithLogitsBackward"
    x64 = x.detach().double().requires_grad_()
    assert type(log_sigmoid(x64).grad_fn).__name__ == "LogSigmoidBackward0"
