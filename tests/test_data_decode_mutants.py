"""Decoding and resizing pairs for prepare-data (data/decode.py): the resampling rule against block
means and hand-interpolated values, the mask's half-footprint threshold, the pair checks and the worker
count, each on inputs small enough to work out by hand."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import ClassVar

import cv2
import numpy as np
import pytest
from data_fixtures import pair, write_image, write_mask

from microaunet_cli.data import decode
from microaunet_cli.data.decode import (
    decode_pair,
    decode_samples,
    resample,
    resize_image,
    resize_mask,
    worker_count,
)
from microaunet_cli.data.layouts import Sample
from microaunet_cli.data.original_masks import decode_mask


def test_shrinking_averages_each_block():
    # multiples of 4 in every 2×2 block sum to a multiple of 4: whole-number means, no rounding rule
    image = np.random.default_rng(0).integers(0, 64, (4, 4, 3)).astype(np.uint8) * 4
    blocks = image.reshape(2, 2, 2, 2, 3).astype(np.int64).sum(axis=(1, 3)) // 4
    assert np.array_equal(resample(image, 2, 2), blocks.astype(np.uint8))


def test_enlarging_interpolates_between_pixel_centres():
    stripe = np.zeros((1, 2, 3), np.uint8)
    stripe[:, 1] = 200
    assert resample(stripe, 1, 4)[0, :, 0].tolist() == [0, 50, 150, 200]


def test_equal_pixel_count_counts_as_shrinking():
    # 2×8 -> 4×4 keeps 16 pixels: averaged like a shrink (each output row is one input row, pairs of
    # columns averaged), not interpolated
    image = np.zeros((2, 8, 3), np.uint8)
    image[:, ::2] = 200  # columns alternate 200, 0
    out = resample(image, 4, 4)
    assert set(out[..., 0].ravel().tolist()) == {100}


def test_the_right_size_comes_back_untouched():
    image = np.zeros((5, 5, 3), np.uint8)
    assert resample(image, 5, 5) is image
    mask = np.zeros((5, 5), np.uint8)
    assert resize_mask(mask, 5) is mask
    assert resize_image(np.zeros((10, 10, 3), np.uint8), 5).shape == (5, 5, 3)


@pytest.mark.parametrize("ones, expected", [(1, 0), (2, 1), (3, 1), (4, 1), (0, 0)])
def test_a_pixel_is_polyp_when_at_least_half_its_footprint_is(ones, expected):
    mask = np.zeros(4, np.uint8)
    mask[:ones] = 1
    out = resize_mask(mask.reshape(2, 2), 1)
    assert out.dtype == np.uint8 and out.tolist() == [[expected]]


def test_decode_pair_resizes_and_keeps_the_original_mask(tmp_path):
    image, mask = pair(0, width=48, height=40)
    ip = write_image(tmp_path / "a.png", image)
    mp = write_mask(tmp_path / "a_mask.png", mask)
    got = decode_pair(ip, mp, 16)
    assert got.error is None
    assert got.image.shape == (16, 16, 3) and got.mask.shape == (16, 16)
    assert np.array_equal(got.image, resample(image, 16, 16))
    assert np.array_equal(got.mask, resize_mask(mask, 16))
    assert got.original_shape == (40, 48)
    assert np.array_equal(decode_mask(got.original), mask)


def test_decode_pair_names_the_pair_that_does_not_belong_together(tmp_path):
    image, _ = pair(0, width=48, height=40)
    _, mask = pair(0, width=30, height=20)
    ip = write_image(tmp_path / "img.png", image)
    mp = write_mask(tmp_path / "msk.png", mask)
    got = decode_pair(ip, mp, 16)
    assert (got.image, got.mask, got.original) == (None, None, None)
    assert got.error == (
        f"{mp}: mask is 30x20 but its image img.png is 48x40; they do not belong together. Replace the pair."
    )


def test_decode_pair_reports_an_unreadable_file(tmp_path):
    ip = tmp_path / "broken.png"
    ip.write_bytes(b"not a png")
    _, mask = pair(0)
    got = decode_pair(ip, write_mask(tmp_path / "m.png", mask), 16)
    assert got.image is None and got.mask is None
    assert str(ip) in got.error


@pytest.mark.parametrize(
    "requested, n, expected", [(0, 10, 1), (-3, 10, 1), (2, 10, 2), (5, 3, 3), (4, 4, 4), (1, 1000, 1)]
)
def test_an_explicit_worker_count_is_honoured_within_the_work(requested, n, expected):
    assert worker_count(requested, n) == expected


@pytest.mark.parametrize(
    "cpus, n, expected",
    [
        (16, 127, 1),
        (16, 128, 1),
        (16, 256, 2),
        (16, 3 * 128 + 5, 3),
        (16, 100_000, 8),
        (3, 100_000, 3),
        (None, 999, 1),
    ],
)
def test_the_automatic_worker_count(monkeypatch, cpus, n, expected):
    monkeypatch.setattr(os, "cpu_count", lambda: cpus)
    assert worker_count(None, n) == expected


def test_pool_workers_are_forked_on_linux_and_spawned_elsewhere(monkeypatch):
    monkeypatch.setattr(sys, "platform", "linux")
    assert decode._pool_context().get_start_method() == "fork"
    monkeypatch.setattr(sys, "platform", "darwin")
    assert decode._pool_context().get_start_method() == "spawn"


def _samples(tmp_path, n: int) -> list[Sample]:
    out = []
    for i in range(n):
        image, mask = pair(i, width=24 + 2 * i, height=20)
        out.append(
            Sample(
                f"c{i}",
                write_image(tmp_path / f"c{i}.png", image),
                write_mask(tmp_path / f"c{i}_m.png", mask),
            )
        )
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_decode_samples_keeps_the_order(tmp_path, workers):
    samples = _samples(tmp_path, 5)
    got = list(decode_samples(samples, 8, workers))
    assert [d.original_shape for d in got] == [(20, 24 + 2 * i) for i in range(5)]
    for d, s in zip(got, samples):
        assert np.array_equal(d.mask, decode_pair(s.image, s.mask, 8).mask)


def test_shrinking_by_three_averages_and_enlarging_interpolates():
    # At a factor of 3 area averaging and bilinear sampling differ (bilinear would take each block's
    # centre pixel); at a factor of 2 they agree, so 2x tests cannot tell the two rules apart.
    image = np.random.default_rng(1).integers(0, 29, (9, 9, 3)).astype(np.uint8) * 9  # whole-number means
    blocks = image.reshape(3, 3, 3, 3, 3).astype(np.int64).sum(axis=(1, 3)) // 9
    centres = image[1::3, 1::3]
    out = resample(image, 3, 3)
    assert not np.array_equal(blocks, centres) and np.array_equal(out, blocks.astype(np.uint8))
    # the same pixel count (1×9 -> 3×3) goes to OpenCV's area method, not to its bilinear one
    row = np.random.default_rng(2).integers(0, 85, (1, 9, 3)).astype(np.uint8) * 3
    area, linear = (cv2.resize(row, (3, 3), interpolation=m) for m in (cv2.INTER_AREA, cv2.INTER_LINEAR))
    assert not np.array_equal(area, linear) and np.array_equal(resample(row, 3, 3), area)


class _RecordingPool:
    """Stands in for ProcessPoolExecutor: records how it was built, mapped and shut down, runs here."""

    made: ClassVar[list[dict]] = []

    def __init__(self, *args, **kwargs):
        self.calls = {"args": args, "kwargs": kwargs}
        _RecordingPool.made.append(self.calls)

    def map(self, fn, tasks, **kwargs):
        self.calls["map"] = kwargs
        return map(fn, tasks)

    def shutdown(self, *args, **kwargs):
        self.calls["shutdown"] = (args, kwargs)


@pytest.mark.parametrize("n, workers, chunk", [(5, 2, 1), (40, 2, 5), (40, 3, 3), (136, 2, 16), (200, 2, 16)])
def test_decode_samples_pool_settings(monkeypatch, n, workers, chunk):
    monkeypatch.setattr(decode, "ProcessPoolExecutor", _RecordingPool)
    monkeypatch.setattr(decode, "_decode_task", lambda task: task[0])
    monkeypatch.setattr(sys, "platform", "linux")
    _RecordingPool.made = []
    samples = [Sample(f"c{i}", Path(f"i{i}.png"), Path(f"m{i}.png")) for i in range(n)]
    assert list(decode_samples(samples, 8, workers)) == [Path(f"i{i}.png") for i in range(n)]
    (calls,) = _RecordingPool.made
    (context,) = calls["kwargs"].values()
    assert calls["args"] == (workers,) and context.get_start_method() == "fork"
    assert calls["map"] == {"chunksize": chunk}
    assert calls["shutdown"] == ((), {"wait": True, "cancel_futures": True})


def test_one_worker_decodes_in_this_process(monkeypatch):
    monkeypatch.setattr(decode, "ProcessPoolExecutor", _RecordingPool)
    monkeypatch.setattr(decode, "_decode_task", lambda task: task[0])
    _RecordingPool.made = []
    samples = [Sample(f"c{i}", Path(f"i{i}.png"), Path(f"m{i}.png")) for i in range(3)]
    assert list(decode_samples(samples, 8, 1)) == [Path(f"i{i}.png") for i in range(3)]
    assert _RecordingPool.made == []
