"""Licensees and subjects through the API: history, concurrency, deletion, search,
validation, and the audit of who read a subject."""

from __future__ import annotations

LICENSEES = "/api/v1/licensees"
SUBJECTS = "/api/v1/subjects"


def new_analyst(api, name: str) -> dict[str, str]:
    """Headers of a second analyst, so history can tell writers apart."""
    created = api.client.post(
        "/api/v1/tokens", headers=api.as_role("admin"), json={"name": name, "role": "analyst"}
    )
    assert created.status_code == 201
    return {"Authorization": f"Bearer {created.json()['token']}"}


def history(api, path: str) -> list[dict]:
    response = api.client.get(f"{path}/history", headers=api.as_role("officer"))
    assert response.status_code == 200, response.text
    return response.json()


# -- history and versions -------------------------------------------------------------


def test_update_makes_a_new_version_recording_old_and_new_values_and_who(api, make_licensee):
    created = make_licensee("CM-BA-010", region="Est")
    ref = created["ref"]
    assert created["version"] == 1
    assert created["created_by"] == "analyst-1"
    mbida = new_analyst(api, "analyste Mbida")

    updated = api.client.patch(
        f"{LICENSEES}/{ref}",
        headers=mbida,
        json={"version": 1, "legal_name": "Comptoir Étoile du Sud", "region": "Adamaoua"},
    )

    assert updated.status_code == 200, updated.text
    assert updated.json()["version"] == 2
    assert updated.json()["legal_name"] == "Comptoir Étoile du Sud"
    assert updated.json()["updated_by"] == "analyste Mbida"
    assert updated.json()["created_by"] == "analyst-1"
    versions = history(api, f"{LICENSEES}/{ref}")
    assert [(v["version"], v["action"], v["changed_by"]) for v in versions] == [
        (1, "create", "analyst-1"),
        (2, "update", "analyste Mbida"),
    ]
    assert versions[0]["changes"]["legal_name"] == [None, "Comptoir Étoile SARL"]
    assert versions[1]["changes"] == {
        "legal_name": ["Comptoir Étoile SARL", "Comptoir Étoile du Sud"],
        "region": ["Est", "Adamaoua"],
    }


def test_update_that_changes_nothing_makes_no_version(api, make_licensee):
    ref = make_licensee("CM-BA-011")["ref"]
    same = api.client.patch(
        f"{LICENSEES}/{ref}",
        headers=api.as_role("analyst"),
        json={"legal_name": "Comptoir Étoile SARL"},
    )
    assert same.status_code == 200
    assert same.json()["version"] == 1
    assert len(history(api, f"{LICENSEES}/{ref}")) == 1


def test_subject_update_history(api, make_subject):
    ref = make_subject(aliases=["JP"])["ref"]
    updated = api.client.patch(
        f"{SUBJECTS}/{ref}",
        headers=api.as_role("analyst"),
        json={"risk_level": "high", "aliases": ["JP", "Le Gros"]},
    )
    assert updated.status_code == 200
    versions = history(api, f"{SUBJECTS}/{ref}")
    assert versions[-1]["version"] == 2
    assert versions[-1]["changes"] == {
        "risk_level": ["medium", "high"],
        "aliases": [["JP"], ["JP", "Le Gros"]],
    }


def test_null_clears_an_optional_field_but_is_refused_for_a_required_one(
    api, make_licensee, row_counts
):
    ref = make_licensee("CM-BA-012", region="Est")["ref"]
    before = row_counts()
    for field in ("legal_name", "licence_type", "trade_names", "persons", "handling"):
        refused = api.client.patch(
            f"{LICENSEES}/{ref}", headers=api.as_role("analyst"), json={field: None}
        )
        assert refused.status_code == 422, (field, refused.text)
        assert refused.json()["detail"][0]["loc"] == ["body", field]
    assert row_counts() == before

    cleared = api.client.patch(
        f"{LICENSEES}/{ref}", headers=api.as_role("analyst"), json={"region": None}
    )
    assert cleared.status_code == 200
    assert cleared.json()["region"] is None
    assert history(api, f"{LICENSEES}/{ref}")[-1]["changes"] == {"region": ["Est", None]}


