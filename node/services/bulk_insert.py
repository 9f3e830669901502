"""Writing many new records at once, with exactly the rows one-by-one creation writes:
the record (same search text, version 1), its first history row, its match index entries
(``node.matching.index``), and for a licensee its first status change.

Core bulk INSERTs in chunks, not one ORM object per row: references are generated here
and ids read back by reference (cheaper than ``RETURNING`` on every backend). The caller
writes the audit entries (one ``AuditLog.record_many`` for the lot) and commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Date, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import LicenceStatusChange, Licensee, RecordChange, table_of
from ..matching.index import MatchIndex, index_rows
from .actors import Actor
from .errors import Conflict
from .records import RecordRegistry, fold

CHUNK = 2000
HISTORY_ACTION = "import"
STATUS_REASON = "imported"
SQLITE_IMPORT_CACHE_KIB = 256 * 1024
_HISTORY = table_of(RecordChange)
_STATUS_CHANGES = table_of(LicenceStatusChange)


@contextmanager
def roomy_page_cache(session: Session, kib: int = SQLITE_IMPORT_CACHE_KIB) -> Iterator[None]:
    """On SQLite, give the connection a large page cache while a bulk write runs.

    With the default 2 MB, a 100,000-row transaction spills its dirty pages to the WAL
    again and again before commit (twice the database size in writes, most of the
    system time). The cache is allocated only as used and set back afterwards.
    """
    if session.get_bind().dialect.name != "sqlite":
        yield
        return
    raw = session.connection().connection.dbapi_connection
    assert raw is not None
    before = raw.execute("PRAGMA cache_size").fetchone()[0]
    raw.execute(f"PRAGMA cache_size = -{int(kib)}")
    try:
        yield
    finally:
        raw.execute(f"PRAGMA cache_size = {int(before)}")


class BulkInsert:
    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self.now = now

    def insert(
        self,
        registry_type: type[RecordRegistry[Any]],
        items: Sequence[BaseModel],
    ) -> list[str]:
        """Insert ``items`` (validated ``*Create`` models) in order; return their refs."""
        registry = registry_type(self.session, self.actor, self.now)
        refs: list[str] = []
        try:
            for start in range(0, len(items), CHUNK):
                refs.extend(self._chunk(registry, items[start : start + CHUNK]))
        except IntegrityError:
            raise Conflict(
                f"another {registry.kind} with the same licence number was registered while "
                "the file was being imported; nothing was written, import the file again"
            ) from None
        return refs

    def _chunk(self, registry: RecordRegistry[Any], items: Sequence[BaseModel]) -> list[str]:
        model, kind, who = registry.model, registry.kind, self.actor.name
        table = table_of(model)
        date_fields = [name for name in registry.fields if isinstance(table.c[name].type, Date)]
        rows: list[dict[str, Any]] = []
        snapshots: list[dict[str, Any]] = []
        for item in items:
            # The JSON form is exactly the registry's snapshot (json_value of each field);
            # the columns take the same values, dates as dates.
            dumped = item.model_dump(mode="json")
            snapshot = {name: dumped[name] for name in registry.fields}
            values = {**snapshot, **{name: getattr(item, name) for name in date_fields}}
            values.update(
                ref=str(uuid.uuid4()),
                version=1,
                search_text=fold(" ".join(registry.search_terms(SimpleNamespace(**snapshot)))),
                created_at=self.now,
                created_by=who,
                updated_at=self.now,
                updated_by=who,
            )
            rows.append(values)
            snapshots.append(snapshot)
        self.session.execute(insert(table), rows)
        refs = [row["ref"] for row in rows]
        ids: dict[str, int] = dict(
            self.session.execute(select(model.ref, model.id).where(model.ref.in_(refs))).all()
        )
        self.session.execute(
            insert(_HISTORY),
            [
                {
                    "record_kind": kind,
                    "record_id": ids[row["ref"]],
                    "version": 1,
                    "action": HISTORY_ACTION,
                    "changed_at": self.now,
                    "changed_by": who,
                    "changes": {name: [None, value] for name, value in snapshot.items()},
                    "snapshot": snapshot,
                }
                for row, snapshot in zip(rows, snapshots, strict=True)
            ],
        )
        MatchIndex.insert_rows(
            self.session,
            index_rows(
                {"record_kind": kind, "record_id": ids[row["ref"]], "fields": snapshot}
                for row, snapshot in zip(rows, snapshots, strict=True)
            ),
        )
        if model is Licensee:
            self.session.execute(
                insert(_STATUS_CHANGES),
                [
                    {
                        "licensee_id": ids[row["ref"]],
                        "status": row["status"],
                        "reason": STATUS_REASON,
                        "changed_at": self.now,
                        "changed_by": who,
                    }
                    for row in rows
                ],
            )
        return refs
