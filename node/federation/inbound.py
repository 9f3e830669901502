"""Receiving messages from peers.

Each envelope is opened by the protocol library (size, form, version, sender key,
signature, recipient, time, decryption, schema — in that order) with the peers table
as key directory, then de-duplicated on (sender, message id), handled, and answered
with a signed ``receipt``. A re-delivered message gets its original receipt again and
is not processed twice. Rejections are counted with their error code; those of a
message whose signature verified are audited one by one, those made before (anyone can
cause them) are tallied for one aggregated audit entry per interval (``refusals``).

A batch is one database transaction and one commit. Handlers refuse (``NotPermitted``)
before changing anything; should one refuse, the batch is redone with a savepoint per
envelope, so a refusal undoes only its own envelope's effects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import protocol

from ..db.models import InboundMessage, Peer
from ..runtime import Node
from ..services.audit import AuditEvent, AuditLog
from ..services.errors import ServiceError
from ..services.peer_quotas import QuotaDefaults
from ..services.peers import PeerDirectory, current_encryption_key
from .handlers import HANDLERS, Context, NotPermitted

# HTTP status for a single rejected envelope, by error code.
HTTP_STATUS = {
    "too_large": 413,
    "unknown_sender": 403,
    "sender_inactive": 403,
    "unknown_key": 403,
    "key_expired": 403,
    "bad_signature": 403,
    "wrong_recipient": 403,
    "not_permitted": 403,
    "quota_exceeded": 403,
}
DEFAULT_REJECT_STATUS = 400
MAX_BATCH_MESSAGES = 100  # envelopes in one request


@dataclass(frozen=True)
class InboundResult:
    status: str  # accepted, duplicate, rejected
    message_id: str | None = None
    receipt: str | None = None
    error: str | None = None
    detail: str | None = None
    new_alert: bool = False
    answered: bool = False  # an answer to one of our KYC queries or disclosure requests
    replies: tuple[str, ...] = ()  # ids of messages queued in reply
    unauthenticated: bool = False  # refused before the sender's signature verified

    @property
    def http_status(self) -> int:
        if self.status != "rejected":
            return 200
        return HTTP_STATUS.get(self.error or "", DEFAULT_REJECT_STATUS)

    def to_json(self) -> dict[str, str]:
        if self.status == "rejected":
            return {
                "id": self.message_id or "",
                "error": self.error or "",
                "detail": self.detail or "",
            }
        return {"id": self.message_id or "", "status": self.status, "receipt": self.receipt or ""}


@dataclass
class _Batch:
    session: Session
    now: datetime
    directory: PeerDirectory
    known: dict[tuple[str, str], str]  # (sender, message id) -> receipt, already received
    isolate: bool  # a savepoint per envelope
    alerts: dict[tuple[str, str], Any] = field(default_factory=dict)  # see handlers.Context
    audit: list[AuditEvent] = field(default_factory=list)
    # Counted only once the batch commits: (metric, labels).
    counts: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)


class _Isolate(Exception):
    """A handler refused inside a batch run without savepoints: redo it with them."""


class InboundProcessor:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.metrics = node.metrics

    def process(self, raw: bytes) -> InboundResult:
        return self.process_batch([raw])[0]

    def process_batch(self, raws: list[bytes]) -> list[InboundResult]:
        try:
            try:
                return self._process_together(raws, isolate=False)
            except _Isolate:
                return self._process_together(raws, isolate=True)
        except IntegrityError:
            # Another process committed one of these messages first: redo one by one,
            # so those become duplicates and the rest are accepted.
            return [self._process_together([raw], isolate=True)[0] for raw in raws]

    def _process_together(self, raws: list[bytes], *, isolate: bool) -> list[InboundResult]:
        now = self.node.now()
        with self.node.sessions() as session:
            batch = _Batch(
                session, now, PeerDirectory(session), self._already_received(session, raws), isolate
            )
            results = [self._one(batch, raw) for raw in raws]
            senders = {labels[0] for metric, labels in batch.counts if metric == "received"}
            for sender in senders:
                peer = batch.directory.peer(sender)
                if peer is not None:
                    peer.last_contact_at = now
                    # A verified message from a peer in backoff: it is back, deliver now.
                    if peer.next_attempt_at is not None and peer.next_attempt_at > now:
                        peer.next_attempt_at = now
            if batch.audit:
                AuditLog(session).record_many(batch.audit, now=now)
            session.commit()
        counters = {
            "received": self.metrics.messages_received,
            "duplicate": self.metrics.messages_duplicate,
            "rejected": self.metrics.messages_rejected,
        }
        for metric, labels in batch.counts:
            if metric == "unauthenticated":
                self.metrics.refuse_unauthenticated(labels[0])
            else:
                counters[metric].labels(*labels).inc()
        return results

    def _one(self, batch: _Batch, raw: bytes) -> InboundResult:
        node, session, now = self.node, batch.session, batch.now
        try:
            message = node.open_envelope(raw, directory=batch.directory, now=now)
        except protocol.ProtocolError as exc:
            return self._reject(batch, raw, exc)
        existing = batch.known.get((message.sender, message.id))
        if existing is not None:
            batch.counts.append(("duplicate", (message.sender, message.type)))
            return InboundResult("duplicate", message.id, existing)
        peer = batch.directory.peer(message.sender)
        assert peer is not None  # the directory just gave its keys
        ctx = Context(
            session,
            peer,
            message,
            now,
            node.sealing,
            node.settings.kyc_answer_min_score,
            batch.alerts,
            quotas=QuotaDefaults.of(node.settings),
        )
        savepoint = session.begin_nested() if batch.isolate else None
        try:
            HANDLERS[message.type](ctx)
        except (NotPermitted, ServiceError) as exc:
            if savepoint is None:
                raise _Isolate from exc
            savepoint.rollback()
            refusal = exc if isinstance(exc, NotPermitted) else NotPermitted(str(exc))
            return self._reject(batch, raw, refusal, message)
        receipt = self._receipt(peer, message, now)
        session.add(
            InboundMessage(
                sender=message.sender,
                message_id=message.id,
                msg_type=message.type,
                received_at=now,
                expires_at=datetime.fromtimestamp(message.header.expires_at, UTC),
                receipt=receipt,
            )
        )
        if savepoint is not None:
            savepoint.commit()
        batch.known[(message.sender, message.id)] = receipt
        batch.counts.append(("received", (message.sender, message.type)))
        batch.audit.append(
            AuditEvent(
                message.sender,
                "message.received",
                "message",
                message.id,
                {"type": message.type, "bytes": message.size},
            )
        )
        batch.audit.extend(ctx.audit)
        return InboundResult(
            "accepted",
            message.id,
            receipt,
            new_alert=ctx.new_alert,
            answered=ctx.answered,
            replies=tuple(ctx.replies),
        )

    def _already_received(self, session: Session, raws: list[bytes]) -> dict[tuple[str, str], str]:
        """Receipts of messages of this batch received before, looked up in one query by
        their claimed (unverified) ids; a hit counts only after the envelope verifies."""
        claimed: set[tuple[str, str]] = set()
        for raw in raws:
            try:
                header = protocol.peek_header(raw, max_bytes=self.node.settings.max_message_bytes)
            except protocol.ProtocolError:
                continue
            claimed.add((header.sender, header.id))
        if not claimed:
            return {}
        rows = session.execute(
            select(InboundMessage.sender, InboundMessage.message_id, InboundMessage.receipt).where(
                InboundMessage.message_id.in_([message_id for _, message_id in claimed])
            )
        ).all()
        return {
            (r.sender, r.message_id): r.receipt for r in rows if (r.sender, r.message_id) in claimed
        }

    def _receipt(self, peer: Peer, message: protocol.OpenedMessage, now: datetime) -> str:
        recipient = protocol.Recipient(peer.node_id, current_encryption_key(peer, now))
        payload = protocol.Receipt(
            message_id=message.id, status="delivered", at=int(now.timestamp())
        )
        wire = protocol.seal(
            self.node.sealing,
            recipient,
            payload,
            now=int(now.timestamp()),
            ttl=7 * 86400,
            in_reply_to=message.id,
        )
        return wire.decode("utf-8")

    def _reject(
        self,
        batch: _Batch,
        raw: bytes,
        exc: protocol.ProtocolError,
        message: protocol.OpenedMessage | None = None,
    ) -> InboundResult:
        claimed_sender, claimed_id, claimed_type = "?", None, "?"
        if message is not None:
            claimed_sender, claimed_id, claimed_type = message.sender, message.id, message.type
        else:
            try:
                header = protocol.peek_header(raw, max_bytes=self.node.settings.max_message_bytes)
                claimed_sender, claimed_id, claimed_type = header.sender, header.id, header.type
            except protocol.ProtocolError:
                pass
        # Only a peer's id names a series: made-up senders must not mint new ones.
        known = claimed_sender != "?" and batch.directory.peer(claimed_sender) is not None
        batch.counts.append(
            ("rejected", (claimed_sender if known else "?", claimed_type, exc.code))
        )
        unauthenticated = message is None and not getattr(exc, "authenticated", False)
        if unauthenticated:  # whoever sent it chose it: a count, not an audit row
            batch.counts.append(("unauthenticated", (exc.code,)))
            return InboundResult(
                "rejected",
                claimed_id,
                error=exc.code,
                detail=exc.detail[:300],
                unauthenticated=True,
            )
        batch.audit.append(
            AuditEvent(
                f"claimed:{claimed_sender}",
                "message.rejected",
                "message",
                claimed_id,
                {"code": exc.code, "detail": exc.detail[:300], "bytes": len(raw)},
            )
        )
        return InboundResult("rejected", claimed_id, error=exc.code, detail=exc.detail[:300])

    def refuse_unread(self, exc: protocol.ProtocolError) -> InboundResult:
        """A request refused before any envelope was read (a body beyond every batch
        limit, more than 100 envelopes, a batch that is not one): counted like an
        envelope refused before authentication, and not audited one by one."""
        self.metrics.messages_rejected.labels("?", "?", exc.code).inc()
        self.metrics.refuse_unauthenticated(exc.code)
        return InboundResult(
            "rejected", None, error=exc.code, detail=exc.detail[:300], unauthenticated=True
        )


def forget_expired(session: Session, now: datetime, clock_skew: int) -> int:
    """Delete the de-duplication rows of received messages that have expired (with the
    clock-skew allowance and a minute to spare): a replay of such a message is refused
    as ``expired`` before it could be taken for new, so the row is no longer needed.
    Returns how many were deleted; the caller commits."""
    cutoff = now - timedelta(seconds=clock_skew + 60)
    result = session.execute(delete(InboundMessage).where(InboundMessage.expires_at < cutoff))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
