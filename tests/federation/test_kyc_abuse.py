"""An admitted peer abusing KYC, against a real node (CF) on SQLite and on PostgreSQL:
reading stored values out of answers' explanations, flooding queries and disclosure
requests beyond its daily quota, and asking for disclosures of references it was not
given in an answer (or again and again for one reference).

The peers (CM, CD) are played by this test: it seals their messages with their keys and
opens CF's answers with them, as they would; at the end CM runs, to show what its
officers see of CF's refusals."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import protocol
from node.config import load_settings
from tests.conftest import free_port, fresh_postgres_database
from tests.console.conftest import CSRF, PASSWORD, add_users, visible_text
from tests.federation.conftest import (
    RunningNode,
    build_network,
    card_of,
    identity_of,
    metric_value,
    outbox_to,
    post_envelopes,
    recipient_of,
    wait_for,
)

DIRECTOR = "Jean-Pierre Mbala"
DIRECTOR_BORN = "1975-03-02"
LICENSEE = {
    "licence_number": "CF-BER-2021-007",
    "licence_type": "buying_house",
    "legal_name": "Comptoir du Fleuve SARL",
    "status": "active",
    "issued_on": "2021-05-01",
    "expires_on": "2027-04-30",
    "handling": "GREEN",
    "persons": [{"role": "director", "name": DIRECTOR, "date_of_birth": DIRECTOR_BORN}],
}
SUBJECT = {
    "kind": "person",
    "names": ["Célestin Ngoy Kabongo"],
    "date_of_birth": "1968-11-23",
    "nationality": "CD",
    "reason_category": "smuggling",
    "narrative": "Passeur sur la route Berberati - Gamboula",
    "handling": "AMBER",
}


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def cf_and_peers(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, RunningNode]]:
    """CF running (its database: SQLite or PostgreSQL), answering CM and CD from
    licensees and subjects; CM and CD admitted but not running."""
    database = (
        fresh_postgres_database() if request.param == "postgres" else contextlib.nullcontext()
    )
    with database as url:
        nodes = build_network(
            Path(tmp_path_factory.mktemp("abuse")), ("CF", "CM", "CD"), {"CF": url} if url else {}
        )
        cf = nodes[0]
        cf.start()
        try:
            with cf.api("admin") as api:
                for peer in ("CM", "CD"):
                    agreed = api.put(
                        f"/api/v1/peers/{peer}/agreement",
                        json={"kyc_record_kinds": ["licensee", "subject"]},
                    )
                    assert agreed.status_code == 200, agreed.text
            with cf.api("analyst") as api:
                assert api.post("/api/v1/licensees", json=LICENSEE).status_code == 201
                assert api.post("/api/v1/subjects", json=SUBJECT).status_code == 201
            yield {node.node_id: node for node in nodes}
        finally:
            cf.stop()


def query_of(name: str, date_of_birth: str | None = None) -> protocol.KycQuery:
    return protocol.KycQuery(
        query_id=str(uuid.uuid4()),
        subject=protocol.Party(kind="person", names=[name], date_of_birth=date_of_birth),
        purpose="Export clearance, Bangui M'Poko",
        requesting_role="officer",
    )


def seal(sender: RunningNode, to: RunningNode, payload: protocol.Payload) -> bytes:
    return protocol.seal(identity_of(sender), recipient_of(to), payload, now=int(time.time()))


def answer_to(cf: RunningNode, peer: RunningNode, envelope: bytes) -> protocol.OpenedMessage:
    """CF's reply to ``envelope``, opened by ``peer`` as it would on receipt."""
    asked = protocol.peek_header(envelope).id
    [reply] = [
        r
        for r in outbox_to(cf, peer.node_id)
        if protocol.peek_header(r.envelope.encode()).in_reply_to == asked
    ]
    return protocol.open_envelope(
        reply.envelope.encode(),
        identity=identity_of(peer),
        directory=protocol.StaticDirectory({"CF": card_of(cf).public_keys()}),
        now=int(time.time()),
    )


def ask(cf: RunningNode, peer: RunningNode, query: protocol.KycQuery) -> protocol.KycResponse:
    sent = seal(peer, cf, query)
    response = post_envelopes(cf, sent)
    assert response.status_code == 200 and response.json()["status"] == "accepted", response.text
    answer = answer_to(cf, peer, sent).payload
    assert isinstance(answer, protocol.KycResponse)
    return answer


