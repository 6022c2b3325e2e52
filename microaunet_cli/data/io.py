"""Read one image or one mask from disk, refusing anything that would become a silent data bug.

Every reader returns the same thing whatever the file format: images H×W×3 uint8 RGB, masks
H×W uint8 in {0, 1}. Anything else (grey images, transparent images, CMYK, truncated files, masks
that are really photographs) raises :class:`DataError` naming the file and the fix. A fully opaque
alpha channel is dropped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from microaunet_cli.errors import DataError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp")
TIFF_SUFFIXES = (".tif", ".tiff")
MASK_THRESHOLD = 128
# A mask is "binary-ish" when few pixels sit far from both 0 and 255: JPEG masks have soft edges and
# CVC-ClinicDB masks hold faint values around 8-16, but a photograph saved as a mask has mostly
# mid-range values (the real data sets peak at 0.05%). Above this fraction of pixels in [32, 224)
# the file is refused.
MAX_MIDRANGE_FRACTION = 0.05
_MIDRANGE = (32, 224)

# OpenCV logs a warning for every odd file; the errors raised here say it better.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)


def read_image(path: str | Path, greyscale: Literal["refuse", "replicate"] = "refuse") -> np.ndarray:
    """The colour image at ``path`` as an H×W×3 uint8 RGB array.

    A fully opaque alpha channel (how many tools export photographs) is dropped; a transparent one is
    refused, since what lies under the transparent pixels is not the photograph. Greyscale images are
    refused by default (training data must be colour); ``greyscale="replicate"`` copies the grey
    channel to R, G and B with a warning (predict: a grey photograph still gets a mask).
    """
    path = Path(path)
    array = _decode(path)
    array = _to_uint8(array, path, what="image")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim == 2:
        return _grey_to_rgb(array, path, greyscale)
    if array.ndim != 3 or array.shape[2] not in (3, 4):
        raise DataError(
            f"{path}: image has shape {array.shape}, expected height x width x 3 (RGB). "
            f"Re-save it as an RGB PNG or JPEG."
        )
    if array.shape[2] == 4:
        array = _drop_opaque_alpha(array, path)
    if path.suffix.lower() in TIFF_SUFFIXES:
        return np.ascontiguousarray(array)  # tifffile already gives RGB
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)  # OpenCV decodes to BGR


def _grey_to_rgb(array: np.ndarray, path: Path, greyscale: str) -> np.ndarray:
    if greyscale != "replicate":
        raise DataError(
            f"{path}: image is greyscale (one channel); polyp images must be RGB colour. "
            f"Replace it with the colour original."
        )
    log.warning(
        "%s: greyscale image, replicated to 3 channels; the network was trained on colour "
        "images, so expect a less accurate mask",
        path,
    )
    return np.ascontiguousarray(np.repeat(array[:, :, None], 3, axis=2))


def _drop_opaque_alpha(array: np.ndarray, path: Path) -> np.ndarray:
    """RGB(A) -> RGB when every pixel is fully opaque; a transparent pixel is an error naming the file."""
    transparent = int(np.count_nonzero(array[:, :, 3] < 255))
    if transparent:
        raise DataError(
            f"{path}: image has an alpha channel with {transparent} transparent pixel(s) of "
            f"{array.shape[0] * array.shape[1]}; what the network should see there is unknown. "
            f"Flatten it onto a background (or re-export it without transparency) as RGB."
        )
    return array[:, :, :3]


def read_mask(path: str | Path) -> np.ndarray:
    """The mask at ``path`` as H×W uint8 in {0, 1} (threshold 128; 3-channel masks reduced)."""
    path = Path(path)
    array = _to_uint8(_decode(path), path, what="mask", labels_ok=True)
    array = np.ascontiguousarray(_single_channel(array, path))
    # One histogram pass answers both questions below (NumPy reductions over a mask are ~10x slower).
    histogram = cv2.calcHist([array], [0], None, [256], [0, 256]).ravel()
    if not histogram[2:].any():
        # Label maps stored as 0/1 would all fall under the threshold: take them as labels instead.
        return array
    midrange = histogram[_MIDRANGE[0] : _MIDRANGE[1]].sum() / array.size
    if midrange > MAX_MIDRANGE_FRACTION:
        raise DataError(
            f"{path}: mask is not binary ({midrange:.0%} of its pixels are between "
            f"{_MIDRANGE[0]} and {_MIDRANGE[1] - 1}); is an image in the masks folder? "
            f"Masks must be black (background) and white (polyp); fix it."
        )
    return cv2.threshold(array, MASK_THRESHOLD - 1, 1, cv2.THRESH_BINARY)[1]  # 1 where >= 128


def _single_channel(array: np.ndarray, path: Path) -> np.ndarray:
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] == 1:
        return array[:, :, 0]
    if array.ndim == 3 and array.shape[2] == 4:
        if array[:, :, 3].min() < 255:
            raise DataError(
                f"{path}: mask has a transparent alpha channel; it is ambiguous which channel "
                f"holds the polyp. Save the mask as a grey image."
            )
        array = array[:, :, :3]
    if array.ndim == 3 and array.shape[2] == 3:
        # CVC-ClinicDB masks are 3 equal channels; taking the maximum also keeps coloured masks.
        return cv2.max(cv2.max(array[:, :, 0], array[:, :, 1]), array[:, :, 2])
    raise DataError(
        f"{path}: mask has shape {array.shape}, expected height x width (grey). Save it as a grey image."
    )


def _to_uint8(array: np.ndarray, path: Path, what: str, labels_ok: bool = False) -> np.ndarray:
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.uint16:
        if labels_ok and array.max(initial=0) <= 1:
            return array.astype(np.uint8)
        # 16-bit files keep the same picture at finer steps; scale rather than clip.
        return ((array.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if array.dtype == np.bool_:
        return array.astype(np.uint8)
    raise DataError(
        f"{path}: {what} has pixel type {array.dtype}; expected 8-bit (uint8). "
        f"Re-save it as an 8-bit PNG or JPEG."
    )


def _decode(path: Path) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: file not found; check the --src folder.")
    if path.suffix.lower() in TIFF_SUFFIXES:
        return _decode_tiff(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc.strerror}); check its permissions.") from None
    _check_complete(data, path)
    try:
        # IMREAD_UNCHANGED keeps the real channel count (so grey and RGBA files can be refused) and
        # ignores EXIF rotation, which would otherwise turn an image but not its mask.
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error:
        array = None
    if array is None:
        raise DataError(f"{path}: cannot be decoded (corrupt, truncated or not an image); download it again.")
    return array


def _decode_tiff(path: Path) -> np.ndarray:
    """TIFF through tifffile: CVC-ClinicDB frames are 3-channel but tagged greyscale, and OpenCV
    silently returns one channel for them."""
    import tifffile

    try:
        with tifffile.TiffFile(path) as tif:
            page = tif.pages[0]
            array = page.asarray()
            planar_separate = page.planarconfig == 2 and array.ndim == 3
            cmyk = page.photometric == tifffile.PHOTOMETRIC.SEPARATED
    except Exception as exc:  # noqa: BLE001 - tifffile raises many types for broken files
        raise DataError(
            f"{path}: cannot be read as TIFF ({type(exc).__name__}: {exc}); download it again."
        ) from None
    if cmyk:  # 4 channels, but the fourth is black ink, not alpha
        raise DataError(f"{path}: TIFF image is CMYK; convert it to RGB.")
    if planar_separate:
        array = np.moveaxis(array, 0, -1)  # samples stored as planes: channels first on disk
    return array


def _check_complete(data: bytes, path: Path) -> None:
    """Refuse truncated JPEG/PNG files: decoders may fill the missing rows with grey and say nothing."""
    if not data:
        raise DataError(f"{path}: file is empty; download it again.")
    if data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-1024:]:
        raise DataError(f"{path}: JPEG file is truncated (no end-of-image marker); download it again.")
    if data[:8] == b"\x89PNG\r\n\x1a\n" and b"IEND" not in data[-64:]:
        raise DataError(f"{path}: PNG file is truncated (no IEND chunk); download it again.")
