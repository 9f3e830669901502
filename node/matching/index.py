"""The match index in the node's database: ``match_records`` (what scoring needs of each
person or organisation, one row each) and ``match_keys`` (its blocking keys).

A licensee gives one organisation (legal name and trade names, its licence number) and
one person per director, beneficial owner or manager (pointing back to the licensee,
with the licence number too); a subject gives one person or organisation (names and
aliases). ``MatchIndex.update`` / ``remove`` keep the index in step with every write of
``RecordRegistry``; ``index_rows`` serves bulk writers; ``MatchIndex.rebuild`` starts
again from the records (``kpnet kyc reindex``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from sqlalchemy import bindparam, delete, func, insert, select
from sqlalchemy.orm import Session

from protocol import RECORD_KINDS, RecordKind

from ..db.models import Licensee, MatchKey, MatchRecord, Subject, table_of
from .keys import birth_year, record_keys
from .normalise import ORGANISATION, PARTIES, normalise_identifier, normalise_name

KIND_CODES = {kind: code for code, kind in enumerate(RECORD_KINDS)}
PARTS = 64  # part 0 and at most 63 persons of a licensee (the schema allows 50)
RECORD_FIELDS = {
    "licensee": ("licence_number", "legal_name", "trade_names", "persons"),
    "subject": (
        "kind",
        "names",
        "aliases",
        "date_of_birth",
        "nationality",
        "documents",
        "linked_licence_numbers",
    ),
}
CHUNK = 2000

Progress = Callable[[str, int, int], None]

_keys = table_of(MatchKey)
_records = table_of(MatchRecord)
_delete_key = _keys.delete().where(
    _keys.c.key == bindparam("k"), _keys.c.match_id == bindparam("m")
)


def match_id(record_kind: RecordKind, record_id: int, part: int = 0) -> int:
    return record_id * 2 * PARTS + KIND_CODES[record_kind] * PARTS + part


def parse_match_id(value: int) -> tuple[RecordKind, int, int]:
    """(record kind, record id, part) of a match record id."""
    record_id, rest = divmod(value, 2 * PARTS)
    kind, part = divmod(rest, PARTS)
    return RECORD_KINDS[kind], record_id, part


@dataclass
class IndexRows:
    """Rows for one Core INSERT into each table."""

    records: list[dict[str, Any]] = field(default_factory=list)
    keys: list[dict[str, Any]] = field(default_factory=list)


def _identifiers(prefix: str, numbers: Iterable[str]) -> list[str]:
    found = (normalise_identifier(n) for n in numbers if n)
    return list(dict.fromkeys(f"{prefix}:{n}" for n in found if n))


def _part(
    record_kind: RecordKind,
    record_id: int,
    part: int,
    party: str,
    names: Sequence[tuple[str, str]],
    date_of_birth: str | None,
    nationality: str | None,
    identifiers: list[str],
) -> dict[str, Any] | None:
    if party not in PARTIES:
        return None
    normalised = [(normalise_name(name, party), tag) for name, tag in names if name]
    normalised = [(n, tag) for n, tag in normalised if n.tokens]
    if not normalised and not identifiers:
        return None
    return {
        "id": match_id(record_kind, record_id, part),
        "record_kind": record_kind,
        "record_id": record_id,
        "part": part,
        "party": party,
        "names": [[n.original, n.text, tag] for n, tag in normalised],
        "date_of_birth": date_of_birth or None,
        "nationality": nationality or None,
        "identifiers": identifiers,
        "keys": record_keys([n for n, _ in normalised], birth_year(date_of_birth), identifiers),
    }


def _documents(documents: Iterable[Any]) -> list[str]:
    return [d["number"] if isinstance(d, Mapping) else d.number for d in documents or ()]


def entries(
    record_kind: RecordKind, record_id: int, fields: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """The ``match_records`` rows (with their ``keys``) of one licensee or subject."""
    parts: list[dict[str, Any] | None] = []
    if record_kind == "licensee":
        licence = _identifiers("l", [fields["licence_number"]])
        names = [
            (fields["legal_name"], "name"),
            *((t, "trade name") for t in fields.get("trade_names") or ()),
        ]
        parts.append(_part(record_kind, record_id, 0, ORGANISATION, names, None, None, licence))
        for index, person in enumerate((fields.get("persons") or ())[: PARTS - 1]):
            if not isinstance(person, Mapping):
                person = person.model_dump(mode="json")
            role = (person.get("role") or "person").replace("_", " ")
            parts.append(
                _part(
                    record_kind,
                    record_id,
                    index + 1,
                    "person",
                    [(person["name"], role)],
                    person.get("date_of_birth"),
                    person.get("nationality"),
                    _identifiers("d", _documents(person.get("documents"))) + licence,
                )
            )
    elif record_kind == "subject":
        names = [
            *((n, "name") for n in fields["names"]),
            *((a, "alias") for a in fields.get("aliases") or ()),
        ]
        parts.append(
            _part(
                record_kind,
                record_id,
                0,
                fields["kind"],
                names,
                fields.get("date_of_birth"),
                fields.get("nationality"),
                _identifiers("d", _documents(fields.get("documents") or ()))
                + _identifiers("l", fields.get("linked_licence_numbers") or ()),
            )
        )
    else:
        raise ValueError(f"unknown record kind {record_kind!r}")
    return [p for p in parts if p is not None]


def index_rows(items: Iterable[Mapping[str, Any]]) -> IndexRows:
    """Rows for new records given as ``{"record_kind", "record_id", "fields"}`` (fields
    as JSON-like dicts: see ``RECORD_FIELDS``), for bulk writers: insert them with
    ``MatchIndex.insert_rows`` (or one Core INSERT per table)."""
    rows = IndexRows()
    for item in items:
        for row in entries(item["record_kind"], item["record_id"], item["fields"]):
            rows.records.append(row)
            rows.keys.extend({"key": key, "match_id": row["id"]} for key in row["keys"])
    return rows


def fields_of(record_kind: RecordKind, record: Any) -> dict[str, Any]:
    """The fields the index reads, from an ORM record, a namespace or a pydantic model."""
    if isinstance(record, BaseModel):
        dumped = record.model_dump(mode="json")
        return {name: dumped.get(name) for name in RECORD_FIELDS[record_kind]}
    return {name: getattr(record, name) for name in RECORD_FIELDS[record_kind]}


class MatchIndex:
    """Writes to the match index; callers commit (it runs inside their transaction)."""

    @staticmethod
    def update(session: Session, record_kind: RecordKind, record: Any) -> None:
        """Index a new or changed record (removing what it no longer gives)."""
        if getattr(record, "deleted_at", None) is not None:
            MatchIndex.remove(session, record_kind, record.id)
            return
        new = {
            row["id"]: row
            for row in entries(record_kind, record.id, fields_of(record_kind, record))
        }
        old = MatchIndex._current(session, record_kind, record.id)
        gone, added = [], []
        for mid in old.keys() | new.keys():
            before = set(old.get(mid, ()))
            after = set(new[mid]["keys"]) if mid in new else set()
            gone += [{"k": key, "m": mid} for key in before - after]
            added += [{"key": key, "match_id": mid} for key in after - before]
        if gone:
            session.execute(_delete_key, gone)
        if old:
            session.execute(delete(_records).where(_records.c.id.in_(list(old))))
        if new:
            session.execute(insert(_records), list(new.values()))
        if added:
            session.execute(insert(_keys), added)

    @staticmethod
    def remove(session: Session, record_kind: RecordKind, record_id: int) -> None:
        """Take a record (deleted) out of the index."""
        old = MatchIndex._current(session, record_kind, record_id)
        gone = [{"k": key, "m": mid} for mid, keys in old.items() for key in keys]
        if gone:
            session.execute(_delete_key, gone)
        if old:
            session.execute(delete(_records).where(_records.c.id.in_(list(old))))

    @staticmethod
    def insert_rows(session: Session, rows: IndexRows) -> None:
        for start in range(0, len(rows.records), CHUNK):
            session.execute(insert(_records), rows.records[start : start + CHUNK])
        # Keys are most of an import's rows: hand them to the driver's executemany as
        # plain tuples (SQLAlchemy's per-row parameter processing would double the cost).
        connection = session.connection()
        mark = "%s" if connection.dialect.paramstyle in ("format", "pyformat") else "?"
        sql = f"INSERT INTO match_keys (key, match_id) VALUES ({mark}, {mark})"  # noqa: S608
        # In key order, so the clustered key index is written page by page, not at random.
        pairs = sorted((k["key"], k["match_id"]) for k in rows.keys)
        for start in range(0, len(pairs), CHUNK * 10):
            connection.exec_driver_sql(sql, pairs[start : start + CHUNK * 10])

    @staticmethod
    def rebuild(session: Session, progress: Progress | None = None) -> tuple[int, int]:
        """Empty the index and index every live record again; returns (match records,
        keys) written."""
        session.execute(delete(_keys))
        session.execute(delete(_records))
        total = sum(
            session.execute(
                select(func.count()).select_from(model).where(model.deleted_at.is_(None))
            ).scalar_one()
            for model in (Licensee, Subject)
        )
        done = records = keys = 0
        for record_kind, model in (("licensee", Licensee), ("subject", Subject)):
            columns = [getattr(model, name) for name in RECORD_FIELDS[record_kind]]
            last_id = 0
            while True:
                chunk = session.execute(
                    select(model.id, *columns)
                    .where(model.deleted_at.is_(None), model.id > last_id)
                    .order_by(model.id)
                    .limit(CHUNK)
                ).all()
                if not chunk:
                    break
                last_id = chunk[-1].id
                rows = index_rows(
                    {"record_kind": record_kind, "record_id": row.id, "fields": row._mapping}
                    for row in chunk
                )
                MatchIndex.insert_rows(session, rows)
                done += len(chunk)
                records += len(rows.records)
                keys += len(rows.keys)
                if progress:
                    progress("index", done, total)
        return records, keys

    @staticmethod
    def _current(session: Session, record_kind: RecordKind, record_id: int) -> dict[int, list[str]]:
        low = match_id(record_kind, record_id)
        return dict(
            session.execute(
                select(_records.c.id, _records.c["keys"]).where(
                    _records.c.id.between(low, low + PARTS - 1)
                )
            ).all()
        )
