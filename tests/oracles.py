"""Reference implementations written out by hand, independent of the code under test (and of OpenCV):
tests compare the toolkit's results with these instead of with the toolkit's own functions."""

from __future__ import annotations

import numpy as np


def _axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source neighbours and weight along one axis: pixel centres aligned (half-pixel offsets), edges
    clamped, as bilinear resizing without corner alignment defines them."""
    centre = np.clip((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0, n_in - 1)
    lo = np.floor(centre).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, centre - lo


def bilinear_resize(a: np.ndarray, height: int, width: int) -> np.ndarray:
    """``H×W`` map -> ``height×width`` float64 map, bilinear with half-pixel centres and clamped edges."""
    y0, y1, fy = _axis(height, a.shape[0])
    x0, x1, fx = _axis(width, a.shape[1])
    a = np.asarray(a, np.float64)
    top = a[y0][:, x0] * (1 - fx) + a[y0][:, x1] * fx
    bottom = a[y1][:, x0] * (1 - fx) + a[y1][:, x1] * fx
    return top * (1 - fy)[:, None] + bottom * fy[:, None]
