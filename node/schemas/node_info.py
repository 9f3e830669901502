"""What ``GET /api/v1/node`` says: this node, and the caller's role."""

from __future__ import annotations

from pydantic import BaseModel


class NodeInfo(BaseModel):
    node_id: str
    name: str
    public_url: str
    fingerprint: str
    role: str
