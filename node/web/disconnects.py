"""A client that goes away in the middle of a request costs one log line.

Starlette raises ``ClientDisconnect`` where a route reads the body of a request whose
client has gone (a dropped mobile link, a peer's sender timing out); uncaught, uvicorn
logs it as a 65-line traceback, for something that is no fault of the node. This
middleware catches it, logs the method and path (never the query string), and answers
499 (the client closed the request; nobody reads it, the metrics count it).
"""

from __future__ import annotations

import logging

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("kpnet.http")
CLIENT_CLOSED_REQUEST = 499


class ClientDisconnects:
    """ASGI middleware: ``ClientDisconnect`` becomes one warning line and a 499."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            log.warning(
                "client disconnected before its request was read: %s %s",
                scope.get("method", ""),
                scope.get("path", ""),
            )
            if not started:
                await send({"type": "http.response.start", "status": CLIENT_CLOSED_REQUEST})
                await send({"type": "http.response.body", "body": b""})
