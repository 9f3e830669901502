"""The outbox sender: delivers queued messages to peers, each peer on its own.

Every peer with due work gets its own delivery task, which sends batch after batch,
in the order messages were queued, while work is due; a peer that hangs or trickles
holds up no other (each request has connect and total deadlines). Batches are sized to
the peer's measured link (``link_estimate``) and gzip-compressed to peers that accept
it. A peer in backoff after it could not be reached is probed, and delivered to as soon
as it answers. What is claimed, delivered, released or backed off is kept in the
database by ``outbox_ledger``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import httpx

from ..runtime import Node
from .clock_offset import measured_offset
from .inbound import MAX_BATCH_MESSAGES
from .link_estimate import LinkEstimate
from .outbox_ledger import TIMED_OUT, UNREACHABLE, Claimed, OutboxLedger
from .policy_transport import EndpointBlocked

log = logging.getLogger("kpnet.sender")

T = TypeVar("T")
FEDERATION_PATH = "/federation/v1/messages"
LIVENESS_PATH = "/livez"
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
        self.ledger = OutboxLedger(
            node,
            self.worker_id,
            self.config.lease_seconds,
            self.config.max_batch_messages,
            self.config.backoff_base_seconds,
            self.config.backoff_cap_seconds,
        )
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
        work = await in_thread(self.ledger.claim_messages, frozenset(message_ids), deadline)
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
        await in_thread(self.ledger.expire_overdue)
        now = self.node.now()
        if self._forgotten_at is None or now - self._forgotten_at >= FORGET_EVERY:
            await in_thread(self.ledger.forget_expired_inbound)
            self._forgotten_at = now
        due, unreachable = await in_thread(self.ledger.peers_to_serve)
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
                    rows = await in_thread(
                        self.ledger.claim_peer, peer_id, budget, link.deadline(budget)
                    )
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
        if response.status_code == 200 and await in_thread(self.ledger.end_backoff, peer_id):
            self._wake.set()

    def _link(self, peer_id: str) -> LinkEstimate:
        if peer_id not in self._links:
            self._links[peer_id] = LinkEstimate(self.config.max_batch_bytes)
        return self._links[peer_id]

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
            if not isinstance(exc, httpx.ConnectError):
                self._link(peer_id).timed_out(len(envelopes), self._loop.time() - started)
            await in_thread(self.ledger.release, peer_id, rows, failure, None, urgent)
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
            await in_thread(self.ledger.release, peer_id, rows, reason, retry_after, urgent, offset)
            return None
        try:
            results = response.json()["results"]
            if not isinstance(results, list):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            await in_thread(self.ledger.release, peer_id, rows, "unreadable answer", None, urgent)
            return None
        self._link(peer_id).succeeded(len(envelopes), elapsed)
        return asyncio.ensure_future(
            in_thread(self.ledger.record_results, peer_id, rows, results, urgent, offset)
        )


def _forget(running: dict[str, Any], peer_id: str, _: object) -> None:
    running.pop(peer_id, None)


def _failure(exc: Exception) -> str:
    if isinstance(exc, EndpointBlocked):  # not retried sooner by probing: nothing to reach
        return f"endpoint refused: {exc.refusal.code}: {exc.refusal.message}"[:500]
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
