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

What every envelope of a batch would look up alike is looked up once per batch: the
sender's rate bucket, earlier receipts, the alerts the batch's envelopes name (after
they are opened: an alert id is inside the encrypted payload), each sender's sharing
agreement and the key its receipts are sealed to. The batch's new alerts and its
de-duplication rows are written with one statement each, just before the audit entries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

import protocol

from ..db.models import Alert, InboundMessage, Peer, table_of
from ..db.types import UTCDateTime
from ..runtime import Node
from ..schemas.agreements import SharingAgreement
from ..services.audit import AuditEvent, AuditLog
from ..services.errors import ServiceError
from ..services.peer_quotas import QuotaDefaults
from ..services.peers import PeerDirectory, agreement_of, current_encryption_key
from .handlers import HANDLERS, Context, NewAlert, NotPermitted
from .ratelimit import RateLimiter

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
# A peer's last contact is kept to this precision: within it, a batch does not rewrite it.
CONTACT_RESOLUTION = timedelta(seconds=1)


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
    quotas: QuotaDefaults
    alerts: dict[tuple[str, str], Alert | NewAlert | None] = field(
        default_factory=dict
    )  # handlers.Context
    created: list[NewAlert] = field(default_factory=list)  # see handlers.Context
    audit: list[AuditEvent] = field(default_factory=list)
    # Counted only once the batch commits: (metric, labels).
    counts: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)  # de-duplication rows
    agreements: dict[str, SharingAgreement] = field(default_factory=dict)  # by peer
    # Where receipts to a peer are sealed to, by (peer, card serial): a card.update in
    # the batch changes it for the envelopes after it.
    recipients: dict[tuple[str, int], protocol.Recipient] = field(default_factory=dict)


class _Isolate(Exception):
    """A handler refused inside a batch run without savepoints: redo it with them."""


class SlowDown(Exception):
    """The batch's sender is over its rate: nothing was processed; retry after ``wait``
    seconds."""

    def __init__(self, wait: float) -> None:
        super().__init__(f"retry after {wait:.1f} s")
        self.wait = wait


# An envelope opened ahead of its turn, or why it could not be.
_Opened = protocol.OpenedMessage | protocol.ProtocolError


# The statements every batch runs, built once (Core: they skip the ORM's bookkeeping).
_ALERTS, _PEERS = table_of(Alert), table_of(Peer)
_NOW = bindparam("now", type_=UTCDateTime())
_INSERT_ALERTS = insert(_ALERTS)
_INSERT_RECEIVED = insert(table_of(InboundMessage))
# By sender and id, so that the unique index on (sender, message_id) finds them.
_RECEIVED = select(InboundMessage.sender, InboundMessage.message_id, InboundMessage.receipt).where(
    InboundMessage.sender.in_(bindparam("senders", expanding=True)),
    InboundMessage.message_id.in_(bindparam("ids", expanding=True)),
)
_STORED_ALERTS = select(_ALERTS.c.id, _ALERTS.c.origin, _ALERTS.c.alert_uuid).where(
    _ALERTS.c.origin.in_(bindparam("origins", expanding=True)),
    _ALERTS.c.alert_uuid.in_(bindparam("alert_ids", expanding=True)),
)
# A verified message from a peer: it was heard from now; if it was in backoff, it is
# back, deliver to it now.
_PEERS_HEARD = (
    update(_PEERS)
    .where(_PEERS.c.node_id.in_(bindparam("senders", expanding=True)))
    .values(
        last_contact_at=_NOW,
        next_attempt_at=case(
            (_PEERS.c.next_attempt_at > _NOW, _NOW), else_=_PEERS.c.next_attempt_at
        ),
    )
)


