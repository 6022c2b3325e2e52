"""The interval that `report` prints beside every difference, against values worked out by hand.

Closed forms where Student's t has them: df = 1 (Cauchy) and df = 2. The cases are built so that one
variance part is exactly zero, which pins down which part the interval was taken from, and with
different seed counts on each side, so that swapping them changes the result. Fast, so a mutation run
can afford them for every mutant (the coverage simulation in test_report.py is the slow check).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from microaunet_cli.evaluation.intervals import (
    CONFIDENCE,
    Interval,
    _t_density,
    difference_interval,
    t_cdf,
    t_quantile,
)


def cauchy_cdf(x: float) -> float:
    return 0.5 + math.atan(x) / math.pi


def t2_cdf(x: float) -> float:
    return 0.5 + x / (2 * math.sqrt(2 + x * x))


def t3_cdf(x: float) -> float:
    return 0.5 + (x / (math.sqrt(3) * (1 + x * x / 3)) + math.atan(x / math.sqrt(3))) / math.pi


def cauchy_quantile(p: float) -> float:
    return math.tan(math.pi * (p - 0.5))


def t2_quantile(p: float) -> float:
    return (2 * p - 1) / math.sqrt(2 * p * (1 - p))


def test_density_at_its_centre_and_in_its_tails():
    assert float(_t_density(np.array(0.0), 1.0)) == pytest.approx(1 / math.pi, rel=1e-12)
    assert float(_t_density(np.array(0.0), 2.0)) == pytest.approx(1 / (2 * math.sqrt(2)), rel=1e-12)
    assert float(_t_density(np.array(2.0), 1.0)) == pytest.approx(1 / (5 * math.pi), rel=1e-12)
    # df = 2: (1 + x²/2)^(-3/2) / (2√2)
    assert float(_t_density(np.array(1.5), 2.0)) == pytest.approx(
        (1 + 1.5**2 / 2) ** -1.5 / (2 * math.sqrt(2)), rel=1e-12
    )


@pytest.mark.parametrize("x", [0.0, 0.3, 1.0, 4.0, 30.0, -0.7, -5.0])
def test_cdf_matches_the_closed_forms(x):
    assert t_cdf(x, 1.0) == pytest.approx(cauchy_cdf(x), abs=1e-9)
    assert t_cdf(x, 2.0) == pytest.approx(t2_cdf(x), abs=1e-9)


@pytest.mark.parametrize("x", [1.0, 4.0])
def test_cdf_is_exact_to_rounding_where_the_density_is_smooth(x):
    """Simpson's rule on 2,001 points in atan(t) is good to ~1e-14 here: a wrong end weight or a
    dropped interior point shows at 1e-12 and more."""
    assert t_cdf(x, 2.0) == pytest.approx(t2_cdf(x), abs=2e-13)
    assert t_cdf(x, 3.0) == pytest.approx(t3_cdf(x), abs=2e-13)


def test_cdf_tends_to_the_normal_for_many_degrees_of_freedom():
    assert t_cdf(1.959964, 1e7) == pytest.approx(0.975, abs=1e-6)
    assert t_cdf(-1.0, 1e7) == pytest.approx(0.158655, abs=1e-6)


@pytest.mark.parametrize("p", [0.6, 0.9, 0.975, 0.995, 0.4, 0.025, 0.001])
def test_quantile_matches_the_closed_forms(p):
    assert t_quantile(p, 1.0) == pytest.approx(cauchy_quantile(p), rel=1e-7, abs=1e-9)
    assert t_quantile(p, 2.0) == pytest.approx(t2_quantile(p), rel=1e-7, abs=1e-9)


def test_quantile_at_the_median_is_zero():
    assert t_quantile(0.5, 3.0) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize(("p", "df"), [(0.0, 3.0), (1.0, 3.0), (-0.1, 3.0), (0.5, 0.0), (0.5, -1.0)])
def test_quantile_outside_its_domain_is_an_error(p, df):
    with pytest.raises(ValueError, match=f"0 < p < 1 and df > 0, got p={p}, df={df}"):
        t_quantile(p, df)


def test_images_only_when_each_side_has_one_run():
    """Paired, one run a side, differences 0.1, 0.2, 0.6: mean 0.3, sd √0.07, df 2."""
    theirs = np.array([[0.5, 0.5, 0.5]])
    ours = theirs + np.array([[0.1, 0.2, 0.6]])
    iv = difference_interval(ours, theirs, paired=True)
    half = t2_quantile(0.975) * math.sqrt(0.07 / 3)
    assert iv.difference == pytest.approx(0.3)
    assert (iv.low, iv.high) == pytest.approx((0.3 - half, 0.3 + half), rel=1e-9)
    assert iv.over == "images only" and iv.df == pytest.approx(2.0)
    assert (iv.seeds, iv.reference_seeds, iv.paired) == (1, 1, True)
    assert iv.label == "images only: 1 vs 1 seed(s), no spread over seeds"


def test_images_only_when_the_reference_has_one_run_and_the_runs_are_not_paired():
    """Three runs against one: no spread over the reference's seeds, so none is estimated on either
    side; the interval is over the images of the runs' mean, and says 3 vs 1."""
    theirs = np.array([[0.5, 0.5, 0.5]])
    ours = np.array([[0.6, 0.7, 1.1], [0.6, 0.7, 1.1], [0.6, 0.7, 1.1]])
    iv = difference_interval(ours, theirs, paired=False)
    half = t2_quantile(0.975) * math.sqrt(0.07 / 3)
    assert (iv.low, iv.high) == pytest.approx((0.3 - half, 0.3 + half), rel=1e-9)
    assert iv.over == "images only" and (iv.seeds, iv.reference_seeds) == (3, 1)
    assert iv.label == "images only: 3 vs 1 seed(s), no spread over seeds"
    swapped = difference_interval(theirs, ours, paired=False)
    assert swapped.difference == pytest.approx(-0.3) and (swapped.seeds, swapped.reference_seeds) == (1, 3)


