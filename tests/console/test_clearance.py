"""Need-to-know in the console: an officer's pages show no subject above the account's
clearance, each page showing subjects writes one audit entry naming them, and an admin
sets the clearance on the account pages (SQLite and PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from node.app import create_app
from node.db.models import AuditEntry, User
from node.runtime import open_node
from node.schemas.records import SubjectCreate
from node.services.actors import Actor
from node.services.subjects import SubjectRegistry
from tests.conftest import create_node
from tests.console.conftest import ROLE_USERS, Clock, Console, add_users, visible_text

RED_NARRATIVE = "Source humaine : ne pas diffuser"


@pytest.fixture
def console(tmp_path: Path, database_url: str | None) -> Iterator[Console]:
    settings = create_node(tmp_path / "node", database_url=database_url)
    add_users(settings, ROLE_USERS)
    clock = Clock()
    with TestClient(create_app(settings, clock=clock)) as client:
        yield Console(client, settings, clock)


def in_database(console: Console, work: Any) -> Any:
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            result = work(session, node)
            session.commit()
            return result
    finally:
        node.close()


@pytest.fixture
def subjects(console: Console) -> dict[str, str]:
    """Two subjects named Ndjock, one AMBER and one RED: their refs by level."""

    def make(session: Any, node: Any) -> dict[str, str]:
        registry = SubjectRegistry(session, Actor("setup", "analyst"), node.now())
        return {
            level: registry.create(
                SubjectCreate(
                    kind="person",
                    names=[f"Ndjock {level}"],
                    reason_category="smuggling",
                    handling=level,
                    narrative=RED_NARRATIVE if level == "RED" else "ordinaire",
                )
            ).ref
            for level in ("AMBER", "RED")
        }

    refs: dict[str, str] = in_database(console, make)
    return refs


def entries_after(console: Console, seq: int) -> list[AuditEntry]:
    return list(
        in_database(
            console,
            lambda s, _: list(
                s.execute(select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq))
                .scalars()
                .all()
            ),
        )
    )


def last_seq(console: Console) -> int:
    seq: int = in_database(
        console, lambda s, _: s.execute(select(func.max(AuditEntry.seq))).scalar_one() or 0
    )
    return seq


def test_an_officer_sees_no_red_subject_in_lists_or_pages(console, subjects):
    officer = console.as_user("officer1")
    red = officer.get("/console/subjects?handling=RED")
    assert red.status_code == 200
    assert "Ndjock RED" not in red.text and subjects["RED"] not in red.text
    listed = visible_text(officer.get("/console/subjects?q=ndjock").text)
    assert "Ndjock AMBER" in listed and "Ndjock RED" not in listed
    page = officer.get(f"/console/subjects/{subjects['RED']}")
    assert page.status_code == 404 and RED_NARRATIVE not in page.text
    assert officer.get(f"/console/subjects/{subjects['AMBER']}").status_code == 200

    analyst = console.as_user("analyst1")
    assert "Ndjock RED" in analyst.get("/console/subjects?q=ndjock").text


def test_each_console_page_of_subjects_writes_one_entry_naming_them(console, subjects):
    officer = console.as_user("officer1")
    before = last_seq(console)
    officer.get("/console/subjects?q=ndjock")
    [entry] = entries_after(console, before)
    assert entry.action == "subject.list" and entry.actor == "officer1 (officer)"
    assert entry.detail["subjects"] == [subjects["AMBER"]] and entry.detail["total"] == 1

    before = last_seq(console)
    officer.get(f"/console/subjects/{subjects['AMBER']}")
    [entry] = entries_after(console, before)
    assert (entry.action, entry.target_id) == ("subject.read", subjects["AMBER"])


def test_an_admin_raises_an_officers_clearance_in_the_console(console, subjects):
    officer_id = in_database(
        console,
        lambda s, _: s.execute(select(User.id).where(User.username == "officer1")).scalar_one(),
    )
    admin = console.as_user("admin1")
    assert ">AMBER<" in admin.get("/console/users").text
    bad = admin.post(
        f"/console/users/{officer_id}/clearance",
        {"clearance": "SECRET"},
        token_from=f"/console/users/{officer_id}",
    )
    assert bad.status_code == 422
    changed = admin.post(
        f"/console/users/{officer_id}/clearance",
        {"clearance": "RED"},
        token_from=f"/console/users/{officer_id}",
    )
    assert changed.status_code == 303
    [entry] = [e for e in entries_after(console, 0) if e.action == "user.clearance"]
    assert entry.actor == "admin1 (admin)" and entry.target_id == "officer1"
    assert entry.detail == {"previous": "AMBER", "clearance": "RED"}

    officer = console.as_user("officer1")
    page = officer.get(f"/console/subjects/{subjects['RED']}")
    assert page.status_code == 200 and RED_NARRATIVE in page.text


def test_a_new_account_gets_the_chosen_clearance_or_its_roles(console):
    admin = console.as_user("admin1")
    form = admin.get("/console/users/new", headers={"Accept-Language": "fr"}).text
    assert "Habilitation" in form
    for username, clearance in (("douane.a", "GREEN"), ("douane.b", "")):
        created = admin.post(
            "/console/users",
            {
                "username": username,
                "role": "officer",
                "clearance": clearance,
                "password": "temporary pass 2026",
                "confirm_password": "temporary pass 2026",
            },
        )
        assert created.status_code == 303, created.text
    levels = in_database(
        console,
        lambda s, _: {
            name: level
            for name, level in s.execute(
                select(User.username, User.clearance).where(User.username.like("douane%"))
            )
        },
    )
    assert levels == {"douane.a": "GREEN", "douane.b": "AMBER"}


def test_an_analyst_cannot_mark_a_subject_above_the_accounts_clearance(console):
    analyst_id = in_database(
        console,
        lambda s, _: s.execute(select(User.id).where(User.username == "analyst1")).scalar_one(),
    )
    admin = console.as_user("admin1")
    admin.post(
        f"/console/users/{analyst_id}/clearance",
        {"clearance": "AMBER"},
        token_from=f"/console/users/{analyst_id}",
    )
    analyst = console.as_user("analyst1")
    refused = analyst.post(
        "/console/subjects",
        {
            "kind": "person",
            "names": "Jean Mbarga",
            "reason_category": "fraud",
            "risk_level": "low",
            "handling": "RED",
        },
    )
    assert refused.status_code == 422
    assert "above your clearance" in refused.text