class InboundProcessor:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.metrics = node.metrics

    def process(self, raw: bytes) -> InboundResult:
        return self.process_batch([raw])[0]

    def process_batch(
        self, raws: list[bytes], *, limiter: RateLimiter | None = None
    ) -> list[InboundResult]:
        """Process one request's envelopes. With ``limiter``, the batch first takes one
        token per envelope from its sender's bucket (the claimed sender when it is a
        peer, else one shared bucket), or raises ``SlowDown`` having done nothing."""
        try:
            try:
                return self._process_together(raws, isolate=False, limiter=limiter)
            except _Isolate:
                return self._process_together(raws, isolate=True)
        except IntegrityError:
            # Another process committed one of these messages first: redo one by one,
            # so those become duplicates and the rest are accepted.
            return [self._process_together([raw], isolate=True)[0] for raw in raws]

    def _process_together(
        self, raws: list[bytes], *, isolate: bool, limiter: RateLimiter | None = None
    ) -> list[InboundResult]:
        now = self.node.now()
        with self.node.sessions() as session:
            directory = PeerDirectory(session)
            if limiter is not None:
                wait = limiter.take(self._rate_bucket(directory, raws[0]), len(raws))
                if wait > 0:
                    raise SlowDown(wait)
            batch = _Batch(
                session, now, directory, {}, isolate, QuotaDefaults.of(self.node.settings)
            )
            opened = self._open_ahead(batch, raws)
            self._already_received(batch, opened)
            self._find_alerts(batch, opened)
            results = [
                self._one(batch, raw, opened[i] if i < len(opened) else None)
                for i, raw in enumerate(raws)
            ]
            # Core statements, without the ORM's bookkeeping per object: nothing in this
            # transaction reads these rows back.
            connection = session.connection()
            if batch.created:
                connection.execute(_INSERT_ALERTS, [vars(alert) for alert in batch.created])
            if batch.received:
                connection.execute(_INSERT_RECEIVED, batch.received)
            senders = {labels[0] for metric, labels in batch.counts if metric == "received"}
            heard = [sender for sender in senders if self._news_of(batch, sender)]
            if heard:
                connection.execute(_PEERS_HEARD, {"senders": heard, "now": now})
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

    def _open(self, batch: _Batch, raw: bytes) -> _Opened:
        try:
            return self.node.open_envelope(raw, directory=batch.directory, now=batch.now)
        except protocol.ProtocolError as exc:
            return exc

    def _open_ahead(self, batch: _Batch, raws: list[bytes]) -> list[_Opened]:
        """Open the batch's envelopes before handling any, up to and including the
        first ``card.update``: handling it may change the keys the rest are opened with,
        so those are opened in their turn."""
        opened: list[_Opened] = []
        for raw in raws:
            opened.append(self._open(batch, raw))
            if isinstance(opened[-1], protocol.OpenedMessage) and opened[-1].type == "card.update":
                break
        return opened

    def _find_alerts(self, batch: _Batch, opened: list[_Opened]) -> None:
        """Look up, in one query, the alerts the opened envelopes name; those not found
        are remembered as absent (``None``)."""
        wanted = {
            (message.sender, message.payload.alert_id)
            for message in opened
            if isinstance(message, protocol.OpenedMessage)
            and isinstance(message.payload, protocol.Alert | protocol.AlertRetract)
        }
        if not wanted:
            return
        batch.alerts.update(dict.fromkeys(wanted))
        stored = batch.session.connection().execute(
            _STORED_ALERTS,
            {
                "origins": list({origin for origin, _ in wanted}),
                "alert_ids": list({alert_id for _, alert_id in wanted}),
            },
        )
        ids = [row.id for row in stored if (row.origin, row.alert_uuid) in wanted]
        if ids:  # updates and retractions: loaded whole, to be changed
            for alert in batch.session.execute(select(Alert).where(Alert.id.in_(ids))).scalars():
                batch.alerts[(alert.origin, alert.alert_uuid)] = alert

    @staticmethod
    def _news_of(batch: _Batch, sender: str) -> bool:
        """Whether the peer's row must say it was heard from: it is in backoff, or its
        last contact is older than ``CONTACT_RESOLUTION`` (a peer sending many batches a
        second is not written to for each)."""
        peer = batch.directory.peer(sender)
        if peer is None:
            return False
        if peer.next_attempt_at is not None and peer.next_attempt_at > batch.now:
            return True
        last = peer.last_contact_at
        return last is None or not timedelta(0) <= batch.now - last < CONTACT_RESOLUTION

    def _agreement(self, batch: _Batch, peer: Peer) -> SharingAgreement:
        if peer.node_id not in batch.agreements:
            batch.agreements[peer.node_id] = agreement_of(peer)
        return batch.agreements[peer.node_id]

    def _one(self, batch: _Batch, raw: bytes, opened: _Opened | None) -> InboundResult:
        node, session, now = self.node, batch.session, batch.now
        message = opened
        if message is None:  # opened in its turn, after a card.update
            message = self._open(batch, raw)
            self._already_received(batch, [message])
        if isinstance(message, protocol.ProtocolError):
            return self._reject(batch, raw, message)
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
            self._agreement(batch, peer),
            batch.alerts,
            batch.created,
            quotas=batch.quotas,
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
        receipt = self._receipt(batch, peer, message)
        batch.received.append(
            {
                "sender": message.sender,
                "message_id": message.id,
                "msg_type": message.type,
                "received_at": now,
                "expires_at": datetime.fromtimestamp(message.header.expires_at, UTC),
                "receipt": receipt,
            }
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

    def _rate_bucket(self, directory: PeerDirectory, first: bytes) -> str:
        """Rate-limit key, from the first envelope's claimed (unverified) sender: it
        when it is an admitted peer, else one shared bucket for everything else, so
        invented sender ids neither grow the table nor buy a fresh allowance. (A forger
        can still spend a real peer's allowance; see docs/protocol.md on rate limiting.)"""
        try:
            claimed = protocol.peek_header(first, max_bytes=self.node.settings.max_message_bytes)
        except protocol.ProtocolError:
            return "?"
        return claimed.sender if directory.peer(claimed.sender) is not None else "?"

    def _already_received(self, batch: _Batch, opened: list[_Opened]) -> None:
        """Add to ``batch.known`` the receipts of these opened envelopes' messages that
        were received before (in earlier batches), looked up in one query."""
        ids = {(m.sender, m.id) for m in opened if isinstance(m, protocol.OpenedMessage)}
        if not ids:
            return
        rows = batch.session.connection().execute(
            _RECEIVED,
            {
                "senders": list({sender for sender, _ in ids}),
                "ids": [message_id for _, message_id in ids],
            },
        )
        for row in rows:
            if (row.sender, row.message_id) in ids:
                batch.known[(row.sender, row.message_id)] = row.receipt

    def _receipt(self, batch: _Batch, peer: Peer, message: protocol.OpenedMessage) -> str:
        now = batch.now
        key = (peer.node_id, peer.card_serial)
        if key not in batch.recipients:
            batch.recipients[key] = protocol.Recipient(
                peer.node_id, current_encryption_key(peer, now)
            )
        recipient = batch.recipients[key]
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
