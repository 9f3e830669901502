"""Real nodes for federation tests: each a `kpnet serve` process on its own loopback
port with its own database, admitted to each other through the same card + fingerprint
path an operator uses.

Delivery timings are shortened through environment variables so tests run quickly.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from node.config import load_settings
from node.readiness import ServeProcess, start_serve
from node.runtime import open_node
from node.schemas.agreements import SharingAgreement
from node.services.actors import Actor
from node.services.endpoint_policy import EndpointPolicy
from node.services.peers import PeerRegistry

# conftest modules are imported by pytest; reuse the shared helpers from tests/conftest.py.
from tests.conftest import create_node, free_port, issue_tokens

KPNET = str(Path(sys.executable).parent / "kpnet")
FAST_DELIVERY = {
    "KPNET_DELIVERY_POLL_SECONDS": "0.2",
    "KPNET_DELIVERY_BACKOFF_BASE_SECONDS": "0.2",
    "KPNET_DELIVERY_BACKOFF_CAP_SECONDS": "1.5",
    "KPNET_DELIVERY_LEASE_SECONDS": "10",
}
ADMIN = Actor("test-setup", "admin")


@dataclass
class RunningNode:
    node_id: str
    data_dir: Path
    port: int
    tokens: dict[str, str] = field(default_factory=dict)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(
        self, *, port: int | None = None, extra_env: dict[str, str] | None = None, wait: bool = True
    ) -> ServeProcess:
        """Start a `kpnet serve` process (several may share one PostgreSQL database);
        unless ``wait`` is false, return once it is ready."""
        started = start_serve(
            self.data_dir,
            port or self.port,
            self.data_dir / f"serve-{len(self.processes)}.log",
            env={**FAST_DELIVERY, **(extra_env or {})},
        )
        self.processes.append(started.process)
        if wait:
            started.wait_ready()
        return started

    def stop(self, sig: int = signal.SIGTERM) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(sig)
                try:
                    process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        self.processes.clear()

    def api(self, role: str = "analyst", timeout: float = 30.0) -> httpx.Client:
        return httpx.Client(
            base_url=self.url,
            timeout=timeout,
            headers={"Authorization": f"Bearer {self.tokens[role]}"},
        )

    def log_text(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.data_dir.glob("serve-*.log"))
        )


def admit(node: RunningNode, other: RunningNode, agreement: SharingAgreement | None = None) -> None:
    """``node`` admits ``other``: its card, checked against its fingerprint."""
    other_settings = load_settings(other.data_dir)
    card_bytes = other_settings.card_path.read_bytes()
    other_node = open_node(other_settings, migrate=False)
    fingerprint = other_node.identity.fingerprint
    other_node.close()
    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            PeerRegistry(
                session,
                ADMIN,
                runtime.now(),
                own_node_id=node.node_id,
                endpoints=EndpointPolicy.from_settings(runtime.settings),
            ).add(card_bytes, fingerprint=fingerprint, agreement=agreement)
            session.commit()
    finally:
        runtime.close()


def build_network(
    base: Path, node_ids: tuple[str, ...], database_urls: dict[str, str] | None = None
) -> list[RunningNode]:
    """Create nodes (not started) that have all admitted each other."""
    nodes = []
    for node_id in node_ids:
        port = free_port()
        settings = create_node(
            base / node_id, node_id, port=port, database_url=(database_urls or {}).get(node_id)
        )
        nodes.append(RunningNode(node_id, settings.data_dir, port, issue_tokens(settings)))
    for node in nodes:
        for other in nodes:
            if other is not node:
                admit(node, other)
    return nodes


def start_all(nodes: list[RunningNode]) -> None:
    """Start every node's process at once; return when they are all ready."""
    for started in [node.start(wait=False) for node in nodes]:
        started.wait_ready()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[list[RunningNode]]:
    """Three running nodes, CM, CF and CD, each peered with the other two (SQLite)."""
    nodes = build_network(tmp_path, ("CM", "CF", "CD"))
    try:
        start_all(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def wait_for(predicate, timeout: float = 20.0, interval: float = 0.2):  # type: ignore[no-untyped-def]
    """Poll ``predicate`` until it returns a truthy value; return it (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


# -- helpers for delivery and fault tests ----------------------------------------------


def metric_value(node: RunningNode, sample: str, **labels: str) -> float:
    """Sum of the ``sample`` series (full sample name, e.g. ``..._total``) whose labels
    include ``labels``, read from the node's /metrics; 0 when there is none."""
    from prometheus_client.parser import text_string_to_metric_families

    response = httpx.get(f"{node.url}/metrics", timeout=10.0)
    response.raise_for_status()
    return sum(
        s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
        if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items())
    )


def alert_json(title: str, **fields: object) -> dict[str, object]:
    """A valid alert body for POST /api/v1/alerts."""
    return {
        "category": "seizure",
        "severity": "urgent",
        "title": title,
        "body": "Colis de pierres brutes sans certificat KP",
        "handling": "AMBER",
        **fields,
    }


def inbound_alerts(node: RunningNode, role: str = "officer") -> list[dict[str, object]]:
    """Every inbound alert of ``node``, through the API, page by page."""
    alerts: list[dict[str, object]] = []
    with node.api(role) as api:
        while True:
            page = api.get(
                "/api/v1/alerts",
                params={"direction": "inbound", "limit": 500, "offset": len(alerts)},
            )
            page.raise_for_status()
            alerts.extend(page.json())
            if len(page.json()) < 500:
                return alerts


