"""The live alert stream (Server-Sent Events), shared by the API and the console.

Every stream of the process is fed by one ``AlertFanout`` (``app.state.alert_fanout``,
see ``alert_fanout``): it reads new inbound alerts from the database once per clearance,
re-checks every stream's token or console session, and hands each stream the events it
may see, encoded once per ``Encoder``: JSON for the API (``AS_JSON``), a rendered table
row in the reader's language for the console. A stream ends as soon as a round finds
what opened it no longer admits it (token revoked or expired, session ended, account
disabled, role or clearance changed); nothing is delivered after that.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import Request
from fastapi.responses import StreamingResponse

from ..schemas.alerts import AlertOut
from ..services.actors import Actor
from .alert_fanout import KEEP_ALIVE, AlertFanout, Encoder, StreamPass

__all__ = ["AS_JSON", "Encoder", "StreamPass", "alert_stream", "as_json"]

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def as_json(alert: AlertOut) -> str:
    return json.dumps(alert.model_dump(mode="json"))


AS_JSON = Encoder(key="json", encode=as_json)


def alert_stream(
    request: Request, actor: Actor, *, admission: StreamPass, encoder: Encoder = AS_JSON
) -> StreamingResponse:
    fanout: AlertFanout = request.app.state.alert_fanout

    async def events() -> AsyncIterator[bytes]:
        stream = await fanout.join(actor, admission, encoder)
        try:
            yield b": connected\n\n"
            while (data := await stream.next()) is not None:
                if data == KEEP_ALIVE and await request.is_disconnected():
                    return
                yield data
        finally:
            fanout.leave(stream)

    return StreamingResponse(events(), media_type="text/event-stream", headers=STREAM_HEADERS)
