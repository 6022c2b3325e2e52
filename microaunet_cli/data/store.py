"""Write one split's arrays atomically, with the hashes and statistics the manifest records.

Arrays are filled through a memory map of a temporary file and renamed into place only when complete,
so a killed run never leaves a file under the final name that looks whole; peak memory stays at a few
images whatever the data set size.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from microaunet_cli.data.decode import Decoded
from microaunet_cli.data.layouts import Sample
from microaunet_cli.data.original_masks import DATA_FILE, INDEX_FILE, write_original_masks
from microaunet_cli.errors import DataError
from microaunet_cli.fileio import atomic_path, write_text_atomic


@dataclass
class ChannelStats:
    """Per-channel moments of each training image on the [0, 1] scale.

    Every prepared image has the same size, so the statistics of any subset of rows (the training
    folds of a k-fold split) are plain means of the per-image moments."""

    means: list[np.ndarray] = field(default_factory=list)
    squares: list[np.ndarray] = field(default_factory=list)

    def add(self, image: np.ndarray) -> None:
        # cv2.meanStdDev is one C pass; NumPy float conversion of every pixel took a quarter of the run.
        mean, std = (v.ravel() / 255.0 for v in cv2.meanStdDev(image))
        self.means.append(mean)
        self.squares.append(np.square(std) + np.square(mean))

    def mean_std(self, rows: np.ndarray | None = None) -> tuple[list[float], list[float]]:
        """Mean and standard deviation over the images ``rows`` (all of them by default)."""
        if not self.means:
            return [0.0] * 3, [1.0] * 3
        means, squares = np.stack(self.means), np.stack(self.squares)
        if rows is not None:
            means, squares = means[rows], squares[rows]
        mean = means.mean(axis=0)
        var = np.maximum(squares.mean(axis=0) - mean**2, 0.0)
        return [round(float(m), 6) for m in mean], [round(float(s), 6) for s in np.sqrt(var)]


@dataclass
class SplitRecord:
    """What was written for one split: kept samples, and (file, reason) of those left out."""

    kept: list[Sample]
    bad: list[tuple[str, str]]
    files: dict[str, dict]


@dataclass
class _Originals:
    """Original masks of the kept samples, collected while the arrays are filled."""

    pngs: list[bytes] = field(default_factory=list)
    shapes: list[tuple[int, int]] = field(default_factory=list)


def write_split(
    folder: Path,
    samples: list[Sample],
    decoded: Iterable[Decoded],
    size: int,
    advance: Callable[[int], None],
    stats: ChannelStats | None = None,
    skip_bad: bool = False,
) -> SplitRecord:
    """Fill ``folder``/images.npy, masks.npy and names.txt from ``decoded`` (in ``samples`` order).

    Bad pairs raise :class:`DataError` listing all of them (nothing is renamed into place), or with
    ``skip_bad`` are left out and returned in ``SplitRecord.bad``.
    """
    folder.mkdir(parents=True, exist_ok=True)
    n = len(samples)
    with atomic_path(folder / "images.npy") as tmp_images, atomic_path(folder / "masks.npy") as tmp_masks:
        images = np.lib.format.open_memmap(tmp_images, "w+", np.uint8, (n, size, size, 3))
        masks = np.lib.format.open_memmap(tmp_masks, "w+", np.uint8, (n, size, size))
        originals = _Originals()
        kept, bad = _fill(samples, decoded, images, masks, advance, stats, originals)
        if bad and not skip_bad:
            raise bad_files_error(bad)
        images.flush()
        masks.flush()
        del images, masks  # close the maps before the files are renamed
        if len(kept) < n:
            _truncate(tmp_images, len(kept))
            _truncate(tmp_masks, len(kept))
        files = {
            "images": _describe(tmp_images, folder / "images.npy"),
            "masks": _describe(tmp_masks, folder / "masks.npy"),
        }
    files["original_masks"] = _store_originals(folder, originals)
    write_text_atomic(folder / "names.txt", "".join(f"{s.name}\n" for s in kept))
    for name in ("images.npy", "masks.npy", "names.txt", DATA_FILE, INDEX_FILE):
        share_like_normal_file(folder / name)
    return SplitRecord(kept, bad, files)


def _store_originals(folder: Path, originals: _Originals) -> dict:
    with atomic_path(folder / DATA_FILE) as tmp_data, atomic_path(folder / INDEX_FILE) as tmp_index:
        write_original_masks(originals.pngs, originals.shapes, tmp_data, tmp_index)
        return {
            "data": _describe(tmp_data, folder / DATA_FILE),
            "index": _describe(tmp_index, folder / INDEX_FILE),
        }


def share_like_normal_file(path: Path) -> None:
    """Give a file written through a temporary file the permissions of a plain new file.

    mkstemp creates files readable by their owner only; prepared data is often shared by a group."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fill(
    samples: list[Sample],
    decoded: Iterable[Decoded],
    images: np.ndarray,
    masks: np.ndarray,
    advance: Callable[[int], None],
    stats: ChannelStats | None,
    originals: _Originals,
) -> tuple[list[Sample], list[tuple[str, str]]]:
    kept: list[Sample] = []
    bad: list[tuple[str, str]] = []
    for sample, result in zip(samples, decoded, strict=True):
        advance(1)
        if result.error is not None:
            bad.append((str(sample.image), result.error))
            continue
        images[len(kept)] = result.image
        masks[len(kept)] = result.mask
        if stats is not None:
            stats.add(result.image)
        originals.pngs.append(result.original)
        originals.shapes.append(result.original_shape)
        kept.append(sample)
    return kept, bad


def bad_files_error(
    bad: list[tuple[str, str]], limit: int = 10, listed_in: str = "manifest.json"
) -> DataError:
    """One error that lists every bad file (up to ``limit``), so users fix them in one go."""
    lines = [f"{len(bad)} file(s) cannot be used:"]
    lines += [
        f"  {reason if reason.startswith(file) else f'{file}: {reason}'}" for file, reason in bad[:limit]
    ]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    lines.append(
        f"Fix or remove them, or pass --skip-bad to leave them out (they are listed in {listed_in})."
    )
    return DataError("\n".join(lines))


def _truncate(path: Path, rows: int) -> None:
    """Rewrite the .npy at ``path`` with only its first ``rows`` rows (after skipped files)."""
    full = np.load(path, mmap_mode="r")
    kept = np.array(full[:rows])
    del full
    with open(path, "wb") as fh:
        np.save(fh, kept)


def _describe(tmp: Path, final: Path) -> dict:
    array = np.load(tmp, mmap_mode="r")
    info = {
        "file": f"{final.parent.name}/{final.name}",
        "shape": list(array.shape),
        "dtype": str(array.dtype),
        "bytes": tmp.stat().st_size,
        "sha256": file_sha256(tmp),
    }
    del array
    return info


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
