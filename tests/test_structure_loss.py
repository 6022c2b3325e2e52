"""The structure loss (weighted BCE + weighted IoU, F3Net/PraNet): its value by hand and its boundary
weighting."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from microaunet_cli.losses import structure_loss


def _structure_by_hand(logits: np.ndarray, mask: np.ndarray) -> float:
    """One 8×8 image: every 31×31 window (zero padded) covers the whole image, so each pixel's local
    mean of the mask is the mask's sum over 961."""
    local = mask.sum() / 961.0
    w = 1 + 5 * np.abs(local - mask)
    p = 1 / (1 + np.exp(-logits))
    bce = -(mask * np.log(p) + (1 - mask) * np.log(1 - p))
    wbce = (w * bce).sum() / w.sum()
    inter = (p * mask * w).sum()
    union = ((p + mask) * w).sum()
    wiou = 1 - (inter + 1) / (union - inter + 1)
    return float(wbce + wiou)


def test_structure_loss_matches_the_formula_by_hand():
    rng = np.random.default_rng(0)
    masks = np.zeros((2, 8, 8))
    masks[0, 2:5, 1:7] = 1  # 18 foreground pixels
    masks[1, 0:2, 0:3] = 1  # 6: a different boundary weight than image 0
    logits = rng.normal(0, 2, size=(2, 8, 8))
    got, terms = structure_loss(torch.tensor(logits)[:, None].float(), torch.tensor(masks)[:, None].float())
    want = np.mean([_structure_by_hand(logits[i], masks[i]) for i in range(2)])
    assert float(got) == pytest.approx(want, rel=1e-5)
    assert float(terms["wbce"] + terms["wiou"]) == pytest.approx(want, rel=1e-5)


def test_structure_loss_weighs_boundary_pixels_more():
    """The same wrong pixel costs more at a polyp's edge than far from it."""
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 20:40, 20:40] = 1
    base = torch.where(mask > 0, 6.0, -6.0)
    near, far = base.clone(), base.clone()
    near[..., 20, 30] = -6.0  # an edge pixel of the polyp missed
    far[..., 60, 2] = 6.0  # a background pixel far away flagged
    ref = float(structure_loss(base, mask)[0])
    assert float(structure_loss(near, mask)[0]) - ref > 1.5 * (float(structure_loss(far, mask)[0]) - ref)


def _window_means_by_hand(x: np.ndarray, k: int) -> np.ndarray:
    """Each pixel's mean over its k×k window, zeros outside the map, by explicit sums."""
    r = k // 2
    padded = np.pad(x, r)
    h, w = x.shape
    return np.array([[padded[i : i + k, j : j + k].sum() / (k * k) for j in range(w)] for i in range(h)])


@pytest.mark.parametrize(("shape", "k"), [((40, 37), 31), ((9, 14), 5), ((3, 3), 31), ((50, 50), 3)])
def test_box_mean_is_the_zero_padded_window_mean(shape, k):
    from microaunet_cli.losses.segmentation import box_mean

    rng = np.random.default_rng(1)
    binary = (rng.random((2, 1, *shape)) > 0.6).astype(np.float32)
    soft = rng.random((2, 1, *shape)).astype(np.float32)
    for x, atol in ((binary, 1e-7), (soft, 1e-6)):
        got = box_mean(torch.from_numpy(x), k)
        assert got.dtype == torch.float32  # summed in float64, returned in the input's dtype
        got = got.numpy()
        want = np.stack([[_window_means_by_hand(c, k) for c in im] for im in x])
        np.testing.assert_allclose(got, want, atol=atol)


def test_structure_loss_uses_31_by_31_windows_on_a_larger_image():
    """At 48×48 the windows no longer cover the whole image: a pixel's weight depends on where it is."""
    rng = np.random.default_rng(2)
    mask = np.zeros((48, 48))
    mask[5:20, 30:44] = 1
    logits = rng.normal(size=(48, 48))
    w = 1 + 5 * np.abs(_window_means_by_hand(mask, 31) - mask)
    p = 1 / (1 + np.exp(-logits))
    bce = -(mask * np.log(p) + (1 - mask) * np.log(1 - p))
    wbce = (w * bce).sum() / w.sum()
    inter, union = (p * mask * w).sum(), ((p + mask) * w).sum()
    want = wbce + 1 - (inter + 1) / (union - inter + 1)
    got, _ = structure_loss(torch.tensor(logits)[None, None].float(), torch.tensor(mask)[None, None].float())
    assert float(got) == pytest.approx(float(want), rel=1e-5)
