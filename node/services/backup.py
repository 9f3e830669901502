"""A whole node in one archive (``kpnet backup``), and back (``kpnet restore``).

The archive is a tar file in gzip framing, mode 0600, whose members come in this order:

- ``manifest.json``: format version, node id and fingerprint, creation time, the
  database's Alembic revision, every table (name, columns, row count), the encryption
  parameters, and the size and SHA-256 of every member that follows ``manifest.mac``
  (of the bytes stored, that is of the ciphertext for encrypted members);
- ``manifest.mac``: keyed BLAKE2b of ``manifest.json``, so that the manifest cannot be
  rewritten to match altered members;
- ``config.toml.enc``: the data directory's ``config.toml``, encrypted (it may hold a
  database password or the metrics token);
- ``card.json``: the node's signed card, as it is in the data directory (it is public);
- ``keys.enc``: every key file, encrypted;
- ``db/<table>.jsonl.enc``: a logical dump of each table, in foreign-key order, one JSON
  array per row (columns as listed in the manifest), all read in one transaction: a
  consistent snapshot on SQLite and PostgreSQL alike. It loads into either. Encrypted.

Only the manifest and the card are in clear, and neither holds a secret: the manifest
names tables and columns and counts rows, but holds no value of any row, of the config
or of a key. The passphrase goes through Argon2id once (salt and limits in the
manifest); BLAKE2b keyed with its output and personalised per purpose derives the key
of the key files, the key of the config and tables, the manifest's MAC key, and a check
value recorded in the manifest, which tells a wrong passphrase from an altered archive
(it lets nobody test guesses more cheaply than the MAC or any encrypted member does).
Each encrypted member is zlib-compressed, then encrypted with libsodium's secretstream
(XChaCha20-Poly1305): a header, then chunks of ``chunk_bytes`` compressed bytes, each
authenticated with the member's name; the last chunk is tagged final, so a member cut
short, reordered or moved to another name does not decrypt. Tables are encrypted as
they are read and decrypted as they are loaded, so no table is held in memory whole,
and no plaintext row is written to disk while backing up.

Restoring checks everything before writing anything: the members against the manifest,
that the target directory is empty, then the passphrase (the check value) and the
manifest's MAC, and only then decrypts the config and keys, and checks that the target
database is empty. Then it creates the schema with the migrations at the recorded
revision, loads the rows in one transaction (reading the tables a second time, their
checksums and every chunk checked again), moves PostgreSQL sequences past the restored
ids and writes config, card and keys; if a step fails, what it made is removed.
Messages a sender had leased at backup time come back un-leased, and the peers'
delivery backoff is cleared, so pending messages go out once the node starts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.utils
from nacl.pwhash import argon2id
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    String,
    Table,
    func,
    select,
)
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from .. import __version__
from ..config import CONFIG_FILE, Settings
from ..db import make_engine
from ..db.migrate import revision_of
from ..db.session import normalise_url
from ..keystore import (
    KEY_FILE_NAME,
    load_card,
    load_identity,
    read_key_files,
)
from .audit import AuditLog
from .backup_crypto import (
    CHUNK_BYTES,
    CIPHER,
    COMPRESSION,
    KDF_MEMLIMIT,
    KDF_OPSLIMIT,
    MIN_PASSPHRASE_CHARS,
    Sealer,
    derive_keys,
    manifest_mac,
)

FORMAT = "kpnet-backup"
FORMAT_VERSION = 2  # 1: tables and config in clear, keys in a SecretBox
MANIFEST = "manifest.json"
MANIFEST_MAC = "manifest.mac"
CONFIG_MEMBER = "config.toml.enc"
CARD_MEMBER = "card.json"
KEYS_MEMBER = "keys.enc"
TABLE_MEMBER = "db/{}.jsonl.enc"
SMALL_MEMBER_BYTES = 1024 * 1024  # manifest, config, card, keys


ROWS_PER_CHUNK = 1000

Progress = Callable[[str, int, int], None]
Passphrase = Callable[[], str]


class BackupError(Exception):
    """A backup or restore that cannot go ahead; the message says why, in one line."""


@dataclass(frozen=True)
class BackupReport:
    path: Path
    node_id: str
    revision: str
    rows: dict[str, int]
    size: int
    sha256: str


@dataclass(frozen=True)
class RestoreReport:
    data_dir: Path
    node_id: str
    fingerprint: str
    revision: str
    rows: dict[str, int]
    database: str  # the URL without its password


def no_progress(_phase: str, _done: int, _total: int) -> None:
    pass


# -- values in the dump -------------------------------------------------------------------


# How each column's values are written (first match wins: Float is a Numeric, ...).
_KINDS: tuple[tuple[type[Any], str], ...] = (
    (JSON, "json"),
    (DateTime, "datetime"),
    (Date, "date"),
    (Boolean, "bool"),
    (Integer, "int"),
    (Float, "float"),
    (Numeric, "decimal"),
    (String, "str"),
    (LargeBinary, "bytes"),
)
KINDS = frozenset(name for _, name in _KINDS)


def _column_kind(table: Table, column: Column[Any]) -> str:
    kind = column.type
    for types, name in _KINDS:
        if isinstance(kind, types):
            return name
    raise BackupError(
        f"column {table.name}.{column.name} has a type backups do not handle ({kind})"
    )


def encode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if kind == "date":
        return value.isoformat()
    if kind == "bytes":
        return base64.b64encode(value).decode("ascii")
    if kind == "decimal":
        return str(value)
    return value


def decode_value(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind == "datetime":
        return datetime.fromisoformat(value)
    if kind == "date":
        return date.fromisoformat(value)
    if kind == "bytes":
        return base64.b64decode(value)
    if kind == "decimal":
        return Decimal(value)
    return value


def fresh_start(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """What a restored node should not inherit: leases held by the sender of the old
    process, and the peers' delivery backoff."""
    if table == "outbox" and row.get("status") == "pending":
        row["leased_until"] = row["leased_by"] = None
    elif table == "peers" and "next_attempt_at" in row:
        row["next_attempt_at"] = None
    return row


