"""Personal accounts of the web console: creation and changes by admins, sign-in with
lock-out, own password and language. Every change and every sign-in (or failure) is
audited; callers commit.

A user has one role, the same four roles API tokens have. Five failed sign-ins in a
row lock the account for fifteen minutes, even against the right password; wrong
current passwords on the password-change form count towards the same lock-out (a
stolen session cannot guess its way to the password). Every sign-in refusal costs one
scrypt verification, whether the name is unknown, locked or has a wrong password, so
neither the answer nor its timing tells them apart. Changing one's password ends one's
other sessions; an admin's reset (or disabling) ends them all.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from ..db.models import ConsoleSession, User
from ..roles import ROLES, default_clearance
from .actors import Actor
from .audit import AuditLog
from .clearance import check_clearance
from .errors import Conflict, InvalidInput, NotFound
from .passwords import burn_time, check_strength, hash_password, needs_rehash, verify_password

LANGUAGES = ("en", "fr")
MAX_FAILED_ATTEMPTS = 5
LOCKOUT = timedelta(minutes=15)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")


def check_username(username: str) -> str:
    username = username.strip().lower()
    if not USERNAME.match(username):
        raise InvalidInput("username", "2 to 64 characters: letters, digits, '.', '_' or '-'")
    return username


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InvalidInput("role", f"one of {', '.join(ROLES)}")
    return role


def check_language(language: str | None) -> str | None:
    if language in (None, ""):
        return None
    if language not in LANGUAGES:
        raise InvalidInput("language", f"one of {', '.join(LANGUAGES)}")
    return language


def is_locked(user: User, now: datetime) -> bool:
    return user.locked_until is not None and user.locked_until > now


class TooManyAttempts(InvalidInput):
    """The account is locked after too many wrong passwords; ``until`` says how long."""

    def __init__(self, until: datetime) -> None:
        super().__init__("current_password", "too many wrong passwords")
        self.until = until


@dataclass(frozen=True)
class SignInResult:
    """``outcome`` is ``ok``, ``invalid`` (unknown user or wrong password), ``locked``
    or ``disabled`` (the right password of a disabled account); ``user`` is set only
    when it is ``ok``. Surfaces answer ``invalid`` and ``locked`` alike."""

    outcome: str
    user: User | None = None


class UserAccounts:
    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session, self.actor, self.now = session, actor, now
        self.audit = AuditLog(session)

    def _log(self, action: str, user: User, **detail: Any) -> None:
        self.audit.record(
            str(self.actor),
            f"user.{action}",
            now=self.now,
            target_kind="user",
            target_id=user.username,
            detail=detail,
        )

    # -- reading ---------------------------------------------------------------------
    def all(self) -> list[User]:
        return list(self.session.execute(select(User).order_by(User.username)).scalars())

    def get(self, user_id: int) -> User:
        user = self.session.get(User, user_id)
        if user is None:
            raise NotFound(f"no user {user_id}")
        return user

    def find(self, username: str) -> User | None:
        return self.session.execute(
            select(User).where(User.username == username.strip().lower())
        ).scalar_one_or_none()

    # -- admins' changes ---------------------------------------------------------------
    def create(
        self,
        username: str,
        role: str,
        password: str,
        *,
        full_name: str | None = None,
        language: str | None = None,
        must_change_password: bool = False,
        clearance: str | None = None,
    ) -> User:
        username = check_username(username)
        check_role(role)
        clearance = check_clearance(clearance) if clearance else default_clearance(role)
        language = check_language(language)
        check_strength(password, username=username)
        if self.find(username) is not None:
            raise Conflict(f"user {username} already exists")
        user = User(
            username=username,
            full_name=(full_name or "").strip()[:200] or None,
            role=role,
            clearance=clearance,
            password_hash=hash_password(password),
            must_change_password=must_change_password,
            language=language,
            failed_attempts=0,
            created_at=self.now,
            created_by=self.actor.name,
            password_changed_at=self.now,
        )
        self.session.add(user)
        self.session.flush()
        self._log("create", user, role=role, clearance=clearance)
        return user

    def set_clearance(self, user_id: int, clearance: str) -> User:
        """Raise or lower the highest TLP level a user may read."""
        user = self.get(user_id)
        clearance = check_clearance(clearance)
        if user.clearance != clearance:
            previous, user.clearance = user.clearance, clearance
            self._log("clearance", user, previous=previous, clearance=clearance)
        return user

    def set_role(self, user_id: int, role: str) -> User:
        user = self.get(user_id)
        check_role(role)
        if user.role != role:
            if user.role == "admin":
                self._keep_an_admin(user)
            previous, user.role = user.role, role
            self._log("role", user, previous=previous, role=role)
        return user

    def set_full_name(self, user_id: int, full_name: str | None) -> User:
        user = self.get(user_id)
        value = (full_name or "").strip()[:200] or None
        if user.full_name != value:
            user.full_name = value
            self._log("rename", user)
        return user

    def disable(self, user_id: int) -> User:
        user = self.get(user_id)
        if user.username == self.actor.name:
            raise InvalidInput("user", "you cannot disable your own account")
        if user.disabled_at is None:
            if user.role == "admin":
                self._keep_an_admin(user)
            user.disabled_at = self.now
            self._end_sessions(user)
            self._log("disable", user)
        return user

    def enable(self, user_id: int) -> User:
        user = self.get(user_id)
        if user.disabled_at is not None:
            user.disabled_at = None
            user.failed_attempts, user.locked_until = 0, None
            self._log("enable", user)
        return user

    def reset_password(self, user_id: int, password: str) -> User:
        """A temporary password, to be changed at the next sign-in; clears a lock-out
        and signs the user out everywhere."""
        user = self.get(user_id)
        check_strength(password, username=user.username)
        user.password_hash = hash_password(password)
        user.password_changed_at = self.now
        user.must_change_password = True
        user.failed_attempts, user.locked_until = 0, None
        self._end_sessions(user)
        self._log("password_reset", user)
        return user

    def unlock(self, user_id: int) -> User:
        user = self.get(user_id)
        if user.failed_attempts or user.locked_until:
            user.failed_attempts, user.locked_until = 0, None
            self._log("unlock", user)
        return user

    # -- a user's own account ----------------------------------------------------------
    def change_own_password(
        self, user: User, current: str, new: str, *, session_id: int | None = None
    ) -> None:
        """Check the current password (failures counted as sign-ins' are; the caller
        commits them even when this raises), set the new one and end the user's other
        sessions (all but ``session_id``, the one making the change)."""
        if is_locked(user, self.now):
            burn_time(current)
            self._log("password_change_failure", user, reason="locked")
            assert user.locked_until is not None
            raise TooManyAttempts(user.locked_until)
        if not verify_password(current, user.password_hash):
            if self._count_failure(user, "user.password_change_failure"):
                assert user.locked_until is not None
                raise TooManyAttempts(user.locked_until)
            raise InvalidInput("current_password", "wrong password")
        if current == new:
            raise InvalidInput("new_password", "choose a password different from the current one")
        check_strength(new, username=user.username)
        user.password_hash = hash_password(new)
        user.password_changed_at = self.now
        user.must_change_password = False
        user.failed_attempts, user.locked_until = 0, None
        self._end_sessions(user, keep=session_id)
        self._log("password_change", user)

    def set_language(self, user: User, language: str | None) -> None:
        user.language = check_language(language)

    # -- signing in ------------------------------------------------------------------
    def sign_in(self, username: str, password: str) -> SignInResult:
        """Check a password, counting failures; audited under the name that was given."""
        name = username.strip().lower()[:64]
        user = self.find(name) if name else None
        if user is None:
            burn_time(password)
            self._sign_in_log(name or "-", "user.sign_in_failure", reason="unknown_user")
            return SignInResult("invalid")
        if is_locked(user, self.now):
            burn_time(password)
            self._sign_in_log(user.username, "user.sign_in_failure", reason="locked")
            return SignInResult("locked")
        if not verify_password(password, user.password_hash):
            self._count_failure(user, "user.sign_in_failure")
            return SignInResult("invalid")
        if user.disabled_at is not None:
            self._sign_in_log(user.username, "user.sign_in_failure", reason="disabled")
            return SignInResult("disabled")
        user.failed_attempts, user.locked_until = 0, None
        user.last_sign_in_at = self.now
        if needs_rehash(user.password_hash):
            user.password_hash = hash_password(password)
        self._sign_in_log(user.username, "user.sign_in", role=user.role)
        return SignInResult("ok", user)

    def _sign_in_log(self, username: str, action: str, **detail: Any) -> None:
        self.audit.record(
            username, action, now=self.now, target_kind="user", target_id=username, detail=detail
        )

    # -- helpers ---------------------------------------------------------------------
    def _count_failure(self, user: User, action: str) -> bool:
        """Count a wrong password (audited as ``action``); lock the account at the
        limit. Whether this failure locked it."""
        if user.locked_until is not None:  # the lock has expired: start counting afresh
            user.failed_attempts, user.locked_until = 0, None
        user.failed_attempts += 1
        self._sign_in_log(
            user.username, action, reason="wrong_password", attempts=user.failed_attempts
        )
        if user.failed_attempts < MAX_FAILED_ATTEMPTS:
            return False
        user.locked_until = self.now + LOCKOUT
        self._sign_in_log(user.username, "user.lockout", until=user.locked_until.isoformat())
        return True

    def _keep_an_admin(self, leaving: User) -> None:
        others = self.session.execute(
            select(func.count())
            .select_from(User)
            .where(User.role == "admin", User.disabled_at.is_(None), User.id != leaving.id)
        ).scalar_one()
        if others == 0:
            raise InvalidInput("role", "the node must keep at least one active admin")

    def _end_sessions(self, user: User, *, keep: int | None = None) -> None:
        ended = delete(ConsoleSession).where(ConsoleSession.user_id == user.id)
        if keep is not None:
            ended = ended.where(ConsoleSession.id != keep)
        self.session.execute(ended)
