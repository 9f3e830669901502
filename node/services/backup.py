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
import gzip
import hashlib
import hmac
import io
import json
import os
import shutil
import tarfile
import tempfile
import tomllib
import unicodedata
import zlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Protocol

import nacl.bindings as sodium
import nacl.encoding
import nacl.exceptions
import nacl.hash
import nacl.utils
from alembic.runtime.migration import MigrationContext
from nacl.pwhash import argon2id
from pydantic import ValidationError
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

from .. import __version__
from ..config import CONFIG_FILE, Settings, write_config
from ..db import make_engine, upgrade
from ..db.migrate import is_known_revision
from ..db.session import normalise_url
from ..keystore import (
    ENCRYPTION_FILE,
    KEY_FILE_NAME,
    SIGNING_FILE,
    KeyFileError,
    check_card,
    load_card,
    load_identity,
    read_key_files,
    write_card,
    write_key_files,
)
from .audit import AuditLog
from .bulk_insert import roomy_page_cache

FORMAT = "kpnet-backup"
FORMAT_VERSION = 2  # 1: tables and config in clear, keys in a SecretBox
MANIFEST = "manifest.json"
MANIFEST_MAC = "manifest.mac"
CONFIG_MEMBER = "config.toml.enc"
CARD_MEMBER = "card.json"
KEYS_MEMBER = "keys.enc"
TABLE_MEMBER = "db/{}.jsonl.enc"
SMALL_MEMBER_BYTES = 1024 * 1024  # manifest, config, card, keys

CIPHER = "xchacha20poly1305-secretstream"
COMPRESSION = "zlib"
COMPRESSION_LEVEL = 6
CHUNK_BYTES = 64 * 1024  # compressed bytes per encrypted chunk
# What a manifest may ask a restore to hold per chunk.
MIN_CHUNK_BYTES, MAX_CHUNK_BYTES = 256, 16 * 1024 * 1024

MIN_PASSPHRASE_CHARS = 12
KDF_OPSLIMIT = argon2id.OPSLIMIT_MODERATE
KDF_MEMLIMIT = argon2id.MEMLIMIT_MODERATE
# A manifest may not make a restore spend more than this on key derivation.
KDF_MAX_OPSLIMIT = 16
KDF_MAX_MEMLIMIT = argon2id.MEMLIMIT_SENSITIVE

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


def _no_progress(_phase: str, _done: int, _total: int) -> None:
    pass


# -- values in the dump -------------------------------------------------------------------


# How each column's values are written (first match wins: Float is a Numeric, ...).
_KINDS: tuple[tuple[type[Any], str], ...] = (
    (JSON, "json"), (DateTime, "datetime"), (Date, "date"), (Boolean, "bool"),
    (Integer, "int"), (Float, "float"), (Numeric, "decimal"), (String, "str"),
    (LargeBinary, "bytes"),
)
KINDS = frozenset(name for _, name in _KINDS)


def _column_kind(table: Table, column: Column[Any]) -> str:
    kind = column.type
    for types, name in _KINDS:
        if isinstance(kind, types):
            return name
    raise BackupError(f"column {table.name}.{column.name} has a type backups do not handle "
                      f"({kind})")


def _encode(kind: str, value: Any) -> Any:
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


def _decode(kind: str, value: Any) -> Any:
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


def _fresh_start(table: str, row: dict[str, Any]) -> dict[str, Any]:
    """What a restored node should not inherit: leases held by the sender of the old
    process, and the peers' delivery backoff."""
    if table == "outbox" and row.get("status") == "pending":
        row["leased_until"] = row["leased_by"] = None
    elif table == "peers" and "next_attempt_at" in row:
        row["next_attempt_at"] = None
    return row


# -- passphrase and encryption -----------------------------------------------------------

_HEADER_BYTES = sodium.crypto_secretstream_xchacha20poly1305_HEADERBYTES
_TAG_BYTES = sodium.crypto_secretstream_xchacha20poly1305_ABYTES
_TAG_MESSAGE = sodium.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
_TAG_FINAL = sodium.crypto_secretstream_xchacha20poly1305_TAG_FINAL