def test_subject_refuses_null_for_required_fields(api, make_subject, row_counts):
    ref = make_subject()["ref"]
    before = row_counts()
    for field in (
        "kind",
        "names",
        "aliases",
        "documents",
        "linked_licence_numbers",
        "reason_category",
        "risk_level",
        "handling",
    ):
        refused = api.client.patch(
            f"{SUBJECTS}/{ref}", headers=api.as_role("analyst"), json={field: None}
        )
        assert refused.status_code == 422, (field, refused.text)
    assert row_counts() == before
    assert api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("analyst")).status_code == 200


# -- optimistic concurrency ---------------------------------------------------------------


def test_update_with_a_stale_version_is_refused_and_changes_nothing(api, make_licensee, row_counts):
    ref = make_licensee("CM-BA-020")["ref"]
    first = api.client.patch(
        f"{LICENSEES}/{ref}", headers=api.as_role("analyst"), json={"version": 1, "region": "Est"}
    )
    assert first.status_code == 200
    before = row_counts()

    stale = api.client.patch(
        f"{LICENSEES}/{ref}",
        headers=api.as_role("analyst"),
        json={"version": 1, "region": "Nord", "legal_name": "Autre"},
    )

    assert stale.status_code == 409
    assert "version 2" in stale.json()["detail"]
    assert row_counts() == before
    current = api.client.get(f"{LICENSEES}/{ref}", headers=api.as_role("analyst")).json()
    assert (current["version"], current["region"], current["legal_name"]) == (
        2,
        "Est",
        "Comptoir Étoile SARL",
    )


def test_delete_and_status_change_check_the_version_too(api, make_licensee, row_counts):
    ref = make_licensee("CM-BA-021")["ref"]
    api.client.patch(f"{LICENSEES}/{ref}", headers=api.as_role("analyst"), json={"region": "Est"})
    before = row_counts()
    deleted = api.client.delete(
        f"{LICENSEES}/{ref}", params={"version": 1}, headers=api.as_role("analyst")
    )
    status = api.client.post(
        f"{LICENSEES}/{ref}/status",
        params={"version": 1},
        json={"status": "revoked"},
        headers=api.as_role("analyst"),
    )
    assert (deleted.status_code, status.status_code) == (409, 409)
    assert row_counts() == before
    current = api.client.get(f"{LICENSEES}/{ref}", headers=api.as_role("analyst"))
    assert current.status_code == 200
    assert current.json()["status"] == "active"

    assert (
        api.client.delete(
            f"{LICENSEES}/{ref}", params={"version": 2}, headers=api.as_role("analyst")
        ).status_code
        == 204
    )


def test_subject_stale_version_is_refused(api, make_subject):
    ref = make_subject()["ref"]
    api.client.patch(
        f"{SUBJECTS}/{ref}",
        headers=api.as_role("analyst"),
        json={"version": 1, "risk_level": "low"},
    )
    stale = api.client.patch(
        f"{SUBJECTS}/{ref}",
        headers=api.as_role("analyst"),
        json={"version": 1, "risk_level": "high"},
    )
    assert stale.status_code == 409
    current = api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("analyst")).json()
    assert current["risk_level"] == "low"


# -- soft deletion ------------------------------------------------------------------------


def test_deleted_licensee_is_gone_but_kept_in_history(api, make_licensee):
    ref = make_licensee("CM-BA-030")["ref"]
    deleted = api.client.delete(f"{LICENSEES}/{ref}", headers=api.as_role("analyst"))
    assert deleted.status_code == 204

    analyst = api.as_role("analyst")
    assert api.client.get(f"{LICENSEES}/{ref}", headers=analyst).status_code == 404
    assert (
        api.client.patch(f"{LICENSEES}/{ref}", headers=analyst, json={"region": "x"}).status_code
        == 404
    )
    assert api.client.delete(f"{LICENSEES}/{ref}", headers=analyst).status_code == 404
    assert api.client.get(LICENSEES, headers=analyst).json()["total"] == 0
    versions = history(api, f"{LICENSEES}/{ref}")
    assert [(v["version"], v["action"], v["changed_by"]) for v in versions] == [
        (1, "create", "analyst-1"),
        (2, "delete", "analyst-1"),
    ]


