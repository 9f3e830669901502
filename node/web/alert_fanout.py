"""One reader of new alerts for every live stream of this process (Server-Sent Events).

At each wake-up of the alert feed, and each ``stream_check_seconds`` without one, the
fan-out runs one round:

1. it reads the inbound alerts that arrived since its last round, once per clearance
   held by an open stream (what a reader may see depends on its clearance alone:
   ``AlertService`` filters by it in the query; every stream reads with ``READ``);
2. in the same database session, after that read, it re-checks the token or console
   session behind every open stream, in one query per kind: a stream whose token was
   revoked or has expired, whose session ended (signed out, idle, too old, password
   reset), whose account was disabled, or whose role or clearance changed is ended, and
   what it had not yet sent is dropped;
3. it encodes each alert once per encoding (API JSON, a console row in one language:
   an alert's text does not depend on who reads it) and hands the same bytes to every
   remaining stream whose clearance read it.

So a stream gets no event read after a change committed before that event's round, made
by this process or another; an idle stream ends within ``stream_check_seconds`` of it.
Reading from the database, not from the feed, keeps alerts received by another process
sharing it visible; the feed only makes the round prompt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Literal

from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from ..federation.feed import Feed
from ..roles import Permission, may
from ..runtime import Node
from ..schemas.alerts import AlertOut
from ..services.actors import Actor
from ..services.console_sessions import ConsoleSessions, session_digest
from ..services.tokens import hash_token, live_tokens
from ..services.work import UnitOfWork

log = logging.getLogger("kpnet.streams")

KEEP_ALIVE = b": keep-alive\n\n"
PAGE = 100  # alerts read per clearance and query; a full page makes another round at once
QUEUE_LIMIT = 500  # events held for a client that does not read them; beyond, its stream ends


@dataclass(frozen=True)
class StreamPass:
    """What admitted a stream, re-checked at its rounds: an API token or a console
    session (by the hash of its secret, as stored), and the permission it must hold."""

    kind: Literal["token", "session"]
    digest: str
    permission: Permission

    @classmethod
    def of_token(cls, secret: str, permission: Permission) -> StreamPass:
        return cls("token", hash_token(secret), permission)

    @classmethod
    def of_session(cls, secret: str, permission: Permission) -> StreamPass:
        return cls("session", session_digest(secret), permission)


@dataclass(frozen=True)
class Encoder:
    """Turns an alert into an event's data. Encoders with the same ``key`` give the same
    text, so each alert is encoded once per key, however many streams read it."""

    key: Hashable
    encode: Callable[[AlertOut], str]


def event_bytes(alert_id: int, data: str) -> bytes:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"id: {alert_id}\nevent: alert\n{lines}\n".encode()


class Subscription:
    """One open stream: its reader, what admitted it, and the events waiting to be sent
    (``None`` last when it has ended)."""

    def __init__(self, actor: Actor, admission: StreamPass, encoder: Encoder, after: int) -> None:
        self.actor, self.admission, self.encoder = actor, admission, encoder
        self.after = after  # the newest alert it has had (or could see when it opened)
        self.open = True
        self._queue: asyncio.Queue[bytes | None] = asyncio.Queue()

    def put(self, data: bytes) -> None:
        if not self.open:
            return
        if self._queue.qsize() >= QUEUE_LIMIT:
            self.end()
            return
        self._queue.put_nowait(data)

    def end(self) -> None:
        """No further event: what is still queued is dropped, not sent."""
        if not self.open:
            return
        self.open = False
        while not self._queue.empty():
            self._queue.get_nowait()
        self._queue.put_nowait(None)

    async def next(self) -> bytes | None:
        return await self._queue.get()


def _admits(current: Actor | None, stream: Subscription) -> bool:
    return (
        current is not None
        and may(current.role, stream.admission.permission)
        and current.clearance == stream.actor.clearance
    )


class AlertFanout:
    def __init__(self, node: Node, feed: Feed) -> None:
        self.node, self.feed = node, feed
        self._streams: set[Subscription] = set()
        self._task: asyncio.Task[None] | None = None

    async def join(self, actor: Actor, admission: StreamPass, encoder: Encoder) -> Subscription:
        after = await run_in_threadpool(self._newest, actor)
        stream = Subscription(actor, admission, encoder, after)
        self._streams.add(stream)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="kpnet-alert-fanout")
        return stream

    async def close(self) -> None:
        """End every stream and stop reading (the app is stopping)."""
        for stream in list(self._streams):
            self.leave(stream)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def leave(self, stream: Subscription) -> None:
        stream.end()
        self._streams.discard(stream)

    async def _run(self) -> None:
        wake, loop = self.feed.subscribe(), asyncio.get_running_loop()
        every = self.node.settings.stream_check_seconds
        tick = loop.time() + every
        try:
            while self._streams:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), max(0.0, tick - loop.time()))
                wake.clear()
                ticked = loop.time() >= tick
                if ticked:
                    tick = loop.time() + every
                try:
                    if await self._round(keep_alive=ticked):
                        wake.set()
                except Exception:
                    # Nothing can be checked: end every stream (its client reconnects).
                    log.exception("live streams ended: their round failed")
                    for stream in list(self._streams):
                        stream.end()
        finally:
            self.feed.unsubscribe(wake)

    async def _round(self, *, keep_alive: bool) -> bool:
        """One round (see the module's docstring); whether a page was full."""
        streams = [s for s in self._streams if s.open]
        if not streams:
            return False
        # Per clearance, one reader and what the stream furthest behind has had.
        readers = {s.actor.clearance: s.actor for s in streams}
        cursors: dict[str, int] = {}
        for stream in streams:
            clearance = stream.actor.clearance
            cursors[clearance] = min(cursors.get(clearance, stream.after), stream.after)
        fresh, current = await run_in_threadpool(
            self._read, list(readers.values()), cursors, streams, keep_alive
        )
        for stream in streams:
            if stream.admission in current and not _admits(current[stream.admission], stream):
                stream.end()
        encoded: dict[tuple[Hashable, int], bytes] = {}
        for stream in streams:
            clearance = stream.actor.clearance
            for alert in fresh.get(clearance, ()):
                if alert.id <= stream.after or not stream.open:
                    continue
                key = (stream.encoder.key, alert.id)
                if key not in encoded:
                    encoded[key] = event_bytes(alert.id, stream.encoder.encode(alert))
                stream.put(encoded[key])
                stream.after = alert.id
            if keep_alive:
                stream.put(KEEP_ALIVE)
        return any(len(alerts) == PAGE for alerts in fresh.values())

    # -- in a worker thread --------------------------------------------------------------
    def _newest(self, actor: Actor) -> int:
        with self.node.sessions() as session:
            latest = (
                UnitOfWork(self.node, session, actor)
                .alerts()
                .recent(direction="inbound", limit=1, offset=0)
            )
            return latest[0].id if latest else 0

    def _read(
        self,
        readers: list[Actor],
        cursors: dict[str, int],
        streams: list[Subscription],
        every: bool,
    ) -> tuple[dict[str, list[AlertOut]], dict[StreamPass, Actor | None]]:
        """New alerts per clearance, then who is behind the pass of each stream that
        gets an event (``every`` one at a tick): None when it has ended."""
        with self.node.sessions() as session:
            fresh: dict[str, list[AlertOut]] = {}
            for actor in readers:
                service = UnitOfWork(self.node, session, actor).alerts()
                fresh[actor.clearance] = [
                    AlertOut.model_validate(a)
                    for a in service.recent(
                        direction="inbound",
                        limit=PAGE,
                        offset=0,
                        after_id=cursors[actor.clearance],
                    )
                ]
            passes = [s.admission for s in streams if every or fresh.get(s.actor.clearance)]
            return fresh, self._current(session, passes)

    def _current(
        self, session: Session, passes: Iterable[StreamPass]
    ) -> dict[StreamPass, Actor | None]:
        """The role and clearance now behind each pass (None: it has ended)."""
        current: dict[StreamPass, Actor | None] = dict.fromkeys(passes)
        by_kind: dict[str, list[StreamPass]] = defaultdict(list)
        for admission in current:
            by_kind[admission.kind].append(admission)
        now = self.node.now()
        tokens = live_tokens(session, (p.digest for p in by_kind["token"]), now)
        for admission in by_kind["token"]:
            if (actor := tokens.get(admission.digest)) is not None:
                current[admission] = actor
        opened = ConsoleSessions.configured(session, now, self.node.settings).recheck_many(
            p.digest for p in by_kind["session"]
        )
        for admission in by_kind["session"]:
            found = opened.get(admission.digest)
            if found is not None and not found.must_change_password:
                current[admission] = Actor(found.username, found.role, found.clearance)
        return current