def audit_of(cf: RunningNode, action: str, target_id: str) -> list[dict]:
    with cf.api("auditor") as api:
        response = api.get("/api/v1/audit", params={"action": action, "target_id": target_id})
    assert response.status_code == 200, response.text
    return response.json()["items"]


def disclosure_request(reference: str, query_id: str | None) -> protocol.DisclosureRequest:
    return protocol.DisclosureRequest(
        request_id=str(uuid.uuid4()),
        query_id=query_id,
        reference=reference,
        justification="Parcel seized at Bangui M'Poko, holder named",
        requested_by_role="analyst",
    )


def inbound_disclosures(cf: RunningNode, peer: str) -> list[dict]:
    with cf.api("analyst") as api:
        rows = api.get("/api/v1/disclosures", params={"direction": "inbound", "limit": 200}).json()
    return [r for r in rows if r["peer"] == peer]


def test_a_licensee_hit_tells_the_peer_only_the_shared_fields_and_the_audit_says_so(cf_and_peers):
    cf, cm = cf_and_peers["CF"], cf_and_peers["CM"]
    query = query_of(DIRECTOR, DIRECTOR_BORN)
    answer = ask(cf, cm, query)

    [hit] = answer.hits
    assert hit.kind == "licensee" and hit.licensee is not None
    assert hit.licensee.model_dump(exclude_none=True) == {
        "legal_name": "Comptoir du Fleuve SARL",
        "licence_number": "CF-BER-2021-007",
        "licence_type": "buying_house",
        "status": "active",
        "valid_from": "2021-05-01",
        "valid_until": "2027-04-30",
    }
    # Why it matched: feature names and scores, nothing the record holds.
    assert {f.feature for f in hit.explanation} >= {"names", "date_of_birth"}
    assert all(f.detail is None for f in hit.explanation)
    sent = json.dumps(answer.model_dump(mode="json"), ensure_ascii=False)
    for stored in ("Jean", "Pierre", "Mbala", "1975", "03-02", "director"):
        assert stored not in sent, stored

    # The audit entry of the answer holds what was sent, no more and no less.
    [entry] = audit_of(cf, "kyc.answered", query.query_id)
    assert entry["actor"] == "CM"
    assert entry["detail"]["answer"] == answer.model_dump(mode="json", exclude_none=True)
    assert list(entry["detail"]["records"]) == [hit.reference]


def test_disclosure_requests_must_cite_the_answer_that_gave_the_reference(cf_and_peers):
    cf, cm = cf_and_peers["CF"], cf_and_peers["CM"]
    query = query_of("Célestin Ngoy Kabongo", "1968-11-23")
    [hit] = ask(cf, cm, query).hits
    assert hit.kind == "subject"
    other = ask(cf, cm, query_of(DIRECTOR, DIRECTOR_BORN))  # an answer without that reference

    # The real reference with made-up query ids, another answer's id, or none at all.
    forged = [disclosure_request(hit.reference, str(uuid.uuid4())) for _ in range(20)]
    forged += [
        disclosure_request(hit.reference, other.query_id),
        disclosure_request(hit.reference, None),
        disclosure_request("s-" + "x" * 24, query.query_id),
    ]
    batch = b"[" + b",".join(seal(cm, cf, r) for r in forged) + b"]"
    results = post_envelopes(cf, batch).json()["results"]
    assert [r.get("error") for r in results] == ["not_permitted"] * len(forged)
    assert inbound_disclosures(cf, "CM") == []

    # Cited with the query that gave it: kept once for the analyst, however often asked.
    asked = [disclosure_request(hit.reference, query.query_id) for _ in range(4)]
    for request in asked:
        response = post_envelopes(cf, seal(cm, cf, request))
        assert response.json()["status"] == "accepted", response.text
    [pending] = inbound_disclosures(cf, "CM")
    assert pending["request_id"] == asked[0].request_id and pending["status"] == "pending"
    assert len(audit_of(cf, "disclosure.request_repeated", asked[1].request_id)) == 1

    with cf.api("analyst") as api:
        denied = api.post(
            f"/api/v1/disclosures/{pending['id']}/decision",
            json={"decision": "deny", "reason": "Ongoing investigation"},
        )
        assert denied.status_code == 200, denied.text
    # Asked again after the decision: the same decision, at once, and still one request.
    again = seal(cm, cf, disclosure_request(hit.reference, query.query_id))
    assert post_envelopes(cf, again).json()["status"] == "accepted"
    decision = answer_to(cf, cm, again).payload
    assert isinstance(decision, protocol.DisclosureResponse)
    assert (decision.decision, decision.reason) == ("denied", "Ongoing investigation")
    assert (
        decision.request_id
        == protocol.open_envelope(
            again,
            identity=identity_of(cf),
            directory=protocol.StaticDirectory({"CM": card_of(cm).public_keys()}),
            now=int(time.time()),
        ).payload.request_id
    )  # type: ignore[union-attr]
    assert len(inbound_disclosures(cf, "CM")) == 1


