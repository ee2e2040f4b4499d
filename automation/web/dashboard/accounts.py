"""Dashboard accounts: who may sign in, with which role, and the lockout after failed attempts.

Passwords are hashed with argon2id (argon2-cffi's defaults). After `MAX_FAILURES`
failed attempts for one account within `WINDOW`, the account refuses every
attempt, right or wrong, for `LOCKOUT`. Addresses are compared lower-cased.
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from automation.errors import UserError
from automation.store.models import DashboardSession, DashboardUser, LoginFailure

MAX_FAILURES = 5
WINDOW = dt.timedelta(minutes=15)
LOCKOUT = dt.timedelta(minutes=15)
MIN_PASSWORD = 10
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")
_hasher = PasswordHasher()


class Role(enum.StrEnum):
    VIEWER = "viewer"
    EDITOR = "editor"


class AccountError(UserError):
    """An account cannot be created or changed as asked."""


@dataclass(frozen=True)
class User:
    id: int
    email: str
    role: Role

    @property
    def is_editor(self) -> bool:
        return self.role is Role.EDITOR


class SignIn(enum.Enum):
    OK = "ok"
    WRONG = "wrong"
    LOCKED = "locked"


@dataclass(frozen=True)
class Attempt:
    outcome: SignIn
    user: User | None = None
    locked_until: dt.datetime | None = None


def normal_email(email: str) -> str:
    value = email.strip().lower()
    if not _EMAIL.match(value) or len(value) > 320:
        raise AccountError(f"{email.strip()!r} is not an email address")
    return value


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password has at least {MIN_PASSWORD} characters")
    return password


def _user(row: DashboardUser) -> User:
    return User(row.id, row.email, Role(row.role))


def add(s: Session, email: str, role: Role, password: str, now: dt.datetime) -> User:
    key = normal_email(email)
    if s.scalar(select(DashboardUser.id).where(DashboardUser.email == key)) is not None:
        raise AccountError(f"user {key} already exists (change the password with `automation users passwd`)")
    row = DashboardUser(email=key, role=role.value, password_hash=_hasher.hash(check_password(password)))
    row.created_at = now
    s.add(row)
    s.flush()
    return _user(row)


def listing(s: Session) -> list[tuple[User, dt.datetime, dt.datetime | None]]:
    rows = s.scalars(select(DashboardUser).order_by(DashboardUser.email))
    return [(_user(r), r.created_at, r.locked_until) for r in rows]


def _require(s: Session, email: str) -> DashboardUser:
    key = normal_email(email)
    row = s.scalar(select(DashboardUser).where(DashboardUser.email == key))
    if row is None:
        raise AccountError(f"no user {key}")
    return row


def _end_sessions(s: Session, user_id: int) -> None:
    s.execute(delete(DashboardSession).where(DashboardSession.user_id == user_id))
    s.execute(delete(LoginFailure).where(LoginFailure.user_id == user_id))


def remove(s: Session, email: str) -> None:
    """Delete the account and sign it out everywhere."""
    row = _require(s, email)
    _end_sessions(s, row.id)
    s.delete(row)


def set_password(s: Session, email: str, password: str) -> None:
    """Change the password, lift any lockout and sign the account out everywhere."""
    row = _require(s, email)
    row.password_hash = _hasher.hash(check_password(password))
    row.locked_until = None
    _end_sessions(s, row.id)


def sign_in(s: Session, email: str, password: str, now: dt.datetime) -> Attempt:
    """Check a sign-in attempt at `now`, counting a failure towards the lockout."""
    try:
        key = normal_email(email)
    except AccountError:
        key = ""
    row = s.scalar(select(DashboardUser).where(DashboardUser.email == key).with_for_update()) if key else None
    if row is None:
        _verify(_dummy_hash(), password)
        return Attempt(SignIn.WRONG)
    if row.locked_until is not None and row.locked_until > now:
        return Attempt(SignIn.LOCKED, locked_until=row.locked_until)
    if _verify(row.password_hash, password):
        s.execute(delete(LoginFailure).where(LoginFailure.user_id == row.id))
        row.locked_until = None
        if _hasher.check_needs_rehash(row.password_hash):
            row.password_hash = _hasher.hash(password)
        return Attempt(SignIn.OK, _user(row))
    s.add(LoginFailure(user_id=row.id, at=now))
    s.flush()
    recent = s.scalar(
        select(func.count()).where(LoginFailure.user_id == row.id, LoginFailure.at > now - WINDOW)
    )
    if (recent or 0) >= MAX_FAILURES:
        row.locked_until = now + LOCKOUT
        s.execute(delete(LoginFailure).where(LoginFailure.user_id == row.id))
        return Attempt(SignIn.LOCKED, locked_until=row.locked_until)
    return Attempt(SignIn.WRONG)


@cache
def _dummy_hash() -> str:
    """Verified when the account does not exist, so a wrong address costs as long as a wrong password."""
    return _hasher.hash("not-a-password-anyone-has")


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
