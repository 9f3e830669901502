"""The key ring: a rotation made by one process reaches another on the same database and
key directory without a restart; a failed announcement leaves the old keys; a process
whose key directory is older than the database refuses to start."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from node.config import Settings
from node.keystore import KeyFileError, load_identity
from node.runtime import Node, open_node
from node.services import rotation
from node.services.actors import Actor
from node.services.endpoint_policy import LOOPBACK_PEERS, EndpointPolicy
from node.services.peers import PeerRegistry
from tests.conftest import create_node

ADMIN = Actor("test-admin", "admin")


def admit_peer(settings: Settings, tmp_path: Path) -> None:
    peer = create_node(tmp_path / "peer-cf", "CF", port=8199)
    peer_node = open_node(peer)
    fingerprint = peer_node.identity.fingerprint
    peer_node.close()
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            loopback = EndpointPolicy.from_settings(settings.model_copy(update=LOOPBACK_PEERS))
            PeerRegistry(session, ADMIN, node.now(), own_node_id="CM", endpoints=loopback).add(
                peer.card_path.read_bytes(), fingerprint=fingerprint
            )
            session.commit()
    finally:
        node.close()


def kids(node: Node) -> tuple[str, str, str]:
    """(card signer, signing key in use, encryption key named when sealing)."""
    return node.card.signed_by, node.sealing.signing_kid, node.sealing.encryption_kid


def test_rotation_by_another_process_is_taken_without_a_restart(
    settings: Settings, tmp_path: Path
) -> None:
    admit_peer(settings, tmp_path)
    serving, rotating = open_node(settings), open_node(settings, migrate=False)
    try:
        old = serving.identity
        rotation.rotate_keys(rotating, ADMIN, rotating.now())
        new = load_identity(settings.keys_dir, "CM")
        assert serving.keys.refresh(force=True)
        assert serving.card.serial == 2
        assert serving.identity.fingerprint == new.fingerprint
        # It opens with the new key (and the old), and signs with the old one while the
        # card.update to CF is undelivered.
        assert serving.identity.decryption_key(new.encryption_kid) is not None
        assert serving.identity.decryption_key(old.encryption_kid) is not None
        assert kids(serving) == (new.signing_kid, old.signing_kid, old.encryption_kid)
    finally:
        serving.close()
        rotating.close()


def test_without_peers_to_tell_the_new_key_signs_at_once(settings: Settings) -> None:
    node = open_node(settings)
    try:
        rotation.rotate_keys(node, ADMIN, node.now())
        new = load_identity(settings.keys_dir, "CM")
        assert kids(node) == (new.signing_kid, new.signing_kid, new.encryption_kid)
    finally:
        node.close()


def test_a_failed_announcement_puts_the_old_keys_back(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admit_peer(settings, tmp_path)
    before = {p.name: p.read_bytes() for p in settings.keys_dir.iterdir()}
    card = settings.card_path.read_bytes()

    def fail(*args: object) -> None:
        raise RuntimeError("database gone")

    monkeypatch.setattr(rotation, "record_serial", fail)
    node = open_node(settings)
    try:
        with pytest.raises(RuntimeError):
            rotation.rotate_keys(node, ADMIN, node.now())
    finally:
        node.close()
    after = {p.name: p.read_bytes() for p in settings.keys_dir.iterdir()}
    # The retired copy of the current encryption key may stay; everything else is as it was.
    assert {k: v for k, v in after.items() if not k.endswith(".retired")} == before
    assert settings.card_path.read_bytes() == card
    node = open_node(settings)
    try:
        assert node.card.serial == 1
    finally:
        node.close()


def test_a_process_with_an_older_key_directory_refuses_to_start(
    settings: Settings, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(settings.keys_dir, copy / "keys")
    shutil.copy(settings.card_path, copy / "card.json")
    node = open_node(settings)
    try:
        rotation.rotate_keys(node, ADMIN, node.now())
    finally:
        node.close()
    # Same database, its own copy of the keys as they were before the rotation.
    stale = settings.model_copy(update={"data_dir": copy, "database_url": settings.sqlalchemy_url})
    with pytest.raises(KeyFileError, match="must use the same key directory"):
        open_node(stale, migrate=False)
