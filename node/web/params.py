"""Bounded path and query parameters shared by both web surfaces.

Ids and versions are INTEGER columns (32-bit on PostgreSQL) and OFFSET is 64-bit: a
larger number in a URL would overflow the driver or the database (a 500), so each is
bounded here and refused with 422 before any work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from ..schemas.common import MAX_ROW_INT

MAX_OFFSET = 1_000_000_000  # far past any real list; bounded so OFFSET stays a 64-bit int

RowId = Annotated[int, Path(ge=1, le=MAX_ROW_INT, description="A row id")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
ExpectedVersion = Annotated[
    int | None, Query(ge=1, le=MAX_ROW_INT, description="Expected current version")
]
