"""The outbox sender: delivers queued messages to peers, each peer on its own.

Every peer with due work gets its own delivery task, which sends batch after batch,
in the order messages were queued, while work is due; a peer that hangs or trickles
holds up no other (each request has connect and total deadlines). Batches are sized to
the peer's measured link (``link_estimate``) and gzip-compressed to peers that accept
it. Work is claimed from the database with a lease (``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so several node processes never take the same message; SQLite
serialises writers anyway). A process that dies leaves leases that expire and are
taken over. Each peer has its own backoff state in the database: capped exponential
with jitter, ended early when a probe of the peer answers or a verified message from
it arrives. A message counts as delivered only when the peer's signed receipt for it
verifies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import random
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx
from sqlalchemy import Select, or_, select, update

import protocol

from ..db.models import AlertRecipient, OutboxMessage, Peer
from ..runtime import Node
from ..services.audit import AuditEvent, AuditLog
from ..services.peers import PeerDirectory
from .clock_offset import measured_offset, skew_named
from .inbound import MAX_BATCH_MESSAGES, forget_expired
from .link_estimate import LinkEstimate

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
LIVENESS_PATH = "/livez"
UNREACHABLE = "unreachable: "  # how a failure to reach the peer at all begins
TIMED_OUT = "timed out: "
LEASE_MARGIN_SECONDS = 30.0
COMPRESS_LEVEL = 6
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
    max_batch_messages: int = MAX_BATCH_MESSAGES
    max_batch_bytes: int = 512 * 1024
    lease_seconds: int = 60  # at least; a slow batch's lease outlasts its deadline
    poll_seconds: float = 1.0
    backoff_base_seconds: float = 2.0
    backoff_cap_seconds: float = 900.0
    connect_seconds: float = 10.0
    urgent_seconds: float = 15.0  # deadline of an urgent delivery that names none
    probe_seconds: float = 3.0  # how often a peer that could not be reached is probed
    max_peers: int = 32  # deliveries running at once, one per peer


class OutboxSender:
    """Delivers the outbox: each peer on its own task, so a slow or hung peer holds up
    nobody else, batch after batch while work is due, sized to the peer's link."""

    def __init__(
        self, node: Node, client: httpx.AsyncClient, config: SenderSettings | None = None
    ) -> None:
        self.node = node
        self.client = client
        self.config = config or SenderSettings()
        self.worker_id = f"{node.settings.node_id}-{uuid.uuid4().hex[:12]}"
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._peer_tasks: dict[str, asyncio.Task[int]] = {}
        self._probes: dict[str, asyncio.Task[None]] = {}
        self._probed_at: dict[str, float] = {}
        self._links: dict[str, LinkEstimate] = {}
        self._compress: set[str] = set()  # peers that said they accept gzip bodies
        self._slots = asyncio.Semaphore(self.config.max_peers)
        self._loop = asyncio.get_running_loop()
        self._forgotten_at: datetime | None = None

    def wake(self) -> None:
        """Deliver now rather than at the next poll (after a new alert, say). May be
        called from any thread."""
        self._call_soon(self._wake.set)

    def _call_soon(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback`` on the sender's loop, unless that loop has stopped (the app
        has shut down: nothing is delivering any more)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self._loop.call_soon_threadsafe(callback, *args)

    def deliver_soon(self, message_ids: Collection[str], timeout: float | None = None) -> None:
        """Deliver these messages at once, each peer concurrently, even to a peer in
        backoff, giving up on a peer after ``timeout`` seconds; what fails is retried
        with the rest of the outbox, and does not put the peer into backoff (a slow KYC
        answer must not hold up alerts). For messages someone is waiting on (KYC
        queries and their answers). May be called from any thread."""
        if message_ids:
            self._call_soon(self._start_urgent, frozenset(message_ids), timeout)

    def _start_urgent(self, message_ids: frozenset[str], timeout: float | None) -> None:
        self._keep(asyncio.ensure_future(self.deliver_now(message_ids, timeout)))

    def _keep(self, task: asyncio.Task[Any]) -> None:
        self._tasks.add(task)  # keep a reference until it is done
        task.add_done_callback(self._tasks.discard)

    async def deliver_now(self, message_ids: Collection[str], timeout: float | None = None) -> int:
        deadline = timeout or self.config.urgent_seconds
        work = await in_thread(self._claim_messages, frozenset(message_ids), deadline)
        results = await asyncio.gather(
            *(
                self._deliver(peer_id, endpoint, rows, until, urgent=True)
                for (peer_id, endpoint), (rows, until) in work.items()
            )
        )
        return sum(max(0, n) for n in results)

    async def run(self) -> None:
        try:
            while True:
                self._wake.clear()
                try:
                    await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception:  # keep delivering whatever one round did
                    log.exception("outbox round failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
        finally:
            running = [*self._tasks, *self._peer_tasks.values(), *self._probes.values()]
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def run_once(self) -> None:
        """One round: expire overdue messages, then start delivering to each peer with
        due work that has no delivery running, and probe peers that could not be
        reached. Returns without waiting for the deliveries."""
        await in_thread(self._expire_overdue)
        now = self.node.now()
        if self._forgotten_at is None or now - self._forgotten_at >= FORGET_EVERY:
            await in_thread(self._forget_expired_inbound)
            self._forgotten_at = now
        due, unreachable = await in_thread(self._peers_to_serve)
        for peer_id, endpoint in due:
            if peer_id not in self._peer_tasks:
                task = asyncio.ensure_future(self._serve_peer(peer_id, endpoint))
                self._peer_tasks[peer_id] = task
                task.add_done_callback(partial(_forget, self._peer_tasks, peer_id))
        clock = self._loop.time()
        for peer_id, endpoint in unreachable:
            if peer_id in self._probes or peer_id in self._peer_tasks:
                continue
            if clock - self._probed_at.get(peer_id, 0.0) < self.config.probe_seconds:
                continue
            self._probed_at[peer_id] = clock
            probe = asyncio.ensure_future(self._probe(peer_id, endpoint))
            self._probes[peer_id] = probe
            probe.add_done_callback(partial(_forget, self._probes, peer_id))

    async def _serve_peer(self, peer_id: str, endpoint: str) -> int:
        """Deliver to one peer, batch after batch, while it has due work and answers.
        A batch's receipts are recorded while the next batch goes (one at a time, so
        the peer still receives batches in order)."""
        delivered = 0
        recording: asyncio.Future[int] | None = None
        async with self._slots:
            link = self._link(peer_id)
            try:
                while True:
                    budget = link.batch_bytes()
                    rows = await in_thread(self._claim_peer, peer_id, budget, link.deadline(budget))
                    if not rows:
                        break
                    size = sum(len(r.envelope) for r in rows)
                    answered = await self._upload(peer_id, endpoint, rows, link.deadline(size))
                    if recording is not None:
                        delivered += await recording
                    recording = answered
                    if answered is None:
                        break
            finally:
                if recording is not None:
                    delivered += await recording
        return delivered

    async def _probe(self, peer_id: str, endpoint: str) -> None:
        """Ask a peer that could not be reached whether it answers again (``/livez``,
        a few hundred bytes); if it does, end its backoff and deliver at once."""
        try:
            async with asyncio.timeout(self.config.connect_seconds):
                response = await self.client.get(
                    endpoint.rstrip("/") + LIVENESS_PATH,
                    timeout=httpx.Timeout(self.config.connect_seconds),
                )
        except (httpx.HTTPError, TimeoutError):
            return
        if response.status_code == 200 and await in_thread(self._end_backoff, peer_id):
            self._wake.set()

    def _link(self, peer_id: str) -> LinkEstimate:
        if peer_id not in self._links:
            self._links[peer_id] = LinkEstimate(self.config.max_batch_bytes)
        return self._links[peer_id]

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

    def _peers_to_serve(self) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        """Active peers with messages due and no backoff; and peers in backoff because
        they could not be reached or did not answer in time (to probe)."""
        now = self.node.now()
        with self.node.sessions() as session:
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
        seconds = max(float(self.config.lease_seconds), deadline + LEASE_MARGIN_SECONDS)
        lease = now + timedelta(seconds=seconds)
        for row in rows:
            row.leased_until, row.leased_by = lease, self.worker_id
            row.attempts += 1
        return [
            Claimed(r.id, r.message_id, r.msg_type, r.envelope, r.created_at, r.alert_id)
            for r in rows
        ]

    def _claim_peer(self, peer_id: str, budget: int, deadline: float) -> list[Claimed]:
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
                    .limit(self.config.max_batch_messages)
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

    def _claim_messages(
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

    def _end_backoff(self, peer_id: str) -> bool:
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

    # -- delivery -------------------------------------------------------------------
    async def _deliver(
        self,
        peer_id: str,
        endpoint: str,
        rows: list[Claimed],
        deadline: float,
        urgent: bool = False,
    ) -> int:
        """POST one batch and record what the receipts say. Returns the number
        delivered, or -1 when the request failed (the peer is then in backoff, unless
        ``urgent``: messages someone waits on fail without holding up the rest)."""
        answered = await self._upload(peer_id, endpoint, rows, deadline, urgent)
        return -1 if answered is None else await answered

    async def _upload(
        self,
        peer_id: str,
        endpoint: str,
        rows: list[Claimed],
        deadline: float,
        urgent: bool = False,
    ) -> asyncio.Future[int] | None:
        """POST one batch. On an answer, start recording its receipts (in a worker
        thread) and return that; on a failure, release the batch and return None."""
        envelopes = ("[" + ",".join(r.envelope for r in rows) + "]").encode("utf-8")
        body, headers = envelopes, {"content-type": "application/json"}
        if peer_id in self._compress:
            body, headers["content-encoding"] = gzip.compress(envelopes, COMPRESS_LEVEL), "gzip"
        # No read limit short of the deadline: on a slow link the answer starts only
        # once the upload, queued in buffers along the way, has crossed it.
        timeout = httpx.Timeout(deadline, connect=min(self.config.connect_seconds, deadline))
        started = self._loop.time()
        try:
            async with asyncio.timeout(deadline):
                response = await self.client.post(
                    endpoint.rstrip("/") + FEDERATION_PATH,
                    content=body,
                    headers=headers,
                    timeout=timeout,
                )
        except (httpx.HTTPError, TimeoutError) as exc:
            failure = _failure(exc)
            if failure != UNREACHABLE + "ConnectError":
                self._link(peer_id).timed_out()
            await in_thread(self._release, peer_id, rows, failure, None, urgent)
            return None
        elapsed = self._loop.time() - started
        offset = measured_offset(response, self.node.now(), elapsed)
        if "gzip" in response.headers.get("accept-encoding", ""):
            self._compress.add(peer_id)
        if response.status_code != 200:
            retry_after = _retry_after(response.headers.get("retry-after"))
            reason = f"HTTP {response.status_code}"
            if response.status_code == 503 and _error_code(response) == "unavailable":
                reason = "peer unavailable (it cannot write to its database)"
            await in_thread(self._release, peer_id, rows, reason, retry_after, urgent, offset)
            return None
        try:
            results = response.json()["results"]
            if not isinstance(results, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            await in_thread(self._release, peer_id, rows, "unreadable answer", None, urgent)
            return None
        self._link(peer_id).succeeded(len(envelopes), elapsed)
        return asyncio.ensure_future(
            in_thread(self._record_results, peer_id, rows, results, urgent, offset)
        )

    def _record_results(
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
        if retry:
            reason = f"refused: {retry_reason}"
            self._release(peer_id, retry, reason, None, urgent, offset)
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

    def _release(
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


def _forget(running: dict[str, Any], peer_id: str, _: object) -> None:
    running.pop(peer_id, None)


def _failure(exc: Exception) -> str:
    if isinstance(exc, TimeoutError):
        return TIMED_OUT + "the whole request took longer than its deadline"
    if isinstance(exc, httpx.ReadTimeout):
        return TIMED_OUT + "the peer went silent"
    return UNREACHABLE + type(exc).__name__


def _error_code(response: httpx.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("error") if isinstance(body, dict) else None


def _retry_after(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
