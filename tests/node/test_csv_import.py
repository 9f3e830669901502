"""Bulk CSV import: validation reported by row and column, all-or-nothing writes, French
spreadsheets, duplicate licence numbers, roles, the API and the command line."""

from __future__ import annotations

import hashlib
import io
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from node.api.routes import transfer
from node.db.models import AuditEntry, RecordChange
from node.runtime import open_node
from node.services import csv_import, csv_text
from node.services.actors import Actor
from node.services.audit import verify_chain
from node.services.csv_format import LICENSEES, escape_formula, read_date, unescape_formula
from node.services.csv_import import import_csv
from node.services.csv_text import sniff_delimiter

ANALYST = Actor("analyste", "analyst")
LICENSEES_CSV = (
    "licence_number,licence_type,legal_name,trade_names,region,issued_on,status,"
    "directors,beneficial_owners\n"
    "CM-BA-101,buying_house,Comptoir Étoile SARL,Étoile|Star Diamonds,Est-Cameroun,"
    "2024-03-01,active,Jean Mvondo|Odette Essomba,Paul Bebey\n"
    "CM-CO-102,collector,Collecte Ngono,,Est-Cameroun,,suspended,,\n"
    "CM-EX-103,exporter,Abéga Export SA,,,2023-12-31,,Marie Abéga,\n"
)


def post_csv(
    api: Any,
    kind: str,
    body: str | bytes,
    *,
    role: str = "analyst",
    content_type: str = "text/csv",
    **params: Any,
) -> Any:
    data = body.encode("utf-8") if isinstance(body, str) else body
    return api.client.post(
        f"/api/v1/imports/{kind}",
        content=data,
        params=params,
        headers={**api.as_role(role), "Content-Type": content_type},
    )


def errors_of(response: Any) -> list[tuple[int, str | None, str]]:
    return [(e["row"], e["column"], e["message"]) for e in response.json()["errors"]]


def licensees_by_number(api: Any) -> dict[str, dict[str, Any]]:
    page = api.client.get(
        "/api/v1/licensees", params={"limit": 500}, headers=api.as_role("analyst")
    ).json()
    return {item["licence_number"]: item for item in page["items"]}


# -- through the API --------------------------------------------------------------------


def test_analyst_imports_licensees_with_history_status_and_audit(api, db):
    body = LICENSEES_CSV.encode()
    response = post_csv(api, "licensees", body)
    assert response.status_code == 200, response.text
    assert response.json() == {
        "kind": "licensees",
        "sha256": hashlib.sha256(body).hexdigest(),
        "dry_run": False,
        "rows_total": 3,
        "rows_valid": 3,
        "written": 3,
        "errors_total": 0,
        "errors": [],
    }
    records = licensees_by_number(api)
    assert sorted(records) == ["CM-BA-101", "CM-CO-102", "CM-EX-103"]
    etoile = records["CM-BA-101"]
    assert etoile["trade_names"] == ["Étoile", "Star Diamonds"]
    assert [(p["role"], p["name"]) for p in etoile["persons"]] == [
        ("director", "Jean Mvondo"),
        ("director", "Odette Essomba"),
        ("beneficial_owner", "Paul Bebey"),
    ]
    assert (etoile["issued_on"], etoile["status"], etoile["handling"]) == (
        "2024-03-01",
        "active",
        "GREEN",
    )
    assert records["CM-CO-102"]["status"] == "suspended"

    analyst = api.as_role("analyst")
    detail = api.client.get(f"/api/v1/licensees/{etoile['ref']}", headers=analyst).json()
    assert [(s["status"], s["reason"]) for s in detail["status_history"]] == [
        ("active", "imported")
    ]
    history = api.client.get(f"/api/v1/licensees/{etoile['ref']}/history", headers=analyst)
    assert [(h["version"], h["action"]) for h in history.json()] == [(1, "import")]
    found = api.client.get("/api/v1/licensees", params={"q": "odette etoile"}, headers=analyst)
    assert [i["licence_number"] for i in found.json()["items"]] == ["CM-BA-101"]

    with Session(db) as session:
        entries = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.action.in_(["licensee.create", "import.completed"]))
                .order_by(AuditEntry.seq)
            )
            .scalars()
            .all()
        )
        assert [e.action for e in entries] == ["licensee.create"] * 3 + ["import.completed"]
        assert {e.target_id for e in entries[:3]} == {r["ref"] for r in records.values()}
        assert all(e.detail == {"version": 1, "source": "import"} for e in entries[:3])
        assert entries[3].detail == {
            "kind": "licensee",
            "rows": 3,
            "sha256": hashlib.sha256(body).hexdigest(),
        }
        assert verify_chain(session).ok


