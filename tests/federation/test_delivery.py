"""Delivery between real nodes (CM, CF, CD: separate `kpnet serve` processes, real HTTP):
broadcast, chosen recipients, sharing agreements, updates, retraction, acknowledgements
coming back as receipts, and the live alert stream.

The three nodes are started once for the module: each test starts from the default
sharing agreements, and counts what it sent and received from where the nodes were
when it began (alerts by their ids, metrics as differences)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.federation.conftest import (
    RunningNode,
    alert_json,
    build_network,
    free_port,
    inbound_alerts,
    metric_value,
    recipient_states,
    send_alert,
    start_all,
    wait_for,
)

RECEIVED = "kpnet_federation_messages_received_total"


@pytest.fixture(scope="module")
def running_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningNode]]:
    nodes = build_network(Path(tmp_path_factory.mktemp("delivery")), ("CM", "CF", "CD"))
    try:
        start_all(nodes)
        yield nodes
    finally:
        for node in nodes:
            node.stop()


@pytest.fixture
def network(running_network: list[RunningNode]) -> list[RunningNode]:
    """The module's CM, CF and CD, each with the default agreement with the others."""
    for node in running_network:
        for other in running_network:
            if other is not node:
                set_agreement(node, other.node_id, max_handling="AMBER")
    return running_network


def inbound_ids(node: RunningNode) -> list[str]:
    return [str(a["alert_uuid"]) for a in inbound_alerts(node)]


def new_inbound(node: RunningNode, before: list[str]) -> list[str]:
    """The ids of ``node``'s inbound alerts that were not among ``before``."""
    return [uuid for uuid in inbound_ids(node) if uuid not in before]


def received(node: RunningNode, alert_uuid: str) -> list[dict[str, Any]]:
    """``node``'s inbound copies of the alert (there must never be more than one), as an
    analyst sees them (cleared for RED, so every copy is seen)."""
    return [a for a in inbound_alerts(node, "analyst") if a["alert_uuid"] == alert_uuid]


def wait_received(
    node: RunningNode,
    alert_uuid: str,
    check=lambda alert: True,  # type: ignore[no-untyped-def]
    timeout: float = 20.0,
) -> dict[str, Any]:
    def arrived() -> dict[str, Any] | None:
        copies = received(node, alert_uuid)
        assert len(copies) <= 1, f"{node.node_id} holds {len(copies)} copies of {alert_uuid}"
        return copies[0] if copies and check(copies[0]) else None

    return wait_for(arrived, timeout=timeout)


def set_agreement(node: RunningNode, peer: str, **agreement: Any) -> None:
    with node.api("admin") as api:
        response = api.put(f"/api/v1/peers/{peer}/agreement", json=agreement)
    assert response.status_code == 200, response.text
    assert response.json()["agreement"]["max_handling"] == agreement["max_handling"]


def test_broadcast_reaches_every_peer_once_and_sender_records_delivery(network):
    cm, cf, cd = network
    received_before = {
        p.node_id: metric_value(p, RECEIVED, peer="CM", type="alert") for p in (cf, cd)
    }
    sent_before = metric_value(cm, "kpnet_federation_messages_sent_total", type="alert")
    place = {"country": "CF", "locality": "Bangui"}
    sent = send_alert(cm, alert_json("Colis saisi à Bangui", place=place))
    assert sent["withheld"] == []
    assert {r["peer"]: r["state"] for r in sent["recipients"]} == {"CF": "queued", "CD": "queued"}

    for peer in (cf, cd):
        alert = wait_received(peer, sent["alert_uuid"])
        assert alert["origin"] == "CM"
        assert alert["direction"] == "inbound"
        assert alert["title"] == "Colis saisi à Bangui"
        assert alert["place"] == place
        assert alert["revision"] == 1
        assert alert["status"] == "active"
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CF": "delivered", "CD": "delivered"})
    for peer in (cf, cd):
        assert (
            metric_value(peer, RECEIVED, peer="CM", type="alert") - received_before[peer.node_id]
            == 1
        )
    assert metric_value(cm, "kpnet_federation_messages_sent_total", type="alert") - sent_before == 2
    assert metric_value(cm, "kpnet_outbox_pending_count") == 0


