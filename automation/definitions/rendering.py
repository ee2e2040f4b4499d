"""Rendering one message from templates on disk, in Jinja's sandbox.

Email templates are folders `templates/NAME/` holding `subject.txt`,
`body.html` and `body.txt`; SMS templates hold `sms.txt`. HTML parts are
autoescaped, every undefined variable is an error, and the sandbox keeps
customer-supplied traits away from Python internals. Templates are compiled
once through the loader and cached.

Every template may call the helpers `format_money(amount, currency)` and
`format_date(value, format)`, which read the rendered customer's `locale` and
`timezone` traits (else the defaults given to the renderer).
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jinja2 import (
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateRuntimeError,
    TemplateSyntaxError,
    meta,
    nodes,
    pass_context,
)
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment

from automation.core import formatting, sms
from automation.core.planner import zone
from automation.core.statuses import Channel
from automation.core.traits import Traits
from automation.definitions.loader import read_definition
from automation.errors import DefinitionError

EMAIL_PARTS = ("subject.txt", "body.html", "body.txt")
SMS_PARTS = ("sms.txt",)
#: A template part larger than this is refused at load (the shipped ones are a few KiB).
MAX_TEMPLATE_BYTES = 1024 * 1024

#: Variables every message can use, whatever the trigger.
COMMON_VARIABLES = frozenset(
    {
        "customer",
        "journey",
        "brand",
        "shop",
        "unsubscribe_url",
        "confirm_url",
        "delivery_id",
        "loyalty",
        "coupon",
    }
)


def _customer(ctx: Context) -> dict[str, Any]:
    customer = ctx.get("customer")
    return customer if isinstance(customer, dict) else {}


#: Functions every template may call.
HELPERS = frozenset({"format_money", "format_date"})


#: Errors whose message names types and limits, never the values involved.
_PLAIN_ERRORS = (TypeError, OverflowError, ZeroDivisionError, RecursionError)


class RenderError(Exception):
    """A template failed to render: a bug in the template, or one customer's data it cannot take."""


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    html: str
    text: str


@dataclass(frozen=True)
class RenderedSms:
    body: str
    encoding: str
    segments: int


def _blank_none(value: Any) -> Any:
    """`None` prints as nothing: a trait a customer lacks is empty, not the word None."""
    return "" if value is None else value


def _customer_reads(ast: nodes.Template) -> Iterator[tuple[str, int]]:
    """Each `customer.NAME` and `customer["NAME"]` a template reads (not method calls), with its line."""
    calls = {id(c.node) for c in ast.find_all(nodes.Call)}
    for node in ast.find_all(nodes.Getattr):
        if isinstance(node.node, nodes.Name) and node.node.name == "customer" and id(node) not in calls:
            yield node.attr, node.lineno
    for item in ast.find_all(nodes.Getitem):
        if (
            isinstance(item.node, nodes.Name)
            and item.node.name == "customer"
            and isinstance(item.arg, nodes.Const)
            and isinstance(item.arg.value, str)
        ):
            yield item.arg.value, item.lineno


