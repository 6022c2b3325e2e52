"""Optimiser and learning-rate schedule from settings."""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable

import torch
from torch import nn

from microaunet_cli.config import OptimSettings, ScheduleSettings

log = logging.getLogger(__name__)


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimSettings) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if cfg.name in ("adamw", "adam"):
        cls = torch.optim.AdamW if cfg.name == "adamw" else torch.optim.Adam
        # One fused kernel for every parameter instead of a dozen small ops per parameter: the same
        # update, 10-15% of a CPU step at 128 px for these small networks (docs/RESULTS.md).
        fused = _fused_supported(params)
        return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay, betas=cfg.betas, fused=fused or None)
    return torch.optim.SGD(params, lr=cfg.lr, weight_decay=cfg.weight_decay, momentum=cfg.momentum)


def _fused_supported(params: list[torch.nn.Parameter]) -> bool:
    """Fused Adam(W) runs on float parameters of one CPU or CUDA device."""
    devices = {p.device.type for p in params}
    return len(devices) == 1 and devices <= {"cpu", "cuda"} and all(p.is_floating_point() for p in params)


def shrinkable_parameters(model: nn.Module) -> list[nn.Parameter]:
    """The weights an L2 penalty should pull towards 0: conv and linear kernels (2-D and up).

    Left out, as the usual weight-decay grouping does (timm, nanoGPT): biases, norm gains and shifts
    (GroupNorm/BatchNorm weight and bias, 1-D) and scalar gates such as LSCAB's α and β (0-D). Pulling
    a norm gain or a gate to 0 switches its path off instead of regularising it. (AdamW's own weight
    decay still covers every parameter, as in MALUNet's published recipe.)
    """
    return [p for p in model.parameters() if p.requires_grad and p.ndim >= 2]


class CosineFactor:
    """Multiplier of the base lr at an epoch: linear warm-up, then cosine down to eta_min over t_max
    epochs (restarting every t_max when the run is longer, as torch's CosineAnnealingLR does in effect).

    ``continue_to`` replaces the part after one epoch by a cosine from that epoch's factor down to the
    floor at a new final epoch; it is how a resumed run with another ``--epochs`` carries on. Its fields
    live in ``__dict__``, which ``LambdaLR`` saves and restores, so a second resume keeps it.
    """

    def __init__(self, base_lr: float, eta_min: float, t_max: int, warmup: int) -> None:
        self.base_lr, self.eta_min, self.t_max, self.warmup = base_lr, eta_min, t_max, warmup
        self.from_epoch: int | None = None  # the continuation, when set: from this epoch...
        self.from_factor = 1.0  # ...at this factor...
        self.end_epoch = 0  # ...to the floor at this epoch (one past the last trained, like t_max)

    @property
    def floor(self) -> float:
        return self.eta_min / self.base_lr

    def __call__(self, epoch: int) -> float:
        if self.from_epoch is not None and epoch >= self.from_epoch:
            span = max(self.end_epoch - self.from_epoch, 1)
            t = min(epoch - self.from_epoch, span)
            return self.floor + (self.from_factor - self.floor) * 0.5 * (1 + math.cos(math.pi * t / span))
        if epoch < self.warmup:
            return (epoch + 1) / (self.warmup + 1)
        t = (epoch - self.warmup) % self.t_max  # t_max >= 1: settings validate it, build_scheduler clamps it
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * t / self.t_max))

    def continue_to(self, anchor: int, end_epoch: int) -> None:
        """From epoch ``anchor`` (whose lr is kept) fall as a cosine to the floor at ``end_epoch``."""
        self.from_factor = self(anchor)
        self.from_epoch, self.end_epoch = anchor, end_epoch


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: ScheduleSettings, epochs: int):
    """Stepped once per epoch."""
    if cfg.name == "constant":
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _epoch: 1.0)
    base = optimizer.param_groups[0]["lr"]
    t_max = cfg.t_max or max(epochs - cfg.warmup_epochs, 1)
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, CosineFactor(base, cfg.eta_min, t_max, cfg.warmup_epochs)
    )


def replan_schedule(
    scheduler, cfg: ScheduleSettings, old_epochs: int, epochs: int, epochs_done: int, mid_epoch: bool
) -> None:
    """A resumed run whose final epoch count changed: the lr never jumps back up.

    Only a cosine that spans the run (``t_max`` unset) depends on the epoch count. If the run is
    still in warm-up, the plan becomes the one of a run started with ``epochs``; otherwise the lr
    falls as a cosine from the lr of the last epoch trained (or of the epoch in progress) to the
    floor at the new end. A fixed ``t_max`` or a constant lr carry on unchanged.
    """
    factors = [f for f in scheduler.lr_lambdas if isinstance(f, CosineFactor)]
    if old_epochs == epochs or cfg.t_max is not None or not factors:
        return
    anchor = epochs_done if mid_epoch else epochs_done - 1
    for f in factors:
        if anchor < f.warmup:
            f.t_max, f.from_epoch = max(epochs - f.warmup, 1), None
        else:
            f.continue_to(anchor, epochs)
    step = scheduler.last_epoch
    for group, base, f in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, scheduler.lr_lambdas):
        group["lr"] = base * f(step)
    scheduler._last_lr = [g["lr"] for g in scheduler.optimizer.param_groups]
    log.info(
        "--epochs changed from %d to %d on resume: the lr falls from %.3g (epoch %d) to %.3g at the end",
        old_epochs,
        epochs,
        scheduler.base_lrs[0] * factors[0](max(anchor, 0)),
        max(anchor, 0) + 1,
        factors[0].eta_min,
    )
