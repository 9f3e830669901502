"""Fixtures for the web console: a node with one account per role, and a client that
signs in, reads CSRF tokens from pages and posts forms as a browser does."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from node.app import create_app
from node.config import Settings
from node.roles import ROLES
from node.runtime import open_node
from node.services import passwords
from node.services.actors import Actor
from node.services.users import UserAccounts
from tests.conftest import create_node

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(autouse=True)
def cheap_hashing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fast scrypt in-process (the cost is in the hash, so verification still works)."""
    monkeypatch.setattr(passwords, "LOG2_N", 10)


def add_users(settings: Settings, users: dict[str, str], **options: Any) -> None:
    """Create console accounts ``{username: role}`` with ``PASSWORD``."""
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            accounts = UserAccounts(session, Actor("test-setup", "admin"), node.now())
            for username, role in users.items():
                accounts.create(username, role, PASSWORD, **options)
            session.commit()
    finally:
        node.close()


@dataclass
class Clock:
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Console:
    """A browser-like client of one node's console."""

    client: TestClient
    settings: Settings
    clock: Clock

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def csrf_from(self, path: str) -> str:
        page = self.client.get(path)
        assert page.status_code == 200, page.text
        match = CSRF.search(page.text)
        assert match, f"no CSRF token on {path}"
        return match.group(1)

    def sign_in(self, username: str, password: str = PASSWORD, **headers: str) -> httpx.Response:
        self.client.cookies.clear()
        token = self.csrf_from("/console/login")
        return self.client.post(
            "/console/login",
            data={"username": username, "password": password, "csrf_token": token},
            headers=headers,
            follow_redirects=False,
        )

    def as_user(self, username: str) -> Console:
        response = self.sign_in(username)
        assert response.status_code == 303, response.text
        return self

    def post(
        self,
        path: str,
        data: dict[str, Any] | None = None,
        *,
        token_from: str = "/console/account",
        **kwargs: Any,
    ) -> httpx.Response:
        """POST a form with the session's CSRF token (read from a page, as a browser has it)."""
        body = {"csrf_token": self.csrf_from(token_from), **(data or {})}
        return self.client.post(path, data=body, follow_redirects=False, **kwargs)


ROLE_USERS = {f"{role}1": role for role in ROLES}


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Console]:
    """A fresh node (SQLite) with accounts admin1, analyst1, officer1, auditor1."""
    settings = create_node(tmp_path / "node")
    add_users(settings, ROLE_USERS)
    clock = Clock()
    with TestClient(create_app(settings, clock=clock)) as client:
        yield Console(client, settings, clock)


@pytest.fixture(scope="module")
def shared_console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """One node per module, for tests that make their own objects."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(passwords, "LOG2_N", 10)
        settings = create_node(tmp_path_factory.mktemp("console") / "node")
        add_users(settings, ROLE_USERS)
        clock = Clock()
        with TestClient(create_app(settings, clock=clock)) as client:
            yield Console(client, settings, clock)


def visible_text(html: str) -> str:
    """The page's text without tags, scripts or styles (roughly what a reader sees)."""
    html = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


KPNET = Path(sys.executable).parent / "kpnet"


@pytest.fixture(scope="session")
def kpnet_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the ``kpnet`` command without a terminal and without the caller's KPNET_*."""

    def run(*args: str | Path) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KPNET_")}
        return subprocess.run(
            [str(KPNET), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
            stdin=subprocess.DEVNULL,
            check=False,
        )

    return run
