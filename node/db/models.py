"""SQLAlchemy 2 models of the node's database.

Schema changes go through Alembic migrations in ``migrations/versions``; nothing here
creates tables at run time.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from .types import UTCDateTime

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {
        datetime: UTCDateTime(),
        date: Date(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        list[str]: JSON(),
        list[dict[str, Any]]: JSON(),
    }


class ApiToken(Base):
    """A bearer token for the local API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]


class RecordMixin:
    """Columns every kept record has: opaque reference, version, who/when, soft delete."""

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(36), unique=True)
    handling: Mapped[str] = mapped_column(String(12))
    search_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(100))


class Licensee(RecordMixin, Base):
    """A licensed or registered actor: buying house / comptoir, collector, exporter, ..."""

    __tablename__ = "licensees"
    __table_args__ = (
        Index(
            "uq_licensees_live_licence_number",
            "licence_number",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    licence_number: Mapped[str] = mapped_column(String(64))
    licence_type: Mapped[str] = mapped_column(String(20))
    legal_name: Mapped[str] = mapped_column(String(200))
    trade_names: Mapped[list[str]] = mapped_column(default=list)
    persons: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    address: Mapped[str | None] = mapped_column(String(500))
    region: Mapped[str | None] = mapped_column(String(100))
    issued_on: Mapped[date | None]
    expires_on: Mapped[date | None]
    status: Mapped[str] = mapped_column(String(12))

    status_history: Mapped[list[LicenceStatusChange]] = relationship(
        back_populates="licensee", order_by="LicenceStatusChange.id"
    )


class LicenceStatusChange(Base):
    __tablename__ = "licence_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    licensee_id: Mapped[int] = mapped_column(ForeignKey("licensees.id"), index=True)
    status: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(500))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))

    licensee: Mapped[Licensee] = relationship(back_populates="status_history")


class Subject(RecordMixin, Base):
    """A person or organisation of interest, flagged by an agency."""

    __tablename__ = "subjects"

    kind: Mapped[str] = mapped_column(String(12))
    names: Mapped[list[str]]
    aliases: Mapped[list[str]] = mapped_column(default=list)
    date_of_birth: Mapped[str | None] = mapped_column(String(10))
    nationality: Mapped[str | None] = mapped_column(String(2))
    documents: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    linked_licence_numbers: Mapped[list[str]] = mapped_column(default=list)
    reason_category: Mapped[str] = mapped_column(String(30))
    risk_level: Mapped[str] = mapped_column(String(10))
    narrative: Mapped[str | None] = mapped_column(Text)
    source_agency: Mapped[str | None] = mapped_column(String(200))


class RecordChange(Base):
    """History of a record: one row per version, with the changed fields and a snapshot."""

    __tablename__ = "record_changes"
    __table_args__ = (Index("ix_record_changes_record", "record_kind", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_kind: Mapped[str] = mapped_column(String(20))
    record_id: Mapped[int]
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))
    changes: Mapped[dict[str, Any]]
    snapshot: Mapped[dict[str, Any]]


class AuditEntry(Base):
    """One entry of the append-only, hash-chained audit log."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    at: Mapped[datetime] = mapped_column(index=True)
    actor: Mapped[str] = mapped_column(String(100), index=True)
    action: Mapped[str] = mapped_column(String(60), index=True)
    target_kind: Mapped[str | None] = mapped_column(String(30))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The single row naming the last audit entry; locked to serialise appends."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


# -- federation -------------------------------------------------------------------------


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


class Alert(Base):
    """An early-warning alert, sent by this node (outbound) or received (inbound)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("uq_alerts_origin_alert", "origin", "alert_uuid", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_uuid: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(10))  # outbound, inbound
    origin: Mapped[str] = mapped_column(String(20))
    source_message_id: Mapped[str | None] = mapped_column(String(36))
    revision: Mapped[int]
    category: Mapped[str] = mapped_column(String(30))
    severity: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    subjects: Mapped[list[dict[str, Any]]]
    place: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    handling: Mapped[str] = mapped_column(String(12))
    references: Mapped[list[str]]
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10))  # active, retracted
    retract_reason: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    read_by: Mapped[str | None] = mapped_column(String(100))
    acted_at: Mapped[datetime | None]
    acted_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]

    recipients: Mapped[list[AlertRecipient]] = relationship(
        back_populates="alert", order_by="AlertRecipient.id"
    )


