"""KYC checks, the peers' answers, the references given to peers (and in which answers)
and disclosures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from protocol import Handling, RecordKind

from .base import Base


class KycCheck(Base):
    """A KYC check run by an officer of this node: what was asked, why, by whom, the
    local hits, and (through ``answers``) what each asked peer said."""

    __tablename__ = "kyc_checks"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_uuid: Mapped[str] = mapped_column(String(36), unique=True)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(500))
    scope: Mapped[str] = mapped_column(String(12))  # local, federation
    query: Mapped[dict[str, Any]]
    local_hits: Mapped[list[dict[str, Any]]]
    deadline_at: Mapped[datetime]

    answers: Mapped[list[KycPeerAnswer]] = relationship(
        back_populates="check", order_by="KycPeerAnswer.id"
    )


class KycPeerAnswer(Base):
    """One peer's part of a check: the ``kyc.query`` sent and, once it came, the answer
    (``answered_at`` after the check's deadline makes it a late answer)."""

    __tablename__ = "kyc_peer_answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    check_id: Mapped[int] = mapped_column(ForeignKey("kyc_checks.id"), index=True)
    peer: Mapped[str] = mapped_column(String(20))
    query_message_id: Mapped[str] = mapped_column(String(36), unique=True)
    asked_at: Mapped[datetime]
    answered_at: Mapped[datetime | None]
    hits: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)

    check: Mapped[KycCheck] = relationship(back_populates="answers")


class SharedReference(Base):
    """An opaque reference this node gave a peer for one of its records in a KYC
    answer. References are random and per peer, so peers cannot link their answers,
    and a disclosure request can only name a record the peer was told about."""

    __tablename__ = "shared_references"
    __table_args__ = (
        Index("uq_shared_references_peer_record", "peer", "record_kind", "record_id", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    peer: Mapped[str] = mapped_column(String(20))
    record_kind: Mapped[RecordKind] = mapped_column(String(10))
    record_id: Mapped[int]
    created_at: Mapped[datetime]


class AnsweredReference(Base):
    """A reference this node put in its answer to one ``kyc.query`` of a peer: a
    disclosure request from that peer must cite such a (query, reference) pair."""

    __tablename__ = "kyc_answered_references"
    __table_args__ = (
        Index(
            "uq_kyc_answered_references_peer_query",
            "peer",
            "query_uuid",
            "reference",
            unique=True,
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    peer: Mapped[str] = mapped_column(String(20))
    query_uuid: Mapped[str] = mapped_column(String(36))
    reference: Mapped[str] = mapped_column(String(64))
    answered_at: Mapped[datetime]


class Disclosure(Base):
    """Step 2 of a check: a request for the details behind a reference, asked of a peer
    (outbound) or by a peer (inbound), and its decision: pending, granted or denied.
    ``fields`` are the fields released; ``details`` what was released (inbound: what we
    sent; outbound: what we received)."""

    __tablename__ = "disclosures"
    __table_args__ = (
        Index("uq_disclosures_peer_request", "direction", "peer", "request_uuid", unique=True),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_uuid: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(10))  # outbound, inbound
    peer: Mapped[str] = mapped_column(String(20))
    reference: Mapped[str] = mapped_column(String(64))
    check_id: Mapped[int | None] = mapped_column(ForeignKey("kyc_checks.id"))
    query_uuid: Mapped[str | None] = mapped_column(String(36))
    record_kind: Mapped[RecordKind | None] = mapped_column(String(10))
    record_id: Mapped[int | None]
    justification: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))  # pending, granted, denied
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    fields: Mapped[list[str] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    handling: Mapped[Handling | None] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(1000))
    # Outbound: the message that carried the request (its delivery says if it was refused).
    message_id: Mapped[str | None] = mapped_column(String(36))
