"""``kpnet restore``: reading an archive and recreating the node from it (the layout
and the order of the checks are described in ``node.services.backup``)."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import os
import shutil
import tarfile
import tomllib
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from nacl.pwhash import argon2id
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

from protocol import NodeCard, NodeIdentity, ProtocolError

from ..config import CONFIG_FILE, Settings, write_config
from ..db import make_engine, upgrade
from ..db.migrate import is_known_revision
from ..keystore import (
    ENCRYPTION_FILE,
    KEY_FILE_NAME,
    SIGNING_FILE,
    KeyFileError,
    check_card,
    load_card,
    load_identity,
    write_card,
    write_key_files,
)
from .backup import (
    CARD_MEMBER,
    CONFIG_MEMBER,
    FORMAT,
    FORMAT_VERSION,
    KEYS_MEMBER,
    KINDS,
    MANIFEST,
    MANIFEST_MAC,
    ROWS_PER_CHUNK,
    SMALL_MEMBER_BYTES,
    TABLE_MEMBER,
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
from .backup_crypto import (
    CIPHER,
    COMPRESSION,
    KDF_MAX_MEMLIMIT,
    KDF_MAX_OPSLIMIT,
    MAX_CHUNK_BYTES,
    MIN_CHUNK_BYTES,
    Keys,
    Undecryptable,
    derive_keys,
    manifest_mac,
    unsealed_reader,
)
from .bulk_insert import roomy_page_cache

# -- reading an archive -------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    """An archive whose members all matched its manifest (not yet authenticated: that
    needs the passphrase). Config and keys are as stored: encrypted."""

    path: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    mac: str
    sealed_config: bytes
    card: bytes
    sealed_keys: bytes

    @property
    def node_id(self) -> str:
        return str(self.manifest["node_id"])

    @property
    def revision(self) -> str:
        return str(self.manifest["database"]["alembic_revision"])

    @property
    def tables(self) -> list[dict[str, Any]]:
        return list(self.manifest["database"]["tables"])

    @property
    def chunk_bytes(self) -> int:
        return int(self.manifest["encryption"]["chunk_bytes"])


def _damaged(archive: Path, why: str) -> BackupError:
    return BackupError(f"{archive} is damaged or was altered ({why}); nothing was written")


# What reading a truncated or garbled archive raises (the stream and the member's
# content are read lazily: callers wrap their whole reading loop in ``_readable``).
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


@contextmanager
def _readable(archive: Path) -> Iterator[None]:
    try:
        yield
    except _UNREADABLE as exc:
        raise _damaged(archive, f"it cannot be read to the end: {exc}") from None


def _members(archive: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """The archive's members in order, each with a stream of its content."""
    with tarfile.open(archive, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                raise _damaged(archive, f"{info.name!r} is not a file")
            stream = tar.extractfile(info)
            assert stream is not None
            yield info, stream


def _read_small(archive: Path, info: tarfile.TarInfo, stream: IO[bytes]) -> bytes:
    if info.size > SMALL_MEMBER_BYTES:
        raise _damaged(archive, f"{info.name} is too large")
    return stream.read()


def _check_manifest(archive: Path, manifest: Any) -> None:
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupError(f"{archive} is not a kpnet backup")
    found = manifest.get("format_version")
    if isinstance(found, int) and 1 <= found < FORMAT_VERSION:
        made_by = manifest.get("kpnet_version", "?")
        raise BackupError(
            f"{archive} is in backup format {found} (made by kpnet {made_by}, "
            "database not encrypted), which this kpnet no longer restores (it "
            f"reads format {FORMAT_VERSION}): restore it with a kpnet that reads "
            f"format {found}, then back up again"
        )
    if found != FORMAT_VERSION:
        raise BackupError(
            f"{archive} is in backup format {found!r}, which this kpnet does not "
            f"know (it reads format {FORMAT_VERSION}); restore it with a newer "
            "kpnet"
        )

    def checks() -> Iterator[bool]:
        members = manifest["members"]
        names = [m["name"] for m in members]
        yield all(isinstance(m["size"], int) and isinstance(m["sha256"], str) for m in members)
        yield len(set(names)) == len(names)
        yield isinstance(manifest["node_id"], str) and isinstance(manifest["fingerprint"], str)
        database = manifest["database"]
        yield isinstance(database["alembic_revision"], str)
        for table in database["tables"]:
            yield isinstance(table["name"], str) and isinstance(table["rows"], int)
            yield table["member"] == TABLE_MEMBER.format(table["name"])
            yield all(kind in KINDS for kind in table["columns"].values())
        yield set(names) == (
            {CONFIG_MEMBER, CARD_MEMBER, KEYS_MEMBER}
            | {table["member"] for table in database["tables"]}
        )
        encryption = manifest["encryption"]
        yield encryption["kdf"] == "argon2id" and encryption["cipher"] == CIPHER
        yield encryption["compression"] == COMPRESSION
        yield encryption["clear_members"] == [CARD_MEMBER]
        yield isinstance(encryption["opslimit"], int) and isinstance(encryption["memlimit"], int)
        yield len(base64.b64decode(encryption["salt"], validate=True)) == argon2id.SALTBYTES
        yield isinstance(encryption["passphrase_check"], str)
        chunk_bytes = encryption["chunk_bytes"]
        yield isinstance(chunk_bytes, int) and MIN_CHUNK_BYTES <= chunk_bytes <= MAX_CHUNK_BYTES

    try:
        well_formed = all(checks())
    except (KeyError, TypeError, ValueError, AttributeError):
        well_formed = False
    if not well_formed:
        raise BackupError(f"{archive} has a malformed manifest")


def _hash(stream: IO[bytes]) -> tuple[int, str]:
    digest, size = hashlib.sha256(), 0
    for block in iter(lambda: stream.read(1 << 20), b""):
        digest.update(block)
        size += len(block)
    return size, digest.hexdigest()


def read_archive(archive: Path) -> Archive:
    """Read the whole archive and check every member against the manifest."""
    if not archive.is_file():
        raise BackupError(f"no archive at {archive}")
    with _readable(archive):
        return _read_archive(archive)


def _read_archive(archive: Path) -> Archive:
    members = _members(archive)
    first = next(members, None)
    if first is None or first[0].name != MANIFEST:
        raise BackupError(f"{archive} is not a kpnet backup (it does not start with a manifest)")
    manifest_bytes = _read_small(archive, *first)
    try:
        manifest = json.loads(manifest_bytes)
    except ValueError:
        raise BackupError(f"{archive} has a malformed manifest") from None
    _check_manifest(archive, manifest)
    second = next(members, None)
    if second is None or second[0].name != MANIFEST_MAC:
        raise _damaged(archive, f"{MANIFEST_MAC} is missing")
    mac = _read_small(archive, *second).decode("ascii", "replace").strip()
    expected = list(manifest["members"])
    small: dict[str, bytes] = {}
    seen = 0
    for index, (info, stream) in enumerate(members):
        if index >= len(expected) or info.name != expected[index]["name"]:
            raise _damaged(archive, f"unexpected member {info.name!r}")
        seen = index + 1
        if info.name in (CONFIG_MEMBER, CARD_MEMBER, KEYS_MEMBER):
            data = _read_small(archive, info, stream)
            small[info.name] = data
            size, sha256 = len(data), hashlib.sha256(data).hexdigest()
        else:
            size, sha256 = _hash(stream)
        if size != expected[index]["size"] or sha256 != expected[index]["sha256"]:
            raise _damaged(archive, f"{info.name} does not match its checksum in the manifest")
    if seen != len(expected):
        raise _damaged(archive, f"it ends before {expected[seen]['name']}")
    return Archive(
        archive,
        manifest,
        manifest_bytes,
        mac,
        small[CONFIG_MEMBER],
        small[CARD_MEMBER],
        small[KEYS_MEMBER],
    )


def _unlock(archive: Archive, passphrase: str) -> Keys:
    """The keys, once the passphrase is found right and the manifest authentic."""
    params = archive.manifest["encryption"]
    opslimit, memlimit = params["opslimit"], params["memlimit"]
    if not (
        argon2id.OPSLIMIT_MIN <= opslimit <= KDF_MAX_OPSLIMIT
        and argon2id.MEMLIMIT_MIN <= memlimit <= KDF_MAX_MEMLIMIT
    ):
        raise BackupError(f"{archive.path} asks for key-derivation limits kpnet does not use")
    keys = derive_keys(passphrase, base64.b64decode(params["salt"]), opslimit, memlimit)
    if not hmac.compare_digest(keys.check, params["passphrase_check"]):
        raise BackupError(
            f"wrong passphrase: {archive.path} does not open with it; nothing was written"
        )
    if not hmac.compare_digest(manifest_mac(keys.mac, archive.manifest_bytes), archive.mac):
        raise BackupError(
            f"{archive.path} was altered: its manifest does not match its "
            "authentication code; nothing was written"
        )
    return keys


def _open_small(archive: Archive, name: str, sealed: bytes, key: bytes) -> bytes:
    try:
        with unsealed_reader(io.BytesIO(sealed), key, name, archive.chunk_bytes) as plain:
            return plain.read()
    except Undecryptable as exc:
        raise _damaged(archive.path, f"{name}: {exc}") from None


def _open_keys(archive: Archive, keys: Keys) -> tuple[dict[str, bytes], NodeIdentity, NodeCard]:
    plain = _open_small(archive, KEYS_MEMBER, archive.sealed_keys, keys.keys)
    try:
        sealed = json.loads(plain)
        files = {name: base64.b64decode(data) for name, data in sealed["files"].items()}
        if not all(KEY_FILE_NAME.fullmatch(n) and len(k) == 32 for n, k in files.items()):
            raise ValueError("unexpected key files")
        retired = tuple(files[n] for n in sorted(files) if n.endswith(".retired"))
        identity = NodeIdentity(
            archive.node_id, files[SIGNING_FILE], files[ENCRYPTION_FILE], retired
        )
        card = check_card(archive.card, identity, where=f"the card in {archive.path}")
    except (KeyError, TypeError, ValueError, KeyFileError, ProtocolError) as exc:
        raise BackupError(f"the keys or card in {archive.path} are not usable: {exc}") from None
    if (
        sealed.get("node_id") != archive.node_id
        or identity.fingerprint != archive.manifest["fingerprint"]
    ):
        raise BackupError(f"the keys in {archive.path} are not those of node {archive.node_id}")
    return files, identity, card


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
    keys = _unlock(archive, passphrase())
    config = _open_small(archive, CONFIG_MEMBER, archive.sealed_config, keys.data)
    files, identity, card = _open_keys(archive, keys)
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
    with _readable(archive.path):
        for info, stream in _members(archive.path):
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
        raise _damaged(archive.path, f"{member['name']}: {exc}") from None
    if batch:
        session.execute(insert(table), batch)
        count += len(batch)
    if (stream.size, stream.hexdigest(), count) != (member["size"], member["sha256"], meta["rows"]):
        raise _damaged(archive.path, f"{member['name']} changed while it was restored")
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