def test_deleted_subject_is_gone_but_kept_in_history(api, make_subject):
    ref = make_subject()["ref"]
    assert api.client.delete(f"{SUBJECTS}/{ref}", headers=api.as_role("analyst")).status_code == 204
    assert api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("officer")).status_code == 404
    assert [v["action"] for v in history(api, f"{SUBJECTS}/{ref}")] == ["create", "delete"]


def test_licence_number_is_unique_among_live_licensees_and_reusable_after_delete(
    api, make_licensee
):
    first = make_licensee("CM-BA-031")
    duplicate = api.client.post(
        LICENSEES,
        headers=api.as_role("analyst"),
        json={"licence_number": "CM-BA-031", "licence_type": "collector", "legal_name": "Autre"},
    )
    assert duplicate.status_code == 409
    assert "CM-BA-031" in duplicate.json()["detail"]

    api.client.delete(f"{LICENSEES}/{first['ref']}", headers=api.as_role("analyst"))
    again = make_licensee("CM-BA-031", legal_name="Nouveau Comptoir")
    assert again["ref"] != first["ref"]
    found = api.client.get(LICENSEES, params={"q": "CM-BA-031"}, headers=api.as_role("officer"))
    assert [i["legal_name"] for i in found.json()["items"]] == ["Nouveau Comptoir"]


def test_unknown_ref_is_404(api):
    for path in (f"{LICENSEES}/nope", f"{SUBJECTS}/nope", f"{SUBJECTS}/nope/history"):
        assert api.client.get(path, headers=api.as_role("analyst")).status_code == 404


# -- licence status -----------------------------------------------------------------------


def test_status_changes_are_kept_with_reason_and_who(api, make_licensee):
    ref = make_licensee("CM-BA-040")["ref"]
    assert [
        (s["status"], s["reason"])
        for s in api.client.get(f"{LICENSEES}/{ref}", headers=api.as_role("officer")).json()[
            "status_history"
        ]
    ] == [("active", "registered")]

    suspended = api.client.post(
        f"{LICENSEES}/{ref}/status",
        headers=api.as_role("analyst"),
        json={"status": "suspended", "reason": "contrôle en cours"},
    )
    assert suspended.status_code == 200
    again = api.client.post(
        f"{LICENSEES}/{ref}/status",
        headers=api.as_role("analyst"),
        json={"status": "suspended", "reason": "same again"},
    )
    assert again.status_code == 200
    revoked = api.client.post(
        f"{LICENSEES}/{ref}/status",
        headers=api.as_role("analyst"),
        json={"status": "revoked", "reason": "fraude avérée"},
    )

    body = revoked.json()
    assert body["status"] == "revoked"
    assert body["version"] == 3
    assert [(s["status"], s["reason"], s["changed_by"]) for s in body["status_history"]] == [
        ("active", "registered", "analyst-1"),
        ("suspended", "contrôle en cours", "analyst-1"),
        ("revoked", "fraude avérée", "analyst-1"),
    ]
    assert [v["changes"] for v in history(api, f"{LICENSEES}/{ref}")[1:]] == [
        {"status": ["active", "suspended"]},
        {"status": ["suspended", "revoked"]},
    ]


def test_status_is_not_changed_through_patch(api, make_licensee):
    ref = make_licensee("CM-BA-041")["ref"]
    response = api.client.patch(
        f"{LICENSEES}/{ref}", headers=api.as_role("analyst"), json={"status": "revoked"}
    )
    assert response.status_code == 422
    assert (
        api.client.get(f"{LICENSEES}/{ref}", headers=api.as_role("analyst")).json()["status"]
        == "active"
    )


def test_unknown_status_is_refused(api, make_licensee):
    ref = make_licensee("CM-BA-042")["ref"]
    response = api.client.post(
        f"{LICENSEES}/{ref}/status", headers=api.as_role("analyst"), json={"status": "closed"}
    )
    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["body", "status"]


