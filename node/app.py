"""The node's ASGI application: ``create_app(settings)``.

The lifespan opens the node (database upgraded to the latest migration, keys and
card loaded) and closes it on shutdown. Routes live in ``node.api.routes``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import func, select

from . import __version__
from .api import docs
from .api.errors import ERROR_RESPONSES, install_error_handlers
from .api.routes import (
    alerts,
    audit,
    disclosures,
    federation,
    kyc,
    node_info,
    ops,
    peers,
    registry,
    tokens,
    transfer,
)
from .config import Settings
from .console import install_console
from .db.models import Licensee, OutboxMessage, Peer, Subject
from .federation.feed import Feed
from .federation.policy_transport import PolicyTransport
from .federation.ratelimit import RateLimiter, Tarpit
from .federation.refusals import summarise_refusals
from .federation.sender import OutboxSender, SenderSettings
from .metrics import HttpMetricsMiddleware, NodeMetrics
from .runtime import Clock, Node, open_node, utc_now
from .services.audit import count_entries
from .services.endpoint_policy import EndpointPolicy
from .services.peer_quotas import QuotaDefaults, used_ratios
from .services.peers import agreement_of
from .web.alert_fanout import AlertFanout
from .web.disconnects import ClientDisconnects
from .web.url_text import UnstorableUrlRefusal


def _database_counts(node: Node) -> dict[str, Any]:
    now = node.now()
    with node.sessions() as session:
        records = {
            kind: session.execute(
                select(func.count()).select_from(model).where(model.deleted_at.is_(None))
            ).scalar_one()
            for kind, model in (("licensee", Licensee), ("subject", Subject))
        }
        pending = dict(
            (row[0], (row[1], row[2]))
            for row in session.execute(
                select(OutboxMessage.recipient, func.count(), func.min(OutboxMessage.created_at))
                .where(OutboxMessage.status == "pending")
                .group_by(OutboxMessage.recipient)
            )
        )
        peers, agreements = {}, []
        for peer in session.execute(select(Peer).where(Peer.status != "removed")).scalars():
            agreements.append((peer.node_id, agreement_of(peer)))
            count, oldest = pending.get(peer.node_id, (0, None))
            if oldest is not None and oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=UTC)
            peers[peer.node_id] = {
                "pending": count,
                "oldest_age": (now - oldest).total_seconds() if oldest else 0.0,
                # A suspended peer is not delivered to: no up/down to report.
                "up": None
                if peer.status != "active"
                else 1
                if peer.consecutive_failures == 0
                else 0,
                "clock_offset": peer.clock_offset_seconds,
            }
        quotas = used_ratios(session, agreements, QuotaDefaults.of(node.settings), now)
        return {
            "records": records,
            "audit": count_entries(session),
            "peers": peers,
            "quotas": quotas,
        }


def sender_settings(settings: Settings) -> SenderSettings:
    return SenderSettings(
        max_batch_bytes=settings.delivery_max_batch_bytes,
        probe_seconds=settings.delivery_probe_seconds,
        lease_seconds=settings.delivery_lease_seconds,
        poll_seconds=settings.delivery_poll_seconds,
        backoff_base_seconds=settings.delivery_backoff_base_seconds,
        backoff_cap_seconds=settings.delivery_backoff_cap_seconds,
    )


def create_app(
    settings: Settings,
    *,
    clock: Clock = utc_now,
    transport: httpx.AsyncBaseTransport | None = None,
    opened: Node | None = None,
) -> FastAPI:
    """The node's app. ``transport`` replaces the network for outgoing deliveries
    (tests wire several nodes together in one process with ``httpx.ASGITransport``).
    ``opened`` is the node ``kpnet serve`` already opened (and so checked) before
    starting; the app then runs it instead of opening it again, and closes it."""
    metrics = NodeMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = opened if opened is not None else open_node(settings, clock=clock)
        node.metrics = metrics
        metrics.watch_database(lambda: _database_counts(node))
        app.state.node = node
        app.state.alert_feed = Feed()
        app.state.alert_fanout = AlertFanout(node, app.state.alert_feed)
        app.state.answer_feed = Feed()
        app.state.rate_limiter = RateLimiter(
            settings.peer_rate_per_second,
            settings.peer_rate_burst,
            clock=lambda: node.now().timestamp(),
        )
        # Before authentication, per client address: how often it may be refused.
        app.state.refusal_limiter = RateLimiter(
            settings.refusal_rate_per_address,
            settings.refusal_burst_per_address,
            clock=lambda: node.now().timestamp(),
            max_keys=settings.refusal_addresses_max,
        )
        app.state.refusal_tarpit = Tarpit(seconds=1.0, max_held=64)
        app.state.sender = None
        task = None
        summaries = asyncio.create_task(
            summarise_refusals(node, settings.refusal_audit_interval_seconds),
            name="kpnet-refusal-summaries",
        )
        # Deliveries go through the endpoint policy's transport unless a test gives its own.
        network = transport or PolicyTransport(EndpointPolicy.from_settings(settings))
        async with httpx.AsyncClient(transport=network, follow_redirects=False) as client:
            if settings.sender_enabled:
                app.state.sender = OutboxSender(node, client, sender_settings(settings))
                task = asyncio.create_task(app.state.sender.run(), name="kpnet-outbox-sender")
            try:
                yield
            finally:
                for running in (task, summaries):
                    if running is not None:
                        running.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await running
                await app.state.alert_fanout.close()
                node.close()

    app = FastAPI(
        title=f"kpnet node {settings.node_id}",
        version=__version__,
        description="Local API of a kpnet national node. Every /api/v1 route needs "
        "`Authorization: Bearer <token>`; see docs/api.md.",
        lifespan=lifespan,
        docs_url=None,  # served by node.api.docs, without a CDN
        redoc_url=None,
    )
    # Straight into the app: each include builds its routes again (an intermediate
    # /api/v1 router would build them twice at every start).
    for module in (registry, transfer, alerts, kyc, disclosures, peers, tokens, audit, node_info):
        app.include_router(module.router, prefix="/api/v1", responses=ERROR_RESPONSES)
    app.include_router(ops.router)
    app.include_router(docs.router)
    app.include_router(federation.router)
    install_console(app)
    install_error_handlers(app)
    app.add_middleware(ClientDisconnects)
    app.add_middleware(UnstorableUrlRefusal)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app
