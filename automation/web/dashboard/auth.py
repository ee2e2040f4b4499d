"""Signed-in sessions and CSRF tokens.

The session cookie is an itsdangerous-signed, timestamped random token
(HttpOnly, SameSite=Lax, Secure when the public URL is https, scoped to
`/app`); the database keeps only its SHA-256 with the user and expiry, so
signing out, removing a user or changing a password ends it at once. The CSRF
token of a session is an HMAC of its token: nothing more to store, and useless
without the cookie. The sign-in form, before any session, carries a nonce
that must match a second signed cookie of its own.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from automation.config import Settings
from automation.store.models import DashboardSession, DashboardUser
from automation.web.dashboard.accounts import Role, User

SESSION_COOKIE = "automation_session"
LOGIN_COOKIE = "automation_login"
COOKIE_PATH = "/app"
LOGIN_MAX_AGE_S = 3600


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def session_key(settings: Settings) -> bytes:
    """AUTOMATION_SESSION_SECRET, else a key derived from the unsubscribe secret (never the secret itself)."""
    if settings.session_secret is not None:
        return settings.session_secret.get_secret_value().encode()
    base = settings.unsubscribe_secret.get_secret_value().encode()
    return hmac.new(base, b"automation dashboard sessions", hashlib.sha256).digest()


@dataclass(frozen=True)
class Signed:
    user: User
    token: str


class Sessions:
    """Issue, resolve and end sessions; make and check CSRF tokens."""

    def __init__(self, settings: Settings) -> None:
        self.key = session_key(settings)
        self.lifetime = dt.timedelta(hours=settings.session_hours)
        self.secure = settings.public_url.lower().startswith("https://")
        self._cookie = URLSafeTimedSerializer(self.key, salt="dashboard-session")
        self._login = URLSafeTimedSerializer(self.key, salt="dashboard-login")

    # ------------------------------------------------------------ sessions

    def open(self, s: Session, user: User, now: dt.datetime) -> str:
        """A new session for `user`; returns the cookie value."""
        token = secrets.token_urlsafe(32)
        s.add(
            DashboardSession(
                token_hash=_hash(token), user_id=user.id, created_at=now, expires_at=now + self.lifetime
            )
        )
        s.execute(
            delete(DashboardSession).where(
                DashboardSession.user_id == user.id, DashboardSession.expires_at <= now
            )
        )
        return self._cookie.dumps(token)

    def token_of(self, cookie: str | None) -> str | None:
        if not cookie:
            return None
        try:
            token = self._cookie.loads(cookie, max_age=int(self.lifetime.total_seconds()))
        except BadSignature:
            return None
        return token if isinstance(token, str) else None

    def resolve(self, s: Session, cookie: str | None, now: dt.datetime) -> Signed | None:
        """The signed-in user of this cookie at `now`, or None."""
        token = self.token_of(cookie)
        if token is None:
            return None
        row = s.execute(
            select(DashboardUser.id, DashboardUser.email, DashboardUser.role)
            .join(DashboardSession, DashboardSession.user_id == DashboardUser.id)
            .where(DashboardSession.token_hash == _hash(token), DashboardSession.expires_at > now)
        ).first()
        if row is None:
            return None
        return Signed(User(row.id, row.email, Role(row.role)), token)

    def close(self, s: Session, cookie: str | None) -> None:
        token = self.token_of(cookie)
        if token is not None:
            s.execute(delete(DashboardSession).where(DashboardSession.token_hash == _hash(token)))

    # ------------------------------------------------------------ CSRF

    def csrf(self, token: str) -> str:
        return hmac.new(self.key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()

    def csrf_ok(self, token: str, offered: str | None) -> bool:
        return bool(offered) and hmac.compare_digest(self.csrf(token), str(offered))

    def login_nonce(self) -> tuple[str, str]:
        """A nonce for the sign-in form and the signed cookie that vouches for it."""
        nonce = secrets.token_urlsafe(16)
        return nonce, self._login.dumps(nonce)

    def login_nonce_ok(self, cookie: str | None, offered: str | None) -> bool:
        if not cookie or not offered:
            return False
        try:
            nonce = self._login.loads(cookie, max_age=LOGIN_MAX_AGE_S)
        except BadSignature:
            return False
        return isinstance(nonce, str) and hmac.compare_digest(nonce, str(offered))

    def cookie_options(self, max_age: int) -> dict[str, object]:
        return {
            "max_age": max_age,
            "path": COOKIE_PATH,
            "httponly": True,
            "samesite": "lax",
            "secure": self.secure,
        }

    @property
    def max_age_s(self) -> int:
        return int(self.lifetime.total_seconds())
