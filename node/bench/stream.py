"""``kpnet bench stream``: what one new alert costs a node with many live streams open,
and how long its readers wait for it.

A receiving node runs as its own ``kpnet serve`` process. Its readers hold open live
streams (Server-Sent Events): API tokens of three clearances (officers at GREEN and
AMBER, analysts at RED) and console sessions of officers and analysts in English and
French, so the streams see different alerts and the console renders rows in two
languages. A peer then delivers alerts one at a time through ``/federation/v1/messages``
(GREEN, AMBER and RED in turn), waiting until every stream cleared for an alert has it.

Measured: the serve process's CPU time (user + system, from ``/proc``) per alert and
per open stream, over the alerts' phase; and for each alert the time from sending it to
the first and to the last stream cleared for it receiving it. A stream that receives an
alert above its clearance is counted (``overexposed``: it must stay 0).
"""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

import protocol

from ..bootstrap import init_node
from ..config import Settings
from ..keystore import load_identity
from ..readiness import ServeProcess, free_port
from ..roles import cleared_for
from ..runtime import open_node
from ..schemas.agreements import SharingAgreement
from ..services.console_sessions import ConsoleSessions
from ..services.endpoint_policy import LOOPBACK_PEERS, EndpointPolicy
from ..services.peers import PeerRegistry
from ..services.tokens import TokenService
from ..services.users import UserAccounts
from .ingest import SETUP, sample_alert
from .process_stats import cpu_seconds

HANDLINGS = ("GREEN", "AMBER", "RED")
# (role, clearance) of the API tokens, in turn.
TOKEN_KINDS = (("officer", "GREEN"), ("officer", "AMBER"), ("analyst", "RED"))
# (role, language) of the console users; each holds several sessions.
CONSOLE_USERS = (("officer", "en"), ("officer", "fr"), ("analyst", "en"), ("analyst", "fr"))
PASSWORD = "bench stream password 2026"  # noqa: S105 (a temporary node's user)
EVENT_ID = re.compile(rb"\nid: (\d+)\n")
WAIT_SECONDS = 30.0


@dataclass
class _Reader:
    """One open stream: what it may see, and when each alert id reached it."""

    clearance: str
    headers: dict[str, str]
    path: str
    received: dict[int, float] = field(default_factory=dict)


def _readers(node_settings: Settings, streams: int, console: int) -> list[_Reader]:
    """Tokens and console sessions on the stopped node; one reader for each."""
    node = open_node(node_settings, migrate=False)
    readers: list[_Reader] = []
    try:
        with node.sessions() as session:
            tokens = TokenService(session, SETUP, node.now())
            for n in range(streams - console):
                role, clearance = TOKEN_KINDS[n % len(TOKEN_KINDS)]
                _, secret = tokens.create(name=f"reader-{n}", role=role, clearance=clearance)
                headers = {"Authorization": f"Bearer {secret}"}
                readers.append(_Reader(clearance, headers, "/api/v1/alerts/stream"))
            accounts = UserAccounts(session, SETUP, node.now())
            users = [
                accounts.create(f"{role}-{language}", role, PASSWORD, language=language)
                for role, language in CONSOLE_USERS[:console]
            ]
            opened = ConsoleSessions.configured(session, node.now(), node_settings)
            for n in range(console):
                user = users[n % len(users)]
                secret = opened.open(user)
                headers = {"Cookie": f"kpnet_session={secret}", "Accept": "text/event-stream"}
                readers.append(_Reader(user.clearance, headers, "/console/alerts/stream"))
            session.commit()
    finally:
        node.close()
    return readers


