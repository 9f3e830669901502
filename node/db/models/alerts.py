"""Early-warning alerts, sent and received, and their delivery to each peer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from protocol import AlertCategory, Handling, Severity

from .base import Base


class Alert(Base):
    """An early-warning alert, sent by this node (outbound) or received (inbound)."""

    __tablename__ = "alerts"
    __table_args__ = (Index("uq_alerts_origin_alert", "origin", "alert_uuid", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_uuid: Mapped[str] = mapped_column(String(36))
    direction: Mapped[str] = mapped_column(String(10))  # outbound, inbound
    origin: Mapped[str] = mapped_column(String(20))
    source_message_id: Mapped[str | None] = mapped_column(String(36))
    revision: Mapped[int]
    category: Mapped[AlertCategory] = mapped_column(String(30))
    severity: Mapped[Severity] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    subjects: Mapped[list[dict[str, Any]]]
    place: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    handling: Mapped[Handling] = mapped_column(String(12))
    references: Mapped[list[str]]
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(10))  # active, retracted
    retract_reason: Mapped[str | None] = mapped_column(String(1000))
    created_by: Mapped[str] = mapped_column(String(100))
    received_at: Mapped[datetime | None]
    read_at: Mapped[datetime | None]
    read_by: Mapped[str | None] = mapped_column(String(100))
    acted_at: Mapped[datetime | None]
    acted_by: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime]

    recipients: Mapped[list[AlertRecipient]] = relationship(
        back_populates="alert", order_by="AlertRecipient.id"
    )


class AlertRecipient(Base):
    """Per-peer state of an outbound alert: queued, delivered, read, acted, failed,
    expired, or withheld (the sharing agreement did not allow it)."""

    __tablename__ = "alert_recipients"
    __table_args__ = (Index("uq_alert_recipients_alert_peer", "alert_id", "peer", unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id"))
    peer: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(String(12))
    reason: Mapped[str | None] = mapped_column(String(300))
    updated_at: Mapped[datetime]

    alert: Mapped[Alert] = relationship(back_populates="recipients")


# -- KYC matching -----------------------------------------------------------------------
