"""Shapes of alerts in the local API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

import protocol
from protocol import AlertCategory, Handling, Severity

from .common import Code, Country, Name, Number, Strict


class PlaceIn(Strict):
    country: Country
    locality: Name | None = None
    latitude: Annotated[Number, Field(ge=-90, le=90)] | None = None
    longitude: Annotated[Number, Field(ge=-180, le=180)] | None = None

    def to_protocol(self) -> protocol.Place:
        return protocol.Place(
            country=self.country,
            locality=self.locality,
            lat_e6=round(self.latitude * 1_000_000) if self.latitude is not None else None,
            lon_e6=round(self.longitude * 1_000_000) if self.longitude is not None else None,
        )


class AlertEdit(Strict):
    category: AlertCategory
    severity: Severity
    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    body: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=8000)]
    subjects: list[protocol.Party] = Field(default_factory=list, max_length=50)
    place: PlaceIn | None = None
    handling: Handling = "AMBER"
    expires_at: datetime | None = None
    references: list[Name] = Field(default_factory=list, max_length=20)


class AlertCreate(AlertEdit):
    recipients: list[Code] | None = Field(
        default=None, max_length=200, description="Peer node ids; omit to send to every active peer"
    )


class Retraction(Strict):
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]


# What an officer says of a received alert (and the origin is told, as a receipt).
AcknowledgedAs = Literal["read", "acted"]


class Acknowledgement(Strict):
    status: AcknowledgedAs


class RecipientOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    peer: str
    state: str
    reason: str | None
    updated_at: datetime


class AlertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    alert_uuid: str
    direction: str
    origin: str
    revision: int
    category: AlertCategory
    severity: Severity
    title: str
    body: str
    subjects: list[dict[str, object]]
    place: dict[str, object] | None
    handling: Handling
    references: list[str]
    issued_at: datetime
    expires_at: datetime | None
    status: str
    retract_reason: str | None
    received_at: datetime | None
    read_at: datetime | None
    read_by: str | None
    acted_at: datetime | None
    acted_by: str | None
    recipients: list[RecipientOut] = Field(default_factory=list)


class AlertCreated(AlertOut):
    withheld: list[RecipientOut] = Field(
        default_factory=list, description="Peers the sharing agreement left out, and why"
    )