def test_imported_record_is_stored_as_the_api_stores_it(api, db, make_licensee):
    fields = {
        "trade_names": ["Étoile", "Star Diamonds"],
        "region": "Est-Cameroun",
        "issued_on": "2024-03-01",
        "persons": [
            {"role": "director", "name": "Jean Mvondo"},
            {"role": "beneficial_owner", "name": "Paul Bebey"},
        ],
    }
    created = make_licensee("CM-BA-101", **fields)
    index_of_created = match_rows(db, created["ref"])
    assert index_of_created  # the registry indexes it for KYC matching
    deleted = api.client.delete(
        f"/api/v1/licensees/{created['ref']}", headers=api.as_role("analyst")
    )
    assert deleted.status_code == 204  # the number is free again for a live record
    response = post_csv(
        api,
        "licensees",
        (
            "licence_number;licence_type;legal_name;trade_names;region;issued_on;directors;"
            "beneficial_owners\n"
            "CM-BA-101;comptoir;Comptoir Étoile SARL;Étoile|Star Diamonds;Est-Cameroun;01/03/2024;"
            "Jean Mvondo;Paul Bebey\n"
        ),
    )
    assert response.status_code == 200, response.text
    with db.connect() as connection:
        texts = (
            connection.execute(
                text(
                    "SELECT search_text FROM licensees"
                    " WHERE licence_number = 'CM-BA-101' ORDER BY id"
                )
            )
            .scalars()
            .all()
        )
        changes = (
            Session(bind=connection)
            .execute(
                select(RecordChange).where(RecordChange.version == 1).order_by(RecordChange.id)
            )
            .scalars()
            .all()
        )
    assert len(texts) == 2 and texts[0] == texts[1]
    api_created, imported = changes
    assert (api_created.action, imported.action) == ("create", "import")
    assert imported.snapshot == api_created.snapshot
    assert imported.changes == api_created.changes
    [imported_ref] = [r["ref"] for r in licensees_by_number(api).values()]
    assert match_rows(db, imported_ref) == index_of_created


def match_rows(db: Any, ref: str) -> list[tuple[Any, ...]]:
    """A licensee's match index rows (its KYC identity), without the row ids."""
    with db.connect() as connection:
        return [
            tuple(row)
            for row in connection.execute(
                text(
                    "SELECT m.part, m.party, m.names, m.identifiers, m.keys FROM match_records m "
                    "JOIN licensees l ON m.record_kind = 'licensee' AND m.record_id = l.id "
                    "WHERE l.ref = :ref ORDER BY m.part"
                ),
                {"ref": ref},
            )
        ]


def test_invalid_rows_are_reported_by_row_and_column_and_nothing_is_written(api, row_counts):
    before = row_counts()
    response = post_csv(
        api,
        "licensees",
        (
            "licence_number,licence_type,legal_name,issued_on,status\n"
            "CM-BA-201,buying_house,Bon Comptoir,2024-01-01,active\n"
            "CM-BA-202,diamond_shop,Mauvais Type,2024-01-01,active\n"
            "CM-BA-203,collector,,32/01/2024,active\n"
            "CM-BA-204,exporter,Bon Exportateur,,dormant\n"
        ),
    )
    assert response.status_code == 422
    report = response.json()
    assert (report["rows_total"], report["rows_valid"], report["written"]) == (4, 1, 0)
    assert [(row, column) for row, column, _ in errors_of(response)] == [
        (3, "licence_type"),
        (4, "legal_name"),
        (4, "issued_on"),
        (5, "status"),
    ]
    messages = [m for _, _, m in errors_of(response)]
    assert "'diamond_shop' is not one of: buying_house" in messages[0]
    assert "comptoir" in messages[0]  # the French words are offered too
    assert messages[1] == "required; this cell must not be empty"
    assert messages[2] == "'32/01/2024' is not a calendar date"
    assert row_counts() == before


