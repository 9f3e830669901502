"""KYC checks at one node (SQLite and PostgreSQL): the local check through the API,
and what the node would answer a peer under different sharing agreements."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

import protocol
from node.runtime import open_node
from node.schemas.agreements import SharingAgreement
from node.services.kyc_answers import answer_query, resolve_reference

LICENSEE = {
    "licence_number": "CF-BGF-0117",
    "licence_type": "collector",
    "legal_name": "Établissements Ngaïkoumon SARLU",
    "status": "active",
    "handling": "GREEN",
    "persons": [
        {"role": "beneficial_owner", "name": "NGAÏKOUMON Sylvain", "date_of_birth": "1980"}
    ],
}
SUBJECT = {
    "kind": "person",
    "names": ["Sylvain Ngaikoumon"],
    "date_of_birth": "1980-06-03",
    "reason_category": "smuggling",
    "handling": "AMBER",
    "narrative": "Route via Bouar",
}
RED_SUBJECT = {
    "kind": "person",
    "names": ["Sylvain NGAIKOUMON"],
    "reason_category": "fraud",
    "handling": "RED",
}
PARTY = {"kind": "person", "names": ["Sylvain Ngaikoumon"], "date_of_birth": "1980-06-03"}


@pytest.fixture
def seeded(api):
    headers = api.as_role("analyst")
    refs = {}
    for kind, body in (("licensees", LICENSEE), ("subjects", SUBJECT), ("subjects", RED_SUBJECT)):
        created = api.client.post(f"/api/v1/{kind}", json=body, headers=headers)
        assert created.status_code == 201, created.text
        refs.setdefault(kind, []).append(created.json()["ref"])
    return api, refs


def test_a_local_check_ranks_the_registry_and_subjects_with_explanations(seeded):
    api, refs = seeded
    response = api.client.post(
        "/api/v1/kyc/checks",
        headers=api.as_role("officer"),
        json={"party": PARTY, "purpose": "Parcel release, Bangui M'Poko airport", "scope": "local"},
    )
    assert response.status_code == 201, response.text
    check = response.json()
    assert check["complete"] and check["peers"] == [] and check["scope"] == "local"
    hits = check["local"]
    assert [h["reference"] for h in hits][:1] == [refs["subjects"][0]]  # name and full date
    # The RED subject is above the officer's clearance (AMBER): not among the hits.
    assert {h["reference"] for h in hits} == {*refs["licensees"], refs["subjects"][0]}
    assert hits == sorted(hits, key=lambda h: -h["score"])
    best = hits[0]
    assert best["strength"] == "strong" and best["subject"]["reason_category"] == "smuggling"
    features = {f["feature"]: f for f in best["explanation"]}
    assert (
        features["date_of_birth"]["score"] > 0
        and "1980-06-03" in features["date_of_birth"]["detail"]
    )
    licensee = next(h for h in hits if h["kind"] == "licensee")
    assert licensee["licensee"]["licence_number"] == "CF-BGF-0117"
    assert licensee["name"] == "NGAÏKOUMON Sylvain"

    reopened = api.client.get(f"/api/v1/kyc/checks/{check['id']}", headers=api.as_role("analyst"))
    assert reopened.json()["local"] == hits
    listed = api.client.get("/api/v1/kyc/checks", headers=api.as_role("officer")).json()
    assert listed[0]["id"] == check["id"] and listed[0]["names"] == PARTY["names"]
    audit = api.client.get(
        "/api/v1/audit", params={"action": "kyc.check"}, headers=api.as_role("auditor")
    ).json()["items"]
    assert audit[0]["target_id"] == check["id"]
    assert audit[0]["detail"]["purpose"] == "Parcel release, Bangui M'Poko airport"
    assert audit[0]["actor"].startswith("officer-1")


@pytest.mark.parametrize(
    "body, field",
    [
        ({"party": PARTY, "scope": "local"}, "purpose"),
        ({"party": PARTY, "purpose": " ", "scope": "local"}, "purpose"),
        ({"party": {"kind": "person", "names": []}, "purpose": "x"}, "names"),
        ({"party": PARTY, "purpose": "x", "scope": "federation", "peers": ["ZZ"]}, "peers"),
        ({"party": PARTY, "purpose": "x", "timeout_seconds": 0}, "timeout_seconds"),
    ],
)
def test_a_bad_check_is_refused_and_nothing_is_kept(api, body, field):
    response = api.client.post("/api/v1/kyc/checks", json=body, headers=api.as_role("officer"))
    assert response.status_code == 422
    assert field in response.text
    listed = api.client.get("/api/v1/kyc/checks", headers=api.as_role("officer")).json()
    assert listed == []


def answer(settings, peer_id: str, agreement: SharingAgreement, party=PARTY, min_score=500):
    query = protocol.KycQuery(
        query_id="5697ae9f-1c77-43bc-89e9-a776b43bed03",
        subject=protocol.Party.model_validate(party),
        purpose="test",
        requesting_role="officer",
    )
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            audit: list = []
            response = answer_query(
                session,
                SimpleNamespace(node_id=peer_id),
                agreement,
                query,
                now=node.now(),
                min_score=min_score,
                audit=audit,
            )
            kinds = {
                h.reference: resolve_reference(session, peer_id, h.reference).record_kind
                for h in response.hits
            }
            session.commit()
            return response, kinds, audit
    finally:
        node.close()


def test_a_peer_is_answered_only_what_its_agreement_allows(seeded):
    api, _ = seeded
    licensees_only, _, audit = answer(api.settings, "CM", SharingAgreement())
    assert [h.kind for h in licensees_only.hits] == ["licensee"]
    assert licensees_only.hits[0].licensee.licence_number == "CF-BGF-0117"
    assert audit[0].action == "kyc.answered" and audit[0].actor == "CM"

    both, kinds, _ = answer(
        api.settings,
        "CM",
        SharingAgreement(kyc_record_kinds=["licensee", "subject"], max_handling="AMBER"),
    )
    # The RED subject is not even mentioned: it is above the agreed TLP:AMBER.
    assert sorted(h.kind for h in both.hits) == ["licensee", "subject"]
    assert {h.reference: h.kind for h in both.hits} == kinds  # each reference names its record
    subject = next(h for h in both.hits if h.kind == "subject")
    assert subject.handling == "AMBER" and subject.licensee is None
    assert all(f.detail is None for f in subject.explanation)
    assert "Route via Bouar" not in subject.model_dump_json()

    red, _, _ = answer(
        api.settings, "CM", SharingAgreement(kyc_record_kinds=["subject"], max_handling="RED")
    )
    assert sorted(h.handling for h in red.hits) == ["AMBER", "RED"]


def test_references_are_stable_for_a_peer_and_differ_between_peers(seeded):
    api, _ = seeded
    agreement = SharingAgreement(kyc_record_kinds=["licensee", "subject"])
    first, _, _ = answer(api.settings, "CM", agreement)
    again, _, _ = answer(api.settings, "CM", agreement)
    other, _, _ = answer(api.settings, "CD", agreement)
    refs = lambda response: sorted(h.reference for h in response.hits)  # noqa: E731
    assert refs(first) == refs(again)
    assert not set(refs(first)) & set(refs(other))


def test_weak_matches_are_not_reported_to_peers(seeded):
    api, _ = seeded
    agreement = SharingAgreement(kyc_record_kinds=["licensee", "subject"])
    vague = {"kind": "person", "names": ["Silvain Ngai"]}  # scores about 330 of 1000
    weak, _, _ = answer(api.settings, "CM", agreement, party=vague)
    assert weak.hits == []
    anything, _, _ = answer(api.settings, "CM", agreement, party=vague, min_score=1)
    assert anything.hits
