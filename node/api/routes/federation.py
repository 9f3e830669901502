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

Nothing is parsed whole: a batch is cut into its items by a bounded scan that stops at
the 101st item (``federation.batch_split``), and every parse, decompression and
signature check runs in a worker thread (one per request: the envelopes are cut and
processed together), never on the event loop. Refusals before the sender's signature
verifies are counted per client address: an address refused more often than
``refusal_rate_per_address`` allows gets 429 before its body is read (held up to a
second first, so that ignoring ``Retry-After`` does not pay). They are not audited one
by one (see ``federation.refusals``).
"""

from __future__ import annotations

import gzip
import logging
import math

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from sqlalchemy.exc import OperationalError

import protocol

from ...db.writable import space_problem
from ...federation.batch_split import TooComplex, TooManyItems, refuse_early, split_batch
from ...federation.inbound import MAX_BATCH_MESSAGES, InboundProcessor, InboundResult, SlowDown
from ...federation.ratelimit import RateLimiter
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
# Said when the rest of the body is left unread: the connection ends with the answer,
# instead of the server reading (and throwing away) what is still coming.
UNREAD = {"Connection": "close"}


def _envelopes(body: bytes) -> tuple[list[bytes], bool]:
    """The envelopes of the body, and whether it was a batch. Each item of a batch is
    passed on as it came, like a single envelope: the opener checks its size, parses it
    and verifies the signature over the canonical form of what it parsed. Raises
    ``TooManyItems`` or ``protocol.Malformed`` as ``split_batch`` does."""
    items = split_batch(body, MAX_BATCH_MESSAGES)
    if items is None:
        return [body], False
    return items, True


def _process(node: Node, body: bytes, limiter: RateLimiter) -> tuple[bool, list[InboundResult]]:
    """Whether the body is a batch, and the results of its envelopes (none for an empty
    batch): cut and processed in one worker thread. Raises as ``_envelopes`` does, and
    as ``InboundProcessor.process_batch`` does (``SlowDown``, database errors)."""
    envelopes, is_batch = _envelopes(body)
    if not envelopes:
        return is_batch, []
    return is_batch, InboundProcessor(node).process_batch(envelopes, limiter=limiter)


def _early(start: bytes) -> None:
    """Refuse a batch from its first bytes when they already say it (at most 64 KiB
    scanned, so this stays on the event loop)."""
    refuse_early(start, MAX_BATCH_MESSAGES)


@router.post(
    "/messages",
    summary="Deliver one envelope or a batch (see docs/protocol.md)",
    responses=FEDERATION_RESPONSES,
)
async def receive_messages(request: Request, node: NodeDep) -> Response:
    settings = node.settings
    # Before anything is read: an address refused too often lately waits.
    address = request.client.host if request.client is not None else "?"
    refusals = request.app.state.refusal_limiter
    wait = refusals.wait(address)
    if wait > 0:
        node.metrics.refuse_unauthenticated("rate_limited")
        await request.app.state.refusal_tarpit.hold(wait)
        return _slow_down(wait, UNREAD)
    limit = settings.max_message_bytes * MAX_BATCH_MESSAGES
    encoding = request.headers.get("content-encoding")
    try:
        raw = await read_body(request, limit, check_start=None if encoding else _early)
    except TooManyItems as exc:
        return _refuse_unread(request, address, protocol.TooLarge(str(exc)), UNREAD)
    except TooComplex as exc:
        return _answer({"results": [_refused(request, address, exc).to_json()]}, 200, UNREAD)
    try:
        body = raw
        if raw is not None and encoding is not None:
            body = await run_in_threadpool(decoded, raw, encoding, limit)
    except UnsupportedEncoding as exc:
        refusals.spend(address, 1)
        node.metrics.refuse_unauthenticated("unsupported_encoding")
        return _answer({"error": "unsupported_encoding", "detail": str(exc)}, 415)
    except Truncated as exc:
        return _refuse_unread(request, address, protocol.Malformed(f"compressed body: {exc}"))
    if body is None:
        return _refuse_unread(request, address, protocol.TooLarge("request body too large"), UNREAD)
    if space_problem(node.engine, settings.min_free_disk_bytes) is not None:
        return _unavailable()
    try:
        is_batch, results = await run_in_threadpool(
            _process, node, body, request.app.state.rate_limiter
        )
    except TooManyItems as exc:
        return _refuse_unread(request, address, protocol.TooLarge(str(exc)))
    except protocol.Malformed as exc:  # answered as a batch of one refused item
        result = _refused(request, address, exc)
        return _answer({"results": [result.to_json()]})
    except SlowDown as exc:
        return _slow_down(exc.wait)
    except OperationalError as exc:  # the database cannot be written (or reached) now
        log.warning("inbound batch not stored, refused as retryable: %s", exc.orig)
        return _unavailable()
    if not results:  # an empty batch: nothing to answer for
        return _answer({"results": []})
    if any(r.unauthenticated for r in results):
        refusals.spend(address, 1)
    if any(r.new_alert for r in results):
        request.app.state.alert_feed.notify()
    if any(r.answered for r in results):
        request.app.state.answer_feed.notify()
    if any(r.status != "rejected" for r in results) and request.app.state.sender is not None:
        request.app.state.sender.wake()  # the peer is back: its backoff has just ended
    deliver_soon(request, [reply for r in results for reply in r.replies])
    compress = "gzip" in request.headers.get("accept-encoding", "")
    if not is_batch:
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


def _slow_down(wait: float, headers: dict[str, str] | None = None) -> Response:
    return _answer(
        {"error": "rate_limited", "detail": "slow down"},
        429,
        {"Retry-After": str(math.ceil(wait)), **(headers or {})},
    )


def _refused(request: Request, address: str, exc: protocol.ProtocolError) -> InboundResult:
    """A request refused before any envelope was read: counted (not audited one by
    one), and charged to the client address."""
    request.app.state.refusal_limiter.spend(address, 1)
    return InboundProcessor(request.app.state.node).refuse_unread(exc)


def _refuse_unread(
    request: Request,
    address: str,
    exc: protocol.ProtocolError,
    headers: dict[str, str] | None = None,
) -> Response:
    result = _refused(request, address, exc)
    return _answer({"error": result.error, "detail": result.detail}, result.http_status, headers)
