"""Losses: segmentation (BCE + soft Dice) and the distillation terms (docs/ARCHITECTURE.md, "Losses")."""

from microaunet_cli.losses.distill import (
    bernoulli_kl,
    feature_mimic,
    imitation_weight,
    l2_penalty,
    pixel_infonce,
)
from microaunet_cli.losses.segmentation import SEGMENTATION_LOSSES, bce_dice_loss, structure_loss

__all__ = [
    "SEGMENTATION_LOSSES",
    "bce_dice_loss",
    "bernoulli_kl",
    "feature_mimic",
    "imitation_weight",
    "l2_penalty",
    "pixel_infonce",
    "structure_loss",
]
