"""The outbox sender: delivers queued messages to peers, one batch per peer at a time.

Work is claimed from the database with a lease (``SELECT … FOR UPDATE SKIP LOCKED`` on
PostgreSQL, so several node processes never take the same message; SQLite serialises
writers anyway). A process that dies leaves leases that expire and are taken over.
Each peer has its own backoff state in the database: capped exponential with jitter.
A message counts as delivered only when the peer's signed receipt for it verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

import httpx
from sqlalchemy import or_, select, update

import protocol

from ..db.models import AlertRecipient, OutboxMessage, Peer
from ..runtime import Node
from ..services.audit import AuditEvent, AuditLog
from ..services.peers import PeerDirectory
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
T = TypeVar("T")
FEDERATION_PATH = "/federation/v1/messages"
# How often a sender forgets expired received messages (``inbound.forget_expired``).
FORGET_EVERY = timedelta(minutes=10)


async def in_thread(step: Callable[..., T], *args: Any) -> T:
    """Run a database step in a worker thread. If the sender is cancelled meanwhile (the
    app shutting down), wait for the step to end first: the node then closes its
    database after the step, not under it (which leaked the step's connection)."""
    running = asyncio.ensure_future(asyncio.to_thread(step, *args))
    try:
        return await asyncio.shield(running)
    except asyncio.CancelledError:
        await asyncio.wait([running])
        raise


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: str
    msg_type: str
    envelope: str
    created_at: datetime
    alert_id: int | None


@dataclass(frozen=True)
class SenderSettings:
    batch_size: int = 50
    lease_seconds: int = 60
    poll_seconds: float = 1.0
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 900.0
    timeout_seconds: float = 30.0


class OutboxSender:
    def __init__(
        self, node: Node, client: httpx.AsyncClient, config: SenderSettings | None = None
    ) -> None:
        self.node = node
        self.client = client
        self.config = config or SenderSettings()
        self.worker_id = f"{node.settings.node_id}-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._urgent: set[asyncio.Task[int]] = set()
        self._loop = asyncio.get_running_loop()
        self._forgotten_at: datetime | None = None

    def wake(self) -> None:
        """Deliver now rather than at the next poll (after a new alert, say)."""
        self._wake.set()

    def deliver_soon(self, message_ids: Collection[str], timeout: float | None = None) -> None:
        """Deliver these messages at once, each peer concurrently, even to a peer in
        backoff, giving up on a peer after ``timeout`` seconds; what fails is retried
        with the rest of the outbox. For messages someone is waiting on (KYC queries
        and their answers), which must not wait for the next round. May be called from
        any thread."""
        if message_ids:
            self._loop.call_soon_threadsafe(self._start_urgent, frozenset(message_ids), timeout)

    def _start_urgent(self, message_ids: frozenset[str], timeout: float | None) -> None:
        task = asyncio.ensure_future(self.deliver_now(message_ids, timeout))
        self._urgent.add(task)  # keep a reference until it is done
        task.add_done_callback(self._urgent.discard)

    async def deliver_now(self, message_ids: Collection[str], timeout: float | None = None) -> int:
        work = await in_thread(self._claim, frozenset(message_ids))
        results = await asyncio.gather(
            *(
                self._deliver(peer_id, endpoint, rows, timeout)
                for (peer_id, endpoint), rows in work.items()
            )
        )
        return sum(results)

    async def run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:  # keep delivering whatever one round did
                log.exception("outbox round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
            self._wake.clear()

    async def run_once(self) -> int:
        """One round: expire overdue messages, claim due work, deliver it. Returns the
        number of messages delivered."""
        await in_thread(self._expire_overdue)
        now = self.node.now()
        if self._forgotten_at is None or now - self._forgotten_at >= FORGET_EVERY:
            await in_thread(self._forget_expired_inbound)
            self._forgotten_at = now
        work = await in_thread(self._claim)
        if not work:
            return 0
        results = await asyncio.gather(
            *(self._deliver(peer_id, endpoint, rows) for (peer_id, endpoint), rows in work.items())
        )
        return sum(results)

    # -- database steps (run in a worker thread) --------------------------------------
    def _expire_overdue(self) -> None:
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

    def _forget_expired_inbound(self) -> None:
        with self.node.sessions() as session:
            forget_expired(session, self.node.now(), self.node.settings.clock_skew_seconds)
            session.commit()

    def _claim(self, only: frozenset[str] | None = None) -> dict[tuple[str, str], list[Claimed]]:
        """Lease due messages of peers not in backoff, or exactly the messages ``only``."""
        now = self.node.now()
        lease = now + timedelta(seconds=self.config.lease_seconds)
        work: dict[tuple[str, str], list[Claimed]] = {}
        with self.node.sessions() as session:
            peers_query = select(Peer.node_id, Peer.endpoint).where(Peer.status == "active")
            if only is None:
                peers_query = peers_query.where(
                    or_(Peer.next_attempt_at.is_(None), Peer.next_attempt_at <= now)
                )
            for node_id, endpoint in session.execute(peers_query).all():
                due = select(OutboxMessage).where(
                    OutboxMessage.recipient == node_id,
                    OutboxMessage.status == "pending",
                    OutboxMessage.expires_at >= now,
                    or_(OutboxMessage.leased_until.is_(None), OutboxMessage.leased_until < now),
                )
                due = (
                    due.where(OutboxMessage.message_id.in_(only))
                    if only is not None
                    else due.where(OutboxMessage.next_attempt_at <= now)
                )
                rows = (
                    session.execute(
                        due.order_by(OutboxMessage.id)
                        .limit(self.config.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                    .scalars()
                    .all()
                )
                for row in rows:
                    row.leased_until, row.leased_by = lease, self.worker_id
                    row.attempts += 1
                if rows:
                    work[(node_id, endpoint)] = [
                        Claimed(
                            r.id, r.message_id, r.msg_type, r.envelope, r.created_at, r.alert_id
                        )
                        for r in rows
                    ]
            session.commit()
        return work

    # -- delivery -------------------------------------------------------------------
    async def _deliver(
        self, peer_id: str, endpoint: str, rows: list[Claimed], timeout: float | None = None
    ) -> int:
        body = ("[" + ",".join(r.envelope for r in rows) + "]").encode("utf-8")
        try:
            response = await self.client.post(
                endpoint.rstrip("/") + FEDERATION_PATH,
                content=body,
                headers={"content-type": "application/json"},
                # Finish (or give up) well within the lease, so no other process re-claims
                # a batch still in flight.
                timeout=min(timeout or self.config.timeout_seconds, self.config.lease_seconds / 2),
            )
        except httpx.HTTPError as exc:
            await in_thread(
                self._backoff, peer_id, rows, f"unreachable: {type(exc).__name__}", None
            )
            return 0
        if response.status_code != 200:
            retry_after = _retry_after(response.headers.get("retry-after"))
            await in_thread(
                self._backoff, peer_id, rows, f"HTTP {response.status_code}", retry_after
            )
            return 0
        try:
            results = response.json()["results"]
            if not isinstance(results, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            await in_thread(self._backoff, peer_id, rows, "unreadable answer", None)
            return 0
        return await in_thread(self._record_results, peer_id, rows, results)

    def _record_results(self, peer_id: str, rows: list[Claimed], results: list[Any]) -> int:
        now = self.node.now()
        by_id = {r.get("id"): r for r in results if isinstance(r, dict)}
        delivered, retry, retry_reason = 0, [], ""
        with self.node.sessions() as session:
            audit: list[AuditEvent] = []
            directory = PeerDirectory(session)
            for claimed in rows:
                row = session.get(OutboxMessage, claimed.id)
                if row is None or row.status != "pending" or row.leased_by != self.worker_id:
                    continue
                result = by_id.get(claimed.message_id)
                code = result.get("error") if result else "no_answer"
                if result and not code:
                    if self._receipt_valid(result.get("receipt"), claimed, peer_id, directory, now):
                        row.status, row.delivered_at = "delivered", now
                        row.receipt, row.leased_until = result["receipt"], None
                        self._set_alert_state(
                            session, row, "delivered", now, only_from=("queued", "failed")
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
                self._set_alert_state(session, row, "failed", now)
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
            if not retry:
                peer.consecutive_failures, peer.next_attempt_at, peer.last_error = 0, None, None
            session.commit()
        if retry:
            self._backoff(peer_id, retry, f"refused: {retry_reason}", None)
        return delivered

    def _receipt_valid(
        self, receipt: Any, claimed: Claimed, peer_id: str, directory: PeerDirectory, now: datetime
    ) -> bool:
        if not isinstance(receipt, str):
            return False
        try:
            opened = protocol.open_envelope(
                receipt.encode("utf-8"),
                identity=self.node.identity,
                directory=directory,
                now=int(now.timestamp()),
                clock_skew=self.node.settings.clock_skew_seconds,
            )
        except protocol.ProtocolError as exc:
            log.warning("receipt from %s for %s refused: %s", peer_id, claimed.message_id, exc.code)
            return False
        payload = opened.payload
        return (
            opened.sender == peer_id
            and isinstance(payload, protocol.Receipt)
            and payload.message_id == claimed.message_id
        )

    def _backoff(
        self, peer_id: str, rows: list[Claimed], reason: str, retry_after: float | None
    ) -> None:
        now = self.node.now()
        with self.node.sessions() as session:
            peer = session.execute(select(Peer).where(Peer.node_id == peer_id)).scalar_one()
            peer.consecutive_failures += 1
            # Bounded exponent: after weeks of failures 2 ** n would overflow a float.
            exponent = min(peer.consecutive_failures - 1, 60)
            delay = min(
                self.config.backoff_cap_seconds, self.config.backoff_base_seconds * 2**exponent
            )
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
    ) -> None:
        if row.alert_id is None or row.msg_type not in ("alert", "alert.update"):
            return
        recipient = session.execute(
            select(AlertRecipient).where(
                AlertRecipient.alert_id == row.alert_id, AlertRecipient.peer == row.recipient
            )
        ).scalar_one_or_none()
        if recipient is not None and (only_from is None or recipient.state in only_from):
            recipient.state, recipient.updated_at = state, now


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
