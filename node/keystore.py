"""The node's private keys and signed card on disk.

``keys/`` (mode 0700) holds ``signing.key`` (Ed25519 seed) and ``encryption.key``
(X25519 secret), each 32 raw bytes in a file of mode 0600; retired encryption keys
stay as ``encryption.<kid>.retired`` so messages sealed to them still open. After a
rotation the previous signing seed stays as ``signing.<kid>.previous``: the node signs
with it (and its previous encryption key) until every peer has received the new card,
at most until the grace period ends (``node.keyring``). It is not part of backups: a
restored node signs with its current key at once.
``card.json`` is the node's current signed card.
"""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

from protocol import NodeCard, NodeIdentity, make_card, verify_card

SIGNING_FILE = "signing.key"
ENCRYPTION_FILE = "encryption.key"
# The files ``keys/`` may hold: current keys and retired encryption keys (by key id).
KEY_FILE_NAME = re.compile(r"(?:signing|encryption)\.key|encryption\.[0-9a-f]{16}\.retired")
# The previous signing seed, kept after a rotation while peers learn the new card.
PREVIOUS_SIGNING_FILE = re.compile(r"signing\.([0-9a-f]{16})\.previous")


class KeyFileError(Exception):
    """The key files are missing, malformed or readable by others, or their directory is
    open to others."""


def _write_secret(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def replace_secret(path: Path, data: bytes) -> None:
    """Write a key file (mode 0600) in place of any old one, atomically and durably."""
    tmp = path.with_name(f"{path.name}.new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def check_keys_dir(keys_dir: Path) -> None:
    """Refuse a key directory others may enter or list (the files' own 0600 is not
    enough: others could see which retired keys exist, or swap a file in)."""
    try:
        mode = keys_dir.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"key directory {keys_dir} is missing") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            f"key directory {keys_dir} is readable by others; run: chmod 700 {keys_dir}"
        )


def _read_secret(path: Path) -> bytes:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise KeyFileError(f"key file {path} is missing") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(f"key file {path} is readable by others; run: chmod 600 {path}")
    data = path.read_bytes()
    if len(data) != 32:
        raise KeyFileError(f"key file {path} is not a 32-byte key")
    return data


def create_identity(keys_dir: Path, node_id: str) -> NodeIdentity:
    """Generate new keys into ``keys_dir``; refuses to overwrite existing ones."""
    identity = NodeIdentity.generate(node_id)
    write_key_files(
        keys_dir, {SIGNING_FILE: identity.signing_seed, ENCRYPTION_FILE: identity.encryption_secret}
    )
    return identity


def write_key_files(keys_dir: Path, files: dict[str, bytes]) -> None:
    """Write key files (name to 32 raw bytes) into ``keys_dir`` (mode 0700, files 0600);
    refuses to overwrite existing ones."""
    for name, data in files.items():
        if not KEY_FILE_NAME.fullmatch(name) or len(data) != 32:
            raise KeyFileError(f"{name!r} is not a key file name with a 32-byte key")
    keys_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys_dir.chmod(0o700)
    try:
        for name, data in files.items():
            _write_secret(keys_dir / name, data)
    except FileExistsError:
        raise KeyFileError(f"keys already exist in {keys_dir}") from None


def read_key_files(keys_dir: Path) -> dict[str, bytes]:
    """Every key file in ``keys_dir`` (current and retired keys), checked as on load."""
    check_keys_dir(keys_dir)
    retired = sorted(p.name for p in keys_dir.glob("encryption.*.retired"))
    return {
        name: _read_secret(keys_dir / name) for name in (SIGNING_FILE, ENCRYPTION_FILE, *retired)
    }


def load_identity(keys_dir: Path, node_id: str) -> NodeIdentity:
    check_keys_dir(keys_dir)
    retired = tuple(_read_secret(p) for p in sorted(keys_dir.glob("encryption.*.retired")))
    return NodeIdentity(
        node_id,
        _read_secret(keys_dir / SIGNING_FILE),
        _read_secret(keys_dir / ENCRYPTION_FILE),
        retired,
    )


def load_previous_signing(keys_dir: Path) -> dict[str, bytes]:
    """The previous signing seeds kept after a rotation, by key id (normally one)."""
    seeds = {}
    for path in sorted(keys_dir.glob("signing.*.previous")):
        match = PREVIOUS_SIGNING_FILE.fullmatch(path.name)
        if match is not None:
            seeds[match.group(1)] = _read_secret(path)
    return seeds


def write_rotation(
    keys_dir: Path, card_path: Path, old: NodeIdentity, new: NodeIdentity, card: NodeCard
) -> None:
    """Put a rotation's keys in place: first what keeps the old keys usable (the retired
    encryption secret, the previous signing seed), then the new keys and card."""
    replace_secret(keys_dir / f"encryption.{old.encryption_kid}.retired", old.encryption_secret)
    previous = keys_dir / f"signing.{old.signing_kid}.previous"
    for stale in keys_dir.glob("signing.*.previous"):
        if stale != previous:
            stale.unlink()
    replace_secret(previous, old.signing_seed)
    replace_secret(keys_dir / ENCRYPTION_FILE, new.encryption_secret)
    replace_secret(keys_dir / SIGNING_FILE, new.signing_seed)
    write_card(card_path, card)


def undo_rotation(keys_dir: Path, card_path: Path, old: NodeIdentity, old_card: NodeCard) -> None:
    """Put the keys and card of before ``write_rotation`` back (its announcement failed)."""
    replace_secret(keys_dir / ENCRYPTION_FILE, old.encryption_secret)
    replace_secret(keys_dir / SIGNING_FILE, old.signing_seed)
    write_card(card_path, old_card)
    (keys_dir / f"signing.{old.signing_kid}.previous").unlink(missing_ok=True)


def write_card(path: Path, card: NodeCard) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(card.to_bytes())
    tmp.replace(path)


def issue_card(path: Path, identity: NodeIdentity, *, name: str, url: str, now: int) -> NodeCard:
    card = make_card(identity, name=name, endpoints=[url], now=now)
    write_card(path, card)
    return card


def load_card(path: Path, identity: NodeIdentity) -> NodeCard:
    """Load the node's card and check it belongs to ``identity``."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"card {path} is missing") from None
    return check_card(data, identity, where=f"card {path}")


def check_card(data: bytes, identity: NodeIdentity, *, where: str = "the card") -> NodeCard:
    """Verify a card (JSON bytes) and check it was issued by ``identity``'s signing key."""
    card = verify_card(data)
    if card.node_id != identity.node_id or card.signed_by != identity.signing_kid:
        raise KeyFileError(f"{where} was not issued by this node's signing key")
    return card
