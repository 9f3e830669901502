"""``/api/v1/disclosures``: step 2 of a KYC check, on both sides.

Officers and analysts ask a peer for the details behind a subject reference from its
answer, and read requests and decisions; analysts grant (choosing the fields released)
or deny (with a reason) the requests peers sent us.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status

from ...schemas_kyc import DisclosureCreate, DisclosureDecision, DisclosureOut
from ...services.disclosures import DisclosureService
from ..deps import NodeDep, Reader, SessionDep, Writer, deliver_soon

router = APIRouter(prefix="/disclosures", tags=["disclosures"])


@router.post("", response_model=DisclosureOut, status_code=status.HTTP_201_CREATED,
             summary="Ask a peer for the details behind a reference in its KYC answer")
def request_disclosure(request: Request, node: NodeDep, session: SessionDep, actor: Reader,
                       body: DisclosureCreate) -> Any:
    service = DisclosureService(session, node.identity, actor, node.now())
    disclosure, sent = service.request(body)
    session.commit()
    deliver_soon(request, [sent.message_id])
    return service.view(disclosure)


@router.get("", response_model=list[DisclosureOut],
            summary="Disclosure requests, newest first: ours (outbound) and peers' (inbound)")
def list_disclosures(
    node: NodeDep, session: SessionDep, actor: Reader,
    direction: Literal["inbound", "outbound"] | None = None,
    status: Literal["pending", "granted", "denied"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    return DisclosureService(session, node.identity, actor, node.now()).list(
        direction=direction, status=status, limit=limit, offset=offset)


@router.get("/{disclosure_id}", response_model=DisclosureOut,
            summary="One request; a pending inbound one shows the fields that could be released")
def read_disclosure(node: NodeDep, session: SessionDep, actor: Reader, disclosure_id: int) -> Any:
    return DisclosureService(session, node.identity, actor, node.now()).get(disclosure_id)


@router.post("/{disclosure_id}/decision", response_model=DisclosureOut,
             summary="Grant (releasing the chosen fields) or deny (with a reason) a peer's request")
def decide_disclosure(request: Request, node: NodeDep, session: SessionDep, actor: Writer,
                      disclosure_id: int, body: DisclosureDecision) -> Any:
    service = DisclosureService(session, node.identity, actor, node.now())
    disclosure, sent = service.decide(disclosure_id, body)
    session.commit()
    deliver_soon(request, [sent.message_id])
    return service.view(disclosure)
