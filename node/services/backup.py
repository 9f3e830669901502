"""A whole node in one archive (``kpnet backup``), and back (``kpnet restore``).

The archive is a gzip-compressed tar file, mode 0600, whose members come in this order:

- ``manifest.json``: format version, node id and fingerprint, creation time, the
  database's Alembic revision, every table (columns, row count), the key-derivation
  parameters, and the size and SHA-256 of every member that follows ``manifest.mac``;
- ``manifest.mac``: keyed BLAKE2b of ``manifest.json`` under a key derived from the
  passphrase, so that the manifest cannot be rewritten to match altered members;
- ``config.toml`` and ``card.json``, as they are in the data directory;
- ``keys.sealed``: every key file, encrypted with ``nacl.secret.SecretBox`` under a key
  derived from the passphrase with Argon2id;
- ``db/<table>.jsonl``: a logical dump of each table, in foreign-key order, one JSON
  array per row (columns as listed in the manifest), all read in one transaction: a
  consistent snapshot on SQLite and PostgreSQL alike. It loads into either.

Restoring checks everything before writing anything: the members against the manifest,
that the target directory and database are empty, then the passphrase (the keys must
open and the manifest's MAC must match). Then it creates the schema with the migrations
at the recorded revision, loads the rows in one transaction, moves PostgreSQL sequences
past the restored ids and writes config, card and keys; if a step fails, what it made
is removed. Messages a sender had leased at backup time come back un-leased, and the
peers' delivery backoff is cleared, so pending messages go out once the node starts.
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
from typing import IO, Any

import nacl.exceptions
import nacl.hash
import nacl.utils
from alembic.runtime.migration import MigrationContext
from nacl.pwhash import argon2id
from nacl.secret import SecretBox
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
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
MANIFEST_MAC = "manifest.mac"
CONFIG_MEMBER = "config.toml"
CARD_MEMBER = "card.json"
KEYS_MEMBER = "keys.sealed"
SMALL_MEMBER_BYTES = 1024 * 1024  # manifest, config, card, sealed keys

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


# -- passphrase ---------------------------------------------------------------------------


def _derive(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> tuple[bytes, bytes]:
    """(SecretBox key, manifest MAC key) from the passphrase."""
    secret = unicodedata.normalize("NFC", passphrase).encode("utf-8")
    material = argon2id.kdf(64, secret, salt, opslimit=opslimit, memlimit=memlimit)
    return material[:32], material[32:]


def _mac(key: bytes, manifest: bytes) -> str:
    return nacl.hash.blake2b(manifest, key=key, digest_size=32).decode("ascii")


# -- backup -------------------------------------------------------------------------------


@dataclass
class _Member:
    name: str
    stream: IO[bytes]
    size: int
    sha256: str


def _member_from_bytes(name: str, data: bytes) -> _Member:
    return _Member(name, io.BytesIO(data), len(data), hashlib.sha256(data).hexdigest())


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


def _dump_database(url: str, stack: ExitStack, progress: Progress
                   ) -> tuple[str, str, list[dict[str, Any]], list[_Member]]:
    """Dump every table into temporary files: (dialect, revision, tables, members)."""
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
            digest, size, rows = hashlib.sha256(), 0, 0
            result = connection.execute(select(table).order_by(*order),
                                        execution_options={"yield_per": ROWS_PER_CHUNK})
            for chunk in result.partitions():
                lines = b"".join(
                    json.dumps([_encode(k, v) for k, v in zip(kinds, row, strict=True)],
                               ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"
                    for row in chunk
                )
                stream.write(lines)
                digest.update(lines)
                size += len(lines)
                rows += len(chunk)
                progress("dump", done + rows, total)
            if rows != counts[table.name]:
                raise BackupError(f"table {table.name} changed while it was read")
            done += rows
            stream.seek(0)
            member = f"db/{table.name}.jsonl"
            members.append(_Member(member, stream, size, digest.hexdigest()))
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
    box_key, mac_key = _derive(secret, salt, KDF_OPSLIMIT, KDF_MEMLIMIT)
    sealed = SecretBox(box_key).encrypt(json.dumps({
        "node_id": settings.node_id,
        "files": {name: base64.b64encode(data).decode("ascii") for name, data in key_files.items()},
    }).encode("utf-8"))

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
            settings.sqlalchemy_url, stack, progress)
        members = [
            _member_from_bytes(CONFIG_MEMBER, config_bytes),
            _member_from_bytes(CARD_MEMBER, card_bytes),
            _member_from_bytes(KEYS_MEMBER, bytes(sealed)),
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
            "keys": {"member": KEYS_MEMBER, "cipher": "xsalsa20-poly1305",
                     "kdf": "argon2id", "salt": base64.b64encode(salt).decode("ascii"),
                     "opslimit": KDF_OPSLIMIT, "memlimit": KDF_MEMLIMIT,
                     "manifest_mac": "blake2b-256"},
            "members": [{"name": m.name, "size": m.size, "sha256": m.sha256} for m in members],
        }
        manifest_bytes = json.dumps(manifest, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
        mac = _mac(mac_key, manifest_bytes).encode("ascii") + b"\n"
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
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6,
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
    needs the passphrase)."""

    path: Path
    manifest: dict[str, Any]
    manifest_bytes: bytes
    mac: str
    config: bytes
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
    if found != FORMAT_VERSION:
        raise BackupError(f"{archive} has backup format {found!r}; this kpnet reads format "
                          f"{FORMAT_VERSION}")

    def checks() -> Iterator[bool]:
        members = manifest["members"]
        names = [m["name"] for m in members]
        yield all(isinstance(m["size"], int) and isinstance(m["sha256"], str) for m in members)
        yield len(set(names)) == len(names) and not {MANIFEST, MANIFEST_MAC} & set(names)
        yield {CONFIG_MEMBER, CARD_MEMBER, KEYS_MEMBER} <= set(names)
        yield isinstance(manifest["node_id"], str) and isinstance(manifest["fingerprint"], str)
        database = manifest["database"]
        yield isinstance(database["alembic_revision"], str)
        for table in database["tables"]:
            yield isinstance(table["name"], str) and isinstance(table["rows"], int)
            yield table["member"] == f"db/{table['name']}.jsonl" and table["member"] in names
            yield all(kind in KINDS for kind in table["columns"].values())
        keys = manifest["keys"]
        yield keys["member"] == KEYS_MEMBER and keys["kdf"] == "argon2id"
        yield isinstance(keys["opslimit"], int) and isinstance(keys["memlimit"], int)
        yield bool(base64.b64decode(keys["salt"], validate=True))

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


