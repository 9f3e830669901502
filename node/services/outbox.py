"""Putting messages in the outbox: sealed once, in the caller's transaction."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session

from protocol import MAX_LIFETIME, NodeIdentity, Payload, Recipient, peek_header, seal

from ..db.models import OutboxMessage, Peer
from .peers import current_encryption_key

DEFAULT_TTL = 14 * 86400


def enqueue(
    session: Session,
    identity: NodeIdentity,
    peer: Peer,
    payload: Payload,
    *,
    now: datetime,
    ttl: int = DEFAULT_TTL,
    alert_id: int | None = None,
    in_reply_to: str | None = None,
) -> OutboxMessage:
    """Seal ``payload`` for ``peer`` and add it to the outbox (not committed here)."""
    recipient = Recipient(peer.node_id, current_encryption_key(peer, now))
    ttl = max(1, min(ttl, MAX_LIFETIME))
    wire = seal(
        identity, recipient, payload, now=int(now.timestamp()), ttl=ttl, in_reply_to=in_reply_to
    )
    header = peek_header(wire)
    row = OutboxMessage(
        message_id=header.id,
        recipient=peer.node_id,
        msg_type=header.type,
        envelope=wire.decode("utf-8"),
        created_at=now,
        expires_at=datetime.fromtimestamp(header.expires_at, UTC),
        status="pending",
        attempts=0,
        next_attempt_at=now,
        alert_id=alert_id,
    )
    session.add(row)
    return row
