"""`automation demo` as a user runs it: no PostgreSQL, no Redis, every journey sends."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from automation.definitions.catalog import load_catalog
from automation.definitions.loader import SIDE_FILES
from automation.insight import reporting
from automation.store.db import make_engine, sessions
from tests.conftest import ROOT
from tests.harness import BIN

FIXTURES = ROOT / "tests" / "fixtures" / "lifecycle"
SERVICES = (
    "DATABASE_URL",
    "REDIS_URL",
    "SENDGRID_API_KEY",
    "TWILIO_ACCOUNT_SID",
    "AUTOMATION_JOURNEYS_DIR",
    "AUTOMATION_TEMPLATES_DIR",
)


def _demo(cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in SERVICES}
    # Nothing listens on port 9: were the demo to reach for either service, it would fail.
    env.update(
        {
            "DATABASE_URL": "postgresql+psycopg://nobody@127.0.0.1:9/none",
            "REDIS_URL": "redis://127.0.0.1:9/0",
            **extra,
        }
    )
    # The timeout only guards against a hang; how long the demo takes is its own output ("done in").
    return subprocess.run([str(BIN), "demo"], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)


def _sent_per_journey(directory: Path) -> dict[str, int]:
    engine = make_engine(f"sqlite:///{directory / 'demo.db'}")
    try:
        catalog = load_catalog(directory.parent / "journeys", directory.parent / "templates")
        return {r.journey_id: r.deliveries["sent"] for r in reporting.status(sessions(engine), catalog)}
    finally:
        engine.dispose()


def test_demo_fires_every_journey_kind(tmp_path: Path) -> None:
    # The shipped journeys plus one stand-in per trigger kind, as a user's own folder.
    shutil.copytree(ROOT / "journeys", tmp_path / "journeys")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    shutil.copytree(FIXTURES / "journeys", tmp_path / "journeys", dirs_exist_ok=True)
    shutil.copytree(FIXTURES / "templates", tmp_path / "templates", dirs_exist_ok=True)

    result = _demo(tmp_path)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "campaigns launched: newsletter-demo, seasonal_offer-demo" in out
    assert "a customer with mixed topic choices, cust-0001 (newsletter on, promotions off)" in out
    assert "journeys that sent nothing" not in out
    assert "The experiment of inactive_60d (the same as `automation experiments show inactive_60d`)" in out
    assert "holdout (baseline)" in out and "verdict: " in out
    assert f"emails in {tmp_path / 'demo-output' / 'outbox' / 'email'}" in out

    sent = _sent_per_journey(tmp_path / "demo-output")
    shipped = {p.stem for p in (ROOT / "journeys").glob("*.yaml") if p.name not in SIDE_FILES}
    kinds = {"fx_birthday", "fx_inactive_60d", "fx_membership_anniversary", "fx_tier_upgrade"}
    assert shipped | kinds <= set(sent)
    assert all(sent[j] > 0 for j in shipped | kinds), sent
    emails = list((tmp_path / "demo-output" / "outbox" / "email").glob("*.eml"))
    assert f"{len(emails)} emails in" in out
    assert "Northwind Coffee" in emails[0].read_text(encoding="utf-8")

    # Run again: a fresh start in the same folder, same seed, same result.
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stderr
    assert _sent_per_journey(tmp_path / "demo-output") == sent


def test_demo_from_an_empty_folder_uses_the_shipped_journeys(tmp_path: Path) -> None:
    result = _demo(tmp_path, AUTOMATION_JOURNEYS_DIR="", AUTOMATION_TEMPLATES_DIR="")
    assert result.returncode == 0, result.stderr
    assert "journeys that sent nothing" not in result.stdout
    for journey in (ROOT / "journeys").glob("*.yaml"):
        if journey.name in SIDE_FILES:
            continue
        assert journey.stem in result.stdout
    assert (tmp_path / "demo-output" / "demo.db").is_file()
    assert not (tmp_path / "automation.db").exists()

    # A folder the demo did not make is never cleared.
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me", encoding="utf-8")
    refused = subprocess.run(
        [str(BIN), "demo", "--dir", "mine"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert refused.returncode == 1
    assert (
        refused.stderr.strip()
        == f"error: {tmp_path / 'mine'} holds other files; give the demo a new or empty folder (--dir)"
    )
    assert (tmp_path / "mine" / "notes.txt").read_text(encoding="utf-8") == "keep me"


def test_the_demo_summary_is_what_automation_status_says_on_its_database(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "journeys", tmp_path / "journeys")
    shutil.copytree(ROOT / "templates", tmp_path / "templates")
    env = {k: v for k, v in os.environ.items() if k not in SERVICES}
    demo = subprocess.run(
        [str(BIN), "demo", "--customers", "40", "--days", "4"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert demo.returncode == 0, demo.stderr
    database = tmp_path / "demo-output" / "demo.db"
    assert f"DATABASE_URL=sqlite:///{database} automation status" in demo.stdout
    status = subprocess.run(
        [str(BIN), "status"],
        cwd=tmp_path,
        env={**env, "DATABASE_URL": f"sqlite:///{database}"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0, status.stderr
    journeys = [p.stem for p in (ROOT / "journeys").glob("*.yaml") if p.name not in SIDE_FILES]

    def rows(text: str) -> list[str]:
        return [line for line in text.splitlines() if any(f"│{j} " in line for j in journeys)]

    assert len(rows(demo.stdout)) == 3 * len(journeys)  # the messages, providers and per-step tables
    assert rows(demo.stdout) == rows(status.stdout)
