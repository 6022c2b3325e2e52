"""Overlay pictures: the image with ground-truth and prediction outlines, and a legend underneath.

Outlines rather than filled masks keep the tissue under the polyp visible, which is what a reader
checks when deciding whether a "miss" is a labelling question or a model error.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from microaunet_cli.fileio import atomic_path

# RGB. Green and magenta stay distinct under the common red-green colour-vision deficiencies.
GT_COLOUR = (0, 230, 0)
PRED_COLOUR = (255, 0, 255)
# Small images are enlarged (nearest neighbour) so outlines and the legend stay legible.
MIN_WIDTH = 320
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def _outline(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int) -> None:
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(canvas, contours, -1, colour, thickness, lineType=cv2.LINE_AA)


def _enlarge(image: np.ndarray, *masks: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    factor = max(1, -(-MIN_WIDTH // image.shape[1]))
    if factor == 1:
        return image, list(masks)
    size = (image.shape[1] * factor, image.shape[0] * factor)
    return (
        cv2.resize(image, size, interpolation=cv2.INTER_NEAREST),
        [cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST) for m in masks],
    )


def _legend(width: int, caption: str, with_gt: bool) -> np.ndarray:
    """A white strip: colour keys on the first line, the caption on the second.

    Sized for a 640-px-wide image and scaled up for larger photographs, so it reads the same in a viewer.
    """
    k = max(1.0, width / 640)
    font, stroke = 0.4 * k, max(1, round(k))
    bar = np.full((round(44 * k), width, 3), 255, np.uint8)
    x = round(6 * k)
    keys = ([("ground truth", GT_COLOUR)] if with_gt else []) + [("prediction", PRED_COLOUR)]
    for label, colour in keys:
        cv2.line(bar, (x, round(13 * k)), (x + round(18 * k), round(13 * k)), colour, round(3 * k))
        cv2.putText(
            bar, label, (x + round(24 * k), round(17 * k)), _FONT, font, (0, 0, 0), stroke, cv2.LINE_AA
        )
        x += round(42 * k) + cv2.getTextSize(label, _FONT, font, stroke)[0][0]
    cv2.putText(bar, caption, (round(6 * k), round(36 * k)), _FONT, font, (0, 0, 0), stroke, cv2.LINE_AA)
    return bar


def draw_overlay(
    image: np.ndarray, pred: np.ndarray, gt: np.ndarray | None = None, caption: str = ""
) -> np.ndarray:
    """``H×W×3`` uint8 RGB image with prediction (and ground-truth) outlines, plus a legend strip.

    ``pred`` and ``gt`` are ``H×W`` {0, 1} masks at the image's resolution.
    """
    masks = [pred] if gt is None else [pred, gt]
    canvas, masks = _enlarge(np.ascontiguousarray(image), *masks)
    canvas = canvas.copy()
    thickness = max(2, round(canvas.shape[1] / 250))
    if gt is not None:
        _outline(canvas, masks[1], GT_COLOUR, thickness)
    _outline(canvas, masks[0], PRED_COLOUR, thickness)
    return np.concatenate([canvas, _legend(canvas.shape[1], caption, gt is not None)], axis=0)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an RGB (``H×W×3``) or grey (``H×W``) uint8 array as PNG, atomically."""
    pixels = array[:, :, ::-1] if array.ndim == 3 else array  # OpenCV encodes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
