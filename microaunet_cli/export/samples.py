"""Image-like inputs for parity checks: smooth colour fields with bright blobs, normalised like data.

Pure Gaussian noise is a poor probe: real images are smooth, so a converter bug that only shows on
structured inputs (a wrong padding mode, a swapped interpolation corner) can hide under noise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from microaunet_cli.inference.preprocess import normalize_batch

# Reddish mucosa-like base colour (RGB, 0..1), so inputs sit in the range a trained network saw.
_BASE_RGB = (0.65, 0.35, 0.30)


def image_like_batch(
    batch: int, size: tuple[int, int], mean: Sequence[float], std: Sequence[float], seed: int = 0
) -> torch.Tensor:
    """``batch×3×H×W`` float32 network input built from synthetic uint8 RGB images."""
    gen = torch.Generator().manual_seed(seed)
    h, w = size
    rgb = torch.tensor(_BASE_RGB).view(1, 3, 1, 1) + 0.15 * _smooth_noise(batch, 3, h, w, gen)
    rgb = rgb + 0.35 * _blobs(batch, h, w, gen)  # brighter, polyp-like regions
    images = (rgb.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1)
    return normalize_batch(images, mean, std)


def _smooth_noise(batch: int, channels: int, h: int, w: int, gen: torch.Generator) -> torch.Tensor:
    """Low-frequency noise in [-1, 1]: a coarse random grid upsampled bicubically."""
    coarse = torch.rand(batch, channels, max(h // 16, 2), max(w // 16, 2), generator=gen) * 2 - 1
    return F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False).clamp(-1, 1)


def _blobs(batch: int, h: int, w: int, gen: torch.Generator, count: int = 3) -> torch.Tensor:
    """Sum of a few random elliptical Gaussians per image, in [0, 1]: ``batch×1×H×W``."""
    ys = torch.linspace(0, 1, h).view(1, 1, h, 1)
    xs = torch.linspace(0, 1, w).view(1, 1, 1, w)
    centre = torch.rand(batch, count, 2, generator=gen)
    radius = 0.05 + 0.15 * torch.rand(batch, count, 2, generator=gen)
    cy, cx = centre[..., 0, None, None], centre[..., 1, None, None]
    ry, rx = radius[..., 0, None, None], radius[..., 1, None, None]
    g = torch.exp(-(((ys - cy) / ry) ** 2 + ((xs - cx) / rx) ** 2))
    return g.sum(dim=1, keepdim=True).clamp(0, 1)
