"""Hostile input at the local API, on both databases: text PostgreSQL cannot store,
integers past 64 bits, a CSV header past the cell limit, formulas in disguise in an
export, and values of the wrong JSON type. Each is refused with 422 (or neutralised),
never a 500, and nothing is written."""

from __future__ import annotations

import csv
import io
import json
from typing import Any
from urllib.parse import quote

import pytest

from tests.node.conftest import licensee_body, subject_body

UNSTORABLE = ["Comptoir\x00Étoile", "Comptoir \ufffe", "\ufdd0", "\U0001ffff"]
HUGE = str(2**63)
PAST_INT = str(2**31)  # ids and versions are 32-bit INTEGER columns on PostgreSQL


def post_json(api: Any, path: str, body: Any, role: str = "analyst") -> Any:
    """Send ``body`` as JSON text; ``json.dumps`` writes a lone surrogate as its escape."""
    return api.client.post(
        path,
        content=json.dumps(body),
        headers={**api.as_role(role), "Content-Type": "application/json"},
    )


def detail_types(response: Any) -> list[str]:
    return [d["type"] for d in response.json()["detail"]]


# -- item 6: U+0000, non-characters, lone surrogates ------------------------------------


@pytest.mark.parametrize("bad", [*UNSTORABLE, "\ud800"])
def test_unstorable_text_in_a_record_is_refused_with_422(shared_api: Any, bad: str) -> None:
    before = shared_api.client.get("/api/v1/licensees", headers=shared_api.as_role("analyst"))
    licensee = post_json(
        shared_api, "/api/v1/licensees", licensee_body("CM-BA-900", legal_name=bad)
    )
    assert licensee.status_code == 422, licensee.text
    subject = post_json(shared_api, "/api/v1/subjects", subject_body(names=["Mbala", bad]))
    assert subject.status_code == 422, subject.text
    nested = post_json(
        shared_api,
        "/api/v1/licensees",
        licensee_body(
            "CM-BA-901",
            persons=[{"name": "Jean", "documents": [{"type": "passport", "number": bad}]}],
        ),
    )
    assert nested.status_code == 422, nested.text
    after = shared_api.client.get("/api/v1/licensees", headers=shared_api.as_role("analyst"))
    assert after.json()["total"] == before.json()["total"]


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_unstorable_text_in_an_alert_or_a_check_is_refused_with_422(
    shared_api: Any, bad: str
) -> None:
    alert = {
        "category": "seizure",
        "severity": "urgent",
        "title": "Saisie",
        "body": bad,
        "subjects": [{"kind": "person", "names": ["Mbala"], "role": bad}],
        "recipients": [],
    }
    assert post_json(shared_api, "/api/v1/alerts", alert).status_code == 422
    check = {"party": {"kind": "person", "names": [bad]}, "purpose": "licence renewal"}
    assert post_json(shared_api, "/api/v1/kyc/checks", check, "officer").status_code == 422


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_unstorable_text_in_a_search_or_a_path_is_refused_with_422(
    shared_api: Any, bad: str
) -> None:
    headers = shared_api.as_role("analyst")
    search = shared_api.client.get("/api/v1/subjects", params={"q": bad}, headers=headers)
    assert search.status_code == 422, search.text
    assert detail_types(search) == ["unstorable_text"]
    audit = shared_api.client.get(
        "/api/v1/audit", params={"who": bad}, headers=shared_api.as_role("auditor")
    )
    assert audit.status_code == 422, audit.text
    path = shared_api.client.get(f"/api/v1/licensees/l-{quote(bad)}", headers=headers)
    assert path.status_code == 422, path.text


@pytest.mark.parametrize("bad", UNSTORABLE)
def test_unstorable_text_in_a_csv_cell_is_a_row_error(shared_api: Any, bad: str) -> None:
    body = f"licence_number,licence_type,legal_name\nCM-BA-950,buying_house,{bad}\n"
    response = shared_api.client.post(
        "/api/v1/imports/licensees",
        content=body.encode("utf-8", "surrogatepass"),
        headers={**shared_api.as_role("analyst"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 422, response.text
    report = response.json()
    assert report["kind"] == "licensees"
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(2, "legal_name")]


# -- item 10: integers past 64 bits, a huge CSV header, formulas in disguise ------------


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/alerts?offset={HUGE}",
        f"/api/v1/licensees?offset={HUGE}",
        f"/api/v1/subjects?offset={HUGE}",
        f"/api/v1/kyc/checks?offset={HUGE}",
        f"/api/v1/disclosures?offset={HUGE}",
        f"/api/v1/alerts/{HUGE}",
        f"/api/v1/disclosures/{HUGE}",
        f"/api/v1/alerts?limit={HUGE}",
        f"/api/v1/alerts/{PAST_INT}",
        f"/api/v1/disclosures/{PAST_INT}",
    ],
)
def test_integers_past_64_bits_in_a_url_are_refused_with_422(shared_api: Any, path: str) -> None:
    response = shared_api.client.get(path, headers=shared_api.as_role("analyst"))
    assert response.status_code == 422, response.text
    assert {d["type"] for d in response.json()["detail"]} <= {"less_than_equal"}