# -- backup -------------------------------------------------------------------------------


@dataclass
class _Member:
    name: str
    stream: IO[bytes]
    size: int
    sha256: str


def _member_from_bytes(name: str, data: bytes) -> _Member:
    return _Member(name, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())


def _sealed_member(name: str, data: bytes, key: bytes) -> _Member:
    out = io.BytesIO()
    sealer = Sealer(out, key, name, CHUNK_BYTES)
    sealer.write(data)
    sha256 = sealer.close()
    out.seek(0)
    return _Member(name, out, sealer.size, sha256)


def sqlite_file(url: str) -> Path | None:
    parsed = make_url(normalise_url(url))
    if parsed.get_backend_name() != "sqlite":
        return None
    if not parsed.database or parsed.database == ":memory:":
        raise BackupError("backups need a database on disk, not an in-memory SQLite database")
    return Path(parsed.database)


@contextmanager
def _snapshot(engine: Engine) -> Iterator[Connection]:
    """A connection in a read-only transaction that sees one state of the database."""
    with engine.connect() as connection:
        if connection.dialect.name == "postgresql":
            connection.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
        with connection.begin():
            yield connection


def _dump_database(
    url: str, key: bytes, stack: ExitStack, progress: Progress
) -> tuple[str, str, list[dict[str, Any]], list[_Member]]:
    """Dump every table, encrypted with ``key``, into temporary files: (dialect,
    revision, tables, members)."""
    engine = make_engine(url, read_only=True)
    stack.callback(engine.dispose)
    tables_meta: list[dict[str, Any]] = []
    members: list[_Member] = []
    with _snapshot(engine) as connection:
        revision = revision_of(connection)
        if revision is None:
            raise BackupError("the database has no kpnet schema; nothing to back up")
        metadata = MetaData()
        metadata.reflect(bind=connection)
        tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
        counts = {
            t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
            for t in tables
        }
        total, done = sum(counts.values()), 0
        progress("dump", 0, total)
        for table in tables:
            kinds = [_column_kind(table, column) for column in table.columns]
            order = list(table.primary_key.columns) or list(table.columns)
            stream = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
            member = TABLE_MEMBER.format(table.name)
            sealer, rows = Sealer(stream, key, member, CHUNK_BYTES), 0
            result = connection.execute(
                select(table).order_by(*order), execution_options={"yield_per": ROWS_PER_CHUNK}
            )
            for chunk in result.partitions():
                lines = b"".join(
                    json.dumps(
                        [encode_value(k, v) for k, v in zip(kinds, row, strict=True)],
                        ensure_ascii=False,
                        separators=(",", ":"),
                    ).encode("utf-8")
                    + b"\n"
                    for row in chunk
                )
                sealer.write(lines)
                rows += len(chunk)
                progress("dump", done + rows, total)
            if rows != counts[table.name]:
                raise BackupError(f"table {table.name} changed while it was read")
            done += rows
            sha256 = sealer.close()
            stream.seek(0)
            members.append(_Member(member, stream, sealer.size, sha256))
            tables_meta.append(
                {
                    "name": table.name,
                    "member": member,
                    "rows": rows,
                    "columns": {c.name: k for c, k in zip(table.columns, kinds, strict=True)},
                }
            )
        dialect = connection.dialect.name
    return dialect, revision, tables_meta, members