def test_a_peer_beyond_its_daily_quotas_is_refused_with_quota_exceeded(cf_and_peers):
    cf, cd, cm = cf_and_peers["CF"], cf_and_peers["CD"], cf_and_peers["CM"]
    with cf.api("admin") as api:
        agreed = api.put(
            "/api/v1/peers/CD/agreement",
            json={
                "kyc_record_kinds": ["licensee", "subject"],
                "kyc_queries_per_day": 4,
                "disclosure_requests_per_day": 2,
            },
        )
        assert agreed.status_code == 200, agreed.text
        assert agreed.json()["agreement"]["kyc_queries_per_day"] == 4

    def used(kind: str) -> float:
        return metric_value(cf, "kpnet_peer_quota_used_ratio", peer="CD", kind=kind)

    assert used("kyc_query") == 0
    query = query_of("Célestin Ngoy Kabongo", "1968-11-23")
    [hit] = ask(cf, cd, query).hits
    assert used("kyc_query") == 0.25  # not yet past half: the alert would not fire
    ask(cf, cd, query_of(DIRECTOR))
    ask(cf, cd, query_of("Albert Zanga"))
    assert used("kyc_query") == 0.75  # past half: the alert fires

    # One more query fits; in a batch, the rest is refused one by one.
    batch = [seal(cd, cf, query_of(f"Personne {n}")) for n in range(3)]
    results = post_envelopes(cf, b"[" + b",".join(batch) + b"]").json()["results"]
    assert [r.get("status") or r["error"] for r in results] == [
        "accepted",
        "quota_exceeded",
        "quota_exceeded",
    ]
    refused = post_envelopes(cf, seal(cd, cf, query_of(DIRECTOR)))
    assert refused.status_code == 403 and refused.json()["error"] == "quota_exceeded"
    assert used("kyc_query") == 1.0
    # Another peer's quota is its own.
    assert ask(cf, cm, query_of(DIRECTOR)).hits

    # Disclosure requests: two accepted (a repeat counts too), then refused.
    last = [seal(cd, cf, disclosure_request(hit.reference, query.query_id)) for _ in range(3)]
    outcomes = [post_envelopes(cf, raw).json() for raw in last]
    assert [o.get("status") or o["error"] for o in outcomes] == [
        "accepted",
        "accepted",
        "quota_exceeded",
    ]
    assert used("disclosure_request") == 1.0
    assert len(inbound_disclosures(cf, "CD")) == 1
    wait_for(
        lambda: (
            metric_value(
                cf, "kpnet_federation_messages_rejected_total", peer="CD", code="quota_exceeded"
            )
            == 4
        )
    )


