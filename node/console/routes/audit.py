"""The audit log for auditors: filters, pages, and verification of the hash chain."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import Response

from ...services.audit import search_entries, verify_chain
from ...web.params import MAX_OFFSET
from ..auth import AuditorWork
from ..pages import page

router = APIRouter(prefix="/console/audit")
PAGE_SIZE = 100


def _day(text: str | None, *, end: bool = False) -> datetime | None:
    """A date from a date input: the start of that day (UTC), or of the next for ``end``."""
    if not text:
        return None
    try:
        day = datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None
    if end and len(text) == 10:
        day = day.fromordinal(day.toordinal() + 1).replace(tzinfo=UTC)
    return day


@router.get("", include_in_schema=False)
def audit_log(work: AuditorWork) -> Response:
    params, session = work.request.query_params, work.session
    filters = {
        name: (params.get(name) or "").strip()[:100]
        for name in ("action", "who", "target_id", "since", "until")
    }
    try:
        offset = min(MAX_OFFSET, max(0, int(params.get("offset") or 0)))
    except ValueError:
        offset = 0
    rows, total = search_entries(
        session,
        action=filters["action"] or None,
        who=filters["who"] or None,
        target_id=filters["target_id"] or None,
        since=_day(filters["since"]),
        until=_day(filters["until"], end=True),
        limit=PAGE_SIZE,
        offset=offset,
    )
    query = "&".join(f"{k}={v}" for k, v in filters.items() if v)
    report = verify_chain(session) if params.get("verify") else None
    return page(
        work.request,
        work.viewer,
        "audit.html",
        rows=rows,
        total=total,
        offset=offset,
        limit=PAGE_SIZE,
        filters=filters,
        report=report,
        base=f"/console/audit?{query}{'&' if query else ''}",
    )
