"""``/api/v1/audit``: the audit log and its verification, for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from ...services.audit import search_entries, verify_chain
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
    rows, total = search_entries(session, action=action, who=who, target_id=target_id,
                                 since=since, until=until, limit=limit, offset=offset)
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.get("/verify", response_model=ChainOut, summary="Verify the hash chain")
def verify_audit(session: SessionDep, actor: Auditor) -> Any:
    return verify_chain(session)