def test_one_image_and_one_run_has_no_interval():
    iv = difference_interval(np.array([0.7]), np.array([0.5]), paired=True, confidence=0.9)
    assert iv.difference == pytest.approx(0.2)
    assert math.isnan(iv.low) and math.isnan(iv.high) and iv.df is None
    assert (iv.over, iv.seeds, iv.reference_seeds, iv.paired, iv.confidence) == (
        "images only",
        1,
        1,
        True,
        0.9,
    )
    unpaired = difference_interval(np.array([[0.7]]), np.array([[0.5]]), paired=False)
    assert (unpaired.seeds, unpaired.reference_seeds, unpaired.paired) == (1, 1, False)


def test_two_images_are_enough_for_an_interval():
    """One run a side, differences 0.1 and 0.3 over two images: Cauchy quantile, sd √0.02."""
    iv = difference_interval(np.array([0.6, 0.8]), np.array([0.5, 0.5]), paired=True)
    half = cauchy_quantile(0.975) * math.sqrt(0.02 / 2)
    assert (iv.low, iv.high) == pytest.approx((0.2 - half, 0.2 + half), rel=1e-9)
    assert iv.df == pytest.approx(1.0)


def test_paired_seeds_dominate_when_every_image_moves_alike():
    """Per-seed differences 0, 0.03, 0.09 on every image: no spread over images, so the interval is
    Student's at 2 df over the three paired differences (mean 0.04, variance 0.0021)."""
    theirs = np.tile([0.4, 0.6, 0.8, 0.5], (3, 1))
    ours = theirs + np.array([[0.0], [0.03], [0.09]])
    iv = difference_interval(ours, theirs, paired=True)
    half = t2_quantile(0.975) * math.sqrt(0.0021 / 3)
    assert iv.difference == pytest.approx(0.04)
    assert (iv.low, iv.high) == pytest.approx((0.04 - half, 0.04 + half), rel=1e-9)
    assert iv.over == "seeds and images" and iv.df == pytest.approx(2.0)
    assert iv.label == "t, 3 seeds paired"


def test_pairing_cancels_a_seed_effect_both_sides_share():
    """The reference's seeds 0.05 apart and each run 0.02 above the reference of its seed: paired,
    the per-seed differences agree exactly, so only the images' spread is left."""
    base = np.array([0.5, 0.6, 0.4, 0.7])
    theirs = np.stack([base - 0.05, base, base + 0.05])
    ours = theirs + 0.02 + np.array([0.01, -0.01, 0.0, 0.0])
    iv = difference_interval(ours, theirs, paired=True)
    half = t_quantile(0.975, 3.0) * math.sqrt(np.var([0.03, 0.01, 0.02, 0.02], ddof=1) / 4)
    assert iv.difference == pytest.approx(0.02)
    assert (iv.low, iv.high) == pytest.approx((0.02 - half, 0.02 + half), rel=1e-7)
    assert iv.df == pytest.approx(3.0)
    unpaired = difference_interval(ours, theirs, paired=False)
    assert unpaired.high - unpaired.low > 5 * (iv.high - iv.low)


