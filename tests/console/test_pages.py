"""Console pages over the services: records with validation next to the fields, CSV
import report, alert compose with the sharing-agreement preview, peers, audit, weight."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from node.config import load_settings
from node.runtime import open_node
from node.schemas.agreements import SharingAgreement
from node.services.actors import Actor
from node.services.endpoint_policy import EndpointPolicy
from node.services.peers import PeerRegistry
from protocol import ALERT_CATEGORIES
from tests.conftest import create_node

MAX_PAGE_BYTES = 300 * 1024


def field_error(html: str, name: str) -> str:
    match = re.search(rf'<p class="field-error" id="{name}-error">([^<]*)</p>', html)
    assert match, f"no error shown for {name}"
    return match.group(1)


def test_licensee_form_shows_errors_by_field_then_saves_with_history(shared_console):
    console = shared_console.as_user("analyst1")
    bad = console.post(
        "/console/licensees",
        {
            "licence_number": "",
            "licence_type": "buying_house",
            "legal_name": "",
            "issued_on": "31/02/2026",
            "handling": "GREEN",
            "status": "active",
        },
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "licence_number") == "Required."
    assert field_error(bad.text, "legal_name") == "Required."
    assert field_error(bad.text, "issued_on") == "Enter a date as YYYY-MM-DD."
    assert 'aria-invalid="true"' in bad.text and 'aria-describedby="legal_name-error"' in bad.text

    created = console.post(
        "/console/licensees",
        {
            "licence_number": "CM-BA-901",
            "licence_type": "buying_house",
            "legal_name": "Comptoir du Lom",
            "trade_names": "Lom Diamants\nLD",
            "region": "Est",
            "directors": "Paul Ndongo",
            "issued_on": "2025-01-10",
            "handling": "GREEN",
            "status": "active",
        },
    )
    assert created.status_code == 303
    detail = console.get(created.headers["location"])
    assert "Comptoir du Lom" in detail.text and "Paul Ndongo" in detail.text
    ref = created.headers["location"].split("/")[3].split("?")[0]

    duplicate = console.post(
        "/console/licensees",
        {
            "licence_number": "CM-BA-901",
            "licence_type": "collector",
            "legal_name": "Autre",
            "handling": "GREEN",
            "status": "active",
        },
    )
    assert (
        field_error(duplicate.text, "licence_number")
        == "This licence number is already registered."
    )

    edited = console.post(
        f"/console/licensees/{ref}",
        {
            "licence_type": "exporter",
            "legal_name": "Comptoir du Lom SARL",
            "trade_names": "Lom Diamants",
            "region": "Est",
            "directors": "Paul Ndongo",
            "handling": "AMBER",
            "version": "1",
        },
        token_from=f"/console/licensees/{ref}/edit",
    )
    assert edited.status_code == 303
    stale = console.post(
        f"/console/licensees/{ref}",
        {"licence_type": "exporter", "legal_name": "Encore", "handling": "AMBER", "version": "1"},
        token_from=f"/console/licensees/{ref}/edit",
    )
    assert stale.status_code == 422 and "Someone changed this record" in stale.text

    status = console.post(
        f"/console/licensees/{ref}/status",
        {"status": "suspended", "reason": "Enquête", "version": "2"},
    )
    assert status.status_code == 303
    page = console.get(f"/console/licensees/{ref}").text
    assert "Suspended" in page and "Enquête" in page
    assert "Comptoir du Lom → Comptoir du Lom SARL" in page  # the history shows the change

    listed = console.get("/console/licensees?q=lom&status=suspended").text
    assert "CM-BA-901" in listed
    assert "CM-BA-901" not in console.get("/console/licensees?q=lom&status=active").text


def test_subject_form_checks_dates_documents_and_licences(shared_console):
    console = shared_console.as_user("analyst1")
    bad = console.post(
        "/console/subjects",
        {
            "kind": "person",
            "names": "",
            "date_of_birth": "1971-13",
            "nationality": "Cameroun",
            "documents": "passport",
            "linked_licence_numbers": "",
            "reason_category": "smuggling",
            "risk_level": "high",
            "handling": "AMBER",
        },
    )
    assert bad.status_code == 422
    assert field_error(bad.text, "names") == "Give at least one."
    assert field_error(bad.text, "date_of_birth") == "Use YYYY, YYYY-MM or YYYY-MM-DD."
    assert field_error(bad.text, "nationality") == "Use a two-letter country code, for example CD."
    assert field_error(bad.text, "documents").startswith("Write each document as type:number")

    unknown = console.post(
        "/console/subjects",
        {
            "kind": "person",
            "names": "Jean Mbarga",
            "linked_licence_numbers": "XX-000",
            "reason_category": "fraud",
            "risk_level": "low",
            "handling": "AMBER",
        },
    )
    assert field_error(unknown.text, "linked_licence_numbers") == "Unknown licence numbers: XX-000"

    created = console.post(
        "/console/subjects",
        {
            "kind": "person",
            "names": "Jean Mbarga\nJ. Mbarga",
            "aliases": "Le Commerçant",
            "date_of_birth": "1971-06",
            "nationality": "cm",
            "documents": "passport:OB123:CM",
            "reason_category": "smuggling",
            "risk_level": "high",
            "handling": "AMBER",
        },
    )
    assert created.status_code == 303
    page = console.get(created.headers["location"]).text
    assert "Jean Mbarga / J. Mbarga" in page and "Cameroon" in page and "OB123" in page
    assert "kept in the audit log" in page


def test_csv_import_reports_each_bad_row_and_writes_nothing(shared_console):
    console = shared_console.as_user("analyst1")
    token = console.csrf_from("/console/import")
    bad_csv = (
        b"licence_number;licence_type;legal_name\n"
        b"CM-IMP-1;comptoir;Maison Une\n"
        b"CM-IMP-2;volcan;Maison Deux\n"
        b";collecteur;Maison Trois\n"
    )
    report = console.client.post(
        "/console/import",
        data={"csrf_token": token, "kind": "licensees"},
        files={"file": ("licensees.csv", bad_csv, "text/csv")},
    )
    assert report.status_code == 422
    rows = re.findall(r'<tr><td data-label="Row">(\d+)</td><td[^>]*>([^<]*)</td>', report.text)
    assert rows == [("3", "licence_type"), ("4", "licence_number")]
    assert "CM-IMP-1" not in console.get("/console/licensees?q=CM-IMP").text

    good = console.client.post(
        "/console/import",
        data={"csrf_token": token, "kind": "licensees"},
        files={
            "file": (
                "l.csv",
                bad_csv.replace(b"volcan", b"collecteur").replace(
                    b";collecteur;Maison Trois", b"CM-IMP-3;collecteur;Maison Trois"
                ),
                "text/csv",
            )
        },
    )
    assert good.status_code == 200 and "3 records imported." in good.text
    assert "CM-IMP-3" in console.get("/console/licensees?q=CM-IMP").text
    refused = console.client.post(
        "/console/import",
        data={"kind": "licensees"},
        files={"file": ("l.csv", bad_csv, "text/csv")},
    )
    assert refused.status_code == 403


@pytest.fixture
def peered(console, tmp_path: Path):  # type: ignore[no-untyped-def]
    """The console's node (CM) has admitted CF (up to AMBER, no cash movements)."""
    other = create_node(tmp_path / "cf", "CF", port=8101)
    agreement = SharingAgreement(
        max_handling="AMBER", alert_categories=[c for c in ALERT_CATEGORIES if c != "cash_movement"]
    )
    peer_node = open_node(load_settings(other.data_dir), migrate=False)
    fingerprint, card = peer_node.identity.fingerprint, other.card_path.read_bytes()
    peer_node.close()
    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            PeerRegistry(
                session,
                Actor("setup", "admin"),
                node.now(),
                own_node_id="CM",
                endpoints=EndpointPolicy.from_settings(node.settings),
            ).add(card, fingerprint=fingerprint, agreement=agreement)
            session.commit()
    finally:
        node.close()
    return console


