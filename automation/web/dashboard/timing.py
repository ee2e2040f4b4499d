"""Server time of one dashboard page, without HTTP: for the benchmark's slowest-page figure.

`time_page` runs a read page's view and renders its template as the web
process would, and returns the seconds it took (wall clock: this is a
measurement, not a decision).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass

from automation.web.dashboard.accounts import Role, User
from automation.web.dashboard.app import Dashboard
from automation.web.dashboard.auth import Signed
from automation.web.dashboard.pages import Ask, Shown

#: The read pages by route name; the bench gives path parameters for the ones that need them.
READ_PAGES = (
    "overview",
    "journeys",
    "journey",
    "campaigns",
    "campaign",
    "deliveries",
    "customer",
    "suppressions",
)
BENCH_USER = User(0, "bench@localhost", Role.EDITOR)


@dataclass(frozen=True)
class Timed:
    name: str
    seconds: float
    status: int
    html_bytes: int


def time_page(
    dashboard: Dashboard,
    name: str,
    *,
    path: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    now: dt.datetime | None = None,
    user: User = BENCH_USER,
) -> Timed:
    """Run the view `name` (a route name of `Dashboard.specs()`) and render it, timed."""
    spec = next(s for s in dashboard.specs() if s.name == name)
    ask = Ask(user, now or dt.datetime.now(dt.UTC), query=query or {}, path=path or {})
    started = time.perf_counter()
    answer = spec.view(ask)
    if not isinstance(answer, Shown):
        raise ValueError(f"page {name} answered with a redirect to {answer.url}")
    html = dashboard.render(answer, Signed(user, "bench"))
    return Timed(name, time.perf_counter() - started, answer.status, len(html.encode()))
