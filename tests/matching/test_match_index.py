"""The match index in the database (SQLite and PostgreSQL): records written through the
registries are found, changes and deletions follow, a rebuild gives the same rows, bulk
rows are the same rows, and ``kpnet kyc reindex`` rebuilds it."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from node.db.models import MatchKey, MatchRecord
from node.matching import MatchIndex, MatchQuery, find_candidates, index_rows
from node.runtime import Node, open_node
from node.schemas.records import LicenseeCreate, LicenseeUpdate, SubjectCreate, SubjectUpdate
from node.services.actors import Actor
from node.services.licensees import LicenseeRegistry
from node.services.subjects import SubjectRegistry

ANALYST = Actor("analyste", "analyst")


@pytest.fixture
def node(settings) -> Iterator[Node]:
    opened = open_node(settings, migrate=False)
    try:
        yield opened
    finally:
        opened.close()


def licensee(number: str = "CF-BA-0001", **fields) -> LicenseeCreate:
    values = {
        "licence_number": number,
        "licence_type": "buying_house",
        "legal_name": "Comptoir Étoile du Sud SARL",
        "trade_names": ["Diamants de Bria"],
        "persons": [
            {
                "role": "director",
                "name": "Jean-Pierre MBALA",
                "date_of_birth": "1981-03-04",
                "nationality": "CF",
                "documents": [{"type": "passport", "number": "CF0123456"}],
            },
            {
                "role": "beneficial_owner",
                "name": "Mahamat Abakar Issa",
                "date_of_birth": "1970",
                "nationality": "TD",
            },
        ],
    }
    values.update(fields)
    return LicenseeCreate.model_validate(values)


def subject(**fields) -> SubjectCreate:
    values = {
        "kind": "person",
        "names": ["Marcel Ngouandjika"],
        "aliases": ["Le Colonel"],
        "date_of_birth": "1975-06-12",
        "nationality": "CF",
        "documents": [{"type": "id_card", "number": "CF-998877"}],
        "reason_category": "smuggling",
    }
    values.update(fields)
    return SubjectCreate.model_validate(values)


def create(node: Node, *items):
    refs = []
    with node.sessions() as session:
        for item in items:
            registry = (LicenseeRegistry if isinstance(item, LicenseeCreate) else SubjectRegistry)(
                session, ANALYST, node.now()
            )
            refs.append(registry.create(item).ref)
        session.commit()
    return refs


def search(node: Node, kind: str, names: list[str], **fields):
    with node.sessions() as session:
        return find_candidates(session, MatchQuery(kind, names, **fields), 10)


def index_state(node: Node) -> tuple[list[tuple], list[tuple]]:
    with node.sessions() as session:
        records = session.execute(
            select(
                MatchRecord.id,
                MatchRecord.record_kind,
                MatchRecord.record_id,
                MatchRecord.part,
                MatchRecord.party,
                MatchRecord.names,
                MatchRecord.date_of_birth,
                MatchRecord.nationality,
                MatchRecord.identifiers,
                MatchRecord.keys,
            ).order_by(MatchRecord.id)
        ).all()
        keys = session.execute(
            select(MatchKey.key, MatchKey.match_id).order_by(MatchKey.key, MatchKey.match_id)
        ).all()
    return [tuple(r) for r in records], [tuple(k) for k in keys]


# -- what writes put in the index ---------------------------------------------------------


def test_a_new_licensee_is_found_as_organisation_and_by_its_persons(node):
    [ref] = create(node, licensee())

    [org] = search(node, "organisation", ["Ets Comptoir Etoile du Sud"])
    assert (org.record_kind, org.ref, org.person_index, org.party) == (
        "licensee",
        ref,
        None,
        "organisation",
    )
    assert org.score == 600
    assert "legal form ignored: ets" in org.explain()

    hits = search(
        node, "person", ["MBALA Jeanpierre"], date_of_birth="1981-04-03", nationality="CF"
    )
    assert (hits[0].ref, hits[0].person_index, hits[0].name) == (ref, 0, "Jean-Pierre MBALA")
    details = [f.detail for f in hits[0].features]
    assert any("director" in d for d in details)
    assert any("day and month swapped" in d for d in details)

    owner = search(node, "person", ["محمد أبكر عيسى"], date_of_birth="1970")[0]
    assert (owner.ref, owner.person_index) == (ref, 1)
    assert owner.score >= 600


def test_a_new_subject_is_found_by_name_alias_and_document(node):
    [ref] = create(node, subject())

    typo = search(node, "person", ["Ngouandjka Marcel"], date_of_birth="1975")
    assert (typo[0].record_kind, typo[0].ref, typo[0].person_index) == ("subject", ref, None)
    alias = search(node, "person", ["le colonel"])
    assert alias[0].ref == ref
    assert 'alias "Le Colonel"' in alias[0].explain()
    document = search(node, "person", ["Unknown"], documents=["cf 998877"])
    assert document[0].ref == ref
    assert "document number cf 998877 matches" in document[0].explain()


def test_a_licence_number_finds_the_licensee_and_its_persons(node):
    [ref] = create(node, licensee())
    hits = search(node, "organisation", ["?"], licence_numbers=["cf-ba-0001"])
    assert [(h.ref, h.person_index) for h in hits] == [(ref, None)]
    persons = search(node, "person", ["Jean Mbala"], licence_numbers=["CF-BA-0001"])
    assert persons[0].person_index == 0
    assert persons[0].score > persons[1].score


def test_queries_keep_to_their_kind_of_party_and_of_record(node):
    create(node, licensee(), subject(names=["Jean-Pierre Mbala"], aliases=[]))
    persons = search(node, "person", ["Jean-Pierre Mbala"])
    assert {h.party for h in persons} == {"person"}
    assert {h.record_kind for h in persons} == {"licensee", "subject"}
    subjects_only = search(node, "person", ["Jean-Pierre Mbala"], record_kinds=["subject"])
    assert {h.record_kind for h in subjects_only} == {"subject"}
    assert search(node, "organisation", ["Jean-Pierre Mbala"]) == []


def test_an_update_changes_the_index(node):
    [ref] = create(node, subject())
    with node.sessions() as session:
        SubjectRegistry(session, ANALYST, node.now()).update(
            ref, SubjectUpdate(names=["Aminata Traoré"], aliases=[], date_of_birth="1990")
        )
        session.commit()

    assert search(node, "person", ["Marcel Ngouandjika"]) == []
    assert search(node, "person", ["le colonel"]) == []
    [hit] = search(node, "person", ["Aminata Traore"], date_of_birth="1990")
    assert hit.ref == ref
    assert "birth year 1990 matches" in hit.explain()


def test_a_licensee_update_drops_removed_persons_and_a_status_change_keeps_the_rows(node):
    [ref] = create(node, licensee())
    before = index_state(node)
    with node.sessions() as session:
        registry = LicenseeRegistry(session, ANALYST, node.now())
        registry.update(ref, LicenseeUpdate(region="Haute-Kotto"))  # nothing indexed changed
        session.commit()
    assert index_state(node) == before

    with node.sessions() as session:
        LicenseeRegistry(session, ANALYST, node.now()).update(
            ref, LicenseeUpdate(persons=[{"name": "Odette Yakité"}], trade_names=[])
        )
        session.commit()
    assert search(node, "person", ["Mahamat Abakar Issa"]) == []
    assert all(
        h.name != "Diamants de Bria" for h in search(node, "organisation", ["Diamants de Bria"])
    )
    assert search(node, "person", ["Odette Yakite"])[0].person_index == 0
    records, _ = index_state(node)
    assert [part for _, _, _, part, *_ in records] == [0, 1]


def test_a_deleted_record_leaves_the_index(node):
    kept, gone = create(node, subject(), subject(names=["Fiston Kalonji Tshibangu"]))
    with node.sessions() as session:
        SubjectRegistry(session, ANALYST, node.now()).delete(gone)
        session.commit()

    assert search(node, "person", ["Fiston Kalonji Tshibangu"]) == []
    records, keys = index_state(node)
    assert {r[2] for r in records} == {1}  # only the kept subject's rows
    assert {k[1] for k in keys} == {r[0] for r in records}
    assert search(node, "person", ["Marcel Ngouandjika"])[0].ref == kept


# -- rebuilding and bulk rows --------------------------------------------------------------------


def test_reindex_rebuilds_identically(node):
    _, _, gone = create(node, licensee(), subject(), subject(names=["Odette Yakité"]))
    with node.sessions() as session:
        SubjectRegistry(session, ANALYST, node.now()).delete(gone)
        session.commit()
    written = index_state(node)

    with node.sessions() as session:
        session.execute(delete(MatchKey))
        session.execute(delete(MatchRecord))
        session.commit()
    assert index_state(node) == ([], [])
    seen = []
    with node.sessions() as session:
        counts = MatchIndex.rebuild(session, progress=lambda *a: seen.append(a))
        session.commit()

    assert index_state(node) == written
    assert counts == (len(written[0]), len(written[1]))
    assert seen[-1] == ("index", 2, 2)  # live records: the licensee and one subject


def test_bulk_rows_are_the_rows_the_registries_write(node):
    create(node, licensee(), subject())
    records, keys = index_state(node)
    fields = [
        {"record_kind": "licensee", "record_id": 1, "fields": licensee().model_dump(mode="json")},
        {"record_kind": "subject", "record_id": 1, "fields": subject().model_dump(mode="json")},
    ]
    rows = index_rows(fields)
    assert sorted(tuple(r.values()) for r in rows.records) == [tuple(r) for r in records]
    assert sorted((k["key"], k["match_id"]) for k in rows.keys) == keys


def test_kpnet_kyc_reindex(node, settings):
    create(node, licensee(), subject())
    written = index_state(node)
    with node.sessions() as session:
        session.execute(delete(MatchKey))
        session.commit()

    kpnet = Path(sys.executable).parent / "kpnet"
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPNET_")}
    done = subprocess.run(
        [str(kpnet), "kyc", "reindex", "--data-dir", str(settings.data_dir)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
    )

    assert done.returncode == 0, done.stderr
    assert "4 persons and organisations" in done.stdout  # the licensee, its 2 persons, 1 subject
    assert index_state(node) == written


def test_a_csv_import_fills_the_index_as_a_rebuild_would(node):
    from node.services.csv_import import import_csv

    licensees = (
        "licence_number;licence_type;legal_name;trade_names;directors\n"
        "CF-BA-1;comptoir;Comptoir Étoile du Sud SARL;Star Diamonds;"
        "Jean-Pierre Mbala|Odette Yakité\n"
        "CF-BA-2;collecteur;Ets Kalonji et Fils;;Fiston Kalonji\n"
    )
    subjects = (
        "kind;names;aliases;date_of_birth;reason_category\n"
        "personne;Marcel Ngouandjika;Le Colonel;12/06/1975;smuggling\n"
    )
    for kind, text in (("licensees", licensees), ("subjects", subjects)):
        report = import_csv(
            node.sessions, kind, io.BytesIO(text.encode()), actor=ANALYST, now=node.now()
        )
        assert report.written, report.errors
    imported = index_state(node)

    assert len(imported[0]) == 6  # 2 licensees, 3 directors, 1 subject
    assert search(node, "organisation", ["Kalonji & Fils"])[0].record_kind == "licensee"
    assert search(node, "person", ["MBALA Jean Pierre"])[0].person_index == 0
    assert search(node, "person", ["Ngouandjika Marcel"], date_of_birth="1975")[0].score >= 680
    with node.sessions() as session:
        MatchIndex.rebuild(session)
        session.commit()
    assert index_state(node) == imported
