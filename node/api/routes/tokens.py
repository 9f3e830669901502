"""``/api/v1/tokens``: API tokens, for admins. A new token's secret is returned once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, Field, StringConstraints

from ...services.tokens import TokenService
from ..deps import Admin, NodeDep, SessionDep

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(BaseModel):
    name: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
    role: Annotated[str, Field(pattern="^(admin|analyst|officer|auditor)$")]
    expires_days: Annotated[int, Field(ge=1, le=3650)] | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    prefix: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class TokenCreated(TokenOut):
    token: str = Field(description="The secret; shown only in this answer")


@router.get("", response_model=list[TokenOut], summary="List tokens (never their secrets)")
def list_tokens(node: NodeDep, session: SessionDep, actor: Admin) -> Any:
    return TokenService(session, actor, node.now()).list()


@router.post("", response_model=TokenCreated, status_code=status.HTTP_201_CREATED,
             summary="Create a token")
def create_token(node: NodeDep, session: SessionDep, actor: Admin, body: TokenCreate) -> Any:
    row, secret = TokenService(session, actor, node.now()).create(
        name=body.name, role=body.role, expires_days=body.expires_days
    )
    session.commit()
    return TokenCreated(**TokenOut.model_validate(row, from_attributes=True).model_dump(), token=secret)


@router.delete("/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke_token(
    node: NodeDep, session: SessionDep, actor: Admin, token_id: Annotated[int, Path(ge=1)]
) -> Any:
    row = TokenService(session, actor, node.now()).revoke(token_id)
    session.commit()
    return row