# -- search, filters, pagination ----------------------------------------------------------


def test_search_ignores_accents_case_and_word_order(api, make_licensee):
    make_licensee("CM-BA-050", legal_name="Comptoir Étoile SARL")
    make_licensee("CM-BA-051", legal_name="Diamants du Lobaye")
    for query in (
        "etoile",
        "ETOILE",
        "Étoile",
        "étoile",
        "  etoile  ",
        "comptoir etoile",
        "sarl ÉTOILE",
        "ÉtOiLe",
    ):
        found = api.client.get(LICENSEES, params={"q": query}, headers=api.as_role("officer"))
        assert found.status_code == 200
        assert [i["licence_number"] for i in found.json()["items"]] == ["CM-BA-050"], query
        assert found.json()["total"] == 1


def test_search_covers_trade_names_persons_and_licence_numbers(api, make_licensee):
    make_licensee(
        "CM-CO-060",
        licence_type="collector",
        legal_name="Société A",
        trade_names=["Éclat de Bertoua"],
        persons=[{"name": "Hélène Ngo Biyong", "role": "beneficial_owner"}],
    )
    make_licensee("CM-CO-061", legal_name="Société B")

    def numbers(q: str) -> list[str]:
        response = api.client.get(LICENSEES, params={"q": q}, headers=api.as_role("officer"))
        return [i["licence_number"] for i in response.json()["items"]]

    assert numbers("eclat bertoua") == ["CM-CO-060"]
    assert numbers("helene biyong") == ["CM-CO-060"]
    assert numbers("cm-co-061") == ["CM-CO-061"]
    assert numbers("société") == ["CM-CO-060", "CM-CO-061"]
    assert numbers("introuvable") == []


def test_search_treats_wildcards_as_text(api, make_licensee):
    make_licensee("CM-BA-070", legal_name="Alpha")
    for q in ("%", "_", "a%a", "\\"):
        found = api.client.get(LICENSEES, params={"q": q}, headers=api.as_role("officer"))
        assert found.json()["total"] == 0, q


def test_subject_search_finds_aliases_and_documents(api, make_subject):
    make_subject(
        names=["Moussa Traoré"],
        aliases=["Le Sénégalais"],
        documents=[{"type": "passport", "number": "ML123456", "country": "ML"}],
    )
    make_subject(names=["Autre Personne"])

    def names(q: str) -> list[list[str]]:
        response = api.client.get(SUBJECTS, params={"q": q}, headers=api.as_role("officer"))
        return [i["names"] for i in response.json()["items"]]

    assert names("senegalais") == [["Moussa Traoré"]]
    assert names("TRAORE") == [["Moussa Traoré"]]
    assert names("ml123456") == [["Moussa Traoré"]]


def test_search_follows_an_update(api, make_licensee):
    ref = make_licensee("CM-BA-080", legal_name="Ancien Nom")["ref"]
    api.client.patch(
        f"{LICENSEES}/{ref}",
        headers=api.as_role("analyst"),
        json={"legal_name": "Nouvelle Raison Sociale"},
    )
    search = {"headers": api.as_role("officer")}
    assert api.client.get(LICENSEES, params={"q": "ancien"}, **search).json()["total"] == 0
    assert api.client.get(LICENSEES, params={"q": "nouvelle"}, **search).json()["total"] == 1