class Renderer:
    """Loads and renders templates from one folder."""

    def __init__(
        self,
        templates_dir: Path,
        traits: Traits | None = None,
        *,
        locale: str = "en_US",
        timezone: str = "UTC",
    ) -> None:
        self.templates_dir = templates_dir
        self.traits = traits or Traits()
        self.locale = locale
        self.timezone = timezone
        self.env = ImmutableSandboxedEnvironment(
            loader=FileSystemLoader(str(templates_dir)),
            undefined=StrictUndefined,
            autoescape=lambda name: bool(name and name.endswith(".html")),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=False,
            finalize=_blank_none,
        )
        self.env.globals.update(format_money=self._format_money, format_date=self._format_date)

    @pass_context
    def _format_money(self, ctx: Context, amount: object, currency: str) -> str:
        locale = formatting.locale_of(_customer(ctx).get("locale"), self.locale)
        try:
            return formatting.format_money(amount, currency, locale)
        except ValueError as exc:
            raise TemplateRuntimeError(str(exc)) from None

    @pass_context
    def _format_date(self, ctx: Context, value: object, fmt: str = "medium") -> str:
        customer = _customer(ctx)
        locale = formatting.locale_of(customer.get("locale"), self.locale)
        tz = zone(customer.get("timezone"), self.timezone)
        try:
            return formatting.format_date(value, fmt, tz, locale)
        except ValueError as exc:
            raise TemplateRuntimeError(str(exc)) from None

    def channel_of(self, name: str) -> Channel | None:
        """`email` or `sms` from the files present, None when the template is missing."""
        folder = self.templates_dir / name
        if all((folder / p).is_file() for p in EMAIL_PARTS):
            return Channel.EMAIL
        if all((folder / p).is_file() for p in SMS_PARTS):
            return Channel.SMS
        return None

    def problems(self, name: str, channel: str, allowed: frozenset[str]) -> list[str]:
        """Every reason this template cannot serve a step: missing, syntax, unknown variables and traits."""
        parts = EMAIL_PARTS if channel == Channel.EMAIL else SMS_PARTS
        found = self.channel_of(name)
        if found is None:
            known = (
                sorted(
                    p.name for p in self.templates_dir.iterdir() if p.is_dir() and not p.name.startswith("_")
                )
                if self.templates_dir.is_dir()
                else []
            )
            return [f"unknown template {name!r} (known: {', '.join(known) or 'none'})"]
        if found != channel:
            return [f"template {name!r} is an {found} template, not {channel}"]
        out: list[str] = []
        for part in parts:
            out.extend(self._check_source(f"{name}/{part}", allowed))
        return out

    def _check_source(self, ref: str, allowed: frozenset[str], seen: set[str] | None = None) -> list[str]:
        seen = seen if seen is not None else set()
        if ref in seen:
            return []
        seen.add(ref)
        path = self.templates_dir / ref
        try:
            source = read_definition(path, MAX_TEMPLATE_BYTES)
        except DefinitionError as exc:
            return [str(exc)]
        try:
            ast = self.env.parse(source, name=ref)
        except TemplateSyntaxError as exc:
            return [f"{path}:{exc.lineno}:1: template syntax error: {exc.message}"]
        out = []
        lines = source.splitlines()
        for name in sorted(meta.find_undeclared_variables(ast) - allowed - HELPERS):
            node = next((n for n in ast.find_all(nodes.Name) if n.name == name), None)
            line = node.lineno if node is not None else 1
            col = (lines[line - 1].find(name) + 1 if line <= len(lines) else 0) or 1
            out.append(
                f"{path}:{line}:{col}: uses {name!r}, which this journey cannot provide "
                f"(available: {', '.join(sorted(allowed))})"
            )
        for trait, line in _customer_reads(ast):
            problem = self.traits.problem(trait)
            if problem:
                col = (lines[line - 1].find(trait) + 1 if line <= len(lines) else 0) or 1
                out.append(f"{path}:{line}:{col}: customer.{trait}: {problem}")
        for parent in meta.find_referenced_templates(ast):
            if parent:
                out.extend(self._check_source(parent, allowed, seen))
        return out

    def _render(self, ref: str, context: dict[str, Any]) -> str:
        customer = context.get("customer")
        if self.traits.declared and isinstance(customer, dict):
            context = {**context, "customer": {**self.traits.defaults(), **customer}}
        try:
            return self.env.get_template(ref).render(context).strip()
        except Exception as exc:  # any failure on one customer's data is this message's alone
            raise RenderError(f"{self._where(ref, exc)}: {_detail(exc)}") from None

    def _where(self, ref: str, exc: Exception) -> str:
        """`template:line` of the innermost template frame (Jinja maps its frames to template lines)."""
        root = str(self.templates_dir.resolve())
        inside = [
            (path, f.lineno)
            for f in traceback.extract_tb(exc.__traceback__)
            if (path := Path(f.filename).resolve()).is_relative_to(root)
        ]
        if not inside:
            return ref
        path, line = inside[-1]
        return f"{path.relative_to(root)}:{line}"

    def render_email(self, name: str, context: dict[str, Any]) -> RenderedEmail:
        return RenderedEmail(
            subject=" ".join(self._render(f"{name}/subject.txt", context).split()),
            html=self._render(f"{name}/body.html", context),
            text=self._render(f"{name}/body.txt", context),
        )

    def render_sms(self, name: str, context: dict[str, Any]) -> RenderedSms:
        body = self._render(f"{name}/sms.txt", context)
        return RenderedSms(body=body, encoding=sms.encoding(body), segments=sms.segments(body))


def _detail(exc: Exception) -> str:
    """What went wrong, without quoting customer data: Jinja's own message, or the error's kind."""
    if isinstance(exc, TemplateError):
        return str(exc)
    if isinstance(exc, _PLAIN_ERRORS):
        return f"{type(exc).__name__}: {exc}"
    return f"{type(exc).__name__} (details withheld: they may quote customer data)"
