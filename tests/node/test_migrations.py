"""Migrations: an empty database (SQLite or PostgreSQL) reaches the latest revision,
again harmlessly, and the models describe exactly what the migrations built."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from fastapi.testclient import TestClient
from sqlalchemy import Column, Engine, MetaData, String, inspect, text

from node.app import create_app
from node.db import is_up_to_date, make_engine, upgrade
from node.db.migrate import current_revision, head_revision
from node.db.models import Base
from node.runtime import open_node
from node.services.actors import Actor
from node.services.tokens import TokenService


@pytest.fixture
def empty_engine(tmp_path: Path, database_url: str | None) -> Iterator[Engine]:
    """An engine on an empty database: a new SQLite file, or a new PostgreSQL database."""
    engine = make_engine(database_url or f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        yield engine
    finally:
        engine.dispose()


def differences(engine: Engine, metadata: MetaData) -> list[object]:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return compare_metadata(context, metadata)


def test_empty_database_is_upgraded_to_head(empty_engine):
    assert inspect(empty_engine).get_table_names() == []
    assert current_revision(empty_engine) is None
    assert not is_up_to_date(empty_engine)

    upgrade(empty_engine)

    assert is_up_to_date(empty_engine)
    assert current_revision(empty_engine) == head_revision()
    tables = set(inspect(empty_engine).get_table_names())
    assert set(Base.metadata.tables) <= tables
    with empty_engine.connect() as connection:
        head = connection.execute(text("SELECT seq, hash FROM audit_head")).all()
    assert head == [(0, "0" * 64)]


def test_upgrading_twice_is_harmless(empty_engine):
    upgrade(empty_engine)
    with empty_engine.begin() as connection:
        connection.execute(text("UPDATE audit_head SET seq = 7"))
    upgrade(empty_engine)
    assert is_up_to_date(empty_engine)
    with empty_engine.connect() as connection:
        assert connection.execute(text("SELECT seq FROM audit_head")).scalars().all() == [7]


def test_models_match_the_migrations(empty_engine):
    upgrade(empty_engine)
    assert differences(empty_engine, Base.metadata) == []


def test_model_change_without_a_migration_is_noticed(empty_engine):
    """The comparison above can fail: a column added to the models only is reported."""
    upgrade(empty_engine)
    changed = MetaData(naming_convention=Base.metadata.naming_convention)
    for table in Base.metadata.tables.values():
        table.to_metadata(changed)
    changed.tables["subjects"].append_column(Column("eye_colour", String(20)))
    found = differences(empty_engine, changed)
    assert [(d[0], d[3].name) for d in found] == [("add_column", "eye_colour")]


def test_app_works_on_a_freshly_migrated_database(settings):
    # `settings` made the node (init runs the migrations); the app upgrades again on start.
    node = open_node(settings, migrate=False)
    try:
        assert is_up_to_date(node.engine)
        with node.sessions() as session:
            _, secret = TokenService(session, Actor("test", "admin"), node.now()).create(
                name="analyste", role="analyst"
            )
            session.commit()
    finally:
        node.close()
    headers = {"Authorization": f"Bearer {secret}"}
    with TestClient(create_app(settings)) as client:
        created = client.post(
            "/api/v1/subjects",
            headers=headers,
            json={
                "kind": "person",
                "names": ["Ibrahim Ouédraogo"],
                "reason_category": "smuggling",
                "date_of_birth": "1971-06",
            },
        )
        assert created.status_code == 201, created.text
        read = client.get(f"/api/v1/subjects/{created.json()['ref']}", headers=headers)
        assert read.status_code == 200
        assert read.json()["names"] == ["Ibrahim Ouédraogo"]
        assert read.json()["date_of_birth"] == "1971-06"


def test_processes_starting_together_upgrade_one_after_another(tmp_path, database_url):
    """Several node processes started at once on an empty database (replicas of a
    Deployment) must not trip over each other's CREATE TABLEs."""
    from concurrent.futures import ThreadPoolExecutor

    url = database_url or f"sqlite:///{tmp_path / 'shared.db'}"
    engines = [make_engine(url) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(engines)) as pool:
            results = list(pool.map(lambda engine: upgrade(engine), engines))
        assert results == [None] * len(engines)
        assert all(is_up_to_date(engine) for engine in engines)
    finally:
        for engine in engines:
            engine.dispose()


def test_existing_tokens_and_accounts_get_their_roles_clearance(empty_engine):
    """Upgrading a node that already has tokens and accounts gives each its role's
    default clearance; downgrading removes the column again."""
    from alembic import command

    from node.db.migrate import alembic_config

    upgrade(empty_engine, "0007")
    roles = ("admin", "analyst", "officer", "auditor")
    with empty_engine.begin() as connection:
        for n, role in enumerate(roles):
            connection.execute(
                text(
                    "INSERT INTO api_tokens (name, role, token_hash, prefix, created_at,"
                    " created_by) VALUES (:name, :role, :hash, 'kpn_x', :at, 'test')"
                ),
                {"name": role, "role": role, "hash": f"{n:064d}", "at": "2026-12-01 10:00:00"},
            )
            connection.execute(
                text(
                    "INSERT INTO users (username, role, password_hash, must_change_password,"
                    " failed_attempts, created_at, created_by, password_changed_at)"
                    " VALUES (:name, :role, 'x', false, 0, :at, 'test', :at)"
                ),
                {"name": f"{role}1", "role": role, "at": "2026-12-01 10:00:00"},
            )
    upgrade(empty_engine)
    expected = {"admin": "CLEAR", "analyst": "RED", "officer": "AMBER", "auditor": "CLEAR"}
    with empty_engine.connect() as connection:
        for table in ("api_tokens", "users"):
            rows = connection.execute(text(f"SELECT role, clearance FROM {table}")).all()
            assert dict(rows) == expected, table

    config = alembic_config()
    with empty_engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0007")
    assert "clearance" not in {c["name"] for c in inspect(empty_engine).get_columns("users")}


def test_the_head_read_from_the_migration_files_is_alembics():
    from alembic.script import ScriptDirectory

    from node.db.migrate import alembic_config

    assert head_revision() == ScriptDirectory.from_config(alembic_config()).get_current_head()


def test_a_database_one_migration_behind_is_upgraded_to_head(empty_engine):
    from alembic.script import ScriptDirectory

    from node.db.migrate import alembic_config

    previous = ScriptDirectory.from_config(alembic_config()).get_revision(head_revision())
    upgrade(empty_engine, previous.down_revision)
    assert not is_up_to_date(empty_engine)

    upgrade(empty_engine)

    assert current_revision(empty_engine) == head_revision()
