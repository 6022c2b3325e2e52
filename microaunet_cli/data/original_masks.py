"""Each image's ground truth at its own resolution, kept beside the resized arrays for scoring.

The PraNet protocol scores against the original masks (docs/ARCHITECTURE.md, "Metrics"): a
prediction at the training size is resized to each mask's size before thresholding. Originals
differ in size, so they cannot share an array: each is stored as a 1-bit PNG (about 2.5 KB for a
Kvasir mask), all of a split concatenated in ``original_masks.npy`` with ``original_masks_index.npy``
holding one row ``(offset, length, height, width)`` per image. Both files are hashed in the manifest.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from microaunet_cli.errors import DataError

DATA_FILE = "original_masks.npy"
INDEX_FILE = "original_masks_index.npy"


def encode_mask(mask: np.ndarray) -> bytes:
    """An ``H×W`` {0, 1} mask as 1-bit PNG bytes."""
    ok, data = cv2.imencode(".png", np.ascontiguousarray(mask, dtype=np.uint8), [cv2.IMWRITE_PNG_BILEVEL, 1])
    if not ok:
        raise RuntimeError("PNG encoding of a mask failed")
    return data.tobytes()


def decode_mask(data: bytes | np.ndarray) -> np.ndarray:
    """PNG bytes written by :func:`encode_mask` -> ``H×W`` uint8 {0, 1}."""
    mask = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if mask is None:
        raise DataError(
            "an original mask cannot be decoded; the prepared folder is damaged: prepare it again"
        )
    return (mask > 0).astype(np.uint8)


def pack(pngs: list[bytes], shapes: list[tuple[int, int]]) -> tuple[np.ndarray, np.ndarray]:
    """The concatenated PNG bytes and the ``N×4`` index ``(offset, length, height, width)``."""
    index = np.zeros((len(pngs), 4), np.int64)
    lengths = np.array([len(p) for p in pngs], np.int64)
    if len(pngs):
        index[:, 0] = np.cumsum(lengths) - lengths
        index[:, 1] = lengths
        index[:, 2:] = np.array(shapes, np.int64).reshape(-1, 2)
    return np.frombuffer(b"".join(pngs), np.uint8), index


def write_original_masks(
    pngs: list[bytes], shapes: list[tuple[int, int]], tmp_data: Path, tmp_index: Path
) -> None:
    """Fill the two temporary files (renamed into place by the caller) from encoded masks."""
    blob, index = pack(pngs, shapes)
    for path, array in ((tmp_data, blob), (tmp_index, index)):
        with open(path, "wb") as fh:
            np.save(fh, array)


class OriginalMasks:
    """Read-only sequence of a split's original masks (decoded on access)."""

    def __init__(self, data: np.ndarray, index: np.ndarray) -> None:
        self._data = data
        self._index = index

    @classmethod
    def open(cls, folder: Path) -> OriginalMasks:
        return cls(np.load(folder / DATA_FILE, mmap_mode="r"), np.load(folder / INDEX_FILE))

    def __len__(self) -> int:
        return len(self._index)

    def take(self, rows: np.ndarray | slice) -> OriginalMasks:
        """The masks of ``rows`` (the folds of a k-fold train block)."""
        return OriginalMasks(self._data, self._index[rows])

    def shape(self, i: int) -> tuple[int, int]:
        return int(self._index[i, 2]), int(self._index[i, 3])

    def __getitem__(self, i: int) -> np.ndarray:
        offset, length, height, width = (int(v) for v in self._index[i])
        mask = decode_mask(np.asarray(self._data[offset : offset + length]))
        if mask.shape != (height, width):
            raise DataError(
                f"original mask {i} decodes to {mask.shape}, the index says {(height, width)}; "
                f"the prepared folder is damaged: prepare it again"
            )
        return mask
