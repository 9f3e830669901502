"""What licensees and subjects have in common: references, versions, history, soft
deletion, listing with filters and text search, and the audit entry of every change.

``RecordRegistry`` is specialised by ``LicenseeRegistry`` and ``SubjectRegistry``;
callers commit (services never do), so one request is one transaction.

Every query is bounded by the actor's clearance: a record marked above it is not
listed, not counted, and reading, changing or deleting it answers ``NotFound``; nor
may an actor mark a record above its own clearance.
"""

from __future__ import annotations

import unicodedata
import uuid
from datetime import date, datetime
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel
from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from protocol import RecordKind

from ..db.models import RecordChange, RecordMixin
from ..matching.index import MatchIndex
from ..roles import cleared_for
from .actors import Actor
from .audit import AuditLog
from .clearance import within_clearance
from .errors import Conflict, InvalidInput, NotFound


def fold(text: str) -> str:
    """Case- and accent-insensitive form used for text search."""
    if text.isascii():  # nothing to decompose (most names in bulk imports)
        return " ".join(text.casefold().split())
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def json_value(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json", exclude_none=True)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    return value


M = TypeVar("M", bound=RecordMixin)


class RecordRegistry(Generic[M]):
    model: ClassVar[type[Any]]
    kind: ClassVar[RecordKind]
    fields: ClassVar[tuple[str, ...]]
    filters: ClassVar[tuple[str, ...]] = ()

    def __init__(self, session: Session, actor: Actor, now: datetime) -> None:
        self.session = session
        self.actor = actor
        self.now = now
        self.audit = AuditLog(session)

    # -- what each kind defines --------------------------------------------------------
    def search_terms(self, record: M) -> list[str]:
        raise NotImplementedError

    def create(self, data: Any) -> M:
        raise NotImplementedError

    def update(self, ref: str, data: Any) -> M:
        raise NotImplementedError

    # -- reading ---------------------------------------------------------------------
    def visible(self) -> Any:
        """The condition on this kind's records: within the actor's clearance."""
        return within_clearance(self.model.handling, self.actor)

    def get(self, ref: str) -> M:
        record: M | None = self.session.execute(
            select(self.model).where(
                self.model.ref == ref, self.model.deleted_at.is_(None), self.visible()
            )
        ).scalar_one_or_none()
        if record is None:
            raise NotFound(f"no {self.kind} {ref}")
        return record

    def read(self, ref: str) -> M:
        """A record's details as shown to a user (kinds may audit the read)."""
        return self.get(ref)

    def search(
        self, *, q: str | None = None, limit: int = 50, offset: int = 0, **filters: Any
    ) -> tuple[list[M], int]:
        query: Select[Any] = select(self.model).where(
            self.model.deleted_at.is_(None), self.visible()
        )
        for name, value in filters.items():
            if value is not None:
                if name not in self.filters:
                    raise InvalidInput(name, "unknown filter")
                query = query.where(getattr(self.model, name) == value)
        for word in fold(q or "").split():
            escaped = word.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            query = query.where(self.model.search_text.like(f"%{escaped}%", escape="\\"))
        total = self.session.execute(
            select(func.count()).select_from(query.subquery())
        ).scalar_one()
        items = (
            self.session.execute(query.order_by(self.model.id).limit(limit).offset(offset))
            .scalars()
            .all()
        )
        return list(items), total

    def history(self, ref: str) -> list[RecordChange]:
        """Every version of a record, its deletion included (so a deleted record's
        history stays readable)."""
        record = self.session.execute(
            select(self.model).where(self.model.ref == ref, self.visible())
        ).scalar_one_or_none()
        if record is None:
            raise NotFound(f"no {self.kind} {ref}")
        return list(
            self.session.execute(
                select(RecordChange)
                .where(RecordChange.record_kind == self.kind, RecordChange.record_id == record.id)
                .order_by(RecordChange.version)
            ).scalars()
        )

    # -- writing ---------------------------------------------------------------------
    def snapshot(self, record: M) -> dict[str, Any]:
        return {name: json_value(getattr(record, name)) for name in self.fields}

    def check_handling(self, values: dict[str, Any]) -> None:
        """Refuse marking a record above the actor's clearance (it could not read it)."""
        handling = values.get("handling")
        if handling is not None and not cleared_for(self.actor.clearance, handling):
            raise InvalidInput("handling", f"above your clearance (TLP:{self.actor.clearance})")

    def new_record(self, values: dict[str, Any]) -> M:
        self.check_handling(values)
        record: M = self.model(
            ref=str(uuid.uuid4()),
            version=1,
            created_at=self.now,
            created_by=self.actor.name,
            updated_at=self.now,
            updated_by=self.actor.name,
            **{
                name: json_value(value) if isinstance(value, list) else value
                for name, value in values.items()
            },
        )
        record.search_text = fold(" ".join(self.search_terms(record)))
        self.session.add(record)
        self.session.flush()
        MatchIndex.update(self.session, self.kind, record)
        self._changed(record, "create", {k: [None, v] for k, v in self.snapshot(record).items()})
        return record

    def apply_changes(self, record: M, values: dict[str, Any], expected_version: int | None) -> M:
        self.check_version(record, expected_version)
        self.check_handling(values)
        before = self.snapshot(record)
        for name, value in values.items():
            setattr(record, name, json_value(value) if isinstance(value, list) else value)
        after = self.snapshot(record)
        changes = {k: [before[k], after[k]] for k in after if before[k] != after[k]}
        if not changes:
            return record
        record.version += 1
        record.updated_at, record.updated_by = self.now, self.actor.name
        record.search_text = fold(" ".join(self.search_terms(record)))
        self.session.flush()
        MatchIndex.update(self.session, self.kind, record)
        self._changed(record, "update", changes)
        return record

    def delete(self, ref: str, expected_version: int | None = None) -> None:
        record = self.get(ref)
        self.check_version(record, expected_version)
        record.deleted_at, record.deleted_by = self.now, self.actor.name
        record.version += 1
        self.session.flush()
        MatchIndex.remove(self.session, self.kind, record.id)
        self._changed(record, "delete", {})

    def check_version(self, record: M, expected: int | None) -> None:
        if expected is not None and expected != record.version:
            raise Conflict(
                f"{self.kind} {record.ref} is at version {record.version}, not {expected}; "
                "reload it and try again"
            )

    def _changed(self, record: M, action: str, changes: dict[str, Any]) -> None:
        self.session.add(
            RecordChange(
                record_kind=self.kind,
                record_id=record.id,
                version=record.version,
                action=action,
                changed_at=self.now,
                changed_by=self.actor.name,
                changes=changes,
                snapshot=self.snapshot(record),
            )
        )
        self.audit.record(
            str(self.actor),
            f"{self.kind}.{action}",
            now=self.now,
            target_kind=self.kind,
            target_id=record.ref,
            detail={"version": record.version, "fields": sorted(changes)},
        )
