"""Generated ingest lines and filters through the real entry points: no traceback, no hang.

`automation ingest -` (the CLI's own `main`, in process, on a real database) reports every bad
line as `<stdin>:LINE: reason` and stores every good one; the filter loader either returns a
filter that runs on both databases or refuses it with one positioned line.
"""

from __future__ import annotations

import io
import itertools
import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.cli import main
from automation.definitions.loader import parse_filter
from automation.errors import DefinitionError
from automation.store import db
from automation.store.filter_sql import compile_filter
from automation.store.models import Customer

SECONDS_PER_INPUT = 10
FUZZ = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
_ids = itertools.count()

names = st.text(st.characters(categories=["L", "N", "Zs", "P"]), min_size=1, max_size=20)
instants = st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat())


@st.composite
def good_line(draw: st.DrawFn, cid: str) -> bytes:
    traits = {
        "email": f"{cid}@example.com",
        "first_name": draw(names),
        "tier": draw(st.sampled_from(["gold", "silver", "bronze"])),
        draw(st.sampled_from(["city", "prénom", "a.b", "年齢"])): draw(
            st.one_of(names, st.integers(-(10**18), 10**18), st.booleans())
        ),
    }
    record = {"type": "identify", "customer_id": cid, "traits": traits, "timestamp": "2026-01-01T00:00:00Z"}
    return json.dumps(record, ensure_ascii=draw(st.booleans())).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
hostile = st.one_of(
    st.integers(33, 3000).map(
        lambda n: b'{"type": "identify", "customer_id": "d", "traits": {"x": ' + b"[" * n + b"]" * n + b"}}"
    ),
    st.integers(4301, 6000).map(
        lambda n: b'{"type": "identify", "customer_id": "n", "traits": {"x": ' + b"9" * n + b"}}"
    ),
    st.sampled_from(["9999-12-31T23:59:59-01:00", "0001-01-01T00:00:00+01:00", "2026-02-30T00:00:00Z"]).map(
        lambda ts: json.dumps({"type": "identify", "customer_id": "t", "timestamp": ts}).encode()
    ),
    st.sampled_from(["\\ud800", "\\udfff", "\\u0000"]).map(
        lambda esc: (
            b'{"type": "identify", "customer_id": "s", "traits": {"first_name": "a' + esc.encode() + b'"}}'
        )
    ),
    st.sampled_from(["NaN", '"NaN"', "1e400", '"1' + "0" * 40 + '"', "true"]).map(
        lambda total: (
            '{"type": "track", "customer_id": "o", "event": "order_placed", "timestamp": "2026-01-01",'
            ' "properties": {"total": ' + total + "}}"
        ).encode()
    ),
)
#: Lines that may or may not be records (a random `email` may be null, a random text a date).
arbitrary = st.one_of(
    st.binary(min_size=1, max_size=60).filter(lambda b: b"\n" not in b and b.strip()),
    st.text(min_size=1, max_size=60)
    .map(lambda t: t.encode("utf-8", "surrogatepass"))
    .filter(lambda b: b"\n" not in b and b.strip()),
    json_values.map(
        lambda v: json.dumps({"type": "track", "customer_id": "j", "event": "e", "timestamp": v}).encode()
    ),
    json_values.map(
        lambda v: json.dumps({"type": "identify", "customer_id": "j", "traits": {"email": v}}).encode()
    ),
)


