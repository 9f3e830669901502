"""``POST /federation/v1/messages``: where peers deliver envelopes (no bearer token:
every envelope proves its sender by signature).

The body is one envelope object, or a JSON array of envelopes (a batch), plain or
gzip-compressed (``Content-Encoding: gzip``; every answer says ``Accept-Encoding:
gzip`` so senders know). A single envelope is answered with its result and the HTTP
status of its error code; a batch with 200 and one result per envelope. Accepted and
duplicate envelopes come back with our signed receipt. A peer over its rate gets 429
with ``Retry-After``; while this node cannot write to its database (a full disk, say)
every request gets 503 ``unavailable`` with ``Retry-After``, and nothing is lost: the
sender keeps the messages and tries again.
"""

from __future__ import annotations

import gzip
import logging
import math

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

import protocol

from ...db.models import Peer
from ...db.writable import space_problem
from ...federation.inbound import MAX_BATCH_MESSAGES, InboundProcessor
from ...runtime import Node
from ...web.bodies import Truncated, UnsupportedEncoding, decoded, read_body
from ...web.request import NodeDep, deliver_soon
from ..errors import FEDERATION_RESPONSES

router = APIRouter(prefix="/federation/v1", tags=["federation"])
log = logging.getLogger("kpnet.federation")
# Said on every answer (RFC 7694): senders may compress what they send us.
ACCEPTS = {"Accept-Encoding": "gzip"}
UNAVAILABLE_RETRY_SECONDS = 10
COMPRESS_FROM = 1024  # bytes: smaller answers go as they are


def _split(body: bytes) -> list[bytes] | None:
    """The envelopes of a batch as bytes, or None when the body is a single envelope."""
    if not body.lstrip().startswith(b"["):
        return None
    try:
        items = protocol.parse_json(body)
        return [protocol.canonical_json(item) for item in items]
    except (protocol.ProtocolError, TypeError, ValueError):
        return [body]  # reported as malformed by the opener


@router.post(
    "/messages",
    summary="Deliver one envelope or a batch (see docs/protocol.md)",
    responses=FEDERATION_RESPONSES,
)
async def receive_messages(request: Request, node: NodeDep) -> Response:
    settings = node.settings
    limit = settings.max_message_bytes * MAX_BATCH_MESSAGES
    raw = await read_body(request, limit)
    try:
        body = None if raw is None else decoded(raw, request.headers.get("content-encoding"), limit)
    except UnsupportedEncoding as exc:
        return _answer({"error": "unsupported_encoding", "detail": str(exc)}, 415)
    except Truncated as exc:
        return _answer({"error": "malformed", "detail": f"compressed body: {exc}"}, 400)
    if body is None:
        declared = request.headers.get("content-length", "")
        return await _refuse_unread(
            node, "request body too large", int(declared) if declared.isdigit() else None
        )
    if space_problem(node.engine, settings.min_free_disk_bytes) is not None:
        return _unavailable()
    batch = _split(body)
    envelopes = batch if batch is not None else [body]
    if len(envelopes) > MAX_BATCH_MESSAGES:
        return await _refuse_unread(node, f"at most {MAX_BATCH_MESSAGES} per batch", len(body))
    if not envelopes:  # an empty batch: nothing to answer for
        return _answer({"results": []})
    limiter = request.app.state.rate_limiter
    bucket = await run_in_threadpool(_rate_bucket, node, envelopes[0])
    wait = limiter.take(bucket, len(envelopes))
    if wait > 0:
        return _answer(
            {"error": "rate_limited", "detail": "slow down"},
            429,
            {"Retry-After": str(math.ceil(wait))},
        )
    try:
        results = await run_in_threadpool(InboundProcessor(node).process_batch, envelopes)
    except OperationalError as exc:  # the database cannot be written (or reached) now
        log.warning("inbound batch not stored, refused as retryable: %s", exc.orig)
        return _unavailable()
    if any(r.new_alert for r in results):
        request.app.state.alert_feed.notify()
    if any(r.answered for r in results):
        request.app.state.answer_feed.notify()
    if any(r.status != "rejected" for r in results) and request.app.state.sender is not None:
        request.app.state.sender.wake()  # the peer is back: its backoff has just ended
    deliver_soon(request, [reply for r in results for reply in r.replies])
    compress = "gzip" in request.headers.get("accept-encoding", "")
    if batch is None:
        result = results[0]
        return _answer(result.to_json() | {"results": [result.to_json()]}, result.http_status)
    return _answer({"results": [r.to_json() for r in results]}, compress=compress)


def _answer(
    content: object,
    status: int = 200,
    headers: dict[str, str] | None = None,
    compress: bool = False,
) -> Response:
    """A JSON answer, gzip-compressed when the sender accepts it and it is worth it
    (receipts are base64 in JSON: a third of their size goes)."""
    answer = JSONResponse(content, status, headers={**ACCEPTS, **(headers or {})})
    if compress and len(answer.body) >= COMPRESS_FROM:
        answer.body = gzip.compress(bytes(answer.body), 6)
        answer.headers["content-encoding"] = "gzip"
        answer.headers["content-length"] = str(len(answer.body))
        answer.headers["vary"] = "Accept-Encoding"
    return answer


def _unavailable() -> Response:
    return _answer(
        {"error": "unavailable", "detail": "this node cannot store messages now; try again later"},
        503,
        {"Retry-After": str(UNAVAILABLE_RETRY_SECONDS)},
    )


async def _refuse_unread(node: Node, detail: str, size: int | None) -> Response:
    try:
        result = await run_in_threadpool(InboundProcessor(node).refuse_unread, detail, size)
    except OperationalError:  # not audited, but refused all the same
        return _unavailable()
    return _answer({"error": result.error, "detail": result.detail}, 413)


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