class AlertRecipient(Base):
    """Per-peer state of an outbound alert: queued, delivered, read, acted, failed,
    expired, or withheld (the sharing agreement did not allow it)."""

    __tablename__ = "alert_recipients"
    __table_args__ = (Index("uq_alert_recipients_alert_peer", "alert_id", "peer", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    peer: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime]

    alert: Mapped[Alert] = relationship(back_populates="recipients")


# -- KYC matching -----------------------------------------------------------------------

# SQLite makes only an INTEGER primary key the (64-bit) rowid.
MatchId = BigInteger().with_variant(Integer(), "sqlite")


class MatchRecord(Base):
    """What the KYC matcher needs of one person or organisation (see ``node.matching``):
    a licensee (part 0) or one of its persons (part 1 + index), or a subject (part 0).

    ``id`` is computed, not allocated: ``record_id * 128 + kind * 64 + part`` (kind 0
    licensee, 1 subject), so a bulk import writes index rows without reading ids back.
    ``names`` holds ``[display, normalised, tag]`` triples, ``identifiers`` prefixed
    normalised numbers (``d:`` document, ``l:`` licence), ``keys`` this part's rows in
    ``match_keys`` (to remove exactly those).
    """

    __tablename__ = "match_records"

    id: Mapped[int] = mapped_column(MatchId, primary_key=True, autoincrement=False)
    record_kind: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[int]
    part: Mapped[int]
    party: Mapped[str] = mapped_column(String(12))
    names: Mapped[list[Any]]
    date_of_birth: Mapped[str | None] = mapped_column(String(10))
    nationality: Mapped[str | None] = mapped_column(String(2))
    identifiers: Mapped[list[str]]
    keys: Mapped[list[str]]


class MatchKey(Base):
    """One blocking key of one match record (``node.matching.keys``); the primary key is
    the lookup index (a clustered table on SQLite)."""

    __tablename__ = "match_keys"
    __table_args__ = ({"sqlite_with_rowid": False},)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    match_id: Mapped[int] = mapped_column(MatchId, primary_key=True, autoincrement=False)


# -- KYC checks and disclosures ---------------------------------------------------------


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
    record_kind: Mapped[str] = mapped_column(String(10))
    record_id: Mapped[int]
    created_at: Mapped[datetime]


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
    record_kind: Mapped[str | None] = mapped_column(String(10))
    record_id: Mapped[int | None]
    justification: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(10))  # pending, granted, denied
    decided_by: Mapped[str | None] = mapped_column(String(100))
    decided_at: Mapped[datetime | None]
    fields: Mapped[list[str] | None] = mapped_column(JSON)
    details: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    handling: Mapped[str | None] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(1000))


# -- console users and their sessions ----------------------------------------------------


class User(Base):
    """A person who signs in to the web console, with one role (as API tokens have).

    ``password_hash`` is ``scrypt$n$r$p$salt$hash`` (see ``node.services.passwords``);
    ``failed_attempts`` and ``locked_until`` implement the lock-out after repeated
    failures; ``language`` is the console language chosen by the user (None: follow
    the browser)."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(default=False)
    language: Mapped[str | None] = mapped_column(String(8))
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
    disabled_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    password_changed_at: Mapped[datetime]
    last_sign_in_at: Mapped[datetime | None]


class ConsoleSession(Base):
    """A signed-in browser: the cookie carries a random secret, only its SHA-256 is
    stored; ``csrf_token`` is the per-session token every console form must echo."""

    __tablename__ = "console_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    last_seen_at: Mapped[datetime]
    expires_at: Mapped[datetime]
