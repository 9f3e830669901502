"""Request forgery through peers' endpoints, tried as an attacker would.

A peer's card (given to the admin, or sent later in a ``card.update``) names the URL
this node delivers to. These tests hand the node cards naming the cloud metadata
service, its own database port, loopback services and URLs with credentials, through
the API and the CLI; a name that resolves to loopback at connect time; and a peer's
``card.update`` that moves its endpoint (held until an admin approves it, while its new
keys take effect at once). Each runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
import socket
import socketserver
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

import protocol
from node.app import create_app
from node.config import Settings, parse_networks
from node.federation.policy_transport import EndpointBlocked, PolicyTransport
from node.keystore import load_identity
from node.runtime import open_node
from node.services.actors import Actor
from node.services.endpoint_policy import EndpointPolicy
from node.services.peers import PeerRegistry
from protocol import CardUpdate, NodeIdentity, make_card, seal, verify_card
from tests.conftest import create_node, issue_tokens, run_kpnet
from tests.federation.conftest import alert_json, alert_payload, wait_for

ATTACKS = [
    ("https://169.254.169.254/latest/meta-data", "endpoint_address_refused"),
    ("https://127.0.0.1:5432", "endpoint_address_refused"),
    ("https://[::1]:6379", "endpoint_address_refused"),
    ("https://user:pw@10.0.0.1", "endpoint_credentials"),
    ("https://10.0.0.1:8100", "endpoint_address_refused"),
    ("https://[::ffff:127.0.0.1]:8100", "endpoint_address_refused"),
    ("https://localhost:8100", "endpoint_address_refused"),
    ("https://cf.example.org/?to=10.0.0.1", "endpoint_query"),
]
STRICT = {"peer_allow_http": False, "peer_allowed_networks": ""}
HTTP_PUBLIC_ONLY = {"peer_allow_http": True, "peer_allowed_networks": ""}


def now() -> int:
    return int(time.time())


def card_naming(endpoint: str, identity: NodeIdentity | None = None) -> dict[str, Any]:
    card = make_card(
        identity or NodeIdentity.generate("CF"), name="CF", endpoints=[endpoint], now=now()
    )
    return dict(card.to_json())


def card_fingerprint(card: dict[str, Any]) -> str:
    return verify_card(json.dumps(card)).fingerprint


@dataclass
class Node:
    client: TestClient
    settings: Settings
    tokens: dict[str, str]

    def call(self, method: str, path: str, role: str = "admin", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return self.client.request(method, f"/api/v1{path}", headers=headers, **kwargs)

    def audit(self, action: str) -> list[dict[str, Any]]:
        found = self.call("GET", "/audit", role="auditor", params={"action": action}).json()
        return list(reversed(found["items"]))


@contextmanager
def serve(settings: Settings, **changes: Any) -> Iterator[Node]:
    changed = settings.model_copy(update=changes)
    tokens = issue_tokens(changed)
    with TestClient(create_app(changed)) as client:
        yield Node(client, changed, tokens)


@pytest.fixture
def strict_cm(tmp_path: Path, database_url: str | None) -> Iterator[Node]:
    """CM in process with the default policy: https to public addresses only."""
    with serve(create_node(tmp_path / "CM", "CM", database_url=database_url), **STRICT) as cm:
        yield cm


# -- admission: the API and the CLI ----------------------------------------------------------


def test_api_refuses_peers_whose_endpoint_is_not_public_https(strict_cm: Node) -> None:
    for endpoint, code in [*ATTACKS, ("http://cf.example.org", "endpoint_not_https")]:
        card = card_naming(endpoint)
        answer = strict_cm.call(
            "POST", "/peers", json={"card": card, "fingerprint": card_fingerprint(card)}
        )
        assert answer.status_code == 422, (endpoint, answer.text)
        (detail,) = answer.json()["detail"]
        assert (detail["loc"], detail["type"]) == (["endpoint"], code), endpoint
    assert strict_cm.call("GET", "/peers").json() == []
    assert strict_cm.audit("peer.add") == []

    card = card_naming("https://kpnet.cf.example.org")
    added = strict_cm.call(
        "POST", "/peers", json={"card": card, "fingerprint": card_fingerprint(card)}
    )
    assert added.status_code == 201, added.text
    assert added.json()["endpoint"] == "https://kpnet.cf.example.org"


def test_api_accepts_plain_http_only_where_allowed(
    tmp_path: Path, database_url: str | None
) -> None:
    settings = create_node(tmp_path / "CM", "CM", database_url=database_url)
    with serve(settings, **HTTP_PUBLIC_ONLY) as cm:
        card = card_naming("http://cf.example.org:8100")
        added = cm.call(
            "POST", "/peers", json={"card": card, "fingerprint": card_fingerprint(card)}
        )
        assert added.status_code == 201, added.text
        # Allowing http lets no address range through.
        card = card_naming("http://169.254.169.254", NodeIdentity.generate("CD"))
        refused = cm.call(
            "POST", "/peers", json={"card": card, "fingerprint": card_fingerprint(card)}
        )
        assert refused.json()["detail"][0]["type"] == "endpoint_address_refused", refused.text


def kpnet(*args: str | Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run_kpnet(*args, env=env)


STRICT_ENV = {"KPNET_PEER_ALLOW_HTTP": "false", "KPNET_PEER_ALLOWED_NETWORKS": ""}


def test_cli_refuses_peers_whose_endpoint_is_not_public_https(
    tmp_path: Path, database_url: str | None
) -> None:
    cm = create_node(tmp_path / "CM", "CM", database_url=database_url)
    card_file = tmp_path / "card.json"
    cases = [ATTACKS[0], ATTACKS[2], ATTACKS[3], ("http://cf.example.org", "endpoint_not_https")]
    for endpoint, code in cases:
        card = card_naming(endpoint)
        card_file.write_text(json.dumps(card))
        result = kpnet(
            "peer",
            "add",
            card_file,
            "--fingerprint",
            card_fingerprint(card),
            "--data-dir",
            cm.data_dir,
            **STRICT_ENV,
        )
        assert result.returncode == 1, (endpoint, result.stdout)
        (line,) = result.stderr.strip().splitlines()
        assert line.startswith("error: endpoint ") and f"({code})" in line, line
    listed = kpnet("peer", "list", "--data-dir", cm.data_dir, **STRICT_ENV)
    assert listed.returncode == 0 and listed.stdout == "", listed

    card = card_naming("https://kpnet.cf.example.org")
    card_file.write_text(json.dumps(card))
    result = kpnet(
        "peer",
        "add",
        card_file,
        "--fingerprint",
        card_fingerprint(card),
        "--data-dir",
        cm.data_dir,
        **STRICT_ENV,
    )
    assert result.returncode == 0, result.stderr
    assert "admitted at https://kpnet.cf.example.org" in result.stdout


# -- connect time: a name that resolves to loopback ------------------------------------------

REBINDING_NAME = "cf-rebinding.example.org"


class Listener(socketserver.ThreadingTCPServer):
    """A loopback service that must not be reached: records each request's Host."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Recorder)
        self.hosts: list[str] = []

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Recorder(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        host = ""
        for raw in iter(self.rfile.readline, b"\r\n"):
            if not raw:
                break
            name, _, value = raw.decode("latin-1").partition(":")
            if name.lower() == "host":
                host = value.strip()
        assert isinstance(self.server, Listener)
        self.server.hosts.append(host)
        self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n")


@pytest.fixture
def listener() -> Iterator[Listener]:
    server = Listener()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def rebinding_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """``REBINDING_NAME`` resolves to 127.0.0.1 (as an attacker's DNS would answer)."""
    original = asyncio.base_events.BaseEventLoop.getaddrinfo

    async def getaddrinfo(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == REBINDING_NAME:
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", int(port)))]
        return await original(self, host, port, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)


def test_name_resolving_to_loopback_is_refused_at_connect_time(
    tmp_path: Path, database_url: str | None, listener: Listener, rebinding_dns: None
) -> None:
    settings = create_node(tmp_path / "CM", "CM", database_url=database_url)
    endpoint = f"http://{REBINDING_NAME}:{listener.port}"
    runtime = open_node(settings, migrate=False)
    try:
        with runtime.sessions() as session:
            card = card_naming(endpoint)
            PeerRegistry(
                session,
                Actor("setup", "admin"),
                runtime.now(),
                own_node_id="CM",
                endpoints=EndpointPolicy(allow_http=True),  # a name passes on admission
            ).add(json.dumps(card), fingerprint=card_fingerprint(card))
            session.commit()
    finally:
        runtime.close()

    with serve(settings, **HTTP_PUBLIC_ONLY) as cm:
        sent = cm.call("POST", "/alerts", role="analyst", json=alert_json("Vers CF"))
        assert sent.status_code == 201, sent.text
        error = wait_for(lambda: cm.call("GET", "/peers/CF").json()["last_error"])
        assert error.startswith("endpoint refused: endpoint_address_refused"), error
        assert "127.0.0.1 is loopback" in error
    assert listener.hosts == []

    # Where the operator allows loopback, the connection goes to the address that was
    # checked, still naming the host it was asked for.
    with serve(settings, peer_allow_http=True, peer_allowed_networks="127.0.0.0/8") as cm:
        wait_for(lambda: listener.hosts, timeout=30)
        wait_for(lambda: cm.call("GET", "/peers/CF").json()["last_error"] == "HTTP 503")
    assert listener.hosts[0] == f"{REBINDING_NAME}:{listener.port}"


class TlsListener(socketserver.ThreadingTCPServer):
    """Reads a TLS ClientHello and records the server name it asks for (SNI), then
    hangs up: no certificate is needed to see where the client thinks it connects."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _HelloReader)
        self.names: list[str] = []


class _HelloReader(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        hello = b""
        while len(hello) < 5 or len(hello) < 5 + int.from_bytes(hello[3:5], "big"):
            chunk = self.request.recv(4096)
            if not chunk:
                return
            hello += chunk
        assert isinstance(self.server, TlsListener)
        self.server.names.append(_server_name(hello))


def _server_name(record: bytes) -> str:
    """The host name of a ClientHello's server_name extension ("" if it has none)."""
    at = 5 + 4 + 2 + 32  # record and handshake headers, version, random
    at += 1 + record[at]  # session id
    at += 2 + int.from_bytes(record[at : at + 2], "big")  # cipher suites
    at += 1 + record[at]  # compression methods
    end = at + 2 + int.from_bytes(record[at : at + 2], "big")
    at += 2
    while at < end:
        kind, size = (
            int.from_bytes(record[at : at + 2], "big"),
            int.from_bytes(record[at + 2 : at + 4], "big"),
        )
        if kind == 0:  # server_name: list length, name type, name length, name
            length = int.from_bytes(record[at + 7 : at + 9], "big")
            return record[at + 9 : at + 9 + length].decode("ascii")
        at += 4 + size
    return ""


def test_tls_goes_to_the_checked_address_under_the_peers_name(rebinding_dns: None) -> None:
    server = TlsListener()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"https://{REBINDING_NAME}:{server.server_address[1]}/livez"

    async def get(policy: EndpointPolicy) -> None:
        async with httpx.AsyncClient(transport=PolicyTransport(policy)) as client:
            await client.get(url, timeout=10)

    try:
        with pytest.raises(EndpointBlocked) as blocked:
            asyncio.run(get(EndpointPolicy()))
        assert blocked.value.refusal.params["range"] == "loopback"
        assert server.names == []
        loopback = EndpointPolicy(allowed_networks=parse_networks("127.0.0.0/8"))
        with pytest.raises(httpx.ConnectError):  # the listener hangs up after the hello
            asyncio.run(get(loopback))
        assert server.names == [REBINDING_NAME]
    finally:
        server.shutdown()
        server.server_close()


# -- a peer's card.update moving its endpoint ------------------------------------------------


@dataclass
class Peering:
    cf: Node  # in process: receives CM's card.update
    cf_settings: Settings
    cm_identity: NodeIdentity  # CM's current keys and card
    cm_card: protocol.NodeCard

    def card_update(self, endpoint: str) -> tuple[NodeIdentity, Any]:
        """CM's next card, with new keys and ``endpoint``, sealed with CM's current keys
        (as ``kpnet keys rotate`` seals it); from now on CM's keys are the new ones."""
        new = NodeIdentity.generate("CM")
        card = make_card(
            new,
            name=self.cm_card.name,
            endpoints=[endpoint],
            now=now(),
            serial=self.cm_card.serial + 1,
            extra_keys=self.cm_card.public_keys(),
        )
        raw = seal(self.cm_identity, self.recipient(), CardUpdate(card=card), now=now())
        self.cm_identity, self.cm_card = new, card
        return new, self.post(raw)

    def recipient(self) -> protocol.Recipient:
        cf_card = verify_card(self.cf_settings.card_path.read_bytes())
        return protocol.Recipient("CF", cf_card.current_key("enc", now()))

    def post(self, raw: bytes) -> Any:
        return self.cf.client.post(
            "/federation/v1/messages", content=raw, headers={"content-type": "application/json"}
        ).json()

    def peer(self) -> dict[str, Any]:
        return dict(self.cf.call("GET", "/peers/CM").json())


@pytest.fixture
def peering(tmp_path: Path, database_url: str | None) -> Iterator[Peering]:
    """CF (in process, SQLite or PostgreSQL) has admitted CM (on disk, at loopback)."""
    cm = create_node(tmp_path / "CM", "CM", port=8300)
    cf = create_node(tmp_path / "CF", "CF", port=8301, database_url=database_url)
    identity = load_identity(cm.keys_dir, "CM")
    with serve(cf) as node:
        card = json.loads(cm.card_path.read_bytes())
        added = node.call(
            "POST", "/peers", json={"card": card, "fingerprint": identity.fingerprint}
        )
        assert added.status_code == 201, added.text
        yield Peering(node, cf, identity, verify_card(cm.card_path.read_bytes()))


def test_card_update_holds_a_new_endpoint_and_rotates_keys_at_once(peering: Peering) -> None:
    moved = "http://127.0.0.1:8399"
    new, answer = peering.card_update(moved)
    assert answer["status"] == "accepted", answer
    peer = peering.peer()
    # The keys took effect at once ...
    assert (peer["card_serial"], peer["fingerprint"]) == (2, new.fingerprint)
    signed_anew = seal(new, peering.recipient(), alert_payload(), now=now())
    assert peering.post(signed_anew)["status"] == "accepted"
    # ... the endpoint did not.
    assert peer["endpoint"] == "http://127.0.0.1:8300"
    assert peer["pending_endpoint"] == moved and peer["pending_endpoint_at"]
    (pending,) = peering.cf.audit("peer.endpoint.pending")
    assert pending["actor"].startswith("CM") and pending["detail"] == {
        "endpoint": moved,
        "current": "http://127.0.0.1:8300",
    }
    # Only an admin approves it.
    for role in ("analyst", "officer", "auditor"):
        assert peering.cf.call("POST", "/peers/CM/endpoint/approve", role=role).status_code == 403
    # A decision names what the admin reviewed: a later change is not approved unseen.
    stale = peering.cf.call(
        "POST", "/peers/CM/endpoint/approve", json={"endpoint": "http://127.0.0.1:8396"}
    )
    assert stale.status_code == 409, stale.text
    assert peering.peer()["pending_endpoint"] == moved
    approved = peering.cf.call("POST", "/peers/CM/endpoint/approve", json={"endpoint": moved})
    assert approved.status_code == 200, approved.text
    assert (approved.json()["endpoint"], approved.json()["pending_endpoint"]) == (moved, None)
    (entry,) = peering.cf.audit("peer.endpoint.approve")
    assert entry["detail"] == {"endpoint": moved, "previous": "http://127.0.0.1:8300"}
    assert peering.cf.call("POST", "/peers/CM/endpoint/approve").status_code == 409


def test_approval_checks_the_endpoint_policy_again(peering: Peering) -> None:
    _, answer = peering.card_update("http://169.254.169.254/latest")
    assert answer["status"] == "accepted", answer
    refused = peering.cf.call("POST", "/peers/CM/endpoint/approve")
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["type"] == "endpoint_address_refused"
    peer = peering.peer()
    assert (peer["endpoint"], peer["pending_endpoint"]) == (
        "http://127.0.0.1:8300",
        "http://169.254.169.254/latest",
    )
    rejected = peering.cf.call("POST", "/peers/CM/endpoint/reject")
    assert rejected.status_code == 200, rejected.text
    assert (rejected.json()["endpoint"], rejected.json()["pending_endpoint"]) == (
        "http://127.0.0.1:8300",
        None,
    )
    assert [e["detail"]["endpoint"] for e in peering.cf.audit("peer.endpoint.reject")] == [
        "http://169.254.169.254/latest"
    ]


def test_endpoint_change_approved_or_rejected_with_the_cli(peering: Peering) -> None:
    data_dir = peering.cf_settings.data_dir
    _, answer = peering.card_update("http://127.0.0.1:8398")
    assert answer["status"] == "accepted", answer
    shown = kpnet("peer", "endpoint", "show", "CM", "--data-dir", data_dir)
    assert "pending\thttp://127.0.0.1:8398" in shown.stdout, shown
    rejected = kpnet("peer", "endpoint", "reject", "CM", "--data-dir", data_dir)
    assert rejected.returncode == 0, rejected.stderr
    assert peering.peer()["endpoint"] == "http://127.0.0.1:8300"
    assert peering.peer()["pending_endpoint"] is None

    _, answer = peering.card_update("http://127.0.0.1:8397")
    assert answer["status"] == "accepted", answer
    stale = kpnet(
        "peer",
        "endpoint",
        "approve",
        "CM",
        "--endpoint",
        "http://127.0.0.1:8398",
        "--data-dir",
        data_dir,
    )
    assert stale.returncode == 1 and "another endpoint" in stale.stderr, stale
    approved = kpnet(
        "peer",
        "endpoint",
        "approve",
        "CM",
        "--endpoint",
        "http://127.0.0.1:8397",
        "--data-dir",
        data_dir,
    )
    assert approved.returncode == 0, approved.stderr
    assert "http://127.0.0.1:8397" in approved.stdout
    assert peering.peer()["endpoint"] == "http://127.0.0.1:8397"
    again = kpnet("peer", "endpoint", "approve", "CM", "--data-dir", data_dir)
    assert again.returncode == 1 and "no endpoint change" in again.stderr, again
    actions = [e["action"] for e in peering.cf.audit("peer.endpoint.")]
    assert actions == [
        "peer.endpoint.pending",
        "peer.endpoint.reject",
        "peer.endpoint.pending",
        "peer.endpoint.approve",
    ]
