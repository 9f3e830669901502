"""Shared fixtures: real nodes on real databases.

``database_url`` yields a fresh, empty database: a SQLite file, and (when
``KPNET_TEST_DATABASE_URL`` points at a PostgreSQL server) a newly created PostgreSQL
database that is dropped afterwards. Tests using it run on both.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from typer.testing import CliRunner

from node.app import create_app
from node.bootstrap import init_node
from node.cli import main as kpnet_main
from node.config import Settings
from node.roles import ROLES
from node.runtime import open_node
from node.services.actors import Actor
from node.services.endpoint_policy import LOOPBACK_PEERS
from node.services.tokens import TokenService

PG_URL = os.environ.get("KPNET_TEST_DATABASE_URL")


# Modules that spend minutes waiting on emulated slow links or failing peers, with little
# CPU: they run first, so the rest of the suite runs beside them instead of after them.
LONG_WAITS = (
    "test_slow_links_9k",
    "test_slow_links",
    "test_slow_peers",
    "test_faults",
    "test_bench_link",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.stem
        return LONG_WAITS.index(name) if name in LONG_WAITS else len(LONG_WAITS)

    items.sort(key=rank)  # stable: the order within each group stays


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_kpnet(
    *args: str | Path, env: Mapping[str, str | None] | None = None
) -> subprocess.CompletedProcess[str]:
    """``kpnet ARGS`` run in this process, through the installed command's own entry
    point (``node.cli.main``: parsing, one-line errors, exit statuses), its output and
    environment isolated by typer's ``CliRunner``: ``env`` entries are set for the run
    (None removes one). Answers as ``subprocess.run`` would, without starting Python."""
    umask = os.umask(0o077)  # main sets the command's own; this process keeps its own
    os.umask(umask)
    argv, sys.argv = sys.argv, ["kpnet", *map(str, args)]
    status = 0
    try:
        with CliRunner().isolation(env=env) as (out, err, _):
            try:
                kpnet_main()
            except SystemExit as exc:
                status = exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 1
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
            stdout, stderr = out.getvalue(), err.getvalue()
    finally:
        sys.argv = argv
        os.umask(umask)
    return subprocess.CompletedProcess(
        ["kpnet", *map(str, args)], status, stdout.decode(), stderr.decode()
    )


def _postgres_admin_url() -> str:
    assert PG_URL
    return (
        make_url(PG_URL).set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    )


@contextmanager
def fresh_postgres_database() -> Iterator[str]:
    """Create an empty PostgreSQL database on the test server; drop it afterwards."""
    assert PG_URL
    name = f"kpnet_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(_postgres_admin_url(), isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        server = make_url(_postgres_admin_url())
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new empty PostgreSQL database (skipped only when no server is configured)."""
    if not PG_URL:
        pytest.skip("KPNET_TEST_DATABASE_URL is not set")
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str | None]:
    """None (the default SQLite file) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield None
    else:
        yield request.getfixturevalue("postgres_url")


def create_node(
    data_dir: Path, node_id: str = "CM", *, database_url: str | None = None, port: int = 8100
) -> Settings:
    return init_node(
        data_dir,
        node_id=node_id,
        name=f"Test node {node_id}",
        url=f"http://127.0.0.1:{port}",
        now=datetime.now(UTC),
        database_url=database_url,
        # Test nodes reach each other over http on loopback: allowed only by settings.
        options=LOOPBACK_PEERS,
    )


@pytest.fixture
def settings(tmp_path: Path, database_url: str | None) -> Settings:
    return create_node(tmp_path / "node", database_url=database_url)


def issue_tokens(settings: Settings) -> dict[str, str]:
    """One API token per role."""
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            service = TokenService(session, Actor("test", "admin"), node.now())
            secrets = {role: service.create(name=f"{role}-1", role=role)[1] for role in ROLES}
            session.commit()
        return secrets
    finally:
        node.close()


@dataclass
class ApiClient:
    client: TestClient
    tokens: dict[str, str]
    settings: Settings

    def as_role(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture
def api(settings: Settings) -> Iterator[ApiClient]:
    tokens = issue_tokens(settings)
    with TestClient(create_app(settings)) as client:
        yield ApiClient(client, tokens, settings)
