"""Attacks on console accounts, on both databases: a stolen session outliving a password
change, telling unknown or locked names from wrong passwords (by the answer or by its
timing), and guessing the current password on the change form."""

from __future__ import annotations

import re
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from node.app import create_app
from node.db.models import AuditEntry, User
from node.runtime import open_node
from node.services import passwords
from tests.conftest import create_node
from tests.console.conftest import PASSWORD, ROLE_USERS, Clock, Console, add_users, visible_text

NEW_PASSWORD = "a brand new phrase"


@pytest.fixture
def db_console(tmp_path: Path, database_url: str | None) -> Iterator[Console]:
    """A fresh node on SQLite or PostgreSQL with admin1, analyst1, officer1, auditor1."""
    settings = create_node(tmp_path / "node", database_url=database_url)
    add_users(settings, ROLE_USERS)
    clock = Clock()
    with TestClient(create_app(settings, clock=clock)) as client:
        yield Console(client, settings, clock)


@contextmanager
def browser(console: Console, username: str) -> Iterator[Console]:
    """Another browser (its own cookies) signed in as ``username``, on the same running
    app (its lifespan is the fixture's)."""
    client = TestClient(console.client.app)
    try:
        yield Console(client, console.settings, console.clock).as_user(username)
    finally:
        client.close()


def signed_in(console: Console) -> bool:
    response = console.get("/console/account", follow_redirects=False)
    assert response.status_code in (200, 303)
    return response.status_code == 200


def user_row(console: Console, username: str) -> User:
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            return session.execute(select(User).where(User.username == username)).scalar_one()
    finally:
        node.close()


def actions(console: Console, username: str) -> list[tuple[str, Any]]:
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            rows = session.execute(
                select(AuditEntry)
                .where(AuditEntry.target_id == username, AuditEntry.action.startswith("user."))
                .order_by(AuditEntry.seq)
            ).scalars()
            return [(e.action, e.detail.get("reason")) for e in rows]
    finally:
        node.close()


def change_password(console: Console, current: str, new: str = NEW_PASSWORD) -> Any:
    return console.post(
        "/console/account/password",
        {"current_password": current, "new_password": new, "confirm_password": new},
        token_from="/console/account/password",
    )


# -- a password change or reset ends the other sessions --------------------------------


