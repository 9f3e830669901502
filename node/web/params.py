"""Bounded path and query parameters shared by both web surfaces.

Database integers are 64-bit: a larger id, offset or version in a URL would overflow
the driver (a 500), so each is bounded here and refused with 422 before any work.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from ..schemas.common import MAX_INT64

MAX_OFFSET = 1_000_000_000  # far past any real list; bounded so OFFSET stays a 64-bit int

RowId = Annotated[int, Path(ge=1, le=MAX_INT64, description="A row id")]
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip")]
ExpectedVersion = Annotated[
    int | None, Query(ge=1, le=MAX_INT64, description="Expected current version")
]