@dataclass(frozen=True)
class _Keys:
    """What one passphrase gives, each part for one purpose."""

    keys: bytes  # encrypts the key files
    data: bytes  # encrypts the config and the tables
    mac: bytes  # authenticates the manifest
    check: str  # recorded in the manifest: a wrong passphrase does not give it


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> _Keys:
    """One Argon2id derivation; subkeys from BLAKE2b keyed with its output."""
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    master = argon2id.kdf(32, secret, salt, opslimit=opslimit, memlimit=memlimit)

    def subkey(purpose: bytes) -> bytes:
        return nacl.hash.blake2b(b"", digest_size=32, key=master, person=b"kpnet.bk." + purpose,
                                 encoder=nacl.encoding.RawEncoder)

    return _Keys(subkey(b"keys"), subkey(b"data"), subkey(b"mac"), subkey(b"check").hex())


def _mac(key: bytes, manifest: bytes) -> str:
    return nacl.hash.blake2b(manifest, key=key, digest_size=32).decode("ascii")


class _Sealer:
    """Write one member: zlib-compressed, then encrypted with secretstream into ``out``
    (the header, chunks of ``chunk_bytes`` compressed bytes, the last tagged final and
    possibly shorter or empty), every chunk authenticated with the member's name. Keeps
    the size and SHA-256 of what it writes."""

    def __init__(self, out: IO[bytes], key: bytes, name: str, chunk_bytes: int) -> None:
        self._out, self._ad, self._chunk = out, name.encode("utf-8"), chunk_bytes
        self._digest, self.size = hashlib.sha256(), 0
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        self._emit(sodium.crypto_secretstream_xchacha20poly1305_init_push(self._state, key))
        self._zip = zlib.compressobj(COMPRESSION_LEVEL)
        self._pending = bytearray()

    def _emit(self, data: bytes) -> None:
        self._out.write(data)
        self._digest.update(data)
        self.size += len(data)

    def _push(self, tag: int) -> None:
        chunk = bytes(self._pending[:self._chunk])
        del self._pending[:self._chunk]
        self._emit(sodium.crypto_secretstream_xchacha20poly1305_push(
            self._state, chunk, self._ad, tag))

    def write(self, data: bytes) -> None:
        self._pending += self._zip.compress(data)
        while len(self._pending) >= self._chunk:
            self._push(_TAG_MESSAGE)

    def close(self) -> str:
        """Write the last chunk; the SHA-256 of the member."""
        self._pending += self._zip.flush()
        while len(self._pending) > self._chunk:
            self._push(_TAG_MESSAGE)
        self._push(_TAG_FINAL)
        return self._digest.hexdigest()


class _Undecryptable(Exception):
    """Why an encrypted member cannot be read."""


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


def _read_exactly(stream: _Readable, size: int) -> bytes:
    """``size`` bytes, fewer only at the end of the stream."""
    data = stream.read(size)
    while len(data) < size:
        more = stream.read(size - len(data))
        if not more:
            break
        data += more
    return data


