"""Faults between real nodes: a peer that is down, a sender killed mid-delivery, two
sender processes sharing one PostgreSQL database, messages that expire, and the
per-peer backoff state kept in the database."""

from __future__ import annotations

import signal
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

import protocol
from node.config import load_settings
from node.db.models import OutboxMessage, Peer
from node.federation.inbound import MAX_BATCH_MESSAGES
from node.runtime import open_node
from node.services.peers import PeerDirectory
from tests.federation.conftest import (
    FAST_DELIVERY,
    RunningNode,
    alert_json,
    build_network,
    free_port,
    inbound_alerts,
    metric_value,
    peer_row,
    queue_alerts,
    recipient_states,
    send_alert,
    wait_for,
)

BULK = 1000
BATCH = MAX_BATCH_MESSAGES  # messages per delivery, at most


@pytest.fixture
def make_network(tmp_path: Path) -> Iterator[Callable[..., list[RunningNode]]]:
    """Build peered nodes (not started); every process started is stopped afterwards."""
    built: list[RunningNode] = []

    def make(
        node_ids: tuple[str, ...], database_urls: dict[str, str] | None = None
    ) -> list[RunningNode]:
        nodes = build_network(tmp_path, node_ids, database_urls)
        built.extend(nodes)
        return nodes

    try:
        yield make
    finally:
        for node in built:
            node.stop()


def pending(node: RunningNode, peer: str) -> float:
    return metric_value(node, "kpnet_outbox_pending_count", peer=peer)


def accepted(node: RunningNode, sender: str) -> float:
    """Alerts ``node`` accepted from ``sender`` since its process started."""
    return metric_value(node, "kpnet_federation_messages_received_total", peer=sender, type="alert")


def assert_received_exactly_once(node: RunningNode, expected: list[str]) -> None:
    uuids = Counter(a["alert_uuid"] for a in inbound_alerts(node))
    assert {u: n for u, n in uuids.items() if n > 1} == {}
    assert set(uuids) == set(expected)
    assert len(uuids) == len(expected)


def outbox_rows(node: RunningNode) -> list[tuple[OutboxMessage, protocol.Payload | None]]:
    """The node's outbox, each row with its stored receipt opened (signature checked
    against the recipient's key), or None when there is none."""
    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            rows = list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())
            directory = PeerDirectory(session)
            result = []
            for row in rows:
                opened = None
                if row.receipt is not None:
                    opened = protocol.open_envelope(
                        row.receipt.encode(),
                        identity=runtime.identity,
                        directory=directory,
                        now=int(runtime.now().timestamp()),
                    )
                    assert opened.sender == row.recipient
                    assert opened.header.in_reply_to == row.message_id
                result.append((row, opened.payload if opened else None))
        return result
    finally:
        runtime.close()


def test_peer_down_while_sending_gets_everything_once_it_is_back(network):
    cm, cf, cd = network
    cd.stop()
    sent = [send_alert(cm, alert_json(f"Alerte {i}")) for i in range(20)]
    uuids = [a["alert_uuid"] for a in sent]

    # CF is not held up by CD being down.
    wait_for(lambda: accepted(cf, "CM") == 20)
    wait_for(lambda: all(recipient_states(cm, a["id"])["CF"] == "delivered" for a in sent))
    assert all(recipient_states(cm, a["id"])["CD"] == "queued" for a in sent)
    assert pending(cm, "CD") == 20
    assert pending(cm, "CF") == 0
    wait_for(
        lambda: (
            metric_value(
                cm, "kpnet_federation_delivery_failures_total", peer="CD", reason="unreachable"
            )
            >= 2
        )
    )
    assert metric_value(cm, "kpnet_peer_up", peer="CD") == 0

    cd.start()
    wait_for(lambda: pending(cm, "CD") == 0, timeout=30)
    assert all(
        recipient_states(cm, a["id"]) == {"CF": "delivered", "CD": "delivered"} for a in sent
    )
    assert_received_exactly_once(cd, uuids)
    assert_received_exactly_once(cf, uuids)
    assert accepted(cd, "CM") == 20
    assert metric_value(cd, "kpnet_federation_messages_duplicate_total") == 0
    assert metric_value(cm, "kpnet_peer_up", peer="CD") == 1

    # A suspended peer is not delivered to, so it is neither up nor down (no alert).
    with cm.api("admin") as api:
        assert api.post("/api/v1/peers/CD/suspend").status_code == 200
    series = httpx.get(f"{cm.url}/metrics").text
    assert 'kpnet_peer_up{peer="CF"} 1.0' in series
    assert 'kpnet_peer_up{peer="CD"}' not in series


