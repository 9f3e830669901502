"""A loopback TCP proxy that behaves like the links border posts and mining towns have:
latency, a bandwidth limit shared by every connection, lost packets, and the faults
of a failing peer (refused or reset connections, stalls, a trickling or hung answer).

``kpnet bench link`` and the delivery tests put one between two real nodes: the
sending node's peer endpoint points at the proxy, the proxy at the receiving node.

The model, per direction of the link: bytes leave one segment (``SEGMENT`` bytes) at a
time through one transmitter shared by all connections, at ``rate`` bytes per second,
and arrive ``latency`` seconds later. A lost segment is what TCP makes of it: the
stream waits one round trip for the retransmission (``drop`` is the probability per
segment). At most ``window`` bytes per connection are in flight, so a sender cannot
pour its whole upload into the proxy at once: like TCP, it is held back by the link.

Faults, set at any time with ``mode``:

- ``up``: the link as configured;
- ``down``: new connections are reset at once and open ones cut (an outage);
- ``hang``: connections are accepted and the request read, but nothing is answered;
- ``trickle``: answers come back one byte every ``trickle_seconds``;
- ``stall``: nothing moves in either direction until the mode changes.

The proxy runs its own event loop in a thread, so synchronous tests and benchmarks
drive it with plain calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

Mode = Literal["up", "down", "hang", "trickle", "stall"]
SEGMENT = 1460  # bytes: a TCP segment on a 1500-byte MTU
MIN_RETRANSMIT_SECONDS = 0.2  # Linux's lowest retransmission timeout


@dataclass
class LinkShape:
    """What the link is like. ``rate_bits`` of None means loopback speed."""

    rate_bits: float | None = None
    latency_seconds: float = 0.0  # one way
    drop: float = 0.0  # probability that a segment is lost (and retransmitted)
    window: int = 64 * 1024  # bytes in flight per connection and direction
    trickle_seconds: float = 20.0
    seed: int | None = None


@dataclass
class LinkCounters:
    connections: int = 0
    bytes_up: int = 0  # client to target
    bytes_down: int = 0
    used_connections: int = 0  # connections that carried at least one byte up
    dropped_segments: int = 0


@dataclass
class _Transmitter:
    """One direction of the link: segments queue for it, one after another."""

    free_at: float = 0.0

    def schedule(self, now: float, size: int, rate: float | None) -> float:
        """When a segment of ``size`` bytes offered at ``now`` has left."""
        start = max(now, self.free_at)
        self.free_at = start + (size / rate if rate else 0.0)
        return self.free_at


@dataclass(eq=False)
class _Connection:
    client: asyncio.StreamWriter
    target: asyncio.StreamWriter | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def cut(self) -> None:
        for writer in (self.client, self.target):
            if writer is not None:
                _reset(writer)
        for task in self.tasks:
            task.cancel()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0), as a failing link or middlebox does."""
    sock = writer.get_extra_info("socket")
    with contextlib.suppress(OSError):
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(Exception):
        writer.close()