def test_integers_past_64_bits_in_a_write_are_refused_with_422(shared_api: Any) -> None:
    headers = shared_api.as_role("analyst")
    made = post_json(shared_api, "/api/v1/licensees", licensee_body("CM-BA-960")).json()
    ref = made["ref"]
    huge_version = shared_api.client.patch(
        f"/api/v1/licensees/{ref}", json={"version": 2**31}, headers=headers
    )
    assert huge_version.status_code == 422, huge_version.text
    query_version = shared_api.client.delete(
        f"/api/v1/licensees/{ref}", params={"version": PAST_INT}, headers=headers
    )
    assert query_version.status_code == 422, query_version.text
    revoke = shared_api.client.delete(
        f"/api/v1/tokens/{PAST_INT}", headers=shared_api.as_role("admin")
    )
    assert revoke.status_code == 422, revoke.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/licensees/{ref}", {"version": True}),
        ("/api/v1/licensees/{ref}", {"version": "1"}),
        ("/api/v1/licensees/{ref}", {"version": 1.0}),
    ],
)
def test_a_value_of_the_wrong_json_type_is_refused_not_converted(
    shared_api: Any, path: str, body: dict[str, Any]
) -> None:
    headers = shared_api.as_role("analyst")
    made = post_json(shared_api, "/api/v1/licensees", licensee_body(f"CM-WT-{id(body)}")).json()
    response = shared_api.client.patch(
        path.format(ref=made["ref"]), json=body | {"legal_name": "Changé"}, headers=headers
    )
    assert response.status_code == 422, response.text
    assert detail_types(response) == ["int_type"]
    unchanged = shared_api.client.get(f"/api/v1/licensees/{made['ref']}", headers=headers).json()
    assert unchanged["legal_name"] == "Comptoir Étoile SARL"


def test_wrong_json_types_in_tokens_and_checks_are_refused(shared_api: Any) -> None:
    token = post_json(
        shared_api,
        "/api/v1/tokens",
        {"name": "x", "role": "officer", "expires_days": True},
        "admin",
    )
    assert token.status_code == 422, token.text
    check = {
        "party": {"kind": "person", "names": ["Mbala"]},
        "purpose": "licence renewal",
        "max_results": "5",
    }
    assert post_json(shared_api, "/api/v1/kyc/checks", check, "officer").status_code == 422


def test_a_csv_header_past_the_cell_limit_is_a_row_error_not_a_500(shared_api: Any) -> None:
    body = "licence_number,licence_type,legal_name," + "x" * (128 * 1024 + 1) + "\n"
    response = shared_api.client.post(
        "/api/v1/imports/licensees",
        content=body.encode(),
        headers={**shared_api.as_role("analyst"), "Content-Type": "text/csv"},
    )
    assert response.status_code == 422, response.text
    report = response.json()
    assert report["kind"] == "licensees"
    assert [(e["row"], e["column"]) for e in report["errors"]] == [(1, None)]
    assert "longer than 131072 characters" in report["errors"][0]["message"]


# Fullwidth = + - @, small equals, and tab or CR before a formula.
DISGUISED = ["\uff1dHYPERLINK(1)", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "\t=1", "\r=1", "\ufe661"]


def test_formulas_in_disguise_are_neutralised_in_exports_and_reimport_unchanged(
    shared_api: Any,
) -> None:
    headers = shared_api.as_role("analyst")
    numbers = {}
    for i, lead in enumerate(DISGUISED):
        number = f"CM-FX-{i:03d}"
        made = post_json(
            shared_api,
            "/api/v1/licensees",
            licensee_body(number, legal_name="Comptoir", address=lead + " Bertoua"),
        )
        assert made.status_code == 201, made.text
        numbers[number] = made.json()["address"]
    export = shared_api.client.get("/api/v1/exports/licensees", headers=headers)
    rows = list(csv.DictReader(io.StringIO(export.content.decode("utf-8-sig"))))
    cells = {r["licence_number"]: r["address"] for r in rows if r["licence_number"] in numbers}
    assert len(cells) == len(DISGUISED)
    for number, cell in cells.items():
        assert cell.startswith("'"), cell  # a spreadsheet shows it as text
        assert cell[1:] == numbers[number]