def test_french_locale_spreadsheet_imports(api):
    body = (
        "\ufeffLicence_Number;Licence_Type;Legal_Name;Trade_Names;Address;Region;Issued_On;"
        "Expires_On;Status;Handling;Directors;Beneficial_Owners\r\n"
        "CF-BA-2024-0001;Comptoir;Société Minière de Berbérati;SMB|Berbérati Diamants;"
        '"BP 12; quartier Poto-Poto, Berbérati";Mambéré-Kadéï;15/01/2024;14/01/2026;actif;'
        "tlp:amber;Jean-Baptiste Ngaïkoisset|Odette Yakité;Marie-Claire Mbuyi\r\n"
        "CF-CO-2024-0002;COLLECTEUR;Établissements Zoumandé;;;Haute-Kotto;1/2/2024;;Suspendu;;;\r\n"
        "CF-EX-2024-0003;exportateur;Nola Gems International SARL;;;Sangha-Mbaéré;;;révoqué;;;\r\n"
        "CF-CP-2024-0004;Coopérative;Coopérative Minière de Bria;;;Haute-Kotto;;;expiré;;;\r\n"
        "CF-BA-2024-0005;Bureau d\u2019achat;Comptoir Kalonji Diamants SARL;;;Kasaï;;;;;;\r\n"
        ";;;;;;;;;;;\r\n"
    ).encode("utf-8")
    response = post_csv(api, "licensees", body, content_type="application/vnd.ms-excel")
    assert response.status_code == 200, response.text
    assert response.json()["written"] == 5
    records = licensees_by_number(api)
    smb = records["CF-BA-2024-0001"]
    assert smb["legal_name"] == "Société Minière de Berbérati"
    assert smb["address"] == "BP 12; quartier Poto-Poto, Berbérati"
    assert (smb["licence_type"], smb["status"], smb["handling"]) == (
        "buying_house",
        "active",
        "AMBER",
    )
    assert (smb["issued_on"], smb["expires_on"]) == ("2024-01-15", "2026-01-14")
    assert records["CF-CO-2024-0002"]["issued_on"] == "2024-02-01"
    assert {n: (r["licence_type"], r["status"]) for n, r in records.items()} == {
        "CF-BA-2024-0001": ("buying_house", "active"),
        "CF-CO-2024-0002": ("collector", "suspended"),
        "CF-EX-2024-0003": ("exporter", "revoked"),
        "CF-CP-2024-0004": ("cooperative", "expired"),
        "CF-BA-2024-0005": ("buying_house", "active"),
    }
    found = api.client.get(
        "/api/v1/licensees", params={"q": "miniere berberati"}, headers=api.as_role("officer")
    ).json()
    assert [i["licence_number"] for i in found["items"]] == ["CF-BA-2024-0001"]


def test_duplicate_licence_numbers_in_the_file_and_in_the_database(api, make_licensee, row_counts):
    make_licensee("CM-BA-001")
    before = row_counts()
    response = post_csv(
        api,
        "licensees",
        (
            "licence_number,licence_type,legal_name\n"
            "CM-BA-001,buying_house,Déjà Enregistré\n"
            "CM-BA-300,collector,Premier\n"
            "CM-BA-300,collector,Second\n"
        ),
    )
    assert response.status_code == 422
    assert errors_of(response) == [
        (2, "licence_number", "licence number CM-BA-001 is already registered"),
        (4, "licence_number", "licence number CM-BA-300 already appears on row 3"),
    ]
    assert response.json()["rows_valid"] == 1
    assert row_counts() == before


def test_unknown_and_missing_columns_are_reported_once_on_the_header(api, row_counts):
    before = row_counts()
    unknown = post_csv(
        api,
        "licensees",
        (
            "licence_number,licence_type,legal_name,Téléphone\n"
            "CM-BA-401,buying_house,Un,+237 699 00 00 00\n"
            "CM-BA-402,buying_house,Deux,+237 677 00 00 00\n"
        ),
    )
    assert unknown.status_code == 422
    [(row, column, message)] = errors_of(unknown)
    assert (row, column) == (1, "Téléphone")
    assert message.startswith("unknown column; the columns of licensees are: licence_number,")
    assert unknown.json()["rows_valid"] == 2

    missing = post_csv(api, "licensees", "licence_number,licence_type\nCM-BA-403,collector\n")
    assert missing.status_code == 422
    assert errors_of(missing) == [(1, "legal_name", "required column is missing")]
    assert row_counts() == before