def test_compose_shows_whom_the_agreement_excludes_before_sending(peered):
    console = peered.as_user("analyst1")
    ok = console.get("/console/alerts/recipients?category=seizure&handling=AMBER").text
    assert "will receive it" in ok and "will not" not in ok
    red = console.get("/console/alerts/recipients?category=seizure&handling=RED").text
    assert "will not receive it: TLP:RED is above what the agreement allows (TLP:AMBER)" in red
    cash = console.get("/console/alerts/recipients?category=cash_movement&handling=GREEN").text
    assert "the sharing agreement excludes this category" in cash

    form = {
        "category": "seizure",
        "severity": "urgent",
        "title": "Saisie à Garoua-Boulaï",
        "body": "Colis de pierres brutes",
        "handling": "RED",
        "recipients": "CF",
    }
    preview = console.post("/console/alerts", {**form, "action": "preview"})
    assert preview.status_code == 200 and "will not receive it" in preview.text
    sent = console.post("/console/alerts", {**form, "action": "send"})
    assert sent.status_code == 303
    detail = console.get(sent.headers["location"]).text
    assert "Withheld" in detail and "the handling level is above" in detail

    missing = console.post("/console/alerts", {**form, "title": "", "recipients": ""})
    assert missing.status_code == 422
    assert field_error(missing.text, "title") == "Required."
    assert field_error(missing.text, "recipients") == "Choose at least one recipient."