def create_backup(
    settings: Settings,
    out: Path,
    *,
    passphrase: Passphrase,
    now: datetime,
    actor: str,
    progress: Progress | None = None,
) -> BackupReport:
    """Write the node's archive to ``out`` (which must not exist). ``passphrase`` is
    called once the node and the destination are found usable."""
    progress = progress or no_progress
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} already exists; choose a new file name")
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    database = sqlite_file(settings.sqlalchemy_url)
    if database is not None and not database.is_file():
        raise BackupError(f"the database file {database} is missing")
    key_files = read_key_files(settings.keys_dir)
    identity = load_identity(settings.keys_dir, settings.node_id)
    load_card(settings.card_path, identity)
    for name in key_files:
        if not KEY_FILE_NAME.fullmatch(name):
            raise BackupError(f"unexpected key file {settings.keys_dir / name}")
    config_bytes = (settings.data_dir / CONFIG_FILE).read_bytes()
    card_bytes = settings.card_path.read_bytes()

    secret = passphrase()
    if len(secret) < MIN_PASSPHRASE_CHARS:
        raise BackupError(
            f"the passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} characters"
        )
    salt = nacl.utils.random(argon2id.SALTBYTES)
    keys = derive_keys(secret, salt, KDF_OPSLIMIT, KDF_MEMLIMIT)
    keys_member = _sealed_member(
        KEYS_MEMBER,
        json.dumps(
            {
                "node_id": settings.node_id,
                "files": {
                    name: base64.b64encode(data).decode("ascii") for name, data in key_files.items()
                },
            }
        ).encode("utf-8"),
        keys.keys,
    )
    config_member = _sealed_member(CONFIG_MEMBER, config_bytes, keys.data)

    # Recorded before the snapshot, so the archive holds the entry of its own making
    # (as an export records "export.started" before it reads).
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            record_audit(
                session, actor, "backup.started", now, settings.node_id, {"archive": out.name}
            )
            session.commit()
    finally:
        engine.dispose()
    with ExitStack() as stack:
        dialect, revision, tables, table_members = _dump_database(
            settings.sqlalchemy_url, keys.data, stack, progress
        )
        members = [
            config_member,
            _member_from_bytes(CARD_MEMBER, card_bytes),
            keys_member,
            *table_members,
        ]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kpnet_version": __version__,
            "node_id": settings.node_id,
            "fingerprint": identity.fingerprint,
            "created_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "database": {"dialect": dialect, "alembic_revision": revision, "tables": tables},
            "encryption": {
                "kdf": "argon2id",
                "salt": base64.b64encode(salt).decode("ascii"),
                "opslimit": KDF_OPSLIMIT,
                "memlimit": KDF_MEMLIMIT,
                "subkeys": "blake2b-256, keyed with the kdf output, personalised per purpose",
                "passphrase_check": keys.check,
                "cipher": CIPHER,
                "chunk_bytes": CHUNK_BYTES,
                "compression": COMPRESSION,
                "clear_members": [CARD_MEMBER],
                "manifest_mac": "blake2b-256",
            },
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in members],
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        mac = manifest_mac(keys.mac, manifest_bytes).encode("ascii") + b"\n"
        members = [
            _member_from_bytes(MANIFEST, manifest_bytes),
            _member_from_bytes(MANIFEST_MAC, mac),
            *members,
        ]
        size, sha256 = _write_archive(out, members, mtime=int(now.timestamp()))
    return BackupReport(
        out, settings.node_id, revision, {t["name"]: t["rows"] for t in tables}, size, sha256
    )


def _write_archive(out: Path, members: Iterable[_Member], *, mtime: int) -> tuple[int, str]:
    partial = out.with_name(out.name + ".part")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(
            f"{partial} exists (left by an interrupted backup?); remove it first"
        ) from None
    try:
        with os.fdopen(fd, "wb") as raw:
            # Members are compressed before they are encrypted: gzip only frames the tar
            # (stored blocks), so that tar and gzip tools read it.
            with tarfile.open(
                fileobj=raw, mode="w:gz", compresslevel=0, format=tarfile.PAX_FORMAT
            ) as tar:
                for member in members:
                    info = tarfile.TarInfo(member.name)
                    info.size, info.mode, info.mtime = member.size, 0o600, mtime
                    tar.addfile(info, member.stream)
            raw.flush()
            os.fsync(raw.fileno())
        digest = hashlib.sha256()
        with partial.open("rb") as written:
            for block in iter(lambda: written.read(1 << 20), b""):
                digest.update(block)
        os.replace(partial, out)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    return out.stat().st_size, digest.hexdigest()


def record_audit(
    session: Session, actor: str, action: str, now: datetime, node_id: str, detail: dict[str, Any]
) -> None:
    AuditLog(session).record(
        actor, action, now=now, target_kind="node", target_id=node_id, detail=detail
    )
