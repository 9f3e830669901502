"""Refuse a URL whose path or query holds text no record may hold.

Bodies are checked by the schemas (``node.schemas.common.Strict``); a URL's path
segments and query values are free strings handed to routes, searches and lookups, so
they are checked here once for every route of both surfaces, with the same rule
(``protocol.check_text``): U+0000 in a search term would otherwise reach PostgreSQL.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from protocol import UNSTORABLE_MESSAGE, check_text


def _refusal(where: str) -> JSONResponse:
    return JSONResponse(
        {"detail": [{"loc": [where], "msg": UNSTORABLE_MESSAGE, "type": "unstorable_text"}]},
        status_code=422,
    )


def _holds_unstorable(text: str) -> bool:
    try:
        check_text(text)
    except ValueError:
        return True
    return False


class UnstorableUrlRefusal:
    """ASGI middleware: ``422`` (type ``unstorable_text``) before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"").decode("latin-1")
            if _holds_unstorable(scope.get("path", "")):
                await _refusal("path")(scope, receive, send)
                return
            if _holds_unstorable(unquote_plus(query, errors="replace")):
                await _refusal("query")(scope, receive, send)
                return
        await self.app(scope, receive, send)