def test_subjects_import_and_links_only_to_registered_licences(api, make_licensee):
    make_licensee("CM-BA-001")
    header = (
        "kind;names;aliases;date_of_birth;nationality;documents;linked_licence_numbers;"
        "reason_category;risk_level;narrative;source_agency;handling\n"
    )
    response = post_csv(
        api,
        "subjects",
        header
        + (
            "personne;Jean-Pierre Mbéki|J.-P. Mbeki;Le Colonel;12/05/1978;cd;"
            "passport:OB0123456:CD|carte:123-456;CM-BA-001;contrebande;élevé;"
            '"Vu à Kenzou avec des pierres brutes;\ndeux fois en 2024";Douanes Garoua-Boulaï;'
            "amber+strict\n"
            "personne morale;Kasaï Gems Trading;;;;;;faux certificat KP;;;;\n"
        ),
    )
    assert response.status_code == 200, response.text
    items = api.client.get("/api/v1/subjects", headers=api.as_role("analyst")).json()["items"]
    person, organisation = sorted(items, key=lambda s: s["kind"], reverse=True)
    assert person["names"] == ["Jean-Pierre Mbéki", "J.-P. Mbeki"]
    assert (person["date_of_birth"], person["nationality"]) == ("1978-05-12", "CD")
    assert person["documents"] == [
        {"type": "passport", "number": "OB0123456", "country": "CD"},
        {"type": "carte", "number": "123-456", "country": None},
    ]
    assert (person["reason_category"], person["risk_level"], person["handling"]) == (
        "smuggling",
        "high",
        "AMBER+STRICT",
    )
    assert person["narrative"] == "Vu à Kenzou avec des pierres brutes;\ndeux fois en 2024"
    assert person["linked_licence_numbers"] == ["CM-BA-001"]
    assert (organisation["kind"], organisation["reason_category"], organisation["handling"]) == (
        "organisation",
        "fake_kp_certificate",
        "AMBER",
    )

    # A quoted cell over two lines is still one row: the bad row is row 3.
    unknown = post_csv(
        api,
        "subjects",
        header
        + (
            'person;A;;;;;;fraud;;"deux\nlignes";;\n'
            "person;B;;;;;CM-XX-999|CM-BA-001;fraud;;;;\n"
            "person;C;;1978-13;ZZZ;passport;;fraud;;;;\n"
        ),
    )
    assert unknown.status_code == 422
    assert errors_of(unknown) == [
        (3, "linked_licence_numbers", "unknown licence numbers: CM-XX-999"),
        (4, "date_of_birth", "use YYYY, YYYY-MM or YYYY-MM-DD"),
        (4, "nationality", "use a two-letter country code, e.g. CD or CF"),
        (
            4,
            "documents",
            "document 1 'passport': use type:number or type:number:country, "
            "e.g. passport:OB0123456:CD",
        ),
    ]


def test_dry_run_validates_without_writing(api, row_counts):
    before = row_counts()
    valid = post_csv(api, "licensees", LICENSEES_CSV, dry_run="true")
    assert valid.status_code == 200
    assert valid.json()["dry_run"] is True
    assert (valid.json()["rows_valid"], valid.json()["written"]) == (3, 0)
    invalid = post_csv(api, "licensees", LICENSEES_CSV + "CM-X,bogus,X\n", dry_run="true")
    assert invalid.status_code == 422
    assert errors_of(invalid)[0][:2] == (5, "licence_type")
    assert row_counts() == before


def test_only_analysts_may_import(api, row_counts):
    before = row_counts()
    for role in ("officer", "auditor", "admin"):
        assert post_csv(api, "licensees", LICENSEES_CSV, role=role).status_code == 403
    assert (
        api.client.post(
            "/api/v1/imports/licensees",
            content=LICENSEES_CSV.encode(),
            headers={"Content-Type": "text/csv"},
        ).status_code
        == 401
    )
    assert row_counts() == before


