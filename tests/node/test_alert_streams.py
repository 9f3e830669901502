"""Live alert streams end when what opened them no longer admits them: a revoked or
expired API token, an ended console session, a disabled account, a changed clearance.
All the streams of a node share one reading of each alert per clearance: each still
gets exactly what it may see. The node runs on a real socket (an endless Server-Sent
Events response needs one); alerts "arrive" as the federation receiver delivers them: a
row in the database, then the feed's wake-up."""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from node.app import create_app
from node.config import Settings
from node.db.models import Alert, ApiToken, User
from node.runtime import open_node
from node.services import passwords
from node.services.actors import Actor
from node.services.tokens import TokenService
from node.services.users import UserAccounts
from tests.conftest import create_node, free_port
from tests.console.conftest import Clock

PASSWORD = "correct horse battery"
LOGIN_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
# Long enough that a stream closing "before the next event" cannot be the idle tick.
LONG_TICK = 30.0
SHORT_TICK = 0.3


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passwords, "LOG2_N", 10)


@dataclass
class LiveNode:
    url: str
    settings: Settings
    app: FastAPI
    loop: asyncio.AbstractEventLoop

    def alert_arrives(self, title: str, handling: str = "GREEN") -> None:
        """What the federation receiver does for a new alert: store it, wake streams."""
        node = open_node(self.settings, migrate=False)
        now = datetime.now(UTC)
        try:
            with node.sessions() as session:
                session.add(
                    Alert(
                        alert_uuid=str(uuid.uuid4()),
                        direction="inbound",
                        origin="CF",
                        revision=1,
                        category="seizure",
                        severity="info",
                        title=title,
                        body="",
                        subjects=[],
                        place=None,
                        handling=handling,
                        references=[],
                        issued_at=now,
                        expires_at=None,
                        status="active",
                        created_by="CF",
                        received_at=now,
                        updated_at=now,
                    )
                )
                session.commit()
        finally:
            node.close()
        self.loop.call_soon_threadsafe(self.app.state.alert_feed.notify)

    def change(self, model: type[ApiToken] | type[User], name: str, **values: object) -> None:
        node = open_node(self.settings, migrate=False)
        try:
            with node.sessions() as session:
                column = model.name if model is ApiToken else model.username  # type: ignore[union-attr]
                row = session.execute(select(model).where(column == name)).scalar_one()
                for key, value in values.items():
                    setattr(row, key, value)
                session.commit()
        finally:
            node.close()


@contextmanager
def serve(settings: Settings, clock: Clock | None = None) -> Iterator[LiveNode]:
    app = create_app(settings) if clock is None else create_app(settings, clock=clock)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_until_complete, args=(server.serve(),))
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the node did not start"
        time.sleep(0.05)
    try:
        yield LiveNode(f"http://127.0.0.1:{port}", settings, app, loop)
    finally:
        server.should_exit = True
        thread.join(30)
        loop.close()


def node_with(tmp_path: Path, database_url: str | None, tick: float) -> tuple[Settings, str]:
    """A node with officer1 (console, AMBER) and an officer token; the token's secret."""
    settings = create_node(tmp_path / "node", database_url=database_url)
    settings = settings.model_copy(update={"stream_check_seconds": tick, "sender_enabled": False})
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            actor = Actor("test-setup", "admin")
            _, secret = TokenService(session, actor, node.now()).create(
                name="officer-1", role="officer"
            )
            UserAccounts(session, actor, node.now()).create("officer1", "officer", PASSWORD)
            session.commit()
    finally:
        node.close()
    return settings, secret


@contextmanager
def api_stream(live: LiveNode, secret: str) -> Iterator[Iterator[str]]:
    headers = {"Authorization": f"Bearer {secret}"}
    with (
        httpx.Client(base_url=live.url, headers=headers, timeout=LONG_TICK + 15) as client,
        client.stream("GET", "/api/v1/alerts/stream") as stream,
    ):
        assert stream.status_code == 200, stream.read()
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        yield lines


def more_readers(settings: Settings, **tokens: tuple[str, str]) -> dict[str, str]:
    """Tokens named as given, each ``(role, clearance)``; their secrets by name."""
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            service = TokenService(session, Actor("test-setup", "admin"), node.now())
            secrets = {
                name: service.create(name=name, role=role, clearance=clearance)[1]
                for name, (role, clearance) in tokens.items()
            }
            session.commit()
    finally:
        node.close()
    return secrets


@contextmanager
def console_client(live: LiveNode, username: str = "officer1") -> Iterator[httpx.Client]:
    """A browser signed in as ``username``."""
    with httpx.Client(base_url=live.url, timeout=LONG_TICK + 15) as client:
        page = client.get("/console/login")
        match = LOGIN_TOKEN.search(page.text)
        assert match
        signed_in = client.post(
            "/console/login",
            data={"username": username, "password": PASSWORD, "csrf_token": match.group(1)},
        )
        assert signed_in.status_code == 303, signed_in.text
        yield client


