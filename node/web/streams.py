"""The live alert stream (Server-Sent Events), shared by the API and the console.

It reads new inbound alerts from the database, so it also sees alerts received by
another process sharing the database; ``AlertFeed`` (``app.state.alert_feed``) only
wakes it promptly. ``encode`` turns an alert into the event's data: JSON for the API,
a rendered table row for the console.

``still_allowed`` re-checks the caller's token or console session: at every tick (each
``stream_check_seconds``, at most 30 s, even when no alert comes) and before each event.
A stream ends as soon as it says no (token revoked or expired, session ended, account
disabled, role changed), so nothing is delivered after that.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable

from fastapi import Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse

from ..runtime import Node
from ..schemas.alerts import AlertOut
from ..services.actors import Actor
from ..services.work import UnitOfWork

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def as_json(alert: AlertOut) -> str:
    return json.dumps(alert.model_dump(mode="json"))


def _event(alert_id: int, data: str) -> str:
    lines = "".join(f"data: {line}\n" for line in data.splitlines() or [""])
    return f"id: {alert_id}\nevent: alert\n{lines}\n"


def alert_stream(
    request: Request,
    node: Node,
    actor: Actor,
    *,
    still_allowed: Callable[[], bool],
    encode: Callable[[AlertOut], str] = as_json,
) -> StreamingResponse:
    feed = request.app.state.alert_feed
    tick = node.settings.stream_check_seconds

    def newest_id() -> int:
        with node.sessions() as session:
            latest = (
                UnitOfWork(node, session, actor)
                .alerts()
                .recent(direction="inbound", limit=1, offset=0)
            )
            return latest[0].id if latest else 0

    def newer_than(last: int) -> list[tuple[int, str]]:
        with node.sessions() as session:
            service = UnitOfWork(node, session, actor).alerts()
            return [
                (a.id, encode(AlertOut.model_validate(a)))
                for a in service.recent(direction="inbound", limit=100, offset=0, after_id=last)
            ]

    async def events() -> AsyncIterator[str]:
        last = await run_in_threadpool(newest_id)
        yield ": connected\n\n"
        while not await request.is_disconnected():
            if not await run_in_threadpool(still_allowed):
                return
            for position, (alert_id, data) in enumerate(await run_in_threadpool(newer_than, last)):
                # The first event follows the tick's check; each later one is checked anew.
                if position and not await run_in_threadpool(still_allowed):
                    return
                last = alert_id
                yield _event(alert_id, data)
            await feed.wait(tick)
            yield ": keep-alive\n\n"

    return StreamingResponse(events(), media_type="text/event-stream", headers=STREAM_HEADERS)
