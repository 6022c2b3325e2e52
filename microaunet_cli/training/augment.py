"""Batch augmentation on the device: one affine warp per sample (flips, rotation, zoom) applied
identically to image and mask, then brightness/contrast jitter on the image.

Random parameters are drawn on the batch's own device from a generator fixed per step, so runs
repeat exactly and resume exactly, and no host<->device copy stalls the GPU queue (a pageable copy
waits for every kernel queued before it).
"""

from __future__ import annotations

import math
import random

import torch
import torch.nn.functional as F

from microaunet_cli.config import AugmentSettings


def _coin(p: float, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g, device=g.device) < p


def _uniform(lo: float, hi: float, n: int, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g, device=g.device)


def affine_params(cfg: AugmentSettings, n: int, g: torch.Generator) -> torch.Tensor:
    """``n×2×3`` matrices mapping output to input coordinates (``affine_grid`` convention)."""
    one, zero = torch.ones(n, device=g.device), torch.zeros(n, device=g.device)
    flip_x = torch.where(_coin(cfg.hflip, n, g), -one, one)
    flip_y = torch.where(_coin(cfg.vflip, n, g), -one, one)
    angle = torch.where(
        _coin(cfg.rotate, n, g), _uniform(-cfg.rotate_degrees, cfg.rotate_degrees, n, g), zero
    )
    lo, hi = cfg.scale_range
    # Sample the zoom log-uniformly so zooming in and out are equally likely.
    zoom = torch.where(_coin(cfg.scale, n, g), _uniform(math.log(lo), math.log(hi), n, g).exp(), one)
    theta = torch.deg2rad(angle)
    cos, sin = torch.cos(theta) / zoom, torch.sin(theta) / zoom
    row0 = torch.stack([cos * flip_x, -sin * flip_y, zero], dim=1)
    row1 = torch.stack([sin * flip_x, cos * flip_y, zero], dim=1)
    return torch.stack([row0, row1], dim=1)


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, cfg: AugmentSettings, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` B×3×H×W float in [0, 1], ``masks`` B×1×H×W float {0, 1}; returns both augmented.

    ``g`` must live on the batch's device. Every sample is warped (an identity warp samples pixel
    centres exactly), which avoids a data-dependent branch and the sync it would cost.
    """
    if not cfg.enabled:
        return images, masks
    n = images.shape[0]
    mat = affine_params(cfg, n, g).to(images.dtype)
    bright = _uniform(-cfg.brightness, cfg.brightness, n, g).to(images.dtype).view(-1, 1, 1, 1)
    contrast = _uniform(1 - cfg.contrast, 1 + cfg.contrast, n, g).to(images.dtype).view(-1, 1, 1, 1)
    grid = F.affine_grid(mat, list(images.shape), align_corners=False)
    images = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    masks = F.grid_sample(masks, grid, mode="nearest", padding_mode="zeros", align_corners=False)
    if cfg.brightness > 0 or cfg.contrast > 0:
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        images = ((images - mean) * contrast + mean + bright).clamp_(0.0, 1.0)
    return images, masks


def multiscale_side(side: int, factors: list[float], seed: int, epoch: int, batch: int) -> int:
    """The side of one batch under multi-scale training: ``side`` times a factor drawn from
    ``factors``, rounded to a multiple of 32 (at least 32). Drawn on the host from (seed, epoch,
    batch), so resumed runs repeat it and no device value is read."""
    if not factors:
        return side
    factor = random.Random(f"{seed}-{epoch}-{batch}").choice(factors)
    return max(32, round(side * factor / 32) * 32)


def resize_batch(images: torch.Tensor, masks: torch.Tensor, side: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Images bilinearly, masks bilinearly then thresholded at 0.5, to ``side``×``side``."""
    if images.shape[-1] == side and images.shape[-2] == side:
        return images, masks
    images = F.interpolate(images, size=(side, side), mode="bilinear", align_corners=False)
    masks = (F.interpolate(masks, size=(side, side), mode="bilinear", align_corners=False) > 0.5).to(
        masks.dtype
    )
    return images, masks