def queue_alerts(
    node: RunningNode, count: int, recipients: list[str] | None = None, title: str = "Bulk alert"
) -> list[str]:
    """Create ``count`` outbound alerts in-process, in one transaction (the node's
    processes may be running or not); return their alert uuids."""
    return queue_alerts_sized(node, count, None, recipients, title)


def queue_alerts_sized(
    node: RunningNode,
    count: int,
    size: int | None,
    recipients: list[str] | None = None,
    title: str = "Bulk alert",
) -> list[str]:
    """``queue_alerts`` of alerts whose envelopes are about ``size`` bytes."""
    from node.schemas.alerts import AlertCreate
    from node.services.alerts import AlertService

    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            service = AlertService(
                session, runtime.sealing, Actor("bulk-test", "analyst"), runtime.now()
            )
            uuids = [
                service.create(
                    AlertCreate.model_validate(
                        sized_alert(f"{title} {i}", size, recipients=recipients)
                        if size
                        else alert_json(f"{title} {i}", recipients=recipients)
                    )
                ).alert_uuid
                for i in range(count)
            ]
            session.commit()
        return uuids
    finally:
        runtime.close()


# -- Envelopes built in the test process with a running node's own keys ------------------
# (test_attacks.py, test_peers.py)


def identity_of(node: RunningNode):  # type: ignore[no-untyped-def]
    """The node's private keys as they are on disk now (after a rotation: the new ones)."""
    from node.keystore import load_identity

    settings = load_settings(node.data_dir)
    return load_identity(settings.keys_dir, settings.node_id)


def card_of(node: RunningNode):  # type: ignore[no-untyped-def]
    """The node's current signed card, as on disk."""
    from protocol import verify_card

    return verify_card(load_settings(node.data_dir).card_path.read_bytes())


def recipient_of(node: RunningNode):  # type: ignore[no-untyped-def]
    """Where to seal to reach ``node``: its id and current encryption key (from its card)."""
    from protocol import Recipient

    return Recipient(node.node_id, card_of(node).current_key("enc", int(time.time())))


def alert_payload(**fields: object):  # type: ignore[no-untyped-def]
    """A valid ``alert`` payload (protocol model) with a fresh alert id."""
    import uuid

    from protocol import Alert

    values: dict[str, object] = {
        "alert_id": str(uuid.uuid4()),
        "category": "seizure",
        "severity": "urgent",
        "title": "Colis saisi à Bangui",
        "body": "312 pierres brutes, certificat KP falsifié",
        "handling": "AMBER",
        "issued_at": int(time.time()),
        **fields,
    }
    return Alert.model_validate(values)


def post_envelopes(node: RunningNode, body: object, **headers: str) -> httpx.Response:
    """POST ``body`` (bytes, or an iterator of byte chunks: sent chunked) to the node's
    federation endpoint, as a peer does (no token)."""
    return httpx.post(
        f"{node.url}/federation/v1/messages",
        content=body,  # type: ignore[arg-type]
        timeout=30.0,
        headers={"content-type": "application/json", **headers},
    )


# -- more helpers for delivery and fault tests (test_delivery.py, test_faults.py) --------


def send_alert(node: RunningNode, body: dict[str, object]):  # type: ignore[no-untyped-def]
    """POST an alert as the node's analyst; the created alert (201) as JSON."""
    with node.api("analyst") as api:
        response = api.post("/api/v1/alerts", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def recipient_states(node: RunningNode, alert_id: int) -> dict[str, str]:
    """Per-recipient delivery state of one of ``node``'s outbound alerts."""
    with node.api("analyst") as api:
        response = api.get(f"/api/v1/alerts/{alert_id}")
    assert response.status_code == 200, response.text
    return {r["peer"]: r["state"] for r in response.json()["recipients"]}


# -- slow links and failing peers (test_slow_*.py, test_disk_full.py, test_clock_skew.py) --


def peer_row(node: RunningNode, peer: str) -> dict[str, Any]:
    """``node``'s record of ``peer``, through the admin API."""
    with node.api("admin") as api:
        response = api.get("/api/v1/peers")
    assert response.status_code == 200, response.text
    [row] = [p for p in response.json() if p["node_id"] == peer]
    return row  # type: ignore[no-any-return]


def route_through(node: RunningNode, peer: str, url: str) -> None:
    """``node`` reaches ``peer`` at ``url`` (a FaultyLink in front of it), as if the peer's
    card said so. Done in the database, with ``node``'s processes running or not."""
    from sqlalchemy import update

    from node.db.models import Peer

    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            session.execute(update(Peer).where(Peer.node_id == peer).values(endpoint=url))
            session.commit()
    finally:
        runtime.close()


def outbox_to(node: RunningNode, peer: str):  # type: ignore[no-untyped-def]
    """``node``'s outbox rows for ``peer``, oldest first (detached, read-only)."""
    from sqlalchemy import select

    from node.db.models import OutboxMessage

    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            rows = session.execute(
                select(OutboxMessage)
                .where(OutboxMessage.recipient == peer)
                .order_by(OutboxMessage.id)
            ).scalars()
            return [session.expunge(r) or r for r in rows]  # type: ignore[func-returns-value]
    finally:
        runtime.close()


def sized_alert(title: str, size: int, **fields: object) -> dict[str, object]:
    """An alert body for POST /api/v1/alerts whose sealed envelope is about ``size``
    bytes (an envelope is about 860 bytes plus 1.35 times its alert's text)."""
    text = "Colis de pierres brutes saisi au poste frontière, certificat KP douteux. "
    length = max(1, int((size - 860) / 1.35))
    return alert_json(title, body=(text * (1 + length // len(text)))[:length], **fields)
