"""Peers: admission by card + fingerprint, status, sharing agreements, key rotation.

The CLI runs in process through its entry point (`kpnet peer ...`, `kpnet keys rotate`),
the API in process (``TestClient``), and key rotation between real ``kpnet serve``
processes.
"""

from __future__ import annotations

import json
import subprocess
import time
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

import protocol
from node.app import create_app
from node.config import Settings, load_settings
from node.db.models import OutboxMessage
from node.keystore import load_identity
from node.runtime import open_node
from node.schemas.agreements import SharingAgreement
from node.services.actors import Actor
from node.services.endpoint_policy import EndpointPolicy
from node.services.peers import PeerRegistry
from protocol import (
    ALERT_CATEGORIES,
    CardUpdate,
    NodeIdentity,
    make_card,
    parse_json,
    seal,
    verify_card,
)
from tests.conftest import run_kpnet
from tests.federation.conftest import (
    RunningNode,
    alert_json,
    alert_payload,
    build_network,
    card_of,
    create_node,
    identity_of,
    inbound_alerts,
    issue_tokens,
    post_envelopes,
    recipient_of,
    wait_for,
)

ROLES_NOT_ADMIN = ("analyst", "officer", "auditor")
DELIVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Local:
    """A node created on disk (not serving): its settings, card and fingerprint."""

    settings: Settings

    @property
    def card_bytes(self) -> bytes:
        return self.settings.card_path.read_bytes()

    @property
    def card(self) -> dict[str, Any]:
        return typing.cast(dict[str, Any], json.loads(self.card_bytes))

    @property
    def identity(self) -> NodeIdentity:
        return load_identity(self.settings.keys_dir, self.settings.node_id)

    @property
    def fingerprint(self) -> str:
        return self.identity.fingerprint


@pytest.fixture
def cf(tmp_path: Path) -> Local:
    return Local(create_node(tmp_path / "CF", "CF", port=8201))


@pytest.fixture
def cm(tmp_path: Path) -> Local:
    return Local(create_node(tmp_path / "CM", "CM", port=8200))


def peers_of(node: Local) -> dict[str, str]:
    """Peer id -> status, removed ones included, read from the node's database."""
    runtime = open_node(node.settings, migrate=False)
    try:
        with runtime.sessions() as session:
            registry = PeerRegistry(
                session, Actor("test", "admin"), runtime.now(), own_node_id=node.settings.node_id
            )
            return {p.node_id: p.status for p in registry.all(include_removed=True)}
    finally:
        runtime.close()


def kpnet(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return run_kpnet(*args)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr + result.stdout
    for word in words:
        assert word in lines[0].lower(), lines[0]


# -- CLI ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mistake",
    ["card renamed", "wrong fingerprint", "not a card", "not JSON", "our own card", "no such file"],
)
def test_cli_peer_add_refuses_bad_input_in_one_line(
    tmp_path: Path, cm: Local, cf: Local, mistake: str
) -> None:
    card_file = tmp_path / "card.json"
    fingerprint, card = cf.fingerprint, cf.card
    expected: tuple[str, ...] = ()
    if mistake == "card renamed":
        card["name"] = "Taskforce impostor"  # the signature no longer covers this card
        expected = ("signature",)
    elif mistake == "wrong fingerprint":
        fingerprint = cm.fingerprint
        expected = ("fingerprint",)
    elif mistake == "not a card":
        del card["serial"]
        card["endpoints"] = "http://127.0.0.1:1"
    elif mistake == "our own card":
        card, fingerprint = cm.card, cm.fingerprint
        expected = ("own card",)
    card_file.write_text("{this is not json" if mistake == "not JSON" else json.dumps(card))
    if mistake == "no such file":
        card_file.unlink()
    result = kpnet(
        "peer", "add", "--data-dir", cm.settings.data_dir, card_file, "--fingerprint", fingerprint
    )
    assert_one_line_error(result, *expected)
    assert result.stdout == ""
    assert peers_of(cm) == {}


