"""`automation users` as an operator runs it, on PostgreSQL."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from automation.config import load_settings
from automation.store.models import DashboardSession, DashboardUser
from automation.web.dashboard import accounts
from automation.web.dashboard.auth import Sessions
from tests.harness import cli

NOW = dt.datetime(2026, 11, 22, 12, tzinfo=dt.UTC)


def test_add_list_passwd_and_remove_a_user(env: dict[str, str], sessions: sessionmaker[Session]) -> None:
    added = cli(
        "users", "add", "Ada@Example.com", "--role", "editor", "--password-stdin", stdin="first-password-1\n"
    )
    assert (added.returncode, added.stdout.strip()) == (0, "added ada@example.com as editor")
    twice = cli(
        "users", "add", "ada@example.com", "--role", "viewer", "--password-stdin", stdin="other-password-1\n"
    )
    assert twice.returncode == 1
    assert twice.stderr.strip() == (
        "error: user ada@example.com already exists (change the password with `automation users passwd`)"
    )
    listed = cli("users", "list")
    assert "ada@example.com" in listed.stdout and "editor" in listed.stdout and "1 users" in listed.stdout
    assert "first-password-1" not in listed.stdout + added.stdout

    with sessions.begin() as s:
        user = accounts.sign_in(s, "ada@example.com", "first-password-1", NOW).user
        assert user is not None
        Sessions(load_settings()).open(s, user, NOW)
        stored = s.scalar(select(DashboardUser.password_hash))
        assert stored is not None and stored.startswith("$argon2id$")
    changed = cli("users", "passwd", "ada@example.com", "--password-stdin", stdin="second-password-2\n")
    assert changed.returncode == 0, changed.stderr
    with sessions.begin() as s:
        assert s.scalar(select(func.count()).select_from(DashboardSession)) == 0
        assert (
            accounts.sign_in(s, "ada@example.com", "first-password-1", NOW).outcome is accounts.SignIn.WRONG
        )
        assert accounts.sign_in(s, "ada@example.com", "second-password-2", NOW).outcome is accounts.SignIn.OK

    removed = cli("users", "remove", "ada@example.com")
    assert removed.returncode == 0
    again = cli("users", "remove", "ada@example.com")
    assert (again.returncode, again.stderr.strip()) == (1, "error: no user ada@example.com")


def test_bad_input_is_one_line_and_changes_nothing(
    env: dict[str, str], sessions: sessionmaker[Session]
) -> None:
    short = cli("users", "add", "b@example.com", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert (short.returncode, short.stderr.strip()) == (1, "error: a password has at least 10 characters")
    no_tty = cli("users", "add", "b@example.com", "--role", "viewer", stdin="")
    assert no_tty.stderr.strip() == "error: no terminal to ask for the password on: pass --password-stdin"
    not_email = cli("users", "add", "nobody", "--role", "viewer", "--password-stdin", stdin="long-enough-1\n")
    assert not_email.stderr.strip() == "error: 'nobody' is not an email address"
    role = cli("users", "add", "b@example.com", "--role", "boss", "--password-stdin", stdin="long-enough-1\n")
    assert role.returncode == 2 and "Traceback" not in role.stderr
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(DashboardUser)) == 0