@contextmanager
def console_stream(client: httpx.Client) -> Iterator[Iterator[str]]:
    headers = {"Accept": "text/event-stream"}
    with client.stream("GET", "/console/alerts/stream", headers=headers) as stream:
        assert stream.status_code == 200, stream.read()
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        yield lines


def rest_of(lines: Iterator[str], within: float = 20.0) -> list[str]:
    """Everything the stream sends until it ends; fails unless it ends ``within``
    seconds (or a read waits longer than the client's timeout)."""
    deadline, rest = time.monotonic() + within, []
    for line in lines:
        rest.append(line)
        assert time.monotonic() < deadline, f"the stream is still open: {rest}"
    return rest


def events_in(lines: list[str]) -> list[str]:
    return [line for line in lines if line.startswith("event:")]


def test_stream_delivers_while_its_token_is_valid(tmp_path, database_url):
    settings, secret = node_with(tmp_path, database_url, LONG_TICK)
    with serve(settings) as live, api_stream(live, secret) as lines:
        live.alert_arrives("Saisie à Bangui")
        for line in lines:
            if line.startswith("data:"):
                assert json.loads(line.removeprefix("data:"))["title"] == "Saisie à Bangui"
                break


@pytest.mark.parametrize("change", ["revoked", "expired"])
def test_a_revoked_or_expired_token_gets_no_further_event(tmp_path, database_url, change):
    """The attack: keep a stream open, the token is revoked, alerts keep coming."""
    settings, secret = node_with(tmp_path, database_url, LONG_TICK)
    with serve(settings) as live, api_stream(live, secret) as lines:
        ended = datetime.now(UTC) - timedelta(seconds=1)
        if change == "revoked":
            live.change(ApiToken, "officer-1", revoked_at=ended)
        else:
            live.change(ApiToken, "officer-1", expires_at=ended)
        live.alert_arrives("Après la révocation")
        rest = rest_of(lines)  # well within LONG_TICK: closed at the event, not the tick
    assert events_in(rest) == []


def test_an_idle_stream_ends_within_the_check_interval_of_revocation(tmp_path, database_url):
    settings, secret = node_with(tmp_path, database_url, SHORT_TICK)
    with serve(settings) as live, api_stream(live, secret) as lines:
        live.change(ApiToken, "officer-1", revoked_at=datetime.now(UTC))
        rest = rest_of(lines)  # no alert comes: only the tick can end it
    assert events_in(rest) == []


def test_an_ended_console_session_gets_no_further_event(tmp_path, database_url):
    settings, _ = node_with(tmp_path, database_url, LONG_TICK)
    with serve(settings) as live, console_client(live) as client:
        cookies = dict(client.cookies)
        with console_stream(client) as lines:
            # Signed out from another tab: the server ends the session.
            with httpx.Client(base_url=live.url, cookies=cookies) as other:
                account = other.get("/console/account")
                token = LOGIN_TOKEN.search(account.text)
                assert token
                out = other.post("/console/logout", data={"csrf_token": token.group(1)})
                assert out.status_code == 303
            live.alert_arrives("Après la déconnexion")
            rest = rest_of(lines)
    assert events_in(rest) == []


@pytest.mark.parametrize("change", ["disabled", "role"])
def test_a_disabled_account_or_changed_role_ends_its_console_stream(tmp_path, database_url, change):
    settings, _ = node_with(tmp_path, database_url, SHORT_TICK)
    with serve(settings) as live, console_client(live) as client, console_stream(client) as lines:
        if change == "disabled":
            live.change(User, "officer1", disabled_at=datetime.now(UTC))
        else:
            live.change(User, "officer1", role="auditor")  # auditors do not read alerts
        rest = rest_of(lines)
    assert events_in(rest) == []


def test_an_open_stream_does_not_keep_an_unattended_session_alive(tmp_path, database_url):
    """A browser left on the inbox is not someone using the console: its session still
    ends after 120 minutes without use, and the stream with it."""
    settings, _ = node_with(tmp_path, database_url, SHORT_TICK)
    clock = Clock()
    with (
        serve(settings, clock) as live,
        console_client(live) as client,
        console_stream(client) as lines,
    ):
        clock.advance(minutes=100)
        # Two ticks: the stream has re-checked its session since the clock moved.
        assert [next(lines) for _ in range(4)].count(": keep-alive") == 2
        clock.advance(minutes=100)  # 200 minutes since the session was last used
        rest = rest_of(lines)
    assert events_in(rest) == []


