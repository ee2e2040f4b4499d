"""`automation loyalty show|adjust|recompute|simulate` and the ledger's refusal on `automation ingest`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.harness import cli, identify, track

ROOT = Path(__file__).resolve().parents[2]
NOW = "2026-03-01T12:00:00Z"


def write(path: Path, records: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_the_loyalty_commands_on_ingested_orders(env: dict[str, str], tmp_path: Path) -> None:
    data = write(
        tmp_path / "orders.jsonl",
        [
            identify("ada", "2026-01-01T00:00:00Z", email="ada@example.com", timezone="Europe/Paris"),
            track("ada", "order_placed", "2026-01-02T10:00:00Z", "o-1", total=250, order_id="o-1"),
            track("ada", "points_redeemed", "2026-01-03T10:00:00Z", "r-1", points=900, reward="grinder"),
            track("ada", "order_placed", "2026-01-04T10:00:00Z", "o-2", total=80, order_id="o-2"),
        ],
    )
    ingested = cli("ingest", str(data), env=env)
    assert ingested.returncode == 1
    assert f"{data}:3: not enough points" in ingested.stderr and "Traceback" not in ingested.stderr

    first = cli("loyalty", "adjust", "ada", "30", "--reason", "welcome gift", "--key", "gift-1", env=env)
    again = cli("loyalty", "adjust", "ada", "30", "--reason", "welcome gift", "--key", "gift-1", env=env)
    taken = cli("loyalty", "adjust", "ada", "-50", "--reason", "correction", "--key", "fix-1", env=env)
    assert (first.returncode, again.returncode, taken.returncode) == (0, 0, 0), first.stderr
    assert "adjusted by 30 points (gift-1)" in first.stdout
    assert "adjustment 'gift-1' was already applied; nothing changed" in again.stdout

    shown = cli("loyalty", "show", "ada", "--json", env=env)
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    # 250 as bronze, then 80 x 1.25 as silver (spendable by now, the return window long past);
    # 30 given and 50 taken.
    assert (report["points"], report["pending_points"], report["debt"]) == (330, 0, 0)
    assert (report["tier"], report["next_tier"], report["to_next_tier"]) == ("silver", "gold", 170.0)
    assert [(lot["lot"], lot["left"]) for lot in report["lots"]] == [
        ("o-1", 200),
        ("o-2", 100),
        ("adjust:gift-1", 30),
    ]
    assert cli("loyalty", "show", "ada", env=env).returncode == 0

    recomputed = cli("loyalty", "recompute", env=env)
    assert recomputed.returncode == 0, recomputed.stderr
    assert "recomputed 1 customers: no differences" in recomputed.stdout

    changed = tmp_path / "loyalty.yaml"
    changed.write_text((ROOT / "journeys" / "loyalty.yaml").read_text().replace("min: 500", "min: 300"))
    simulated = cli("loyalty", "simulate", "--file", str(changed), env=env)
    assert simulated.returncode == 0, simulated.stderr
    assert "1 customers: 1 would move up a tier, 0 down" in simulated.stdout
    assert "nothing written" in simulated.stdout
    assert json.loads(cli("loyalty", "show", "ada", "--json", env=env).stdout)["tier"] == "silver"

    broken = tmp_path / "broken.yaml"
    broken.write_text("points:\n  earn: []\n  pendnig: 14d\n")
    refused = cli("loyalty", "simulate", "--file", str(broken), env=env)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"{broken}:3:3: unknown key 'pendnig' (did you mean 'pending'?)" in refused.stderr


def test_a_warning_repeated_on_many_lines_is_named_ten_times_then_counted(
    env: dict[str, str], tmp_path: Path
) -> None:
    data = write(
        tmp_path / "tiers.jsonl",
        [
            identify(f"c{n}", "2026-01-01T00:00:00Z", email=f"c{n}@example.com", tier="gold")
            for n in range(13)
        ],
    )
    ingested = cli("ingest", str(data), env=env)
    assert ingested.returncode == 0, ingested.stderr
    owned = "tier is set by the loyalty programme (loyalty.yaml): the ingested tier is ignored"
    assert ingested.stderr.splitlines() == [
        *(f"{data}:{line}: warning: {owned}" for line in range(1, 11)),
        f"{data}: warning: 3 more lines: {owned}",
    ]
    assert "applied 13 (0 new events), rejected 0, 13 with a warning" in ingested.stdout
