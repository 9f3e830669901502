"""``/api/v1/kyc/checks``: run a KYC check (local, or federated across peers) and
reopen it later. Officers and analysts run and read checks.

A federated check queues one ``kyc.query`` per peer, delivers them all at once, and
waits until every peer has answered or the timeout has passed; the answer then says
which peers have not answered. Their late answers are kept and appear when the check
is read again.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, status
from fastapi.concurrency import run_in_threadpool

from ...runtime import Node
from ...schemas_kyc import CheckCreate, CheckOut, CheckSummary
from ...services.kyc import KycService
from ...services.records import Actor
from ..deps import NodeDep, Reader, SessionDep

router = APIRouter(prefix="/kyc", tags=["kyc"])
# Between wake-ups, look at the database this often (answers received by another
# process of the node do not wake this one).
POLL_SECONDS = 0.25


@router.post("/checks", response_model=CheckOut, status_code=status.HTTP_201_CREATED,
             summary="Run a KYC check; federation scope asks peers and waits for them")
async def create_check(request: Request, node: NodeDep, actor: Reader, body: CheckCreate) -> Any:
    timeout = body.timeout_seconds or node.settings.kyc_timeout_seconds
    check_uuid, queued = await run_in_threadpool(_start, node, actor, body, timeout)
    sender = request.app.state.sender
    if sender is not None:
        sender.deliver_soon(queued, timeout)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    view = await run_in_threadpool(_view, node, actor, check_uuid)
    while not view.complete and loop.time() < deadline:
        await request.app.state.answer_feed.wait(min(POLL_SECONDS, deadline - loop.time()))
        view = await run_in_threadpool(_view, node, actor, check_uuid)
    return view


def _start(node: Node, actor: Actor, body: CheckCreate, timeout: float) -> tuple[str, list[str]]:
    with node.sessions() as session:
        check, queued = KycService(session, node.identity, actor, node.now()).start(body, timeout=timeout)
        session.commit()
        return check.check_uuid, queued


def _view(node: Node, actor: Actor, check_uuid: str) -> CheckOut:
    with node.sessions() as session:
        service = KycService(session, node.identity, actor, node.now())
        return service.view(service.get(check_uuid))


@router.get("/checks", response_model=list[CheckSummary], summary="Checks, newest first")
def list_checks(node: NodeDep, session: SessionDep, actor: Reader,
                limit: Annotated[int, Query(ge=1, le=500)] = 50,
                offset: Annotated[int, Query(ge=0)] = 0) -> Any:
    return KycService(session, node.identity, actor, node.now()).list(limit=limit, offset=offset)


@router.get("/checks/{check_id}", response_model=CheckOut,
            summary="A check as it stands now, late answers included")
def read_check(node: NodeDep, session: SessionDep, actor: Reader, check_id: str) -> Any:
    service = KycService(session, node.identity, actor, node.now())
    return service.view(service.get(check_id))
