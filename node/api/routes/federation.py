"""``POST /federation/v1/messages``: where peers deliver envelopes (no bearer token:
every envelope proves its sender by signature).

The body is one envelope object, or a JSON array of envelopes (a batch). A single
envelope is answered with its result and the HTTP status of its error code; a batch
with 200 and one result per envelope. Accepted and duplicate envelopes come back with
our signed receipt. A peer over its rate gets 429 with ``Retry-After``.
"""

from __future__ import annotations

import math

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from sqlalchemy import select

import protocol

from ...db.models import Peer
from ...federation.inbound import InboundProcessor
from ...runtime import Node
from ...web.bodies import read_body
from ...web.request import NodeDep, deliver_soon

router = APIRouter(prefix="/federation/v1", tags=["federation"])
MAX_BATCH = 100


def _split(body: bytes) -> list[bytes] | None:
    """The envelopes of a batch as bytes, or None when the body is a single envelope."""
    if not body.lstrip().startswith(b"["):
        return None
    try:
        items = protocol.parse_json(body)
        return [protocol.canonical_json(item) for item in items]
    except (protocol.ProtocolError, TypeError, ValueError):
        return [body]  # reported as malformed by the opener


@router.post("/messages", summary="Deliver one envelope or a batch (see docs/protocol.md)")
async def receive_messages(request: Request, node: NodeDep) -> JSONResponse:
    settings = node.settings
    body = await read_body(request, settings.max_message_bytes * MAX_BATCH)
    if body is None:
        declared = request.headers.get("content-length", "")
        return await _refuse_unread(
            node, "request body too large", int(declared) if declared.isdigit() else None
        )
    batch = _split(body)
    envelopes = batch if batch is not None else [body]
    if len(envelopes) > MAX_BATCH:
        return await _refuse_unread(node, f"at most {MAX_BATCH} per batch", len(body))
    if not envelopes:  # an empty batch: nothing to answer for
        return JSONResponse({"results": []})
    limiter = request.app.state.rate_limiter
    bucket = await run_in_threadpool(_rate_bucket, node, envelopes[0])
    wait = limiter.take(bucket, len(envelopes))
    if wait > 0:
        return JSONResponse(
            {"error": "rate_limited", "detail": "slow down"},
            429,
            headers={"Retry-After": str(math.ceil(wait))},
        )
    results = await run_in_threadpool(InboundProcessor(node).process_batch, envelopes)
    if any(r.new_alert for r in results):
        request.app.state.alert_feed.notify()
    if any(r.answered for r in results):
        request.app.state.answer_feed.notify()
    deliver_soon(request, [reply for r in results for reply in r.replies])
    if batch is None:
        result = results[0]
        return JSONResponse(result.to_json() | {"results": [result.to_json()]}, result.http_status)
    return JSONResponse({"results": [r.to_json() for r in results]})


async def _refuse_unread(node: Node, detail: str, size: int | None) -> JSONResponse:
    result = await run_in_threadpool(InboundProcessor(node).refuse_unread, detail, size)
    return JSONResponse({"error": result.error, "detail": result.detail}, 413)


def _rate_bucket(node: Node, raw: bytes) -> str:
    """Rate-limit key: the claimed sender when it is an admitted peer, else one shared
    bucket for everything else, so invented sender ids neither grow the table nor buy a
    fresh allowance. (A forger can still spend a real peer's allowance; see
    docs/protocol.md on rate limiting.)"""
    try:
        claimed = protocol.peek_header(raw, max_bytes=node.settings.max_message_bytes).sender
    except protocol.ProtocolError:
        return "?"
    with node.sessions() as session:
        known = session.execute(select(Peer.id).where(Peer.node_id == claimed)).first()
    return claimed if known is not None else "?"
