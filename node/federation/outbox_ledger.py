"""The outbox's bookkeeping for the sender, in the database: which peers have work,
claiming batches under a lease, recording receipts, releasing what failed, backoff.

Work is claimed with a lease (``SELECT … FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
several node processes never take the same message; SQLite serialises writers anyway).
A process that dies leaves leases that expire and are taken over. Each peer has its own
backoff state in the database: capped exponential with jitter. A message counts as
delivered only when the peer's signed receipt for it verifies. Every method is one
transaction, run by the sender in a worker thread.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, or_, select, update

import protocol

from ..db import reading
from ..db.models import AlertRecipient, OutboxMessage, Peer
from ..runtime import Node
from ..services.audit import AuditEvent, AuditLog
from ..services.peers import PeerDirectory
from .clock_offset import skew_named
from .inbound import forget_expired

log = logging.getLogger("kpnet.sender")

# Refusals that may clear up on their own (the peer has not admitted us yet, our key
# is not known there yet, clocks disagree): retry with backoff, do not give up.
RETRYABLE_CODES = frozenset(
    {
        "unknown_sender",
        "sender_inactive",
        "unknown_key",
        "key_expired",
        "not_yet_valid",
    }
)
UNREACHABLE = "unreachable: "  # how a failure to reach the peer at all begins
TIMED_OUT = "timed out: "
LEASE_MARGIN_SECONDS = 5.0


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: str
    msg_type: str
    envelope: str
    created_at: datetime
    alert_id: int | None


@dataclass
class OutboxLedger:
    node: Node
    worker_id: str
    lease_seconds: int
    max_batch_messages: int
    backoff_base_seconds: float
    backoff_cap_seconds: float

    def expire_overdue(self) -> None:
        now = self.node.now()
        with self.node.sessions() as session:
            expired = (
                session.execute(
                    select(OutboxMessage)
                    .where(
                        OutboxMessage.status == "pending",
                        OutboxMessage.expires_at < now,
                        or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until < now),
                    )
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            for row in expired:
                row.status, row.last_error, row.leased_until = (
                    "expired",
                    "expired before delivery",
                    None,
                )
                self._set_alert_state(session, row, "expired", now)
            session.commit()

    def forget_expired_inbound(self) -> None:
        with self.node.sessions() as session:
            forget_expired(session, self.node.now(), self.node.settings.clock_skew_seconds)
            session.commit()

    def peers_to_serve(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Active peers with messages due and no backoff; and peers in backoff because
        they could not be reached or did not answer in time (to probe)."""
        now = self.node.now()
        with reading(self.node.sessions) as session:
            due = session.execute(
                select(Peer.node_id, Peer.endpoint)
                .where(
                    Peer.status == "active",
                    or_(Peer.next_attempt_at.is_(None), Peer.next_attempt_at <= now),
                    select(OutboxMessage.id)
                    .where(
                        OutboxMessage.recipient == Peer.node_id,
                        OutboxMessage.status == "pending",
                        OutboxMessage.next_attempt_at <= now,
                        or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until < now),
                    )
                    .exists(),
                )
                .order_by(Peer.node_id)
            ).all()
            unreachable = session.execute(
                select(Peer.node_id, Peer.endpoint).where(
                    Peer.status == "active",
                    Peer.next_attempt_at > now,
                    or_(
                        Peer.last_error.startswith(UNREACHABLE),
                        Peer.last_error.startswith(TIMED_OUT),
                    ),
                )
            ).all()
        return [(p, e) for p, e in due], [(p, e) for p, e in unreachable]

    def _due(self, recipient: str, now: datetime) -> Select[Any]:
        return select(OutboxMessage).where(
            OutboxMessage.recipient == recipient,
            OutboxMessage.status == "pending",
            OutboxMessage.expires_at >= now,
            or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until < now),
        )

    def _lease(
        self, rows: Sequence[OutboxMessage], now: datetime, deadline: float
    ) -> list[Claimed]:
        # The lease outlasts the delivery's deadline, so no other process re-claims a
        # batch still in flight.
        seconds = max(float(self.lease_seconds), deadline + LEASE_MARGIN_SECONDS)
        lease = now + timedelta(seconds=seconds)
        for row in rows:
            row.leased_until, row.leased_by = lease, self.worker_id
            row.attempts += 1
        return [
            Claimed(r.id, r.message_id, r.msg_type, r.envelope, r.created_at, r.alert_id)
            for r in rows
        ]

    def claim_peer(self, peer_id: str, budget: int, deadline: float) -> list[Claimed]:
        """Lease the next due messages of one peer not in backoff: as many as fit in
        ``budget`` bytes (one at least), in the order they were queued."""
        now = self.node.now()
        with self.node.sessions() as session:
            peer = session.execute(
                select(Peer.id).where(
                    Peer.node_id == peer_id,
                    Peer.status == "active",
                    or_(Peer.next_attempt_at.is_(None), Peer.next_attempt_at <= now),
                )
            ).first()
            if peer is None:
                return []
            candidates = (
                session.execute(
                    self._due(peer_id, now)
                    .where(OutboxMessage.next_attempt_at <= now)
                    .order_by(OutboxMessage.id)
                    .limit(self.max_batch_messages)
                    .with_for_update(skip_locked=True)
                )
                .scalars()
                .all()
            )
            taken: list[OutboxMessage] = []
            size = 0
            for row in candidates:
                if taken and size + len(row.envelope) > budget:
                    break
                taken.append(row)
                size += len(row.envelope)
            claimed = self._lease(taken, now, deadline)
            session.commit()
        return claimed

    def claim_messages(
        self, only: frozenset[str], deadline: float
    ) -> dict[tuple[str, str], tuple[list[Claimed], float]]:
        """Lease exactly the messages ``only`` (to active peers, in backoff or not);
        each peer's with the seconds its delivery may take."""
        now = self.node.now()
        work: dict[tuple[str, str], tuple[list[Claimed], float]] = {}
        with self.node.sessions() as session:
            peers = session.execute(
                select(Peer.node_id, Peer.endpoint).where(
                    Peer.status == "active",
                    Peer.node_id.in_(
                        select(OutboxMessage.recipient).where(OutboxMessage.message_id.in_(only))
                    ),
                )
            ).all()
            for node_id, endpoint in peers:
                rows = (
                    session.execute(
                        self._due(node_id, now)
                        .where(OutboxMessage.message_id.in_(only))
                        .order_by(OutboxMessage.id)
                        .with_for_update(skip_locked=True)
                    )
                    .scalars()
                    .all()
                )
                if rows:
                    # Never worth delivering after it expires (a KYC query's expiry is
                    # its asker's deadline).
                    left = min(r.expires_at for r in rows) - now
                    until = max(1.0, min(deadline, left.total_seconds()))
                    work[(node_id, endpoint)] = (self._lease(rows, now, until), until)
            session.commit()
        return work

    def end_backoff(self, peer_id: str) -> bool:
        """The peer answers again: its next attempt is now (its failure count stays,
        so should it fail again the wait goes on growing). True if it was waiting."""
        now = self.node.now()
        with self.node.sessions() as session:
            result = session.execute(
                update(Peer)
                .where(Peer.node_id == peer_id, Peer.next_attempt_at > now)
                .values(next_attempt_at=now)
            )
            session.commit()
        return bool(result.rowcount)  # type: ignore[attr-defined]

    def record_results(
        self,
        peer_id: str,
        rows: list[Claimed],
        results: list[Any],
        urgent: bool = False,
        offset: float | None = None,
    ) -> int:
        now = self.node.now()
        by_id = {r.get("id"): r for r in results if isinstance(r, dict)}
        delivered, retry, retry_reason = 0, [], ""
        with self.node.sessions() as session:
            audit: list[AuditEvent] = []
            directory = PeerDirectory(session)
            # Each batch's rows and alert states in two queries, not two per message.
            loaded = {
                r.id: r
                for r in session.execute(
                    select(OutboxMessage).where(OutboxMessage.id.in_([c.id for c in rows]))
                ).scalars()
            }
            alert_ids = {c.alert_id for c in rows if c.alert_id is not None}
            states = {
                (r.alert_id, r.peer): r
                for r in session.execute(
                    select(AlertRecipient).where(
                        AlertRecipient.peer == peer_id, AlertRecipient.alert_id.in_(alert_ids)
                    )
                ).scalars()
            }
            for claimed in rows:
                row = loaded.get(claimed.id)
                if row is None or row.status != "pending" or row.leased_by != self.worker_id:
                    continue
                result = by_id.get(claimed.message_id)
                code = result.get("error") if result else "no_answer"
                if result and not code:
                    if self._receipt_valid(result.get("receipt"), claimed, peer_id, directory, now):
                        row.status, row.delivered_at = "delivered", now
                        row.receipt, row.leased_until = result["receipt"], None
                        self._set_alert_state(
                            session, row, "delivered", now, ("queued", "failed"), states
                        )
                        audit.append(
                            AuditEvent(
                                str(self.node.settings.node_id),
                                "message.sent",
                                "message",
                                claimed.message_id,
                                {"type": claimed.msg_type, "peer": peer_id},
                            )
                        )
                        self.node.metrics.messages_sent.labels(peer_id, claimed.msg_type).inc()
                        self.node.metrics.delivery_latency.labels(peer_id).observe(
                            max(0.0, (now - claimed.created_at).total_seconds())
                        )
                        delivered += 1
                        continue
                    code = "bad_receipt"
                if code in RETRYABLE_CODES or code in ("no_answer", "bad_receipt"):
                    retry.append(claimed)
                    retry_reason = str(code)
                    continue
                row.status, row.last_error, row.leased_until = "failed", str(code)[:500], None
                self._set_alert_state(session, row, "failed", now, None, states)
                self.node.metrics.messages_failed.labels(peer_id, claimed.msg_type, str(code)).inc()
                audit.append(
                    AuditEvent(
                        str(self.node.settings.node_id),
                        "message.failed",
                        "message",
                        claimed.message_id,
                        {"type": claimed.msg_type, "peer": peer_id, "code": str(code)},
                    )
                )
            if audit:
                AuditLog(session).record_many(audit, now=now)
            peer = session.execute(select(Peer).where(Peer.node_id == peer_id)).scalar_one()
            peer.last_contact_at = now
            if offset is not None:
                peer.clock_offset_seconds = offset
            if not retry:
                peer.consecutive_failures, peer.next_attempt_at, peer.last_error = 0, None, None
            session.commit()
        if any(c.msg_type == "card.update" for c in rows) and not retry:
            # The peer has our new card: this process may sign with the new key now
            # (others notice within the key ring's check interval).
            self.node.keys.refresh(force=True)
        if retry:
            reason = f"refused: {retry_reason}"
            self.release(peer_id, retry, reason, None, urgent, offset)
        return delivered

    def _receipt_valid(
        self, receipt: Any, claimed: Claimed, peer_id: str, directory: PeerDirectory, now: datetime
    ) -> bool:
        if not isinstance(receipt, str):
            return False
        try:
            opened = self.node.open_envelope(receipt.encode("utf-8"), directory=directory, now=now)
        except protocol.ProtocolError as exc:
            log.warning("receipt from %s for %s refused: %s", peer_id, claimed.message_id, exc.code)
            return False
        payload = opened.payload
        return (
            opened.sender == peer_id
            and isinstance(payload, protocol.Receipt)
            and payload.message_id == claimed.message_id
        )

    def release(
        self,
        peer_id: str,
        rows: list[Claimed],
        reason: str,
        retry_after: float | None,
        urgent: bool = False,
        offset: float | None = None,
    ) -> None:
        """A delivery failed: give its messages back to the outbox and, unless it was
        urgent, put the peer into backoff. A failure explained by the peer's clock is
        named as such."""
        now = self.node.now()
        if not reason.startswith(UNREACHABLE):
            reason = skew_named(offset, self.node.settings.clock_skew_seconds) or reason
        with self.node.sessions() as session:
            peer = session.execute(select(Peer).where(Peer.node_id == peer_id)).scalar_one()
            if offset is not None:
                peer.clock_offset_seconds = offset
            if not urgent:
                peer.consecutive_failures += 1
                # Bounded exponent: after weeks of failures 2 ** n would overflow a float.
                exponent = min(peer.consecutive_failures - 1, 60)
                delay = min(self.backoff_cap_seconds, self.backoff_base_seconds * 2**exponent)
                delay = random.uniform(delay / 2, delay)  # noqa: S311 - jitter, not secrecy
                if retry_after is not None:
                    delay = max(delay, retry_after)
                peer.next_attempt_at = now + timedelta(seconds=delay)
                peer.last_error = reason[:500]
            session.execute(
                update(OutboxMessage)
                .where(
                    OutboxMessage.id.in_([r.id for r in rows]),
                    OutboxMessage.leased_by == self.worker_id,
                    OutboxMessage.status == "pending",
                )
                .values(leased_until=None, leased_by=None, last_error=reason[:500])
            )
            session.commit()
        self.node.metrics.delivery_attempts_failed.labels(peer_id, reason.split(":")[0]).inc()

    @staticmethod
    def _set_alert_state(
        session: Any,
        row: OutboxMessage,
        state: str,
        now: datetime,
        only_from: tuple[str, ...] | None = None,
        known: dict[tuple[int, str], AlertRecipient] | None = None,
    ) -> None:
        """Set the alert's state for the row's recipient (``known``: those states
        already loaded, by alert and peer)."""
        if row.alert_id is None or row.msg_type not in ("alert", "alert.update"):
            return
        if known is not None:
            recipient = known.get((row.alert_id, row.recipient))
        else:
            recipient = session.execute(
                select(AlertRecipient).where(
                    AlertRecipient.alert_id == row.alert_id, AlertRecipient.peer == row.recipient
                )
            ).scalar_one_or_none()
        if recipient is not None and (only_from is None or recipient.state in only_from):
            recipient.state, recipient.updated_at = state, now
