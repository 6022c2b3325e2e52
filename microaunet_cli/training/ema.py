"""An exponential moving average of a network's weights (train.ema_decay).

The average is what the run scores and saves as its network: validation, ``best.pt`` and the
summary's test scores all use it, so ``evaluate``, ``export`` and ``predict`` get the averaged
network with no option of their own. ``last.pt`` also keeps the raw weights to resume from.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class WeightAverage:
    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.steps = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)
        # (average, live) tensor pairs, gathered once: state_dict() rebuilt every step is wasted work,
        # and both modules keep their tensors (loading a state dict copies into them).
        # Floating-point tensors are averaged, the rest (BatchNorm's step counts) copied; each group in
        # one foreach call rather than one call per tensor.
        self._averaged: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        self._copied: tuple[list[torch.Tensor], list[torch.Tensor]] = ([], [])
        for avg, live in zip(self.model.state_dict().values(), model.state_dict().values()):
            group = self._averaged if avg.is_floating_point() else self._copied
            group[0].append(avg)
            group[1].append(live)

    def rate(self) -> float:
        """The decay at this step: a warm-up (1 + t)/(10 + t) keeps the first steps from weighing
        the random initialisation for thousands of steps."""
        return min(self.decay, (1 + self.steps) / (10 + self.steps))

    @torch.no_grad()
    def update(self) -> None:
        """One step of the average towards the network it was made from."""
        d = self.rate()
        self.steps += 1
        if self._averaged[0]:
            torch._foreach_lerp_(self._averaged[0], self._averaged[1], 1.0 - d)
        if self._copied[0]:
            torch._foreach_copy_(self._copied[0], self._copied[1])

    def state_dict(self) -> dict:
        return {"steps": self.steps, "decay": self.decay}

    def load(self, weights: dict, state: dict) -> None:
        self.model.load_state_dict(weights)
        self.steps = int(state.get("steps", 0))