def test_filters(api, make_licensee, make_subject):
    make_licensee("CM-1", licence_type="collector", region="Est")
    make_licensee("CM-2", licence_type="collector", region="Adamaoua")
    make_licensee("CM-3", licence_type="exporter", region="Est")
    ref = make_licensee("CM-4", licence_type="exporter", region="Est")["ref"]
    api.client.post(
        f"{LICENSEES}/{ref}/status", headers=api.as_role("analyst"), json={"status": "suspended"}
    )
    make_subject(names=["A"], risk_level="high", nationality="cf")
    make_subject(names=["B"], risk_level="low", reason_category="fraud")

    def numbers(**params: str) -> list[str]:
        response = api.client.get(LICENSEES, params=params, headers=api.as_role("officer"))
        assert response.status_code == 200, response.text
        return [i["licence_number"] for i in response.json()["items"]]

    assert numbers(licence_type="collector") == ["CM-1", "CM-2"]
    assert numbers(region="Est") == ["CM-1", "CM-3", "CM-4"]
    assert numbers(region="Est", licence_type="exporter") == ["CM-3", "CM-4"]
    assert numbers(status="suspended") == ["CM-4"]
    assert numbers(status="suspended", q="cm-3") == []

    def subjects(**params: str) -> list[str]:
        response = api.client.get(SUBJECTS, params=params, headers=api.as_role("officer"))
        return [i["names"][0] for i in response.json()["items"]]

    assert subjects(risk_level="high") == ["A"]
    assert subjects(reason_category="fraud") == ["B"]
    assert subjects(nationality="CF") == ["A"]

    bad = api.client.get(LICENSEES, params={"status": "nonsense"}, headers=api.as_role("officer"))
    assert bad.status_code == 422


def test_pagination(api, make_licensee):
    for n in range(5):
        make_licensee(f"CM-P-{n}")

    def page(limit: int, offset: int) -> tuple[list[str], int]:
        response = api.client.get(
            LICENSEES, params={"limit": limit, "offset": offset}, headers=api.as_role("officer")
        )
        body = response.json()
        assert (body["limit"], body["offset"]) == (limit, offset)
        return [i["licence_number"] for i in body["items"]], body["total"]

    assert page(2, 0) == (["CM-P-0", "CM-P-1"], 5)
    assert page(2, 2) == (["CM-P-2", "CM-P-3"], 5)
    assert page(2, 4) == (["CM-P-4"], 5)
    assert page(2, 6) == ([], 5)
    for bad in ({"limit": 0}, {"limit": 501}, {"offset": -1}):
        response = api.client.get(LICENSEES, params=bad, headers=api.as_role("officer"))
        assert response.status_code == 422, bad


# -- validation ---------------------------------------------------------------------------


def error_fields(response) -> set[str]:
    return {str(e["loc"][-1]) for e in response.json()["detail"]}


def test_bad_licensee_is_refused_field_by_field_and_nothing_is_written(api, row_counts):
    before = row_counts()
    response = api.client.post(
        LICENSEES,
        headers=api.as_role("analyst"),
        json={
            "licence_number": "CM-X-1",
            "licence_type": "smuggler",
            "legal_name": "x" * 201,
            "issued_on": "2024-02-30",
            "handling": "SECRET",
            "persons": [{"name": "A", "nationality": "Cameroon"}],
            "colour": "blue",
        },
    )
    assert response.status_code == 422
    fields = error_fields(response)
    assert {
        "licence_type",
        "legal_name",
        "issued_on",
        "handling",
        "nationality",
        "colour",
    } <= fields
    assert all(e["msg"] for e in response.json()["detail"])
    assert row_counts() == before


def test_missing_required_fields_are_named(api, row_counts):
    before = row_counts()
    response = api.client.post(SUBJECTS, headers=api.as_role("analyst"), json={"names": []})
    assert response.status_code == 422
    assert {"kind", "names", "reason_category"} <= error_fields(response)
    blank = api.client.post(
        LICENSEES,
        headers=api.as_role("analyst"),
        json={"licence_number": "  ", "licence_type": "collector", "legal_name": "   "},
    )
    assert blank.status_code == 422
    assert {"licence_number", "legal_name"} <= error_fields(blank)
    assert row_counts() == before


def test_bad_update_changes_nothing(api, make_subject, row_counts):
    ref = make_subject()["ref"]
    before = row_counts()
    response = api.client.patch(
        f"{SUBJECTS}/{ref}",
        headers=api.as_role("analyst"),
        json={"risk_level": "extreme", "narrative": "ok"},
    )
    assert response.status_code == 422
    assert error_fields(response) == {"risk_level"}
    assert row_counts() == before
    assert (
        api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("analyst")).json()["narrative"]
        is None
    )


