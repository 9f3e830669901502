"""Peers and the messages exchanged with them: received (for de-duplication) and queued to send."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from .base import Base


class Peer(Base):
    """Another country's node, admitted after its fingerprint was verified in person.

    ``keys`` holds every key of the peer we still accept (current and rotated-out ones,
    each with its validity); ``agreement`` is the sharing agreement (see
    ``node.services.agreements``). The delivery backoff state lives here too.
    """

    __tablename__ = "peers"

    id: Mapped[int] = mapped_column(primary_key=True)
    node_id: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    endpoint: Mapped[str] = mapped_column(String(500))
    card: Mapped[dict[str, Any]]
    card_serial: Mapped[int]
    keys: Mapped[list[dict[str, Any]]]
    fingerprint: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(12))  # active, suspended, removed
    agreement: Mapped[dict[str, Any]]
    added_at: Mapped[datetime]
    added_by: Mapped[str] = mapped_column(String(100))
    last_contact_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(String(500))
    consecutive_failures: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None]
    # How far the peer's clock is ahead of ours (negative: behind), as last measured.
    clock_offset_seconds: Mapped[float | None]
    # An endpoint the peer's newer card names, waiting for an admin's approval, and
    # since when (a peer's card must not redirect our deliveries on its own).
    pending_endpoint: Mapped[str | None] = mapped_column(String(500))
    pending_endpoint_at: Mapped[datetime | None]


class InboundMessage(Base):
    """A message accepted from a peer, kept to de-duplicate on (sender, message id)."""

    __tablename__ = "inbound_messages"
    __table_args__ = (
        Index("uq_inbound_messages_sender_message", "sender", "message_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    sender: Mapped[str] = mapped_column(String(20))
    message_id: Mapped[str] = mapped_column(String(36))
    msg_type: Mapped[str] = mapped_column(String(30))
    received_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    receipt: Mapped[str] = mapped_column(Text)


class OutboxMessage(Base):
    """A sealed envelope waiting for (or past) delivery to one peer.

    Written in the same transaction as what caused it (transactional outbox). A sender
    claims due rows by setting a lease; a lease left by a dead process simply expires.
    """

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_due", "status", "recipient", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[str] = mapped_column(String(36), unique=True)
    recipient: Mapped[str] = mapped_column(String(20))
    msg_type: Mapped[str] = mapped_column(String(30))
    envelope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(12))  # pending, delivered, failed, expired
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    leased_until: Mapped[datetime | None]
    leased_by: Mapped[str | None] = mapped_column(String(64))
    last_error: Mapped[str | None] = mapped_column(String(500))
    delivered_at: Mapped[datetime | None]
    receipt: Mapped[str | None] = mapped_column(Text)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("alerts.id"), index=True)


class PeerQuotaUse(Base):
    """How many messages of one quota ``kind`` (``kyc_query``, ``disclosure_request``)
    this node accepted from a peer on one UTC ``day``. Counted in the database so that
    every process of the node shares one count."""

    __tablename__ = "peer_quota_use"
    __table_args__ = (Index("uq_peer_quota_use_peer_kind_day", "peer", "kind", "day", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    peer: Mapped[str] = mapped_column(String(20))
    kind: Mapped[str] = mapped_column(String(30))
    day: Mapped[date]
    used: Mapped[int] = mapped_column(default=0)
