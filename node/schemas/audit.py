"""Shapes of the audit log in the local API: entries, a page of them, the chain check."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel


class AuditEntryOut(BaseModel):
    seq: int
    at: datetime
    actor: str
    action: str
    target_kind: str | None
    target_id: str | None
    detail: dict[str, Any]
    hash: str


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    total: int
    limit: int
    offset: int


class ChainOut(BaseModel):
    ok: bool
    entries: int
    first_broken_seq: int | None
    problem: str | None