def test_changes_made_while_a_peer_is_down_reach_it_in_order(make_network):
    cm, cd = make_network(("CM", "CD"))
    cm.start()  # CD is down
    updated = send_alert(cm, alert_json("Première version"))
    retracted = send_alert(cm, alert_json("À retirer"))
    with cm.api("analyst") as api:
        for revision in (2, 3):
            response = api.post(
                f"/api/v1/alerts/{updated['id']}/update", json=alert_json(f"Version {revision}")
            )
            assert response.status_code == 200, response.text
        response = api.post(
            f"/api/v1/alerts/{retracted['id']}/update", json=alert_json("À retirer, révisé")
        )
        assert response.status_code == 200, response.text
        response = api.post(
            f"/api/v1/alerts/{retracted['id']}/retract", json={"reason": "Fausse alerte"}
        )
        assert response.status_code == 200, response.text
    assert pending(cm, "CD") == 6

    cd.start()
    wait_for(lambda: pending(cm, "CD") == 0, timeout=30)
    alerts = {a["alert_uuid"]: a for a in inbound_alerts(cd)}
    assert len(alerts) == 2
    final = alerts[updated["alert_uuid"]]
    assert (final["revision"], final["title"], final["status"]) == (3, "Version 3", "active")
    gone = alerts[retracted["alert_uuid"]]
    assert (gone["revision"], gone["status"], gone["retract_reason"]) == (
        2,
        "retracted",
        "Fausse alerte",
    )
    assert recipient_states(cm, updated["id"]) == {"CD": "delivered"}
    assert metric_value(cd, "kpnet_federation_messages_received_total", peer="CM") == 6


def test_backoff_state_is_kept_in_the_database_and_reset_on_recovery(make_network):
    cm, cd = make_network(("CM", "CD"))
    cm.start()  # CD is not running yet
    sent = send_alert(cm, alert_json("En attente"))

    def backing_off(more_than: int) -> dict[str, Any] | None:
        row = peer_row(cm, "CD")
        now = datetime.now(UTC)
        if (
            row["consecutive_failures"] > more_than
            and row["next_attempt_at"] is not None
            and datetime.fromisoformat(row["next_attempt_at"]) > now
        ):
            return row
        return None

    first = wait_for(lambda: backing_off(0))
    assert first["last_error"].startswith("unreachable")
    grown = wait_for(lambda: backing_off(first["consecutive_failures"]))
    assert grown["consecutive_failures"] > first["consecutive_failures"]

    # The state is the database's, not the process's: a restarted sender carries on.
    cm.stop(signal.SIGKILL)
    cm.start()
    after_restart = peer_row(cm, "CD")
    assert after_restart["consecutive_failures"] >= grown["consecutive_failures"]
    wait_for(lambda: backing_off(after_restart["consecutive_failures"]))

    cd.start()
    recovered = wait_for(lambda: (row := peer_row(cm, "CD"))["consecutive_failures"] == 0 and row)
    assert recovered["next_attempt_at"] is None
    assert recovered["last_error"] is None
    assert recovered["last_contact_at"] is not None
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CD": "delivered"})
    assert_received_exactly_once(cd, [sent["alert_uuid"]])


