"""Fixtures shared by the node tests: record builders, direct database access, the CLI,
and ``shared_api``, one node per test module for tests that leave each other alone."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from node.app import create_app
from node.config import Settings
from node.db import make_engine
from tests.conftest import create_node, fresh_postgres_database, issue_tokens, run_kpnet

KPNET = Path(sys.executable).parent / "kpnet"
PG_URL = os.environ.get("KPNET_TEST_DATABASE_URL")


@dataclass
class SharedApi:
    client: TestClient
    tokens: dict[str, str]
    settings: Settings
    db: Engine

    def as_role(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}


@pytest.fixture(scope="module")
def module_postgres_url() -> Iterator[str]:
    """A new empty PostgreSQL database kept for one test module."""
    if not PG_URL:
        pytest.skip("KPNET_TEST_DATABASE_URL is not set")
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared_api(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedApi]:
    """Like ``api``, but one node per module and database: for tests that make their own
    objects and do not count what others made."""
    url = request.getfixturevalue("module_postgres_url") if request.param == "postgres" else None
    settings = create_node(tmp_path_factory.mktemp("shared") / "node", database_url=url)
    tokens = issue_tokens(settings)
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with TestClient(create_app(settings)) as client:
            yield SharedApi(client, tokens, settings, engine)
    finally:
        engine.dispose()


def licensee_body(number: str = "CM-BA-001", **fields: Any) -> dict[str, Any]:
    return {
        "licence_number": number,
        "licence_type": "buying_house",
        "legal_name": "Comptoir Étoile SARL",
        **fields,
    }


def subject_body(**fields: Any) -> dict[str, Any]:
    return {
        "kind": "person",
        "names": ["Jean-Pierre Mbéki"],
        "reason_category": "smuggling",
        **fields,
    }


@pytest.fixture
def make_licensee(api: Any) -> Callable[..., dict[str, Any]]:
    """Create a licensee as the analyst; return the API's answer."""

    def make(number: str = "CM-BA-001", **fields: Any) -> dict[str, Any]:
        response = api.client.post(
            "/api/v1/licensees",
            json=licensee_body(number, **fields),
            headers=api.as_role("analyst"),
        )
        assert response.status_code == 201, response.text
        return response.json()

    return make


@pytest.fixture
def make_subject(api: Any) -> Callable[..., dict[str, Any]]:
    """Create a subject as the analyst; return the API's answer."""

    def make(**fields: Any) -> dict[str, Any]:
        response = api.client.post(
            "/api/v1/subjects", json=subject_body(**fields), headers=api.as_role("analyst")
        )
        assert response.status_code == 201, response.text
        return response.json()

    return make


@pytest.fixture
def db(settings: Settings) -> Iterator[Engine]:
    """A separate engine on the node's database, to look at (or tamper with) rows."""
    engine = make_engine(settings.sqlalchemy_url)
    try:
        yield engine
    finally:
        engine.dispose()


WRITTEN_TABLES = (
    "licensees",
    "subjects",
    "record_changes",
    "licence_status_changes",
    "audit_log",
    "api_tokens",
)


def table_counts(engine: Engine) -> dict[str, int]:
    """How many rows each table that a write touches holds now."""
    counts = ", ".join(f"(SELECT count(*) FROM {table})" for table in WRITTEN_TABLES)
    with engine.connect() as connection:
        row = connection.execute(text(f"SELECT {counts}")).one()
    return dict(zip(WRITTEN_TABLES, row, strict=True))


@pytest.fixture
def row_counts(db: Engine) -> Callable[[], dict[str, int]]:
    return lambda: table_counts(db)


def init_args(data_dir: Path, node_id: str = "CM") -> list[str | Path]:
    """The arguments of `kpnet init` for a node in ``data_dir``."""
    return [
        "init",
        "--data-dir",
        data_dir,
        "--node-id",
        node_id,
        "--name",
        "Brigade minière de Bertoua",
        "--url",
        "https://kpnet.example.cm",
    ]


def clean_env(**extra: str) -> dict[str, str | None]:
    """``cli_env`` as changes to this process's environment (None removes a variable)."""
    removed: dict[str, str | None] = {k: None for k in os.environ if k.startswith("KPNET_")}
    return {**removed, **extra}


def cli_env(**extra: str) -> dict[str, str]:
    """The environment without any KPNET_* setting of the developer's, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPNET_")}
    env.update(extra)
    return env


@pytest.fixture(scope="session")
def kpnet() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run a ``kpnet`` command in this process (``run_kpnet``), in an environment
    without the developer's KPNET_* settings; ``env`` entries are added to it."""

    def run(
        *args: str | Path,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return run_kpnet(*args, env=clean_env(**(env or {})))

    return run


@pytest.fixture(scope="session")
def kpnet_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the installed ``kpnet`` command as a process; ``env`` entries are added to
    a clean environment."""

    def run(
        *args: str | Path,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(KPNET), *map(str, args)],
            capture_output=True,
            text=True,
            timeout=120,
            env=cli_env(**(env or {})),
            check=False,
        )

    return run


@pytest.fixture
def shared_counts(shared_api: SharedApi) -> Callable[[], dict[str, int]]:
    return lambda: table_counts(shared_api.db)


@pytest.fixture(scope="session")
def user_mistake() -> Callable[..., str]:
    """Check a ``kpnet`` run failed as a user's mistake should: the exit status, one
    line on stderr, no traceback. Returns the line."""

    def check(result: subprocess.CompletedProcess[str], status: int = 1) -> str:
        assert result.returncode == status, (result.stdout, result.stderr)
        assert "Traceback" not in result.stderr
        message = result.stderr.strip()
        assert len(message.splitlines()) == 1, message
        return message

    return check
