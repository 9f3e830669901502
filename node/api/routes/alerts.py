"""``/api/v1/alerts``: compose, update, retract, list, read, acknowledge, live stream.

Analysts write alerts; officers and analysts read and acknowledge them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import StreamingResponse

from ...schemas_alerts import (
    Acknowledgement,
    AlertCreate,
    AlertCreated,
    AlertEdit,
    AlertOut,
    Retraction,
)
from ...services.alerts import AlertService
from ..deps import NodeDep, Reader, SessionDep, Writer, wake_sender
from ..streams import alert_stream

router = APIRouter(prefix="/alerts", tags=["alerts"])


def _out(alert: Any) -> AlertOut:
    return AlertOut.model_validate(alert)


@router.post("", response_model=AlertCreated, status_code=status.HTTP_201_CREATED,
             summary="Create and send an alert")
def create_alert(request: Request, node: NodeDep, session: SessionDep, actor: Writer,
                 body: AlertCreate) -> Any:
    alert = AlertService(session, node.identity, actor, node.now()).create(body)
    session.commit()
    wake_sender(request)
    out = _out(alert)
    return AlertCreated(**out.model_dump(),
                        withheld=[r for r in out.recipients if r.state == "withheld"])


@router.get("", response_model=list[AlertOut], summary="List alerts, newest first")
def list_alerts(
    node: NodeDep, session: SessionDep, actor: Reader,
    direction: Literal["inbound", "outbound"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Any:
    service = AlertService(session, node.identity, actor, node.now())
    return [_out(a) for a in service.list(direction=direction, limit=limit, offset=offset)]


@router.get("/stream", summary="Server-Sent Events: each new inbound alert as it arrives",
            response_class=StreamingResponse)
async def stream_alerts(request: Request, node: NodeDep, actor: Reader) -> StreamingResponse:
    return alert_stream(request, node, actor)


@router.get("/{alert_id}", response_model=AlertOut, summary="An alert, with per-recipient delivery state")
def read_alert(node: NodeDep, session: SessionDep, actor: Reader, alert_id: int) -> Any:
    return _out(AlertService(session, node.identity, actor, node.now()).get(alert_id))


@router.post("/{alert_id}/update", response_model=AlertOut, summary="Send a new revision")
def update_alert(request: Request, node: NodeDep, session: SessionDep, actor: Writer,
                 alert_id: int, body: AlertEdit) -> Any:
    alert = AlertService(session, node.identity, actor, node.now()).update(alert_id, body)
    session.commit()
    wake_sender(request)
    return _out(alert)


@router.post("/{alert_id}/retract", response_model=AlertOut, summary="Withdraw an alert")
def retract_alert(request: Request, node: NodeDep, session: SessionDep, actor: Writer,
                  alert_id: int, body: Retraction) -> Any:
    alert = AlertService(session, node.identity, actor, node.now()).retract(alert_id, body.reason)
    session.commit()
    wake_sender(request)
    return _out(alert)


@router.post("/{alert_id}/ack", response_model=AlertOut,
             summary="Mark a received alert read or acted upon (the sender is told)")
def acknowledge_alert(request: Request, node: NodeDep, session: SessionDep, actor: Reader,
                      alert_id: int, body: Acknowledgement) -> Any:
    alert = AlertService(session, node.identity, actor, node.now()).acknowledge(alert_id, body.status)
    session.commit()
    wake_sender(request)
    return _out(alert)


