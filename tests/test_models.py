"""Every registered network goes through the same checks (one parametrised tester)."""

from __future__ import annotations

import sys

import pytest
import torch
from weights import randomised

from microaunet_cli.errors import ConfigError
from microaunet_cli.models import count_parameters, create_model, list_models
from microaunet_cli.models.layers import InputShapeError

MODELS = list_models()
PINNED_PARAMS = {"malunet": 177_943, "microaunet": 84_281}

# Reference outputs: the logits of each network built after torch.manual_seed(0) (so its own
# initialisation is pinned too), in eval mode, for one fixed 1×3×64×64 input. A parameter count cannot
# see a wrong residual or a swapped operand (MALUNet's bridge once returned catt·s + s instead of
# catt·s + satt·t with the same 177,943 parameters); these numbers can. Identical with 1, 2 and 4 CPU
# threads on torch 2.14.1. If an architecture is changed on purpose, re-pin with
# `python tests/test_models.py NAME` and say why in the commit.
REFERENCE_INDICES = (0, 1000, 2080, 4095)  # positions in the flattened 64×64 logit map
PINNED_OUTPUTS = {
    # name: (sum, mean |logit|, logits at REFERENCE_INDICES)
    "malunet": (
        -20833.6164088,
        5.13467226462,
        (3.88305616379, -4.35179853439, -5.65307283401, -7.8139462471),
    ),
    "microaunet": (
        -11310.845853,
        3.08159231711,
        (-4.25282907486, 0.331703901291, -2.52964758873, -1.55884695053),
    ),
    "microaunet_fast": (
        -14589.7942961,
        3.6770239837,
        (-1.68777537346, 1.33948516846, 0.377530753613, -0.350331604481),
    ),
    "microaunet_rt": (
        2637241.61584,
        700.388948935,
        (-746.929992676, 424.307617188, 699.68145752, 1381.28283691),
    ),
}
# The same with every weight drawn at random (tests/weights.py): at initialisation each spatial gate
# scores exactly 0 and BatchNorm is the identity, so the pins above cannot see, for one, an activation
# with f(0) = 0.5 in place of the sigmoid. Re-pin with `python tests/test_models.py --randomised NAME`.
PINNED_RANDOMISED = {
    # name: (mean |logit|, logits at REFERENCE_INDICES)
    "malunet": (0.531024572661, (-0.193795084953, -0.0059904307127, -0.107783794403, -2.2905523777)),
    "microaunet": (2.11674408409, (4.12713909149, 1.82832980156, 2.4674680233, 3.74147200584)),
    "microaunet_fast": (0.594165517797, (-0.0732068568468, 0.507397174835, 0.660068571568, 0.930997788906)),
    "microaunet_rt": (0.924284446558, (1.46948051453, 0.826690554619, 0.919435977936, -0.086582660675)),
}


@pytest.fixture(params=MODELS)
def name(request) -> str:
    return request.param


def test_registry_has_both_networks():
    assert {"malunet", "microaunet"} <= set(MODELS)


@pytest.mark.parametrize("model_name,count", sorted(PINNED_PARAMS.items()))
def test_pinned_parameter_counts(model_name, count):
    total, trainable = count_parameters(create_model(model_name))
    assert total == trainable == count


@pytest.mark.parametrize("hw", [(64, 64), (96, 128)])
def test_logits_shape_and_dtype(name, hw):
    model = create_model(name).eval()
    with torch.no_grad():
        y = model(torch.randn(2, 3, *hw))
    assert y.shape == (2, 1, *hw)
    assert y.dtype == torch.float32
    assert torch.isfinite(y).all()
    # Logits, not probabilities: a random network gives values outside [0, 1] somewhere.
    assert (y < 0).any() or (y > 1).any()


def test_every_parameter_gets_a_gradient(name):
    model = create_model(name).train()
    model(torch.randn(2, 3, 64, 64)).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


def test_eval_forward_is_deterministic(name):
    model = create_model(name).eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        assert torch.equal(model(x), model(x))


