"""`automation init DIR`: a new project whose first deployment sends nothing until a journey is enabled.

The example journeys are copied with `enabled: false`, the templates read the
brand, shop URL, postal address and currency from settings, and `.env` lists
every production setting (commented) with a fresh unsubscribe secret.
"""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path
from typing import Annotated

import typer

from automation.cli.app import app, console
from automation.core.journeys import journey_json_schema
from automation.core.programme import loyalty_json_schema
from automation.core.traits import traits_json_schema
from automation.errors import UserError

SCAFFOLD = Path(__file__).resolve().parent.parent / "scaffold"

ENV = """\
# Settings of this project, read from `.env` in the folder you run `automation` from
# (the environment wins). Each process that can reach real people (scheduler, worker,
# web) refuses to start with a real provider configured until the three settings
# marked REQUIRED are set properly.

# --- Where things are ---------------------------------------------------------------
AUTOMATION_JOURNEYS_DIR={journeys}
AUTOMATION_TEMPLATES_DIR={templates}
AUTOMATION_OUTBOX_DIR={outbox}
# PostgreSQL (postgres:// and postgresql:// URLs work; psycopg 3 is used):
# DATABASE_URL=postgresql://user:password@db-host:5432/automation
DATABASE_URL=sqlite:///{database}
# Redis for the queue (without it, `automation tick` delivers in-process):
# REDIS_URL=redis://cache-host:6379/0

# --- Your shop (templates read these as brand and shop.*) ----------------------------
AUTOMATION_EMAIL_FROM_NAME=Your Shop
AUTOMATION_EMAIL_FROM=hello@your-shop.example
AUTOMATION_SHOP_URL=https://your-shop.example
AUTOMATION_CURRENCY=USD
# REQUIRED with a real provider: commercial email must show a postal address.
# AUTOMATION_POSTAL_ADDRESS=Your Shop Inc., 1 Main Street, Springfield, USA

# --- The web process ------------------------------------------------------------------
# REQUIRED with a real provider: the public URL of `automation web` (unsubscribe links,
# Twilio callbacks); not a localhost URL.
# AUTOMATION_PUBLIC_URL=https://automation.your-shop.example
# REQUIRED with a real provider: signs unsubscribe links (32+ characters; made for you).
AUTOMATION_UNSUBSCRIBE_SECRET={secret}
# SENDGRID_WEBHOOK_PUBLIC_KEY=...   (SendGrid Signed Event Webhook verification key)
# PORT=8000

# --- Providers (unset: messages are written to AUTOMATION_OUTBOX_DIR, nothing is sent) -
# SENDGRID_API_KEY=SG....
# SENDGRID_API_HOST=https://api.sendgrid.com     (EU: https://api.eu.sendgrid.com)
# TWILIO_ACCOUNT_SID=AC...
# TWILIO_AUTH_TOKEN=...
# AUTOMATION_SMS_FROM=+15551234567               (or a Messaging Service SID, MG...)

# --- Sending rules (defaults shown) ---------------------------------------------------
# AUTOMATION_DEFAULT_TIMEZONE=UTC
# AUTOMATION_EMAIL_CAP_DAY=1
# AUTOMATION_EMAIL_CAP_WEEK=3
# AUTOMATION_SMS_CAP_DAY=1
# AUTOMATION_EMAIL_RATE_PER_S=                   (unset: no limit)
# AUTOMATION_SMS_RATE_PER_S=10
# AUTOMATION_TICK_INTERVAL_S=60
# AUTOMATION_LOG_LEVEL=INFO
"""

PROCFILE = """\
worker: dramatiq automation.worker --processes 2 --threads 8
scheduler: automation scheduler
web: automation web
"""


def scaffold(directory: Path) -> Path:
    """Write a new project into `directory` (new or empty); returns its absolute path."""
    target = directory.expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UserError(f"{target} already exists and is not empty; give `automation init` a new folder")
    staging = target.with_name(f".{target.name}.init")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        shutil.copytree(SCAFFOLD / "journeys", staging / "journeys")
        shutil.copytree(SCAFFOLD / "templates", staging / "templates")
        (staging / "journeys" / "journey.schema.json").write_text(journey_json_schema(), encoding="utf-8")
        (staging / "journeys" / "traits.schema.json").write_text(traits_json_schema(), encoding="utf-8")
        (staging / "journeys" / "loyalty.schema.json").write_text(loyalty_json_schema(), encoding="utf-8")
        env = ENV.format(
            journeys=target / "journeys",
            templates=target / "templates",
            outbox=target / "outbox",
            database=target / "automation.db",
            secret=secrets.token_urlsafe(36),
        )
        (staging / ".env").write_text(env, encoding="utf-8")
        (staging / ".env").chmod(0o600)
        (staging / "Procfile").write_text(PROCFILE, encoding="utf-8")
        if target.exists():
            target.rmdir()
        staging.rename(target)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"cannot create {target}: {exc.strerror or exc}") from None
    return target


@app.command()
def init(
    directory: Annotated[Path, typer.Argument(metavar="DIR", help="A new or empty folder for the project.")],
) -> None:
    """Start a new project: example journeys (all disabled), templates, .env and Procfile."""
    target = scaffold(directory)
    console.print(f"created {target}", highlight=False)
    console.print(
        "next: edit .env (shop, provider keys, the REQUIRED settings), run `automation db upgrade` and\n"
        "`automation journeys validate` in that folder, then enable the journeys you want\n"
        "(every example ships with `enabled: false`, so nothing is sent until you do)",
        highlight=False,
    )