def test_alert_to_a_chosen_peer_reaches_only_that_peer(network):
    cm, cf, cd = network
    cd_before = inbound_ids(cd)
    received_before = metric_value(cd, RECEIVED, peer="CM")
    rejected_before = metric_value(cd, "kpnet_federation_messages_rejected_total")
    chosen = send_alert(cm, alert_json("Pour la RCA seulement", recipients=["CF"]))
    assert [r["peer"] for r in chosen["recipients"]] == ["CF"]

    wait_received(cf, chosen["alert_uuid"])
    wait_for(lambda: recipient_states(cm, chosen["id"]) == {"CF": "delivered"})
    # Its updates go to the same recipients only.
    with cm.api("analyst") as api:
        response = api.post(
            f"/api/v1/alerts/{chosen['id']}/update",
            json=alert_json("Pour la RCA seulement, révisé"),
        )
        assert response.status_code == 200, response.text
    wait_received(cf, chosen["alert_uuid"], lambda a: a["revision"] == 2)
    wait_for(lambda: recipient_states(cm, chosen["id"]) == {"CF": "delivered"})
    # A later broadcast reaching CD shows CM's sender has been working for CD since.
    later = send_alert(cm, alert_json("Pour tous"))
    wait_received(cd, later["alert_uuid"])
    wait_for(lambda: recipient_states(cm, later["id"]) == {"CF": "delivered", "CD": "delivered"})
    assert new_inbound(cd, cd_before) == [later["alert_uuid"]]
    assert metric_value(cd, RECEIVED, peer="CM") - received_before == 1
    assert metric_value(cd, "kpnet_federation_messages_rejected_total") == rejected_before


def test_unknown_or_own_recipient_is_refused(network):
    cm, _, _ = network
    with cm.api("analyst") as api:
        outbound = api.get("/api/v1/alerts", params={"direction": "outbound"}).json()
        for recipients in (["ZA"], ["CM"], ["CF", "ZA"]):
            response = api.post("/api/v1/alerts", json=alert_json("x", recipients=recipients))
            assert response.status_code == 422, response.text
        assert api.get("/api/v1/alerts", params={"direction": "outbound"}).json() == outbound


def test_sharing_agreement_withholds_red_alert_from_peer_not_allowed_it(network):
    cm, cf, cd = network
    cd_before = inbound_ids(cd)
    set_agreement(cm, "CF", max_handling="RED")  # CM may send RED to CF ...
    set_agreement(cf, "CM", max_handling="RED")  # ... and CF accepts RED from CM.

    red = send_alert(
        cm, alert_json("Itinéraire de contrebande", category="smuggling_route", handling="RED")
    )
    assert {r["peer"]: r["state"] for r in red["recipients"]} == {"CF": "queued", "CD": "withheld"}
    [withheld] = red["withheld"]
    assert withheld["peer"] == "CD"
    assert "RED" in withheld["reason"] and "AMBER" in withheld["reason"]

    alert = wait_received(cf, red["alert_uuid"])
    assert alert["handling"] == "RED"
    wait_for(lambda: recipient_states(cm, red["id"]) == {"CF": "delivered", "CD": "withheld"})
    # An AMBER alert sent after it reaches CD; the RED one never does.
    amber = send_alert(cm, alert_json("Saisie à Bangui"))
    wait_received(cd, amber["alert_uuid"])
    assert new_inbound(cd, cd_before) == [amber["alert_uuid"]]
    assert recipient_states(cm, red["id"]) == {"CF": "delivered", "CD": "withheld"}