def test_features_have_documented_shapes(name):
    model = create_model(name).eval()
    x = torch.randn(2, 3, 64, 128)
    with torch.no_grad():
        logits, skips, decoder = model(x, return_features=True)
        plain = model(x)
    torch.testing.assert_close(logits, plain)
    assert len(skips) == 5
    for i, (t, c) in enumerate(zip(skips, model.c_list[:5])):
        stride = 2 ** (i + 1)
        assert t.shape == (2, c, 64 // stride, 128 // stride)
    assert decoder.shape == (2, model.c_list[0], 32, 64)


def test_configurable_widths_bridge_classes_channels(name):
    model = create_model(name, c_list=[4, 8, 12, 16, 20, 24], bridge=False, num_classes=2, input_channels=1)
    assert model.bridge is None
    assert model(torch.randn(1, 1, 64, 64)).shape == (1, 2, 64, 64)
    assert count_parameters(model)[0] < count_parameters(create_model(name))[0]


def test_bad_input_size_says_what_to_pad_to(name):
    model = create_model(name)
    with pytest.raises(InputShapeError, match=r"multiples of 32.*pad or resize to 96×64"):
        model(torch.randn(1, 3, 70, 64))


def test_wrong_channel_count_is_reported(name):
    with pytest.raises(InputShapeError, match="B×3×H×W"):
        create_model(name)(torch.randn(1, 1, 64, 64))


def test_torch_export_matches_eager(name):
    model = create_model(name).eval()
    x = torch.randn(2, 3, 64, 64)
    program = torch.export.export(model, (x,))
    with torch.no_grad():
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-5)


def reference_output(model_name: str) -> tuple[float, float, tuple[float, ...]]:
    """(sum, mean |logit|, selected logits) of the seeded network on the fixed input, in float64."""
    torch.manual_seed(0)
    model = create_model(model_name).eval()
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).flatten().double()
    return float(y.sum()), float(y.abs().mean()), tuple(float(y[i]) for i in REFERENCE_INDICES)


def test_reference_output_is_pinned(name):
    if name not in PINNED_OUTPUTS:
        pytest.fail(
            f"network {name!r} has no pinned reference output. Print one with "
            f"`python tests/test_models.py {name}` and add the line to PINNED_OUTPUTS in {__file__}"
        )
    total, mean_abs, values = reference_output(name)
    want_total, want_mean_abs, want_values = PINNED_OUTPUTS[name]
    # 1e-4 relative; absolute slack scaled to the logits' size, for values that sit near zero.
    slack = 1e-4 * want_mean_abs
    assert mean_abs == pytest.approx(want_mean_abs, rel=1e-4)
    assert total == pytest.approx(want_total, rel=1e-4, abs=slack * 64 * 64)
    assert values == pytest.approx(want_values, rel=1e-4, abs=slack)


def randomised_output(model_name: str) -> tuple[float, tuple[float, ...]]:
    """(mean |logit|, selected logits) of the network with randomised weights on the fixed input."""
    model = randomised(create_model(model_name))
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).flatten().double()
    return float(y.abs().mean()), tuple(float(y[i]) for i in REFERENCE_INDICES)


def test_randomised_output_is_pinned(name):
    if name not in PINNED_RANDOMISED:
        pytest.fail(
            f"network {name!r} has no pinned randomised output. Print one with "
            f"`python tests/test_models.py --randomised {name}` and add it to PINNED_RANDOMISED in {__file__}"
        )
    mean_abs, values = randomised_output(name)
    want_mean_abs, want_values = PINNED_RANDOMISED[name]
    assert mean_abs == pytest.approx(want_mean_abs, rel=1e-4)
    assert values == pytest.approx(want_values, rel=1e-4, abs=1e-4 * want_mean_abs)


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="malunet, microaunet"):
        create_model("unet9000")


if __name__ == "__main__":  # print PINNED_OUTPUTS (or, with --randomised, PINNED_RANDOMISED) lines
    if sys.argv[1:2] == ["--randomised"]:
        for model_name in sys.argv[2:] or MODELS:
            mean_abs, values = randomised_output(model_name)
            print(f"    {model_name!r}: ({mean_abs:.12g}, ({', '.join(f'{v:.12g}' for v in values)})),")
        sys.exit(0)
    for model_name in sys.argv[1:] or MODELS:
        total, mean_abs, values = reference_output(model_name)
        print(
            f"    {model_name!r}: ({total:.12g}, {mean_abs:.12g}, "
            f"({', '.join(f'{v:.12g}' for v in values)})),"
        )
