"""Coupon codes: pools filled by the CLI, one code per sent message, none for the rest, redemption by order."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from starlette.testclient import TestClient

from automation.core.records import Track
from automation.loyalty import coupons
from automation.store.models import Coupon, Delivery
from tests.deliverykit import event, flow, kit_env, kit_settings, person
from tests.harness import Flow, cli, track, utc
from tests.standins import SendGridStandIn

__all__ = ["flow", "kit_env", "kit_settings"]

T0 = "2026-11-22T12:00:00Z"
NOW = utc(T0)


def fill(sessions: sessionmaker[Session], *codes: str, pool: str = "welcome") -> None:
    with sessions.begin() as s:
        coupons.import_codes(s, pool, [coupons.rules.Line(n, c) for n, c in enumerate(codes, 1)], NOW)


def held(sessions: sessionmaker[Session]) -> dict[int, str]:
    with sessions() as s:
        return {d: c for d, c in s.execute(select(Coupon.delivery_id, Coupon.code)) if d is not None}


def test_import_generate_and_status_on_postgresql_and_sqlite(
    either_database: sessionmaker[Session], tmp_path: Path
) -> None:
    url = str(either_database.kw["bind"].url.render_as_string(hide_password=False))
    env = {"DATABASE_URL": url}
    codes = tmp_path / "codes.csv"
    codes.write_text("code,expires_at\nSPRING-1,2027-01-31\nSPRING-2,\nSPRING-1,\n\n", encoding="utf-8")
    imported = cli("coupons", "import", "spring", str(codes), "--low-water", "5", env=env)
    assert imported.returncode == 0, imported.stderr
    assert "2 codes added" in imported.stdout and "1 duplicates ignored" in imported.stdout
    assert "lines 4" in imported.stdout
    again = cli("coupons", "import", "spring", str(codes), env=env)
    assert "0 codes added" in again.stdout and "3 duplicates ignored" in again.stdout

    made = cli("coupons", "generate", "welcome", "--count", "30", "--pattern", "WELCOME-##-?", env=env)
    assert made.returncode == 0, made.stderr
    with either_database() as s:
        generated = list(s.scalars(select(Coupon.code).where(Coupon.pool == "welcome")))
    assert len(set(generated)) == 30 and all(re.fullmatch(r"WELCOME-\d\d-[A-Z]", c) for c in generated)

    status = cli("coupons", "status", "--json", env=env)
    assert status.returncode == 0, status.stderr
    rows = {r["pool"]: r for r in json.loads(status.stdout)}
    assert rows["spring"] == {
        "pool": "spring",
        "total": 2,
        "assigned": 0,
        "redeemed": 0,
        "left": 2,
        "low_water": 5,
    }
    assert rows["welcome"]["total"] == 30 and rows["welcome"]["low_water"] == 100


def test_bad_files_and_patterns_are_refused_in_one_line_and_nothing_is_added(
    either_database: sessionmaker[Session], tmp_path: Path
) -> None:
    env = {"DATABASE_URL": str(either_database.kw["bind"].url.render_as_string(hide_password=False))}
    bad = tmp_path / "bad.txt"
    bad.write_text("GOOD-1\nnot a code\nGOOD-2\n", encoding="utf-8")
    refused = cli("coupons", "import", "p", str(bad), env=env)
    assert refused.returncode != 0
    assert (
        refused.stderr.strip() == f"error: {bad}:2: a code is letters, digits, '-' and '_' "
        "(at most 64, starting with a letter or digit)"
    )
    assert "Traceback" not in refused.stderr
    small = cli("coupons", "generate", "p", "--count", "11", "--pattern", "X-#", env=env)
    assert small.returncode != 0 and "spells 10 codes: too few for 11" in small.stderr
    assert len(small.stderr.strip().splitlines()) == 1
    with either_database() as s:
        assert s.scalar(select(func.count()).select_from(Coupon)) == 0


def test_a_sent_message_holds_one_code_shown_in_its_email_and_a_redelivery_reuses_it(
    flow: Flow, sendgrid: SendGridStandIn
) -> None:
    fill(flow.runtime.sessions, "CODE-A", "CODE-B", "CODE-C")
    flow.ingest([person("ann"), person("bob"), event("ann", "offer", T0), event("bob", "offer", T0)])
    flow.run(T0)
    sent = flow.deliveries(status="sent")
    assert len(sent) == 2
    holding = held(flow.runtime.sessions)
    assert sorted(holding) == sorted(d.id for d in sent) and len(set(holding.values())) == 2
    mails = {m["to"]: m for m in sendgrid.messages()}
    for d in sent:
        assert f"Your code: {holding[d.id]}" in mails[f"{d.customer_id}@example.com"]["text"]
    with flow.runtime.sessions.begin() as s:
        again = coupons.take(s, "welcome", sent[0].id, NOW)
    assert again is not None and again.code == holding[sent[0].id]
    with flow.runtime.sessions() as s:
        assert coupons.status(s, NOW, "welcome")[0].left == 1


def test_skipped_and_suppressed_messages_take_no_code(flow: Flow) -> None:
    fill(flow.runtime.sessions, "CODE-A")
    flow.ingest(
        [
            person("ann", email_opt_in=False),
            person("bob"),
            event("ann", "offer", T0),
            event("bob", "offer", T0),
        ]
    )
    with flow.runtime.sessions.begin() as s:
        from automation.store import suppressions

        suppressions.add(s, [suppressions.Entry("email", "bob@example.com", "bounce")], "test", NOW)
    flow.run(T0)
    assert {d.customer_id: d.status for d in flow.deliveries()} == {"ann": "skipped", "bob": "suppressed"}
    assert held(flow.runtime.sessions) == {}


def test_an_empty_pool_fails_the_delivery_with_its_reason(flow: Flow) -> None:
    fill(flow.runtime.sessions, "ONLY-1")
    flow.ingest([person("ann"), person("bob"), event("ann", "offer", T0), event("bob", "offer", T0)])
    flow.run(T0)
    outcome = sorted((d.status, d.reason) for d in flow.deliveries())
    assert outcome == [("failed", "coupon pool welcome is empty"), ("sent", None)]
    assert len(held(flow.runtime.sessions)) == 1


def test_an_order_naming_an_assigned_code_redeems_it_once(flow: Flow) -> None:
    fill(flow.runtime.sessions, "CODE-A", "CODE-B")
    flow.ingest([person("ann"), event("ann", "offer", T0)])
    flow.run(T0)
    code = next(iter(held(flow.runtime.sessions).values()))
    order = track("ann", "order_placed", "2026-11-23T10:00:00Z", "o-1", total=30, coupon=code)
    flow.ingest(
        [order, track("ann", "order_placed", "2026-11-23T11:00:00Z", "o-2", total=5, coupon="CODE-B")]
    )
    flow.ingest([order, track("ann", "order_placed", "2026-11-24T11:00:00Z", "o-3", total=9, coupon=code)])
    with flow.runtime.sessions() as s:
        row = s.scalars(select(Coupon).where(Coupon.code == code)).one()
        unassigned = s.scalars(select(Coupon).where(Coupon.code == "CODE-B")).one()
        assert row.redeemed_at == utc("2026-11-23T10:00:00Z")
        assert unassigned.redeemed_at is None  # never sent to anyone: not a redemption
        assert coupons.status(s, NOW, "welcome")[0].redeemed == 1
    report = cli("status", "--journey", "offer", "--json", env={"DATABASE_URL": flow.settings.database_url})
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["journeys"][0]["coupons_redeemed"] == 1


def test_a_code_sent_to_one_customer_and_named_by_another_s_order_is_redeemed_by_no_one(flow: Flow) -> None:
    fill(flow.runtime.sessions, "CODE-A", "CODE-B")
    flow.ingest([person("ann"), person("bob"), event("ann", "offer", T0)])
    flow.run(T0)
    (code,) = held(flow.runtime.sessions).values()

    def redeemed() -> tuple[str | None, int]:
        with flow.runtime.sessions() as s:
            row = s.scalars(select(Coupon).where(Coupon.code == code)).one()
            return row.redeemed_by, coupons.status(s, NOW, "welcome")[0].redeemed

    flow.ingest([track("bob", "order_placed", "2026-11-23T10:00:00Z", "o-bob", total=30, coupon=code)])
    assert redeemed() == (None, 0)
    report = cli("status", "--journey", "offer", "--json", env={"DATABASE_URL": flow.settings.database_url})
    assert json.loads(report.stdout)["journeys"][0]["coupons_redeemed"] == 0
    # The code is still Ann's to use.
    flow.ingest([track("ann", "order_placed", "2026-11-24T10:00:00Z", "o-ann", total=30, coupon=code)])
    assert redeemed() == ("o-ann", 1)


def test_a_pool_below_low_water_logs_a_warning_without_codes(
    flow: Flow, caplog: pytest.LogCaptureFixture
) -> None:
    fill(flow.runtime.sessions, "SECRET-CODE-1", "SECRET-CODE-2")
    flow.ingest([person("ann"), event("ann", "offer", T0)])
    with caplog.at_level("WARNING", logger="automation.loyalty.coupons"):
        flow.run(T0)
    assert "coupon pool welcome has 1 codes left (low water 100)" in caplog.text
    assert "SECRET" not in caplog.text
    with flow.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.status == "sent")) == 1


def test_metrics_export_the_codes_left_in_each_pool(
    client: TestClient, sessions: sessionmaker[Session]
) -> None:
    fill(sessions, "CODE-A", "CODE-B", "CODE-C")
    with sessions.begin() as s:
        assert coupons.take(s, "welcome", 7, NOW) is not None
    text = client.get("/metrics").text
    assert 'automation_coupons_left{pool="welcome"} 2.0' in text
    assert "CODE-" not in text


def test_the_store_takes_reuses_frees_and_redeems_codes_alike_on_both_databases(
    either_database: sessionmaker[Session],
) -> None:
    fill(either_database, "CODE-A", "CODE-B")
    with either_database.begin() as s:
        first = coupons.take(s, "welcome", 1, NOW)
        second = coupons.take(s, "welcome", 2, NOW)
        assert coupons.take(s, "welcome", 3, NOW) is None  # empty
        assert coupons.take(s, "welcome", 1, NOW) == first  # a redelivery keeps its code
    assert first is not None and second is not None and first.code != second.code
    with either_database.begin() as s:
        coupons.release(s, [2])
        assert coupons.take(s, "welcome", 3, NOW) == second
        # Delivery 1 is no one's here: an order naming its code is no redemption.
        parsed = Track("c1", "order_placed", "o-1", utc("2026-11-23T10:00:00Z"), {"coupon": first.code})
        assert coupons.redeem_orders(s, [parsed, parsed], "order_placed") == 0
    with either_database() as s:
        (pool,) = coupons.status(s, NOW, "welcome")
    assert (pool.total, pool.assigned, pool.redeemed, pool.left) == (2, 2, 0, 0)
