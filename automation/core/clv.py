"""BG/NBD (purchases) and Gamma-Gamma (spend) fitted by maximum likelihood. Pure: arrays in, arrays out.

Fader, Hardie & Lee, "Counting your customers the easy way" (2005) and "RFM and
CLV: using iso-value curves" (2005). Each customer is summarised by `frequency`
(repeat orders: orders after the first), `recency` (age at the last order,
measured from the first), `T` (age at the end of the calibration period) and the
average value of the repeat orders. Times are in any one unit (days here, weeks
for CDNOW); the fit runs in units of the longest age, so that the optimiser sees
numbers near 1, and reports `alpha` back in the caller's unit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import optimize, special

Array = NDArray[np.float64]


class FitError(ValueError):
    """The likelihood could not be maximised (too few customers, or no repeat orders)."""


@dataclass(frozen=True)
class BgNbd:
    """Purchase rate ~ Gamma(r, alpha); dropout probability ~ Beta(a, b)."""

    r: float
    alpha: float
    a: float
    b: float

    def p_alive(self, frequency: Array, recency: Array, T: Array) -> Array:
        """The probability that each customer has not dropped out by T."""
        return 1.0 / (1.0 + self._odds_dead(frequency, recency, T))

    def expected_orders(self, t: float, frequency: Array, recency: Array, T: Array) -> Array:
        """Each customer's expected number of orders in the next `t` time units."""
        r, alpha, a, b = self.r, self.alpha, self.a, self.b
        x = frequency
        z = t / (alpha + T + t)
        head = (a + b + x - 1) / (a - 1)
        tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * special.hyp2f1(r + x, b + x, a + b + x - 1, z)
        return head * tail / (1.0 + self._odds_dead(frequency, recency, T))

    def _odds_dead(self, x: Array, recency: Array, T: Array) -> Array:
        safe = np.where(x > 0, self.b + x - 1, 1.0)
        odds = self.a / safe * ((self.alpha + T) / (self.alpha + recency)) ** (self.r + x)
        return np.where(x > 0, odds, 0.0)


@dataclass(frozen=True)
class GammaGamma:
    """Spend per order ~ Gamma(p, nu) with nu ~ Gamma(q, v)."""

    p: float
    q: float
    v: float

    def expected_value(self, frequency: Array, average: Array) -> Array:
        """Each customer's expected average order value; without repeat orders, the one order's value.

        (The population mean p*v/(q-1) is not defined when q <= 1, as a fit may find.)
        """
        p, q, v = self.p, self.q, self.v
        with np.errstate(over="ignore"):  # where frequency is 0 the quotient is not used
            given = p * (v + frequency * average) / np.maximum(p * frequency + q - 1, np.finfo(float).tiny)
        return np.where(frequency > 0, given, average)


@dataclass(frozen=True)
class Repeats:
    """The customers' repeat orders `x`, with the few distinct values they take: a term of x alone
    (a log-gamma, a log-beta) is computed once per distinct value and spread (`spread`), the same
    numbers at a fraction of the cost."""

    x: Array
    levels: Array
    at: NDArray[np.intp]

    @classmethod
    def of(cls, x: Array) -> Repeats:
        levels, at = np.unique(x, return_inverse=True)
        return cls(x, levels, at)

    def spread(self, term: Callable[[Array], Array]) -> Array:
        return np.asarray(term(self.levels), dtype=np.float64)[self.at]


def bgnbd_log_likelihood(params: Array, x: Repeats, t_x: Array, T: Array, weights: Array) -> float:
    """The BG/NBD log-likelihood of (r, alpha, a, b) over customers (each row counted `weights` times)."""
    r, alpha, a, b = params
    common = x.spread(lambda v: special.gammaln(r + v)) - special.gammaln(r) + r * np.log(alpha)
    common += x.spread(lambda v: special.betaln(a, b + v)) - special.betaln(a, b)
    alive = -(r + x.x) * np.log(alpha + T)
    bought = x.x > 0
    log_b = x.spread(lambda v: np.log(np.where(v > 0, b + v - 1, 1.0)))
    dead = np.where(bought, np.log(a) - log_b - (r + x.x) * np.log(alpha + t_x), -np.inf)
    return float(np.sum(weights * (common + np.logaddexp(alive, dead))))


def gamma_gamma_log_likelihood(params: Array, x: Repeats, log_m: Array, xm: Array, weights: Array) -> float:
    """The Gamma-Gamma log-likelihood of (p, q, v) over customers with repeat orders
    (`log_m` the log of their average order value, `xm` repeat orders times that value)."""
    p, q, v = params
    px = p * x.x
    ll = (
        x.spread(lambda n: special.gammaln(p * n + q) - special.gammaln(p * n))
        - special.gammaln(q)
        + q * np.log(v)
        + (px - 1) * log_m
        + x.spread(lambda n: p * n * np.log(n))
        - (px + q) * np.log(xm + v)
    )
    return float(np.sum(weights * ll))


#: Parameters stay within [1/LIMIT, LIMIT]. Data with little heterogeneity (everyone buying at
#: one steady pace) drives the maximum likelihood towards a limit at infinity; past this bound
#: the predictions no longer change, but the hypergeometric terms overflow into NaN.
LIMIT = 1e6


