"""Run Alembic migrations programmatically (on start and via ``kpnet db upgrade``).

Alembic takes long to import, and a node that starts on an up-to-date database (nearly
every start) needs none of it: the database's revision (its ``alembic_version`` row) is
compared with the head, read from the migration files' ``revision`` and
``down_revision`` lines, and Alembic is imported only when they differ.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Key of the PostgreSQL advisory lock that serialises concurrent upgrades (several node
# processes starting at once on one database): "kpnet" in ASCII.
UPGRADE_LOCK = 0x6B706E6574

_REVISION = re.compile(r"^revision(?:: str)? = ['\"]([^'\"]+)['\"]", re.MULTILINE)
_DOWN_REVISION = re.compile(
    r"^down_revision(?:: [^=]+)? = (?:None|['\"]([^'\"]+)['\"])", re.MULTILINE
)


def alembic_config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Upgrade the database to ``revision`` in one transaction. Processes upgrading the
    same database at once take turns (SQLite: its write lock; PostgreSQL: an advisory
    lock), and whoever comes second finds the work done. A database already at the
    head is left as it is, without Alembic."""
    if revision == "head" and is_up_to_date(engine):
        return
    from alembic import command

    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": UPGRADE_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def revision_of(connection: Connection) -> str | None:
    """The revision the database on ``connection`` is at; None if it has no schema."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    return connection.execute(text("SELECT version_num FROM alembic_version")).scalar()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return revision_of(connection)


@cache
def head_revision() -> str | None:
    """The latest migration: the one revision no migration file names as its
    ``down_revision`` (Alembic's answer when the files do not read as one chain)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found, parent = _REVISION.search(source), _DOWN_REVISION.search(source)
        if found is None or parent is None:
            return _alembic_head()
        revisions.add(found.group(1))
        if parent.group(1) is not None:
            parents.add(parent.group(1))
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 and parents <= revisions else _alembic_head()


def _alembic_head() -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def is_known_revision(revision: str) -> bool:
    """Whether this version of kpnet has the migration ``revision``."""
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    try:
        return ScriptDirectory.from_config(alembic_config()).get_revision(revision) is not None
    except CommandError:
        return False


def is_up_to_date(engine: Engine) -> bool:
    return current_revision(engine) == head_revision()
