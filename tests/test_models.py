"""Every registered network goes through the same checks (one parametrised tester)."""

from __future__ import annotations

import pytest
import torch

from microaunet_cli.errors import ConfigError
from microaunet_cli.models import count_parameters, create_model, list_models
from microaunet_cli.models.layers import InputShapeError

MODELS = list_models()
PINNED_PARAMS = {"malunet": 177_943, "microaunet": 84_281}


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


def test_unknown_model_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="malunet, microaunet"):
        create_model("unet9000")