def test_body_type_size_and_encoding_are_checked(api, monkeypatch):
    assert (
        post_csv(api, "licensees", LICENSEES_CSV, content_type="application/json").status_code
        == 415
    )
    octets = post_csv(
        api, "licensees", LICENSEES_CSV, content_type="application/octet-stream", dry_run="true"
    )
    assert octets.status_code == 200
    monkeypatch.setattr(transfer, "MAX_IMPORT_BYTES", 100)
    assert post_csv(api, "licensees", LICENSEES_CSV).status_code == 413
    monkeypatch.undo()
    latin1 = post_csv(api, "licensees", LICENSEES_CSV.encode("latin-1"))
    assert latin1.status_code == 422
    [(row, column, message)] = errors_of(latin1)
    assert (row, column) == (2, None)
    assert "not UTF-8" in message
    empty = post_csv(api, "licensees", b"")
    assert errors_of(empty) == [(1, None, "the file is empty; its first row must name the columns")]


def test_error_list_is_capped_but_counted(api, monkeypatch):
    monkeypatch.setattr(csv_import, "MAX_REPORTED_ERRORS", 5)
    rows = "".join(f"CM-{n},bogus,Nom {n}\n" for n in range(12))
    response = post_csv(api, "licensees", "licence_number,licence_type,legal_name\n" + rows)
    assert response.status_code == 422
    assert response.json()["errors_total"] == 12
    assert [row for row, _, _ in errors_of(response)] == [2, 3, 4, 5, 6]


# -- files of many windows and many reads -----------------------------------------------


@pytest.fixture(params=[1, 7])
def small_pieces(request, monkeypatch):
    """Windows of 4 rows, and reads of 1 or 7 bytes: a short file spans many of both, and
    reads split the byte-order mark, accented letters and CRLF line endings."""
    monkeypatch.setattr(csv_import, "WINDOW_ROWS", 4)
    monkeypatch.setattr(csv_text, "READ_BYTES", request.param)


def test_a_file_of_many_windows_imports_every_row(api, db, small_pieces):
    body = (
        "\ufeffLicence_Number;Licence_Type;Legal_Name;Address;Issued_On\r\n"
        + "".join(
            f'CF-BA-{n:03d};comptoir;Société Minière n°{n};"BP {n};\nBerbérati";15/01/2024\r\n'
            for n in range(1, 23)
        )
    ).encode()
    response = post_csv(api, "licensees", body)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["rows_total"], report["rows_valid"], report["written"]) == (22, 22, 22)
    assert report["sha256"] == hashlib.sha256(body).hexdigest()
    records = licensees_by_number(api)
    assert sorted(records) == [f"CF-BA-{n:03d}" for n in range(1, 23)]
    assert records["CF-BA-017"]["legal_name"] == "Société Minière n°17"
    assert records["CF-BA-017"]["address"] == "BP 17;\nBerbérati"
    with Session(db) as session:
        actions = session.execute(select(AuditEntry.action).order_by(AuditEntry.seq)).scalars()
        assert [a for a in actions if a != "token.create"][-23:] == ["licensee.create"] * 22 + [
            "import.completed"
        ]
        assert verify_chain(session).ok


def test_checks_span_windows_and_a_late_error_leaves_nothing_written(
    api, make_licensee, row_counts, small_pieces
):
    make_licensee("CF-BA-900")
    before = row_counts()
    rows = [f"CF-BA-{n:03d},collector,Collecte {n}" for n in range(1, 20)]
    rows[9] = "CF-BA-002,collector,Encore"  # row 11 repeats row 3, two windows earlier
    rows[12] = "CF-BA-900,collector,Déjà"  # row 14: registered before the import
    rows[16] = "CF-BA-002,collector,Encore"  # row 18
    rows[18] = "CF-BA-019,bogus,Fin"  # row 20, in the last window
    body = "licence_number,licence_type,legal_name\r\n" + "\r\n".join(rows) + "\r\n"
    response = post_csv(api, "licensees", body)
    assert response.status_code == 422
    assert [(row, column) for row, column, _ in errors_of(response)] == [
        (11, "licence_number"),
        (14, "licence_number"),
        (18, "licence_number"),
        (20, "licence_type"),
    ]
    messages = [message for _, _, message in errors_of(response)]
    assert messages[:3] == [
        "licence number CF-BA-002 already appears on row 3",
        "licence number CF-BA-900 is already registered",
        "licence number CF-BA-002 already appears on row 3",
    ]
    report = response.json()
    assert (report["rows_total"], report["rows_valid"], report["written"]) == (19, 15, 0)
    assert row_counts() == before  # the first windows were written, then rolled back

    # The command line's transaction commits whatever the import leaves: nothing.
    node = open_node(api.settings, migrate=False)
    try:
        report = import_csv(
            node.sessions, "licensees", io.BytesIO(body.encode()), actor=ANALYST, now=node.now()
        )
    finally:
        node.close()
    assert (report.errors_total, report.written) == (4, 0)
    assert row_counts() == before


