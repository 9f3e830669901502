"""``/api/v1/audit``: the audit log and its verification, for auditors."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from ...schemas.audit import AuditPage, ChainOut
from ...services.audit import search_entries, verify_chain
from ...web.params import Offset
from ..deps import AsAuditor

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=AuditPage, summary="Read the audit log, newest first")
def list_audit(
    work: AsAuditor,
    action: Annotated[
        str | None, Query(max_length=60, description="Exact action, or a prefix ending in '.'")
    ] = None,
    who: Annotated[str | None, Query(max_length=100, description="Actor name contains")] = None,
    target_id: Annotated[str | None, Query(max_length=64)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Offset = 0,
) -> Any:
    rows, total = search_entries(
        work.session,
        action=action,
        who=who,
        target_id=target_id,
        since=since,
        until=until,
        limit=limit,
        offset=offset,
    )
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.get("/verify", response_model=ChainOut, summary="Verify the hash chain")
def verify_audit(work: AsAuditor) -> Any:
    return verify_chain(work.session)