def test_cli_peer_lifecycle(tmp_path: Path, cm: Local, cf: Local) -> None:
    card_file = tmp_path / "CF.card.json"
    card_file.write_bytes(cf.card_bytes)
    data_dir = cm.settings.data_dir
    dashed = "-".join(cf.fingerprint.split())

    added = kpnet("peer", "add", "--data-dir", data_dir, card_file, "--fingerprint", dashed)
    assert added.returncode == 0, added.stderr
    assert "peer CF" in added.stdout and "TLP:AMBER" in added.stdout
    assert peers_of(cm) == {"CF": "active"}

    assert (
        kpnet("peer", "suspend", "--data-dir", data_dir, "CF").stdout.strip()
        == "peer CF is now suspended"
    )
    listed = kpnet("peer", "list", "--data-dir", data_dir)
    assert listed.returncode == 0, listed.stderr
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [["CF", "suspended"]]
    assert listed.stdout.split("\t")[6:] == [
        f"fingerprint {cf.fingerprint}",
        "last error -",
        "pending endpoint -\n",
    ]

    assert kpnet("peer", "resume", "--data-dir", data_dir, "CF").returncode == 0
    assert peers_of(cm) == {"CF": "active"}
    removed = kpnet("peer", "remove", "--data-dir", data_dir, "CF")
    assert removed.returncode == 0, removed.stderr
    assert peers_of(cm) == {"CF": "removed"}
    assert kpnet("peer", "list", "--data-dir", data_dir).stdout == ""

    # A removed peer can be admitted again (here with the fingerprint typed without spaces).
    compact = cf.fingerprint.replace(" ", "")
    readded = kpnet("peer", "add", "--data-dir", data_dir, card_file, "--fingerprint", compact)
    assert readded.returncode == 0, readded.stderr
    listed = kpnet("peer", "list", "--data-dir", data_dir)
    assert [line.split("\t")[:2] for line in listed.stdout.splitlines()] == [["CF", "active"]]

    assert_one_line_error(kpnet("peer", "suspend", "--data-dir", data_dir, "GA"), "ga")


@pytest.mark.parametrize(
    "typed", ["as printed", "dashes", "compact", "extra spaces", "dashes and spaces"]
)
def test_fingerprint_may_be_typed_with_spaces_or_dashes(cm: Local, cf: Local, typed: str) -> None:
    groups = cf.fingerprint.split()
    assert len(groups) == 6 and all(len(g) == 5 and g.isdigit() for g in groups)
    text = {
        "as printed": cf.fingerprint,
        "dashes": "-".join(groups),
        "compact": "".join(groups),
        "extra spaces": "  " + "   ".join(groups) + " ",
        "dashes and spaces": " - ".join(groups),
    }[typed]
    runtime = open_node(cm.settings, migrate=False)
    try:
        with runtime.sessions() as session:
            peer = PeerRegistry(
                session,
                Actor("test", "admin"),
                runtime.now(),
                own_node_id="CM",
                endpoints=EndpointPolicy.from_settings(runtime.settings),
            ).add(cf.card_bytes, fingerprint=text)
            session.commit()
            assert peer.fingerprint == cf.fingerprint
    finally:
        runtime.close()
    assert peers_of(cm) == {"CF": "active"}


# -- API ---------------------------------------------------------------------------------------