def test_subject_linked_to_unknown_licence_is_refused(api, make_licensee, row_counts):
    make_licensee("CM-BA-090")
    gone = make_licensee("CM-BA-091")["ref"]
    api.client.delete(f"{LICENSEES}/{gone}", headers=api.as_role("analyst"))
    before = row_counts()
    for numbers in (["CM-BA-404"], ["CM-BA-090", "CM-BA-404"], ["CM-BA-091"]):
        response = api.client.post(
            SUBJECTS,
            headers=api.as_role("analyst"),
            json={
                "kind": "organisation",
                "names": ["Front Company"],
                "reason_category": "fraud",
                "linked_licence_numbers": numbers,
            },
        )
        assert response.status_code == 422, numbers
        detail = response.json()["detail"][0]
        assert detail["loc"] == ["body", "linked_licence_numbers"]
        assert numbers[-1] in detail["msg"]
    assert row_counts() == before

    linked = api.client.post(
        SUBJECTS,
        headers=api.as_role("analyst"),
        json={
            "kind": "organisation",
            "names": ["Front Company"],
            "reason_category": "fraud",
            "linked_licence_numbers": ["CM-BA-090"],
        },
    )
    assert linked.status_code == 201
    ref = linked.json()["ref"]
    before = row_counts()
    relinked = api.client.patch(
        f"{SUBJECTS}/{ref}",
        headers=api.as_role("analyst"),
        json={"linked_licence_numbers": ["CM-BA-404"]},
    )
    assert relinked.status_code == 422
    assert row_counts() == before


# -- audited reads ------------------------------------------------------------------------


def test_reading_a_subject_is_audited_with_the_reader(api, make_subject):
    ref = make_subject()["ref"]
    read = api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("officer"))
    assert read.status_code == 200

    entries = api.client.get(
        "/api/v1/audit", params={"action": "subject.read"}, headers=api.as_role("auditor")
    ).json()["items"]
    assert len(entries) == 1
    assert entries[0]["target_id"] == ref
    assert entries[0]["actor"] == "officer-1 (officer)"

    api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("analyst"))
    api.client.get(f"{SUBJECTS}/missing", headers=api.as_role("analyst"))
    entries = api.client.get(
        "/api/v1/audit", params={"action": "subject.read"}, headers=api.as_role("auditor")
    ).json()["items"]
    assert [e["actor"] for e in entries] == ["analyst-1 (analyst)", "officer-1 (officer)"]


# -- partial dates of birth ---------------------------------------------------------------


def test_partial_dates_of_birth_are_accepted(api, make_subject):
    for dob in ("1978", "1978-04", "1978-04-30", "2000-02-29"):
        ref = make_subject(date_of_birth=dob)["ref"]
        read = api.client.get(f"{SUBJECTS}/{ref}", headers=api.as_role("analyst"))
        assert read.json()["date_of_birth"] == dob


def test_impossible_dates_of_birth_are_refused(api, make_licensee, row_counts):
    make_licensee("CM-BA-100")
    before = row_counts()
    for dob in (
        "1978-04-31",
        "1979-02-29",
        "1978-13",
        "1978-00",
        "78",
        "1978-4",
        "1978/04/01",
        "04-1978",
        "1978-04-01T00:00",
    ):
        subject = api.client.post(
            SUBJECTS,
            headers=api.as_role("analyst"),
            json={
                "kind": "person",
                "names": ["X"],
                "reason_category": "fraud",
                "date_of_birth": dob,
            },
        )
        assert subject.status_code == 422, dob
        assert error_fields(subject) == {"date_of_birth"}
        person = api.client.post(
            LICENSEES,
            headers=api.as_role("analyst"),
            json={
                "licence_number": "CM-BA-101",
                "licence_type": "collector",
                "legal_name": "Y",
                "persons": [{"name": "Z", "date_of_birth": dob}],
            },
        )
        assert person.status_code == 422, dob
        assert error_fields(person) == {"date_of_birth"}
    assert row_counts() == before
