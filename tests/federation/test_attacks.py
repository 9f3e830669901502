"""Attacks on a running node's federation endpoint.

Real ``kpnet serve`` processes (CM, CF, CD, peered with each other; GA, a node none of
them ever admitted, lends only its keys and card). Envelopes are built in the test
process with the nodes' own private keys, by ``protocol.seal`` or by hand (NaCl box +
signature over the canonical JSON), and posted with httpx. Every refusal must carry its
own error code, be counted in ``kpnet_federation_messages_rejected_total{code=...}``,
and store nothing. A refusal of a message whose signature verified is audited
(``message.rejected`` with that code); one made before (anyone can cause it) is not
audited one by one but counted in ``kpnet_federation_refused_unauthenticated_total``
for the aggregated entry (test_junk_intake.py). (The rate limits are tested in-process
on a set clock, in test_rate_limit.py.)
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from nacl.public import Box
from nacl.public import PublicKey as BoxPublicKey
from prometheus_client.parser import text_string_to_metric_families

import protocol
from protocol import NodeIdentity, Recipient, b64encode, canonical_json, parse_json, seal
from tests.federation.conftest import (
    RunningNode,
    alert_payload,
    build_network,
    card_of,
    create_node,
    free_port,
    identity_of,
    inbound_alerts,
    issue_tokens,
    metric_value,
    post_envelopes,
    recipient_of,
)

MAX_BYTES = 262144
DAY = 86400
REJECTED = "kpnet_federation_messages_rejected_total"
UNAUTHENTICATED = "kpnet_federation_refused_unauthenticated_total"
# Codes of the checks before the signature (docs/protocol.md §6.1 steps 1-12).
BEFORE_SIGNATURE = {
    "too_large",
    "malformed",
    "unsupported_version",
    "unknown_sender",
    "sender_inactive",
    "unknown_key",
    "key_expired",
    "bad_signature",
}


@dataclass
class Net:
    cm: RunningNode
    cf: RunningNode
    cd: RunningNode
    ga: RunningNode  # a node with a valid card that no other node admitted (not running)

    def keys(self, node: RunningNode) -> NodeIdentity:
        return identity_of(node)


@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    base = tmp_path_factory.mktemp("attacks")
    cm, cf, cd = build_network(base, ("CM", "CF", "CD"))
    port = free_port()
    ga_settings = create_node(base / "GA", "GA", port=port)
    ga = RunningNode("GA", ga_settings.data_dir, port, issue_tokens(ga_settings))
    nodes = [cm, cf, cd]
    try:
        # Dozens of refusals in quick succession from one address: not what is tested here.
        lenient = {"KPNET_REFUSAL_BURST_PER_ADDRESS": "1000"}
        started = [n.start(wait=False, extra_env=lenient) for n in nodes]
        for process in started:
            process.wait_ready()
        yield Net(cm, cf, cd, ga)
    finally:
        for node in nodes:
            node.stop()


# -- evidence: audit log, metrics, inbound alerts -----------------------------------------


@dataclass(frozen=True)
class Evidence:
    audit_total: int
    rejected: dict[str, float]
    unauthenticated: dict[str, float]
    inbound: tuple[str, ...]  # alert uuids


def rejections_page(node: RunningNode, limit: int = 1) -> dict[str, Any]:
    with node.api("auditor") as api:
        page = api.get("/api/v1/audit", params={"action": "message.rejected", "limit": limit})
    assert page.status_code == 200, page.text
    return page.json()


def rejected_counts(
    node: RunningNode, metric: str = REJECTED, label: str = "code"
) -> dict[str, float]:
    """``kpnet_federation_messages_rejected_total`` per error code (any peer, any type),
    or another counter of refusals per ``label``."""
    counts = dict.fromkeys([*protocol.ERROR_CODES, "not_permitted"], 0.0)
    text = httpx.get(f"{node.url}/metrics", timeout=10.0).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == metric:
                code = sample.labels[label]
                counts[code] = counts.get(code, 0.0) + sample.value
    return counts


def evidence(node: RunningNode) -> Evidence:
    return Evidence(
        rejections_page(node)["total"],
        rejected_counts(node),
        rejected_counts(node, UNAUTHENTICATED, "reason"),
        tuple(sorted(str(a["alert_uuid"]) for a in inbound_alerts(node))),
    )


def assert_audited_or_tallied(node: RunningNode, before: Evidence, code: str) -> dict[str, Any]:
    """A refusal after the signature verified is one more ``message.rejected`` entry
    (returned); one before it adds no entry and counts one unauthenticated refusal."""
    page = rejections_page(node)
    after = evidence(node)
    if code in BEFORE_SIGNATURE:
        assert page["total"] == before.audit_total, "a stranger's junk was audited"
        assert after.unauthenticated[code] == before.unauthenticated[code] + 1
        return {}
    assert page["total"] == before.audit_total + 1
    assert after.unauthenticated == before.unauthenticated
    entry: dict[str, Any] = page["items"][0]
    assert entry["detail"]["code"] == code
    assert entry["actor"].startswith("claimed:")
    return entry


def assert_refused(
    node: RunningNode,
    before: Evidence,
    response: Any,
    code: str,
    status: int,
    message_id: str | None = None,
) -> None:
    """One envelope refused with ``code``: answered, audited, counted, nothing stored."""
    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["error"] == code, answer
    assert "receipt" not in answer and "status" not in answer
    assert answer["results"] == [{k: answer[k] for k in ("id", "error", "detail")}]
    if message_id is not None:
        assert answer["id"] == message_id
    entry = assert_audited_or_tallied(node, before, code)
    if message_id is not None and entry:
        assert entry["target_id"] == message_id
    after = evidence(node)
    assert after.rejected[code] == before.rejected[code] + 1
    assert {c: n for c, n in after.rejected.items() if c != code} == {
        c: n for c, n in before.rejected.items() if c != code
    }
    assert after.inbound == before.inbound, "a refused message created an inbound alert"


# -- building envelopes --------------------------------------------------------------------


def now() -> int:
    return int(time.time())


def resign(identity: NodeIdentity, doc: dict[str, Any]) -> bytes:
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    signature = b64encode(identity.sign(canonical_json(unsigned)))
    return canonical_json({**unsigned, "signature": signature})


def hand_sealed(
    sender: NodeIdentity,
    to: Recipient,
    inner: dict[str, Any],
    *,
    header: dict[str, Any] | None = None,
    box_key: Any = None,
) -> bytes:
    """An envelope built by hand: ``inner`` (any JSON) boxed from the sender's X25519 key
    (or ``box_key``) to the recipient's, the header signed with the sender's key."""
    nonce = os.urandom(24)
    plaintext = json.dumps(inner, ensure_ascii=False).encode("utf-8")
    box = Box(box_key or sender.encryption_key, BoxPublicKey(to.encryption_key.key))
    ts = now()
    ciphertext = box.encrypt(plaintext, nonce).ciphertext
    doc = {
        "version": 1,
        "id": inner.get("id", str(uuid.uuid4())),
        "type": inner.get("type", "alert"),
        "sender": sender.node_id,
        "recipient": to.node_id,
        "sender_sig_kid": sender.signing_kid,
        "sender_enc_kid": sender.encryption_kid,
        "recipient_enc_kid": to.encryption_key.kid,
        "created_at": ts,
        "expires_at": ts + DAY,
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(ciphertext),
        **(header or {}),
    }
    return resign(sender, doc)


def inner_alert(sender: str, recipient: str, **payload_changes: Any) -> dict[str, Any]:
    payload = alert_payload().model_dump(mode="json", exclude_none=True)
    payload.update(payload_changes)
    return {
        "id": str(uuid.uuid4()),
        "type": "alert",
        "sender": sender,
        "recipient": recipient,
        "payload": payload,
    }


def sealed_alert(
    net: Net, sender: RunningNode, to: RunningNode, **kwargs: Any
) -> tuple[bytes, str]:
    """A genuine alert envelope; returns the wire bytes and the alert id."""
    payload = alert_payload(**kwargs.pop("fields", {}))
    raw = seal(
        net.keys(sender),
        kwargs.pop("recipient", None) or recipient_of(to),
        payload,
        now=kwargs.pop("now", now()),
        **kwargs,
    )
    return raw, payload.alert_id


def message_id(raw: bytes) -> str:
    return str(parse_json(raw)["id"])


# -- signature, sender, recipient -----------------------------------------------------------


@pytest.mark.parametrize("forgery", ["signed with another key", "header changed after signing"])
def test_forged_signature_is_refused(net: Net, forgery: str) -> None:
    raw, _ = sealed_alert(net, net.cm, net.cd)
    doc = parse_json(raw)
    if forgery == "signed with another key":
        # An attacker's own key, claiming CM's key id.
        forged = resign(NodeIdentity.generate("CM"), doc)
    else:
        forged = canonical_json({**doc, "expires_at": doc["expires_at"] - 1})
    before = evidence(net.cd)
    response = post_envelopes(net.cd, forged)
    assert_refused(net.cd, before, response, "bad_signature", 403, doc["id"])


def test_unknown_sender_is_refused(net: Net) -> None:
    # GA is a real node with a valid card, but CD never admitted it.
    raw, _ = sealed_alert(net, net.ga, net.cd)
    before = evidence(net.cd)
    response = post_envelopes(net.cd, raw)
    assert_refused(net.cd, before, response, "unknown_sender", 403, message_id(raw))


def test_suspended_peer_is_refused_until_resumed(net: Net) -> None:
    raw, alert_id = sealed_alert(net, net.cf, net.cd)
    with net.cd.api("admin") as admin:
        suspended = admin.post("/api/v1/peers/CF/suspend")
        assert suspended.status_code == 200, suspended.text
        assert suspended.json()["status"] == "suspended"
        try:
            before = evidence(net.cd)
            assert_refused(
                net.cd, before, post_envelopes(net.cd, raw), "sender_inactive", 403, message_id(raw)
            )
        finally:
            assert admin.post("/api/v1/peers/CF/resume").json()["status"] == "active"
    # The refusal left no trace in de-duplication: once resumed, the same envelope is new.
    accepted = post_envelopes(net.cd, raw)
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["status"] == "accepted"
    assert alert_id in {a["alert_uuid"] for a in inbound_alerts(net.cd)}


@pytest.mark.parametrize("case", ["addressed to CD", "to CF but sealed to CD's key"])
def test_message_for_another_node_is_refused(net: Net, case: str) -> None:
    if case == "addressed to CD":
        raw, _ = sealed_alert(net, net.cm, net.cd)  # CM seals for CD, an attacker posts it to CF
    else:
        raw, _ = sealed_alert(
            net, net.cm, net.cf, recipient=Recipient("CF", recipient_of(net.cd).encryption_key)
        )
    before = evidence(net.cf)
    response = post_envelopes(net.cf, raw)
    assert_refused(net.cf, before, response, "wrong_recipient", 403, message_id(raw))


@pytest.mark.parametrize("claimed_kid", ["impostor's own key id", "victim's key id"])
def test_peer_impersonating_another_peer_is_refused(net: Net, claimed_kid: str) -> None:
    """CD, a genuine peer of CM, signs with its own key but claims to be CF."""
    cd_keys, cf_card = net.keys(net.cd), card_of(net.cf)
    inner = inner_alert("CF", "CM")
    header: dict[str, Any] = {"sender": "CF"}
    expected = "unknown_key"
    if claimed_kid == "victim's key id":
        header |= {
            "sender_sig_kid": cf_card.current_key("sig", now()).kid,
            "sender_enc_kid": cf_card.current_key("enc", now()).kid,
        }
        expected = "bad_signature"
    raw = hand_sealed(cd_keys, recipient_of(net.cm), inner, header=header)
    before = evidence(net.cm)
    assert_refused(net.cm, before, post_envelopes(net.cm, raw), expected, 403, inner["id"])
    assert inner["payload"]["alert_id"] not in evidence(net.cm).inbound
    # Nothing was recorded under CF's name: CF's own message with that id is still new.
    genuine = seal(
        net.keys(net.cf), recipient_of(net.cm), alert_payload(), now=now(), message_id=inner["id"]
    )
    answer = post_envelopes(net.cm, genuine)
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "accepted"


# -- time, replay, size, form ------------------------------------------------------------------


def test_expired_message_is_refused(net: Net) -> None:
    # Sealed eight days ago with the default seven-day lifetime.
    raw, _ = sealed_alert(net, net.cm, net.cd, now=now() - 8 * DAY)
    before = evidence(net.cd)
    assert_refused(net.cd, before, post_envelopes(net.cd, raw), "expired", 400, message_id(raw))


def test_replayed_message_is_processed_once_with_the_same_receipt(net: Net) -> None:
    raw, alert_id = sealed_alert(net, net.cm, net.cd)
    msg_id = message_id(raw)
    duplicates_before = metric_value(net.cd, "kpnet_federation_messages_duplicate_total", peer="CM")
    first = post_envelopes(net.cd, raw)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "accepted"
    receipt = first.json()["receipt"]

    again = post_envelopes(net.cd, raw)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "duplicate"
    assert again.json()["receipt"] == receipt
    # The same envelope with other bytes (member order, whitespace) is the same message.
    reordered = json.dumps(dict(reversed(parse_json(raw).items())), indent=2).encode()
    assert reordered != raw
    third = post_envelopes(net.cd, reordered)
    assert (third.status_code, third.json()["status"]) == (200, "duplicate")
    assert third.json()["receipt"] == receipt

    assert [a["alert_uuid"] for a in inbound_alerts(net.cd)].count(alert_id) == 1
    with net.cd.api("auditor") as api:
        received = api.get(
            "/api/v1/audit", params={"action": "message.received", "target_id": msg_id}
        ).json()
    assert received["total"] == 1
    assert (
        metric_value(net.cd, "kpnet_federation_messages_duplicate_total", peer="CM")
        == duplicates_before + 2
    )
    # The receipt is CD's signed statement that it got this very message.
    opened = protocol.open_envelope(
        receipt.encode(),
        identity=net.keys(net.cm),
        now=now(),
        directory=protocol.StaticDirectory({"CD": card_of(net.cd).public_keys()}),
    )
    assert opened.sender == "CD" and opened.header.in_reply_to == msg_id
    assert isinstance(opened.payload, protocol.Receipt)
    assert (opened.payload.message_id, opened.payload.status) == (msg_id, "delivered")


def big_alert_envelope(net: Net) -> bytes:
    """A genuine, schema-valid alert from CM whose envelope exceeds the size limit."""
    party = {"kind": "person", "names": ["N" * 200] * 20, "aliases": ["A" * 200] * 20}
    raw, _ = sealed_alert(net, net.cm, net.cd, fields={"subjects": [party] * 50})
    assert len(raw) > MAX_BYTES
    return raw


@pytest.mark.parametrize("transfer", ["content-length", "chunked"])
def test_oversize_message_is_refused(net: Net, transfer: str) -> None:
    raw = big_alert_envelope(net)
    body: Any = raw
    if transfer == "chunked":
        body = iter([raw[i : i + 16384] for i in range(0, len(raw), 16384)])
    before = evidence(net.cd)
    response = post_envelopes(net.cd, body)
    if transfer == "chunked":
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
    else:
        assert response.request.headers["content-length"] == str(len(raw))
    assert_refused(net.cd, before, response, "too_large", 413)


@pytest.mark.parametrize(
    "body",
    [
        b'{"version": 1, "id": ',
        b"not json",
        b'{"version":1}',
        b'{"version":1,"version":1}',
        b"\xff\xfe{}",
        b"",
    ],
    ids=["truncated", "not-json", "no-members", "duplicate-member", "not-utf8", "empty"],
)
def test_malformed_message_is_refused(net: Net, body: bytes) -> None:
    before = evidence(net.cd)
    assert_refused(net.cd, before, post_envelopes(net.cd, body), "malformed", 400)


def test_empty_batch_is_answered_not_crashed(net: Net) -> None:
    response = post_envelopes(net.cd, b"[]")
    assert response.status_code == 200, response.text
    assert response.json() == {"results": []}


# -- what is inside the box --------------------------------------------------------------------


@pytest.mark.parametrize(
    "violation",
    [
        "unknown handling",
        "missing title",
        "extra member",
        "float score",
        "inner document incomplete",
    ],
)
def test_payload_failing_its_schema_is_refused(net: Net, violation: str) -> None:
    inner = inner_alert("CM", "CD")
    payload = inner["payload"]
    if violation == "unknown handling":
        payload["handling"] = "PURPLE"
    elif violation == "missing title":
        del payload["title"]
    elif violation == "extra member":
        payload["exfiltrate_to"] = "https://evil.example"
    elif violation == "float score":
        payload["revision"] = 1.5
    else:
        del inner["payload"]
    raw = hand_sealed(net.keys(net.cm), recipient_of(net.cd), inner)
    before = evidence(net.cd)
    assert_refused(net.cd, before, post_envelopes(net.cd, raw), "schema_invalid", 400, inner["id"])
    assert payload["alert_id"] not in evidence(net.cd).inbound


@pytest.mark.parametrize(
    "code", ["unsupported_version", "not_yet_valid", "decryption_failed", "header_mismatch"]
)
def test_other_envelope_faults_are_refused(net: Net, code: str) -> None:
    cm = net.keys(net.cm)
    inner = inner_alert("CM", "CD")
    status = 400
    if code == "unsupported_version":
        raw = resign(cm, {**parse_json(hand_sealed(cm, recipient_of(net.cd), inner)), "version": 2})
    elif code == "not_yet_valid":
        ts = now() + 3600
        raw = hand_sealed(
            cm, recipient_of(net.cd), inner, header={"created_at": ts, "expires_at": ts + DAY}
        )
    elif code == "decryption_failed":
        # Boxed with an attacker's X25519 key while naming CM's key.
        raw = hand_sealed(
            cm, recipient_of(net.cd), inner, box_key=NodeIdentity.generate("CM").encryption_key
        )
    else:
        raw = hand_sealed(
            cm, recipient_of(net.cd), {**inner, "id": str(uuid.uuid4())}, header={"id": inner["id"]}
        )
    before = evidence(net.cd)
    response = post_envelopes(net.cd, raw)
    # An envelope of another version is not read further: its id is not taken from it.
    claimed_id = None if code == "unsupported_version" else inner["id"]
    assert_refused(net.cd, before, response, code, status, claimed_id)
    if code == "unsupported_version":
        assert "1" in response.json()["detail"]


def test_alert_above_the_sharing_agreement_is_refused(net: Net) -> None:
    raw, alert_id = sealed_alert(net, net.cm, net.cd, fields={"handling": "RED"})
    before = evidence(net.cd)
    response = post_envelopes(net.cd, raw)
    assert_refused(net.cd, before, response, "not_permitted", 403, message_id(raw))
    assert alert_id not in evidence(net.cd).inbound


# -- batches and rate ---------------------------------------------------------------------------


def test_batch_mixing_good_and_bad_envelopes(net: Net) -> None:
    good, good_alert = sealed_alert(net, net.cm, net.cd)
    bad_raw, bad_alert = sealed_alert(net, net.cm, net.cd)
    bad = resign(NodeIdentity.generate("CM"), parse_json(bad_raw))
    before = evidence(net.cd)
    response = post_envelopes(net.cd, b"[" + good + b"," + bad + b"]")
    assert response.status_code == 200, response.text
    first, second = response.json()["results"]
    assert first["id"] == message_id(good) and first["status"] == "accepted" and first["receipt"]
    assert second == {"id": message_id(bad), "error": "bad_signature", "detail": second["detail"]}
    assert_audited_or_tallied(net.cd, before, "bad_signature")
    after = evidence(net.cd)
    assert after.rejected["bad_signature"] == before.rejected["bad_signature"] + 1
    assert set(after.inbound) - set(before.inbound) == {good_alert}
    assert bad_alert not in after.inbound


def test_audit_chains_hold_after_the_attacks(net: Net) -> None:
    for node in (net.cm, net.cf, net.cd):
        with node.api("auditor") as api:
            report = api.get("/api/v1/audit/verify").json()
        assert report["ok"] is True, report


def test_body_larger_than_any_batch_is_refused_unread(net: Net) -> None:
    """A declared length beyond 100 envelopes is refused from the header alone."""
    declared = MAX_BYTES * 100 + 1
    before = evidence(net.cd)
    with socket.create_connection(("127.0.0.1", net.cd.port), timeout=10) as conn:
        conn.sendall(
            b"POST /federation/v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % declared
        )
        head, _, body = conn.recv(65536).partition(b"\r\n\r\n")
        while b"}" not in body:
            body += conn.recv(65536)
    assert head.split(b" ")[1] == b"413", head
    assert json.loads(body)["error"] == "too_large"
    assert_audited_or_tallied(net.cd, before, "too_large")
    assert rejected_counts(net.cd)["too_large"] == before.rejected["too_large"] + 1


def test_batch_of_more_than_100_envelopes_is_refused(net: Net) -> None:
    before = evidence(net.cd)
    response = post_envelopes(net.cd, b"[" + b",".join([b"{}"] * 101) + b"]")
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "too_large"
    assert_audited_or_tallied(net.cd, before, "too_large")
    assert rejected_counts(net.cd)["too_large"] == before.rejected["too_large"] + 1


def rejected_peer_labels(node: RunningNode) -> set[str]:
    text = httpx.get(f"{node.url}/metrics", timeout=10.0).text
    return {
        sample.labels["peer"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == REJECTED
    }


def test_made_up_senders_do_not_mint_metric_series(net: Net) -> None:
    """A flood from ever new node ids is refused without one time series per id."""
    for i in range(12):
        liar = NodeIdentity.generate(f"Q{chr(ord('A') + i)}-flood{i}")
        response = post_envelopes(
            net.cd, seal(liar, recipient_of(net.cd), alert_payload(), now=now())
        )
        assert response.json()["error"] == "unknown_sender"
    labels = rejected_peer_labels(net.cd)
    assert labels <= {"CM", "CF", "CD", "?"}, labels