class FaultyLink:
    """A proxy from ``127.0.0.1:<port>`` to ``target_host:target_port``."""

    def __init__(
        self, target_port: int, shape: LinkShape | None = None, *, target_host: str = "127.0.0.1"
    ) -> None:
        self.target = (target_host, target_port)
        self.shape = shape or LinkShape()
        self.counters = LinkCounters()
        self._mode: Mode = "up"
        self._random = random.Random(self.shape.seed)  # noqa: S311 - emulation, not secrecy
        self._up = _Transmitter()
        self._down = _Transmitter()
        self._connections: set[_Connection] = set()
        self._loop = asyncio.new_event_loop()
        self._changed: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self.port = 0

    # -- control (from any thread) ---------------------------------------------------
    def start(self) -> FaultyLink:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)
        return self

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def __enter__(self) -> FaultyLink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mode(self) -> Mode:
        return self._mode

    def set_mode(self, mode: Mode) -> None:
        asyncio.run_coroutine_threadsafe(self._set_mode(mode), self._loop).result(10)

    def reshape(self, shape: LinkShape) -> None:
        """Change rate, latency or losses for what is sent from now on."""
        self._loop.call_soon_threadsafe(setattr, self, "shape", shape)

    @contextlib.contextmanager
    def mode_for(self, mode: Mode) -> Iterator[None]:
        previous = self._mode
        self.set_mode(mode)
        try:
            yield
        finally:
            self.set_mode(previous)

    # -- the proxy (on its own loop) ---------------------------------------------------
    async def _listen(self) -> None:
        self._changed = asyncio.Event()
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = int(self._server.sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.cut()
        tasks = [t for c in self._connections for t in c.tasks]
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _set_mode(self, mode: Mode) -> None:
        self._mode = mode
        if mode == "down":
            for connection in list(self._connections):
                connection.cut()
        assert self._changed is not None
        self._changed.set()
        self._changed = asyncio.Event()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.connections += 1
        if self._mode == "down":
            _reset(writer)
            return
        connection = _Connection(writer)
        self._connections.add(connection)
        try:
            try:
                target_reader, target_writer = await asyncio.open_connection(*self.target)
            except OSError:
                _reset(writer)
                return
            connection.target = target_writer
            connection.tasks = [
                asyncio.ensure_future(self._pump(reader, target_writer, self._up, upstream=True)),
                asyncio.ensure_future(
                    self._pump(target_reader, writer, self._down, upstream=False)
                ),
            ]
            await asyncio.gather(*connection.tasks, return_exceptions=True)
        finally:
            self._connections.discard(connection)
            for w in (writer, connection.target):
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.close()

    async def _pump(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        transmitter: _Transmitter,
        *,
        upstream: bool,
    ) -> None:
        """Carry one direction of one connection across the emulated link."""
        in_flight: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()
        room = asyncio.Semaphore(max(1, self.shape.window // SEGMENT))
        counted = False

        async def deliver() -> None:
            last = 0.0
            while True:
                due, data = await in_flight.get()
                last = max(last, due)
                delay = last - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                await self._while_stalled()
                if not data:
                    writer.write_eof() if writer.can_write_eof() else writer.close()
                    return
                if not upstream and self._mode == "hang":
                    await self._until_changed_from("hang")
                if not upstream and self._mode == "trickle":
                    for i in range(len(data)):
                        writer.write(data[i : i + 1])
                        await writer.drain()
                        await self._sleep_unless_changed(self.shape.trickle_seconds)
                else:
                    writer.write(data)
                    await writer.drain()
                room.release()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                await room.acquire()
                await self._while_stalled()
                data = await reader.read(SEGMENT)
                if data and upstream and not counted:
                    self.counters.used_connections += 1
                    counted = True
                if upstream:
                    self.counters.bytes_up += len(data)
                else:
                    self.counters.bytes_down += len(data)
                in_flight.put_nowait((self._arrival(transmitter, len(data)), data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()

    def _arrival(self, transmitter: _Transmitter, size: int) -> float:
        shape = self.shape
        rate = shape.rate_bits / 8 if shape.rate_bits else None
        now = time.monotonic()
        left = transmitter.schedule(now, size, rate)
        if size and shape.drop and self._random.random() < shape.drop:
            self.counters.dropped_segments += 1
            # Sent again after a retransmission timeout: the link carries it twice, and
            # this connection's stream waits for it (what follows arrives after it).
            retransmit = max(MIN_RETRANSMIT_SECONDS, 2 * shape.latency_seconds)
            left = transmitter.schedule(now, size, rate) + retransmit
        return left + shape.latency_seconds

    async def _while_stalled(self) -> None:
        while self._mode == "stall":
            await self._until_changed_from("stall")

    async def _until_changed_from(self, mode: Mode) -> None:
        while self._mode == mode:
            assert self._changed is not None
            await self._changed.wait()

    async def _sleep_unless_changed(self, seconds: float) -> None:
        assert self._changed is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._changed.wait(), seconds)