def test_alert_update_retract_and_acknowledge(peered):
    console = peered.as_user("analyst1")
    form = {
        "category": "seizure",
        "severity": "warning",
        "title": "Colis suspect",
        "body": "À vérifier",
        "handling": "AMBER",
        "recipients": "CF",
        "country": "cm",
        "locality": "Bertoua",
        "subjects": "Ali Oumarou",
    }
    alert_path = console.post("/console/alerts", form).headers["location"].split("?")[0]
    alert_id = alert_path.rsplit("/", 1)[1]
    detail = console.get(alert_path).text
    assert "Queued" in detail and "Bertoua" in detail and "Ali Oumarou" in detail
    updated = console.post(
        f"{alert_path}/update", {**form, "severity": "urgent"}, token_from=f"{alert_path}/edit"
    )
    assert updated.status_code == 303
    assert "Revision</dt><dd>2" in console.get(alert_path).text
    assert console.post(f"{alert_path}/retract", {"reason": ""}).status_code == 422
    assert console.post(f"{alert_path}/retract", {"reason": "Erreur"}).status_code == 303
    assert "Withdrawn:" in console.get(alert_path).text
    # Outbound alerts cannot be acknowledged; officers cannot update or retract.
    officer = peered.as_user("officer1")
    assert officer.post(f"{alert_path}/update", form).status_code == 403
    assert officer.get(f"/console/alerts/{alert_id}").status_code == 200
    assert officer.get("/console/alerts/999999").status_code == 404


def test_peers_page_shows_health_agreement_and_fingerprint_groups(peered):
    console = peered.as_user("admin1")
    page = console.get("/console/peers").text
    groups = re.search(r'<p class="fingerprint"[^>]*>(.*?)</p>', page, re.S).group(1)
    node = open_node(console.settings, migrate=False)
    fingerprint = node.identity.fingerprint
    node.close()
    assert re.findall(r"<span>(\d+)</span>", groups) == fingerprint.split()
    assert 'id="peer-CF"' in page and "Central African Republic" in page
    assert "never" in page  # no contact yet
    assert "TLP:AMBER" in page and "Alert categories:" in page


