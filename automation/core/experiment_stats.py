"""The statistics of an experiment's arms: counts in, figures out (numbers only, no I/O).

Definitions (the README's "Experiments" section says the same):
- conversion rate k/n with a 95% Wilson score interval;
- absolute lift p_arm - p_base with Newcomb's hybrid score interval (from the two Wilson intervals);
- relative lift p_arm / p_base - 1 with the log-ratio (Katz) interval, undefined while either arm
  has no conversion;
- p-value: Pearson's chi-squared on the 2x2 table (converted / not, arm / baseline), without
  continuity correction, two-sided;
- P(best): each arm's rate has the posterior Beta(1 + k, 1 + n - k); the probability that an arm's
  rate is the highest is the integral of its density times the others' distribution functions,
  computed by adaptive quadrature (exact up to 1e-8, no sampling);
- sample-ratio mismatch: chi-squared goodness of fit of the entrants per arm against the weights,
  flagged below p = 0.001;
- verdict: `not enough data` while any arm has fewer than MIN_ENTRANTS entrants; else `ARM wins` when
  the arm most likely best has P(best) >= 0.95 and p < 0.05 against the baseline (the baseline itself
  must be below 0.05 against every other arm); else `no clear difference`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from scipy import integrate, stats

Z95 = float(stats.norm.ppf(0.975))
MIN_ENTRANTS = 500
SRM_ALPHA = 0.001
BEST_AT = 0.95
SIGNIFICANT_AT = 0.05
NOT_ENOUGH = "not enough data"
NO_DIFFERENCE = "no clear difference"

Interval = tuple[float, float]


@dataclass(frozen=True)
class Counts:
    """One arm's entrants, how many of them converted, and its expected share of the entrants."""

    arm: str
    entrants: int
    converted: int
    weight: float


@dataclass(frozen=True)
class Comparison:
    """One arm against the baseline."""

    arm: str
    absolute: float
    absolute_ci: Interval
    relative: float | None
    relative_ci: Interval | None
    p_value: float | None


@dataclass(frozen=True)
class Srm:
    chi2: float
    p_value: float

    @property
    def flagged(self) -> bool:
        return self.p_value < SRM_ALPHA


@dataclass(frozen=True)
class Analysis:
    baseline: str
    rates: dict[str, float | None]
    intervals: dict[str, Interval | None]
    comparisons: list[Comparison]
    p_best: dict[str, float]
    srm: Srm | None
    verdict: str


def rate(k: int, n: int) -> float | None:
    return k / n if n else None


def wilson(k: int, n: int, z: float = Z95) -> Interval | None:
    """The Wilson score interval of k successes in n trials; None for no trials."""
    if n == 0:
        return None
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


def newcomb(k1: int, n1: int, k0: int, n0: int) -> Interval:
    """Newcomb's hybrid score interval of p1 - p0 (both n positive)."""
    p1, p0 = k1 / n1, k0 / n0
    lo1, hi1 = wilson(k1, n1) or (0.0, 0.0)
    lo0, hi0 = wilson(k0, n0) or (0.0, 0.0)
    d = p1 - p0
    return d - math.hypot(p1 - lo1, hi0 - p0), d + math.hypot(hi1 - p1, p0 - lo0)


def ratio_interval(k1: int, n1: int, k0: int, n0: int) -> Interval | None:
    """The log-ratio (Katz) interval of p1 / p0; None while either count is zero."""
    if k1 == 0 or k0 == 0:
        return None
    log_ratio = math.log((k1 / n1) / (k0 / n0))
    se = math.sqrt(1 / k1 - 1 / n1 + 1 / k0 - 1 / n0)
    return math.exp(log_ratio - Z95 * se), math.exp(log_ratio + Z95 * se)


def chi2_p(k1: int, n1: int, k0: int, n0: int) -> float | None:
    """Two-sided p-value of Pearson's chi-squared on the 2x2 table, no continuity correction."""
    table = [[k1, n1 - k1], [k0, n0 - k0]]
    if 0 in (n1, n0) or k1 + k0 == 0 or k1 + k0 == n1 + n0:
        return None  # a zero margin: the test is undefined
    return float(stats.chi2_contingency(table, correction=False).pvalue)


def compare(arm: Counts, base: Counts) -> Comparison:
    """`arm` against `base` (both with entrants)."""
    k1, n1, k0, n0 = arm.converted, arm.entrants, base.converted, base.entrants
    ratio = ratio_interval(k1, n1, k0, n0)
    return Comparison(
        arm.arm,
        k1 / n1 - k0 / n0,
        newcomb(k1, n1, k0, n0),
        (k1 / n1) / (k0 / n0) - 1 if k0 else None,
        (ratio[0] - 1, ratio[1] - 1) if ratio else None,
        chi2_p(k1, n1, k0, n0),
    )


def p_best(arms: Sequence[Counts]) -> dict[str, float]:
    """P(each arm's rate is the highest) under Beta(1, 1) priors, by quadrature."""
    posts = [stats.beta(1 + a.converted, 1 + a.entrants - a.converted) for a in arms]
    out = {}
    for i, arm in enumerate(arms):
        others = [p for j, p in enumerate(posts) if j != i]
        lo, hi = (float(x) for x in posts[i].ppf([1e-12, 1 - 1e-12]))

        def integrand(x: float, i: int = i, others: list[stats.rv_continuous] = others) -> float:
            value = float(posts[i].pdf(x))
            for p in others:
                value *= float(p.cdf(x))
            return value

        mode = float(posts[i].mean())
        total, _ = integrate.quad(integrand, lo, hi, points=[mode], limit=200, epsabs=1e-10)
        out[arm.arm] = float(total)
    return out


def srm(arms: Sequence[Counts]) -> Srm | None:
    """Chi-squared of the entrants per arm against the arms' weights; None without entrants."""
    n = sum(a.entrants for a in arms)
    if n == 0 or len(arms) < 2:
        return None
    total = sum(a.weight for a in arms)
    expected = [n * a.weight / total for a in arms]
    result = stats.chisquare([a.entrants for a in arms], expected)
    return Srm(float(result.statistic), float(result.pvalue))


def verdict(arms: Sequence[Counts], comparisons: Sequence[Comparison], best: dict[str, float]) -> str:
    """`not enough data`, `ARM wins` or `no clear difference` (rules in the module docstring)."""
    if any(a.entrants < MIN_ENTRANTS for a in arms):
        return NOT_ENOUGH
    leader = max(best, key=lambda arm: best[arm])
    if best[leader] < BEST_AT:
        return NO_DIFFERENCE
    against = [c for c in comparisons if leader in (c.arm, arms[0].arm)]
    p_values = [c.p_value for c in against]
    if p_values and all(p is not None and p < SIGNIFICANT_AT for p in p_values):
        return f"{leader} wins"
    return NO_DIFFERENCE


def analyse(arms: Sequence[Counts]) -> Analysis:
    """Every figure of the experiment; the first arm is the baseline (the holdout when there is one)."""
    base = arms[0]
    measured = [a for a in arms if a.entrants]
    comparisons = [compare(a, base) for a in arms[1:] if a.entrants] if base.entrants else []
    best = p_best(measured) if len(measured) > 1 else {}
    return Analysis(
        base.arm,
        {a.arm: rate(a.converted, a.entrants) for a in arms},
        {a.arm: wilson(a.converted, a.entrants) for a in arms},
        comparisons,
        best,
        srm(arms),
        verdict(arms, comparisons, best) if best else NOT_ENOUGH,
    )
