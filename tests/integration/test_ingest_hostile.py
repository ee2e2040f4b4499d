"""One hostile ingest line costs that line only: each is `FILE:LINE: reason`, the good lines land.

Through the installed `automation ingest`, from a file and from stdin, on PostgreSQL and SQLite.
"""

from __future__ import annotations

import json
import os
import subprocess
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import select

from automation.store import db
from automation.store.models import Customer, Event
from tests.harness import BIN, identify, track

EMAIL = "ada@example.com"


def good(n: int) -> bytes:
    person = identify(f"g{n}", "2026-01-01T00:00:00Z", email=f"g{n}@example.com", first_name="Zoé")
    return json.dumps(person, ensure_ascii=False).encode()


def order(n: int, total: object) -> bytes:
    return json.dumps(track(f"g{n}", "order_placed", "2026-02-01T00:00:00Z", f"o-{n}", total=total)).encode()


def identify_raw(cid: str, traits: str) -> bytes:
    return f'{{"type": "identify", "customer_id": "{cid}", "traits": {traits}}}'.encode()


#: (line, why it is refused); None for a good line.
LINES: list[tuple[bytes, str | None]] = [
    (b"\xef\xbb\xbf" + good(1), None),  # a UTF-8 BOM on line 1 is accepted
    (b"[" * 100_000, "nested deeper than 32 levels"),
    (good(2), None),
    (identify_raw("deep", '{"a": ' + "[" * 40 + "]" * 40 + "}"), "nested deeper than 32 levels"),
    (identify_raw("big", '{"points": ' + "7" * 4301 + "}"), "a number has too many digits"),
    (json.dumps(identify("late", "9999-12-31T23:59:59-01:00")).encode(), "timestamp is out of range"),
    (identify_raw("sur", '{"first_name": "\\ud800"}'), "lone surrogate"),
    (identify_raw("nul", '{"first_name": "a\\u0000b"}'), "NUL character"),
    (b'{"type": "identify", "customer_id": "caf\xe9"}', "not UTF-8 text"),
    (good(3), None),
    (json.dumps(identify("at", email="@")).encode(), "traits.email is not an email address"),
    (
        json.dumps(identify("crlf", email=EMAIL + "\r\nBcc: x@example.com")).encode(),
        "traits.email holds a control",
    ),
    (json.dumps(identify("arabic", phone="+١٥٥٥١٢٣٤٥٦٧")).encode(), "traits.phone must be in E.164"),
    (json.dumps(identify("super", phone="+¹⁵⁵⁵¹²³⁴⁵⁶⁷")).encode(), "traits.phone must be in E.164"),
    (json.dumps(identify("esc", first_name="Ada\x1b[2J")).encode(), "traits.first_name holds a control"),
    (json.dumps(identify("sep", last_name="Love\u2028lace")).encode(), "traits.last_name holds a control"),
    (order(1, 12.5), None),
    (order(2, "NaN"), "properties.total must be an amount"),
    (order(3, 10**30), "properties.total must be an amount"),
    (order(3, "1" + "0" * 28), "properties.total must be an amount"),
    (
        b'{"type": "track", "customer_id": "g3", "event": "x", "timestamp": "2026-01-01", "n": NaN}',
        "NaN is not",
    ),
    (
        b'{"type": "identify", "customer_id": "long", "traits": {"bio": "' + b"x" * 600_000 + b'"}}',
        "longer than",
    ),
    (order(3, "7.25"), None),
]


@pytest.fixture(params=["postgresql", "sqlite"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return str(request.getfixturevalue("pg_url"))
    url = f"sqlite:///{tmp_path / 'lite.db'}"
    db.upgrade(db.make_engine(url))
    return url


def _run(url: str, cwd: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DATABASE_URL": url}
    return subprocess.run(
        [str(BIN), "ingest", *args], input=stdin, capture_output=True, env=env, cwd=cwd, timeout=120
    )


def test_each_hostile_line_is_reported_with_its_number_and_the_good_ones_land(
    database_url: str, tmp_path: Path
) -> None:
    data = b"\n".join(line for line, _ in LINES) + b"\n"
    path = tmp_path / "records.jsonl"
    path.write_bytes(data)
    expected = [f"{n}: {why}" for n, (_, why) in enumerate(LINES, 1) if why]
    for source, proc in (
        (str(path), _run(database_url, tmp_path, str(path))),
        ("<stdin>", _run(database_url, tmp_path, "-", stdin=data)),
    ):
        err = proc.stderr.decode()
        assert proc.returncode == 1, err
        assert "Traceback" not in err and "unexpected" not in err
        problems = err.splitlines()
        assert len(problems) == len(expected), err[:2000]
        for problem, want in zip(problems, expected, strict=True):
            number, why = want.split(": ", 1)
            assert problem.startswith(f"{source}:{number}: ") and why in problem, (problem, want)
        assert EMAIL not in err and "Love" not in err
        assert f"read {len(LINES)} records: applied 5" in proc.stdout.decode()
    engine = db.make_engine(database_url)
    with db.sessions(engine)() as s:
        customers = {c.id: c for c in s.scalars(select(Customer))}
        assert sorted(customers) == ["g1", "g2", "g3"]
        assert customers["g1"].first_name == "Zoé"
        assert customers["g1"].lifetime_value == Decimal("12.50")
        assert customers["g3"].lifetime_value == Decimal("7.25")
        assert sorted(s.scalars(select(Event.event_key))) == ["o-1", "o-3"]
    engine.dispose()
