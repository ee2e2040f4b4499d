"""Jinja filters and globals of the dashboard's own templates (never the message sandbox)."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment

from automation.web.dashboard.masking import shown
from automation.web.dashboard.paging import Cursor


def when(value: dt.datetime | None) -> str:
    return f"{value.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC" if value else "-"


def iso(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds") if value else ""


def percent(value: float | None) -> str:
    return f"{100 * value:.1f}%" if value is not None else "-"


def chart_json(chart: Any) -> str:
    """A chart's data for `app.js`, safe inside a `<script type="application/json">`."""
    data = {"title": chart.title, "days": chart.days, "series": [[s.label, s.values] for s in chart.series]}
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def query(base: dict[str, str], **more: str | None) -> str:
    """`?a=1&b=2` from a dict of parameters and overrides (None drops one)."""
    merged = {**base, **{k: v for k, v in more.items() if v is not None}}
    return "?" + urlencode({k: v for k, v in merged.items() if v})


def instant_cursor(value: dt.datetime) -> str:
    return Cursor(value, "t").encode()


def install(env: Environment) -> None:
    env.filters.update(when=when, iso=iso, percent=percent, chart_json=chart_json, address=shown)
    env.globals.update(query=query, instant_cursor=instant_cursor)