@dataclass
class Api:
    client: TestClient
    tokens: dict[str, str]
    cm: Local
    cf: Local

    def headers(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def call(self, method: str, path: str, role: str = "admin", **kwargs: Any) -> Any:
        return self.client.request(
            method, f"/api/v1/peers{path}", headers=self.headers(role), **kwargs
        )

    def add_cf(self, **extra: Any) -> Any:
        return self.call(
            "POST", "", json={"card": self.cf.card, "fingerprint": self.cf.fingerprint, **extra}
        )

    def from_cf(self) -> Any:
        """A genuine alert from CF to CM, posted to CM's federation endpoint."""
        cm_card = verify_card(self.cm.card_bytes)
        raw = seal(
            self.cf.identity,
            protocol.Recipient("CM", cm_card.current_key("enc", now())),
            alert_payload(),
            now=now(),
        )
        return self.client.post(
            "/federation/v1/messages", content=raw, headers={"content-type": "application/json"}
        )


def now() -> int:
    return int(time.time())


@pytest.fixture
def api(tmp_path: Path, database_url: str | None, cf: Local) -> Iterator[Api]:
    """CM's app in process (SQLite, and PostgreSQL when configured); CF only on disk."""
    cm = Local(create_node(tmp_path / "CM", "CM", port=8200, database_url=database_url))
    tokens = issue_tokens(cm.settings)
    with TestClient(create_app(cm.settings)) as client:
        yield Api(client, tokens, cm, cf)


def test_admin_manages_peers_through_the_api(api: Api) -> None:
    added = api.add_cf()
    assert added.status_code == 201, added.text
    peer = added.json()
    assert (peer["node_id"], peer["status"], peer["card_serial"]) == ("CF", "active", 1)
    assert peer["fingerprint"] == api.cf.fingerprint
    assert peer["endpoint"] == "http://127.0.0.1:8201"
    assert api.add_cf().status_code == 409  # already admitted
    assert [p["node_id"] for p in api.call("GET", "").json()] == ["CF"]
    assert api.call("GET", "/CF").json()["status"] == "active"
    assert api.from_cf().json()["status"] == "accepted"

    assert api.call("POST", "/CF/suspend").json()["status"] == "suspended"
    assert api.from_cf().json()["error"] == "sender_inactive"
    assert api.call("POST", "/CF/resume").json()["status"] == "active"
    assert api.from_cf().json()["status"] == "accepted"

    assert api.call("DELETE", "/CF").status_code == 204
    assert api.call("GET", "/CF").status_code == 404
    assert api.call("GET", "").json() == []
    assert api.call("POST", "/CF/suspend").status_code == 404
    assert api.from_cf().json()["error"] == "unknown_sender"

    readded = api.add_cf()
    assert readded.status_code == 201, readded.text
    assert readded.json()["status"] == "active"
    assert api.from_cf().json()["status"] == "accepted"

    audit = api.client.get(
        "/api/v1/audit",
        params={"action": "peer.", "target_id": "CF"},
        headers=api.headers("auditor"),
    ).json()
    assert [e["action"] for e in reversed(audit["items"])] == [
        "peer.add",
        "peer.suspend",
        "peer.resume",
        "peer.removed",
        "peer.add",
    ]


def test_default_agreement_shares_up_to_amber_and_licensees_only(api: Api) -> None:
    agreement = api.add_cf().json()["agreement"]
    assert agreement == {
        "alert_categories": list(ALERT_CATEGORIES),
        "max_handling": "AMBER",
        "kyc_record_kinds": ["licensee"],
        "kyc_queries_per_day": None,  # the node's setting
        "disclosure_requests_per_day": None,
    }
    # "All categories" means every category the protocol defines.
    assert set(ALERT_CATEGORIES) == set(
        typing.get_args(protocol.Alert.model_fields["category"].annotation)
    )


def test_agreement_given_at_admission_is_kept(api: Api) -> None:
    wanted = {
        "alert_categories": ["seizure"],
        "max_handling": "GREEN",
        "kyc_record_kinds": ["licensee", "subject"],
        "kyc_queries_per_day": 40,
        "disclosure_requests_per_day": None,
    }
    assert api.add_cf(agreement=wanted).json()["agreement"] == wanted


@pytest.mark.parametrize(
    "change",
    [
        {"max_handling": "PURPLE"},
        {"max_handling": "amber"},
        {"alert_categories": ["poaching"]},
        {"kyc_record_kinds": ["everything"]},
        {"share_all": True},
        {"max_handling": None},
        {"kyc_queries_per_day": 0},
        {"disclosure_requests_per_day": -5},
        {"kyc_queries_per_day": "many"},
        {"kyc_queries_per_day": 10**7},
    ],
    ids=[
        "unknown-handling",
        "lowercase-handling",
        "unknown-category",
        "unknown-kind",
        "unknown-member",
        "null-handling",
        "zero-quota",
        "negative-quota",
        "text-quota",
        "huge-quota",
    ],
)
def test_put_agreement_validates(api: Api, change: dict[str, Any]) -> None:
    default = api.add_cf().json()["agreement"]
    response = api.call("PUT", "/CF/agreement", json={**default, **change})
    assert response.status_code == 422, response.text
    assert api.call("GET", "/CF").json()["agreement"] == default


def test_put_agreement_changes_it(api: Api) -> None:
    api.add_cf()
    wanted = {
        "alert_categories": ["seizure", "smuggling_route"],
        "max_handling": "RED",
        "kyc_record_kinds": [],
        "kyc_queries_per_day": None,
        "disclosure_requests_per_day": 5,
    }
    response = api.call("PUT", "/CF/agreement", json=wanted)
    assert response.status_code == 200, response.text
    assert response.json()["agreement"] == wanted
    assert api.call("GET", "/CF").json()["agreement"] == wanted
    # Members left out take their defaults.
    assert (
        api.call("PUT", "/CF/agreement", json={}).json()["agreement"]
        == SharingAgreement().model_dump()
    )
    assert api.call("PUT", "/GA/agreement", json=wanted).status_code == 404


@pytest.mark.parametrize("mistake", ["card renamed", "wrong fingerprint", "our own card"])
def test_api_refuses_bad_cards(api: Api, mistake: str) -> None:
    card, fingerprint = api.cf.card, api.cf.fingerprint
    if mistake == "card renamed":
        card["name"] = "Taskforce impostor"
    elif mistake == "wrong fingerprint":
        fingerprint = api.cm.fingerprint
    else:
        card, fingerprint = api.cm.card, api.cm.fingerprint
    response = api.call("POST", "", json={"card": card, "fingerprint": fingerprint})
    assert response.status_code == 422, response.text
    error = response.json()["detail"][0]
    assert (
        error["type"]
        == {
            "card renamed": "card_invalid",
            "wrong fingerprint": "fingerprint_mismatch",
            "our own card": "value_error",
        }[mistake]
    )
    assert api.call("GET", "").json() == []


ROUTES = [
    ("GET", ""),
    ("POST", ""),
    ("GET", "/CF"),
    ("PUT", "/CF/agreement"),
    ("POST", "/CF/suspend"),
    ("POST", "/CF/resume"),
    ("DELETE", "/CF"),
]


def test_peer_routes_are_for_admins_only(api: Api) -> None:
    api.add_cf()
    bodies = {
        "POST": {"card": api.cf.card, "fingerprint": api.cf.fingerprint},
        "PUT": SharingAgreement(max_handling="RED").model_dump(),
    }
    for method, path in ROUTES:
        body = bodies.get(method) if path in ("", "/CF/agreement") else None
        for role in ROLES_NOT_ADMIN:
            response = api.call(method, path, role=role, json=body)
            assert response.status_code == 403, (method, path, role, response.text)
        anonymous = api.client.request(method, f"/api/v1/peers{path}", json=body)
        assert anonymous.status_code == 401, (method, path)
        forged = api.client.request(
            method,
            f"/api/v1/peers{path}",
            json=body,
            headers={"Authorization": "Bearer kpnet_not-a-real-token"},
        )
        assert forged.status_code == 401, (method, path)
    peer = api.call("GET", "/CF").json()
    assert peer["status"] == "active" and peer["agreement"]["max_handling"] == "AMBER"


# -- key rotation between running nodes -------------------------------------------------------


@dataclass
class Rotation:
    cm: RunningNode
    cf: RunningNode
    old: NodeIdentity  # CM's keys before the rotation
    new: NodeIdentity
    printed: str  # what `kpnet keys rotate` printed


@pytest.fixture(scope="module")
def rotation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rotation]:
    """CM and CF running and peered; CM stopped, its keys rotated with the CLI, restarted."""
    cm, cf = build_network(tmp_path_factory.mktemp("rotation"), ("CM", "CF"))
    try:
        for process in [n.start(wait=False) for n in (cm, cf)]:
            process.wait_ready()
        old = identity_of(cm)
        cm.stop()
        rotated = kpnet("keys", "rotate", "--data-dir", cm.data_dir)
        assert rotated.returncode == 0, rotated.stderr
        new = identity_of(cm)
        cm.start()
        with cf.api("admin") as admin:
            wait_for(
                lambda: admin.get("/api/v1/peers/CM").json()["card_serial"] == 2,
                timeout=DELIVERY_SECONDS,
            )
        yield Rotation(cm, cf, old, new, rotated.stdout)
    finally:
        cm.stop()
        cf.stop()


