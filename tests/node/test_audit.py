"""The audit log: what is recorded, how it is searched, and that any edit of the stored
chain is caught by ``GET /api/v1/audit/verify`` and ``kpnet audit verify``."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from node.db.models import AuditEntry
from node.services.audit import AuditEvent, entry_hash

# -- tampering with the stored chain ------------------------------------------------------


def entries(db: Engine) -> list[AuditEntry]:
    with db.connect() as connection:
        return list(connection.execute(select(AuditEntry).order_by(AuditEntry.seq)))


def set_fields(db: Engine, seq: int, **values: object) -> None:
    with db.begin() as connection:
        connection.execute(update(AuditEntry).where(AuditEntry.seq == seq).values(**values))


def edit_detail(db: Engine, middle: int, last: int) -> int:
    set_fields(db, middle, detail={"version": 1, "fields": ["nothing to see"]})
    return middle


def edit_actor(db: Engine, middle: int, last: int) -> int:
    set_fields(db, middle, actor="someone else (admin)")
    return middle


def edit_time(db: Engine, middle: int, last: int) -> int:
    row = entries(db)[middle - 1]
    set_fields(db, middle, at=row.at - timedelta(days=3))
    return middle


def delete_middle(db: Engine, middle: int, last: int) -> int:
    with db.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == middle))
    return middle


def delete_last(db: Engine, middle: int, last: int) -> int:
    with db.begin() as connection:
        connection.execute(delete(AuditEntry).where(AuditEntry.seq == last))
    return last


def swap_seq(db: Engine, middle: int, last: int) -> int:
    with db.begin() as connection:
        moves = ((middle, -1), (middle + 1, middle), (-1, middle + 1))
        for old, new in moves:
            connection.execute(update(AuditEntry).where(AuditEntry.seq == old).values(seq=new))
    return middle


def swap_contents(db: Engine, middle: int, last: int) -> int:
    rows = {row.seq: row for row in entries(db)}
    for here, there in ((middle, middle + 1), (middle + 1, middle)):
        other = rows[there]
        set_fields(
            db,
            here,
            actor=other.actor,
            action=other.action,
            at=other.at,
            target_kind=other.target_kind,
            target_id=other.target_id,
            detail=other.detail,
        )
    return middle


def edit_and_rehash(db: Engine, middle: int, last: int) -> int:
    """A careful forger recomputes the edited entry's own hash; the next link breaks."""
    row = entries(db)[middle - 1]
    event = AuditEvent(
        "someone else (admin)", row.action, row.target_kind, row.target_id, row.detail
    )
    set_fields(
        db, middle, actor=event.actor, hash=entry_hash(row.prev_hash, row.seq, row.at, event)
    )
    return middle + 1


TAMPERING = [
    edit_detail,
    edit_actor,
    edit_time,
    delete_middle,
    delete_last,
    swap_seq,
    swap_contents,
    edit_and_rehash,
]


@pytest.fixture(scope="module")
def busy_log(shared_api) -> int:
    """The shared node's log with entries of every kind; returns how many."""
    api = shared_api
    analyst = api.as_role("analyst")
    ref = api.client.post(
        "/api/v1/licensees",
        headers=analyst,
        json={
            "licence_number": "CM-AU-001",
            "licence_type": "exporter",
            "legal_name": "Bangui Export",
        },
    ).json()["ref"]
    api.client.patch(f"/api/v1/licensees/{ref}", headers=analyst, json={"region": "Est"})
    subject = api.client.post(
        "/api/v1/subjects",
        headers=analyst,
        json={"kind": "person", "names": ["Awa Diallo"], "reason_category": "fraud"},
    ).json()["ref"]
    api.client.get(f"/api/v1/subjects/{subject}", headers=api.as_role("officer"))
    api.client.delete(f"/api/v1/licensees/{ref}", headers=analyst)
    verified = api.client.get("/api/v1/audit/verify", headers=api.as_role("auditor")).json()
    assert verified["ok"] is True
    assert verified["entries"] >= 8
    return verified["entries"]


@pytest.fixture
def log_copy(shared_api, busy_log) -> Iterator[Engine]:
    """The shared node's log, put back as it was after the test has tampered with it."""
    db = shared_api.db
    with db.connect() as connection:
        rows = [
            dict(row._mapping)
            for row in connection.execute(select(AuditEntry.__table__).order_by(AuditEntry.seq))
        ]
    yield db
    with db.begin() as connection:
        connection.execute(delete(AuditEntry))
        connection.execute(insert(AuditEntry), rows)
    verified = shared_api.client.get(
        "/api/v1/audit/verify", headers=shared_api.as_role("auditor")
    ).json()
    assert verified == {"ok": True, "entries": busy_log, "first_broken_seq": None, "problem": None}


