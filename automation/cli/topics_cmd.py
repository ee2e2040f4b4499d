"""`automation topics list|set`: the subscription topics, and a customer's choice in one."""

from __future__ import annotations

from typing import Annotated

import typer

from automation.cli.app import app, console, parse_now
from automation.cli.options import AsJson
from automation.cli.output import print_json, print_table, table
from automation.config import load_settings
from automation.core.topics import Topic
from automation.definitions.loader import load_topics
from automation.errors import JourneyError, UserError
from automation.processes.runtime import open_database
from automation.store import topics as topic_choices
from automation.store.models import Customer

topics_app = typer.Typer(help="Subscription topics and customers' choices.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")

STATES = {"on": True, "off": False}


def _topics() -> dict[str, Topic]:
    """The defined topics; a bad topics.yaml is refused with every `FILE:LINE:COL: message`."""
    topics, problems = load_topics(load_settings().journeys_dir)
    if problems:
        raise JourneyError(problems)
    return topics


@topics_app.command("list")
def list_(as_json: AsJson = False) -> None:
    """Every topic of topics.yaml (and the built-in `marketing`) with its channel and default."""
    topics = _topics()
    if as_json:
        print_json({"topics": [t.model_dump() for t in topics.values()]})
        return
    out = table("Topic", "Name", "Channel", "Default")
    for t in topics.values():
        out.add_row(t.id, t.name, t.channel, t.default)
    print_table(out)


@topics_app.command("set")
def set_(
    customer_id: Annotated[str, typer.Argument(metavar="ID", help="The customer id.")],
    topic: Annotated[str, typer.Argument(metavar="TOPIC", help="A topic id (see `automation topics list`).")],
    state: Annotated[str, typer.Argument(metavar="STATE", help="on (subscribe) or off (leave).")],
    now: Annotated[str | None, typer.Option(metavar="ISO8601", help="When the choice was made.")] = None,
) -> None:
    """Record the customer's choice in TOPIC, made now (a newer choice on file is kept)."""
    if state not in STATES:
        raise UserError(f"state must be on or off, not {state!r}")
    known = _topics()
    if topic not in known:
        raise UserError(f"unknown topic {topic!r} (known: {', '.join(sorted(known))})")
    at = parse_now(now)
    _, sessions = open_database(load_settings())
    with sessions.begin() as s:
        if s.get(Customer, customer_id) is None:
            raise UserError(f"no customer {customer_id!r}")
        topic_choices.record(s, customer_id, {topic: STATES[state]}, at, "cli")
        kept = topic_choices.of(s, [customer_id])[customer_id][topic]
    if kept.chosen_at != at:
        console.print(f"kept the newer choice of {kept.chosen_at.isoformat()} for {customer_id} in {topic}")
        return
    console.print(f"{customer_id}: {topic} {state}", highlight=False)
