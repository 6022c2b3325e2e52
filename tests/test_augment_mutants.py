"""Batch augmentation (training/augment.py): image and mask move together, each transform does what its
setting says with the probability it says, and the jitter touches the image only.

Expected results come from independent operations (``torch.flip``, ``torch.rot90``, counting draws),
never from the augmentation's own matrices.
"""

from __future__ import annotations

import math

import pytest
import torch

from microaunet_cli.config import AugmentSettings
from microaunet_cli.training import augment
from microaunet_cli.training.augment import affine_params, augment_batch

OFF = {"hflip": 0.0, "vflip": 0.0, "rotate": 0.0, "scale": 0.0, "brightness": 0.0, "contrast": 0.0}


def _cfg(**changes) -> AugmentSettings:
    return AugmentSettings(**{**OFF, **changes})


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pair(n: int = 4, size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """An L-shaped polyp off the centre (no flip or quarter turn maps it onto itself), drawn into the
    image's red channel; green and blue are noise."""
    masks = torch.zeros(n, 1, size, size)
    masks[:, :, 2:12, 3:6] = 1
    masks[:, :, 9:12, 3:11] = 1
    images = torch.rand(n, 3, size, size, generator=_gen(9))
    images[:, 0] = 0.1 + 0.8 * masks[:, 0]
    return images, masks


def test_disabled_returns_the_batch_untouched():
    images, masks = _pair()
    out = augment_batch(images, masks, AugmentSettings(enabled=False), _gen())
    assert out[0] is images and out[1] is masks


def test_all_off_is_the_identity():
    images, masks = _pair()
    out_images, out_masks = augment_batch(images, masks, _cfg(), _gen())
    torch.testing.assert_close(out_images, images, atol=1e-6, rtol=0)
    assert torch.equal(out_masks, masks)


@pytest.mark.parametrize(
    "changes, dims",
    [({"hflip": 1.0}, [-1]), ({"vflip": 1.0}, [-2]), ({"hflip": 1.0, "vflip": 1.0}, [-2, -1])],
)
def test_certain_flips_flip_image_and_mask_alike(changes, dims):
    images, masks = _pair()
    out_images, out_masks = augment_batch(images, masks, _cfg(**changes), _gen())
    torch.testing.assert_close(out_images, images.flip(dims), atol=1e-6, rtol=0)
    assert torch.equal(out_masks, masks.flip(dims))


def test_rotations_stay_within_their_range_and_are_rotations():
    cfg = _cfg(rotate=1.0, rotate_degrees=90.0)
    mats = affine_params(cfg, 2000, _gen(1))
    cos, sin = mats[:, 0, 0], mats[:, 1, 0]
    angles = torch.rad2deg(torch.atan2(sin, cos))
    assert angles.abs().max() <= 90.0 + 1e-4
    assert angles.min() < -85 and angles.max() > 85  # the whole range either way
    # a rotation: orthonormal rows, no zoom, no shear, no shift
    torch.testing.assert_close(mats[:, 0, 1], -sin)
    torch.testing.assert_close(mats[:, 1, 1], cos)
    torch.testing.assert_close(cos**2 + sin**2, torch.ones(2000))
    assert mats[:, :, 2].abs().max() == 0


def test_rotated_masks_still_lie_under_their_image():
    """Full geometry (flips, any rotation, zoom): where the mask says polyp, the image's red channel
    is bright, up to the bilinear edge of the image against the nearest-neighbour mask."""
    images, masks = _pair(n=16, size=32)
    cfg = _cfg(hflip=0.5, vflip=0.5, rotate=1.0, rotate_degrees=180.0, scale=1.0)
    out_images, out_masks = augment_batch(images, masks, cfg, _gen(3))
    moved = (out_masks != masks).float().mean()
    assert moved > 0.05  # the geometry did move the masks
    disagree = ((out_images[:, 0] > 0.5).float() != out_masks[:, 0]).float().mean()
    assert disagree < 0.02
    assert set(out_masks.unique().tolist()) <= {0.0, 1.0}  # nearest neighbour keeps masks binary


def test_quarter_turn_matches_rot90(monkeypatch):
    """The warp with a quarter turn's matrix (cos 0, sin 1) turns image and mask as rot90 does."""
    images, masks = _pair()
    quarter = torch.tensor([[[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]]).repeat(len(images), 1, 1)
    monkeypatch.setattr(augment, "affine_params", lambda cfg, n, g: quarter)
    out_images, out_masks = augment_batch(images, masks, _cfg(), _gen())
    turned = [torch.rot90(masks, k, dims=(-2, -1)) for k in (1, -1)]
    match = [torch.equal(out_masks, t) for t in turned]
    assert any(match)
    k = 1 if match[0] else -1
    torch.testing.assert_close(out_images, torch.rot90(images, k, dims=(-2, -1)), atol=1e-5, rtol=0)


@pytest.mark.parametrize("p", [0.2, 0.7])
def test_each_transform_happens_with_its_probability(p):
    n = 4000
    for name in ("hflip", "vflip"):
        mats = affine_params(_cfg(**{name: p}), n, _gen(5))
        sign = mats[:, 0, 0] if name == "hflip" else mats[:, 1, 1]
        assert set(sign.tolist()) <= {-1.0, 1.0}
        assert (sign < 0).float().mean() == pytest.approx(p, abs=0.03), name
    rotated = affine_params(_cfg(rotate=p, rotate_degrees=30.0), n, _gen(6))[:, 1, 0] != 0
    assert rotated.float().mean() == pytest.approx(p, abs=0.03)
    zoomed = affine_params(_cfg(scale=p), n, _gen(7))[:, 0, 0] != 1
    assert zoomed.float().mean() == pytest.approx(p, abs=0.03)


def test_flips_act_on_their_own_axis():
    h = affine_params(_cfg(hflip=1.0), 3, _gen())
    v = affine_params(_cfg(vflip=1.0), 3, _gen())
    assert h[0].tolist() == [[-1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert v[0].tolist() == [[1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]


def test_zoom_is_log_uniform_over_its_range():
    lo, hi = 0.5, 2.0
    mats = affine_params(_cfg(scale=1.0, scale_range=(lo, hi)), 20000, _gen(8))
    zoom = 1 / mats[:, 0, 0]  # no rotation: the diagonal is 1 / zoom
    assert zoom.min() >= lo - 1e-6 and zoom.max() <= hi + 1e-6
    assert zoom.min() < lo * 1.02 and zoom.max() > hi * 0.98
    # log-uniform on [log ½, log 2]: as likely to zoom in as out, a quarter of draws below 1/√2
    assert (zoom < 1).float().mean() == pytest.approx(0.5, abs=0.02)
    assert (zoom < 1 / math.sqrt(2)).float().mean() == pytest.approx(0.25, abs=0.02)
    torch.testing.assert_close(mats[:, 1, 1], mats[:, 0, 0])
    assert mats[:, 0, 1].abs().max() == 0


def test_zooming_out_pads_image_and_mask_with_zeros():
    images, masks = torch.ones(1, 3, 16, 16), torch.ones(1, 1, 16, 16)
    out_images, out_masks = augment_batch(images, masks, _cfg(scale=1.0, scale_range=(0.5, 0.6)), _gen())
    assert out_images[0, :, 0, 0].tolist() == [0.0, 0.0, 0.0] and out_masks[0, 0, 0, 0] == 0
    assert out_images[0, :, 8, 8].tolist() == [1.0, 1.0, 1.0] and out_masks[0, 0, 8, 8] == 1


def test_brightness_shifts_each_image_by_one_amount_and_leaves_the_mask():
    images, masks = _pair(n=64)
    images = 0.25 + 0.5 * images  # in [0.25, 0.75]: a shift of at most 0.2 is never clamped
    out_images, out_masks = augment_batch(images, masks, _cfg(brightness=0.2), _gen(4))
    shift = (out_images - images).flatten(1)
    torch.testing.assert_close(shift, shift[:, :1].expand_as(shift), atol=1e-6, rtol=0)
    assert shift[:, 0].abs().max() <= 0.2 + 1e-6
    assert shift[:, 0].min() < -0.15 and shift[:, 0].max() > 0.15
    assert torch.equal(out_masks, masks)


def test_contrast_scales_about_each_images_mean():
    images, masks = _pair(n=64)
    images = 0.4 + 0.2 * images  # contrast of at most ±30% about the mean stays inside [0, 1]
    out_images, out_masks = augment_batch(images, masks, _cfg(contrast=0.3), _gen(4))
    mean = images.mean(dim=(1, 2, 3), keepdim=True)
    centred, out_centred = images - mean, out_images - mean
    # one factor per image (least squares), and every pixel follows it
    factor = (out_centred * centred).sum(dim=(1, 2, 3)) / centred.pow(2).sum(dim=(1, 2, 3))
    torch.testing.assert_close(out_centred, factor.view(-1, 1, 1, 1) * centred, atol=1e-5, rtol=0)
    assert factor.min() >= 0.7 - 1e-4 and factor.max() <= 1.3 + 1e-4
    assert factor.min() < 0.75 and factor.max() > 1.25
    # the mean itself stays where it was
    torch.testing.assert_close(out_images.mean(dim=(1, 2, 3)), mean.flatten(), atol=1e-5, rtol=0)
    assert torch.equal(out_masks, masks)


def test_jitter_is_clamped_to_the_unit_range():
    images = torch.cat([torch.zeros(8, 3, 4, 4), torch.ones(8, 3, 4, 4)])
    images[:, :, 0, 0] = 0.5
    out, _ = augment_batch(images, torch.zeros(16, 1, 4, 4), _cfg(brightness=1.0, contrast=1.0), _gen(2))
    assert out.min() == 0.0 and out.max() == 1.0


def test_a_generator_fixes_the_draws():
    images, masks = _pair()
    cfg = AugmentSettings()
    a = augment_batch(images, masks, cfg, _gen(11))
    b = augment_batch(images, masks, cfg, _gen(11))
    c = augment_batch(images, masks, cfg, _gen(12))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


def _bilinear_1d(n_out: int, n_in: int, zoom: float) -> torch.Tensor:
    """``n_out×n_in`` weights of sampling, about the centre, a 1-D signal zoomed by ``zoom``: output
    pixel i reads input position (i + ½ − n/2)/zoom + n/2 − ½ (pixel centres, as align_corners=False)."""
    w = torch.zeros(n_out, n_in, dtype=torch.float64)
    for i in range(n_out):
        x = (i + 0.5 - n_out / 2) / zoom + n_in / 2 - 0.5
        lo = math.floor(x)
        for j, weight in ((lo, 1 - (x - lo)), (lo + 1, x - lo)):
            if 0 <= j < n_in:
                w[i, j] = weight
    return w


def test_a_zoom_samples_image_and_mask_at_the_same_pixel_centres():
    """Zoom 1.25 on 17 px: output pixel i reads input position 0.8·i + 1.6 (never a half, so nearest
    neighbour is unambiguous). The mask takes the nearest pixel, the image the bilinear blend, both
    worked out here without the warp."""
    size, zoom = 17, 1.25
    masks = (torch.rand(2, 1, size, size, generator=_gen(5)) > 0.5).float()
    images = torch.rand(2, 3, size, size, generator=_gen(6))
    cfg = _cfg(scale=1.0, scale_range=(zoom, zoom))
    out_images, out_masks = augment_batch(images, masks, cfg, _gen())
    nearest = [round((i + 0.5 - size / 2) / zoom + size / 2 - 0.5) for i in range(size)]
    assert torch.equal(out_masks, masks[:, :, nearest][:, :, :, nearest])
    w = _bilinear_1d(size, size, zoom)
    want = torch.einsum("yi,bcij,xj->bcyx", w, images.double(), w)
    torch.testing.assert_close(out_images.double(), want, atol=1e-5, rtol=0)


def test_rotation_and_zoom_together_make_a_scaled_rotation():
    mats = affine_params(
        _cfg(rotate=1.0, rotate_degrees=90.0, scale=1.0, scale_range=(2.0, 2.0)), 500, _gen(4)
    )
    # R(θ)/2: every column has length ½ whatever the angle, and the angles still span ±90°
    torch.testing.assert_close(mats[:, 0, 0] ** 2 + mats[:, 1, 0] ** 2, torch.full((500,), 0.25))
    torch.testing.assert_close(mats[:, 0, 1] ** 2 + mats[:, 1, 1] ** 2, torch.full((500,), 0.25))
    angles = torch.rad2deg(torch.atan2(mats[:, 1, 0], mats[:, 0, 0]))
    assert angles.min() < -80 and angles.max() > 80


def test_a_double_precision_batch_is_augmented_in_double_precision():
    images, masks = _pair()
    out_images, out_masks = augment_batch(images.double(), masks.double(), AugmentSettings(), _gen(1))
    assert out_images.dtype == out_masks.dtype == torch.float64
