"""Federated KYC checks over real HTTP between running nodes: step 1 (hit / no hit
under each peer's sharing agreement), step 2 (disclosure granted or denied by an analyst
at the holding node), audit on both sides, and a stopped peer."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import protocol
from tests.federation.conftest import (
    RunningNode,
    build_network,
    identity_of,
    outbox_to,
    post_envelopes,
    recipient_of,
    wait_for,
)

# The person asked about, as a CM officer types it.
QUERY = {
    "kind": "person",
    "names": ["Jean Pierre MBALA"],
    "date_of_birth": "1971-04-12",
    "nationality": "CD",
}
SECRET_NARRATIVE = "Informateur: remet des certificats KP falsifiés à Berberati"
SUBJECT_AT_CF = {
    "kind": "person",
    "names": ["MBALA Jean-Pierre"],
    "aliases": ["Jipé Mbala"],
    "date_of_birth": "1971-04-12",
    "nationality": "CD",
    "reason_category": "fake_kp_certificate",
    "risk_level": "high",
    "narrative": SECRET_NARRATIVE,
    "source_agency": "USAF Bangui",
    "documents": [{"type": "passport", "number": "OB0412771", "country": "CD"}],
    "handling": "AMBER",
}
# A second person CF flags, for a disclosure that is denied (requests are answered once
# per reference: asking again about Mbala would get the grant again).
OTHER_AT_CF = {
    "kind": "person",
    "names": ["Célestin Ngoy Kabongo"],
    "date_of_birth": "1968-11-23",
    "reason_category": "smuggling",
    "handling": "GREEN",
}
OTHER_QUERY = {"kind": "person", "names": ["Celestin NGOY KABONGO"], "date_of_birth": "1968-11-23"}
LICENSEE_AT_CD = {
    "licence_number": "CD-MBA-2019-044",
    "licence_type": "buying_house",
    "legal_name": "Comptoir Mbala et Fils SARL",
    "status": "revoked",
    "issued_on": "2019-02-01",
    "expires_on": "2024-01-31",
    "handling": "GREEN",
    "persons": [{"role": "director", "name": "Jean-Pierre Mbala", "date_of_birth": "1971-04-12"}],
}
# CD also flags him, but its agreement with CM (the default) answers from licensees only.
SUBJECT_AT_CD = {
    "kind": "person",
    "names": ["Jean-Pierre Mbala"],
    "date_of_birth": "1971-04-12",
    "reason_category": "smuggling",
    "handling": "GREEN",
}


@pytest.fixture(scope="module")
def kyc_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[RunningNode]]:
    nodes = build_network(Path(tmp_path_factory.mktemp("kyc")), ("CM", "CF", "CD"))
    _, cf, cd = nodes
    try:
        for node in nodes:
            node.start()
        with cf.api("admin") as api:  # CF answers CM's queries from subjects too
            agreed = api.put(
                "/api/v1/peers/CM/agreement",
                json={"kyc_record_kinds": ["licensee", "subject"], "max_handling": "AMBER"},
            )
            assert agreed.status_code == 200, agreed.text
        with cf.api("analyst") as api:
            assert api.post("/api/v1/subjects", json=SUBJECT_AT_CF).status_code == 201
            assert api.post("/api/v1/subjects", json=OTHER_AT_CF).status_code == 201
        with cd.api("analyst") as api:
            assert api.post("/api/v1/licensees", json=LICENSEE_AT_CD).status_code == 201
            assert api.post("/api/v1/subjects", json=SUBJECT_AT_CD).status_code == 201
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def run_check(node: RunningNode, **fields: object) -> dict:
    body = {
        "party": QUERY,
        "purpose": "Export clearance, Douala airport",
        "scope": "federation",
        **fields,
    }
    with node.api("officer") as api:
        response = api.post("/api/v1/kyc/checks", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def answer_of(check: dict, peer: str) -> dict:
    return next(p for p in check["peers"] if p["peer"] == peer)


def audit_actions(node: RunningNode, action: str) -> list[dict]:
    with node.api("auditor") as api:
        response = api.get("/api/v1/audit", params={"action": action})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_federated_check_finds_a_licensee_at_one_peer_and_a_subject_at_another(kyc_network):
    cm = kyc_network[0]
    check = run_check(cm)

    assert check["complete"] and check["not_answered"] == []
    from_cd, from_cf = answer_of(check, "CD"), answer_of(check, "CF")
    assert from_cd["state"] == from_cf["state"] == "answered"
    assert not from_cd["late"] and not from_cf["late"]

    [licensee] = from_cd["hits"]  # CD's subject stays out: its agreement says licensees only
    assert licensee["kind"] == "licensee"
    assert licensee["licensee"] == {
        "legal_name": "Comptoir Mbala et Fils SARL",
        "licence_number": "CD-MBA-2019-044",
        "licence_type": "buying_house",
        "status": "revoked",
        "valid_from": "2019-02-01",
        "valid_until": "2024-01-31",
    }
    assert licensee["strength"] == "strong", licensee
    assert {f["feature"] for f in licensee["explanation"]} >= {"names", "date_of_birth"}
    assert all(f["detail"] is None for f in licensee["explanation"])  # it would quote

    [subject] = from_cf["hits"]
    assert subject["kind"] == "subject" and subject["handling"] == "AMBER"
    assert subject["strength"] == "strong" and subject["reference"]
    assert subject["licensee"] is None
    # Hit / no hit, score, kind, reference, handling: nothing of the record itself.
    shown = json.dumps(from_cf)
    for secret in ("Berberati", "OB0412771", "Jipé", "MBALA Jean-Pierre", "USAF", "fake_kp"):
        assert secret not in shown
    assert all(f["detail"] is None for f in subject["explanation"])

    # Reopened later, the check is the same.
    with cm.api("analyst") as api:
        reopened = api.get(f"/api/v1/kyc/checks/{check['id']}").json()
    assert reopened["peers"] == check["peers"] and reopened["local"] == check["local"]


def test_every_check_and_every_answer_is_audited_on_both_sides(kyc_network):
    cm, cf, cd = kyc_network
    check = run_check(cm, purpose="Licence renewal, Kinshasa")

    [asked] = [e for e in audit_actions(cm, "kyc.check") if e["target_id"] == check["id"]]
    assert asked["actor"].startswith("officer-1")
    assert asked["detail"]["purpose"] == "Licence renewal, Kinshasa"
    assert asked["detail"]["scope"] == "federation"
    assert asked["detail"]["query"]["names"] == QUERY["names"]
    assert sorted(asked["detail"]["peers"]) == ["CD", "CF"]
    received = [
        e for e in audit_actions(cm, "kyc.answer_received") if e["target_id"] == check["id"]
    ]
    assert sorted(e["actor"] for e in received) == ["CD", "CF"]

    [answered] = [e for e in audit_actions(cf, "kyc.answered") if e["target_id"] == check["id"]]
    assert answered["actor"] == "CM"
    assert answered["detail"]["purpose"] == "Licence renewal, Kinshasa"
    assert answered["detail"]["searched"] == ["licensee", "subject"]
    # What each peer was told is what CM received.
    [revealed] = answered["detail"]["answer"]["hits"]
    assert revealed["kind"] == "subject" and "licensee" not in revealed
    assert revealed["reference"] == answer_of(check, "CF")["hits"][0]["reference"]
    assert list(answered["detail"]["records"]) == [revealed["reference"]]
    [at_cd] = [e for e in audit_actions(cd, "kyc.answered") if e["target_id"] == check["id"]]
    assert at_cd["detail"]["searched"] == ["licensee"]
    [told] = at_cd["detail"]["answer"]["hits"]
    assert told["licensee"] == answer_of(check, "CD")["hits"][0]["licensee"]


def request_disclosure(cm: RunningNode, check: dict, justification: str, expect: int = 201) -> dict:
    reference = answer_of(check, "CF")["hits"][0]["reference"]
    with cm.api("officer") as api:
        response = api.post(
            "/api/v1/disclosures",
            json={
                "check_id": check["id"],
                "peer": "CF",
                "reference": reference,
                "justification": justification,
            },
        )
    assert response.status_code == expect, response.text
    return response.json()


def inbound_request(node: RunningNode, request_id: str) -> dict:
    def pending() -> dict | None:
        with node.api("analyst") as api:
            rows = api.get(
                "/api/v1/disclosures", params={"direction": "inbound", "status": "pending"}
            ).json()
        return next((r for r in rows if r["request_id"] == request_id), None)

    return wait_for(pending)


def decided(node: RunningNode, disclosure_id: int) -> dict:
    def answer() -> dict | None:
        with node.api("officer") as api:
            row = api.get(f"/api/v1/disclosures/{disclosure_id}").json()
        return row if row["status"] != "pending" else None

    return wait_for(answer)


def test_granted_disclosure_returns_only_the_fields_the_analyst_chose(kyc_network):
    cm, cf, _ = kyc_network
    check = run_check(cm)
    asked = request_disclosure(cm, check, "Parcel of 312 stones seized at Douala, holder named")
    assert asked["status"] == "pending" and asked["direction"] == "outbound"
    # One request per reference waits for CF's decision at a time.
    request_disclosure(cm, check, "Asked twice", expect=409)

    incoming = inbound_request(cf, asked["request_id"])
    assert incoming["justification"].startswith("Parcel of 312 stones")
    assert incoming["record"]["narrative"] == SECRET_NARRATIVE  # the analyst sees it all
    with cf.api("officer") as api:  # officers do not decide
        refused = api.post(
            f"/api/v1/disclosures/{incoming['id']}/decision",
            json={"decision": "grant", "fields": ["names"]},
        )
        assert refused.status_code == 403
    with cf.api("analyst") as api:
        granted = api.post(
            f"/api/v1/disclosures/{incoming['id']}/decision",
            json={"decision": "grant", "fields": ["names", "date_of_birth"]},
        )
        assert granted.status_code == 200, granted.text
        again = api.post(
            f"/api/v1/disclosures/{incoming['id']}/decision",
            json={"decision": "deny", "reason": "changed my mind"},
        )
        assert again.status_code == 409

    answer = decided(cm, asked["id"])
    assert answer["status"] == "granted" and answer["decided_by"] == "CF"
    assert answer["details"] == {"names": ["MBALA Jean-Pierre"], "date_of_birth": "1971-04-12"}
    assert answer["fields"] == ["date_of_birth", "names"] and answer["handling"] == "AMBER"
    assert SECRET_NARRATIVE not in json.dumps(answer)

    [decision] = [
        e for e in audit_actions(cf, "disclosure.grant") if e["target_id"] == asked["request_id"]
    ]
    assert decision["actor"].startswith("analyst-1")
    assert decision["detail"]["fields"] == ["names", "date_of_birth"]
    assert (
        next(
            e
            for e in audit_actions(cm, "disclosure.answered")
            if e["target_id"] == asked["request_id"]
        )["detail"]["decision"]
        == "granted"
    )
    assert (
        next(
            e
            for e in audit_actions(cm, "disclosure.request")
            if e["target_id"] == asked["request_id"]
        )["detail"]["peer"]
        == "CF"
    )


def test_denied_disclosure_returns_the_reason(kyc_network):
    cm, cf, _ = kyc_network
    check = run_check(cm, party=OTHER_QUERY)
    asked = request_disclosure(cm, check, "Routine check")
    incoming = inbound_request(cf, asked["request_id"])
    with cf.api("analyst") as api:
        denied = api.post(
            f"/api/v1/disclosures/{incoming['id']}/decision",
            json={
                "decision": "deny",
                "reason": "Ongoing investigation; ask through the focal point",
            },
        )
        assert denied.status_code == 200, denied.text

    answer = decided(cm, asked["id"])
    assert answer["status"] == "denied" and answer["details"] is None
    assert answer["reason"] == "Ongoing investigation; ask through the focal point"
    assert (
        next(
            e for e in audit_actions(cf, "disclosure.deny") if e["target_id"] == asked["request_id"]
        )["detail"]["fields"]
        == []
    )


def test_disclosure_is_asked_only_for_a_subject_reference_the_peer_gave(kyc_network):
    cm, _, _ = kyc_network
    check = run_check(cm)
    licensee_ref = answer_of(check, "CD")["hits"][0]["reference"]
    with cm.api("officer") as api:
        for peer, reference in (("CF", "s-made-up"), ("CD", licensee_ref)):
            response = api.post(
                "/api/v1/disclosures",
                json={
                    "check_id": check["id"],
                    "peer": peer,
                    "reference": reference,
                    "justification": "fishing",
                },
            )
            assert response.status_code == 422, response.text


def test_a_peer_cannot_ask_about_a_reference_given_to_another_peer(kyc_network):
    cm, cf, cd = kyc_network
    reference = answer_of(run_check(cm), "CF")["hits"][0]["reference"]
    forged = protocol.DisclosureRequest(
        request_id="0b6f4e1c-3a55-4c1e-9d1e-2f5a8c7d9e10",
        reference=reference,
        justification="CD tries CM's reference",
        requested_by_role="analyst",
    )
    wire = protocol.seal(identity_of(cd), recipient_of(cf), forged, now=int(time.time()))
    response = post_envelopes(cf, wire)
    assert response.status_code == 403 and response.json()["error"] == "not_permitted"
    # And an answer to a query nobody asked is refused the same way.
    unasked = protocol.KycResponse(query_id="0b6f4e1c-3a55-4c1e-9d1e-2f5a8c7d9e11", hits=[])
    wire = protocol.seal(identity_of(cd), recipient_of(cm), unasked, now=int(time.time()))
    response = post_envelopes(cm, wire)
    assert response.status_code == 403 and response.json()["error"] == "not_permitted"
    with cf.api("analyst") as api:
        pending = api.get("/api/v1/disclosures", params={"direction": "inbound"}).json()
    assert all(r["peer"] != "CD" for r in pending)


def test_a_stopped_peer_is_reported_within_the_timeout_and_its_late_answer_kept(kyc_network):
    cm, _, cd = kyc_network
    cd.stop()
    try:
        started = time.monotonic()
        check = run_check(cm, timeout_seconds=2)
        elapsed = time.monotonic() - started
        assert 1.9 <= elapsed < 4.0  # the timeout, not more
        assert check["not_answered"] == ["CD"] and not check["complete"]
        assert answer_of(check, "CD")["state"] == "no_answer"
        assert answer_of(check, "CF")["state"] == "answered"
        assert answer_of(check, "CF")["hits"][0]["kind"] == "subject"
    finally:
        cd.start()

    def reopened() -> dict | None:
        with cm.api("officer") as api:
            view = api.get(f"/api/v1/kyc/checks/{check['id']}").json()
        return view if answer_of(view, "CD")["state"] == "answered" else None

    late = answer_of(wait_for(reopened, timeout=30), "CD")
    assert late["late"] is True
    assert late["hits"][0]["licensee"]["licence_number"] == "CD-MBA-2019-044"


def test_a_query_past_its_askers_deadline_is_not_answered(kyc_network):
    cm, cf, _ = kyc_network
    now = int(time.time())
    query = protocol.KycQuery(
        query_id="5b0c1f7e-9a1d-4c3e-8f20-6d4a2b9c1e77",
        subject=protocol.Party(kind="person", names=["Jean Pierre MBALA"]),
        purpose="licence_application",
        requesting_role="officer",
        max_results=5,
    )
    # Its asker waited 40 s, two minutes ago: still within the clock-skew allowance
    # for envelopes, but nobody waits for its answer any more.
    late = protocol.seal(identity_of(cm), recipient_of(cf), query, now=now - 120, ttl=40)
    response = post_envelopes(cf, late)
    assert response.status_code == 400 and response.json()["error"] == "expired"
    # The same query within its deadline is answered, and the answer expires with it.
    timely = protocol.seal(identity_of(cm), recipient_of(cf), query, now=now, ttl=40)
    response = post_envelopes(cf, timely)
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    assert replies_to(cf, "CM", late) == []
    [answer] = replies_to(cf, "CM", timely)
    assert answer.msg_type == "kyc.response"
    assert protocol.peek_header(answer.envelope.encode()).expires_at <= now + 40 + 30


def replies_to(node: RunningNode, peer: str, envelope: bytes) -> list:  # type: ignore[type-arg]
    """``node``'s outbox rows for ``peer`` that reply to ``envelope``."""
    asked = protocol.peek_header(envelope).id
    return [
        r
        for r in outbox_to(node, peer)
        if protocol.peek_header(r.envelope.encode()).in_reply_to == asked
    ]