def events_until(lines: Iterator[str], last: str) -> list[tuple[str, str]]:
    """(title, data) of each alert a stream sends, up to and including the one titled
    ``last``: JSON for the API, a table row (``data-title``) for the console."""
    events: list[tuple[str, str]] = []
    data: list[str] = []
    for line in lines:
        if line.startswith("data:"):
            data.append(line.removeprefix("data: "))
            continue
        if line or not data:
            continue
        text, data = "\n".join(data), []  # an empty line ends the event
        row = re.search(r'data-title="([^"]*)"', text)
        events.append((json.loads(text)["title"] if row is None else row[1], text))
        if events[-1][0] == last:
            return events
    raise AssertionError(f"the stream ended before {last!r}: {events}")


def titles_until(lines: Iterator[str], last: str) -> list[str]:
    return [title for title, _ in events_until(lines, last)]


def test_streams_of_each_clearance_get_exactly_what_they_may_see(tmp_path, database_url):
    """One reading per clearance, shared by every stream of it: a GREEN reader never
    gets an AMBER alert, a RED reader gets all, and the console's rows are each in
    their reader's language."""
    settings, amber = node_with(tmp_path, database_url, LONG_TICK)
    secrets = more_readers(
        settings,
        green=("officer", "GREEN"),
        green_too=("officer", "GREEN"),
        red=("analyst", "RED"),
    )
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            accounts = UserAccounts(session, Actor("test-setup", "admin"), node.now())
            accounts.create("officer2", "officer", PASSWORD, language="fr")
            session.commit()
    finally:
        node.close()
    arriving = [("Rouge", "RED"), ("Ambre", "AMBER"), ("Vert", "GREEN"), ("Clair", "CLEAR")]
    with (
        serve(settings) as live,
        api_stream(live, secrets["green"]) as green,
        api_stream(live, secrets["green_too"]) as green_too,
        api_stream(live, amber) as amber_lines,
        api_stream(live, secrets["red"]) as red,
        console_client(live) as english,
        console_client(live, "officer2") as french,
        console_stream(english) as english_rows,
        console_stream(french) as french_rows,
    ):
        for title, handling in arriving:
            live.alert_arrives(title, handling)
        assert titles_until(green, "Clair") == ["Vert", "Clair"]
        assert titles_until(green_too, "Clair") == ["Vert", "Clair"]
        assert titles_until(amber_lines, "Clair") == ["Ambre", "Vert", "Clair"]
        assert titles_until(red, "Clair") == ["Rouge", "Ambre", "Vert", "Clair"]
        english_events = events_until(english_rows, "Clair")
        french_events = events_until(french_rows, "Clair")
    assert [title for title, _ in english_events] == ["Ambre", "Vert", "Clair"]
    assert [title for title, _ in french_events] == ["Ambre", "Vert", "Clair"]
    assert all('data-label="Category"' in row for _, row in english_events)
    assert all('data-label="Catégorie"' in row for _, row in french_events)


def test_a_token_revoked_through_the_api_gets_nothing_more_while_others_do(tmp_path, database_url):
    """Revoked by an admin on this node while its stream is open: the stream ends, and
    the next alert reaches the other reader of the same clearance only."""
    settings, secret = node_with(tmp_path, database_url, LONG_TICK)
    secrets = more_readers(settings, other=("officer", "AMBER"), admin=("admin", "CLEAR"))
    with (
        serve(settings) as live,
        api_stream(live, secret) as revoked,
        api_stream(live, secrets["other"]) as other,
        httpx.Client(
            base_url=live.url, headers={"Authorization": f"Bearer {secrets['admin']}"}
        ) as admin,
    ):
        (token,) = [t for t in admin.get("/api/v1/tokens").json() if t["name"] == "officer-1"]
        assert admin.delete(f"/api/v1/tokens/{token['id']}").status_code == 200
        live.alert_arrives("Après la révocation", "AMBER")
        assert titles_until(other, "Après la révocation") == ["Après la révocation"]
        rest = rest_of(revoked)  # well within LONG_TICK: closed at the event, not the tick
    assert events_in(rest) == []


def test_a_lowered_clearance_ends_the_stream_opened_above_it(tmp_path, database_url):
    """A stream reads at the clearance its token had when it opened: once an admin
    lowers it, the stream ends (a new one opens at the new clearance)."""
    settings, _ = node_with(tmp_path, database_url, LONG_TICK)
    secrets = more_readers(settings, red=("analyst", "RED"))
    with serve(settings) as live, api_stream(live, secrets["red"]) as lines:
        live.change(ApiToken, "red", clearance="GREEN")
        live.alert_arrives("Réservé", "RED")
        rest = rest_of(lines)
    assert events_in(rest) == []
