"""Naming what was not found, with the nearest known name. Pure."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def unknown(what: str, name: str, known: Iterable[str]) -> str:
    """`unknown journey 'birthdy' (did you mean 'birthday'?)`, else the known names listed."""
    names = sorted(set(known))
    hint = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if hint:
        return f"unknown {what} {name!r} (did you mean {hint[0]!r}?)"
    return f"unknown {what} {name!r} (known: {', '.join(names) or 'none'})"