class _Unsealed(io.RawIOBase):
    """The plaintext of a member written by ``_Sealer``, read from its stored bytes one
    chunk at a time. Raises ``_Undecryptable`` if a chunk does not authenticate, or the
    member ends before its final chunk or goes on after it."""

    def __init__(self, stream: _Readable, key: bytes, name: str, chunk_bytes: int) -> None:
        super().__init__()
        self._stream, self._ad = stream, name.encode("utf-8")
        self._block = chunk_bytes + _TAG_BYTES
        header = _read_exactly(stream, _HEADER_BYTES)
        if len(header) != _HEADER_BYTES:
            raise _Undecryptable("it is cut short, before its first chunk")
        self._state = sodium.crypto_secretstream_xchacha20poly1305_state()
        sodium.crypto_secretstream_xchacha20poly1305_init_pull(self._state, header, key)
        self._zip = zlib.decompressobj()
        self._plain = memoryview(b"")
        self._final = self._flushed = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._plain:
            if self._zip.unconsumed_tail:
                self._plain = memoryview(self._zip.decompress(self._zip.unconsumed_tail,
                                                              self._block))
            elif not self._final:
                self._plain = memoryview(self._zip.decompress(self._next_chunk(), self._block))
            elif not self._flushed:
                self._flushed = True
                self._plain = memoryview(self._zip.flush())
            elif not self._zip.eof or self._zip.unused_data:
                raise _Undecryptable("its compressed content is incomplete")
            else:
                return 0
        size = min(len(buffer), len(self._plain))
        buffer[:size] = self._plain[:size]
        self._plain = self._plain[size:]
        return size

    def _next_chunk(self) -> bytes:
        block = _read_exactly(self._stream, self._block)
        if not block:
            raise _Undecryptable("it is cut short, before its final chunk")
        try:
            plain, tag = sodium.crypto_secretstream_xchacha20poly1305_pull(
                self._state, block, self._ad)
        except nacl.exceptions.CryptoError:
            raise _Undecryptable("a chunk does not decrypt") from None
        if tag == _TAG_FINAL:
            self._final = True
            if self._stream.read(1):
                raise _Undecryptable("it goes on after its final chunk")
        elif tag != _TAG_MESSAGE:
            raise _Undecryptable(f"a chunk has the unexpected tag {tag}")
        return bytes(plain)


def _reader(stream: _Readable, key: bytes, name: str, chunk_bytes: int) -> io.BufferedReader:
    return io.BufferedReader(_Unsealed(stream, key, name, chunk_bytes),
                             buffer_size=max(chunk_bytes, io.DEFAULT_BUFFER_SIZE))


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
    sealer = _Sealer(out, key, name, CHUNK_BYTES)
    sealer.write(data)
    sha256 = sealer.close()
    out.seek(0)
    return _Member(name, out, sealer.size, sha256)


def _sqlite_file(url: str) -> Path | None:
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
            connection.execution_options(isolation_level="REPEATABLE READ",
                                         postgresql_readonly=True)
        with connection.begin():
            yield connection


