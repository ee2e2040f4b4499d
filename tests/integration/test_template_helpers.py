"""`format_money` and `format_date` in templates: the customer's locale and time zone (Babel).

A journey of its own, ticked and sent by the installed command through the real
SendGrid SDK to the stand-in, on PostgreSQL and Redis.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from tests.conftest import ROOT
from tests.harness import cli, identify, track
from tests.standins import SendGridStandIn

NOW = "2026-11-22T17:00:00Z"
RECEIPT = """\
id: receipt
name: Receipt
trigger: {event: {name: order_placed, lookback: 3d}}
quiet_hours: false
frequency_cap: false
steps:
  - send: {id: receipt, channel: email, template: receipt}
"""


def project(tmp_path: Path) -> tuple[Path, Path]:
    journeys, templates = tmp_path / "journeys", tmp_path / "templates"
    journeys.mkdir()
    shutil.copy(ROOT / "journeys" / "loyalty.yaml", journeys / "loyalty.yaml")
    (journeys / "receipt.yaml").write_text(RECEIPT)
    folder = templates / "receipt"
    folder.mkdir(parents=True)
    (folder / "subject.txt").write_text("Your order {{ event.order_id }}")
    body = "Total {{ format_money(event.total, event.currency) }} on {{ format_date(event.occurred_at, 'long') }}"
    (folder / "body.txt").write_text(body)
    (folder / "body.html").write_text(f"<p>{body}</p>")
    return journeys, templates


def test_money_and_dates_print_in_the_customers_locale_and_zone(
    env: dict[str, str], tmp_path: Path, sendgrid: SendGridStandIn
) -> None:
    journeys, templates = project(tmp_path)
    here = {
        **env,
        "AUTOMATION_JOURNEYS_DIR": str(journeys),
        "AUTOMATION_TEMPLATES_DIR": str(templates),
        "AUTOMATION_DEFAULT_LOCALE": "de_DE",
    }
    records = [
        identify(
            "jp",
            "2026-01-01T00:00:00Z",
            email="jp@example.com",
            email_opt_in=True,
            locale="ja_JP",
            timezone="Asia/Tokyo",
        ),
        identify("de", "2026-01-01T00:00:00Z", email="de@example.com", email_opt_in=True),
        track(
            "jp", "order_placed", "2026-11-22T16:00:00Z", "o-jp", order_id="A-1", total=4200, currency="JPY"
        ),
        track(
            "de", "order_placed", "2026-11-22T16:00:00Z", "o-de", order_id="B-2", total=42.5, currency="EUR"
        ),
    ]
    data = tmp_path / "records.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert cli("journeys", "validate", env=here).returncode == 0
    assert cli("ingest", str(data), env=here).returncode == 0
    assert cli("tick", "--now", NOW, env=here).returncode == 0
    assert cli("worker", "--burst", env=here).returncode == 0
    texts = {m["to"]: (m["subject"], m["text"]) for m in sendgrid.messages()}
    # Yen have no decimals; 16:00 UTC is already the 23rd in Tokyo.
    assert texts["jp@example.com"] == ("Your order A-1", "Total ￥4,200 on 2026年11月23日")
    # No locale trait: AUTOMATION_DEFAULT_LOCALE; no timezone: UTC.
    assert texts["de@example.com"] == ("Your order B-2", "Total 42,50\xa0€ on 22. November 2026")
