"""``/api/v1/tokens``: API tokens, for admins. A new token's secret is returned once."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from ...schemas.tokens import TokenCreate, TokenCreated, TokenOut, TokenUpdate
from ...web.params import RowId
from ..deps import AsAdmin

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("", response_model=list[TokenOut], summary="List tokens (never their secrets)")
def list_tokens(work: AsAdmin) -> Any:
    return work.tokens().all()


@router.post(
    "", response_model=TokenCreated, status_code=status.HTTP_201_CREATED, summary="Create a token"
)
def create_token(work: AsAdmin, body: TokenCreate) -> Any:
    row, secret = work.tokens().create(
        name=body.name, role=body.role, expires_days=body.expires_days, clearance=body.clearance
    )
    work.commit()
    created = TokenCreated.model_validate(
        {"token": secret, **TokenOut.model_validate(row, from_attributes=True).model_dump()}
    )
    return created


@router.patch(
    "/{token_id}", response_model=TokenOut, summary="Change a token's clearance (audited)"
)
def update_token(work: AsAdmin, token_id: RowId, body: TokenUpdate) -> Any:
    row = work.tokens().set_clearance(token_id, body.clearance)
    work.commit()
    return row


@router.delete("/{token_id}", response_model=TokenOut, summary="Revoke a token")
def revoke_token(work: AsAdmin, token_id: RowId) -> Any:
    row = work.tokens().revoke(token_id)
    work.commit()
    return row
