"""``/api/v1/kyc/checks``: run a KYC check (local, or federated across peers) and
reopen it later. Officers and analysts run and read checks.

A federated check queues one ``kyc.query`` per peer, delivers them all at once, and
waits until every peer has answered or the timeout has passed; the answer then says
which peers have not answered. Their late answers are kept and appear when the check
is read again.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, status

from ...schemas.kyc import CheckCreate, CheckOut, CheckSummary
from ...web.kyc_checks import run_check
from ...web.params import Offset
from ...web.request import outbox_sender
from ..deps import AsReader

router = APIRouter(prefix="/kyc", tags=["kyc"])


@router.post(
    "/checks",
    response_model=CheckOut,
    status_code=status.HTTP_201_CREATED,
    summary="Run a KYC check; federation scope asks peers and waits for them",
)
async def create_check(work: AsReader, body: CheckCreate) -> Any:
    request = work.request
    return await run_check(
        work.node,
        work.actor,
        body,
        sender=outbox_sender(request),
        answers=request.app.state.answer_feed,
    )


@router.get("/checks", response_model=list[CheckSummary], summary="Checks, newest first")
def list_checks(
    work: AsReader,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Any:
    return work.kyc().recent(limit=limit, offset=offset)


@router.get(
    "/checks/{check_id}",
    response_model=CheckOut,
    summary="A check as it stands now, late answers included",
)
def read_check(work: AsReader, check_id: str) -> Any:
    shown = work.kyc().read(check_id)
    work.commit()  # the read is audited
    return shown