def _dump_database(url: str, key: bytes, stack: ExitStack, progress: Progress
                   ) -> tuple[str, str, list[dict[str, Any]], list[_Member]]:
    """Dump every table, encrypted with ``key``, into temporary files: (dialect,
    revision, tables, members)."""
    engine = make_engine(url, read_only=True)
    stack.callback(engine.dispose)
    tables_meta: list[dict[str, Any]] = []
    members: list[_Member] = []
    with _snapshot(engine) as connection:
        revision = MigrationContext.configure(connection).get_current_revision()
        if revision is None:
            raise BackupError("the database has no kpnet schema; nothing to back up")
        metadata = MetaData()
        metadata.reflect(bind=connection)
        tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
        counts = {t.name: connection.execute(select(func.count()).select_from(t)).scalar_one()
                  for t in tables}
        total, done = sum(counts.values()), 0
        progress("dump", 0, total)
        for table in tables:
            kinds = [_column_kind(table, column) for column in table.columns]
            order = list(table.primary_key.columns) or list(table.columns)
            stream = stack.enter_context(tempfile.TemporaryFile())  # noqa: SIM115
            member = TABLE_MEMBER.format(table.name)
            sealer, rows = _Sealer(stream, key, member, CHUNK_BYTES), 0
            result = connection.execute(select(table).order_by(*order),
                                        execution_options={"yield_per": ROWS_PER_CHUNK})
            for chunk in result.partitions():
                lines = b"".join(
                    json.dumps([_encode(k, v) for k, v in zip(kinds, row, strict=True)],
                               ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
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
            tables_meta.append({
                "name": table.name, "member": member, "rows": rows,
                "columns": {c.name: k for c, k in zip(table.columns, kinds, strict=True)},
            })
        dialect = connection.dialect.name
    return dialect, revision, tables_meta, members


def create_backup(settings: Settings, out: Path, *, passphrase: Passphrase, now: datetime,
                  actor: str, progress: Progress | None = None) -> BackupReport:
    """Write the node's archive to ``out`` (which must not exist). ``passphrase`` is
    called once the node and the destination are found usable."""
    progress = progress or _no_progress
    if out.exists() or out.is_symlink():
        raise BackupError(f"{out} already exists; choose a new file name")
    if not out.parent.is_dir():
        raise BackupError(f"directory {out.parent} does not exist")
    database = _sqlite_file(settings.sqlalchemy_url)
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
        raise BackupError(f"the passphrase is too short: use at least {MIN_PASSPHRASE_CHARS} "
                          "characters")
    salt = nacl.utils.random(argon2id.SALTBYTES)
    keys = _derive(secret, salt, KDF_OPSLIMIT, KDF_MEMLIMIT)
    keys_member = _sealed_member(KEYS_MEMBER, json.dumps({
        "node_id": settings.node_id,
        "files": {name: base64.b64encode(data).decode("ascii") for name, data in key_files.items()},
    }).encode("utf-8"), keys.keys)
    config_member = _sealed_member(CONFIG_MEMBER, config_bytes, keys.data)

    # Recorded before the snapshot, so the archive holds the entry of its own making
    # (as an export records "export.started" before it reads).
    engine = make_engine(settings.sqlalchemy_url)
    try:
        with Session(engine) as session:
            _audit(session, actor, "backup.started", now, settings.node_id, {"archive": out.name})
            session.commit()
    finally:
        engine.dispose()
    with ExitStack() as stack:
        dialect, revision, tables, table_members = _dump_database(
            settings.sqlalchemy_url, keys.data, stack, progress)
        members = [config_member, _member_from_bytes(CARD_MEMBER, card_bytes), keys_member,
                   *table_members]
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "kpnet_version": __version__,
            "node_id": settings.node_id,
            "fingerprint": identity.fingerprint,
            "created_at": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "database": {"dialect": dialect, "alembic_revision": revision, "tables": tables},
            "encryption": {
                "kdf": "argon2id", "salt": base64.b64encode(salt).decode("ascii"),
                "opslimit": KDF_OPSLIMIT, "memlimit": KDF_MEMLIMIT,
                "subkeys": "blake2b-256, keyed with the kdf output, personalised per purpose",
                "passphrase_check": keys.check,
                "cipher": CIPHER, "chunk_bytes": CHUNK_BYTES, "compression": COMPRESSION,
                "clear_members": [CARD_MEMBER],
                "manifest_mac": "blake2b-256",
            },
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in members],
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        mac = _mac(keys.mac, manifest_bytes).encode("ascii") + b"\n"
        members = [_member_from_bytes(MANIFEST, manifest_bytes),
                   _member_from_bytes(MANIFEST_MAC, mac), *members]
        size, sha256 = _write_archive(out, members, mtime=int(now.timestamp()))
    return BackupReport(out, settings.node_id, revision,
                        {t["name"]: t["rows"] for t in tables}, size, sha256)


def _write_archive(out: Path, members: Iterable[_Member], *, mtime: int) -> tuple[int, str]:
    partial = out.with_name(out.name + ".part")
    try:
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise BackupError(f"{partial} exists (left by an interrupted backup?); "
                          "remove it first") from None
    try:
        with os.fdopen(fd, "wb") as raw:
            # Members are compressed before they are encrypted: gzip only frames the tar
            # (stored blocks), so that tar and gzip tools read it.
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=0,
                              format=tarfile.PAX_FORMAT) as tar:
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


def _audit(session: Session, actor: str, action: str, now: datetime, node_id: str,
           detail: dict[str, Any]) -> None:
    AuditLog(session).record(actor, action, now=now, target_kind="node", target_id=node_id,
                             detail=detail)


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
        raise BackupError(f"{archive} is in backup format {found} (made by kpnet {made_by}, "
                          "database not encrypted), which this kpnet no longer restores (it "
                          f"reads format {FORMAT_VERSION}): restore it with a kpnet that reads "
                          f"format {found}, then back up again")
    if found != FORMAT_VERSION:
        raise BackupError(f"{archive} is in backup format {found!r}, which this kpnet does not "
                          f"know (it reads format {FORMAT_VERSION}); restore it with a newer "
                          "kpnet")

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
        yield set(names) == ({CONFIG_MEMBER, CARD_MEMBER, KEYS_MEMBER}
                             | {table["member"] for table in database["tables"]})
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
    return Archive(archive, manifest, manifest_bytes, mac, small[CONFIG_MEMBER],
                   small[CARD_MEMBER], small[KEYS_MEMBER])


