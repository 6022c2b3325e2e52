"""Batched forward passes from uint8 images to probabilities: the one inference loop.

Evaluation, prediction and the training loop's validation all go through here, so they normalise and
cast the same way. It returns probabilities; each caller thresholds them at the one 0.5
(docs/ARCHITECTURE.md, "Metrics").
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from microaunet_cli.devices import autocast
from microaunet_cli.inference.preprocess import normalize_batch

Images = Tensor | np.ndarray


def _slice(images: Images, start: int, stop: int) -> Tensor:
    if isinstance(images, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(images[start:stop]))
    return images[start:stop]


@torch.no_grad()
def iter_probs(
    model: nn.Module,
    images: Images,
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device,
    batch_size: int = 32,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> Iterator[tuple[int, Tensor]]:
    """Yield ``(start, probs)`` per batch: ``probs`` is ``B×1×H×W`` float32 on ``device``.

    ``images`` is ``N×H×W×3`` uint8 RGB (a tensor on any device, or a numpy array, memory-mapped
    included: only one batch at a time is copied to the device). The caller puts the model in
    eval mode (validation toggles it, so this does not). ``channels_last`` lays the input out as a
    network trained with ``train.channels_last`` holds its weights.
    """
    device = torch.device(device)
    for start in range(0, len(images), batch_size):
        x = normalize_batch(
            _slice(images, start, start + batch_size).to(device, non_blocking=True), mean, std
        )
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(device, amp_dtype):
            logits = model(x)
        # Sigmoid in float32: bf16 probabilities near the 0.5 threshold would flip pixels.
        yield start, torch.sigmoid(logits.float())


def predict_probs(
    model: nn.Module,
    images: Images,
    mean: Sequence[float],
    std: Sequence[float],
    device: str | torch.device,
    batch_size: int = 32,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> Tensor:
    """Probabilities ``N×1×H×W`` (float32, on ``device``) of every image; see :func:`iter_probs`."""
    parts = [p for _, p in iter_probs(model, images, mean, std, device, batch_size, amp_dtype, channels_last)]
    if not parts:
        h, w = images.shape[1:3]
        return torch.zeros(0, 1, h, w, device=device)
    return torch.cat(parts)
