"""``kpnet restore``: recreating a node (data directory, keys, database) from an archive
that ``backup_check`` has read and unlocked."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tomllib
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError
from sqlalchemy import (
    Engine,
    Integer,
    MetaData,
    Table,
    delete,
    func,
    insert,
    inspect,
    select,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from ..config import CONFIG_FILE, Settings, write_config
from ..db import make_engine, upgrade
from ..db.migrate import is_known_revision
from ..keystore import (
    load_card,
    load_identity,
    write_card,
    write_key_files,
)
from .backup import (
    CONFIG_MEMBER,
    ROWS_PER_CHUNK,
    BackupError,
    Passphrase,
    Progress,
    RestoreReport,
    decode_value,
    fresh_start,
    no_progress,
    record_audit,
    sqlite_file,
)
from .backup_check import (
    Archive,
    archive_members,
    damaged,
    open_keys,
    open_small,
    read_archive,
    readable,
    unlock,
)
from .backup_crypto import (
    Undecryptable,
    unsealed_reader,
)
from .bulk_insert import roomy_page_cache

# -- restore ------------------------------------------------------------------------------


def _target(
    archive: Archive, config: bytes, data_dir: Path, database_url: str | None
) -> tuple[Settings, dict[str, Any] | None]:
    """The restored node's settings, and the config to write if it is not the archive's
    (``config``, decrypted)."""
    try:
        values = tomllib.loads(config.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BackupError(f"config.toml in {archive.path} is not valid TOML: {exc}") from None
    if values.get("node_id") != archive.node_id:
        raise BackupError(f"config.toml in {archive.path} is not node {archive.node_id}'s")
    rewrite = False
    configured = values.get("database_url")
    if database_url is not None:
        values["database_url"], rewrite = database_url, True
        overriding = os.environ.get("KPNET_DATABASE_URL")
        if overriding and overriding != database_url:
            raise BackupError(
                "KPNET_DATABASE_URL is set and would override --database-url; "
                "unset it or restore into that database"
            )
    elif isinstance(configured, str) and make_url(configured).get_backend_name() == "sqlite":
        # A SQLite file elsewhere belongs to another data directory; the restored node
        # gets its own in the new one.
        del values["database_url"]
        rewrite = True
    # Environment variables win over config.toml, as when the node runs.
    from_file = {k: v for k, v in values.items() if f"KPNET_{k.upper()}" not in os.environ}
    try:
        settings = Settings(data_dir=data_dir, **from_file)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise BackupError(
            f"the restored configuration is not valid: {where}: {first['msg']}"
        ) from None
    return settings, (values if rewrite else None)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _check_empty_directory(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty; restore into a new or empty directory")


def _check_empty_database(url: str) -> bool:
    """Refuse a database that holds anything; return whether it existed (it does unless
    it is a SQLite file still to be made)."""
    path = sqlite_file(url)
    if path is not None and not path.exists():
        return False
    engine = make_engine(url)
    try:
        names = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if names:
        raise BackupError(
            f"database {_shown(url)} is not empty ({len(names)} tables); "
            "restore needs an empty database"
        )
    return True


def restore_archive(
    archive_path: Path,
    data_dir: Path,
    *,
    passphrase: Passphrase,
    now: datetime,
    actor: str,
    database_url: str | None = None,
    progress: Progress | None = None,
) -> RestoreReport:
    """Restore a node from an archive into ``data_dir`` (new or empty) and an empty
    database: ``database_url``, else the archive's configured PostgreSQL database, else
    SQLite in ``data_dir``. ``passphrase`` is called once the archive and the target
    directory are found usable (the database is known once the config is decrypted)."""
    progress = progress or no_progress
    archive = read_archive(archive_path)
    if not is_known_revision(archive.revision):
        raise BackupError(
            f"the database in {archive_path} is at revision {archive.revision}, "
            "which this kpnet does not know; restore it with a newer kpnet"
        )
    _check_empty_directory(data_dir)
    keys = unlock(archive, passphrase())
    config = open_small(archive, CONFIG_MEMBER, archive.sealed_config, keys.data)
    files, identity, card = open_keys(archive, keys)
    settings, new_config = _target(archive, config, data_dir, database_url)
    url = settings.sqlalchemy_url
    database_existed = _check_empty_database(url)

    dir_existed = data_dir.exists()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        rows = _restore_database(
            archive, keys.data, url, database_existed, actor=actor, now=now, progress=progress
        )
        if new_config is None:
            fd = os.open(data_dir / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(config)
        else:
            write_config(data_dir, new_config)
        write_card(settings.card_path, card)
        write_key_files(settings.keys_dir, files)
        restored = load_identity(settings.keys_dir, settings.node_id)
        load_card(settings.card_path, restored)
    except BaseException:
        if dir_existed:
            for child in list(data_dir.iterdir()):
                if child.is_dir():
                    shutil.rmtree(child)
                else:
                    child.unlink()
        else:
            shutil.rmtree(data_dir, ignore_errors=True)
        raise
    return RestoreReport(
        data_dir, identity.node_id, identity.fingerprint, archive.revision, rows, _shown(url)
    )


def _restore_database(
    archive: Archive,
    key: bytes,
    url: str,
    existed: bool,
    *,
    actor: str,
    now: datetime,
    progress: Progress,
) -> dict[str, int]:
    engine = make_engine(url)
    try:
        upgrade(engine, archive.revision)
        with Session(engine) as session, roomy_page_cache(session):
            rows = _load(archive, key, session, progress)
            record_audit(
                session,
                actor,
                "backup.restored",
                now,
                archive.node_id,
                {
                    "archive_created_at": archive.manifest["created_at"],
                    "revision": archive.revision,
                    "rows": sum(rows.values()),
                },
            )
            session.commit()
        return rows
    except BaseException:
        _undo_schema(engine, url, existed)
        raise
    finally:
        engine.dispose()


def _undo_schema(engine: Engine, url: str, existed: bool) -> None:
    """Remove what a failed restore made in the (empty before) database."""
    path = sqlite_file(url)
    engine.dispose()
    if path is not None and not existed:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    metadata = MetaData()
    with engine.begin() as connection:
        metadata.reflect(bind=connection)
        metadata.drop_all(connection)


def _load(archive: Archive, key: bytes, session: Session, progress: Progress) -> dict[str, int]:
    """Insert every row of the archive (read a second time, checked again)."""
    connection = session.connection()
    metadata = MetaData()
    metadata.reflect(bind=connection)
    targets = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
    for table in reversed(targets):  # rows the migrations seeded (the audit chain's head)
        session.execute(delete(table))
    by_member = {t["member"]: t for t in archive.tables}
    expected = {m["name"]: m for m in archive.manifest["members"]}
    total, done = sum(t["rows"] for t in archive.tables), 0
    loaded: dict[str, int] = {}
    progress("load", 0, total)
    with readable(archive.path):
        for info, stream in archive_members(archive.path):
            meta = by_member.get(info.name)
            if meta is not None:
                loaded[meta["name"]] = _load_table(
                    archive,
                    session,
                    metadata,
                    meta,
                    _Hashing(stream),
                    key,
                    expected[info.name],
                    progress,
                    done,
                    total,
                )
                done += loaded[meta["name"]]
    if connection.dialect.name == "postgresql":
        _reset_sequences(session, targets)
    return loaded


class _Hashing:
    """A stream that keeps the size and SHA-256 of what is read from it."""

    def __init__(self, stream: IO[bytes]) -> None:
        self._stream, self._digest, self.size = stream, hashlib.sha256(), 0

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._digest.update(data)
        self.size += len(data)
        return data

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


def _load_table(
    archive: Archive,
    session: Session,
    metadata: MetaData,
    meta: dict[str, Any],
    stream: _Hashing,
    key: bytes,
    member: dict[str, Any],
    progress: Progress,
    done: int,
    total: int,
) -> int:
    """Insert one table's rows, decrypted as they are read; check the member again."""
    table = metadata.tables.get(meta["name"])
    names = list(meta["columns"])
    if table is None or set(names) != set(table.columns.keys()):
        raise BackupError(
            f"table {meta['name']} in the archive does not match the schema "
            f"at revision {archive.revision}"
        )
    kinds = list(meta["columns"].values())
    count, batch = 0, []
    try:
        with unsealed_reader(stream, key, member["name"], archive.chunk_bytes) as lines:
            for line in lines:
                values = json.loads(line)
                batch.append(
                    fresh_start(
                        table.name,
                        {
                            name: decode_value(kind, value)
                            for name, kind, value in zip(names, kinds, values, strict=True)
                        },
                    )
                )
                if len(batch) == ROWS_PER_CHUNK:
                    session.execute(insert(table), batch)
                    count += len(batch)
                    batch = []
                    progress("load", done + count, total)
    except Undecryptable as exc:
        raise damaged(archive.path, f"{member['name']}: {exc}") from None
    if batch:
        session.execute(insert(table), batch)
        count += len(batch)
    if (stream.size, stream.hexdigest(), count) != (member["size"], member["sha256"], meta["rows"]):
        raise damaged(archive.path, f"{member['name']} changed while it was restored")
    progress("load", done + count, total)
    return count


def _reset_sequences(session: Session, tables: list[Table]) -> None:
    """Rows came with their ids: move each serial column's sequence past the largest."""
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, Integer):
                continue
            sequence = session.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar_one()
            if sequence is None:
                continue
            largest = session.execute(select(func.max(column))).scalar_one()
            session.execute(
                text("SELECT setval(:s, :v, :called)"),
                {"s": sequence, "v": largest or 1, "called": largest is not None},
            )
