"""What a training step computes. The loop is shared; only the objective differs.

An objective is an ``nn.Module`` holding the network being trained (``.model``) plus any
training-only parts (projection heads, adapters); its ``forward(images, masks, ctx)`` returns the
loss and a dict of its terms for the logs. Wrapping the whole objective in DDP keeps every trained
part in sync across processes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from microaunet_cli.losses import bce_dice_loss


@dataclass
class StepContext:
    epoch: int  # 0-based epoch being trained
    progress: float  # fractional epochs done (epoch + step / steps_per_epoch)
    generator: torch.Generator  # per-step generator on the training device, for any sampling


class SegmentationObjective(nn.Module):
    """Plain supervised training (the teacher, or a student alone): BCE + soft Dice."""

    # How the network is trained, recorded apart from the network's role in the registry: a student
    # trained alone is a "supervised" run of a "student" network.
    training_kind = "supervised"

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def stage(self, epoch: int) -> dict:
        return {}

    def plan(self) -> dict:
        return {}

    def describe(self, epochs: int) -> str:
        return ""

    def resumed(self, ckpt: dict, epochs: int, epochs_begun: int) -> None:
        """Nothing here depends on the epoch count."""

    def forward(self, images: torch.Tensor, masks: torch.Tensor, ctx: StepContext):
        return bce_dice_loss(self.model(images), masks)
