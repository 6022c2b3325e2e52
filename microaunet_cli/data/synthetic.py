"""A deterministic, polyp-like data set, written in the Kvasir-SEG download layout.

It lets the whole pipeline run with no download, and is learnable: polyps are smooth, shaded,
redder blobs on a textured pink mucosa, so a small network reaches a good Dice in a few epochs.
Images come in a few sizes, as JPEG; masks alternate PNG and JPEG so both readers are exercised.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
from pathlib import Path

import cv2
import numpy as np

from microaunet_cli.errors import DataError
from microaunet_cli.fileio import write_json_atomic

log = logging.getLogger(__name__)

# Bump when the pictures change, so an old raw folder is regenerated rather than reused.
GENERATOR_VERSION = 2
SIZES = ((320, 256), (256, 256), (288, 240), (256, 224))  # (width, height), like a few camera modes
MARKER = "synthetic.json"
# Polyps per image: about one image in seven has none (a model must learn to predict empty masks).
_BLOB_COUNTS = (0, 1, 1, 1, 1, 2, 2)


def generate_synthetic(root: Path, count: int, seed: int) -> bool:
    """Write ``count`` image/mask pairs under ``root``; False when an identical set is already there."""
    spec = {"generator": GENERATOR_VERSION, "count": count, "seed": seed}
    if _is_current(root, spec):
        log.info("synthetic images already in %s (%d, seed %d)", root, count, seed)
        return False
    _refuse_foreign_folder(root)
    for sub in ("images", "masks"):
        shutil.rmtree(root / sub, ignore_errors=True)  # a smaller count must not leave stale pairs
        (root / sub).mkdir(parents=True)
    (root / MARKER).unlink(missing_ok=True)
    for index in range(count):
        image, mask = synthetic_pair(seed, index)
        name = f"synth_{index:05d}"
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), image[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 92])
        mask_ext = ".png" if index % 2 == 0 else ".jpg"
        cv2.imwrite(str(root / "masks" / f"{name}{mask_ext}"), mask * np.uint8(255))
    write_json_atomic(root / MARKER, spec)  # written last: an interrupted run is regenerated next time
    log.info("generated %d synthetic images in %s", count, root)
    return True


def _is_current(root: Path, spec: dict) -> bool:
    marker = root / MARKER
    if not marker.is_file():
        return False
    try:
        same = json.loads(marker.read_text(encoding="utf-8")) == spec
    except ValueError:
        return False
    # Files deleted by hand since: regenerate rather than prepare a partial set.
    return same and all(
        len(list((root / sub).glob("synth_*"))) == spec["count"] for sub in ("images", "masks")
    )


def _refuse_foreign_folder(root: Path) -> None:
    """Never delete images this generator did not write (--src pointing at a real data set, say)."""
    if (root / MARKER).is_file():
        return
    for sub in ("images", "masks"):
        if (root / sub).is_dir() and any((root / sub).iterdir()):
            raise DataError(
                f"{root / sub}: holds files that the synthetic generator did not write; "
                f"give --dataset synthetic an empty or new --src (or none: it uses <out>/raw)."
            )


def synthetic_pair(seed: int, index: int) -> tuple[np.ndarray, np.ndarray]:
    """One RGB uint8 image and its {0,1} mask; the same (seed, index) always gives the same pair."""
    rng = np.random.default_rng([seed, index])
    width, height = SIZES[rng.integers(len(SIZES))]
    image = _mucosa(rng, height, width)
    mask = np.zeros((height, width), dtype=bool)
    for _ in range(int(rng.choice(_BLOB_COUNTS))):
        _add_polyp(rng, image, mask)
    image *= _vignette(height, width)
    image += rng.standard_normal((height, width, 1), dtype=np.float32) * 0.015
    return (np.clip(image, 0, 1) * 255 + 0.5).astype(np.uint8), mask.astype(np.uint8)


def _mucosa(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Pink background with slow brightness and hue changes, like lit colon wall."""
    base = np.array([0.86, 0.56, 0.52], np.float32) + rng.uniform(-0.06, 0.06, 3).astype(np.float32)
    coarse = rng.standard_normal((5, 6, 3), dtype=np.float32) * 0.03
    fine = rng.standard_normal((height // 8, width // 8), dtype=np.float32) * 0.03
    texture = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    texture += cv2.resize(fine, (width, height), interpolation=cv2.INTER_LINEAR)[..., None]
    return texture + base


def _add_polyp(rng: np.random.Generator, image: np.ndarray, mask: np.ndarray) -> None:
    """A dome-shaded, slightly irregular ellipse, redder and darker than the mucosa."""
    height, width = mask.shape
    ry, rx = rng.uniform(0.12, 0.3, 2) * min(height, width)
    cy, cx = rng.uniform(ry, height - ry), rng.uniform(rx, width - rx)
    angle = rng.uniform(0, np.pi)
    # Work inside the blob's bounding box only: most of the picture is untouched.
    reach = 1.3 * max(rx, ry)
    y0, y1 = max(0, int(cy - reach)), min(height, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(width, int(cx + reach) + 1)
    dy, dx = np.ogrid[y0 - cy : y1 - cy, x0 - cx : x1 - cx]
    dy, dx = dy.astype(np.float32), dx.astype(np.float32)
    u = (dx * np.cos(angle) + dy * np.sin(angle)) / rx
    v = (-dx * np.sin(angle) + dy * np.cos(angle)) / ry
    radius = np.sqrt(u * u + v * v)
    # A few low-frequency wobbles of the outline (polyps are not perfect ellipses): Im(z^k e^{i phi})
    # is sin(k theta + phi) for the unit direction z, without calling arctan2 and sin per pixel.
    z = (u + 1j * v).astype(np.complex64) / np.maximum(radius, 1e-6)
    wobble = np.ones_like(radius)
    for k in (2, 3, 5):
        wobble += rng.uniform(0, 0.08) * (z**k * np.exp(1j * rng.uniform(0, 2 * np.pi))).imag
    d = radius / wobble
    dome = np.sqrt(np.clip(1 - d * d, 0, 1))[..., None]
    colour = np.array([0.76, 0.25, 0.27], np.float32) + rng.uniform(-0.06, 0.06, 3).astype(np.float32)
    # Specular highlight up-left of the centre, where the endoscope light reflects off the dome.
    highlight = np.exp(-((u + 0.35) ** 2 + (v + 0.35) ** 2) / 0.02)[..., None] * 0.35
    alpha = np.clip((1 - d) * 12, 0, 1)[..., None]  # a one-pixel soft edge, not a hard cut-out
    box = image[y0:y1, x0:x1]
    box += alpha * (colour * (0.55 + 0.45 * dome) + highlight - box)
    mask[y0:y1, x0:x1] |= d < 1


@functools.lru_cache(maxsize=len(SIZES))
def _vignette(height: int, width: int) -> np.ndarray:
    """Darker corners, as under an endoscope's light."""
    yy, xx = np.ogrid[0:height, 0:width]
    r2 = ((yy - height / 2) / (height / 2)) ** 2 + ((xx - width / 2) / (width / 2)) ** 2
    return (1 - 0.35 * np.clip(r2, 0, 2) / 2).astype(np.float32)[..., None]
