"""``/api/v1/alerts``: compose, update, retract, list, read, acknowledge, live stream.

Analysts write alerts; officers and analysts read and acknowledge them.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, status
from fastapi.responses import StreamingResponse

from ...roles import Permission
from ...schemas.alerts import (
    Acknowledgement,
    AlertCreate,
    AlertCreated,
    AlertEdit,
    AlertOut,
    Retraction,
)
from ...web.params import Offset, RowId
from ...web.streams import StreamPass, alert_stream
from ..deps import AsReader, AsWriter, Bearer

router = APIRouter(prefix="/alerts", tags=["alerts"])


def _out(alert: Any) -> AlertOut:
    return AlertOut.model_validate(alert)


@router.post(
    "",
    response_model=AlertCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create and send an alert",
)
def create_alert(work: AsWriter, body: AlertCreate) -> Any:
    alert = work.alerts().create(body)
    work.commit()
    created = AlertCreated.model_validate(alert)
    created.withheld = [r for r in created.recipients if r.state == "withheld"]
    return created


@router.get("", response_model=list[AlertOut], summary="List alerts, newest first")
def list_alerts(
    work: AsReader,
    direction: Literal["inbound", "outbound"] | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> Any:
    return [_out(a) for a in work.alerts().recent(direction=direction, limit=limit, offset=offset)]


@router.get(
    "/stream",
    summary="Server-Sent Events: each new inbound alert as it arrives",
    response_class=StreamingResponse,
)
async def stream_alerts(work: AsReader, credentials: Bearer) -> StreamingResponse:
    assert credentials is not None  # AsReader has admitted the token
    admission = StreamPass.of_token(credentials.credentials, Permission.READ)
    return alert_stream(work.request, work.actor, admission=admission)


@router.get(
    "/{alert_id}", response_model=AlertOut, summary="An alert, with per-recipient delivery state"
)
def read_alert(work: AsReader, alert_id: RowId) -> Any:
    return _out(work.alerts().get(alert_id))


@router.post("/{alert_id}/update", response_model=AlertOut, summary="Send a new revision")
def update_alert(work: AsWriter, alert_id: RowId, body: AlertEdit) -> Any:
    alert = work.alerts().update(alert_id, body)
    work.commit()
    return _out(alert)


@router.post("/{alert_id}/retract", response_model=AlertOut, summary="Withdraw an alert")
def retract_alert(work: AsWriter, alert_id: RowId, body: Retraction) -> Any:
    alert = work.alerts().retract(alert_id, body.reason)
    work.commit()
    return _out(alert)


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    summary="Mark a received alert read or acted upon (the sender is told)",
)
def acknowledge_alert(work: AsReader, alert_id: RowId, body: Acknowledgement) -> Any:
    alert = work.alerts().acknowledge(alert_id, body.status)
    work.commit()
    return _out(alert)
