"""``/api/v1/node``: who this node is, for any signed-in role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from ...schemas.node_info import NodeInfo
from ..deps import AsAnyRole

router = APIRouter(tags=["node"])


@router.get("/node", response_model=NodeInfo, summary="This node and the caller's role")
def node_info(work: AsAnyRole) -> Any:
    node = work.node
    return NodeInfo(
        node_id=node.settings.node_id,
        name=node.settings.node_name,
        public_url=node.settings.public_url,
        fingerprint=node.identity.fingerprint,
        role=work.actor.role,
    )