def test_rotation_reaches_the_peer_by_card_update(rotation: Rotation) -> None:
    cm, cf, new = rotation.cm, rotation.cf, rotation.new
    assert new.signing_kid != rotation.old.signing_kid
    assert new.encryption_kid != rotation.old.encryption_kid
    assert f"new card serial 2; new fingerprint {new.fingerprint}" in rotation.printed
    with cf.api("admin") as admin:
        peer = admin.get("/api/v1/peers/CM").json()
    assert peer["card_serial"] == 2
    assert peer["fingerprint"] == new.fingerprint != rotation.old.fingerprint
    served = verify_card(json.dumps(get_json(cm, "/federation/v1/card")))
    assert (served.serial, served.signed_by) == (2, new.signing_kid)
    # The new card still lists the old keys, for a grace period.
    assert {rotation.old.signing_kid, rotation.old.encryption_kid} <= {k.kid for k in served.keys}
    with cf.api("auditor") as auditor:
        updates = auditor.get("/api/v1/audit", params={"action": "peer.card_update"}).json()
    assert [(e["target_id"], e["detail"]["serial"]) for e in updates["items"]] == [("CM", 2)]


def get_json(node: RunningNode, path: str) -> Any:
    return httpx.get(f"{node.url}{path}", timeout=10.0).json()


def outbox_envelopes(node: RunningNode, msg_type: str) -> list[dict[str, Any]]:
    runtime = open_node(load_settings(node.data_dir), migrate=False)
    try:
        with runtime.sessions() as session:
            rows = (
                session.execute(
                    select(OutboxMessage)
                    .where(OutboxMessage.msg_type == msg_type)
                    .order_by(OutboxMessage.id)
                )
                .scalars()
                .all()
            )
            return [parse_json(row.envelope) for row in rows]
    finally:
        runtime.close()


