"""The node's ASGI application: ``create_app(settings)``.

The lifespan opens the node (database upgraded to the latest migration, keys and
card loaded) and closes it on shutdown. Routes live in ``node.api.routes``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from sqlalchemy import func, select

from . import __version__
from .api.errors import install_error_handlers
from .api.routes import audit, node_info, ops, registry, tokens
from .config import Settings
from .db.models import Licensee, Subject
from .metrics import HttpMetricsMiddleware, NodeMetrics
from .runtime import Clock, Node, open_node, utc_now
from .services.audit import count_entries


def _database_counts(node: Node) -> dict[str, Any]:
    with node.sessions() as session:
        records = {
            kind: session.execute(
                select(func.count()).select_from(model).where(model.deleted_at.is_(None))
            ).scalar_one()
            for kind, model in (("licensee", Licensee), ("subject", Subject))
        }
        return {"records": records, "audit": count_entries(session)}


def create_app(settings: Settings, *, clock: Clock = utc_now) -> FastAPI:
    metrics = NodeMetrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        node = open_node(settings, clock=clock)
        node.metrics = metrics
        metrics.watch_database(lambda: _database_counts(node))
        app.state.node = node
        try:
            yield
        finally:
            node.close()

    app = FastAPI(
        title=f"kpnet node {settings.node_id}",
        version=__version__,
        description="Local API of a kpnet national node. Every /api/v1 route needs "
        "`Authorization: Bearer <token>`; see docs/api.md.",
        lifespan=lifespan,
    )
    api = APIRouter(prefix="/api/v1")
    for module in (registry, tokens, audit, node_info):
        api.include_router(module.router)
    app.include_router(api)
    app.include_router(ops.router)
    install_error_handlers(app)
    app.add_middleware(HttpMetricsMiddleware, metrics=metrics)
    return app
