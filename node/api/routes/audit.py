"""``/api/v1/audit``: the audit log and its verification, for auditors."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import func, select

from ...db.models import AuditEntry
from ...services.audit import verify_chain
from ..deps import Auditor, SessionDep

router = APIRouter(prefix="/audit", tags=["audit"])


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target_kind: str | None
    target_id: str | None
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


class ChainOut(BaseModel):
    ok: bool
    entries: int
    first_broken_seq: int | None
    problem: str | None


def _utc(moment: datetime) -> datetime:
    """A time given without a zone is UTC, like the log's own times."""
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@router.get("", response_model=AuditPage, summary="Read the audit log, newest first")
def list_audit(
    session: SessionDep,
    actor: Auditor,
    action: Annotated[str | None, Query(max_length=60, description="Exact action, or a prefix ending in '.'")] = None,
    who: Annotated[str | None, Query(max_length=100, description="Actor name contains")] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    query = select(AuditEntry)
    if action:
        query = query.where(
            AuditEntry.action.startswith(action) if action.endswith(".") else AuditEntry.action == action
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
    rows = session.execute(
        query.order_by(AuditEntry.seq.desc()).limit(limit).offset(offset)
    ).scalars().all()
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.get("/verify", response_model=ChainOut, summary="Verify the hash chain")
def verify_audit(session: SessionDep, actor: Auditor) -> Any:
    return verify_chain(session)
