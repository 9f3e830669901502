"""The registry of licensees and the subjects of interest, with their history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from protocol import Handling, LicenceStatus, LicenceType, PartyKind, ReasonCategory, RecordKind

from .base import Base


class RecordMixin:
    """Columns every kept record has: opaque reference, version, who/when, soft delete."""

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(String(36), unique=True)
    handling: Mapped[Handling] = mapped_column(String(12))
    search_text: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime]
    updated_by: Mapped[str] = mapped_column(String(100))
    deleted_at: Mapped[datetime | None]
    deleted_by: Mapped[str | None] = mapped_column(String(100))


class Licensee(RecordMixin, Base):
    """A licensed or registered actor: buying house / comptoir, collector, exporter, ..."""

    __tablename__ = "licensees"
    __table_args__ = (
        Index(
            "uq_licensees_live_licence_number",
            "licence_number",
            unique=True,
            sqlite_where=text("deleted_at IS NULL"),
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    licence_number: Mapped[str] = mapped_column(String(64))
    licence_type: Mapped[LicenceType] = mapped_column(String(20))
    legal_name: Mapped[str] = mapped_column(String(200))
    trade_names: Mapped[list[str]] = mapped_column(default=list)
    persons: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    address: Mapped[str | None] = mapped_column(String(500))
    region: Mapped[str | None] = mapped_column(String(100))
    issued_on: Mapped[date | None]
    expires_on: Mapped[date | None]
    status: Mapped[LicenceStatus] = mapped_column(String(12))

    status_history: Mapped[list[LicenceStatusChange]] = relationship(
        back_populates="licensee", order_by="LicenceStatusChange.id"
    )


class LicenceStatusChange(Base):
    __tablename__ = "licence_status_changes"

    id: Mapped[int] = mapped_column(primary_key=True)
    licensee_id: Mapped[int] = mapped_column(ForeignKey("licensees.id"), index=True)
    status: Mapped[LicenceStatus] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(500))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))

    licensee: Mapped[Licensee] = relationship(back_populates="status_history")


class Subject(RecordMixin, Base):
    """A person or organisation of interest, flagged by an agency."""

    __tablename__ = "subjects"

    kind: Mapped[PartyKind] = mapped_column(String(12))
    names: Mapped[list[str]]
    aliases: Mapped[list[str]] = mapped_column(default=list)
    date_of_birth: Mapped[str | None] = mapped_column(String(10))
    nationality: Mapped[str | None] = mapped_column(String(2))
    documents: Mapped[list[dict[str, Any]]] = mapped_column(default=list)
    linked_licence_numbers: Mapped[list[str]] = mapped_column(default=list)
    reason_category: Mapped[ReasonCategory] = mapped_column(String(30))
    risk_level: Mapped[str] = mapped_column(String(10))
    narrative: Mapped[str | None] = mapped_column(Text)
    source_agency: Mapped[str | None] = mapped_column(String(200))


class RecordChange(Base):
    """History of a record: one row per version, with the changed fields and a snapshot."""

    __tablename__ = "record_changes"
    __table_args__ = (Index("ix_record_changes_record", "record_kind", "record_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    record_kind: Mapped[RecordKind] = mapped_column(String(20))
    record_id: Mapped[int]
    version: Mapped[int]
    action: Mapped[str] = mapped_column(String(20))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))
    changes: Mapped[dict[str, Any]]
    snapshot: Mapped[dict[str, Any]]