def _prepare(
    base: Path, database_url: str | None, messages: int
) -> tuple[Settings, list[tuple[str, bytes]]]:
    """The receiver CM and a peer CF allowed to send up to RED; CF's alerts sealed."""
    now = datetime.now(UTC)
    receiver = init_node(
        base / "CM",
        node_id="CM",
        name="Bench receiver",
        url="http://127.0.0.1:1",
        now=now,
        database_url=database_url,
        options=LOOPBACK_PEERS,
    )
    sender = init_node(
        base / "CF", node_id="CF", name="Bench sender", url="http://127.0.0.1:2", now=now
    )
    sender_identity = load_identity(sender.keys_dir, "CF")
    node = open_node(receiver, migrate=False)
    try:
        with node.sessions() as session:
            peers = PeerRegistry(
                session,
                SETUP,
                now,
                own_node_id="CM",
                endpoints=EndpointPolicy.from_settings(receiver),
            )
            peers.add(sender.card_path.read_bytes(), fingerprint=sender_identity.fingerprint)
            peers.set_agreement("CF", SharingAgreement(max_handling="RED"))
            session.commit()
        recipient = protocol.Recipient("CM", node.card.current_key("enc", int(now.timestamp())))
    finally:
        node.close()
    ts = int(now.timestamp())
    handlings = [HANDLINGS[n % len(HANDLINGS)] for n in range(messages)]
    envelopes = [
        (
            handling,
            protocol.seal(
                sender_identity,
                recipient,
                sample_alert(ts, n).model_copy(update={"handling": handling}),
                now=ts,
            ),
        )
        for n, handling in enumerate(handlings)
    ]
    return receiver, envelopes


async def _hold_open(port: int, reader: _Reader, connected: asyncio.Event) -> None:
    """Read one stream on a bare socket (a light client, so that the time an event
    reaches the last stream is the server's, not this process's parsing)."""
    stream_in, stream_out = await asyncio.open_connection("127.0.0.1", port)
    request = f"GET {reader.path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
    request += "".join(f"{name}: {value}\r\n" for name, value in reader.headers.items())
    stream_out.write((request + "\r\n").encode())
    buffer = b""
    try:
        while True:
            data = await stream_in.read(65536)
            if not data:
                raise RuntimeError(f"a stream ended: {buffer[-300:]!r}")
            now = time.perf_counter()
            buffer += data
            if not connected.is_set():
                if b": connected" not in buffer:
                    continue
                if not buffer.startswith(b"HTTP/1.1 200"):
                    raise RuntimeError(f"a stream was refused: {buffer[:300]!r}")
                connected.set()
            for match in EVENT_ID.finditer(buffer):
                reader.received.setdefault(int(match.group(1)), now)
            buffer = buffer[-64:]
    finally:
        stream_out.close()


async def _post(client: httpx.AsyncClient, url: str, envelope: bytes) -> None:
    response = await client.post(
        url, content=b"[" + envelope + b"]", headers={"content-type": "application/json"}
    )
    response.raise_for_status()
    if response.json()["results"][0].get("status") != "accepted":
        raise RuntimeError(f"an alert was not accepted: {response.text}")


