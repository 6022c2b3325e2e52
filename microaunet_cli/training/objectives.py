"""What a training step computes. The loop is shared; only the objective differs.

An objective is an ``nn.Module`` holding the network being trained (``.model``) plus any
training-only parts (projection heads, adapters); its ``forward(images, masks, ctx)`` returns the
loss and a dict of its terms for the logs. Wrapping the whole objective in DDP keeps every trained
part in sync across processes.

Everything else that differs between teacher training and distillation is asked of the objective
(see :class:`Objective`), so the loop and the runner never test which one they hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from microaunet_cli.losses import SEGMENTATION_LOSSES
from microaunet_cli.training.deep_supervision import DeepSupervision


@dataclass
class StepContext:
    epoch: int  # 0-based epoch being trained
    progress: float  # fractional epochs done (epoch + step / steps_per_epoch)
    generator: torch.Generator  # per-step generator on the training device, for any sampling


class Objective(nn.Module):
    """What the loop and the runner ask of an objective; the defaults suit plain supervised training."""

    # How the network is trained, recorded apart from the network's role in the registry: a student
    # trained alone is a "supervised" run of a "student" network.
    training_kind: ClassVar[str]
    # Appended to "<dataset>-<model>" for the default run folder name.
    run_suffix: ClassVar[str] = ""
    # DDP must be told when some trained parameters get no gradient in a step; the check costs a
    # pass over the graph each step, so only objectives that need it ask for it.
    find_unused_parameters: ClassVar[bool] = False

    model: nn.Module

    def stage(self, epoch: int) -> dict:
        """Columns for this epoch's row of the history."""
        return {}

    def plan(self) -> dict:
        """How the run is laid out (e.g. a curriculum): saved in checkpoints and the summary."""
        return {}

    def checkpoint_extras(self) -> dict[str, Any]:
        """What else every checkpoint and the summary record (e.g. the teacher used)."""
        return {}

    def describe(self, epochs: int) -> str:
        return ""

    def resumed(self, ckpt: dict, epochs: int, epochs_begun: int) -> None:
        """Called after a resume, with the checkpoint and the (possibly changed) epoch count."""

    def after_run(self, summary: dict[str, Any]) -> None:
        """Checks once training ends; may add to the summary, raises on a broken invariant."""


class SegmentationObjective(Objective):
    """Plain supervised training (the teacher, or a student alone): BCE + soft Dice, or the structure
    loss (``train.loss``), plus the decoder's side outputs with ``deep_supervision`` > 0."""

    training_kind = "supervised"

    def __init__(self, model: nn.Module, loss: str = "bce_dice", deep_supervision: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.seg_loss = SEGMENTATION_LOSSES[loss]
        self.side = DeepSupervision(model, deep_supervision) if deep_supervision > 0 else None

    def forward(self, images: torch.Tensor, masks: torch.Tensor, ctx: StepContext):
        if self.side is None:
            return self.seg_loss(self.model(images), masks)
        self.side.arm()
        loss, terms = self.seg_loss(self.model(images), masks)
        side = self.side.side_loss(masks, self.seg_loss)
        return loss + side, {**terms, "side": side.detach()}
