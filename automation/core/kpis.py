"""The loyalty KPIs from counts the database gives: ratios and their definitions. Pure.

`automation.insight.kpis` counts in SQL; this module only divides, so that each
definition is written once, here and in the README.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Counts:
    """What the database counts for a period [since, until) and an active window."""

    customers: int  # profiles first seen before `until`
    buyers_ever: int  # customers with an order before `until`
    new_customers: int  # customers whose first order is in the period
    active: int  # customers with an order in the active window ending at `until`
    buyers: int  # customers with an order in the period
    repeat_buyers: int  # customers with 2+ orders in the period
    active_at_start: int  # customers with an order in the active window ending at `since`
    retained: int  # of those, the ones also active at `until`
    orders: int  # orders in the period
    revenue: float  # their total
    lifetime_revenue: float  # every order's total before `until`
    conversions: int  # journey enrollments converted in the period
    attributed_revenue: float  # the converting orders' total


@dataclass(frozen=True)
class Lift:
    """The programme against the global control group over the period."""

    control_customers: int
    control_buyers: int
    control_revenue: float
    programme_customers: int
    programme_buyers: int
    programme_revenue: float

    def as_dict(self) -> dict[str, Any]:
        control = _ratio(self.control_revenue, self.control_customers)
        programme = _ratio(self.programme_revenue, self.programme_customers)
        return {
            **asdict(self),
            "control_revenue_per_customer": control,
            "programme_revenue_per_customer": programme,
            "revenue_lift": _ratio(programme - control, control)
            if control and programme is not None
            else None,
            "control_buyer_rate": _ratio(self.control_buyers, self.control_customers),
            "programme_buyer_rate": _ratio(self.programme_buyers, self.programme_customers),
        }


RATES = ("repeat_purchase_rate", "retention_rate", "churn_rate")


def shown(name: str, value: Any) -> str:
    """A KPI as people read it: rates as percentages, amounts with two decimals, counts grouped."""
    if value is None:
        return "-"
    if name in RATES:
        return f"{value:.1%}"
    return f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"


def _ratio(numerator: float, denominator: float | None) -> float | None:
    return numerator / denominator if denominator else None


def kpis(c: Counts) -> dict[str, Any]:
    """Every KPI of `automation kpis`; a ratio with nothing to divide by is None."""
    retention = _ratio(c.retained, c.active_at_start)
    return {
        "customers": c.customers,
        "new_customers": c.new_customers,
        "active_customers": c.active,
        "repeat_purchase_rate": _ratio(c.repeat_buyers, c.buyers),
        "retention_rate": retention,
        "churn_rate": None if retention is None else 1 - retention,
        "average_order_value": _ratio(c.revenue, c.orders),
        "purchase_frequency": _ratio(c.orders, c.buyers),
        "historical_clv": _ratio(c.lifetime_revenue, c.buyers_ever),
        "orders": c.orders,
        "revenue": c.revenue,
        "journey_conversions": c.conversions,
        "journey_revenue": c.attributed_revenue,
    }


def retention_matrix(active: list[tuple[str, str, int]], sizes: dict[str, int]) -> dict[str, list[float]]:
    """Cohort (first-order month) -> share of it ordering in month 0, 1, 2... after.

    `active` holds (cohort, month of an order, customers of the cohort who ordered then).
    """
    matrix: dict[str, list[float]] = {}
    for cohort in sorted(sizes):
        offsets = {_months_between(cohort, month): n for c, month, n in active if c == cohort}
        width = max(offsets, default=0) + 1
        matrix[cohort] = [offsets.get(i, 0) / sizes[cohort] for i in range(width)]
    return matrix


def _months_between(start: str, end: str) -> int:
    """Months from `YYYY-MM` to `YYYY-MM`."""
    (y0, m0), (y1, m1) = (map(int, start.split("-")), map(int, end.split("-")))
    return (y1 - y0) * 12 + (m1 - m0)
