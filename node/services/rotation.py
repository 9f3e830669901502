"""Key rotation: new keys and a new card, announced to every peer with ``card.update``.

The update is sealed and signed with the keys that signed the current card (which peers
know), and the new card still lists the old keys for a grace period, so messages in
flight either way keep verifying. The new keys are written to the key directory first
(the old encryption secret stays as ``encryption.<kid>.retired``, the old signing seed
as ``signing.<kid>.previous``); then one transaction queues the announcements and names
the new card's serial in the database, which is what makes every process of the node
take the new keys (``node.keyring``), without a restart. Should that transaction fail,
the old keys are put back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime

from protocol import CardUpdate, NodeCard, NodeIdentity, make_card

from ..keyring import record_serial
from ..keystore import undo_rotation, write_rotation
from ..runtime import Node
from .actors import Actor
from .audit import AuditLog
from .outbox import enqueue
from .peers import PeerRegistry

GRACE_SECONDS = 14 * 86400


def rotate_keys(
    node: Node, actor: Actor, now: datetime, grace_seconds: int = GRACE_SECONDS
) -> NodeCard:
    node.keys.refresh(force=True)
    loaded = node.keys.loaded
    old_identity, old_card = loaded.identity, loaded.card
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
    keys_dir, card_path = node.settings.keys_dir, node.settings.card_path
    write_rotation(keys_dir, card_path, old_identity, new_identity, new_card)
    try:
        with node.sessions() as session:
            peers = PeerRegistry(session, actor, now, own_node_id=old_identity.node_id).active()
            for peer in peers:
                enqueue(session, old_identity, peer, CardUpdate(card=new_card), now=now)
            record_serial(session, new_card.serial, now)
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
    except BaseException:
        undo_rotation(keys_dir, card_path, old_identity, old_card)
        raise
    node.keys.refresh(force=True)
    return new_card


__all__ = ["rotate_keys"]