def test_alert_signed_with_the_new_key_is_accepted(rotation: Rotation) -> None:
    cm, cf, new = rotation.cm, rotation.cf, rotation.new
    with cm.api("analyst") as api:
        created = api.post("/api/v1/alerts", json=alert_json("Après rotation des clés"))
        assert created.status_code == 201, created.text
    alert_id = created.json()["alert_uuid"]
    wait_for(
        lambda: alert_id in {a["alert_uuid"] for a in inbound_alerts(cf)}, timeout=DELIVERY_SECONDS
    )
    sent = outbox_envelopes(cm, "alert")
    assert [(e["sender_sig_kid"], e["sender_enc_kid"]) for e in sent] == [
        (new.signing_kid, new.encryption_kid)
    ]
    # And one built here with the new keys.
    direct = post_envelopes(cf, seal(new, recipient_of(cf), alert_payload(), now=now()))
    assert (direct.status_code, direct.json().get("status")) == (200, "accepted"), direct.text


def test_peer_seals_to_the_new_encryption_key(rotation: Rotation) -> None:
    cm, cf = rotation.cm, rotation.cf
    with cf.api("analyst") as api:
        created = api.post("/api/v1/alerts", json=alert_json("Retour vers le Cameroun"))
        assert created.status_code == 201, created.text
    alert_id = created.json()["alert_uuid"]
    wait_for(
        lambda: alert_id in {a["alert_uuid"] for a in inbound_alerts(cm)}, timeout=DELIVERY_SECONDS
    )
    sent = outbox_envelopes(cf, "alert")
    assert [e["recipient_enc_kid"] for e in sent] == [rotation.new.encryption_kid]


def test_old_key_is_still_accepted_during_the_grace_period(rotation: Rotation) -> None:
    raw = seal(rotation.old, recipient_of(rotation.cf), alert_payload(), now=now())
    answer = post_envelopes(rotation.cf, raw)
    assert (answer.status_code, answer.json().get("status")) == (200, "accepted"), answer.text


def card_update_answer(
    rotation: Rotation, card: protocol.NodeCard, signer: NodeIdentity | None = None
) -> Any:
    raw = seal(signer or rotation.new, recipient_of(rotation.cf), CardUpdate(card=card), now=now())
    return post_envelopes(rotation.cf, raw)


def cf_view_of_cm(rotation: Rotation) -> tuple[int, str]:
    with rotation.cf.api("admin") as admin:
        peer = admin.get("/api/v1/peers/CM").json()
    return peer["card_serial"], peer["fingerprint"]


@pytest.mark.parametrize("serial", [1, 2])
def test_card_update_with_a_serial_not_newer_is_refused(rotation: Rotation, serial: int) -> None:
    card = make_card(
        rotation.new,
        name="Cellule nationale CM",
        endpoints=[rotation.cm.url],
        now=now(),
        serial=serial,
    )
    answer = card_update_answer(rotation, card)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "not_permitted"
    assert cf_view_of_cm(rotation) == (2, rotation.new.fingerprint)
    with rotation.cf.api("auditor") as auditor:
        last = auditor.get(
            "/api/v1/audit", params={"action": "message.rejected", "limit": 1}
        ).json()["items"][0]
    assert last["detail"]["code"] == "not_permitted"
    assert last["target_id"] == answer.json()["id"]


@pytest.mark.parametrize("whose", ["CF's own card", "an unknown node's card"])
def test_card_update_carrying_another_nodes_card_is_refused(rotation: Rotation, whose: str) -> None:
    if whose == "CF's own card":
        card = card_of(rotation.cf)
    else:
        card = make_card(
            NodeIdentity.generate("GA"),
            name="Intrus",
            endpoints=["http://10.0.0.9"],
            now=now(),
            serial=7,
        )
    answer = card_update_answer(rotation, card)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"] == "schema_invalid"
    assert cf_view_of_cm(rotation) == (2, rotation.new.fingerprint)


def test_retired_key_cannot_replace_the_card(rotation: Rotation) -> None:
    """The old key still verifies messages during the grace period, but whoever holds it
    must not be able to hand CF a new card for CM (keys and endpoint of their choosing)."""
    thief = NodeIdentity.generate("CM")
    card = make_card(
        thief, name="Cellule nationale CM", endpoints=["http://10.0.0.9"], now=now(), serial=99
    )
    answer = card_update_answer(rotation, card, signer=rotation.old)
    assert answer.status_code == 403, answer.text
    assert answer.json()["error"] == "not_permitted"
    assert cf_view_of_cm(rotation) == (2, rotation.new.fingerprint)
