"""Operations endpoints without a token: health, metrics, the node's signed card."""

from __future__ import annotations

import hmac
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from ...db.writable import write_problem
from ...keystore import KeyFileError, load_card, load_identity
from ...web.request import NodeDep

router = APIRouter(tags=["operations"])


@router.get("/livez", summary="The process answers (liveness; checks nothing else)")
def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/healthz",
    summary="Ready: the database can be written (a write is committed) and the keys "
    "load: 200, else 503",
)
def healthz(node: NodeDep) -> JSONResponse:
    checks: dict[str, str] = {}
    try:
        problem = write_problem(node.engine, node.settings.min_free_disk_bytes)
        checks["database"] = "ok" if problem is None else f"error: {problem}"
    except Exception as exc:  # unreachable, say: report it, do not fail the probe
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        identity = load_identity(node.settings.keys_dir, node.settings.node_id)
        load_card(node.settings.card_path, identity)
        checks["keys"] = "ok"
    except (KeyFileError, OSError, ValueError) as exc:
        checks["keys"] = f"error: {exc}"
    healthy = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if healthy else "unhealthy", "node_id": node.settings.node_id, **checks},
        status_code=200 if healthy else 503,
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def metrics(node: NodeDep, request: Request) -> Response:
    expected = node.settings.metrics_token
    if expected:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return Response(
                "metrics token required\n", status_code=401, headers={"WWW-Authenticate": "Bearer"}
            )
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)


@router.get("/federation/v1/card", summary="This node's signed card (see docs/protocol.md)")
def card(node: NodeDep) -> Any:
    return JSONResponse(node.card.to_json())
