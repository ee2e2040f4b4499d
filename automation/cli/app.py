"""The Typer application, its lazily loaded commands and the shared console objects.

`automation --help` and `automation --version` import no command module: the
top-level group (`LazyGroup`) names every command with its one-line help from
`COMMANDS` and imports a command's module (and with it SQLAlchemy, Dramatiq,
Jinja...) only when that command runs. Nor is Rich loaded before a command
prints (`console` and `err_console` are made on first use).
"""

from __future__ import annotations

import datetime as dt
import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.main
from typer.core import TyperGroup

if TYPE_CHECKING:
    from rich.console import Console

    console: Console
    err_console: Console

HELP = "Lifecycle campaigns as code: journeys in YAML, sent by email and SMS."

#: Every top-level command and its one-line help (its docstring's first line).
COMMANDS: dict[str, str] = {
    "db": "Database schema.",
    "ingest": "Load identify/track records into customer state (idempotent).",
    "tick": "Evaluate every journey once at NOW and enqueue what is due.",
    "worker": "Run the delivery workers (always-on: `dramatiq automation.worker`).",
    "scheduler": "Run the tick every AUTOMATION_TICK_INTERVAL_S seconds until stopped (SIGTERM).",
    "web": "Serve webhooks, unsubscribe links, the tracking API, /healthz, /metrics and the dashboard.",
    "journeys": "Check and inspect journeys.",
    "campaign": "Manual campaigns: send a journey to an audience now, list them, or cancel.",
    "status": "Per journey: active enrollments, deliveries by status, provider feedback and conversions.",
    "kpis": "Loyalty KPIs over a period (and `cohorts`).",
    "insight": "RFM segments and predicted customer value: refresh and validate.",
    "experiments": "A/B variants, holdouts and split paths: each arm's conversions, lift and verdict.",
    "deliveries": "The delivery ledger: every message and its outcome.",
    "customers": "Look at, export or erase customers.",
    "topics": "Subscription topics and customers' choices.",
    "suppress": "The suppression list (addresses never to message).",
    "keys": "Write keys for the tracking API (/v1/...).",
    "users": "Dashboard users: who may sign in, as viewer or editor.",
    "traits": "Custom traits (declared in traits.yaml).",
    "loyalty": "The loyalty programme (loyalty.yaml): points and tiers.",
    "coupons": "Coupon pools: import or generate codes, and their status.",
    "init": "Start a new project: example journeys (all disabled), templates, .env and Procfile.",
    "demo": "Run every shipped journey on generated customers: SQLite, in-process broker, outbox files.",
}
#: The commands `automation.cli.core` defines; any other NAME is defined in `automation.cli.NAME_cmd`.
IN_CORE = frozenset({"db", "ingest", "tick", "worker", "scheduler"})


def module_of(name: str) -> str:
    """The module that defines top-level command `name`."""
    return "automation.cli.core" if name in IN_CORE else f"automation.cli.{name}_cmd"


class LazyGroup(TyperGroup):
    """The top-level group: lists `COMMANDS` from the table, imports a command only to run it."""

    def list_commands(self, ctx: Any) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in COMMANDS:
            importlib.import_module(module_of(cmd_name))
            built = typer.main.get_command(app)
            assert isinstance(built, TyperGroup)
            self.commands.update(built.commands)
        return self.commands.get(cmd_name)

    def format_commands(self, ctx: Any, formatter: Any) -> None:
        with formatter.section("Commands"):
            formatter.write_dl(list(COMMANDS.items()))


app = typer.Typer(
    name="automation",
    cls=LazyGroup,
    help=HELP,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)


def package_version() -> str:
    try:
        return version("automation")
    except PackageNotFoundError:
        return "unknown"


def _version(value: bool) -> None:
    if value:
        typer.echo(f"automation {package_version()}")
        raise typer.Exit()


@app.callback()
def _root(
    show_version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_version, help="Print the version and exit."),
    ] = False,
) -> None:
    pass


def __getattr__(name: str) -> Any:
    """`console` and `err_console`, made on first use (importing Rich is not free)."""
    if name not in ("console", "err_console"):
        raise AttributeError(name)
    from rich.console import Console

    # Customer data reaches these: no Rich markup (`[/x]` would crash or restyle), no :emoji: codes.
    made = Console(stderr=name == "err_console", soft_wrap=True, markup=False, emoji=False, highlight=False)
    globals()[name] = made
    return made


def parse_at(value: str, flag: str) -> dt.datetime:
    """An instant option (`--since`, `--now`...) as an aware UTC instant."""
    from automation.core.records import RecordError, parse_instant

    try:
        return parse_instant(value, flag)
    except RecordError as exc:
        raise typer.BadParameter(str(exc)) from None


def parse_now(value: str | None) -> dt.datetime:
    """`--now` as an aware UTC instant; the wall clock when absent."""
    return dt.datetime.now(dt.UTC) if value is None else parse_at(value, "--now")
