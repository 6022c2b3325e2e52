"""BCE-with-logits plus soft Dice, weights 1:1 (docs/ARCHITECTURE.md, "Losses")."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_dice_loss(logits: torch.Tensor, masks: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - Dice per image (smooth = 1), then the mean over the batch."""
    probs = torch.sigmoid(logits.float()).flatten(1)
    masks = masks.float().flatten(1)
    inter = (probs * masks).sum(1)
    dice = (2 * inter + smooth) / (probs.sum(1) + masks.sum(1) + smooth)
    return (1 - dice).mean()


def bce_dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and its two terms; computed in float32 whatever the autocast dtype of the logits."""
    bce = F.binary_cross_entropy_with_logits(logits.float(), masks.float())
    dice = soft_dice_loss(logits, masks)
    return bce + dice, {"bce": bce.detach(), "dice": dice.detach()}
