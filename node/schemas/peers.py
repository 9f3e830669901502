"""Shapes of peers in the local API: admitting one, and a peer as listed."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from .agreements import SharingAgreement
from .common import Strict


class PeerAdd(Strict):
    card: dict[str, Any] = Field(description="The peer's signed card (from `kpnet card`)")
    fingerprint: Annotated[str, StringConstraints(max_length=60)] = Field(
        description="The fingerprint read aloud by the peer's focal point, in person"
    )
    name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None = None
    agreement: SharingAgreement | None = None


class EndpointDecision(BaseModel):
    endpoint: Annotated[str, StringConstraints(max_length=500)] | None = Field(
        default=None,
        description="The pending endpoint as the admin reviewed it; if given and the peer "
        "has asked for another since, the decision is refused (409)",
    )


class PeerOut(BaseModel):
    node_id: str
    name: str
    endpoint: str
    fingerprint: str
    status: str
    agreement: SharingAgreement
    card_serial: int
    added_at: datetime
    added_by: str
    last_contact_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    next_attempt_at: datetime | None
    clock_offset_seconds: float | None = Field(
        default=None,
        description="How far the peer's clock is ahead of this node's (negative: behind), "
        "in seconds, as last measured from its answers",
    )
    pending_endpoint: str | None = Field(
        default=None,
        description="An endpoint the peer's newer card asks for, not used until an admin "
        "approves it (POST /api/v1/peers/{node_id}/endpoint/approve)",
    )
    pending_endpoint_at: datetime | None = None
