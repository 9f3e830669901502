"""Checking a backup archive before anything is written: its members and manifest, the
passphrase, the authenticity of the manifest, the keys and card it holds (the layout and
the order of the checks are described in ``node.services.backup``). Nothing here writes."""

from __future__ import annotations

import base64
import gzip
import hashlib
import hmac
import io
import json
import tarfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from nacl.pwhash import argon2id

from protocol import NodeCard, NodeIdentity, ProtocolError

from ..keystore import (
    ENCRYPTION_FILE,
    KEY_FILE_NAME,
    SIGNING_FILE,
    KeyFileError,
    check_card,
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
    SMALL_MEMBER_BYTES,
    TABLE_MEMBER,
    BackupError,
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


def damaged(archive: Path, why: str) -> BackupError:
    return BackupError(f"{archive} is damaged or was altered ({why}); nothing was written")


# What reading a truncated or garbled archive raises (the stream and the member's
# content are read lazily: callers wrap their whole reading loop in ``readable``).
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


@contextmanager
def readable(archive: Path) -> Iterator[None]:
    try:
        yield
    except _UNREADABLE as exc:
        raise damaged(archive, f"it cannot be read to the end: {exc}") from None


def archive_members(archive: Path) -> Iterator[tuple[tarfile.TarInfo, IO[bytes]]]:
    """The archive's members in order, each with a stream of its content."""
    with tarfile.open(archive, mode="r|*") as tar:
        for info in tar:
            if not info.isfile():
                raise damaged(archive, f"{info.name!r} is not a file")
            stream = tar.extractfile(info)
            assert stream is not None
            yield info, stream


def _read_small(archive: Path, info: tarfile.TarInfo, stream: IO[bytes]) -> bytes:
    if info.size > SMALL_MEMBER_BYTES:
        raise damaged(archive, f"{info.name} is too large")
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
    with readable(archive):
        return _read_archive(archive)


def _read_archive(archive: Path) -> Archive:
    members = archive_members(archive)
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
        raise damaged(archive, f"{MANIFEST_MAC} is missing")
    mac = _read_small(archive, *second).decode("ascii", "replace").strip()
    expected = list(manifest["members"])
    small: dict[str, bytes] = {}
    seen = 0
    for index, (info, stream) in enumerate(members):
        if index >= len(expected) or info.name != expected[index]["name"]:
            raise damaged(archive, f"unexpected member {info.name!r}")
        seen = index + 1
        if info.name in (CONFIG_MEMBER, CARD_MEMBER, KEYS_MEMBER):
            data = _read_small(archive, info, stream)
            small[info.name] = data
            size, sha256 = len(data), hashlib.sha256(data).hexdigest()
        else:
            size, sha256 = _hash(stream)
        if size != expected[index]["size"] or sha256 != expected[index]["sha256"]:
            raise damaged(archive, f"{info.name} does not match its checksum in the manifest")
    if seen != len(expected):
        raise damaged(archive, f"it ends before {expected[seen]['name']}")
    return Archive(
        archive,
        manifest,
        manifest_bytes,
        mac,
        small[CONFIG_MEMBER],
        small[CARD_MEMBER],
        small[KEYS_MEMBER],
    )


def unlock(archive: Archive, passphrase: str) -> Keys:
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


def open_small(archive: Archive, name: str, sealed: bytes, key: bytes) -> bytes:
    try:
        with unsealed_reader(io.BytesIO(sealed), key, name, archive.chunk_bytes) as plain:
            return plain.read()
    except Undecryptable as exc:
        raise damaged(archive.path, f"{name}: {exc}") from None


def open_keys(archive: Archive, keys: Keys) -> tuple[dict[str, bytes], NodeIdentity, NodeCard]:
    plain = open_small(archive, KEYS_MEMBER, archive.sealed_keys, keys.keys)
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
