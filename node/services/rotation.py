"""Key rotation: new keys and a new card, announced to every peer with ``card.update``.

The update is sealed and signed with the *current* keys (which peers know), and the new
card still lists the old keys for a grace period, so messages in flight either way keep
verifying. Key files are replaced only after the announcement is safely queued; the
old encryption secret is kept (``encryption.<kid>.retired``) to open late messages.
Restart the node afterwards so it signs with the new key.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime

from protocol import CardUpdate, NodeCard, NodeIdentity, make_card

from ..keystore import ENCRYPTION_FILE, SIGNING_FILE, write_card
from ..runtime import Node
from .actors import Actor
from .audit import AuditLog
from .outbox import enqueue
from .peers import PeerRegistry

GRACE_SECONDS = 14 * 86400


def _replace_secret(path: os.PathLike[str] | str, data: bytes) -> None:
    tmp = f"{path}.new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def rotate_keys(
    node: Node, actor: Actor, now: datetime, grace_seconds: int = GRACE_SECONDS
) -> NodeCard:
    old_identity, old_card = node.identity, node.card
    ts = int(now.timestamp())
    new_identity = NodeIdentity.generate(old_identity.node_id)
    retiring = [
        replace(key, valid_until=min(key.valid_until, ts + grace_seconds))
        for key in old_card.public_keys()
        if key.valid_until > ts
    ]
    new_card = make_card(
        new_identity,
        name=old_card.name,
        endpoints=old_card.endpoints,
        now=ts,
        serial=old_card.serial + 1,
        protocol_versions=old_card.protocol_versions,
        extra_keys=retiring,
    )
    with node.sessions() as session:
        peers = PeerRegistry(session, actor, now, own_node_id=old_identity.node_id).active()
        for peer in peers:
            enqueue(session, old_identity, peer, CardUpdate(card=new_card), now=now)
        AuditLog(session).record(
            str(actor),
            "keys.rotate",
            now=now,
            target_kind="node",
            target_id=old_identity.node_id,
            detail={
                "serial": new_card.serial,
                "fingerprint": new_identity.fingerprint,
                "announced_to": sorted(p.node_id for p in peers),
            },
        )
        session.commit()
    keys_dir = node.settings.keys_dir
    _replace_secret(
        keys_dir / f"encryption.{old_identity.encryption_kid}.retired",
        old_identity.encryption_secret,
    )
    _replace_secret(keys_dir / ENCRYPTION_FILE, new_identity.encryption_secret)
    _replace_secret(keys_dir / SIGNING_FILE, new_identity.signing_seed)
    write_card(node.settings.card_path, new_card)
    return new_card


__all__ = ["rotate_keys"]