def _open_keys(archive: Archive, passphrase: str
               ) -> tuple[dict[str, bytes], NodeIdentity, NodeCard]:
    params = archive.manifest["keys"]
    opslimit, memlimit = params["opslimit"], params["memlimit"]
    if not (argon2id.OPSLIMIT_MIN <= opslimit <= KDF_MAX_OPSLIMIT
            and argon2id.MEMLIMIT_MIN <= memlimit <= KDF_MAX_MEMLIMIT):
        raise BackupError(f"{archive.path} asks for key-derivation limits kpnet does not use")
    box_key, mac_key = _derive(passphrase, base64.b64decode(params["salt"]), opslimit, memlimit)
    try:
        plain = SecretBox(box_key).decrypt(archive.sealed_keys)
    except nacl.exceptions.CryptoError:
        raise BackupError(f"wrong passphrase: the keys in {archive.path} do not open with it; "
                          "nothing was written") from None
    if not hmac.compare_digest(_mac(mac_key, archive.manifest_bytes), archive.mac):
        raise BackupError(f"{archive.path} was altered: its manifest does not match its "
                          "authentication code; nothing was written")
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


def _target(archive: Archive, data_dir: Path, database_url: str | None
            ) -> tuple[Settings, dict[str, Any] | None]:
    """The restored node's settings, and the config to write if it is not the archive's."""
    try:
        values = tomllib.loads(archive.config.decode("utf-8"))
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


def _check_empty(data_dir: Path, url: str) -> bool:
    """Refuse a target that holds anything; return whether the database existed (it
    does unless it is a SQLite file still to be made)."""
    if data_dir.exists() and (not data_dir.is_dir() or any(data_dir.iterdir())):
        raise BackupError(f"{data_dir} is not empty; restore into a new or empty directory")
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
    SQLite in ``data_dir``. ``passphrase`` is called once the archive and the targets
    are found usable."""
    progress = progress or _no_progress
    archive = read_archive(archive_path)
    if not is_known_revision(archive.revision):
        raise BackupError(f"the database in {archive_path} is at revision {archive.revision}, "
                          "which this kpnet does not know; restore it with a newer kpnet")
    settings, new_config = _target(archive, data_dir, database_url)
    url = settings.sqlalchemy_url
    database_existed = _check_empty(data_dir, url)
    files, identity, card = _open_keys(archive, passphrase())

    dir_existed = data_dir.exists()
    try:
        data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        data_dir.chmod(0o700)
        rows = _restore_database(archive, url, database_existed, actor=actor, now=now,
                                 progress=progress)
        if new_config is None:
            fd = os.open(data_dir / CONFIG_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(archive.config)
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


def _restore_database(archive: Archive, url: str, existed: bool, *, actor: str,
                      now: datetime, progress: Progress) -> dict[str, int]:
    engine = make_engine(url)
    try:
        upgrade(engine, archive.revision)
        with Session(engine) as session, roomy_page_cache(session):
            rows = _load(archive, session, progress)
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


def _load(archive: Archive, session: Session, progress: Progress) -> dict[str, int]:
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
                loaded[meta["name"]] = _load_table(archive, session, metadata, meta, stream,
                                                   expected[info.name], progress, done, total)
                done += loaded[meta["name"]]
    if connection.dialect.name == "postgresql":
        _reset_sequences(session, targets)
    return loaded


def _load_table(archive: Archive, session: Session, metadata: MetaData, meta: dict[str, Any],
                stream: IO[bytes], member: dict[str, Any], progress: Progress, done: int,
                total: int) -> int:
    """Insert one table's rows; check the member again as it is read."""
    table = metadata.tables.get(meta["name"])
    names = list(meta["columns"])
    if table is None or set(names) != set(table.columns.keys()):
        raise BackupError(f"table {meta['name']} in the archive does not match the schema "
                          f"at revision {archive.revision}")
    kinds = list(meta["columns"].values())
    digest, size, count, batch = hashlib.sha256(), 0, 0, []
    for line in stream:
        digest.update(line)
        size += len(line)
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
    if batch:
        session.execute(insert(table), batch)
        count += len(batch)
    if (size, digest.hexdigest(), count) != (member["size"], member["sha256"], meta["rows"]):
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