def test_a_password_change_ends_the_users_other_sessions(db_console):
    """The attack: someone holds a copy of the user's session (a shared computer, a
    stolen cookie); the user changes the password; the copy must stop working."""
    with browser(db_console, "officer1") as stolen, browser(db_console, "analyst1") as bystander:
        me = db_console.as_user("officer1")
        assert signed_in(stolen)
        assert change_password(me, PASSWORD).status_code == 303
        assert signed_in(me)  # the session that made the change goes on
        response = stolen.get("/console/alerts", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/console/login?next=/console/alerts"
        assert signed_in(bystander)  # other users are not affected
        assert me.sign_in("officer1", NEW_PASSWORD).status_code == 303


def test_an_admin_reset_ends_all_the_users_sessions(db_console):
    with browser(db_console, "officer1") as first, browser(db_console, "officer1") as second:
        admin = db_console.as_user("admin1")
        officer_id = user_row(db_console, "officer1").id
        reset = admin.post(
            f"/console/users/{officer_id}/password",
            {"password": "reset by the admin", "confirm_password": "reset by the admin"},
        )
        assert reset.status_code == 303
        assert not signed_in(first)
        assert not signed_in(second)
        assert signed_in(admin)


# -- the sign-in answer does not tell unknown, locked and wrong apart --------------------


def lock(console: Console, username: str) -> None:
    for _ in range(5):
        console.sign_in(username, "a wrong guess")
    assert user_row(console, username).locked_until is not None


def answer(console: Console, username: str, password: str) -> tuple[int, str, set[str]]:
    """What the person signing in sees: status, page text (their own input taken out),
    and the cookies set."""
    response = console.sign_in(username, password)
    text = visible_text(response.text).replace(username, "NAME")
    text = re.sub(r'value="[^"]*"', 'value=""', text)
    cookies = {cookie.split("=", 1)[0] for cookie in response.headers.get_list("set-cookie")}
    return response.status_code, text, cookies


def test_unknown_locked_and_wrong_password_get_the_same_answer(db_console):
    lock(db_console, "officer1")
    unknown = answer(db_console, "nobody.here", "a wrong guess")
    wrong = answer(db_console, "analyst1", "a wrong guess")
    locked_wrong = answer(db_console, "officer1", "a wrong guess")
    locked_right = answer(db_console, "officer1", PASSWORD)  # the lock holds even so
    assert unknown == wrong == locked_wrong == locked_right
    assert wrong[0] == 401 and "Wrong user name or password." in wrong[1]
    assert "kpnet_session" not in wrong[2]
    # The audit log still tells them apart, for the node's own auditors.
    assert ("user.sign_in_failure", "locked") in actions(db_console, "officer1")
    assert ("user.sign_in_failure", "unknown_user") in actions(db_console, "nobody.here")


def test_every_refused_sign_in_does_one_scrypt_of_the_same_cost(db_console, monkeypatch):
    """An unknown name or a locked account costs what a wrong password costs: one
    scrypt verification with the parameters of the node's hashes."""
    lock(db_console, "officer1")
    real, calls = passwords._scrypt, []

    def counting(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
        calls.append((log2_n, r, p))
        return real(password, salt, log2_n, r, p)

    monkeypatch.setattr(passwords, "_scrypt", counting)
    stored = user_row(db_console, "analyst1").password_hash.split("$")[1:4]
    cost = tuple(int(part) for part in stored)
    for username in ("nobody.here", "officer1", "analyst1"):
        calls.clear()
        assert db_console.sign_in(username, "a wrong guess").status_code == 401
        assert calls == [cost], username


def test_unknown_locked_and_wrong_password_take_comparable_time(db_console, monkeypatch):
    """Measured, with a cost where scrypt dominates a request (as it does in service)."""
    monkeypatch.setattr(passwords, "LOG2_N", 14)
    add_users(db_console.settings, {"timing.locked": "officer", "timing.wrong": "officer"})
    lock(db_console, "timing.locked")
    times: dict[str, list[float]] = {"nobody.here": [], "timing.locked": [], "timing.wrong": []}
    for _ in range(4):  # four wrong passwords do not lock timing.wrong
        for username, spent in times.items():
            started = time.perf_counter()
            assert db_console.sign_in(username, "a wrong guess").status_code == 401
            spent.append(time.perf_counter() - started)
    medians = {name: statistics.median(spent) for name, spent in times.items()}
    for name in ("nobody.here", "timing.locked"):
        ratio = medians[name] / medians["timing.wrong"]
        assert 0.5 < ratio < 2, (name, medians)


# -- guessing the current password on the change form ----------------------------------


def test_current_password_guesses_are_refused_after_five(db_console):
    """The attack: a stolen session guesses the current password to take the account."""
    me = db_console.as_user("officer1")
    for attempt in range(4):
        response = change_password(me, f"guess number {attempt}")
        assert response.status_code == 422
        assert "Wrong password." in response.text
    fifth = change_password(me, "guess number 5")
    assert fifth.status_code == 429
    assert "Too many wrong passwords" in fifth.text
    # Even the right current password is refused now, and the password is unchanged.
    assert change_password(me, PASSWORD).status_code == 429
    before = user_row(db_console, "officer1").password_hash
    assert passwords.verify_password(PASSWORD, before)
    history = actions(db_console, "officer1")
    assert history.count(("user.password_change_failure", "wrong_password")) == 5
    assert ("user.lockout", None) in history
    assert ("user.password_change_failure", "locked") in history
    # The same lock-out as signing in: it ends after fifteen minutes.
    db_console.clock.advance(minutes=16)
    assert change_password(me, PASSWORD).status_code == 303
    assert me.sign_in("officer1", NEW_PASSWORD).status_code == 303
