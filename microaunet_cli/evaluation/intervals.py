"""The interval of a mean difference between two groups of runs scored on the same test images.

A run's score on an image varies with the seed (the whole run moves up or down), with the image (some
are hard for one network and easy for the other) and with both. With a handful of seeds the spread
over seeds is itself estimated from a few numbers, so the interval takes Student t quantiles: a normal
or percentile-bootstrap interval from three seeds covers far less often than it claims.

Two intervals are computed and the wider one is reported:

- over seeds: Student t over the runs' own means (the per-seed paired differences when student seed k
  is paired with reference seed k, n − 1 degrees of freedom; Welch's interval when the seeds differ);
- over seeds and images: the variance of the mean difference as the sum of the seed part above and
  the sample variance of the per-image differences (averaged over the seeds) over the number of
  images, with Welch-Satterthwaite degrees of freedom. This adds what a new set of test images would
  change, which the seed means alone do not carry (each part also holds the run-by-image noise, so
  the sum errs wide).

Each alone falls short somewhere: the first when images differ a lot between the two networks, the
second at three seeds whose spread dominates (its degrees of freedom, estimated from the same
variances, run high exactly when the seed variance is underestimated). The wider of the two covers in
both (``tests/test_report.py`` simulates it). With one seed there is no spread over seeds to
estimate: the interval is over images only and says so.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import numpy as np

CONFIDENCE = 0.95


def _t_density(x: np.ndarray, df: float) -> np.ndarray:
    log_norm = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    return np.exp(log_norm - (df + 1) / 2 * np.log1p(x * x / df))


def t_cdf(x: float, df: float) -> float:
    """P(T <= x) for Student's t with ``df`` (> 0, not necessarily whole) degrees of freedom."""
    if x < 0:
        return 1.0 - t_cdf(-x, df)
    # Simpson's rule on [0, x] in the variable u = atan(t): the density becomes smooth and bounded
    # on a finite range, so a fixed grid is accurate to ~1e-10 even for df = 1.
    u = np.linspace(0.0, math.atan(x), 2001)
    f = _t_density(np.tan(u), df) / np.cos(u) ** 2
    h = (u[-1] - u[0]) / (len(u) - 1)
    area = h / 3 * (f[0] + f[-1] + 4 * f[1:-1:2].sum() + 2 * f[2:-1:2].sum())
    return 0.5 + float(area)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` degrees of freedom.

    Newton's method from the normal quantile: for p > 1/2 that start lies below the root and the CDF
    is concave there, so the steps approach the root from below without overshooting."""
    if not 0 < p < 1 or not df > 0:
        raise ValueError(f"t_quantile needs 0 < p < 1 and df > 0, got p={p}, df={df}")
    if p < 0.5:
        return -t_quantile(1 - p, df)
    x = statistics.NormalDist().inv_cdf(p)
    for _ in range(100):
        step = (p - t_cdf(x, df)) / float(_t_density(np.array(x), df))
        x += step
        if abs(step) < 1e-9:  # the CDF itself is good to ~1e-10
            break
    return x


@dataclass(frozen=True)
class Interval:
    """A mean difference and its interval; ``seeds`` and ``reference_seeds`` are the runs behind it."""

    difference: float
    low: float
    high: float
    over: str  # "seeds and images" or "images only"
    seeds: int
    reference_seeds: int
    paired: bool
    df: float | None
    confidence: float = CONFIDENCE

    @property
    def label(self) -> str:
        """The seed count and what the interval is over, as the tables print it beside the interval."""
        if self.over == "images only":
            return f"images only: {self.seeds} vs {self.reference_seeds} seed(s), no spread over seeds"
        if self.paired:
            return f"t, {self.seeds} seeds paired"
        return f"t, {self.seeds} vs {self.reference_seeds} seeds"

    def as_dict(self) -> dict:
        return {
            "difference": self.difference,
            "ci95": [self.low, self.high],
            "interval": self.over,
            "seeds": self.seeds,
            "reference_seeds": self.reference_seeds,
            "paired_by_seed": self.paired,
            "df": self.df,
            "label": self.label,
        }


def _combine(
    terms: list[tuple[float, float]], estimate: float, confidence: float
) -> tuple[float, float, float]:
    """(low, high, df) from variance parts (variance of the mean, degrees of freedom)."""
    total = sum(v for v, _ in terms)
    if total <= 0:
        return estimate, estimate, float(min(df for _, df in terms))
    df = total**2 / sum(v * v / df for v, df in terms)
    half = t_quantile(0.5 + confidence / 2, df) * math.sqrt(total)
    return estimate - half, estimate + half, df


def difference_interval(
    ours: np.ndarray, theirs: np.ndarray, paired: bool, confidence: float = CONFIDENCE
) -> Interval:
    """Mean of ``ours`` − ``theirs`` (runs × images score matrices over the same images, in the same
    image order) and its interval. With ``paired`` both hold the same seeds in the same row order."""
    a = np.atleast_2d(np.asarray(ours, dtype=float))
    b = np.atleast_2d(np.asarray(theirs, dtype=float))
    if a.shape[1] != b.shape[1] or a.shape[1] == 0:
        raise ValueError(f"score matrices over different or no images: {a.shape} and {b.shape}")
    if paired and a.shape != b.shape:
        raise ValueError(f"paired runs need as many rows on each side: {a.shape} and {b.shape}")
    k, j, n = len(a), len(b), a.shape[1]
    per_image = a.mean(axis=0) - b.mean(axis=0)
    estimate = float(per_image.mean())
    image_term = [(float(per_image.var(ddof=1)) / n, n - 1.0)] if n > 1 else []
    if paired and k > 1:
        per_seed = (a - b).mean(axis=1)
        seed_terms = [(float(per_seed.var(ddof=1)) / k, k - 1.0)]
    elif not paired and k > 1 and j > 1:
        seed_terms = [
            (float(a.mean(axis=1).var(ddof=1)) / k, k - 1.0),
            (float(b.mean(axis=1).var(ddof=1)) / j, j - 1.0),
        ]
    else:
        seed_terms = []
    if not seed_terms and not image_term:
        return Interval(estimate, math.nan, math.nan, "images only", k, j, paired, None, confidence)
    if not seed_terms:
        low, high, df = _combine(image_term, estimate, confidence)
        return Interval(estimate, low, high, "images only", k, j, paired, df, confidence)
    seeds_only = _combine(seed_terms, estimate, confidence)
    with_images = _combine(seed_terms + image_term, estimate, confidence)
    low, high, df = max(seeds_only, with_images, key=lambda c: c[1] - c[0])
    return Interval(estimate, low, high, "seeds and images", k, j, paired, df, confidence)