def test_backoff_after_a_very_long_outage_stays_capped(make_network):
    """Weeks of failures (thousands of attempts at the capped delay) must not break
    the exponential: the delay stays at the cap and the state keeps advancing."""
    cm, cd = make_network(("CM", "CD"))
    runtime = open_node(load_settings(cm.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            peer = session.execute(select(Peer).where(Peer.node_id == "CD")).scalar_one()
            peer.consecutive_failures, peer.last_error = 5000, "unreachable: ConnectError"
            session.commit()
    finally:
        runtime.close()
    cm.start()  # CD is still down
    sent = send_alert(cm, alert_json("Après une longue coupure"))

    def attempted() -> dict[str, Any] | None:
        row = peer_row(cm, "CD")
        return row if row["consecutive_failures"] > 5001 else None

    row = wait_for(attempted)
    delay = datetime.fromisoformat(row["next_attempt_at"]) - datetime.now(UTC)
    assert delay <= timedelta(seconds=float(FAST_DELIVERY["KPNET_DELIVERY_BACKOFF_CAP_SECONDS"]))
    assert "outbox round failed" not in cm.log_text()

    cd.start()
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CD": "delivered"})
    assert peer_row(cm, "CD")["consecutive_failures"] == 0


def test_message_past_its_expiry_is_marked_expired_and_never_delivered(make_network):
    cm, cd = make_network(("CM", "CD"))
    cm.start()  # CD is down
    expires = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    short = send_alert(
        cm,
        alert_json(
            "Passage prévu ce soir", category="suspect_movement", expires_at=expires.isoformat()
        ),
    )
    lasting = send_alert(cm, alert_json("Saisie durable"))
    assert recipient_states(cm, short["id"]) == {"CD": "queued"}

    wait_for(lambda: recipient_states(cm, short["id"]) == {"CD": "expired"}, timeout=20)
    assert datetime.now(UTC) >= expires
    assert recipient_states(cm, lasting["id"]) == {"CD": "queued"}
    assert pending(cm, "CD") == 1  # the expired one is no longer waiting

    cd.start()
    wait_for(lambda: recipient_states(cm, lasting["id"]) == {"CD": "delivered"}, timeout=30)
    assert pending(cm, "CD") == 0
    assert_received_exactly_once(cd, [lasting["alert_uuid"]])
    assert recipient_states(cm, short["id"]) == {"CD": "expired"}
    rows = {row.alert_id: row for row, _ in outbox_rows(cm)}
    assert rows[short["id"]].status == "expired"
    assert rows[short["id"]].delivered_at is None
    assert rows[short["id"]].receipt is None


@pytest.mark.slow
def test_sender_killed_mid_delivery_delivers_every_alert_exactly_once(make_network):
    cm, cf = make_network(("CM", "CF"))
    receiver = cf.start(wait=False)
    uuids = queue_alerts(cm, BULK, recipients=["CF"])  # CM is not running yet
    receiver.wait_ready()
    cm.start()

    wait_for(lambda: accepted(cf, "CM") >= 100, timeout=120, interval=0.02)
    cm.stop(signal.SIGKILL)
    at_kill = accepted(cf, "CM")
    assert 0 < at_kill < BULK, f"the kill should land mid-delivery, not at {at_kill}"

    cm.start()
    wait_for(lambda: accepted(cf, "CM") == BULK, timeout=180)
    wait_for(lambda: pending(cm, "CF") == 0, timeout=60)
    assert_received_exactly_once(cf, uuids)
    # What the dead process had in flight (one batch, and the one before it whose
    # receipts it was recording: two at most) was sent again once its lease ran out; CF
    # acknowledged it again without processing it twice.
    assert accepted(cf, "CM") == BULK
    assert metric_value(cf, "kpnet_federation_messages_duplicate_total") <= 2 * BATCH
    rows = outbox_rows(cm)
    assert len(rows) == BULK
    for row, receipt in rows:
        assert row.status == "delivered"
        assert isinstance(receipt, protocol.Receipt)
        assert receipt.message_id == row.message_id


@pytest.mark.slow
@pytest.mark.postgres
def test_two_sender_processes_on_one_postgres_database_send_nothing_twice(
    make_network, postgres_url
):
    cm, cf = make_network(("CM", "CF"), {"CM": postgres_url})
    ports = [cm.port, free_port()]
    # Two CM processes on the same database, each running the outbox sender.
    starting = [cf.start(wait=False)] + [cm.start(port=port, wait=False) for port in ports]
    uuids = queue_alerts(cm, BULK, recipients=["CF"])  # both senders see them at once
    for started in starting:
        started.wait_ready()
    assert len(cm.processes) == 2
    wait_for(lambda: accepted(cf, "CM") == BULK, timeout=180)
    wait_for(lambda: pending(cm, "CF") == 0, timeout=60)

    assert_received_exactly_once(cf, uuids)
    assert metric_value(cf, "kpnet_federation_messages_duplicate_total") == 0
    assert metric_value(cf, "kpnet_federation_messages_rejected_total") == 0
    rows = outbox_rows(cm)
    assert len(rows) == BULK
    for row, receipt in rows:
        assert (row.status, row.attempts) == ("delivered", 1)
        assert isinstance(receipt, protocol.Receipt)
        assert receipt.message_id == row.message_id
    # Both processes took part.
    assert len({row.leased_by for row, _ in rows}) == 2
