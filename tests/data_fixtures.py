"""Tiny data set folders in each distributed layout, for the tests of prepare-data (tests/test_data_*.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import tifffile


def pair(seed: int, width: int = 48, height: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """An RGB image with a red square "polyp" on a pink background, and its {0,1} mask."""
    rng = np.random.default_rng(seed)
    image = np.empty((height, width, 3), np.uint8)
    image[:] = (200, 120, 110)
    image += rng.integers(0, 20, image.shape, dtype=np.uint8)
    mask = np.zeros((height, width), np.uint8)
    y, x = int(rng.integers(0, height // 2)), int(rng.integers(0, width // 2))
    mask[y : y + height // 3, x : x + width // 3] = 1
    image[mask == 1] = (180, 40, 40)
    return image, mask


def write_image(path: Path, rgb: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix, rgb[:, :, ::-1].copy())
    assert ok
    path.write_bytes(data.tobytes())
    return path


def write_mask(path: Path, mask: np.ndarray, channels: int = 1) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    grey = mask * np.uint8(255)
    out = np.repeat(grey[..., None], channels, axis=2) if channels > 1 else grey
    ok, data = cv2.imencode(path.suffix, out)
    assert ok
    path.write_bytes(data.tobytes())
    return path


def make_kvasir(
    root: Path,
    n: int = 10,
    names: list[str] | None = None,
    image_ext: str = ".jpg",
    mask_ext: str = ".jpg",
    sizes: tuple[tuple[int, int], ...] = ((48, 40), (64, 48)),
) -> Path:
    """Kvasir-SEG as downloaded: images/<stem>.jpg, masks/<stem>.jpg, images of several sizes."""
    names = names or [f"img{i:03d}" for i in range(n)]
    for i, name in enumerate(names):
        image, mask = pair(i, *sizes[i % len(sizes)])
        write_image(root / "images" / f"{name}{image_ext}", image)
        write_mask(root / "masks" / f"{name}{mask_ext}", mask)
    return root


def make_presplit(root: Path, counts: dict[str, int]) -> Path:
    """Kvasir-SEG pre-split: train|val|test/images|masks."""
    start = 0
    for part, n in counts.items():
        make_kvasir(root / part, names=[f"{part}{i:03d}" for i in range(start, start + n)])
        start += n
    return root


def make_cvc_png(root: Path, n: int = 12, per_sequence: int = 3, metadata: bool = True) -> Path:
    """CVC-ClinicDB PNG: PNG/Original/N.png, PNG/Ground Truth/N.png (3-channel, faint noise), metadata.csv."""
    rows = ["frame_id,sequence_id"]
    for frame in range(1, n + 1):
        image, mask = pair(frame, 48, 36)
        write_image(root / "PNG" / "Original" / f"{frame}.png", image)
        faint = (mask * 255 + (1 - mask) * np.uint8(frame % 12)).astype(
            np.uint8
        )  # values ~0-11 are background
        path = root / "PNG" / "Ground Truth" / f"{frame}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.repeat(faint[..., None], 3, axis=2))
        rows.append(f"{frame},{(frame - 1) // per_sequence + 1}")
    if metadata:
        (root / "metadata.csv").write_text("\n".join(rows) + "\n")
    return root


def make_cvc_tif(root: Path, n: int = 3) -> Path:
    """CVC-ClinicDB TIF: 3-channel frames tagged greyscale (OpenCV reads one channel), as released."""
    for frame in range(1, n + 1):
        image, mask = pair(frame, 48, 36)
        write_tif(root / "Original" / f"{frame}.tif", image)
        write_tif(root / "Ground Truth" / f"{frame}.tif", mask * np.uint8(255))
    return root


def write_tif(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path, array, photometric="minisblack", planarconfig="contig" if array.ndim == 3 else None
    )
    return path
