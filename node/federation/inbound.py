"""Receiving messages from peers.

Each envelope is opened by the protocol library (size, form, version, sender key,
signature, recipient, time, decryption, schema — in that order) with the peers table
as key directory, then de-duplicated on (sender, message id), handled, and answered
with a signed ``receipt``, all in one transaction. A re-delivered message gets its
original receipt again and is not processed twice. Rejections are audited and
counted with their error code.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import protocol

from ..db.models import InboundMessage, Peer
from ..runtime import Node
from ..services.audit import AuditLog
from ..services.peers import PeerDirectory, current_encryption_key
from ..services.records import RecordError
from .handlers import HANDLERS, Context, NotPermitted

# HTTP status for a single rejected envelope, by error code.
HTTP_STATUS = {
    "too_large": 413,
    "unknown_sender": 403, "sender_inactive": 403, "unknown_key": 403, "key_expired": 403,
    "bad_signature": 403, "wrong_recipient": 403, "not_permitted": 403,
}
DEFAULT_REJECT_STATUS = 400


@dataclass(frozen=True)
class InboundResult:
    status: str  # accepted, duplicate, rejected
    message_id: str | None = None
    receipt: str | None = None
    error: str | None = None
    detail: str | None = None
    new_alert_ids: tuple[int, ...] = ()

    @property
    def http_status(self) -> int:
        if self.status != "rejected":
            return 200
        return HTTP_STATUS.get(self.error or "", DEFAULT_REJECT_STATUS)

    def to_json(self) -> dict[str, str]:
        if self.status == "rejected":
            return {"id": self.message_id or "", "error": self.error or "", "detail": self.detail or ""}
        return {"id": self.message_id or "", "status": self.status, "receipt": self.receipt or ""}


class InboundProcessor:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.metrics = node.metrics

    def process(self, raw: bytes) -> InboundResult:
        node = self.node
        now = node.now()
        with node.sessions() as session:
            try:
                message = protocol.open_envelope(
                    raw, identity=node.identity, directory=PeerDirectory(session),
                    now=int(now.timestamp()), max_bytes=node.settings.max_message_bytes,
                    clock_skew=node.settings.clock_skew_seconds,
                )
            except protocol.ProtocolError as exc:
                session.rollback()
                return self._reject(raw, exc, now)
            existing = self._receipt_of(session, message.sender, message.id)
            if existing is not None:
                self.metrics.messages_duplicate.labels(message.sender, message.type).inc()
                return InboundResult("duplicate", message.id, existing)
            peer = session.execute(select(Peer).where(Peer.node_id == message.sender)).scalar_one()
            ctx = Context(session, peer, message, now, node.identity.node_id)
            try:
                HANDLERS[message.type](ctx)
            except NotPermitted as exc:
                session.rollback()
                return self._reject(raw, exc, now, message)
            except RecordError as exc:
                session.rollback()
                return self._reject(raw, NotPermitted(str(exc)), now, message)
            receipt = self._receipt(peer, message, now)
            peer.last_contact_at = now
            session.add(InboundMessage(
                sender=message.sender, message_id=message.id, msg_type=message.type,
                received_at=now, expires_at=datetime.fromtimestamp(message.header.expires_at, UTC),
                receipt=receipt,
            ))
            AuditLog(session).record(
                message.sender, "message.received", now=now, target_kind="message",
                target_id=message.id, detail={"type": message.type, "bytes": message.size},
            )
            try:
                session.commit()
            except IntegrityError:
                # The same message arrived concurrently and was committed first.
                session.rollback()
                existing = self._receipt_of(session, message.sender, message.id)
                if existing is None:
                    raise
                self.metrics.messages_duplicate.labels(message.sender, message.type).inc()
                return InboundResult("duplicate", message.id, existing)
        self.metrics.messages_received.labels(message.sender, message.type).inc()
        return InboundResult("accepted", message.id, receipt, new_alert_ids=tuple(ctx.new_alert_ids))

    @staticmethod
    def _receipt_of(session, sender: str, message_id: str) -> str | None:  # type: ignore[no-untyped-def]
        return session.execute(
            select(InboundMessage.receipt).where(
                InboundMessage.sender == sender, InboundMessage.message_id == message_id
            )
        ).scalar_one_or_none()

    def _receipt(self, peer: Peer, message: protocol.OpenedMessage, now: datetime) -> str:
        recipient = protocol.Recipient(peer.node_id, current_encryption_key(peer, now))
        payload = protocol.Receipt(message_id=message.id, status="delivered", at=int(now.timestamp()))
        wire = protocol.seal(self.node.identity, recipient, payload, now=int(now.timestamp()),
                             ttl=7 * 86400, in_reply_to=message.id)
        return wire.decode("utf-8")

    def _reject(self, raw: bytes, exc: protocol.ProtocolError, now: datetime,
                message: protocol.OpenedMessage | None = None) -> InboundResult:
        claimed_sender, claimed_id, claimed_type = "?", None, "?"
        if message is not None:
            claimed_sender, claimed_id, claimed_type = message.sender, message.id, message.type
        else:
            try:
                header = protocol.peek_header(raw, max_bytes=self.node.settings.max_message_bytes)
                claimed_sender, claimed_id, claimed_type = header.sender, header.id, header.type
            except protocol.ProtocolError:
                pass
        self.metrics.messages_rejected.labels(claimed_sender, claimed_type, exc.code).inc()
        with self.node.sessions() as session:
            AuditLog(session).record(
                f"claimed:{claimed_sender}", "message.rejected", now=now, target_kind="message",
                target_id=claimed_id, detail={"code": exc.code, "detail": exc.detail[:300],
                                              "bytes": len(raw)},
            )
            session.commit()
        return InboundResult("rejected", claimed_id, error=exc.code, detail=exc.detail[:300])
