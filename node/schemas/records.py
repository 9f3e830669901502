"""Validated shapes of records as the API, the CSV importer and the services see them.

Input models (``*Create``, ``*Update``) forbid unknown fields and bound every string;
output models (``*Out``) are what the API returns.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from protocol import Handling, LicenceStatus, LicenceType, PartyKind, ReasonCategory, RiskLevel

from .common import (
    Code,
    Country,
    Name,
    ShortText,
    Strict,
    Version,
    check_partial_date,
    reject_null,
)

PersonRole = Literal["director", "beneficial_owner", "manager", "other"]


class IdentityDocument(Strict):
    type: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40)]
    number: Code
    country: Country | None = None


class Person(Strict):
    """A person behind a licensee: director, beneficial owner, manager."""

    role: PersonRole = "director"
    name: Name
    date_of_birth: str | None = None
    nationality: Country | None = None
    documents: list[IdentityDocument] = Field(default_factory=list, max_length=10)

    _dob = field_validator("date_of_birth")(check_partial_date)


class LicenseeFields(Strict):
    licence_type: LicenceType
    legal_name: Name
    trade_names: list[Name] = Field(default_factory=list, max_length=20)
    persons: list[Person] = Field(default_factory=list, max_length=50)
    address: ShortText | None = None
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    issued_on: date | None = None
    expires_on: date | None = None
    handling: Handling = "GREEN"


class LicenseeCreate(LicenseeFields):
    licence_number: Code
    status: LicenceStatus = "active"


class LicenseeUpdate(Strict):
    """Fields to change; absent fields stay as they are. ``version`` guards lost updates."""

    version: Version | None = None
    licence_type: LicenceType | None = None
    legal_name: Name | None = None
    trade_names: list[Name] | None = Field(default=None, max_length=20)
    persons: list[Person] | None = Field(default=None, max_length=50)
    address: ShortText | None = None
    region: Annotated[str, StringConstraints(strip_whitespace=True, max_length=100)] | None = None
    issued_on: date | None = None
    expires_on: date | None = None
    handling: Handling | None = None

    _not_null = field_validator("licence_type", "legal_name", "trade_names", "persons", "handling")(
        reject_null
    )


class StatusChange(Strict):
    status: LicenceStatus
    reason: ShortText | None = None


class SubjectFields(Strict):
    kind: PartyKind
    names: list[Name] = Field(min_length=1, max_length=20)
    aliases: list[Name] = Field(default_factory=list, max_length=20)
    date_of_birth: str | None = None
    nationality: Country | None = None
    documents: list[IdentityDocument] = Field(default_factory=list, max_length=10)
    linked_licence_numbers: list[Code] = Field(default_factory=list, max_length=20)
    reason_category: ReasonCategory
    risk_level: RiskLevel = "medium"
    narrative: Annotated[str, StringConstraints(max_length=8000)] | None = None
    source_agency: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None
    ) = None
    handling: Handling = "AMBER"

    _dob = field_validator("date_of_birth")(check_partial_date)


class SubjectCreate(SubjectFields):
    pass


class SubjectUpdate(Strict):
    version: Version | None = None
    kind: PartyKind | None = None
    names: list[Name] | None = Field(default=None, min_length=1, max_length=20)
    aliases: list[Name] | None = Field(default=None, max_length=20)
    date_of_birth: str | None = None
    nationality: Country | None = None
    documents: list[IdentityDocument] | None = Field(default=None, max_length=10)
    linked_licence_numbers: list[Code] | None = Field(default=None, max_length=20)
    reason_category: ReasonCategory | None = None
    risk_level: RiskLevel | None = None
    narrative: Annotated[str, StringConstraints(max_length=8000)] | None = None
    source_agency: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)] | None
    ) = None
    handling: Handling | None = None

    _dob = field_validator("date_of_birth")(check_partial_date)
    _not_null = field_validator(
        "kind",
        "names",
        "aliases",
        "documents",
        "linked_licence_numbers",
        "reason_category",
        "risk_level",
        "handling",
    )(reject_null)


class RecordMeta(BaseModel):
    ref: str
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str


class StatusChangeOut(BaseModel):
    status: LicenceStatus
    reason: str | None
    changed_at: datetime
    changed_by: str


class LicenseeOut(LicenseeCreate, RecordMeta):
    model_config = ConfigDict(extra="ignore")
    status_history: list[StatusChangeOut] = Field(default_factory=list)


class SubjectOut(SubjectFields, RecordMeta):
    model_config = ConfigDict(extra="ignore")


class HistoryEntry(BaseModel):
    version: int
    action: str
    changed_at: datetime
    changed_by: str
    changes: dict[str, list[object]]


class LicenseeFilters(BaseModel):
    """What the licensee list can be filtered by (``GET /api/v1/licensees``, the console)."""

    status: LicenceStatus | None = None
    licence_type: LicenceType | None = None
    region: str | None = None
    handling: Handling | None = None


class SubjectFilters(BaseModel):
    """What the subject list can be filtered by."""

    kind: PartyKind | None = None
    reason_category: ReasonCategory | None = None
    risk_level: RiskLevel | None = None
    nationality: str | None = None
    handling: Handling | None = None