@st.composite
def ingest_files(draw: st.DrawFn) -> tuple[list[bytes], dict[int, str], set[int]]:
    """Lines in a random order; the good ones' numbers with their customer id, the bad ones' numbers."""
    run = next(_ids)
    good = {f"f{run}x{n}": draw(good_line(f"f{run}x{n}")) for n in range(draw(st.integers(0, 4)))}
    tagged = [(cid, line) for cid, line in good.items()]
    tagged += [("", line) for line in draw(st.lists(hostile, min_size=1, max_size=5))]
    tagged += [(None, line) for line in draw(st.lists(arbitrary, max_size=3))]
    ordered = draw(st.permutations(tagged))
    lines = [line for _, line in ordered]
    return (
        lines,
        {n: c for n, (c, _) in enumerate(ordered, 1) if c},
        {n for n, (c, _) in enumerate(ordered, 1) if c == ""},
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def database(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    url = (
        str(request.getfixturevalue("pg_url"))
        if request.param == "postgresql"
        else f"sqlite:///{tmp_path}/f.db"
    )
    engine = db.make_engine(url)
    db.upgrade(engine)
    engine.dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)
    yield url


def _run_ingest(
    data: bytes, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["automation", "ingest", "-"])
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


@FUZZ
@given(ingest_files())
def test_generated_ingest_lines_through_the_cli(
    database: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: tuple[list[bytes], dict[int, str], set[int]],
) -> None:
    lines, good, bad = case
    started = time.monotonic()
    code, out, err = _run_ingest(b"\n".join(lines) + b"\n", monkeypatch, capsys)
    assert time.monotonic() - started < SECONDS_PER_INPUT
    assert "Traceback" not in err and "unexpected" not in err, err
    assert all(line.startswith("<stdin>:") for line in err.splitlines()), err
    reported = [int(line.split(":")[1]) for line in err.splitlines()]
    assert reported == sorted(set(reported))  # one line each, in order
    assert bad <= set(reported) and set(reported).isdisjoint(good), err
    read, applied = (int(n) for n in re.findall(r"read (\d+) records: applied (\d+)", out)[0])
    assert read == len(lines) and applied + len(reported) == read, out  # every line accounted for
    assert code == (1 if reported else 0)
    engine = db.make_engine(database)
    with db.sessions(engine)() as s:
        stored = set(s.scalars(select(Customer.id).where(Customer.id.in_(list(good.values())))))
    engine.dispose()
    assert stored == set(good.values())


subjects = st.one_of(
    st.fixed_dictionaries(
        {"fact": st.sampled_from(["order_count", "lifetime_value", "last_order_at", "nope"])}
    ),
    st.fixed_dictionaries(
        {
            "trait": st.one_of(
                st.sampled_from(["tier", "birthday", "signed_up_at", "sms_opt_in", "email"]),
                st.text(max_size=10),
            )
        }
    ),
)
operands = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=12),
    st.dates().map(str),
    st.lists(st.integers() | st.text(max_size=5), max_size=3),
)
conditions = st.builds(
    lambda subject, op, value: {**subject, op: value},
    subjects,
    st.sampled_from(["eq", "ne", "in", "gt", "gte", "lt", "lte", "exists", "between"]),
    operands,
)
filters = st.recursive(
    conditions,
    lambda children: st.one_of(
        st.lists(children, max_size=3).map(lambda xs: {"all": xs}),
        st.lists(children, max_size=3).map(lambda xs: {"any": xs}),
        children.map(lambda x: {"not": x}),
    ),
    max_leaves=6,
)
filter_texts = st.one_of(
    filters.map(lambda f: json.dumps(f, default=str)),
    st.text(max_size=80),
    st.sampled_from(
        ["{a: &x 1, b: *x}", "[" * 5000, "{not: " * 80 + "{}" + "}" * 80, "!!python/object:os.system {}"]
    ),
)


@pytest.fixture(scope="module")
def sqlite_sessions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sessionmaker[Session]]:
    engine = db.make_engine(f"sqlite:///{tmp_path_factory.mktemp('fuzz')}/filters.db")
    db.upgrade(engine)
    yield db.sessions(engine)
    engine.dispose()


@settings(max_examples=300, deadline=None)
@given(filter_texts)
def test_generated_filters_load_and_run_or_are_refused_with_a_position(
    sqlite_sessions: sessionmaker[Session], text: str
) -> None:
    started = time.monotonic()
    try:
        parsed = parse_filter(text, "--where")
    except DefinitionError as exc:
        message = str(exc)
        assert message.startswith("--where:") and "\n" not in message
        line, col = message.split(":")[1:3]
        assert int(line) >= 1 and int(col) >= 1
    else:
        with sqlite_sessions() as s:
            s.scalar(select(func.count()).select_from(Customer).where(compile_filter(parsed)))
    assert time.monotonic() - started < SECONDS_PER_INPUT