def _ask_endpoint_change(console, endpoint: str) -> None:  # type: ignore[no-untyped-def]
    """CF's newer card asked for ``endpoint`` (held for approval, as card.update does)."""
    from sqlalchemy import update

    from node.db.models import Peer

    node = open_node(console.settings, migrate=False)
    try:
        with node.sessions() as session:
            session.execute(
                update(Peer)
                .where(Peer.node_id == "CF")
                .values(pending_endpoint=endpoint, pending_endpoint_at=node.now())
            )
            session.commit()
    finally:
        node.close()


def test_admin_approves_or_rejects_endpoint_changes_in_french_or_english(peered):
    console = peered.as_user("admin1")
    _ask_endpoint_change(console, "http://169.254.169.254/latest")
    page = console.get("/console/peers").text
    assert 'id="pending-endpoint-CF"' in page and "http://169.254.169.254/latest" in page
    assert "Approve the new endpoint" in page
    console.post("/console/language", {"language": "fr"})
    page = console.get("/console/peers").text
    assert "Changement d\u2019adresse demandé par la carte du pair" in page
    refused = console.post("/console/peers/CF/endpoint/approve", token_from="/console/peers")
    assert refused.status_code == 422
    assert "L\u2019adresse 169.254.169.254 est dans une plage" in refused.text
    assert "(lien local)" in refused.text
    console.post("/console/language", {"language": "en"})
    refused = console.post("/console/peers/CF/endpoint/approve", token_from="/console/peers")
    assert "The address 169.254.169.254 is in a range" in refused.text
    rejected = console.post("/console/peers/CF/endpoint/reject", token_from="/console/peers")
    assert rejected.status_code == 303
    page = console.get(rejected.headers["location"]).text
    assert "The endpoint change is rejected" in page and "pending-endpoint-CF" not in page
    nothing = console.post("/console/peers/CF/endpoint/approve", token_from="/console/peers")
    assert nothing.status_code == 409 and "no endpoint change waiting" in nothing.text

    _ask_endpoint_change(console, "http://127.0.0.1:8199")
    page = console.get("/console/peers").text
    assert 'name="endpoint" value="http://127.0.0.1:8199"' in page
    stale = console.post(
        "/console/peers/CF/endpoint/approve",
        {"endpoint": "http://127.0.0.1:8197"},
        token_from="/console/peers",
    )
    assert stale.status_code == 409 and "review it again" in stale.text
    approved = console.post(
        "/console/peers/CF/endpoint/approve",
        {"endpoint": "http://127.0.0.1:8199"},
        token_from="/console/peers",
    )
    assert approved.status_code == 303
    page = console.get(approved.headers["location"]).text
    assert "The new endpoint is approved" in page and "http://127.0.0.1:8199" in page
    assert "pending-endpoint-CF" not in page
    analyst = peered.as_user("analyst1")
    _ask_endpoint_change(analyst, "http://127.0.0.1:8198")
    forbidden = analyst.post("/console/peers/CF/endpoint/approve")
    assert forbidden.status_code == 403


def test_audit_page_filters_and_verifies(shared_console):
    console = shared_console.as_user("auditor1")
    page = console.get("/console/audit?action=user.&who=auditor1").text
    assert "user.sign_in" in page and "token.create" not in page
    assert "The audit log is intact" in console.get("/console/audit?verify=1").text


def test_pages_are_small_and_sent_with_security_headers(shared_console):
    console = shared_console.as_user("analyst1")
    assets = sum(
        len(console.get(f"/console/static/{name}").content)
        for name in ("console.css", "console.js")
    )
    for path in (
        "/console/alerts",
        "/console/alerts/new",
        "/console/licensees",
        "/console/subjects/new",
        "/console/account",
    ):
        response = console.get(path)
        assert len(response.content) + assets < MAX_PAGE_BYTES, path
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert response.headers["cache-control"] == "no-store"
        assert "<script>" not in response.text and " style=" not in response.text
        assert "http://" not in response.text.replace("http://127.0.0.1:8100", "")
    assert console.get("/console/static/../config.toml").status_code == 404
    assert console.get("/console/static/nothing.js").status_code == 404
