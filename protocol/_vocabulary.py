"""The protocol's vocabulary: every enumerated word that crosses the wire, defined once.

Each word list is a ``Literal`` type (for pydantic models and type checking) and the
tuple of its words in their defined order (for loops, menus and checks). The node's
API, console, CSV formats and database use these and define no list of their own.
"""

from __future__ import annotations

from typing import Literal, get_args

# TLP 2.0, from the least to the most restricted: a level's position is its rank.
Handling = Literal["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
HANDLING_LEVELS: tuple[Handling, ...] = get_args(Handling)

AlertCategory = Literal[
    "seizure",
    "smuggling_route",
    "suspect_movement",
    "fake_kp_certificate",
    "cash_movement",
    "licence_suspended_revoked",
    "embargo_breach",
    "other",
]
ALERT_CATEGORIES: tuple[AlertCategory, ...] = get_args(AlertCategory)

# From the least to the most pressing.
Severity = Literal["info", "warning", "urgent"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

PartyKind = Literal["person", "organisation"]
PARTY_KINDS: tuple[PartyKind, ...] = get_args(PartyKind)

LicenceType = Literal["buying_house", "collector", "exporter", "cooperative", "other"]
LICENCE_TYPES: tuple[LicenceType, ...] = get_args(LicenceType)

LicenceStatus = Literal["active", "suspended", "revoked", "expired"]
LICENCE_STATUSES: tuple[LicenceStatus, ...] = get_args(LicenceStatus)

ReasonCategory = Literal[
    "smuggling", "fraud", "fake_kp_certificate", "money_laundering", "embargo_breach", "other"
]
REASON_CATEGORIES: tuple[ReasonCategory, ...] = get_args(ReasonCategory)

# What a KYC hit is found in: the registry of licensed buyers or the subjects of interest.
RecordKind = Literal["licensee", "subject"]
RECORD_KINDS: tuple[RecordKind, ...] = get_args(RecordKind)

RiskLevel = Literal["low", "medium", "high"]
RISK_LEVELS: tuple[RiskLevel, ...] = get_args(RiskLevel)


def handling_rank(level: str) -> int:
    """The position of a TLP level (0 for CLEAR); ``ValueError`` for an unknown level."""
    return HANDLING_LEVELS.index(level)