def _maximise(nll: Callable[[Array], float], start: Array) -> Array:
    """Minimise a negative log-likelihood over log-parameters (so every parameter stays positive)."""
    bounds = [(-np.log(LIMIT), np.log(LIMIT))] * len(start)
    with np.errstate(all="ignore"):  # the optimiser probes parameters where the likelihood overflows
        result = optimize.minimize(nll, np.log(start), method="L-BFGS-B", bounds=bounds)
    if not np.all(np.isfinite(result.x)):
        raise FitError(f"the fit did not converge: {result.message}")
    return np.asarray(np.exp(result.x), dtype=np.float64)


def _compressed(*columns: Array) -> tuple[list[Array], Array]:
    """Identical customers folded into one row with a weight: the likelihood needs each shape once."""
    rows, counts = np.unique(np.column_stack(columns), axis=0, return_counts=True)
    return [rows[:, i] for i in range(rows.shape[1])], counts.astype(np.float64)


def fit_bgnbd(frequency: Array, recency: Array, T: Array) -> BgNbd:
    """The maximum-likelihood BG/NBD parameters; raises FitError with too little data."""
    if len(T) < 10 or not np.any(frequency > 0):
        raise FitError("BG/NBD needs at least 10 customers, some with repeat orders")
    scale = float(np.max(T)) or 1.0
    (x, t_x, age), weights = _compressed(frequency, recency / scale, T / scale)
    repeats = Repeats.of(x)

    def nll(log_params: Array) -> float:
        value = -bgnbd_log_likelihood(np.exp(log_params), repeats, t_x, age, weights)
        return value if np.isfinite(value) else 1e300

    r, alpha, a, b = _maximise(nll, np.array([1.0, 1.0, 1.0, 1.0]))
    return BgNbd(r=float(r), alpha=float(alpha * scale), a=float(a), b=float(b))


def fit_gamma_gamma(frequency: Array, average: Array) -> GammaGamma:
    """The maximum-likelihood Gamma-Gamma parameters from customers with repeat orders of positive value."""
    keep = (frequency > 0) & (average > 0)
    if np.count_nonzero(keep) < 5:
        raise FitError("Gamma-Gamma needs at least 5 customers with repeat orders")
    scale = float(np.mean(average[keep]))
    (x, m), weights = _compressed(frequency[keep], average[keep] / scale)
    repeats, log_m, xm = Repeats.of(x), np.log(m), x * m

    def nll(log_params: Array) -> float:
        value = -gamma_gamma_log_likelihood(np.exp(log_params), repeats, log_m, xm, weights)
        return value if np.isfinite(value) else 1e300

    p, q, v = _maximise(nll, np.array([1.0, 2.0, 1.0]))
    return GammaGamma(p=float(p), q=float(q), v=float(v * scale))


@dataclass(frozen=True)
class Predictions:
    """Per customer, in the order of the summaries given: what `insight refresh` stores."""

    purchases: BgNbd
    spend: GammaGamma
    p_alive: Array
    expected_orders_90d: Array
    predicted_clv_365d: Array
    clv_decile: Array


def deciles(values: Array) -> Array:
    """Each value's decile, 1 (lowest tenth) to 10, ties broken by position."""
    n = len(values)
    ranks = np.empty(n, dtype=np.int64)
    ranks[np.argsort(values, kind="stable")] = np.arange(n)
    return np.asarray(ranks * 10 // max(n, 1) + 1, dtype=np.float64)


#: The most customers a fit reads: beyond this a seeded random sample estimates the parameters as well.
FIT_SAMPLE = 200_000


def _sample(n: int) -> NDArray[np.int64]:
    """The rows the fit reads: all of them, or FIT_SAMPLE drawn at random with a fixed seed."""
    if n <= FIT_SAMPLE:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, FIT_SAMPLE, replace=False))


def predict(frequency: Array, recency: Array, T: Array, average: Array) -> Predictions:
    """Fit both models on the customers' summaries (times in days) and predict for each of them.

    The value of the next 365 days is the expected number of orders times the
    expected order value, undiscounted. Raises FitError with too little data.
    """
    rows = _sample(len(T))
    purchases = fit_bgnbd(frequency[rows], recency[rows], T[rows])
    spend = fit_gamma_gamma(frequency[rows], average[rows])
    orders_365d = purchases.expected_orders(365, frequency, recency, T)
    clv = orders_365d * spend.expected_value(frequency, average)
    return Predictions(
        purchases=purchases,
        spend=spend,
        p_alive=purchases.p_alive(frequency, recency, T),
        expected_orders_90d=purchases.expected_orders(90, frequency, recency, T),
        predicted_clv_365d=clv,
        clv_decile=deciles(clv),
    )


def by_decile(predicted: Array, actual: Array) -> list[tuple[int, int, float, float]]:
    """(decile of prediction, customers, predicted orders, actual orders) for each of the ten groups."""
    groups = deciles(predicted)
    return [
        (
            d,
            int(np.count_nonzero(groups == d)),
            float(predicted[groups == d].sum()),
            float(actual[groups == d].sum()),
        )
        for d in range(1, 11)
        if np.any(groups == d)
    ]
