"""Shapes of API tokens in the local API; a new token's secret is shown once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from protocol import Handling

from ..roles import Role
from .common import Strict, WholeNumber

CLEARANCE_HELP = (
    "Highest TLP level the token may read; records above it are neither returned nor "
    "counted, and reading one answers 404"
)


class TokenCreate(Strict):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    role: Role
    expires_days: Annotated[WholeNumber, Field(ge=1, le=3650)] | None = None
    clearance: Handling | None = Field(
        default=None, description=CLEARANCE_HELP + "; default: the role's (officer AMBER, …)"
    )


class TokenUpdate(Strict):
    clearance: Handling = Field(description=CLEARANCE_HELP)


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    clearance: Handling = Field(description=CLEARANCE_HELP)
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown only in this answer")