async def _deliver(
    port: int,
    readers: list[_Reader],
    envelopes: list[tuple[str, bytes]],
    *,
    alerts: int,
    pause: float,
    pid: int,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """``alerts`` alerts with no stream open (what receiving them costs alone), then,
    with every stream open, a warm-up of one alert per handling and ``alerts`` more."""
    url = f"http://127.0.0.1:{port}/federation/v1/messages"
    async with httpx.AsyncClient(timeout=60) as client:
        echo(f"delivering {alerts} alerts with no stream open…")
        await _post(client, url, envelopes[0][1])  # warm-up
        cpu_start = cpu_seconds(pid) or 0.0
        for _, envelope in envelopes[1 : alerts + 1]:
            await _post(client, url, envelope)
            await asyncio.sleep(pause)
        cpu_alone = (cpu_seconds(pid) or 0.0) - cpu_start
        opened = [asyncio.Event() for _ in readers]
        holders = [
            asyncio.create_task(_hold_open(port, reader, event))
            for reader, event in zip(readers, opened, strict=True)
        ]
        seen: set[int] = set()
        first_ms: list[float] = []
        last_ms: list[float] = []
        streamed = envelopes[alerts + 1 :]
        warm_up = len(streamed) - alerts
        try:
            waiting = asyncio.gather(*(event.wait() for event in opened))
            await asyncio.wait_for(asyncio.shield(waiting), WAIT_SECONDS)
            echo(f"{len(readers)} streams open; delivering {alerts} alerts…")
            for n, (handling, envelope) in enumerate(streamed):
                if n == warm_up:
                    cpu_start = cpu_seconds(pid) or 0.0
                cleared = [r for r in readers if cleared_for(r.clearance, handling)]
                sent = time.perf_counter()
                await _post(client, url, envelope)
                alert_id = await _arrival(cleared, seen, holders)
                seen.add(alert_id)
                times = [r.received[alert_id] - sent for r in cleared]
                if n >= warm_up:
                    first_ms.append(min(times) * 1000)
                    last_ms.append(max(times) * 1000)
                await asyncio.sleep(pause)
            cpu_streamed = (cpu_seconds(pid) or 0.0) - cpu_start
        finally:
            for holder in holders:
                holder.cancel()
            await asyncio.gather(*holders, return_exceptions=True)
    overexposed = sum(
        1
        for reader in readers
        for alert_id, (handling, _) in zip(sorted(seen), streamed, strict=True)
        if alert_id in reader.received and not cleared_for(reader.clearance, handling)
    )
    first, last = statistics.median(first_ms), statistics.median(last_ms)
    per_alert, alone = cpu_streamed * 1000 / alerts, cpu_alone * 1000 / alerts
    return {
        "streams": len(readers),
        "console_streams": sum(1 for r in readers if r.path.startswith("/console")),
        "alerts": alerts,
        "cpu_ms_per_alert": round(per_alert, 2),
        "cpu_ms_per_alert_per_stream": round(per_alert / len(readers), 4),
        "cpu_ms_per_alert_no_stream": round(alone, 2),
        "fanout_cpu_ms_per_alert_per_stream": round((per_alert - alone) / len(readers), 4),
        "first_ms_p50": round(first, 1),
        "last_ms_p50": round(last, 1),
        "last_ms_max": round(max(last_ms), 1),
        "last_first_ratio": round(last / first, 2),
        "overexposed": overexposed,
    }


async def _arrival(cleared: list[_Reader], seen: set[int], holders: list[Any]) -> int:
    """The id of the new alert, once every stream cleared for it has received it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        for holder in holders:
            if holder.done():
                holder.result()  # a stream that ended says why
        new = {i for r in cleared for i in r.received if i not in seen}
        if len(new) > 1:
            raise RuntimeError(f"streams received several new alerts at once: {sorted(new)}")
        if new:
            (alert_id,) = new
            if all(alert_id in r.received for r in cleared):
                return alert_id
        await asyncio.sleep(0.001)
    raise RuntimeError("not every cleared stream received the alert in time")


def run_stream_bench(
    *,
    streams: int = 200,
    console: int = 20,
    alerts: int = 30,
    pause: float = 0.2,
    database_url: str | None = None,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    if not 0 <= console <= streams:
        raise ValueError("console streams are counted among the streams")
    warm_up = len(HANDLINGS)
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-") as tmp:
        echo(f"preparing a node with {streams} readers…")
        settings, envelopes = _prepare(Path(tmp), database_url, 1 + 2 * alerts + warm_up)
        readers = _readers(settings, streams, console)
        port = free_port()
        env = {
            **os.environ,
            "KPNET_SENDER_ENABLED": "false",
            "KPNET_PEER_RATE_PER_SECOND": "1000000",
            "KPNET_PEER_RATE_BURST": "1000000",
        }
        kpnet = str(Path(sys.executable).parent / "kpnet")
        log_path = Path(tmp) / "serve.log"
        with log_path.open("ab") as log:
            server = subprocess.Popen(
                [kpnet, "serve", "--data-dir", str(settings.data_dir), "--port", str(port)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            ServeProcess(server, f"http://127.0.0.1:{port}", log_path).wait_ready()
            result = asyncio.run(
                _deliver(
                    port,
                    readers,
                    envelopes,
                    alerts=alerts,
                    pause=pause,
                    pid=server.pid,
                    echo=echo,
                )
            )
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        **result,
        "stream_check_seconds": settings.stream_check_seconds,
        "database": "postgresql" if database_url else "sqlite",
    }
