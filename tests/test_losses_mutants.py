"""Exact values of every loss term on tensors small enough to work out by hand (with ``math``, not with
the functions under test): a sign, a zero or a trend accepts any rescaling, these do not."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from microaunet_cli.losses import (
    bce_dice_loss,
    bernoulli_kl,
    feature_mimic,
    imitation_weight,
    l2_penalty,
    pixel_infonce,
)
from microaunet_cli.losses.distill import _sample
from microaunet_cli.losses.segmentation import soft_dice_loss


def _bernoulli_kl(p: float, q: float) -> float:
    """KL(Bernoulli(p) || Bernoulli(q))."""
    return p * math.log(p / q) + (1 - p) * math.log((1 - p) / (1 - q))


def _sigmoid(z: float) -> float:
    return 1 / (1 + math.exp(-z))


def test_bernoulli_kl_by_hand_teacher_first_mean_over_pixels_times_tau_squared():
    tau = 2.0
    zs = torch.tensor([[[[0.0, 2.0]]]])
    zt = torch.tensor([[[[4.0, -2.0]]]])
    # pixel 0: teacher σ(2), student σ(0) = 0.5; pixel 1: teacher σ(-1), student σ(1)
    per_pixel = [_bernoulli_kl(_sigmoid(2.0), 0.5), _bernoulli_kl(_sigmoid(-1.0), _sigmoid(1.0))]
    expected = sum(per_pixel) / 2 * tau**2
    assert float(bernoulli_kl(zs, zt, tau)) == pytest.approx(expected, rel=1e-6)
    # KL is not symmetric: the teacher's distribution comes first
    swapped = (_bernoulli_kl(0.5, _sigmoid(2.0)) + _bernoulli_kl(_sigmoid(1.0), _sigmoid(-1.0))) / 2 * tau**2
    assert float(bernoulli_kl(zt, zs, tau)) == pytest.approx(swapped, rel=1e-6)
    assert swapped != pytest.approx(expected, rel=1e-3)


def test_bernoulli_kl_at_temperature_one():
    zs, zt = torch.tensor([0.0]), torch.tensor([math.log(3.0)])  # teacher 0.75, student 0.5
    assert float(bernoulli_kl(zs, zt, 1.0)) == pytest.approx(_bernoulli_kl(0.75, 0.5), rel=1e-6)


def _pixels(*vectors: tuple[float, ...]) -> torch.Tensor:
    """1×C×1×N feature map whose N pixels hold the given channel vectors."""
    return torch.tensor(vectors, dtype=torch.float32).T.reshape(1, len(vectors[0]), 1, len(vectors))


def test_channel_norm_mimic_by_hand():
    # skip 1, two pixels: (3, 0) vs (1, 1) -> 2 - 2 cos 45° = 2 - √2; (0, 2) vs (0, 5) -> 0
    s1, t1 = _pixels((3.0, 0.0), (0.0, 2.0)), _pixels((1.0, 1.0), (0.0, 5.0))
    # skip 2, one pixel: (1, 0, 0) vs (0, 0, 4) -> orthogonal, 2
    s2, t2 = _pixels((1.0, 0.0, 0.0)), _pixels((0.0, 0.0, 4.0))
    skip1 = (2 - math.sqrt(2) + 0.0) / 2  # mean over pixels
    expected = (skip1 + 2.0) / 2  # mean over skips
    assert float(feature_mimic([s1, s2], [t1, t2])) == pytest.approx(expected, rel=1e-6)
    # opposite directions: the largest distance, 4
    assert float(feature_mimic([_pixels((1.0, 0.0))], [_pixels((-2.0, 0.0))])) == pytest.approx(4.0)


def test_channel_norm_mimic_passes_the_student_through_its_adapter():
    class Swap(nn.Module):  # a 1x1 "conv" that swaps the two channels
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.flip(1)

    s, t = _pixels((0.0, 1.0)), _pixels((1.0, 0.0))
    assert float(feature_mimic([s], [t])) == pytest.approx(2.0)
    assert float(feature_mimic([s], [t], adapters=[Swap()])) == pytest.approx(0.0, abs=1e-7)


def test_attention_mimic_by_hand():
    # attention map: channel mean of squares per pixel, then L2-normalised over the pixels
    s = _pixels((1.0, 1.0), (0.0, 0.0), (1.0, -1.0))  # means 1, 0, 1 -> (1, 0, 1)/√2
    t = torch.tensor([[[[2.0, 0.0, 0.0]]]])  # one channel (counts may differ): means 4, 0, 0 -> (1, 0, 0)
    a = 1 / math.sqrt(2)
    expected = ((a - 1) ** 2 + 0 + a**2) / 3
    assert float(feature_mimic([s], [t], mode="attention")) == pytest.approx(expected, rel=1e-6)


def _two_pixel_infonce(**kwargs) -> torch.Tensor:
    # pixel 0 is background, pixel 1 polyp: every anchor and every negative is forced
    student = _pixels((2.0, 0.0), (3.0, 4.0))  # unit: (1, 0), (0.6, 0.8)
    teacher = _pixels((0.0, 5.0), (1.0, 0.0))  # unit: (0, 1), (1, 0)
    labels = torch.tensor([[[0, 1]]])
    return pixel_infonce(
        student,
        teacher,
        labels,
        n_anchors=2,
        n_negatives=1,
        generator=torch.Generator().manual_seed(0),
        **kwargs,
    )


def _nce(pos: float, neg: float, tau: float) -> float:
    """-log(e^{pos/τ} / (e^{pos/τ} + e^{neg/τ}))."""
    return math.log(math.exp(pos / tau) + math.exp(neg / tau)) - pos / tau


def test_infonce_by_hand():
    tau = 0.5
    # anchor pixel 0: positive s0·t0 = 0, negative s0·t1 = 1; anchor pixel 1: positive 0.6, negative 0.8
    l0, l1 = _nce(0.0, 1.0, tau), _nce(0.6, 0.8, tau)
    assert float(_two_pixel_infonce(temperature=tau)) == pytest.approx((l0 + l1) / 2, rel=1e-5)
    # the preferred anchor (student wrong, teacher right: pixel 1) weighs preference_weight = 3 times
    preferred = _two_pixel_infonce(
        temperature=tau,
        student_wrong=torch.tensor([[[False, True]]]),
        teacher_right=torch.tensor([[[True, True]]]),
        preference_weight=3.0,
    )
    assert float(preferred) == pytest.approx((l0 + 3 * l1) / 4, rel=1e-5)
    # both masks are needed: a student that is wrong where the teacher is wrong too is not preferred
    not_preferred = _two_pixel_infonce(
        temperature=tau,
        student_wrong=torch.tensor([[[False, True]]]),
        teacher_right=torch.tensor([[[True, False]]]),
        preference_weight=3.0,
    )
    assert float(not_preferred) == pytest.approx((l0 + l1) / 2, rel=1e-5)


def test_infonce_default_temperature_is_a_tenth():
    assert float(_two_pixel_infonce()) == pytest.approx(
        (_nce(0.0, 1.0, 0.1) + _nce(0.6, 0.8, 0.1)) / 2, rel=1e-5
    )


def test_sample_draws_only_members_even_the_last_element():
    member = torch.tensor([False, False, False, True])
    picks = _sample(member, member.sum(), 50, torch.Generator().manual_seed(0))
    assert picks.tolist() == [3] * 50
    two = torch.tensor([True, False, False, True])
    picks = _sample(two, two.sum(), 400, torch.Generator().manual_seed(1))
    assert set(picks.tolist()) == {0, 3}
    # no member: indices stay valid (the caller zeroes the term)
    none = _sample(torch.zeros(4, dtype=torch.bool), torch.tensor(0), 10, torch.Generator().manual_seed(2))
    assert none.min() >= 0 and none.max() <= 3


def test_l2_penalty_sums_every_tensor():
    assert float(l2_penalty([torch.tensor([1.0, -2.0]), torch.tensor([[3.0]])])) == pytest.approx(14.0)


@pytest.mark.parametrize(
    "t, expected", [(-1.0, 0.0), (0.0, 0.0), (2.0, 0.25), (3.0, 0.5), (4.0, 0.75), (6.0, 1.0), (9.0, 1.0)]
)
def test_omega_by_hand_and_clamped_outside_the_stage(t, expected):
    # ½(1 + cos(π(6 − t)/6)): cos(2π/3) = -½ at t = 2, cos(π/3) = ½ at t = 4
    assert imitation_weight(t, 6.0) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("length", [0.0, -1.0])
def test_omega_without_a_stage_is_one(length):
    assert imitation_weight(0.5, length) == 1.0


def test_soft_dice_by_hand_per_image_then_mean():
    logits = torch.tensor([[[[0.0, 0.0]]], [[[0.0, 0.0]]]])  # every probability 0.5
    masks = torch.tensor([[[[1.0, 0.0]]], [[[1.0, 1.0]]]])
    # image 0: (2·0.5 + 1)/(1 + 1 + 1) = 2/3; image 1: (2·1 + 1)/(1 + 2 + 1) = 3/4
    assert float(soft_dice_loss(logits, masks)) == pytest.approx(((1 - 2 / 3) + (1 - 3 / 4)) / 2)
    assert float(soft_dice_loss(logits, masks, smooth=0.0)) == pytest.approx(((1 - 1 / 2) + (1 - 2 / 3)) / 2)


def test_bce_dice_by_hand():
    logits = torch.tensor([[[[0.0, math.log(3.0)]]]])  # probabilities 0.5, 0.75
    masks = torch.tensor([[[[1.0, 0.0]]]])
    bce = (math.log(2) + math.log(4)) / 2  # -log 0.5, -log 0.25
    dice = 1 - (2 * 0.5 + 1) / (1.25 + 1 + 1)
    loss, terms = bce_dice_loss(logits, masks)
    assert float(loss) == pytest.approx(bce + dice, rel=1e-6)
    assert float(terms["bce"]) == pytest.approx(bce, rel=1e-6)
    assert float(terms["dice"]) == pytest.approx(dice, rel=1e-6)


def test_attention_maps_are_normalised_per_image():
    # two images whose maps differ only in scale: each normalised alone, they are equal, so the term is 0
    s = torch.cat([_pixels((1.0,), (2.0,)), _pixels((3.0,), (6.0,))])
    t = torch.cat([_pixels((1.0,), (2.0,)), _pixels((1.0,), (2.0,))])
    assert float(feature_mimic([s], [t], mode="attention")) == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("length, t, expected", [(1.0, 0.5, 0.5), (0.5, 0.25, 0.5), (1.0, 0.0, 0.0)])
def test_omega_over_a_stage_of_one_epoch_or_less(length, t, expected):
    assert imitation_weight(t, length) == pytest.approx(expected, abs=1e-12)


# Three pixels: background at 0; polyp at 1 and 2, whose teacher embeddings are the same.
_TEACHER3 = _pixels((0.0, 5.0), (1.0, 0.0), (2.0, 0.0))  # unit: (0, 1), (1, 0), (1, 0)
_LABELS3 = torch.tensor([[[0, 1, 1]]])


def _infonce3(student: torch.Tensor, seed: int = 0, **kwargs) -> float:
    return float(
        pixel_infonce(student, _TEACHER3, _LABELS3, generator=torch.Generator().manual_seed(seed), **kwargs)
    )


def _nce_m(pos: float, neg: float, m: int, tau: float) -> float:
    """-log(e^{pos/τ} / (e^{pos/τ} + m·e^{neg/τ})): m negatives of the same embedding."""
    return math.log(math.exp(pos / tau) + m * math.exp(neg / tau)) - pos / tau


def test_infonce_by_hand_with_classes_of_different_sizes():
    # both polyp pixels identical for the student too: every draw gives the same anchors' losses
    student = _pixels((2.0, 0.0), (3.0, 4.0), (3.0, 4.0))
    tau, m = 0.5, 3
    l0 = _nce_m(0.0, 1.0, m, tau)  # anchor 0: positive (1,0)·(0,1), negatives (1,0)·(1,0)
    l1 = _nce_m(0.6, 0.8, m, tau)  # anchors 1, 2: positive (.6,.8)·(1,0), negative (.6,.8)·(0,1)
    for seed in range(4):
        got = _infonce3(student, seed, n_anchors=64, n_negatives=m, temperature=tau)
        assert got == pytest.approx((l0 + l1) / 2, rel=1e-5), seed


def _two_students() -> tuple[torch.Tensor, float, float, float]:
    """The polyp pixels differ for the student: (0.6, 0.8) and (0, 1); one negative per anchor."""
    student = _pixels((2.0, 0.0), (3.0, 4.0), (0.0, 7.0))
    tau = 0.5
    return student, _nce_m(0.0, 1.0, 1, tau), _nce_m(0.6, 0.8, 1, tau), _nce_m(0.0, 1.0, 1, tau)


def test_infonce_takes_half_the_anchors_from_each_class():
    student, l0, la, lb = _two_students()
    # n_anchors 2: one anchor per class, so the loss is (l0 + la)/2 or (l0 + lb)/2, never in between
    one = {round(_infonce3(student, s, n_anchors=2, n_negatives=1, temperature=0.5), 5) for s in range(16)}
    assert one == {round((l0 + la) / 2, 5), round((l0 + lb) / 2, 5)}
    # n_anchors 4: two per class, and over 16 draws at least once one of each polyp pixel
    two = {round(_infonce3(student, s, n_anchors=4, n_negatives=1, temperature=0.5), 5) for s in range(16)}
    assert round((2 * l0 + la + lb) / 4, 5) in two
    assert two <= {round((2 * l0 + 2 * x) / 4, 5) for x in (la, lb)} | {round((2 * l0 + la + lb) / 4, 5)}


def test_infonce_preference_needs_both_masks():
    student, *_ = _two_students()
    plain = _infonce3(student, n_anchors=4, n_negatives=2, temperature=0.5)
    wrong = torch.tensor([[[False, True, True]]])
    assert _infonce3(student, student_wrong=wrong, n_anchors=4, n_negatives=2, temperature=0.5) == plain
    assert _infonce3(student, teacher_right=wrong, n_anchors=4, n_negatives=2, temperature=0.5) == plain


def test_infonce_defaults():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(1, 4, 6, 6, generator=g), torch.randn(1, 4, 6, 6, generator=g)
    labels = torch.rand(1, 6, 6, generator=g) > 0.5
    wrong, right = torch.rand(1, 6, 6, generator=g) > 0.5, torch.rand(1, 6, 6, generator=g) > 0.3

    def run(**kwargs) -> float:
        return float(
            pixel_infonce(
                student,
                teacher,
                labels,
                student_wrong=wrong,
                teacher_right=right,
                generator=torch.Generator().manual_seed(4),
                **kwargs,
            )
        )

    assert run() == run(n_anchors=256, n_negatives=512, temperature=0.1, preference_weight=2.0)
    assert run() != run(preference_weight=3.0) and run() != run(n_negatives=513)
