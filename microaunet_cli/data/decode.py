"""Decode and resize image/mask pairs, in parallel processes when there is enough work.

Resizing (what every prepared array holds):
- images: ``INTER_AREA`` when shrinking (averages the footprint, no aliasing), ``INTER_LINEAR`` when
  enlarging;
- masks: thresholded at 128 when read, resized the same way as the image as 0/255, then thresholded
  again at 128 — a pixel is polyp when at least half its footprint is. Nearest neighbour would pick one
  source pixel per output pixel and shift edges by up to half a source pixel against the image.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from microaunet_cli.data.io import read_image, read_mask
from microaunet_cli.data.layouts import Sample
from microaunet_cli.data.original_masks import encode_mask
from microaunet_cli.errors import DataError

# Below this many pairs a process pool costs more to start than it saves.
MIN_PER_WORKER = 128
MAX_WORKERS = 8


@dataclass(frozen=True)
class Decoded:
    """One resized pair, or the reason it could not be used (``error`` names the file)."""

    image: np.ndarray | None
    mask: np.ndarray | None
    error: str | None = None
    # The mask at the image's own resolution, PNG-encoded in the worker (small to send back), and its
    # height and width: what test scores are computed against.
    original: bytes | None = None
    original_shape: tuple[int, int] | None = None


def resample(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area averaging when shrinking (no aliasing), bilinear when enlarging. Predict uses the same
    rule, so a network sees photographs resampled as its training arrays were."""
    h, w = image.shape[:2]
    if (h, w) == (height, width):
        return image
    shrinking = h * w >= height * width
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def resize_image(image: np.ndarray, size: int) -> np.ndarray:
    return resample(image, size, size)


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """{0,1} mask -> {0,1} mask of side ``size``: interpolate as 0/255, threshold at 128."""
    if mask.shape == (size, size):
        return mask
    scaled = resize_image(mask * np.uint8(255), size)
    return (scaled >= 128).astype(np.uint8)


def decode_pair(image_path: Path, mask_path: Path, size: int) -> Decoded:
    try:
        image = read_image(image_path)
        mask = read_mask(mask_path)
    except DataError as exc:
        return Decoded(None, None, str(exc))
    if image.shape[:2] != mask.shape:
        return Decoded(
            None,
            None,
            f"{mask_path}: mask is {mask.shape[1]}x{mask.shape[0]} but its image "
            f"{image_path.name} is {image.shape[1]}x{image.shape[0]}; they do not "
            f"belong together. Replace the pair.",
        )
    return Decoded(
        resize_image(image, size),
        resize_mask(mask, size),
        original=encode_mask(mask),
        original_shape=mask.shape,
    )


def _decode_task(task: tuple[Path, Path, int]) -> Decoded:
    return decode_pair(*task)


def worker_count(requested: int | None, n_items: int) -> int:
    """An explicit request is honoured; the automatic choice skips the pool for small jobs."""
    if requested is not None:
        return max(1, min(requested, n_items))
    return max(1, min(os.cpu_count() or 1, MAX_WORKERS, n_items // MIN_PER_WORKER))


def _pool_context() -> multiprocessing.context.BaseContext:
    """fork on Linux, spawn elsewhere.

    spawn and forkserver re-run the command's entry script in every worker (CPython 3.11 never
    preloads ``__main__`` in the fork server), and the command imports torch: ~2 s and ~600 MB per
    worker. Forked workers share the parent's memory and start at once; they run only OpenCV/NumPy
    code. They must not reconfigure OpenCV's thread pool (``cv2.setNumThreads`` hangs in a child
    forked from a parent that already resized images), so they keep it as inherited."""
    return multiprocessing.get_context("fork" if sys.platform.startswith("linux") else "spawn")


def decode_samples(samples: Sequence[Sample], size: int, workers: int) -> Iterator[Decoded]:
    """Decoded pairs in the order of ``samples``; ``workers == 1`` decodes in this process."""
    tasks = [(s.image, s.mask, size) for s in samples]
    if workers <= 1:
        yield from map(_decode_task, tasks)
        return
    context = _pool_context()
    chunk = max(1, min(16, len(tasks) // (workers * 4)))
    pool = ProcessPoolExecutor(workers, mp_context=context)
    try:
        yield from pool.map(_decode_task, tasks, chunksize=chunk)
    finally:
        # On an error or Ctrl-C do not wait for the queued work: drop it.
        pool.shutdown(wait=True, cancel_futures=True)