def _unlock(archive: Archive, passphrase: str) -> _Keys:
    """The keys, once the passphrase is found right and the manifest authentic."""
    params = archive.manifest["encryption"]
    opslimit, memlimit = params["opslimit"], params["memlimit"]
    if not (argon2id.OPSLIMIT_MIN <= opslimit <= KDF_MAX_OPSLIMIT
            and argon2id.MEMLIMIT_MIN <= memlimit <= KDF_MAX_MEMLIMIT):
        raise BackupError(f"{archive.path} asks for key-derivation limits kpnet does not use")
    keys = _derive(passphrase, base64.b64decode(params["salt"]), opslimit, memlimit)
    if not hmac.compare_digest(keys.check, params["passphrase_check"]):
        raise BackupError(f"wrong passphrase: {archive.path} does not open with it; "
                          "nothing was written")
    if not hmac.compare_digest(_mac(keys.mac, archive.manifest_bytes), archive.mac):
        raise BackupError(f"{archive.path} was altered: its manifest does not match its "
                          "authentication code; nothing was written")
    return keys


def _open_small(archive: Archive, name: str, sealed: bytes, key: bytes) -> bytes:
    try:
        with _reader(io.BytesIO(sealed), key, name, archive.chunk_bytes) as plain:
            return plain.read()
    except _Undecryptable as exc:
        raise _damaged(archive.path, f"{name}: {exc}") from None


def _open_keys(archive: Archive, keys: _Keys) -> tuple[dict[str, bytes], NodeIdentity, NodeCard]:
    plain = _open_small(archive, KEYS_MEMBER, archive.sealed_keys, keys.keys)
    try:
        sealed = json.loads(plain)
        files = {name: base64.b64decode(data) for name, data in sealed["files"].items()}
        if not all(KEY_FILE_NAME.fullmatch(n) and len(k) == 32 for n, k in files.items()):
            raise ValueError("unexpected key files")
        retired = tuple(files[n] for n in sorted(files) if n.endswith(".retired"))
        identity = NodeIdentity(archive.node_id, files[SIGNING_FILE], files[ENCRYPTION_FILE],
                                retired)
        card = check_card(archive.card, identity, where=f"the card in {archive.path}")
    except (KeyError, TypeError, ValueError, KeyFileError, ProtocolError) as exc:
        raise BackupError(f"the keys or card in {archive.path} are not usable: {exc}") from None
    if (sealed.get("node_id") != archive.node_id
            or identity.fingerprint != archive.manifest["fingerprint"]):
        raise BackupError(f"the keys in {archive.path} are not those of node {archive.node_id}")
    return files, identity, card


# -- restore ------------------------------------------------------------------------------


