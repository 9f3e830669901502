"""Key rotation without restart: `kpnet keys rotate` (the real CLI) while the node's
`kpnet serve` processes keep running, then traffic both ways at once.

Every message, the card.update included, must be delivered on its first attempt (no
receipt refused as sealed to a key the node does not hold yet, no message refused as
signed by a key the peer does not know yet), and the node ends up signing with its
new key. With PostgreSQL, two processes of the rotating node share its database and
key directory, and alerts go out through both.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import httpx
import pytest

from protocol import parse_json
from tests.conftest import free_port, run_kpnet
from tests.federation.conftest import (
    RunningNode,
    alert_json,
    build_network,
    card_of,
    identity_of,
    inbound_alerts,
    outbox_to,
    peer_row,
    route_through,
    wait_for,
)

ALERTS = 20
DELIVERY_SECONDS = 90.0


def rotate(node: RunningNode) -> subprocess.CompletedProcess[str]:
    result = run_kpnet("keys", "rotate", "--data-dir", node.data_dir)
    assert result.returncode == 0, result.stderr
    return result


def post_alert(client: httpx.Client, title: str) -> str:
    response = client.post("/api/v1/alerts", json=alert_json(title))
    assert response.status_code == 201, response.text
    return str(response.json()["alert_uuid"])


def analyst(node: RunningNode, port: int) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{port}",
        timeout=30.0,
        headers={"Authorization": f"Bearer {node.tokens['analyst']}"},
    )


def signed_with_new_key(node: RunningNode, client: httpx.Client, new_kid: str) -> bool:
    """Post an alert through this process of ``node``; whether it was signed with the new
    key (a process takes the new key within a second of the peers having the card)."""
    post_alert(client, "Clé nouvelle ?")
    rows = [r for r in outbox_to(node, "CF") if r.msg_type == "alert"]
    return bool(parse_json(rows[-1].envelope)["sender_sig_kid"] == new_kid)


def received(node: RunningNode, uuids: list[str]) -> bool:
    return set(uuids) <= {a["alert_uuid"] for a in inbound_alerts(node)}


def settled(node: RunningNode, peer: str) -> bool:
    return all(row.status != "pending" for row in outbox_to(node, peer))


def assert_first_attempt(node: RunningNode, peer: str) -> None:
    rows = outbox_to(node, peer)
    assert [(r.msg_type, r.status, r.attempts, r.last_error) for r in rows] == [
        (r.msg_type, "delivered", 1, None) for r in rows
    ]
    record = peer_row(node, peer)
    assert record["last_error"] is None, record["last_error"]
    assert record["consecutive_failures"] == 0


@pytest.fixture
def two_nodes(tmp_path, request) -> Iterator[tuple[RunningNode, RunningNode, list[int]]]:
    """CM (the rotating node, on the given database, with one or two processes) and CF,
    running and peered."""
    database, processes = request.param
    urls = {"CM": request.getfixturevalue("postgres_url")} if database == "postgres" else {}
    cm, cf = build_network(tmp_path, ("CM", "CF"), urls)
    ports = [cm.port] + [free_port() for _ in range(processes - 1)]
    try:
        starting = [cf.start(wait=False)] + [cm.start(port=p, wait=False) for p in ports]
        for started in starting:
            started.wait_ready()
        yield cm, cf, ports
    finally:
        cm.stop()
        cf.stop()


@pytest.mark.parametrize(
    "two_nodes",
    [
        pytest.param(("sqlite", 1), id="sqlite"),
        pytest.param(("postgres", 1), id="postgres", marks=pytest.mark.postgres),
        pytest.param(("postgres", 2), id="postgres-two-processes", marks=pytest.mark.postgres),
    ],
    indirect=True,
)
def test_rotation_takes_effect_at_once_without_restart(two_nodes) -> None:
    cm, cf, ports = two_nodes
    old = identity_of(cm)
    # Traffic before the rotation, so both sides have talked already.
    with analyst(cm, ports[0]) as api:
        before = [post_alert(api, "Avant la rotation")]
    wait_for(lambda: received(cf, before), timeout=DELIVERY_SECONDS)

    printed = rotate(cm).stdout
    new = identity_of(cm)
    assert "restart" not in printed
    clients = [analyst(cm, port) for port in ports]
    try:
        from_cm = [
            post_alert(clients[i % len(clients)], f"Après rotation {i}") for i in range(ALERTS)
        ]
    finally:
        for client in clients:
            client.close()
    with cf.api("analyst") as api:
        from_cf = [post_alert(api, f"Réponse {i}") for i in range(ALERTS)]

    wait_for(lambda: received(cf, from_cm), timeout=DELIVERY_SECONDS)
    wait_for(lambda: received(cm, from_cf), timeout=DELIVERY_SECONDS)
    wait_for(lambda: settled(cm, "CF") and settled(cf, "CM"), timeout=DELIVERY_SECONDS)
    assert_first_attempt(cm, "CF")
    assert_first_attempt(cf, "CM")
    assert peer_row(cf, "CM")["card_serial"] == 2 == card_of(cm).serial

    # CF sealed to CM's new encryption key once it had the card.update, and CM opened it.
    to_cm = [parse_json(r.envelope) for r in outbox_to(cf, "CM") if r.msg_type == "alert"]
    assert new.encryption_kid in {e["recipient_enc_kid"] for e in to_cm}
    # Once CF has acknowledged the card.update, CM signs with its new key, in every process.
    clients = [analyst(cm, port) for port in ports]
    try:
        for client in clients:
            wait_for(
                lambda c=client: signed_with_new_key(cm, c, new.signing_kid),
                timeout=DELIVERY_SECONDS,
            )
    finally:
        for client in clients:
            client.close()
    wait_for(lambda: settled(cm, "CF"), timeout=DELIVERY_SECONDS)
    sent = [parse_json(r.envelope) for r in outbox_to(cm, "CF")]
    assert {(e["sender_sig_kid"], e["sender_enc_kid"]) for e in sent} <= {
        (old.signing_kid, old.encryption_kid),
        (new.signing_kid, new.encryption_kid),
    }
    assert new.signing_kid != old.signing_kid
    assert_first_attempt(cm, "CF")  # whichever key signed them
    assert_first_attempt(cf, "CM")


@pytest.mark.parametrize(
    "two_nodes",
    [
        pytest.param(("sqlite", 1), id="sqlite"),
        pytest.param(("postgres", 1), id="postgres", marks=pytest.mark.postgres),
    ],
    indirect=True,
)
def test_until_the_peer_has_the_new_card_the_node_signs_with_its_old_key(two_nodes) -> None:
    """The card.update cannot reach CF for a while: meanwhile CF's alerts reach CM, and
    CM's receipts (and its own alerts) must be signed with keys CF knows."""
    cm, cf, ports = two_nodes
    old = identity_of(cm)
    route_through(cm, "CF", f"http://127.0.0.1:{free_port()}")  # nobody listens there
    rotate(cm)
    new = identity_of(cm)
    with cf.api("analyst") as api:
        from_cf = [post_alert(api, f"Pendant l'annonce {i}") for i in range(5)]
    with analyst(cm, ports[0]) as api:
        from_cm = [post_alert(api, "Pendant l'annonce")]
    wait_for(lambda: received(cm, from_cf), timeout=DELIVERY_SECONDS)
    wait_for(lambda: settled(cf, "CM"), timeout=DELIVERY_SECONDS)
    assert_first_attempt(cf, "CM")  # every receipt of CM's verified at once
    assert peer_row(cf, "CM")["card_serial"] == 1  # the card.update has not arrived
    pending = [parse_json(r.envelope) for r in outbox_to(cm, "CF") if r.status == "pending"]
    assert [e["type"] for e in pending] == ["card.update", "alert"]
    assert {(e["sender_sig_kid"], e["sender_enc_kid"]) for e in pending} == {
        (old.signing_kid, old.encryption_kid)
    }

    route_through(cm, "CF", cf.url)
    wait_for(lambda: received(cf, from_cm), timeout=DELIVERY_SECONDS)
    wait_for(lambda: settled(cm, "CF"), timeout=DELIVERY_SECONDS)
    assert peer_row(cf, "CM")["card_serial"] == 2
    with analyst(cm, ports[0]) as api:
        wait_for(lambda: signed_with_new_key(cm, api, new.signing_kid), timeout=DELIVERY_SECONDS)
    last = parse_json(outbox_to(cm, "CF")[-1].envelope)
    assert (last["sender_sig_kid"], last["sender_enc_kid"]) == (
        new.signing_kid,
        new.encryption_kid,
    )
    wait_for(lambda: settled(cm, "CF"), timeout=DELIVERY_SECONDS)
    assert peer_row(cf, "CM")["last_error"] is None
