"""Batch augmentation on the device: one affine warp per sample (flips, rotation, zoom) applied
identically to image and mask, then brightness/contrast jitter on the image.

Random parameters come from a CPU generator fixed per step, so runs repeat exactly and resume
exactly; the warping itself runs wherever the batch is.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from microaunet_cli.config import AugmentSettings


def _coin(p: float, n: int, g: torch.Generator) -> torch.Tensor:
    return torch.rand(n, generator=g) < p


def _uniform(lo: float, hi: float, n: int, g: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def affine_params(cfg: AugmentSettings, n: int, g: torch.Generator) -> torch.Tensor:
    """``n×2×3`` matrices mapping output to input coordinates (``affine_grid`` convention)."""
    flip_x = torch.where(_coin(cfg.hflip, n, g), -1.0, 1.0)
    flip_y = torch.where(_coin(cfg.vflip, n, g), -1.0, 1.0)
    angle = torch.where(_coin(cfg.rotate, n, g),
                        _uniform(-cfg.rotate_degrees, cfg.rotate_degrees, n, g), torch.zeros(n))
    lo, hi = cfg.scale_range
    # Sample the zoom log-uniformly so zooming in and out are equally likely.
    zoom = torch.where(_coin(cfg.scale, n, g), _uniform(math.log(lo), math.log(hi), n, g).exp(), torch.ones(n))
    theta = torch.deg2rad(angle)
    cos, sin = torch.cos(theta) / zoom, torch.sin(theta) / zoom
    mat = torch.zeros(n, 2, 3)
    mat[:, 0, 0], mat[:, 0, 1] = cos * flip_x, -sin * flip_y
    mat[:, 1, 0], mat[:, 1, 1] = sin * flip_x, cos * flip_y
    return mat


def augment_batch(
    images: torch.Tensor, masks: torch.Tensor, cfg: AugmentSettings, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``images`` B×3×H×W float in [0, 1], ``masks`` B×1×H×W float {0, 1}; returns both augmented."""
    if not cfg.enabled:
        return images, masks
    n = images.shape[0]
    mat = affine_params(cfg, n, g)
    identity = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    warp = ~torch.all(torch.isclose(mat, identity).flatten(1), dim=1)
    bright = _uniform(-cfg.brightness, cfg.brightness, n, g)
    contrast = _uniform(1 - cfg.contrast, 1 + cfg.contrast, n, g)
    if warp.any():
        grid = F.affine_grid(mat.to(images.device, images.dtype), list(images.shape), align_corners=False)
        warped_img = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
        warped_msk = F.grid_sample(masks, grid, mode="nearest", padding_mode="zeros", align_corners=False)
        keep = warp.to(images.device).view(-1, 1, 1, 1)
        images = torch.where(keep, warped_img, images)
        masks = torch.where(keep, warped_msk, masks)
    if cfg.brightness > 0 or cfg.contrast > 0:
        mean = images.mean(dim=(1, 2, 3), keepdim=True)
        c = contrast.to(images.device, images.dtype).view(-1, 1, 1, 1)
        b = bright.to(images.device, images.dtype).view(-1, 1, 1, 1)
        images = ((images - mean) * c + mean + b).clamp_(0.0, 1.0)
    return images, masks