def test_paired_images_dominate_when_every_seed_moves_alike():
    """Two seeds with the same per-image differences 0.1, -0.1, 0.3: the seeds agree exactly, so the
    seed part is zero and the interval is the images' (df 2), not a zero-width one."""
    theirs = np.tile([0.5, 0.6, 0.4], (2, 1))
    ours = theirs + np.array([0.1, -0.1, 0.3])
    iv = difference_interval(ours, theirs, paired=True)
    var = np.var([0.1, -0.1, 0.3], ddof=1)  # 0.04
    half = t2_quantile(0.975) * math.sqrt(var / 3)
    assert iv.difference == pytest.approx(0.1)
    assert (iv.low, iv.high) == pytest.approx((0.1 - half, 0.1 + half), rel=1e-9)
    assert iv.df == pytest.approx(2.0) and iv.over == "seeds and images"
    assert iv.label == "t, 2 seeds paired"


def test_seed_and_image_parts_add_with_welch_satterthwaite_degrees_of_freedom():
    """Paired, two seeds: per-seed mean differences 0.1 and 0.3 (seed part variance 0.02/2, 1 df) and
    per-image mean differences 0.1, 0.3, 0, 0.4 (variance 1/30, over 4 images, 3 df). Together they
    have Welch-Satterthwaite's df of about 2.7; the seeds alone give the Cauchy interval, which is the
    wider and so the one reported."""
    d = np.array([[0.1 - 0.1, 0.1 + 0.1, 0.1 - 0.2, 0.1 + 0.2], [0.3 - 0.1, 0.3 + 0.1, 0.3 - 0.2, 0.3 + 0.2]])
    theirs = np.full((2, 4), 0.3)
    iv = difference_interval(theirs + d, theirs, paired=True)
    per_image = d.mean(axis=0)
    v_img = per_image.var(ddof=1) / 4
    v_seed = np.var([0.1, 0.3], ddof=1) / 2
    assert v_seed == pytest.approx(0.01) and iv.difference == pytest.approx(0.2)
    seeds_half = cauchy_quantile(0.975) * math.sqrt(v_seed)
    df = (v_seed + v_img) ** 2 / (v_seed**2 / 1 + v_img**2 / 3)
    both_half = t_quantile(0.975, df) * math.sqrt(v_seed + v_img)
    assert seeds_half > both_half
    assert (iv.low, iv.high) == pytest.approx((0.2 - seeds_half, 0.2 + seeds_half), rel=1e-7)
    assert iv.df == pytest.approx(1.0)


def test_with_more_images_the_combined_interval_is_the_wider():
    """Paired, three seeds 0.01 apart, 50 images whose differences spread widely: the seed part is
    small, the image part large, and the interval is the combined one with its Welch df."""
    rng = np.random.default_rng(7)
    per_image = rng.normal(0.05, 0.3, 50)
    offsets = np.array([[-0.01], [0.0], [0.01]])
    theirs = np.tile(rng.uniform(0.3, 0.6, 50), (3, 1))
    iv = difference_interval(theirs + per_image + offsets, theirs, paired=True)
    v_seed = 0.01**2 / 3
    v_img = per_image.var(ddof=1) / 50
    df = (v_seed + v_img) ** 2 / (v_seed**2 / 2 + v_img**2 / 49)
    half = t_quantile(0.975, df) * math.sqrt(v_seed + v_img)
    assert iv.difference == pytest.approx(per_image.mean())
    assert (iv.low, iv.high) == pytest.approx((iv.difference - half, iv.difference + half), rel=1e-7)
    assert iv.df == pytest.approx(df, rel=1e-9)


