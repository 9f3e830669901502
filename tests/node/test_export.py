"""Export to CSV and JSON: CSV re-imports unchanged into a fresh node, JSON carries every
record, paging, deleted records left out, roles, audit, and the command line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from node.app import create_app
from node.bootstrap import init_node
from node.db.models import AuditEntry
from node.runtime import open_node
from node.services import export
from node.services.actors import Actor
from node.services.tokens import TokenService

BOM = b"\xef\xbb\xbf"
META = {"ref", "version", "created_at", "created_by", "updated_at", "updated_by", "status_history"}

LICENSEES_CSV = (
    "licence_number;licence_type;legal_name;trade_names;address;region;issued_on;expires_on;"
    "status;handling;directors;beneficial_owners\n"
    'CF-BA-001;comptoir;Société Minière de Berbérati;=Étoile+|SMB;"+236 72 00 00 00, BP 12";'
    "Mambéré-Kadéï;15/01/2024;14/01/2026;actif;amber;Jean-Baptiste Ngaïkoisset|Odette Yakité;"
    "Marie-Claire Mbuyi\n"
    'CF-CO-002;collecteur;"Comptoir ""La Perle"", Bangui";;;Haute-Kotto;;;suspendu;RED;;\n'
    "CD-EX-003;exporter;Kasaï Gems International SARL;;;Kasaï;2023-06-30;;révoqué;;;@Fiston\n"
)
SUBJECTS_CSV = (
    "kind;names;aliases;date_of_birth;nationality;documents;linked_licence_numbers;"
    "reason_category;risk_level;narrative;source_agency;handling\n"
    "personne;Jean-Pierre Mbéki|J.-P. Mbeki;Le Colonel;1978;cd;passport:OB0123456:CD|carte:12-3;"
    'CF-BA-001|CF-CO-002;contrebande;élevé;"Vu à Kenzou, avec « pierres brutes »;\n'
    '-deux fois en 2024";Douanes Garoua-Boulaï;amber+strict\n'
    "organisation;Sangha Diamond Trading;;;;;;blanchiment;faible;;;\n"
)


def analyst(api: Any) -> dict[str, str]:
    return api.as_role("analyst")


def import_csv(client: TestClient, headers: dict[str, str], kind: str, body: bytes) -> None:
    response = client.post(
        f"/api/v1/imports/{kind}", content=body, headers={**headers, "Content-Type": "text/csv"}
    )
    assert response.status_code == 200, response.text


def records(client: TestClient, headers: dict[str, str], kind: str) -> list[dict[str, Any]]:
    items = client.get(f"/api/v1/{kind}", params={"limit": 500}, headers=headers).json()["items"]
    return sorted(
        ({k: v for k, v in item.items() if k not in META} for item in items),
        key=lambda r: json.dumps(r, sort_keys=True),
    )


@pytest.fixture
def filled(api: Any) -> Any:
    headers = analyst(api)
    import_csv(api.client, headers, "licensees", LICENSEES_CSV.encode())
    import_csv(api.client, headers, "subjects", SUBJECTS_CSV.encode())
    return api


@pytest.fixture
def fresh_node(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """A second, empty node (SQLite) with an analyst token."""
    settings = init_node(
        tmp_path / "other",
        node_id="CF",
        name="Other node",
        url="http://127.0.0.1:8101",
        now=datetime.now(UTC),
    )
    node = open_node(settings, migrate=False)
    try:
        with node.sessions() as session:
            _, secret = TokenService(session, Actor("test", "admin"), node.now()).create(
                name="analyst-2", role="analyst"
            )
            session.commit()
    finally:
        node.close()
    with TestClient(create_app(settings)) as client:
        yield client, {"Authorization": f"Bearer {secret}"}


def test_csv_export_reimports_into_a_fresh_node_unchanged(filled, fresh_node):
    other, other_headers = fresh_node
    exported = {}
    for kind in ("licensees", "subjects"):
        response = filled.client.get(f"/api/v1/exports/{kind}", headers=analyst(filled))
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/csv; charset=utf-8"
        assert response.content.startswith(BOM)
        exported[kind] = response.content
    header = exported["licensees"][len(BOM) :].split(b"\r\n")[0].decode()
    assert header.split(",")[:3] == ["licence_number", "licence_type", "legal_name"]
    assert "'=Étoile+" in exported["licensees"].decode()  # no formula for spreadsheets

    for kind in ("licensees", "subjects"):  # licensees first: subjects link to them
        import_csv(other, other_headers, kind, exported[kind])
        original = records(filled.client, analyst(filled), kind)
        assert records(other, other_headers, kind) == original
    licensees = {r["licence_number"]: r for r in records(other, other_headers, "licensees")}
    assert licensees["CF-BA-001"]["trade_names"] == ["=Étoile+", "SMB"]
    assert licensees["CF-BA-001"]["address"] == "+236 72 00 00 00, BP 12"
    assert licensees["CF-CO-002"]["legal_name"] == 'Comptoir "La Perle", Bangui'
    assert licensees["CD-EX-003"]["persons"][0]["name"] == "@Fiston"
    subjects = records(other, other_headers, "subjects")
    assert any(
        s["narrative"] == "Vu à Kenzou, avec « pierres brutes »;\n-deux fois en 2024"
        for s in subjects
    )


def test_json_export_has_every_record_across_pages(filled, monkeypatch):
    monkeypatch.setattr(export, "PAGE", 2)
    for kind, count in (("licensees", 3), ("subjects", 2)):
        response = filled.client.get(
            f"/api/v1/exports/{kind}", params={"format": "json"}, headers=analyst(filled)
        )
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        assert response.headers["x-record-count"] == str(count)
        document = response.json()
        assert document["kind"] == kind
        assert len(document["items"]) == count
        assert all(item["ref"] and item["version"] == 1 for item in document["items"])
    licensees = {
        i["licence_number"]: i
        for i in filled.client.get(
            "/api/v1/exports/licensees", params={"format": "json"}, headers=analyst(filled)
        ).json()["items"]
    }
    assert licensees["CF-BA-001"]["status_history"][0]["reason"] == "imported"
    assert licensees["CF-BA-001"]["persons"][2] == {
        "role": "beneficial_owner",
        "name": "Marie-Claire Mbuyi",
        "date_of_birth": None,
        "nationality": None,
        "documents": [],
    }
    csv_lines = filled.client.get(
        "/api/v1/exports/licensees", headers=analyst(filled)
    ).content.split(b"\r\n")
    assert len([line for line in csv_lines if line]) == 1 + 3


def test_deleted_records_are_not_exported_and_empty_exports_are_well_formed(api, make_licensee):
    headers = analyst(api)
    empty = api.client.get("/api/v1/exports/subjects", params={"format": "json"}, headers=headers)
    assert empty.json()["items"] == []
    empty_csv = api.client.get("/api/v1/exports/subjects", headers=headers).content
    assert empty_csv.decode("utf-8-sig").splitlines() == [
        ",".join(export.FORMATS["subjects"].column_names)
    ]
    kept = make_licensee("CM-BA-001")
    gone = make_licensee("CM-BA-002")
    api.client.delete(f"/api/v1/licensees/{gone['ref']}", headers=headers)
    items = api.client.get(
        "/api/v1/exports/licensees", params={"format": "json"}, headers=headers
    ).json()["items"]
    assert [i["ref"] for i in items] == [kept["ref"]]


def test_only_analysts_may_export_and_exports_are_audited(filled, db):
    for role in ("officer", "auditor", "admin"):
        response = filled.client.get("/api/v1/exports/subjects", headers=filled.as_role(role))
        assert response.status_code == 403
    assert filled.client.get("/api/v1/exports/subjects").status_code == 401
    assert (
        filled.client.get(
            "/api/v1/exports/subjects", params={"format": "xml"}, headers=analyst(filled)
        ).status_code
        == 422
    )
    filled.client.get(
        "/api/v1/exports/subjects", params={"format": "json"}, headers=analyst(filled)
    )
    with Session(db) as session:
        entries = (
            session.execute(select(AuditEntry).where(AuditEntry.action == "export.started"))
            .scalars()
            .all()
        )
    assert [(e.actor, e.target_kind, e.detail) for e in entries] == [
        (
            "analyst-1 (analyst)",
            "subject",
            {
                "kind": "subject",
                "format": "json",
                "records": 2,
                "clearance": "RED",
                "up_to_id": entries[0].detail["up_to_id"],
            },
        )
    ]


def test_cli_exports_csv_to_a_file_and_json_to_stdout(filled, kpnet, tmp_path):
    data_dir = filled.settings.data_dir
    path = tmp_path / "comptoirs.csv"
    result = kpnet("export", "licensees", "--data-dir", data_dir, "--output", path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == f"3 licensees exported to {path}"
    content = path.read_bytes()
    assert content.startswith(BOM)
    assert (
        content == filled.client.get("/api/v1/exports/licensees", headers=analyst(filled)).content
    )
    assert not list(tmp_path.glob("*.part"))

    stdout = kpnet("export", "subjects", "--data-dir", data_dir, "--format", "json")
    assert stdout.returncode == 0, stdout.stderr
    assert len(json.loads(stdout.stdout)["items"]) == 2