def test_receiver_refuses_what_its_own_agreement_does_not_allow(network):
    """The agreement is checked again at the receiver: CM may send RED to CF, but CF
    has not agreed to take RED from CM, so CF refuses it and CM records the failure."""
    cm, cf, _ = network
    rejected_before = metric_value(
        cf, "kpnet_federation_messages_rejected_total", peer="CM", code="not_permitted"
    )
    failed_before = metric_value(
        cm, "kpnet_federation_messages_failed_total", peer="CF", code="not_permitted"
    )
    set_agreement(cm, "CF", max_handling="RED")

    red = send_alert(cm, alert_json("Rouge", handling="RED", recipients=["CF"]))
    wait_for(lambda: recipient_states(cm, red["id"]) == {"CF": "failed"})
    assert received(cf, red["alert_uuid"]) == []
    assert (
        metric_value(
            cf, "kpnet_federation_messages_rejected_total", peer="CM", code="not_permitted"
        )
        - rejected_before
        == 1
    )
    assert (
        metric_value(cm, "kpnet_federation_messages_failed_total", peer="CF", code="not_permitted")
        - failed_before
        == 1
    )
    # Refused for good: not retried, and the peer is not put in backoff for it.
    with cm.api("admin") as api:
        peer = api.get("/api/v1/peers/CF").json()
    assert peer["consecutive_failures"] == 0
    assert metric_value(cm, "kpnet_outbox_pending_count", peer="CF") == 0


def test_update_and_retraction_propagate_to_every_receiver(network):
    cm, cf, cd = network
    received_before = {p.node_id: metric_value(p, RECEIVED, peer="CM") for p in (cf, cd)}
    sent = send_alert(cm, alert_json("Suspect signalé à Berbérati", severity="warning"))
    for peer in (cf, cd):
        wait_received(peer, sent["alert_uuid"])

    with cm.api("analyst") as api:
        response = api.post(
            f"/api/v1/alerts/{sent['id']}/update",
            json=alert_json(
                "Suspect interpellé à Berbérati", severity="urgent", references=["PV 2024/117"]
            ),
        )
        assert response.status_code == 200, response.text
        assert response.json()["revision"] == 2
    for peer in (cf, cd):
        alert = wait_received(peer, sent["alert_uuid"], lambda a: a["revision"] == 2)
        assert alert["title"] == "Suspect interpellé à Berbérati"
        assert alert["severity"] == "urgent"
        assert alert["references"] == ["PV 2024/117"]
        assert alert["status"] == "active"
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CF": "delivered", "CD": "delivered"})

    with cm.api("analyst") as api:
        response = api.post(
            f"/api/v1/alerts/{sent['id']}/retract", json={"reason": "Erreur d'identification"}
        )
        assert response.status_code == 200, response.text
        assert response.json()["status"] == "retracted"
        # A retracted alert can no longer be changed.
        again = api.post(f"/api/v1/alerts/{sent['id']}/update", json=alert_json("Encore"))
        assert again.status_code == 409, again.text
    for peer in (cf, cd):
        alert = wait_received(peer, sent["alert_uuid"], lambda a: a["status"] == "retracted")
        assert alert["retract_reason"] == "Erreur d'identification"
        assert alert["revision"] == 2
        assert alert["title"] == "Suspect interpellé à Berbérati"
        assert metric_value(peer, RECEIVED, peer="CM") - received_before[peer.node_id] == 3


def test_update_above_a_peers_agreement_withdraws_the_alert_from_it(network):
    cm, cf, cd = network
    set_agreement(cm, "CF", max_handling="RED")
    set_agreement(cf, "CM", max_handling="RED")
    sent = send_alert(cm, alert_json("Ambre d'abord"))
    for peer in (cf, cd):
        wait_received(peer, sent["alert_uuid"])

    with cm.api("analyst") as api:
        response = api.post(
            f"/api/v1/alerts/{sent['id']}/update", json=alert_json("Rouge ensuite", handling="RED")
        )
        assert response.status_code == 200, response.text
    alert = wait_received(cf, sent["alert_uuid"], lambda a: a["revision"] == 2)
    assert (alert["title"], alert["handling"]) == ("Rouge ensuite", "RED")
    withdrawn = wait_received(cd, sent["alert_uuid"], lambda a: a["status"] == "retracted")
    # CD keeps only what it was allowed to see: revision 1, marked withdrawn.
    assert (withdrawn["revision"], withdrawn["title"]) == (1, "Ambre d'abord")
    assert withdrawn["retract_reason"] == "withdrawn from this recipient"
    wait_for(lambda: recipient_states(cm, sent["id"])["CF"] == "delivered")
    assert recipient_states(cm, sent["id"]) == {"CF": "delivered", "CD": "withheld"}


