"""Server-side sessions of the web console.

The browser's cookie holds a random secret; the table holds its SHA-256, the user,
the session's CSRF token and its times. A session ends when it has not been used for
``idle``, when it is older than ``max_age``, when the user signs out, or when the
account is disabled, its password reset (every session) or changed by the user (every
other session); ``UserAccounts`` deletes the rows.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import ConsoleSession, User

TOUCH_GRANULARITY = timedelta(minutes=1)
IN_CHUNK = 500  # sessions looked up per query (well under any database's bound parameters)


def session_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class OpenSession:
    """What a request needs to know about its signed-in user."""

    session_id: int
    user_id: int
    username: str
    role: str
    language: str | None
    csrf_token: str
    must_change_password: bool
    clearance: str = "CLEAR"


class ConsoleSessions:
    def __init__(
        self, session: Session, now: datetime, *, idle: timedelta, max_age: timedelta
    ) -> None:
        self.session, self.now, self.idle, self.max_age = session, now, idle, max_age

    @classmethod
    def configured(cls, session: Session, now: datetime, settings: Settings) -> ConsoleSessions:
        """Sessions ending as the node's settings say."""
        return cls(
            session,
            now,
            idle=timedelta(minutes=settings.console_session_idle_minutes),
            max_age=timedelta(hours=settings.console_session_max_hours),
        )

    def open(self, user: User) -> str:
        """Start a session for ``user``; return the cookie secret (stored hashed)."""
        secret = secrets.token_urlsafe(32)
        self.session.add(
            ConsoleSession(
                token_hash=session_digest(secret),
                user_id=user.id,
                csrf_token=secrets.token_urlsafe(32),
                created_at=self.now,
                last_seen_at=self.now,
                expires_at=self.now + self.max_age,
            )
        )
        self._purge_expired()
        self.session.flush()
        return secret

    def resolve(self, secret: str | None) -> OpenSession | None:
        """The live session named by a cookie secret (touched), or None."""
        if not secret or len(secret) > 100:
            return None
        row = self.session.execute(
            select(ConsoleSession).where(ConsoleSession.token_hash == session_digest(secret))
        ).scalar_one_or_none()
        if row is None:
            return None
        user = self.session.get(User, row.user_id)
        if user is None or self._ended(row, user):
            self.session.delete(row)
            self.session.flush()
            return None
        if self.now - row.last_seen_at > TOUCH_GRANULARITY:
            row.last_seen_at = self.now
            self.session.flush()
        return _open_session(row, user)

    def recheck_many(self, digests: Iterable[str]) -> dict[str, OpenSession]:
        """Of many sessions, named by the digest of their cookie's secret
        (``session_digest``), those still live, each with it: what ``resolve`` decides,
        in one query for all, without counting as use (open streams re-checking their
        sessions do not keep unattended sessions alive). Ended sessions' rows are left
        to the purge: this only reads."""
        wanted, live = list(dict.fromkeys(digests)), dict[str, OpenSession]()
        query = (
            select(ConsoleSession, User)
            .join(User, User.id == ConsoleSession.user_id)
            .where(ConsoleSession.token_hash.in_(bindparam("digests", expanding=True)))
        )
        for start in range(0, len(wanted), IN_CHUNK):
            rows = self.session.execute(query, {"digests": wanted[start : start + IN_CHUNK]})
            live.update(
                (row.token_hash, _open_session(row, user))
                for row, user in rows
                if not self._ended(row, user)
            )
        return live

    def _ended(self, row: ConsoleSession, user: User) -> bool:
        return (
            user.disabled_at is not None
            or row.expires_at <= self.now
            or self.now - row.last_seen_at > self.idle
        )

    def close(self, secret: str | None) -> None:
        if secret:
            self.session.execute(
                delete(ConsoleSession).where(ConsoleSession.token_hash == session_digest(secret))
            )

    def _purge_expired(self) -> None:
        self.session.execute(
            delete(ConsoleSession).where(
                (ConsoleSession.expires_at <= self.now)
                | (ConsoleSession.last_seen_at < self.now - self.idle)
            )
        )


def _open_session(row: ConsoleSession, user: User) -> OpenSession:
    return OpenSession(
        row.id,
        user.id,
        user.username,
        user.role,
        user.language,
        row.csrf_token,
        user.must_change_password,
        user.clearance,
    )
