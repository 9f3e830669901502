"""``kpnet bench link``: delivery over slow, lossy links, and catch-up after an outage.

Two real nodes (``kpnet serve`` processes, SQLite), CM sending to CF through a
``FaultyLink`` in front of CF. For each emulated link (rate, one-way latency, lost
segments), alerts of about 1.4 KB sealed are queued at CM at once and timed until
CM holds CF's verified receipt for the last of them. The link is in use: before the
first measurement CM has delivered to CF once (so it knows CF takes gzip); each link
starts from what CM measured of the one before. Goodput is the sealed alerts'
bytes delivered per second, as a fraction of the link's rate; the alerts' own text
(what an analyst wrote) is reported beside it.

Catch-up: with the link down, 5,000 alerts are queued at CM; the link comes back. The
time from then to the first receipt is reported (the probe's doing), and the time
from the first receipt to the last gives the drain rate. It is compared with steady
ingest in the same run: CF accepting the same kind of alerts, sealed beforehand and
posted in batches of 100 by four concurrent clients, as ``kpnet bench ingest`` does.

The receiver's per-peer rate limit is lifted (it would cap both at 50 messages per
second: docs/operations.md on sizing it for catch-up).
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

import protocol

from ..bootstrap import init_node
from ..config import Settings, load_settings
from ..db.models import OutboxMessage, Peer
from ..readiness import ServeProcess, free_port, start_serve
from ..runtime import open_node
from ..schemas.alerts import AlertCreate
from ..services.actors import Actor
from ..services.alerts import AlertService
from ..services.endpoint_policy import LOOPBACK_PEERS, EndpointPolicy
from ..services.peers import PeerRegistry
from .faulty_link import FaultyLink, LinkShape
from .ingest import _accepted, _drive

SETUP = Actor("bench", "admin")
ANALYST = Actor("bench", "analyst")
TEXT = "Colis de pierres brutes saisi au poste frontière de Garoua-Boulaï, certificat KP douteux. "
ALERT_TEXT = 400  # characters of body: a sealed alert of about 1.4 KB
INGEST_BATCH = 100
INGEST_CONCURRENCY = 4


@dataclass(frozen=True)
class Link:
    rate_bits: int
    latency_seconds: float

    @property
    def label(self) -> str:
        return f"{self.rate_bits // 1000}kbit"


DEFAULT_LINKS = (Link(16_000, 0.8), Link(50_000, 0.5), Link(256_000, 0.3))


def _alert(n: int) -> AlertCreate:
    return AlertCreate.model_validate(
        {
            "category": "seizure",
            "severity": "urgent",
            "title": f"Saisie n°{n} à Garoua-Boulaï",
            "body": (TEXT * 8)[:ALERT_TEXT],
            "handling": "AMBER",
            "recipients": ["CF"],
        }
    )


class _Pair:
    """CM and CF, admitted to each other, CM reaching CF through ``link``."""

    def __init__(self, base: Path, link: FaultyLink, cf_port: int) -> None:
        now = datetime.now(UTC)
        self.base = base
        self.ports = {"CM": free_port(), "CF": cf_port}
        self.settings: dict[str, Settings] = {}
        for node_id in ("CM", "CF"):
            init_node(
                base / node_id,
                node_id=node_id,
                name=f"Bench {node_id}",
                url=f"http://127.0.0.1:{self.ports[node_id]}",
                now=now,
                options=LOOPBACK_PEERS,
            )
            self.settings[node_id] = load_settings(base / node_id)
        self.nodes = {n: open_node(s) for n, s in self.settings.items()}
        for node_id, other in (("CM", "CF"), ("CF", "CM")):
            with self.nodes[node_id].sessions() as session:
                PeerRegistry(
                    session,
                    SETUP,
                    now,
                    own_node_id=node_id,
                    endpoints=EndpointPolicy.from_settings(self.settings[node_id]),
                ).add(
                    self.settings[other].card_path.read_bytes(),
                    fingerprint=self.nodes[other].identity.fingerprint,
                )
                session.commit()
        with self.nodes["CM"].sessions() as session:
            session.execute(update(Peer).where(Peer.node_id == "CF").values(endpoint=link.url))
            session.commit()
        self.processes: list[ServeProcess] = []

    def start(self, node_id: str) -> None:
        env = {
            "KPNET_PEER_RATE_PER_SECOND": "1000000",
            "KPNET_PEER_RATE_BURST": "1000000",
            "KPNET_DELIVERY_POLL_SECONDS": "0.2",
        }
        serving = start_serve(
            self.settings[node_id].data_dir,
            self.ports[node_id],
            self.base / f"{node_id}.log",
            env=env,
        )
        self.processes.append(serving)
        serving.wait_ready()

    def stop(self) -> None:
        for serving in self.processes:
            serving.stop()
        for node in self.nodes.values():
            node.close()

    def queue(self, count: int) -> tuple[datetime, int]:
        """Queue ``count`` alerts at CM for CF; when, and their sealed bytes."""
        node = self.nodes["CM"]
        with node.sessions() as session:
            service = AlertService(session, node.sealing, ANALYST, node.now())
            for n in range(count):
                service.create(_alert(n))
            session.commit()
            size = session.execute(
                select(func.sum(func.length(OutboxMessage.envelope))).where(
                    OutboxMessage.status == "pending"
                )
            ).scalar_one()
            return node.now(), int(size or 0)

    def drained(self) -> datetime | None:
        """When CM received the last receipt, once nothing waits any more."""
        with self.nodes["CM"].sessions() as session:
            waiting = session.execute(
                select(func.count())
                .select_from(OutboxMessage)
                .where(OutboxMessage.status == "pending")
            ).scalar_one()
            if waiting:
                return None
            last = session.execute(select(func.max(OutboxMessage.delivered_at))).scalar_one()
            return last if isinstance(last, datetime) else None

    def first_receipt_since(self, moment: datetime) -> datetime:
        with self.nodes["CM"].sessions() as session:
            first = session.execute(
                select(func.min(OutboxMessage.delivered_at)).where(
                    OutboxMessage.delivered_at >= moment
                )
            ).scalar_one()
        assert isinstance(first, datetime)
        return first

    def seal_for_cf(self, count: int) -> list[bytes]:
        now = int(time.time())
        recipient = protocol.Recipient("CF", self.nodes["CF"].card.current_key("enc", now))
        return [
            protocol.seal(self.nodes["CM"].identity, recipient, _alert_payload(n, now), now=now)
            for n in range(count)
        ]


def _alert_payload(n: int, now: int) -> protocol.Alert:
    import uuid

    alert = _alert(n)
    return protocol.Alert(
        alert_id=str(uuid.uuid4()),
        category=alert.category,
        severity=alert.severity,
        title=alert.title,
        body=alert.body,
        handling=alert.handling,
        issued_at=now,
    )


def _wait_drained(pair: _Pair, timeout: float) -> datetime:
    deadline = time.monotonic() + timeout
    while (last := pair.drained()) is None:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the outbox did not drain within {timeout:.0f} s")
        time.sleep(0.5)
    return last


def run_link_bench(
    *,
    links: Sequence[Link] = DEFAULT_LINKS,
    drop: float = 0.05,
    seconds_per_link: float = 45.0,
    catch_up: int = 5000,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-link-") as tmp:
        cf_port = free_port()
        link = FaultyLink(cf_port, LinkShape(seed=1)).start()
        pair = _Pair(Path(tmp), link, cf_port)
        try:
            pair.start("CF")
            pair.start("CM")
            # A link in use: CM has already talked to CF (and so knows it takes gzip).
            pair.queue(5)
            _wait_drained(pair, timeout=60)
            results = [
                _one_link(pair, link, shape, drop, seconds_per_link, echo) for shape in links
            ]
            drain = _catch_up(pair, link, catch_up, echo)
        finally:
            pair.stop()
            link.close()
    return {
        "links": results,
        "goodput_min": min(r["goodput"] for r in results),
        **drain,
    }


def _one_link(
    pair: _Pair,
    link: FaultyLink,
    shape: Link,
    drop: float,
    seconds: float,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    link.reshape(
        LinkShape(
            rate_bits=shape.rate_bits, latency_seconds=shape.latency_seconds, drop=drop, seed=1
        )
    )
    count = max(10, int(shape.rate_bits / 8 * seconds / 1400))
    echo(f"{shape.label}, {shape.latency_seconds * 1000:.0f} ms, {drop:.0%} lost: {count} alerts…")
    before = link.counters.bytes_up, link.counters.bytes_down, link.counters.used_connections
    queued_at, size = pair.queue(count)
    last = _wait_drained(pair, timeout=60 + 10 * size * 8 / shape.rate_bits)
    elapsed = (last - queued_at).total_seconds()
    up = link.counters.bytes_up - before[0]
    down = link.counters.bytes_down - before[1]
    rate = shape.rate_bits / 8
    return {
        "link": shape.label,
        "rate_bits": shape.rate_bits,
        "latency_ms": round(shape.latency_seconds * 1000),
        "drop": drop,
        "alerts": count,
        "alert_bytes": round(size / count),
        "seconds": round(elapsed, 1),
        "goodput": round(size / elapsed / rate, 3),
        "text_goodput": round(count * ALERT_TEXT / elapsed / rate, 3),
        "wire_up_per_alert": round(up / count),
        "wire_down_per_alert": round(down / count),
        "new_connections": link.counters.used_connections - before[2],
    }


def _catch_up(
    pair: _Pair, link: FaultyLink, count: int, echo: Callable[[str], None]
) -> dict[str, Any]:
    link.reshape(LinkShape())  # loopback speed: what limits now is the nodes
    echo(f"steady ingest: sealing and posting {count} alerts to CF…")
    envelopes = pair.seal_for_cf(count)
    bodies = [
        b"[" + b",".join(envelopes[i : i + INGEST_BATCH]) + b"]"
        for i in range(0, len(envelopes), INGEST_BATCH)
    ]
    url = f"http://127.0.0.1:{pair.ports['CF']}/federation/v1/messages"
    accepted, ingest_seconds = asyncio.run(_drive(url, bodies, INGEST_CONCURRENCY, _accepted))
    if accepted != count:
        raise RuntimeError(f"only {accepted} of {count} alerts were accepted")
    echo(f"catch-up: {count} alerts queued while CF is unreachable…")
    link.set_mode("down")
    pair.queue(count)
    deadline = time.monotonic() + 30
    while not _in_backoff(pair):
        if time.monotonic() > deadline:
            raise RuntimeError("CM did not notice that CF was unreachable")
        time.sleep(0.2)
    link.set_mode("up")
    back = datetime.now(UTC)
    last = _wait_drained(pair, timeout=600)
    first = pair.first_receipt_since(back)
    drain = count / (last - first).total_seconds()
    steady = accepted / ingest_seconds
    return {
        "steady_ingest_per_s": round(steady, 1),
        "catch_up_alerts": count,
        "catch_up_resumed_after_s": round((first - back).total_seconds(), 1),
        "catch_up_per_s": round(drain, 1),
        "catch_up_ratio": round(drain / steady, 3),
    }


def _in_backoff(pair: _Pair) -> bool:
    with pair.nodes["CM"].sessions() as session:
        return bool(
            session.execute(
                select(Peer.consecutive_failures).where(Peer.node_id == "CF")
            ).scalar_one()
        )
