"""The one place that turns uint8 images into network inputs (training, evaluation, export, predict)."""

from __future__ import annotations

from collections.abc import Sequence

import torch


def normalize_batch(
    images: torch.Tensor,
    mean: Sequence[float],
    std: Sequence[float],
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``B×H×W×3`` uint8 (RGB) -> ``B×3×H×W`` float, scaled to [0, 1] then standardised per channel.

    ``mean`` and ``std`` are on the [0, 1] scale (the train split's, from the data manifest).
    """
    return standardize(images.permute(0, 3, 1, 2).to(dtype).div_(255.0), mean, std)


def standardize(x: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Standardise a ``B×3×H×W`` float batch already on the [0, 1] scale (after augmentation)."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s