def test_acknowledgements_come_back_to_the_sender_as_receipts(network):
    cm, cf, cd = network
    receipts_before = metric_value(cm, RECEIVED, peer="CF", type="receipt")
    sent = send_alert(cm, alert_json("Faux certificat KP", category="fake_kp_certificate"))
    inbound = wait_received(cf, sent["alert_uuid"])
    wait_received(cd, sent["alert_uuid"])
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CF": "delivered", "CD": "delivered"})

    with cf.api("officer") as api:
        response = api.post(f"/api/v1/alerts/{inbound['id']}/ack", json={"status": "read"})
        assert response.status_code == 200, response.text
        assert response.json()["read_by"] == "officer-1"
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CF": "read", "CD": "delivered"})

    with cf.api("officer") as api:
        response = api.post(f"/api/v1/alerts/{inbound['id']}/ack", json={"status": "acted"})
        assert response.status_code == 200, response.text
        assert response.json()["acted_by"] == "officer-1"
    wait_for(lambda: recipient_states(cm, sent["id"]) == {"CF": "acted", "CD": "delivered"})
    assert metric_value(cm, RECEIVED, peer="CF", type="receipt") - receipts_before == 2
    # Only received alerts are acknowledged.
    with cm.api("analyst") as api:
        response = api.post(f"/api/v1/alerts/{sent['id']}/ack", json={"status": "read"})
        assert response.status_code == 422, response.text


def read_events(lines, until, deadline: float) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Parse Server-Sent Events from ``lines`` until ``until(events)`` holds."""
    events: list[dict[str, Any]] = []
    event: str | None = None
    data: list[str] = []
    for line in lines:
        if line.startswith("event:"):
            event = line.removeprefix("event:").strip()
        elif line.startswith("data:"):
            data.append(line.removeprefix("data:").strip())
        elif line == "":
            if event == "alert":
                events.append(json.loads("\n".join(data)))
                if until(events):
                    return events
            event, data = None, []
        if time.monotonic() > deadline:
            break
    raise AssertionError(f"stream ended or timed out with events {events}")


def test_live_stream_delivers_an_alert_sent_while_it_is_open(network):
    cm, cf, _ = network
    before = send_alert(cm, alert_json("Avant l'ouverture du flux", recipients=["CF"]))
    wait_received(cf, before["alert_uuid"])

    with (
        cf.api("officer", timeout=15.0) as api,
        api.stream("GET", "/api/v1/alerts/stream") as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        assert next(lines) == ": connected"
        sent = send_alert(cm, alert_json("Pendant le flux", recipients=["CF"]))
        events = read_events(
            lines,
            lambda evs: any(e["alert_uuid"] == sent["alert_uuid"] for e in evs),
            deadline=time.monotonic() + 30,
        )
    # Only what arrived after the stream opened, each once.
    assert [e["alert_uuid"] for e in events] == [sent["alert_uuid"]]
    assert events[0]["title"] == "Pendant le flux"
    assert events[0]["origin"] == "CM"


@pytest.mark.postgres
def test_live_stream_sees_alerts_received_by_another_process_on_the_database(
    tmp_path, postgres_url
):
    """CF runs two processes on one PostgreSQL database; CM delivers to the first, and
    a stream opened on the second still sees the alert (it reads the database)."""
    cm, cf = build_network(tmp_path, ("CM", "CF"), {"CF": postgres_url})
    try:
        cm.start()
        cf.start()
        other = free_port()
        cf.start(port=other)
        headers = {"Authorization": f"Bearer {cf.tokens['officer']}"}
        with (
            httpx.Client(
                base_url=f"http://127.0.0.1:{other}", headers=headers, timeout=15.0
            ) as api,
            api.stream("GET", "/api/v1/alerts/stream") as stream,
        ):
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(lines) == ": connected"
            sent = send_alert(cm, alert_json("Reçu par l'autre processus"))
            events = read_events(
                lines,
                lambda evs: any(e["alert_uuid"] == sent["alert_uuid"] for e in evs),
                deadline=time.monotonic() + 30,
            )
        assert [e["alert_uuid"] for e in events] == [sent["alert_uuid"]]
        assert metric_value(cf, RECEIVED, peer="CM") == 1
    finally:
        for node in (cm, cf):
            node.stop()