def test_unpaired_seeds_take_welchs_interval_over_the_two_sides_means():
    """Two runs against three, every image moving alike: each side's spread over its own seeds, with
    its own degrees of freedom (1 and 2), combined by Welch."""
    base = np.array([0.4, 0.7, 0.55])
    ours = np.stack([base + 0.10, base + 0.14])  # means spread: variance 0.0008, over 2 runs
    theirs = np.stack([base, base + 0.03, base + 0.09])  # variance 0.0021, over 3 runs
    iv = difference_interval(ours, theirs, paired=False)
    va, vb = 0.0008 / 2, 0.0021 / 3
    df = (va + vb) ** 2 / (va**2 / 1 + vb**2 / 2)
    half = t_quantile(0.975, df) * math.sqrt(va + vb)
    assert iv.difference == pytest.approx(0.12 - 0.04)
    assert (iv.low, iv.high) == pytest.approx((0.08 - half, 0.08 + half), rel=1e-7)
    assert iv.df == pytest.approx(df, rel=1e-9)
    assert iv.label == "t, 2 vs 3 seeds" and not iv.paired


def test_unpaired_three_runs_against_two_estimate_both_spreads():
    """As above with the sides swapped in count: three runs against two (df 2 and 1)."""
    base = np.array([0.4, 0.7, 0.55])
    ours = np.stack([base + 0.10, base + 0.13, base + 0.19])  # variance 0.0021
    theirs = np.stack([base, base + 0.04])  # variance 0.0008
    iv = difference_interval(ours, theirs, paired=False, confidence=0.9)
    va, vb = 0.0021 / 3, 0.0008 / 2
    df = (va + vb) ** 2 / (va**2 / 2 + vb**2 / 1)
    half = t_quantile(0.95, df) * math.sqrt(va + vb)
    assert iv.difference == pytest.approx(0.14 - 0.02)
    assert (iv.low, iv.high) == pytest.approx((0.12 - half, 0.12 + half), rel=1e-7)
    assert iv.over == "seeds and images" and iv.label == "t, 3 vs 2 seeds" and iv.confidence == 0.9


def test_no_spread_anywhere_gives_a_zero_width_interval():
    theirs = np.tile([0.5, 0.6, 0.7], (3, 1))
    iv = difference_interval(theirs + 0.02, theirs, paired=True)
    assert (iv.difference, iv.low, iv.high) == pytest.approx((0.02, 0.02, 0.02))
    assert iv.df == pytest.approx(2.0)


def test_another_confidence_takes_its_own_quantile():
    theirs = np.array([[0.5, 0.5, 0.5]])
    ours = theirs + np.array([[0.1, 0.2, 0.6]])
    iv = difference_interval(ours, theirs, paired=True, confidence=0.9)
    half = t2_quantile(0.95) * math.sqrt(0.07 / 3)
    assert (iv.low, iv.high) == pytest.approx((0.3 - half, 0.3 + half), rel=1e-9)
    assert iv.confidence == 0.9 and iv.as_dict()["ci95"] == [iv.low, iv.high]


def test_default_confidence_is_95_percent():
    assert CONFIDENCE == 0.95
    theirs = np.array([[0.5, 0.5, 0.5]])
    iv = difference_interval(theirs + np.array([[0.1, 0.2, 0.6]]), theirs, paired=True)
    assert iv.confidence == 0.95
    assert iv.high - 0.3 == pytest.approx(t2_quantile(0.975) * math.sqrt(0.07 / 3), rel=1e-9)


@pytest.mark.parametrize(
    ("ours", "theirs", "paired", "message"),
    [
        (np.zeros((2, 3)), np.zeros((2, 4)), False, "different or no images"),
        (np.zeros((2, 0)), np.zeros((2, 0)), False, "different or no images"),
        (np.zeros((2, 3)), np.zeros((3, 3)), True, "paired runs need as many rows"),
    ],
)
def test_mismatched_score_matrices_are_errors(ours, theirs, paired, message):
    with pytest.raises(ValueError, match=message):
        difference_interval(ours, theirs, paired)


def test_unpaired_runs_of_different_counts_are_fine():
    iv = difference_interval(np.full((2, 3), 0.6), np.full((3, 3), 0.5), paired=False)
    assert iv.difference == pytest.approx(0.1) and (iv.seeds, iv.reference_seeds) == (2, 3)


def test_as_dict_names_every_field():
    iv = Interval(0.1, 0.0, 0.2, "seeds and images", 3, 3, True, 2.0)
    assert iv.as_dict() == {
        "difference": 0.1,
        "ci95": [0.0, 0.2],
        "interval": "seeds and images",
        "seeds": 3,
        "reference_seeds": 3,
        "paired_by_seed": True,
        "df": 2.0,
        "label": "t, 3 seeds paired",
    }
