"""What a view receives and returns: the request boiled down, and a page or a redirect.

Views are plain functions of an `Ask` (synchronous, run in a thread), so the
benchmark can time a page's server work without HTTP (`automation.web.dashboard.timing`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from automation.web.dashboard.accounts import Role, User


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes


@dataclass(frozen=True)
class Ask:
    user: User
    now: dt.datetime
    query: dict[str, str] = field(default_factory=dict)
    path: dict[str, str] = field(default_factory=dict)
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)
    partial: bool = False  # an htmx request: answer the fragment only

    def q(self, name: str) -> str:
        return (self.query.get(name) or "").strip()

    def f(self, name: str) -> str:
        return (self.form.get(name) or "").strip()


@dataclass(frozen=True)
class Shown:
    template: str
    context: dict[str, Any]
    status: int = 200


@dataclass(frozen=True)
class Redirect:
    url: str


Answer = Shown | Redirect
View = Callable[[Ask], Answer]


@dataclass(frozen=True)
class Route:
    """One dashboard route: who may use it (`VIEWER` means any signed-in user)."""

    path: str
    view: View
    methods: tuple[str, ...] = ("GET",)
    role: Role = Role.VIEWER
    name: str = ""