def test_intact_log_verifies_in_api_and_cli(shared_api, busy_log, kpnet):
    api = shared_api
    verified = api.client.get("/api/v1/audit/verify", headers=api.as_role("auditor")).json()
    assert verified == {"ok": True, "entries": busy_log, "first_broken_seq": None, "problem": None}

    result = kpnet("audit", "verify", "--data-dir", api.settings.data_dir)
    assert result.returncode == 0, result.stderr
    assert f"{busy_log} entries verified" in result.stdout


@pytest.mark.parametrize("tamper", TAMPERING, ids=lambda f: f.__name__)
def test_tampering_is_caught_at_the_first_broken_entry(
    shared_api, busy_log, log_copy, kpnet, tamper
):
    api = shared_api
    broken = tamper(log_copy, busy_log // 2, busy_log)

    verified = api.client.get("/api/v1/audit/verify", headers=api.as_role("auditor")).json()
    assert verified["ok"] is False
    assert verified["first_broken_seq"] == broken
    assert verified["entries"] == broken - 1

    result = kpnet("audit", "verify", "--data-dir", api.settings.data_dir)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "BROKEN" in message
    assert re.search(rf"\bentry {broken}\b", message), message
    # The first number the message names is the broken entry.
    assert re.search(r"\d+", message).group() == str(broken), message


# -- what is recorded ---------------------------------------------------------------------


def audit(api, **params: object) -> list[dict]:
    response = api.client.get("/api/v1/audit", params=params, headers=api.as_role("auditor"))
    assert response.status_code == 200, response.text
    return response.json()["items"]


def test_record_writes_are_audited_with_actor_target_and_fields(api, make_licensee):
    ref = make_licensee("CM-AU-010")["ref"]
    analyst = api.as_role("analyst")
    api.client.patch(f"/api/v1/licensees/{ref}", headers=analyst, json={"region": "Est"})
    api.client.post(
        f"/api/v1/licensees/{ref}/status", headers=analyst, json={"status": "suspended"}
    )
    api.client.delete(f"/api/v1/licensees/{ref}", headers=analyst)
    subject = api.client.post(
        "/api/v1/subjects",
        headers=analyst,
        json={"kind": "person", "names": ["Paul Ndongo"], "reason_category": "fraud"},
    ).json()["ref"]
    api.client.patch(f"/api/v1/subjects/{subject}", headers=analyst, json={"risk_level": "high"})
    api.client.delete(f"/api/v1/subjects/{subject}", headers=analyst)

    written = [
        (e["action"], e["target_id"], e["detail"])
        for e in reversed(audit(api))
        if e["action"].startswith(("licensee.", "subject."))
    ]
    assert written == [
        (
            "licensee.create",
            ref,
            {
                "version": 1,
                "fields": [
                    "address",
                    "expires_on",
                    "handling",
                    "issued_on",
                    "legal_name",
                    "licence_number",
                    "licence_type",
                    "persons",
                    "region",
                    "status",
                    "trade_names",
                ],
            },
        ),
        ("licensee.update", ref, {"version": 2, "fields": ["region"]}),
        ("licensee.update", ref, {"version": 3, "fields": ["status"]}),
        ("licensee.delete", ref, {"version": 4, "fields": []}),
        (
            "subject.create",
            subject,
            {
                "version": 1,
                "fields": [
                    "aliases",
                    "date_of_birth",
                    "documents",
                    "handling",
                    "kind",
                    "linked_licence_numbers",
                    "names",
                    "narrative",
                    "nationality",
                    "reason_category",
                    "risk_level",
                    "source_agency",
                ],
            },
        ),
        ("subject.update", subject, {"version": 2, "fields": ["risk_level"]}),
        ("subject.delete", subject, {"version": 3, "fields": []}),
    ]
    assert {e["actor"] for e in audit(api, action="licensee.")} == {"analyst-1 (analyst)"}


def test_token_creation_and_revocation_are_audited_without_the_secret(api):
    created = api.client.post(
        "/api/v1/tokens",
        headers=api.as_role("admin"),
        json={"name": "poste frontière Kentzou", "role": "officer", "expires_days": 90},
    )
    token_id = created.json()["id"]
    api.client.delete(f"/api/v1/tokens/{token_id}", headers=api.as_role("admin"))

    entries = audit(api, target_id=str(token_id))
    assert [(e["action"], e["actor"]) for e in entries] == [
        ("token.revoke", "admin-1 (admin)"),
        ("token.create", "admin-1 (admin)"),
    ]
    assert entries[1]["detail"] == {
        "name": "poste frontière Kentzou",
        "role": "officer",
        "clearance": "AMBER",
        "expires_days": 90,
    }
    everything = api.client.get(
        "/api/v1/audit", params={"limit": 1000}, headers=api.as_role("auditor")
    ).text
    assert created.json()["token"] not in everything
    assert all(secret not in everything for secret in api.tokens.values())


def test_refused_writes_leave_no_audit_entry(api, make_licensee):
    make_licensee("CM-AU-020")
    before = len(audit(api, limit=1000))
    analyst = api.as_role("analyst")
    api.client.post(
        "/api/v1/licensees",
        headers=analyst,
        json={"licence_number": "CM-AU-020", "licence_type": "collector", "legal_name": "Dup"},
    )
    api.client.post(
        "/api/v1/subjects",
        headers=analyst,
        json={
            "kind": "person",
            "names": ["X"],
            "reason_category": "fraud",
            "linked_licence_numbers": ["NOPE"],
        },
    )
    api.client.post(
        "/api/v1/licensees",
        headers=api.as_role("officer"),
        json={"licence_number": "CM-AU-021", "licence_type": "collector", "legal_name": "Denied"},
    )
    assert len(audit(api, limit=1000)) == before


# -- searching the log --------------------------------------------------------------------


@pytest.fixture
def two_writers(api, make_licensee, make_subject) -> dict[str, str]:
    mbida = api.client.post(
        "/api/v1/tokens",
        headers=api.as_role("admin"),
        json={"name": "analyste Mbida", "role": "analyst"},
    ).json()["token"]
    licensee = make_licensee("CM-AU-030")["ref"]
    subject = api.client.post(
        "/api/v1/subjects",
        headers={"Authorization": f"Bearer {mbida}"},
        json={"kind": "person", "names": ["Awa Diallo"], "reason_category": "smuggling"},
    ).json()["ref"]
    make_subject()
    return {"licensee": licensee, "subject": subject}


def test_audit_filters_by_action_prefix_or_exact_action(api, two_writers):
    assert {e["action"] for e in audit(api, action="subject.")} == {"subject.create"}
    assert len(audit(api, action="subject.create")) == 2
    assert {e["action"] for e in audit(api, action="token.")} == {"token.create"}
    assert {e["action"] for e in audit(api, action="licensee.create")} == {"licensee.create"}
    # Without a final dot the action must match exactly.
    assert audit(api, action="subject") == []
    assert audit(api, action="subject.cre") == []


def test_audit_filters_by_actor_and_target(api, two_writers):
    by_mbida = audit(api, who="Mbida")
    assert [(e["action"], e["target_id"]) for e in by_mbida] == [
        ("subject.create", two_writers["subject"])
    ]
    assert {e["actor"] for e in audit(api, who="analyst-1")} == {"analyst-1 (analyst)"}
    assert audit(api, who="%") == []  # a wildcard is a character, not "anyone"
    assert [e["action"] for e in audit(api, action="subject.", who="analyst-1")] == [
        "subject.create"
    ]
    assert [e["action"] for e in audit(api, target_id=two_writers["licensee"])] == [
        "licensee.create"
    ]


def test_audit_is_newest_first_and_paginated(api, two_writers):
    everything = api.client.get("/api/v1/audit", headers=api.as_role("auditor")).json()
    seqs = [e["seq"] for e in everything["items"]]
    assert seqs == sorted(seqs, reverse=True)
    assert everything["total"] == len(seqs)
    page = api.client.get(
        "/api/v1/audit", params={"limit": 2, "offset": 1}, headers=api.as_role("auditor")
    ).json()
    assert [e["seq"] for e in page["items"]] == seqs[1:3]
    assert page["total"] == everything["total"]


def test_audit_filters_by_time_with_or_without_a_zone(api, two_writers):
    everything = audit(api)
    newest = everything[0]["at"].removesuffix("Z")
    assert audit(api, since="2000-01-01T00:00:00") == everything
    assert audit(api, since="2000-01-01T00:00:00+00:00") == everything
    assert audit(api, until="2000-01-01") == []
    assert [e["seq"] for e in audit(api, since=newest)] == [everything[0]["seq"]]
    assert len(audit(api, until=newest)) == len(everything) - 1
