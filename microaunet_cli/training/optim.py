"""Optimiser and learning-rate schedule from settings."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch

from microaunet_cli.config import OptimSettings, ScheduleSettings


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimSettings) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


class CosineFactor:
    """Multiplier of the base lr at an epoch: linear warm-up, then cosine down to eta_min over t_max
    epochs (restarting every t_max when the run is longer, as torch's CosineAnnealingLR does in effect)."""

    def __init__(self, base_lr: float, eta_min: float, t_max: int, warmup: int) -> None:
        self.base_lr, self.eta_min, self.t_max, self.warmup = base_lr, eta_min, t_max, warmup

    def __call__(self, epoch: int) -> float:
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        t = (epoch - self.warmup) % self.t_max if self.t_max else 0
        floor = self.eta_min / self.base_lr
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * t / self.t_max))


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleSettings, epochs: int):
    """Stepped once per epoch."""
    if cfg.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _epoch: 1.0)
    base = optimizer.param_groups[0]["lr"]
    t_max = cfg.t_max or max(epochs - cfg.warmup_epochs, 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, CosineFactor(base, cfg.eta_min, t_max, cfg.warmup_epochs))
