"""The audit log: append-only and hash-chained.

Entry ``n`` stores ``hash = SHA-256(prev_hash ‖ "\\n" ‖ canonical JSON of its fields)``
where ``prev_hash`` is entry ``n-1``'s hash (64 zeros for the first). The single
``audit_head`` row names the last entry and is locked while appending, so concurrent
writers (several processes on one PostgreSQL) append in turn, inside the same
transaction as the change they record. ``verify_chain`` recomputes everything and
names the first entry that was edited, deleted or reordered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session

from protocol import canonical_json

from ..db.models import AuditEntry, AuditHead, table_of

GENESIS_HASH = "0" * 64


@dataclass(frozen=True)
class AuditEvent:
    actor: str
    action: str
    target_kind: str | None = None
    target_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


def _timestamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def entry_hash(prev_hash: str, seq: int, at: datetime, event: AuditEvent) -> str:
    body = canonical_json(
        {
            "seq": seq,
            "at": _timestamp(at),
            "actor": event.actor,
            "action": event.action,
            "target_kind": event.target_kind,
            "target_id": event.target_id,
            "detail": event.detail,
        }
    )
    return hashlib.sha256(prev_hash.encode("ascii") + b"\n" + body).hexdigest()


_HEAD = table_of(AuditHead)
_LOCK_HEAD = select(_HEAD.c.seq, _HEAD.c.hash).where(_HEAD.c.id == 1).with_for_update()
_MOVE_HEAD = (
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("new_seq"), hash=bindparam("new_hash"))
)
_INSERT_ENTRIES = insert(table_of(AuditEntry))


class AuditLog:
    """Appends to the audit chain within the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(
        self,
        actor: str,
        action: str,
        *,
        now: datetime,
        target_kind: str | None = None,
        target_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        self.record_many([AuditEvent(actor, action, target_kind, target_id, detail or {})], now=now)

    def record_many(self, events: Iterable[AuditEvent], *, now: datetime) -> int:
        # The caller's pending objects are written first, as they always were; the
        # chain's own rows and head then go by Core statements, without the ORM's
        # bookkeeping.
        self._session.flush()
        connection = self._session.connection()
        seq, prev = connection.execute(_LOCK_HEAD).one()
        rows: list[dict[str, Any]] = []
        for event in events:
            seq += 1
            digest = entry_hash(prev, seq, now, event)
            rows.append(
                {
                    "seq": seq,
                    "at": now,
                    "actor": event.actor,
                    "action": event.action,
                    "target_kind": event.target_kind,
                    "target_id": event.target_id,
                    "detail": event.detail,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        if rows:
            connection.execute(_INSERT_ENTRIES, rows)
            connection.execute(_MOVE_HEAD, {"new_seq": seq, "new_hash": prev})
        return len(rows)


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    entries: int
    first_broken_seq: int | None = None
    problem: str | None = None


def _entries(session: Session, batch: int) -> Iterator[AuditEntry]:
    last = 0
    while True:
        chunk = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.seq > last)
                .order_by(AuditEntry.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq
        session.expunge_all()


def verify_chain(session: Session, *, batch: int = 5000) -> ChainReport:
    """Recompute the chain; report the first entry that does not hold."""
    prev, expected_seq, count = GENESIS_HASH, 1, 0
    for entry in _entries(session, batch):
        if entry.seq != expected_seq:
            return ChainReport(False, count, expected_seq, f"entry {expected_seq} is missing")
        if entry.prev_hash != prev:
            return ChainReport(False, count, entry.seq, "previous-hash link is broken")
        event = AuditEvent(
            entry.actor, entry.action, entry.target_kind, entry.target_id, entry.detail
        )
        if entry_hash(prev, entry.seq, entry.at, event) != entry.hash:
            return ChainReport(False, count, entry.seq, "entry content does not match its hash")
        prev, expected_seq, count = entry.hash, expected_seq + 1, count + 1
    head = session.execute(select(AuditHead).where(AuditHead.id == 1)).scalar_one()
    if head.seq != count or head.hash != prev:
        return ChainReport(False, count, count + 1, f"entries after {count} were removed")
    return ChainReport(True, count)


def search_entries(
    session: Session,
    *,
    action: str | None = None,
    who: str | None = None,
    target_id: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Entries, newest first, and how many match. ``action`` is exact, or a prefix when
    it ends in '.'; ``who`` is part of the actor's name; times without a zone are UTC."""
    query = select(AuditEntry)
    if action:
        query = query.where(
            AuditEntry.action.startswith(action)
            if action.endswith(".")
            else AuditEntry.action == action
        )
    if who:
        query = query.where(AuditEntry.actor.contains(who, autoescape=True))
    if target_id:
        query = query.where(AuditEntry.target_id == target_id)
    if since:
        query = query.where(AuditEntry.at >= _utc(since))
    if until:
        query = query.where(AuditEntry.at < _utc(until))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        session.execute(query.order_by(AuditEntry.seq.desc()).limit(limit).offset(offset))
        .scalars()
        .all()
    )
    return list(rows), total


def _utc(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def count_entries(session: Session) -> int:
    return session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
