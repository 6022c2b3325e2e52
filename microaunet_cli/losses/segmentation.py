"""Segmentation losses: BCE-with-logits plus soft Dice, weights 1:1 (docs/ARCHITECTURE.md, "Losses"),
and the structure loss of F3Net and PraNet (boundary-weighted BCE plus weighted IoU)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from microaunet_cli.losses.logistic import bce_with_logits


def soft_dice_loss(logits: torch.Tensor, masks: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - Dice per image (smooth = 1), then the mean over the batch."""
    probs = torch.sigmoid(logits.float()).flatten(1)
    masks = masks.float().flatten(1)
    inter = (probs * masks).sum(1)
    dice = (2 * inter + smooth) / (probs.sum(1) + masks.sum(1) + smooth)
    return (1 - dice).mean()


def bce_dice_loss(logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and its two terms; computed in float32 whatever the autocast dtype of the logits."""
    bce = bce_with_logits(logits.float(), masks.float()).mean()
    dice = soft_dice_loss(logits, masks)
    return bce + dice, {"bce": bce.detach(), "dice": dice.detach()}


def box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """The mean over each pixel's k×k window (k odd), zeros outside the map: what
    ``F.avg_pool2d(x, k, stride=1, padding=k // 2, count_include_pad=True)`` gives, from an integral
    image. Pooling with a 31×31 window costs 961 reads per pixel and was most of a 192-px training
    step's time; four reads of running sums give the same means (exactly for 0/1 masks, whose sums
    are integers) some 30 times faster."""
    r = k // 2
    # Running sums in float64 (MPS has none: float32 there, exact for masks up to 4096×4096): in
    # float32 the rounding of a sum over a large map would show in small windows of soft values.
    wide = torch.float32 if x.device.type == "mps" else torch.float64
    sums = F.pad(x.to(wide), (r + 1, r, r + 1, r)).cumsum(-2).cumsum(-1)
    window = sums[..., k:, k:] - sums[..., :-k, k:] - sums[..., k:, :-k] + sums[..., :-k, :-k]
    return (window / (k * k)).to(x.dtype)


def structure_loss(logits: torch.Tensor, masks: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Weighted BCE + weighted IoU per image, then the mean (F3Net, Wei et al. 2020; PraNet).

    A pixel's weight is 1 + 5·|local mean of the mask − mask| over a 31×31 window: pixels near a
    boundary weigh up to 6 times more than those inside or far from a polyp.
    """
    logits, masks = logits.float(), masks.float()
    weight = 1 + 5 * (box_mean(masks, 31) - masks).abs()
    bce = bce_with_logits(logits, masks)
    wbce = (weight * bce).sum((2, 3)) / weight.sum((2, 3))
    probs = torch.sigmoid(logits)
    inter = (probs * masks * weight).sum((2, 3))
    union = ((probs + masks) * weight).sum((2, 3))
    wiou = 1 - (inter + 1) / (union - inter + 1)
    wbce, wiou = wbce.mean(), wiou.mean()
    return wbce + wiou, {"wbce": wbce.detach(), "wiou": wiou.detach()}


# The segmentation losses by the name settings use (train.loss).
SEGMENTATION_LOSSES = {"bce_dice": bce_dice_loss, "structure": structure_loss}
