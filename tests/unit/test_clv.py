"""BG/NBD and Gamma-Gamma: parameters recovered from data drawn from the models, and the CDNOW figures."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from automation.core.clv import LIMIT, BgNbd, FitError, GammaGamma, fit_bgnbd, fit_gamma_gamma, predict

CDNOW = Path(__file__).resolve().parents[1] / "fixtures" / "cdnow"


def _columns(name: str) -> dict[str, np.ndarray]:
    with (CDNOW / name).open() as handle:
        rows = list(csv.DictReader(handle))
    return {key: np.array([float(r[key]) for r in rows]) for key in rows[0]}


def _draw_bgnbd(truth: BgNbd, n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Customers drawn from the model: Poisson purchases at a Gamma rate, dropping out after each one."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(truth.r, 1 / truth.alpha, n)
    dropouts = rng.beta(truth.a, truth.b, n)
    ages = rng.uniform(100, 400, n)
    frequency, recency = np.zeros(n), np.zeros(n)
    for i in range(n):
        t = 0.0
        while True:
            t += rng.exponential(1 / rates[i])
            if t > ages[i]:
                break
            frequency[i] += 1
            recency[i] = t
            if rng.random() < dropouts[i]:
                break
    return frequency, recency, ages


def test_bgnbd_recovers_the_parameters_it_was_drawn_from() -> None:
    truth = BgNbd(r=0.8, alpha=40.0, a=0.6, b=2.5)
    fitted = fit_bgnbd(*_draw_bgnbd(truth, 20_000, seed=7))
    for name in ("r", "alpha", "a", "b"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.12), name


def test_gamma_gamma_recovers_the_parameters_it_was_drawn_from() -> None:
    truth = GammaGamma(p=6.0, q=4.0, v=15.0)
    rng = np.random.default_rng(11)
    frequency = rng.integers(1, 12, 20_000).astype(float)
    nu = rng.gamma(truth.q, 1 / truth.v, frequency.size)
    average = np.array([rng.gamma(truth.p, 1 / n, int(x)).mean() for n, x in zip(nu, frequency, strict=True)])
    fitted = fit_gamma_gamma(frequency, average)
    for name in ("p", "q", "v"):
        assert getattr(fitted, name) == pytest.approx(getattr(truth, name), rel=0.12), name


def test_bgnbd_on_cdnow_matches_the_published_estimates_to_one_percent() -> None:
    data = _columns("cdnow_customers_summary.csv")
    assert data["T"].size == 2357
    fitted = fit_bgnbd(data["frequency"], data["recency"], data["T"])
    assert fitted.r == pytest.approx(0.243, rel=0.01)
    assert fitted.alpha == pytest.approx(4.414, rel=0.01)
    assert fitted.a == pytest.approx(0.793, rel=0.01)
    assert fitted.b == pytest.approx(2.426, rel=0.01)


def test_gamma_gamma_on_cdnow_matches_the_published_estimates_to_one_percent() -> None:
    data = _columns("cdnow_customers_summary_with_transactions.csv")
    fitted = fit_gamma_gamma(data["x"], data["zbar"])
    # Fader & Hardie, "The Gamma-Gamma model of monetary value" (2013): p = 6.25, q = 3.74, v = 15.44.
    assert fitted.p == pytest.approx(6.25, rel=0.01)
    assert fitted.q == pytest.approx(3.74, rel=0.01)
    assert fitted.v == pytest.approx(15.44, rel=0.01)


def test_cdnow_predictions_match_the_published_worked_example() -> None:
    """Fader, Hardie & Lee's customer with x=2, t_x=30.43, T=38.86: 1.23 expected purchases in 39 weeks."""
    model = BgNbd(r=0.243, alpha=4.414, a=0.793, b=2.426)
    one = (np.array([2.0]), np.array([30.43]), np.array([38.86]))
    assert model.expected_orders(39, *one)[0] == pytest.approx(1.226, abs=0.01)
    assert 0 < model.p_alive(*one)[0] < 1
    assert model.p_alive(np.array([0.0]), np.array([0.0]), np.array([38.86]))[0] == 1.0


def test_a_fit_on_too_little_data_says_why() -> None:
    with pytest.raises(FitError, match="at least 10 customers"):
        fit_bgnbd(np.zeros(3), np.zeros(3), np.ones(3))


def test_customers_buying_at_one_steady_pace_still_get_finite_predictions() -> None:
    # Every customer orders weekly: the likelihood is highest in the limit of no heterogeneity,
    # where the unbounded fit ran away (r ~ 55,000) and the 90-day orders came out NaN.
    frequency = np.arange(10.0)
    recency = 7 * frequency
    T = 29.5 + 17 * frequency
    average = 10 + 2.5 * frequency
    found = predict(frequency, recency, T, average)
    assert np.all(np.isfinite(found.expected_orders_90d)) and np.all(np.isfinite(found.predicted_clv_365d))
    assert np.all((found.p_alive > 0) & (found.p_alive <= 1))
    assert found.purchases.r <= LIMIT and found.spend.q <= LIMIT