def test_a_bad_byte_in_a_later_read_names_its_line_and_nothing_is_written(
    api, row_counts, small_pieces
):
    before = row_counts()
    body = (
        "licence_number,licence_type,legal_name\n"
        + "".join(f"CM-{n},collector,Nom {n}\n" for n in range(10))
    ).encode() + b"CM-X,collector,Caf\xe9\n"
    response = post_csv(api, "licensees", body)
    assert response.status_code == 422
    [(row, column, message)] = errors_of(response)
    assert (row, column) == (12, None)
    assert "not UTF-8" in message
    assert response.json()["sha256"] == hashlib.sha256(body).hexdigest()
    assert row_counts() == before


# -- the command line -------------------------------------------------------------------


def test_cli_imports_a_file(settings, kpnet, tmp_path, row_counts, db):
    path = tmp_path / "comptoirs.csv"
    path.write_text(LICENSEES_CSV, encoding="utf-8")
    dry = kpnet("import", "licensees", path, "--data-dir", settings.data_dir, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "3 rows valid; nothing written (dry run)" in dry.stdout
    assert row_counts()["licensees"] == 0
    done = kpnet("import", "licensees", path, "--data-dir", settings.data_dir)
    assert done.returncode == 0, done.stderr
    assert f"3 licensees imported from {path}" in done.stdout
    assert row_counts()["licensees"] == 3
    with Session(db) as session:
        assert verify_chain(session).ok


def test_cli_lists_errors_and_writes_nothing(settings, kpnet, tmp_path, row_counts):
    path = tmp_path / "bad.csv"
    path.write_text(
        "licence_number;licence_type;legal_name\n"
        + "".join(f"CM-{n};diamond_shop;Nom {n}\n" for n in range(25)),
        encoding="utf-8",
    )
    before = row_counts()
    result = kpnet("import", "licensees", path, "--data-dir", settings.data_dir)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    listed = [line for line in lines if line.startswith("row ")]
    assert len(listed) == 20
    assert listed[0].startswith("row 2, column licence_type: 'diamond_shop' is not one of:")
    assert "... and 5 more errors" in lines
    assert lines[-1] == f"error: 25 errors in {path} (0 of 25 rows valid); nothing was written"
    assert row_counts() == before
    missing = kpnet("import", "licensees", tmp_path / "absent.csv", "--data-dir", settings.data_dir)
    assert missing.returncode == 1
    assert missing.stderr.startswith("error: ") and "absent.csv" in missing.stderr


# -- reading cells (no database) --------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("2024-01-15", "2024-01-15"),
        ("15/01/2024", "2024-01-15"),
        ("5/1/2024", "2024-01-05"),
    ],
)
def test_dates_in_iso_and_french_forms(cell, expected):
    assert read_date(cell) == expected


@pytest.mark.parametrize("cell", ["2024-02-30", "01/15/2024", "15.01.2024", "demain"])
def test_bad_dates_are_refused(cell):
    with pytest.raises(ValueError, match=repr(cell)):
        read_date(cell)


@pytest.mark.parametrize(
    "cell",
    [
        '=HYPERLINK("http://x")',
        "+237 699",
        "-1",
        "@SUM(A1)",
        "'=already quoted",
        "plain",
        "l'Étoile",
    ],
)
def test_formula_escaping_round_trips(cell):
    assert unescape_formula(escape_formula(cell)) == cell
    assert escape_formula(cell)[:1] not in ("=", "+", "-", "@")


def test_delimiter_is_taken_from_the_header():
    names = LICENSEES.column_names
    assert sniff_delimiter("licence_number;licence_type;legal_name", names) == ";"
    assert sniff_delimiter("licence_number,licence_type,legal_name", names) == ","
    assert sniff_delimiter("licence_number,legal_name;x", names) == ","
