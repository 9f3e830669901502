"""Whether the node's database can be written: what readiness reports, and what the
federation endpoint checks before it accepts messages it could not store.

Two checks. The cheap one, for every inbound request: on SQLite, the free space of
the file system holding the database file must be at least ``min_free_bytes`` (a full
disk fails every write with "database or disk is full", while reads still work and a
``SELECT 1`` says all is well). The thorough one, for readiness: a write committed to
the database (``UPDATE alembic_version`` to the value it has), which fails on a full
disk, a read-only file or volume, or a PostgreSQL standby or read-only transaction.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError


def sqlite_file(engine: Engine) -> Path | None:
    """The SQLite database file, or None for another database (or an in-memory one)."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def space_problem(engine: Engine, min_free_bytes: int) -> str | None:
    """``disk_full`` when the SQLite file's file system has less than
    ``min_free_bytes`` free; None when there is room (or the database is not SQLite)."""
    path = sqlite_file(engine)
    if path is None:
        return None
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError:
        return "disk_unreadable"
    return "disk_full" if free < min_free_bytes else None


def write_problem(engine: Engine, min_free_bytes: int) -> str | None:
    """Why the database cannot be written now (``disk_full``, ``read_only``,
    ``write_failed``), or None when a write was just committed."""
    problem = space_problem(engine, min_free_bytes)
    if problem is not None:
        return problem
    path = sqlite_file(engine)
    if path is not None and path.exists() and not os.access(path, os.W_OK):
        return "read_only"
    try:
        with engine.begin() as connection:
            connection.execute(text("UPDATE alembic_version SET version_num = version_num"))
    except SQLAlchemyError as exc:
        message = str(getattr(exc, "orig", None) or exc).lower()
        if "full" in message or "no space" in message:
            return "disk_full"
        if "read-only" in message or "readonly" in message or "read only" in message:
            return "read_only"
        return "write_failed"
    return None
