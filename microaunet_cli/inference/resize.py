"""Resizing between a photograph's own resolution and the network's input size."""

from __future__ import annotations

import cv2
import numpy as np

from microaunet_cli.data.decode import resample

# mask = probability > THRESHOLD, everywhere: validation, evaluate, predict, the export sidecar and the
# parity check. The PraNet protocol thresholds at 0.5; one constant keeps every stage on it.
THRESHOLD = 0.5


def to_input_size(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``H×W×3`` uint8 at the network's input size, resampled exactly as prepare-data resamples its
    arrays: the network sees what it was trained on."""
    return resample(image, height, width)


def to_original_size(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float probability map back at the photograph's resolution, bilinear (thresholded afterwards,
    so edges fall between input pixels instead of in blocks)."""
    if probs.shape == (height, width):
        return probs
    return cv2.resize(probs.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_LINEAR)


def mask_at_size(
    probs: np.ndarray, height: int, width: int, threshold: float
) -> tuple[np.ndarray, np.ndarray]:
    """The probability map at ``height×width`` and its mask (``prob > threshold``, strict, as the export
    sidecar states). ``predict`` and ``evaluate`` both go through here, so they give the same masks."""
    prob = to_original_size(probs, height, width)
    return prob, prob > threshold
