"""The KYC match index: one row per person or organisation, and its blocking keys."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BigInteger,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from protocol import RecordKind

from .base import Base

# SQLite makes only an INTEGER primary key the (64-bit) rowid.
MatchId = BigInteger().with_variant(Integer(), "sqlite")


class MatchRecord(Base):
    """What the KYC matcher needs of one person or organisation (see ``node.matching``):
    a licensee (part 0) or one of its persons (part 1 + index), or a subject (part 0).

    ``id`` is computed, not allocated: ``record_id * 128 + kind * 64 + part`` (kind 0
    licensee, 1 subject), so a bulk import writes index rows without reading ids back.
    ``names`` holds ``[display, normalised, tag]`` triples, ``identifiers`` prefixed
    normalised numbers (``d:`` document, ``l:`` licence), ``keys`` this part's rows in
    ``match_keys`` (to remove exactly those).
    """

    __tablename__ = "match_records"

    id: Mapped[int] = mapped_column(MatchId, primary_key=True, autoincrement=False)
    record_kind: Mapped[RecordKind] = mapped_column(String(10))
    record_id: Mapped[int]
    part: Mapped[int]
    party: Mapped[str] = mapped_column(String(12))
    names: Mapped[list[Any]]
    date_of_birth: Mapped[str | None] = mapped_column(String(10))
    nationality: Mapped[str | None] = mapped_column(String(2))
    identifiers: Mapped[list[str]]
    keys: Mapped[list[str]]


class MatchKey(Base):
    """One blocking key of one match record (``node.matching.keys``); the primary key is
    the lookup index (a clustered table on SQLite)."""

    __tablename__ = "match_keys"
    __table_args__ = ({"sqlite_with_rowid": False},)

    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    match_id: Mapped[int] = mapped_column(MatchId, primary_key=True, autoincrement=False)
