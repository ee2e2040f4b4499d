"""Every figure of `core.experiment_stats` against statsmodels (the test oracle) on the same counts.

P(best) has no statsmodels counterpart: for two arms it is checked against the closed form
of Evan Miller's sum of Beta functions, for three against a seeded simulation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.special import betaln
from statsmodels.stats import gof
from statsmodels.stats.proportion import (
    confint_proportions_2indep,
    proportion_confint,
    proportions_chisquare,
)

from automation.core import experiment_stats as es
from automation.core.experiment_stats import Counts

# (arm converted, arm entrants, baseline converted, baseline entrants)
TABLES = [
    (120, 1000, 90, 1000),
    (31, 540, 30, 560),
    (5, 80, 1, 75),
    (480, 4500, 40, 500),
    (0, 300, 4, 310),
    (7, 7, 3, 9),
]


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (10, 10), (90, 1000), (4321, 50000), (7, 9)])
def test_the_wilson_interval_is_statsmodels_wilson(k: int, n: int) -> None:
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert es.wilson(k, n) == pytest.approx((lo, hi), abs=1e-12)


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"), TABLES)
def test_the_absolute_lift_interval_is_statsmodels_newcomb(k1: int, n1: int, k0: int, n0: int) -> None:
    lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="newcomb", compare="diff")
    c = es.compare(Counts("b", n1, k1, 50), Counts("a", n0, k0, 50))
    assert c.absolute == pytest.approx(k1 / n1 - k0 / n0, abs=1e-15)
    assert c.absolute_ci == pytest.approx((lo, hi), abs=1e-12)


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"), [t for t in TABLES if t[0] and t[2]])
def test_the_relative_lift_interval_is_statsmodels_log_ratio(k1: int, n1: int, k0: int, n0: int) -> None:
    lo, hi = confint_proportions_2indep(k1, n1, k0, n0, method="log", compare="ratio")
    c = es.compare(Counts("b", n1, k1, 50), Counts("a", n0, k0, 50))
    assert c.relative == pytest.approx((k1 / n1) / (k0 / n0) - 1, rel=1e-12)
    assert c.relative_ci == pytest.approx((lo - 1, hi - 1), abs=1e-12)


def test_no_relative_interval_while_an_arm_has_no_conversion() -> None:
    c = es.compare(Counts("b", 300, 0, 50), Counts("a", 310, 4, 50))
    assert c.relative == -1.0
    assert c.relative_ci is None
    assert es.compare(Counts("b", 300, 3, 50), Counts("a", 310, 0, 50)).relative is None


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"), TABLES)
def test_the_p_value_is_statsmodels_chi_squared_on_the_2x2_table(k1: int, n1: int, k0: int, n0: int) -> None:
    _, p, _ = proportions_chisquare(np.array([k1, k0]), np.array([n1, n0]))
    assert es.compare(Counts("b", n1, k1, 50), Counts("a", n0, k0, 50)).p_value == pytest.approx(p, rel=1e-10)


def test_no_p_value_when_nobody_or_everybody_converted() -> None:
    assert es.chi2_p(0, 100, 0, 100) is None
    assert es.chi2_p(100, 100, 50, 50) is None


@pytest.mark.parametrize(
    ("entrants", "weights"),
    [
        ([1000, 1000], [50, 50]),
        ([480, 4520], [10, 90]),
        ([1000, 1100, 905], [1, 1, 1]),
        ([520, 4480], [10, 90]),
    ],
)
def test_the_sample_ratio_check_is_statsmodels_goodness_of_fit(
    entrants: list[int], weights: list[float]
) -> None:
    expected = [sum(entrants) * w / sum(weights) for w in weights]
    stat, p = gof.chisquare(entrants, expected)
    found = es.srm([Counts(f"a{i}", n, 0, w) for i, (n, w) in enumerate(zip(entrants, weights, strict=True))])
    assert found is not None
    assert (found.chi2, found.p_value) == pytest.approx((stat, p), rel=1e-10)
    assert found.flagged == (p < 0.001)


def test_a_sample_ratio_far_from_the_weights_is_flagged() -> None:
    found = es.srm([Counts("holdout", 700, 0, 10), Counts("treatment", 4300, 0, 90)])
    assert found is not None and found.flagged


def _miller(k_a: int, n_a: int, k_b: int, n_b: int) -> float:
    """P(rate B > rate A) with Beta(1, 1) priors: Evan Miller's closed form."""
    a_a, b_a, a_b, b_b = 1 + k_a, 1 + n_a - k_a, 1 + k_b, 1 + n_b - k_b
    return sum(
        math.exp(betaln(a_a + i, b_a + b_b) - math.log(b_b + i) - betaln(1 + i, b_b) - betaln(a_a, b_a))
        for i in range(a_b)
    )


