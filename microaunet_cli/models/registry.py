"""Name -> constructor registry: ``create_model("malunet", c_list=[...])``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from microaunet_cli.errors import ConfigError

# The interface check builds each network at these widths (small: registration runs at import) and
# runs it on one image of this side (the smallest the five stride-2 stages allow).
PROBE_C_LIST = (8, 8, 8, 8, 8, 8)
PROBE_SIDE = 32


@dataclass(frozen=True)
class ModelEntry:
    name: str
    factory: Callable[..., nn.Module]
    role: str  # "teacher" or "student"
    summary: str


_REGISTRY: dict[str, ModelEntry] = {}


class ModelInterfaceError(TypeError):
    """A network registered without what training and distillation rely on (a bug in its code)."""


def register_model(name: str, *, role: str, summary: str) -> Callable:
    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise RuntimeError(f"model {name!r} registered twice")
        check_interface(name, factory)
        _REGISTRY[name] = ModelEntry(name, factory, role, summary)
        return factory

    return wrap


def check_interface(name: str, factory: Callable[..., nn.Module]) -> None:
    """Build a tiny copy and check what distillation needs of it (the contract in models/base.py).

    Checked here, once per network, so a new network that breaks the contract fails when its module
    is imported, not hours into a distillation run.
    """
    # A private random stream: registering must not move the seeded generator of the caller.
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        try:
            net = factory(c_list=PROBE_C_LIST).eval()
        except TypeError as exc:
            raise ModelInterfaceError(
                f"model {name!r}: its factory must accept c_list=[six widths] ({exc})"
            ) from None
        problem = _interface_problem(net)
    if problem:
        raise ModelInterfaceError(
            f"model {name!r} does not keep the network contract of models/base.py: {problem}. "
            "Distillation needs c_list and forward(x, return_features=True) -> (logits, five skips at "
            "strides 2..32 with c_list[:5] channels, last decoder feature at stride 2 with c_list[0])"
        )


def _interface_problem(net: nn.Module) -> str | None:
    """What ``net`` (built at PROBE_C_LIST) lacks, or None."""
    c_list = tuple(getattr(net, "c_list", ()))
    if c_list != PROBE_C_LIST:
        return f"its c_list is {c_list or 'missing'}, expected the {PROBE_C_LIST} it was built with"
    x = torch.zeros(1, getattr(net, "input_channels", 3), PROBE_SIDE, PROBE_SIDE)
    logits = net(x)
    try:
        out = net(x, return_features=True)
    except TypeError as exc:
        return f"forward does not take return_features ({exc})"
    if not isinstance(out, tuple) or len(out) != 3:
        return "forward(x, return_features=True) must return (logits, skips, decoder_feature)"
    feat_logits, skips, decoder_feature = out
    if not isinstance(logits, torch.Tensor) or logits.shape[-2:] != x.shape[-2:]:
        return "forward(x) must return logits at the input size"
    if not isinstance(feat_logits, torch.Tensor) or feat_logits.shape != logits.shape:
        return "the first output of forward(x, return_features=True) must be the logits of forward(x)"
    want = [(c, PROBE_SIDE >> (i + 1)) for i, c in enumerate(c_list[:5])]
    got = [(t.shape[1], t.shape[-1]) for t in skips] if isinstance(skips, (tuple, list)) else []
    if got != want:
        return f"skips as (channels, side) are {got}, expected {want}"
    if not isinstance(decoder_feature, torch.Tensor) or decoder_feature.shape[1:] != (
        c_list[0],
        PROBE_SIDE // 2,
        PROBE_SIDE // 2,
    ):
        return "the last decoder feature must have c_list[0] channels at stride 2"
    return None


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def model_entry(name: str) -> ModelEntry:
    if name not in _REGISTRY:
        raise ConfigError(f"unknown model {name!r}; registered networks: {', '.join(list_models())}")
    return _REGISTRY[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered network; options left out (or None) keep the network's defaults."""
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    return model_entry(name).factory(**kwargs)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable) parameter counts."""
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return total, trainable
