"""``/api/v1/node``: who this node is, for any signed-in role."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from ..deps import AnyRole, NodeDep

router = APIRouter(tags=["node"])


class NodeInfo(BaseModel):
    node_id: str
    name: str
    public_url: str
    fingerprint: str
    role: str


@router.get("/node", response_model=NodeInfo, summary="This node and the caller's role")
def node_info(node: NodeDep, actor: AnyRole) -> Any:
    return NodeInfo(
        node_id=node.settings.node_id, name=node.settings.node_name,
        public_url=node.settings.public_url, fingerprint=node.identity.fingerprint,
        role=actor.role,
    )
