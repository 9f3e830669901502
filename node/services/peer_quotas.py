"""Daily quotas of what a peer may ask of this node: KYC queries answered and disclosure
requests accepted, per peer and UTC day.

The limit is the peer's sharing agreement's own, else the node's setting. Use is counted
in the database (``PeerQuotaUse``), in the transaction that accepts the message, so every
process of a node sharing one database counts against the same quota, and a message
refused later in its handling does not count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Literal

from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..config import Settings
from ..db.models import PeerQuotaUse, table_of
from ..schemas.agreements import SharingAgreement

QuotaKind = Literal["kyc_query", "disclosure_request"]
QUOTA_KINDS: tuple[QuotaKind, ...] = ("kyc_query", "disclosure_request")


@dataclass(frozen=True)
class QuotaDefaults:
    """The node's limits per peer and UTC day, for agreements that set none."""

    kyc_query: int = 500
    disclosure_request: int = 50

    @classmethod
    def of(cls, settings: Settings) -> QuotaDefaults:
        return cls(
            kyc_query=settings.kyc_queries_per_peer_per_day,
            disclosure_request=settings.disclosure_requests_per_peer_per_day,
        )

    def limit(self, agreement: SharingAgreement, kind: QuotaKind) -> int:
        own = (
            agreement.kyc_queries_per_day
            if kind == "kyc_query"
            else agreement.disclosure_requests_per_day
        )
        return own if own is not None else getattr(self, kind)


def utc_day(now: datetime) -> date:
    return now.astimezone(UTC).date()


def take(session: Session, peer_id: str, kind: QuotaKind, limit: int, now: datetime) -> bool:
    """Count one more ``kind`` from ``peer_id`` today if the quota allows it: True when
    counted, False when the quota is used up. The caller commits (or rolls back)."""
    table = table_of(PeerQuotaUse)
    today = (table.c.peer == peer_id, table.c.kind == kind, table.c.day == utc_day(now))
    for _ in range(2):
        # One conditional UPDATE: concurrent takers queue on the row and each sees the
        # count the previous one left, so the quota holds across processes.
        counted = session.execute(
            update(table).where(*today, table.c.used < limit).values(used=table.c.used + 1)
        )
        if counted.rowcount:  # type: ignore[attr-defined]
            return True
        if session.execute(select(table.c.id).where(*today)).first() is not None:
            return False
        try:
            with session.begin_nested():
                session.execute(
                    insert(table).values(peer=peer_id, kind=kind, day=utc_day(now), used=1)
                )
            return True
        except IntegrityError:
            continue  # another process counted the day's first one: count on its row
    return False


def used_today(session: Session, now: datetime) -> dict[tuple[str, str], int]:
    """Today's use by (peer, kind)."""
    table = table_of(PeerQuotaUse)
    rows = session.execute(
        select(table.c.peer, table.c.kind, func.sum(table.c.used))
        .where(table.c.day == utc_day(now))
        .group_by(table.c.peer, table.c.kind)
    )
    return {(peer, kind): int(used) for peer, kind, used in rows}


def used_ratios(
    session: Session,
    peers: Iterable[tuple[str, SharingAgreement]],
    defaults: QuotaDefaults,
    now: datetime,
) -> dict[str, dict[str, float]]:
    """For each peer and quota kind: today's use as a fraction of the limit."""
    used = used_today(session, now)
    return {
        peer_id: {
            kind: used.get((peer_id, kind), 0) / defaults.limit(agreement, kind)
            for kind in QUOTA_KINDS
        }
        for peer_id, agreement in peers
    }
