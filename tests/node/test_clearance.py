"""Need-to-know within the node: each token reads only up to its clearance, and every
response carrying subjects names them in one audit entry.

The attack: an officer (clearance AMBER by default) lists, searches, reads the history
of and exports RED subjects, which the single audited read alone used to guard.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from node.db.models import AuditEntry, Subject

RED_NARRATIVE = "Informateur protégé : ne pas diffuser"
RED_PASSPORT = "CM9988776"


def audit_entries(db: Engine, after: int = 0) -> list[AuditEntry]:
    with Session(db) as session:
        return list(
            session.execute(
                select(AuditEntry).where(AuditEntry.seq > after).order_by(AuditEntry.seq)
            ).scalars()
        )


def last_seq(db: Engine) -> int:
    with Session(db) as session:
        return session.execute(select(func.max(AuditEntry.seq))).scalar_one() or 0


def token_id(api: Any, name: str) -> int:
    listed = api.client.get("/api/v1/tokens", headers=api.as_role("admin")).json()
    return next(t["id"] for t in listed if t["name"] == name)


def new_token(api: Any, role: str, **extra: Any) -> tuple[dict[str, Any], dict[str, str]]:
    created = api.client.post(
        "/api/v1/tokens",
        headers=api.as_role("admin"),
        json={"name": f"{role}-{len(extra)}", "role": role, **extra},
    )
    assert created.status_code == 201, created.text
    return created.json(), {"Authorization": f"Bearer {created.json()['token']}"}


@pytest.fixture
def marked(api: Any, make_subject: Any) -> dict[str, dict[str, Any]]:
    """One subject per TLP level, all named Mbala (so one search finds them all)."""
    made = {}
    for level in ("CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"):
        made[level] = make_subject(
            names=[f"Mbala {level}"],
            handling=level,
            narrative=RED_NARRATIVE if level == "RED" else "dossier ordinaire",
            documents=[{"type": "passport", "number": RED_PASSPORT}] if level == "RED" else [],
        )
    return made


def test_tokens_get_their_role_default_clearance(api):
    listed = api.client.get("/api/v1/tokens", headers=api.as_role("admin")).json()
    assert {t["role"]: t["clearance"] for t in listed} == {
        "admin": "CLEAR",
        "analyst": "RED",
        "officer": "AMBER",
        "auditor": "CLEAR",
    }


def test_officer_listing_red_sees_none_and_counts_none(api, marked):
    officer = api.as_role("officer")
    red = api.client.get("/api/v1/subjects", params={"handling": "RED"}, headers=officer)
    assert red.status_code == 200
    assert red.json()["items"] == [] and red.json()["total"] == 0

    everything = api.client.get("/api/v1/subjects", headers=officer).json()
    assert everything["total"] == 3
    assert {s["handling"] for s in everything["items"]} == {"CLEAR", "GREEN", "AMBER"}
    assert RED_NARRATIVE not in json.dumps(everything)

    found = api.client.get("/api/v1/subjects", params={"q": "mbala"}, headers=officer).json()
    assert found["total"] == 3
    by_passport = api.client.get("/api/v1/subjects", params={"q": RED_PASSPORT}, headers=officer)
    assert by_passport.json() == {"items": [], "total": 0, "limit": 50, "offset": 0}

    analyst = api.client.get("/api/v1/subjects", headers=api.as_role("analyst")).json()
    assert analyst["total"] == 5


def test_officer_reading_a_red_subject_is_answered_as_if_it_did_not_exist(api, marked):
    officer = api.as_role("officer")
    ref = marked["RED"]["ref"]
    absent = api.client.get(
        "/api/v1/subjects/00000000-0000-0000-0000-000000000000", headers=officer
    )
    for path in (f"/api/v1/subjects/{ref}", f"/api/v1/subjects/{ref}/history"):
        response = api.client.get(path, headers=officer)
        assert response.status_code == 404, path
        assert response.json()["detail"] == absent.json()["detail"].replace(
            "00000000-0000-0000-0000-000000000000", ref
        )
    assert (
        RED_NARRATIVE not in api.client.get(f"/api/v1/subjects/{ref}/history", headers=officer).text
    )
    amber = marked["AMBER"]["ref"]
    assert api.client.get(f"/api/v1/subjects/{amber}", headers=officer).status_code == 200
    assert api.client.get(f"/api/v1/subjects/{amber}/history", headers=officer).status_code == 200


def test_admin_raising_an_officer_to_red_shows_red_at_once(api, db, marked):
    officer, admin = api.as_role("officer"), api.as_role("admin")
    ref = marked["RED"]["ref"]
    assert api.client.get(f"/api/v1/subjects/{ref}", headers=officer).status_code == 404

    changed = api.client.patch(
        f"/api/v1/tokens/{token_id(api, 'officer-1')}", json={"clearance": "RED"}, headers=admin
    )
    assert changed.status_code == 200 and changed.json()["clearance"] == "RED"

    read = api.client.get(f"/api/v1/subjects/{ref}", headers=officer)
    assert read.status_code == 200 and read.json()["narrative"] == RED_NARRATIVE
    assert api.client.get("/api/v1/subjects", headers=officer).json()["total"] == 5
    change = next(e for e in audit_entries(db) if e.action == "token.clearance")
    assert change.detail == {"name": "officer-1", "previous": "AMBER", "clearance": "RED"}

    lowered = api.client.patch(
        f"/api/v1/tokens/{token_id(api, 'officer-1')}", json={"clearance": "GREEN"}, headers=admin
    )
    assert lowered.status_code == 200
    assert api.client.get("/api/v1/subjects", headers=officer).json()["total"] == 2


def test_clearance_is_set_at_creation_and_checked(api):
    created, headers = new_token(api, "officer", clearance="GREEN")
    assert created["clearance"] == "GREEN"
    refused = api.client.post(
        "/api/v1/tokens",
        headers=api.as_role("admin"),
        json={"name": "x", "role": "officer", "clearance": "TOP-SECRET"},
    )
    assert refused.status_code == 422
    wrong = api.client.patch(
        f"/api/v1/tokens/{created['id']}", json={"clearance": "red"}, headers=api.as_role("admin")
    )
    assert wrong.status_code == 422
    missing = api.client.patch(
        "/api/v1/tokens/999999", json={"clearance": "RED"}, headers=api.as_role("admin")
    )
    assert missing.status_code == 404
    by_officer = api.client.patch(
        f"/api/v1/tokens/{created['id']}", json={"clearance": "RED"}, headers=headers
    )
    assert by_officer.status_code == 403


def test_an_analyst_cannot_mark_a_record_above_its_clearance(api, marked):
    _, analyst = new_token(api, "analyst", clearance="AMBER")
    body = {"kind": "person", "names": ["Jean Eyebe"], "reason_category": "fraud"}
    above = api.client.post("/api/v1/subjects", json={**body, "handling": "RED"}, headers=analyst)
    assert above.status_code == 422 and "clearance" in above.text
    made = api.client.post("/api/v1/subjects", json={**body, "handling": "AMBER"}, headers=analyst)
    assert made.status_code == 201
    raised = api.client.patch(
        f"/api/v1/subjects/{made.json()['ref']}", json={"handling": "RED"}, headers=analyst
    )
    assert raised.status_code == 422
    red = marked["RED"]["ref"]
    for method in ("PATCH", "DELETE"):
        hidden = api.client.request(
            method, f"/api/v1/subjects/{red}", json={"risk_level": "low"}, headers=analyst
        )
        assert hidden.status_code == 404, method


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_an_export_holds_only_what_the_clearance_allows_and_says_so(api, db, marked, fmt):
    _, analyst = new_token(api, "analyst", clearance="AMBER")
    before = last_seq(db)
    response = api.client.get("/api/v1/exports/subjects", params={"format": fmt}, headers=analyst)
    assert response.status_code == 200
    assert response.headers["x-record-count"] == "3"
    assert RED_NARRATIVE not in response.text and RED_PASSPORT not in response.text
    if fmt == "json":
        names = [s["names"][0] for s in response.json()["items"]]
    else:
        names = [
            row["names"] for row in csv.DictReader(io.StringIO(response.text.lstrip("\ufeff")))
        ]
    assert sorted(names) == ["Mbala AMBER", "Mbala CLEAR", "Mbala GREEN"]
    [entry] = audit_entries(db, before)
    assert entry.action == "export.started"
    assert entry.detail["clearance"] == "AMBER" and entry.detail["records"] == 3


def test_each_list_search_and_history_writes_one_entry_naming_its_subjects(api, db, marked):
    officer = api.as_role("officer")
    before = last_seq(db)
    page = api.client.get("/api/v1/subjects", params={"limit": 2}, headers=officer).json()
    [entry] = audit_entries(db, before)
    assert entry.action == "subject.list" and entry.actor == "officer-1 (officer)"
    assert entry.detail["subjects"] == [s["ref"] for s in page["items"]]
    assert entry.detail["total"] == 3 and entry.detail["clearance"] == "AMBER"

    before = last_seq(db)
    api.client.get("/api/v1/subjects", params={"q": "mbala green"}, headers=officer)
    [entry] = audit_entries(db, before)
    assert entry.detail["subjects"] == [marked["GREEN"]["ref"]]

    before = last_seq(db)
    api.client.get("/api/v1/subjects", params={"handling": "RED"}, headers=officer)
    [entry] = audit_entries(db, before)
    assert entry.action == "subject.list" and entry.detail["subjects"] == []

    before = last_seq(db)
    amber = marked["AMBER"]["ref"]
    api.client.get(f"/api/v1/subjects/{amber}/history", headers=officer)
    [entry] = audit_entries(db, before)
    assert entry.action == "subject.history" and entry.detail["subjects"] == [amber]


def test_a_kyc_check_shows_no_hit_above_the_readers_clearance(api, db, marked):
    body = {"party": {"kind": "person", "names": ["Mbala RED"]}, "purpose": "Parcel release"}
    officer_check = api.client.post("/api/v1/kyc/checks", json=body, headers=api.as_role("officer"))
    assert officer_check.status_code == 201
    assert marked["RED"]["ref"] not in officer_check.text
    assert {h["handling"] for h in officer_check.json()["local"]} <= {"CLEAR", "GREEN", "AMBER"}

    analyst_check = api.client.post(
        "/api/v1/kyc/checks", json=body, headers=api.as_role("analyst")
    ).json()
    assert marked["RED"]["ref"] in [h["reference"] for h in analyst_check["local"]]
    before = last_seq(db)
    reread = api.client.get(
        f"/api/v1/kyc/checks/{analyst_check['id']}", headers=api.as_role("officer")
    )
    assert reread.status_code == 200 and marked["RED"]["ref"] not in reread.text
    [entry] = audit_entries(db, before)
    assert entry.action == "kyc.read" and entry.detail["check"] == analyst_check["id"]
    assert entry.detail["subjects"] == [
        h["reference"] for h in reread.json()["local"] if h["kind"] == "subject"
    ]
    assert entry.detail["subjects"] and entry.detail["clearance"] == "AMBER"


def test_inbound_and_outbound_disclosures_above_clearance_are_not_shown(api, db, marked):
    from datetime import UTC, datetime

    from node.db.models import Disclosure

    def disclosure(level: str, **fields: Any) -> Disclosure:
        return Disclosure(
            request_uuid=str(uuid.uuid4()),
            peer="CF",
            reference=f"ref-{level}",
            justification="Parcel of 312 stones seized at Douala",
            requested_by="CF (officer)",
            requested_at=datetime.now(UTC),
            status="pending",
            **fields,
        )

    with Session(db) as session:
        subject_ids = {
            level: session.execute(
                select(Subject.id).where(Subject.ref == marked[level]["ref"])
            ).scalar_one()
            for level in ("AMBER", "RED")
        }
        rows = [
            disclosure(
                level, direction="inbound", record_kind="subject", record_id=subject_ids[level]
            )
            for level in ("AMBER", "RED")
        ] + [
            Disclosure(
                request_uuid=str(uuid.uuid4()),
                direction="outbound",
                peer="CF",
                reference="their-red-ref",
                justification="Routine check",
                requested_by="officer-1",
                requested_at=datetime.now(UTC),
                status="granted",
                details={"narrative": RED_NARRATIVE},
                handling="RED",
            )
        ]
        session.add_all(rows)
        session.commit()
        ids = {row.reference: row.id for row in rows}

    officer = api.as_role("officer")
    before = last_seq(db)
    listed = api.client.get("/api/v1/disclosures", headers=officer)
    assert listed.status_code == 200
    assert [d["reference"] for d in listed.json()] == ["ref-AMBER"]
    assert RED_NARRATIVE not in listed.text
    [entry] = audit_entries(db, before)
    assert entry.action == "disclosure.list"
    assert entry.detail["subjects"] == [marked["AMBER"]["ref"]]
    for hidden in ("ref-RED", "their-red-ref"):
        response = api.client.get(f"/api/v1/disclosures/{ids[hidden]}", headers=officer)
        assert response.status_code == 404, hidden
    decided = api.client.post(
        f"/api/v1/disclosures/{ids['ref-RED']}/decision",
        json={"decision": "deny", "reason": "no"},
        headers=new_token(api, "analyst", clearance="AMBER")[1],
    )
    assert decided.status_code == 404

    analyst = api.client.get("/api/v1/disclosures", headers=api.as_role("analyst")).json()
    assert sorted(d["reference"] for d in analyst) == ["ref-AMBER", "ref-RED", "their-red-ref"]
    before = last_seq(db)
    one = api.client.get(f"/api/v1/disclosures/{ids['ref-RED']}", headers=api.as_role("analyst"))
    assert one.json()["record"]["narrative"] == RED_NARRATIVE
    [entry] = audit_entries(db, before)
    assert entry.action == "disclosure.read" and entry.detail["subjects"] == [marked["RED"]["ref"]]


def test_alerts_above_clearance_are_not_listed_nor_read(api):
    analyst, officer = api.as_role("analyst"), api.as_role("officer")
    made = {}
    for level in ("AMBER", "RED"):
        created = api.client.post(
            "/api/v1/alerts",
            json={
                "category": "seizure",
                "severity": "urgent",
                "title": f"Saisie {level}",
                "body": RED_NARRATIVE if level == "RED" else "saisie ordinaire",
                "handling": level,
            },
            headers=analyst,
        )
        assert created.status_code == 201, created.text
        made[level] = created.json()["id"]
    listed = api.client.get("/api/v1/alerts", headers=officer)
    assert [a["id"] for a in listed.json()] == [made["AMBER"]]
    assert api.client.get(f"/api/v1/alerts/{made['RED']}", headers=officer).status_code == 404
    assert len(api.client.get("/api/v1/alerts", headers=analyst).json()) == 2
    _, amber_analyst = new_token(api, "analyst", clearance="AMBER")
    above = api.client.post(
        "/api/v1/alerts",
        json={
            "category": "seizure",
            "severity": "info",
            "title": "t",
            "body": "b",
            "handling": "RED",
        },
        headers=amber_analyst,
    )
    assert above.status_code == 422


def test_kpnet_sets_the_clearance_of_tokens_and_users(api, marked, kpnet, user_mistake, tmp_path):
    data_dir = api.settings.data_dir
    created = kpnet(
        "token", "create", "--data-dir", data_dir, "--role", "officer", "--name", "poste Kentzou",
        "--clearance", "GREEN",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "clearance GREEN" in created.stderr
    headers = {"Authorization": f"Bearer {created.stdout.strip()}"}
    listed = api.client.get("/api/v1/subjects", headers=headers).json()
    assert {s["handling"] for s in listed["items"]} == {"CLEAR", "GREEN"}

    number = created.stderr.split()[1]
    raised = kpnet("token", "clearance", "--data-dir", data_dir, number, "RED")
    assert raised.returncode == 0, raised.stderr
    assert api.client.get("/api/v1/subjects", headers=headers).json()["total"] == 5
    assert (
        f"{number}\tofficer\tRED\tposte Kentzou"
        in kpnet("token", "list", "--data-dir", data_dir).stdout
    )

    message = user_mistake(kpnet("token", "clearance", "--data-dir", data_dir, number, "SECRET"))
    assert "clearance" in message and "AMBER+STRICT" in message

    password = tmp_path / "password"
    password.write_text("a long pass phrase 2026\n")
    made = kpnet(
        "user", "create", "--data-dir", data_dir, "amina", "--role", "officer",
        "--password-file", password, "--clearance", "GREEN",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "reading up to TLP:GREEN" in made.stdout
    assert kpnet("user", "clearance", "--data-dir", data_dir, "amina", "RED").returncode == 0
    users = kpnet("user", "list", "--data-dir", data_dir).stdout
    assert "amina\tofficer\tactive\tRED" in users
