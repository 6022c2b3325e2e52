"""read_image / read_mask: every format gives RGB uint8 or {0,1}; every bad file is a DataError naming it."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest
import tifffile
from data_fixtures import pair, write_image, write_mask, write_tif

from microaunet_cli.data.io import read_image, read_mask
from microaunet_cli.errors import DataError


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".PNG", ".JPG", ".jpeg", ".bmp"])
def test_image_is_rgb_uint8_in_every_format(tmp_path, suffix):
    image, _ = pair(0)
    out = read_image(write_image(tmp_path / f"a{suffix}", image))
    assert out.dtype == np.uint8 and out.shape == image.shape
    error = np.abs(out.astype(int) - image)
    if suffix.lower() in (".png", ".bmp"):
        assert error.max() == 0
    else:  # JPEG is lossy
        assert error.mean() < 8
    assert out[..., 0].mean() > out[..., 2].mean()  # red stays red: not BGR


def test_cvc_tif_tagged_grey_is_read_as_three_channels(tmp_path):
    image, _ = pair(1)
    path = write_tif(tmp_path / "1.tif", image)
    assert cv2.imread(str(path), cv2.IMREAD_UNCHANGED).ndim == 2  # the quirk: OpenCV sees one channel
    assert np.array_equal(read_image(path), image)


def test_planar_tif_is_read_as_rgb(tmp_path):
    image, _ = pair(2)
    tifffile.imwrite(
        tmp_path / "p.tif", np.moveaxis(image, -1, 0), photometric="rgb", planarconfig="separate"
    )
    assert np.array_equal(read_image(tmp_path / "p.tif"), image)


def test_grey_image_is_refused(tmp_path):
    grey = np.full((20, 20), 128, np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    with pytest.raises(DataError, match=r"g\.png.*greyscale"):
        read_image(tmp_path / "g.png")


def test_grey_tif_is_refused(tmp_path):
    path = write_tif(tmp_path / "g.tif", np.full((20, 20), 9, np.uint8))
    with pytest.raises(DataError, match=r"g\.tif.*greyscale"):
        read_image(path)


@pytest.mark.parametrize("bits", [8, 16])
def test_opaque_alpha_is_dropped(tmp_path, bits):
    image, _ = pair(3)
    scale = 257 if bits == 16 else 1  # 16-bit PNGs: opaque is 65535
    bgra = (
        np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 255, np.uint8)]).astype(f"uint{bits}") * scale
    )
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    assert np.array_equal(read_image(tmp_path / "a.png"), image)  # RGB, red stays red


def test_transparent_image_is_refused_naming_the_file(tmp_path):
    image, _ = pair(3)
    bgra = np.dstack([image[:, :, ::-1], np.full(image.shape[:2], 255, np.uint8)])
    bgra[0, 0, 3] = 254  # one pixel not quite opaque is enough
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    with pytest.raises(DataError, match=r"a\.png.*1 transparent pixel.*Flatten"):
        read_image(tmp_path / "a.png")


def test_cmyk_tif_is_refused(tmp_path):
    tifffile.imwrite(tmp_path / "c.tif", np.full((8, 8, 4), 255, np.uint8), photometric="separated")
    with pytest.raises(DataError, match=r"c\.tif.*CMYK"):
        read_image(tmp_path / "c.tif")


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_grey_image_is_replicated_when_asked(tmp_path, caplog, monkeypatch, suffix):
    grey = np.arange(400, dtype=np.uint8).reshape(20, 20)
    path = tmp_path / f"g{suffix}"
    if suffix == ".tif":
        write_tif(path, grey)
    else:
        cv2.imwrite(str(path), grey)
    # A CLI test earlier in the session may have detached the package logger from the root.
    monkeypatch.setattr(logging.getLogger("microaunet_cli"), "propagate", True)
    with caplog.at_level("WARNING", logger="microaunet_cli"):
        out = read_image(path, greyscale="replicate")
    assert out.shape == (20, 20, 3) and all(np.array_equal(out[:, :, c], grey) for c in range(3))
    assert f"g{suffix}: greyscale image, replicated to 3 channels" in caplog.text


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_truncated_file_is_refused(tmp_path, suffix):
    path = write_image(tmp_path / f"t{suffix}", pair(3, 96, 96)[0])
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * 0.8)])
    with pytest.raises(DataError, match=rf"t\{suffix}.*(truncated|decoded)"):
        read_image(path)


def test_empty_and_not_an_image_are_refused(tmp_path):
    (tmp_path / "e.jpg").write_bytes(b"")
    (tmp_path / "x.png").write_bytes(b"this is text")
    with pytest.raises(DataError, match=r"e\.jpg.*empty"):
        read_image(tmp_path / "e.jpg")
    with pytest.raises(DataError, match=r"x\.png.*cannot be decoded"):
        read_image(tmp_path / "x.png")


def test_mask_thresholds_at_128_and_reduces_three_channels(tmp_path):
    values = np.zeros((40, 40), np.uint8)
    values[20:] = 255
    values[0, :6] = [0, 16, 127, 128, 200, 255]  # a few in-between pixels, as JPEG edges have
    cv2.imwrite(str(tmp_path / "m.png"), np.repeat(values[..., None], 3, axis=2))
    out = read_mask(tmp_path / "m.png")
    assert out.shape == values.shape and out.dtype == np.uint8
    assert out[0, :6].tolist() == [0, 0, 0, 1, 1, 1]
    assert out[20:].all() and not out[1:20].any()


def test_jpeg_and_tif_masks_are_binary(tmp_path):
    _, mask = pair(4)
    from_jpg = read_mask(write_mask(tmp_path / "m.jpg", mask))
    from_tif = read_mask(write_tif(tmp_path / "m.tif", mask * np.uint8(255)))
    assert set(np.unique(from_jpg)) <= {0, 1} and np.array_equal(from_tif, mask)
    assert (from_jpg != mask).mean() < 0.01


def test_label_mask_of_zeros_and_ones_is_kept(tmp_path):
    _, mask = pair(5)
    cv2.imwrite(str(tmp_path / "l.png"), mask)  # 0/1 values: thresholding at 128 would erase the polyp
    assert np.array_equal(read_mask(tmp_path / "l.png"), mask)


def test_non_binary_mask_is_refused(tmp_path):
    photo = np.random.default_rng(0).integers(0, 256, (30, 30), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "m.png"), photo)
    with pytest.raises(DataError, match=r"m\.png.*not binary"):
        read_mask(tmp_path / "m.png")


def test_missing_file_is_named(tmp_path):
    with pytest.raises(DataError, match="nope.png"):
        read_mask(tmp_path / "nope.png")