@pytest.mark.parametrize(("k1", "n1", "k0", "n0"), TABLES)
def test_p_best_of_two_arms_is_the_closed_form(k1: int, n1: int, k0: int, n0: int) -> None:
    best = es.p_best([Counts("a", n0, k0, 50), Counts("b", n1, k1, 50)])
    assert best["b"] == pytest.approx(_miller(k0, n0, k1, n1), abs=1e-6)
    assert best["a"] + best["b"] == pytest.approx(1, abs=1e-6)


def test_p_best_of_three_arms_matches_a_seeded_simulation() -> None:
    arms = [Counts("holdout", 500, 40, 10), Counts("warm", 2200, 210, 45), Counts("short", 2300, 190, 45)]
    best = es.p_best(arms)
    rng = np.random.default_rng(7)
    draws = np.stack([rng.beta(1 + a.converted, 1 + a.entrants - a.converted, 400_000) for a in arms])
    wins = np.bincount(draws.argmax(axis=0), minlength=3) / draws.shape[1]
    assert [best[a.arm] for a in arms] == pytest.approx(list(wins), abs=0.004)


@pytest.mark.parametrize(
    ("arms", "verdict"),
    [
        # fewer than 500 entrants in an arm
        ([Counts("holdout", 499, 10, 10), Counts("treatment", 5000, 500, 90)], "not enough data"),
        # a clear winner: P(best) near 1 and p far below 0.05
        ([Counts("holdout", 600, 30, 10), Counts("treatment", 5400, 540, 90)], "treatment wins"),
        # the holdout itself is better than every arm
        ([Counts("holdout", 1000, 150, 50), Counts("warm", 1000, 90, 50)], "holdout wins"),
        # the same rates
        ([Counts("holdout", 1000, 50, 50), Counts("warm", 1000, 52, 50)], "no clear difference"),
        # P(best) above 0.95 but p above 0.05: one-sided evidence only
        ([Counts("a", 1000, 50, 50), Counts("b", 1000, 68, 50)], "no clear difference"),
    ],
)
def test_the_verdict_rules(arms: list[Counts], verdict: str) -> None:
    assert es.analyse(arms).verdict == verdict


def test_p_best_between_95_and_p_above_05_is_no_clear_difference_by_the_numbers() -> None:
    arms = [Counts("a", 1000, 50, 50), Counts("b", 1000, 68, 50)]
    analysis = es.analyse(arms)
    (c,) = analysis.comparisons
    assert analysis.p_best["b"] >= 0.95
    assert c.p_value is not None and c.p_value >= 0.05


def test_an_arm_without_entrants_has_no_rate_and_the_verdict_waits() -> None:
    analysis = es.analyse([Counts("holdout", 0, 0, 10), Counts("treatment", 900, 90, 90)])
    assert analysis.rates == {"holdout": None, "treatment": 0.1}
    assert analysis.intervals["holdout"] is None
    assert analysis.comparisons == []
    assert analysis.verdict == "not enough data"
