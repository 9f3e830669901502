"""``/api/v1/disclosures``: step 2 of a KYC check, on both sides.

Officers and analysts ask a peer for the details behind a subject reference from its
answer, and read requests and decisions; analysts grant (choosing the fields released)
or deny (with a reason) the requests peers sent us. Each reader sees only the requests
within its clearance; a request above it answers 404.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status

from ...schemas.kyc import DisclosureCreate, DisclosureDecision, DisclosureOut
from ...web.params import Offset, RowId
from ..deps import AsReader, AsWriter

router = APIRouter(prefix="/disclosures", tags=["disclosures"])


@router.post(
    "",
    response_model=DisclosureOut,
    status_code=status.HTTP_201_CREATED,
    summary="Ask a peer for the details behind a reference in its KYC answer",
)
def request_disclosure(work: AsReader, body: DisclosureCreate) -> Any:
    service = work.disclosures()
    disclosure, sent = service.request(body)
    work.commit(deliver=[sent.message_id])
    return service.view(disclosure)


@router.get(
    "",
    response_model=list[DisclosureOut],
    summary="Disclosure requests, newest first: ours (outbound) and peers' (inbound)",
)
def list_disclosures(
    work: AsReader,
    direction: Literal["inbound", "outbound"] | None = None,
    status: Literal["pending", "granted", "denied"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Any:
    shown = work.disclosures().recent(
        direction=direction, status=status, limit=limit, offset=offset
    )
    work.commit()  # the list is audited
    return shown


@router.get(
    "/{disclosure_id}",
    response_model=DisclosureOut,
    summary="One request; a pending inbound one shows the fields that could be released",
)
def read_disclosure(work: AsReader, disclosure_id: RowId) -> Any:
    shown = work.disclosures().get(disclosure_id)
    work.commit()  # the read is audited
    return shown


@router.post(
    "/{disclosure_id}/decision",
    response_model=DisclosureOut,
    summary="Grant (releasing the chosen fields) or deny (with a reason) a peer's request",
)
def decide_disclosure(work: AsWriter, disclosure_id: RowId, body: DisclosureDecision) -> Any:
    service = work.disclosures()
    disclosure, sent = service.decide(disclosure_id, body)
    work.commit(deliver=[sent.message_id])
    return service.view(disclosure)
