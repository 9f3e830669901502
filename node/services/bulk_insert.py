"""Writing many new records at once, with exactly the rows one-by-one creation writes:
the record (same search text, version 1), its first history row, and for a licensee its
first status change.

Core bulk INSERTs in chunks, not one ORM object per row: references are generated here
and ids read back by reference (cheaper than ``RETURNING`` on every backend). The caller
writes the audit entries (one ``AuditLog.record_many`` for the lot) and commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..db.models import LicenceStatusChange, Licensee, RecordChange
from .records import Actor, Conflict, RecordRegistry, fold, json_value

CHUNK = 2000
HISTORY_ACTION = "import"
STATUS_REASON = "imported"


class BulkInsert:
    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self.now = now

    def insert(
        self, registry_type: type[RecordRegistry[Any]], items: Sequence[BaseModel], *,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> list[str]:
        """Insert ``items`` (validated ``*Create`` models) in order; return their refs."""
        registry = registry_type(self.session, self.actor, self.now)
        refs: list[str] = []
        try:
            for start in range(0, len(items), CHUNK):
                refs.extend(self._chunk(registry, items[start:start + CHUNK]))
                if progress:
                    progress("write", len(refs), len(items))
        except IntegrityError:
            raise Conflict(
                f"another {registry.kind} with the same licence number was registered while "
                "the file was being imported; nothing was written, import the file again"
            ) from None
        return refs

    def _chunk(self, registry: RecordRegistry[Any], items: Sequence[BaseModel]) -> list[str]:
        model, kind, who = registry.model, registry.kind, self.actor.name
        rows: list[dict[str, Any]] = []
        for item in items:
            dumped = item.model_dump()
            values = {name: dumped[name] for name in registry.fields}
            rows.append({
                **values,
                "ref": str(uuid.uuid4()), "version": 1,
                "search_text": fold(" ".join(registry.search_terms(SimpleNamespace(**values)))),
                "created_at": self.now, "created_by": who,
                "updated_at": self.now, "updated_by": who,
            })
        self.session.execute(insert(model.__table__), rows)
        refs = [row["ref"] for row in rows]
        ids = dict(self.session.execute(
            select(model.ref, model.id).where(model.ref.in_(refs))
        ).tuples().all())
        history = []
        for row in rows:
            snapshot = {name: json_value(row[name]) for name in registry.fields}
            history.append({
                "record_kind": kind, "record_id": ids[row["ref"]], "version": 1,
                "action": HISTORY_ACTION, "changed_at": self.now, "changed_by": who,
                "changes": {name: [None, value] for name, value in snapshot.items()},
                "snapshot": snapshot,
            })
        self.session.execute(insert(RecordChange.__table__), history)
        if model is Licensee:
            self.session.execute(insert(LicenceStatusChange.__table__), [
                {"licensee_id": ids[row["ref"]], "status": row["status"],
                 "reason": STATUS_REASON, "changed_at": self.now, "changed_by": who}
                for row in rows
            ])
        return refs
