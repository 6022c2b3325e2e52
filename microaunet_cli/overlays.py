"""What the outputs look like: outline overlays for images (with a legend) and video frames, and masks
as PNG files.

Outlines rather than filled masks keep the tissue under the polyp visible, which is what a reader
checks when deciding whether a "miss" is a labelling question or a model error.
"""

from __future__ import annotations

import os
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


def _as_uint8(mask: np.ndarray) -> np.ndarray:
    """A {0, 1} mask as uint8, without a copy when it is boolean or uint8 already."""
    return mask.view(np.uint8) if mask.dtype in (np.bool_, np.uint8) else mask.astype(np.uint8)


def outline_thickness(width: int) -> int:
    return max(2, round(width / 250))


def draw_outline(
    canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], thickness: int, smooth: bool = True
) -> None:
    """Outline each region of the ``H×W`` {0, 1} ``mask`` on ``canvas`` (same size), in place.

    ``smooth`` anti-aliases the line. Video frames draw without: at 720p a 5-px line looks the same
    and draws 6x faster (0.14 vs 0.86 ms)."""
    contours, _ = cv2.findContours(_as_uint8(mask), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    line = cv2.LINE_AA if smooth else cv2.LINE_8
    cv2.drawContours(canvas, contours, -1, colour, thickness, lineType=line)


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
    thickness = outline_thickness(canvas.shape[1])
    if gt is not None:
        draw_outline(canvas, masks[1], GT_COLOUR, thickness)
    draw_outline(canvas, masks[0], PRED_COLOUR, thickness)
    return np.concatenate([canvas, _legend(canvas.shape[1], caption, gt is not None)], axis=0)


def outline_frame(bgr: np.ndarray, mask: np.ndarray, caption: str = "", in_place: bool = False) -> np.ndarray:
    """A video frame (BGR, as OpenCV decodes it) with the predicted polyp outlined and an optional
    caption in its top-left corner; same size, no legend."""
    canvas = bgr if in_place else bgr.copy()
    draw_outline(canvas, mask, PRED_COLOUR[::-1], outline_thickness(canvas.shape[1]), smooth=False)
    if caption:
        scale = max(0.4, canvas.shape[1] / 1600)
        origin = (round(8 * scale / 0.4), round(20 * scale / 0.4))
        stroke = max(1, round(scale * 2))
        # Dark halo under white text: legible on pink mucosa and on black borders alike.
        for colour, width in (((0, 0, 0), stroke * 3), ((255, 255, 255), stroke)):
            cv2.putText(canvas, caption, origin, _FONT, scale, colour, width, cv2.LINE_AA)
    return canvas


def write_mask_png(path: Path, mask: np.ndarray) -> None:
    """A {0, 1} mask as a 1-bit PNG (reads back as 0/255): 2-3× faster to encode than 8-bit at 720p.

    Renamed into place like every output, but not fsync'ed: at 30 frames a second a sync per frame
    would hold up the video writer, and a crash loses at most the last frames, never leaves half a file."""
    ok, encoded = cv2.imencode(".png", _as_uint8(mask) * np.uint8(255), [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_bytes(encoded.tobytes())
    os.replace(tmp, path)


def write_png(path: str | Path, array: np.ndarray) -> None:
    """Write an RGB (``H×W×3``) or grey (``H×W``) uint8 array as PNG, atomically."""
    pixels = array[:, :, ::-1] if array.ndim == 3 else array  # OpenCV encodes BGR
    ok, encoded = cv2.imencode(".png", np.ascontiguousarray(pixels))
    if not ok:
        raise RuntimeError(f"PNG encoding failed for {path}")
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