def _target(archive: Archive, config: bytes, data_dir: Path, database_url: str | None
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
            raise BackupError("KPNET_DATABASE_URL is set and would override --database-url; "
                              "unset it or restore into that database")
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
        raise BackupError(f"the restored configuration is not valid: {where}: "
                          f"{first['msg']}") from None
    return settings, (values if rewrite else None)


def _shown(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _check_empty_directory(data_dir: Path) -> None:
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty; restore into a new or empty directory")


def _check_empty_database(url: str) -> bool:
    """Refuse a database that holds anything; return whether it existed (it does unless
    it is a SQLite file still to be made)."""
    path = _sqlite_file(url)
    if path is not None and not path.exists():
        return False
    engine = make_engine(url)
    try:
        names = inspect(engine).get_table_names()
    finally:
        engine.dispose()
    if names:
        raise BackupError(f"database {_shown(url)} is not empty ({len(names)} tables); "
                          "restore needs an empty database")
    return True


def restore_archive(archive_path: Path, data_dir: Path, *, passphrase: Passphrase,
                    now: datetime, actor: str, database_url: str | None = None,
                    progress: Progress | None = None) -> RestoreReport:
    """Restore a node from an archive into ``data_dir`` (new or empty) and an empty
    database: ``database_url``, else the archive's configured PostgreSQL database, else
    SQLite in ``data_dir``. ``passphrase`` is called once the archive and the target
    directory are found usable (the database is known once the config is decrypted)."""
    progress = progress or _no_progress
    archive = read_archive(archive_path)
    if not is_known_revision(archive.revision):
        raise BackupError(f"the database in {archive_path} is at revision {archive.revision}, "
                          "which this kpnet does not know; restore it with a newer kpnet")
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
        rows = _restore_database(archive, keys.data, url, database_existed, actor=actor,
                                 now=now, progress=progress)
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
    return RestoreReport(data_dir, identity.node_id, identity.fingerprint, archive.revision,
                         rows, _shown(url))


def _restore_database(archive: Archive, key: bytes, url: str, existed: bool, *, actor: str,
                      now: datetime, progress: Progress) -> dict[str, int]:
    engine = make_engine(url)
    try:
        upgrade(engine, archive.revision)
        with Session(engine) as session, roomy_page_cache(session):
            rows = _load(archive, key, session, progress)
            _audit(session, actor, "backup.restored", now, archive.node_id, {
                "archive_created_at": archive.manifest["created_at"],
                "revision": archive.revision, "rows": sum(rows.values()),
            })
            session.commit()
        return rows
    except BaseException:
        _undo_schema(engine, url, existed)
        raise
    finally:
        engine.dispose()


def _undo_schema(engine: Engine, url: str, existed: bool) -> None:
    """Remove what a failed restore made in the (empty before) database."""
    path = _sqlite_file(url)
    engine.dispose()
    if path is not None and not existed:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        return
    metadata = MetaData()
    with engine.begin() as connection:
        metadata.reflect(bind=connection)
        metadata.drop_all(connection)


def _load(archive: Archive, key: bytes, session: Session, progress: Progress
          ) -> dict[str, int]:
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
                loaded[meta["name"]] = _load_table(archive, session, metadata, meta,
                                                   _Hashing(stream), key, expected[info.name],
                                                   progress, done, total)
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


def _load_table(archive: Archive, session: Session, metadata: MetaData, meta: dict[str, Any],
                stream: _Hashing, key: bytes, member: dict[str, Any], progress: Progress,
                done: int, total: int) -> int:
    """Insert one table's rows, decrypted as they are read; check the member again."""
    table = metadata.tables.get(meta["name"])
    names = list(meta["columns"])
    if table is None or set(names) != set(table.columns.keys()):
        raise BackupError(f"table {meta['name']} in the archive does not match the schema "
                          f"at revision {archive.revision}")
    kinds = list(meta["columns"].values())
    count, batch = 0, []
    try:
        with _reader(stream, key, member["name"], archive.chunk_bytes) as lines:
            for line in lines:
                values = json.loads(line)
                batch.append(_fresh_start(table.name, {
                    name: _decode(kind, value)
                    for name, kind, value in zip(names, kinds, values, strict=True)
                }))
                if len(batch) == ROWS_PER_CHUNK:
                    session.execute(insert(table), batch)
                    count += len(batch)
                    batch = []
                    progress("load", done + count, total)
    except _Undecryptable as exc:
        raise _damaged(archive.path, f"{member['name']}: {exc}") from None
    if batch:
        session.execute(insert(table), batch)
        count += len(batch)
    if (stream.size, stream.hexdigest(), count) != (member["size"], member["sha256"],
                                                    meta["rows"]):
        raise _damaged(archive.path, f"{member['name']} changed while it was restored")
    progress("load", done + count, total)
    return count


def _reset_sequences(session: Session, tables: list[Table]) -> None:
    """Rows came with their ids: move each serial column's sequence past the largest."""
    for table in tables:
        for column in table.columns:
            if not isinstance(column.type, Integer):
                continue
            sequence = session.execute(text("SELECT pg_get_serial_sequence(:t, :c)"),
                                       {"t": table.name, "c": column.name}).scalar_one()
            if sequence is None:
                continue
            largest = session.execute(select(func.max(column))).scalar_one()
            session.execute(text("SELECT setval(:s, :v, :called)"),
                            {"s": sequence, "v": largest or 1, "called": largest is not None})