def test_the_asking_node_shows_a_quota_refusal_and_may_ask_again(cf_and_peers):
    """CM, running, asks CF beyond its quotas: its officer sees CF's refusal, in French
    too, and a refused disclosure request does not block asking again later."""
    cf, cm = cf_and_peers["CF"], cf_and_peers["CM"]
    add_users(load_settings(cm.data_dir), {"officer-fr": "officer"})
    cm.start()
    try:
        with cm.api("officer") as api:
            check = api.post(
                "/api/v1/kyc/checks",
                json={
                    "party": {"kind": "person", "names": ["Célestin Ngoy Kabongo"]},
                    "purpose": "Contrôle à l'export",
                    "scope": "federation",
                    "peers": ["CF"],
                    "timeout_seconds": 20,
                },
            ).json()
        [hit] = cf_answer(cm, check["id"], "answered")["hits"]
        with cf.api("admin") as api:
            agreed = api.put(
                "/api/v1/peers/CM/agreement",
                json={
                    "kyc_record_kinds": ["licensee", "subject"],
                    "kyc_queries_per_day": 1,
                    "disclosure_requests_per_day": 1,
                },
            )
            assert agreed.status_code == 200, agreed.text
        while (
            metric_value(cf, "kpnet_peer_quota_used_ratio", peer="CM", kind="disclosure_request")
            < 1
        ):
            wire = seal(cm, cf, disclosure_request(hit["reference"], check["id"]))
            assert post_envelopes(cf, wire).json()["status"] == "accepted"

        ask = {"check_id": check["id"], "peer": "CF", "reference": hit["reference"]}
        with cm.api("officer") as api:
            asked = api.post("/api/v1/disclosures", json={**ask, "justification": "Saisie"})
            assert asked.status_code == 201, asked.text
            refused = wait_for(
                lambda: (
                    (d := api.get(f"/api/v1/disclosures/{asked.json()['id']}").json())["error"]
                    and d
                ),
                timeout=90,
            )
            assert refused["status"] == "pending" and refused["error"] == "quota_exceeded"
            again = api.post("/api/v1/disclosures", json={**ask, "justification": "Demain"})
            assert again.status_code == 201, again.text

            second = api.post(
                "/api/v1/kyc/checks",
                json={
                    "party": {"kind": "person", "names": ["Célestin Ngoy Kabongo"]},
                    "purpose": "Contrôle à l'export",
                    "scope": "federation",
                    "peers": ["CF"],
                    "timeout_seconds": 20,
                },
            ).json()
        from_cf = cf_answer(cm, second["id"], "refused")
        assert from_cf["error"] == "quota_exceeded"

        with httpx.Client(base_url=cm.url, headers={"Accept-Language": "fr"}) as browser:
            login = browser.get("/console/login")
            token = CSRF.search(login.text).group(1)  # type: ignore[union-attr]
            signed = browser.post(
                "/console/login",
                data={"username": "officer-fr", "password": PASSWORD, "csrf_token": token},
            )
            assert signed.status_code == 303, signed.text
            page = visible_text(browser.get(f"/console/kyc/{second['id']}").text)
        assert "Le quota journalier de ce nœud chez le pair est épuisé" in page
    finally:
        cm.stop()


def test_two_processes_sharing_the_database_count_one_quota(cf_and_peers):
    cf, cd = cf_and_peers["CF"], cf_and_peers["CD"]
    second = cf.start(port=free_port())
    try:
        with cf.api("admin") as api:
            agreement = api.get("/api/v1/peers/CD").json()["agreement"]
        limit = agreement["kyc_queries_per_day"] or 500
        used = round(
            metric_value(cf, "kpnet_peer_quota_used_ratio", peer="CD", kind="kyc_query") * limit
        )
        with cf.api("admin") as api:
            agreement["kyc_queries_per_day"] = used + 10
            assert api.put("/api/v1/peers/CD/agreement", json=agreement).status_code == 200

        def send(n: int) -> str:
            url = cf.url if n % 2 else second.url
            response = httpx.post(
                f"{url}/federation/v1/messages",
                content=seal(cd, cf, query_of(f"Personne {n}")),
                headers={"content-type": "application/json"},
                timeout=60,
            )
            return response.json().get("status") or response.json()["error"]

        with ThreadPoolExecutor(max_workers=6) as pool:
            outcomes = list(pool.map(send, range(30)))
        assert sorted(outcomes) == ["accepted"] * 10 + ["quota_exceeded"] * 20
    finally:
        second.process.terminate()
        second.process.wait(timeout=15)


def cf_answer(cm: RunningNode, check_id: str, state: str) -> dict:
    """CF's part of CM's check once it is in ``state`` (a loaded machine may need longer
    than the check's own wait: the check is reopened until then)."""

    def reopened() -> dict | None:
        with cm.api("officer") as api:
            view = api.get(f"/api/v1/kyc/checks/{check_id}").json()
        part = next(p for p in view["peers"] if p["peer"] == "CF")
        return part if part["state"] == state else None

    return wait_for(reopened, timeout=90)
