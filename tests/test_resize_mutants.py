"""Resizing between the network's input size and a photograph's own, against the hand-written bilinear
reference in tests/oracles.py (not against OpenCV or the function under test)."""

from __future__ import annotations

import numpy as np
import pytest
from oracles import bilinear_resize

from microaunet_cli.inference.resize import THRESHOLD, mask_at_size, to_input_size, to_original_size

# (height, width): enlarging, shrinking, and one side each way
SHAPES = ((90, 160), (40, 48), (130, 75), (5, 7))


@pytest.mark.parametrize("shape", SHAPES)
def test_probabilities_go_back_bilinearly_with_half_pixel_centres(shape):
    probs = np.random.default_rng(sum(shape)).random((64, 64)).astype(np.float32)
    got = to_original_size(probs, *shape)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_allclose(got, bilinear_resize(probs, *shape), atol=1e-5)


def test_a_2x_enlargement_by_hand():
    # half-pixel centres: output pixel 0 samples source -0.25 (clamped to 0), pixel 1 samples 0.25
    probs = np.array([[0.0, 1.0]], np.float32)
    assert to_original_size(probs, 1, 4).tolist() == [[0.0, 0.25, 0.75, 1.0]]


def test_a_map_at_the_right_size_comes_back_untouched():
    probs = np.random.default_rng(0).random((30, 40)).astype(np.float64)
    assert to_original_size(probs, 30, 40) is probs


def test_mask_at_size_thresholds_strictly_the_resized_map():
    probs = np.array([[0.2, 0.8]], np.float32)  # 2x: 0.2, 0.35, 0.65, 0.8; 0.5 sits on no pixel
    prob, mask = mask_at_size(probs, 1, 4, threshold=0.6)
    assert prob[0].tolist() == pytest.approx([0.2, 0.35, 0.65, 0.8])
    assert mask.tolist() == [[False, False, True, True]]
    assert mask_at_size(probs, 1, 4, threshold=0.3)[1].tolist() == [[False, True, True, True]]
    # strict at the threshold itself, at the shared 0.5
    assert THRESHOLD == 0.5
    assert mask_at_size(np.array([[0.5, 0.5000001]], np.float32), 1, 2, THRESHOLD)[1].tolist() == [
        [False, True]
    ]


def test_input_size_averages_when_shrinking_and_interpolates_when_enlarging():
    image = np.zeros((4, 4, 3), np.uint8)
    image[:, :2] = 200  # left half bright
    small = to_input_size(image, 2, 2)
    # area averaging: each output pixel is the mean of a 2x2 block
    assert small[..., 0].tolist() == [[200, 0], [200, 0]]
    stripe = np.zeros((2, 2, 3), np.uint8)
    stripe[:, 1] = 200
    big = to_input_size(stripe, 2, 4)
    assert big[0, :, 0].tolist() == [0, 50, 150, 200]
