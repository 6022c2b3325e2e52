"""Resizing between a photograph's own resolution and the network's input size."""

from __future__ import annotations

import cv2
import numpy as np


def to_input_size(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``H×W×3`` uint8 at the network's input size, resampled as prepare-data resamples its arrays
    (area averaging when shrinking, so no aliasing; bilinear when enlarging): the network sees what it
    was trained on."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    shrinking = h * w >= height * width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def to_original_size(probs: np.ndarray, height: int, width: int) -> np.ndarray:
    """A float probability map back at the photograph's resolution, bilinear (thresholded afterwards,
    so edges fall between input pixels instead of in blocks)."""
    if probs.shape == (height, width):
        return probs
    return cv2.resize(probs.astype(np.float32, copy=False), (width, height), interpolation=cv2.INTER_LINEAR)
