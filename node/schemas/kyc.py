"""Shapes of KYC checks and disclosures in the local API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, Field, StringConstraints, model_validator

import protocol
from protocol import Handling, RecordKind

from .common import Code, Number, Strict, WholeNumber

Reference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
DisclosableField = Literal[
    "kind",
    "names",
    "aliases",
    "date_of_birth",
    "nationality",
    "documents",
    "reason_category",
    "risk_level",
    "narrative",
    "source_agency",
    "linked_licences",
]
DISCLOSABLE_FIELDS: tuple[DisclosableField, ...] = get_args(DisclosableField)
Strength = Literal["strong", "possible", "weak"]


STRONG, POSSIBLE = 700, 450


def strength(score: int) -> Strength:
    """A score in words, for an officer reading a hit at a glance. On the matcher's
    scale (``node.matching.score``), the same name and full date of birth make 750 and a
    matching document number adds up to 400: strong; the same name alone makes 600
    (there are namesakes): possible."""
    return "strong" if score >= STRONG else "possible" if score >= POSSIBLE else "weak"


class CheckCreate(Strict):
    party: protocol.Party = Field(description="The person or organisation to check")
    purpose: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    scope: Literal["local", "federation"] = "local"
    peers: list[Code] | None = Field(
        default=None,
        max_length=50,
        description="Peers to ask (federation scope); omit to ask every active peer",
    )
    timeout_seconds: Number | None = Field(
        default=None, gt=0, le=60, description="How long to wait for peers (default: node setting)"
    )
    max_results: WholeNumber = Field(default=10, ge=1, le=50)


class FeatureOut(BaseModel):
    feature: str
    score: int
    detail: str | None = None


class HitOut(BaseModel):
    kind: RecordKind
    reference: str
    score: int
    strength: Strength
    handling: Handling
    name: str | None = Field(default=None, description="The matching name (local hits)")
    explanation: list[FeatureOut]
    licensee: dict[str, Any] | None = None
    subject: dict[str, Any] | None = Field(
        default=None, description="Summary of a local subject (local hits only)"
    )


PeerState = Literal["answered", "waiting", "no_answer", "refused", "expired"]


class PeerAnswerOut(BaseModel):
    peer: str
    state: PeerState
    asked_at: datetime
    answered_at: datetime | None
    late: bool = Field(description="The answer came after the check's deadline")
    error: str | None = None
    hits: list[HitOut]


class CheckOut(BaseModel):
    id: str
    created_at: datetime
    created_by: str
    purpose: str
    scope: str
    query: dict[str, Any]
    deadline_at: datetime
    complete: bool = Field(description="Every asked peer has answered or refused")
    not_answered: list[str] = Field(description="Peers with no answer (yet)")
    local: list[HitOut]
    peers: list[PeerAnswerOut]


class CheckSummary(BaseModel):
    id: str
    created_at: datetime
    created_by: str
    purpose: str
    scope: str
    names: list[str]
    peers: int


class DisclosureCreate(Strict):
    check_id: Code = Field(description="The check whose peer answer holds the reference")
    peer: Code
    reference: Reference
    justification: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)
    ]


class DisclosureDecision(Strict):
    decision: Literal["grant", "deny"]
    fields: list[DisclosableField] = Field(
        default_factory=list, description="Fields to release (grant)"
    )
    reason: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
        | None
    ) = Field(default=None, description="Why the request is denied (deny)")

    @model_validator(mode="after")
    def _decision_matches_content(self) -> DisclosureDecision:
        if self.decision == "grant" and (not self.fields or self.reason is not None):
            raise ValueError("a grant names at least one field to release and no reason")
        if self.decision == "deny" and (self.reason is None or self.fields):
            raise ValueError("a denial gives a reason and releases no field")
        return self


class DisclosureOut(BaseModel):
    id: int
    request_id: str
    direction: Literal["outbound", "inbound"]
    peer: str
    reference: str
    check_id: str | None
    justification: str
    requested_by: str
    requested_at: datetime
    status: Literal["pending", "granted", "denied"]
    decided_by: str | None
    decided_at: datetime | None
    fields: list[str] | None
    details: dict[str, Any] | None
    handling: Handling | None
    reason: str | None
    record: dict[str, Any] | None = Field(
        default=None,
        description="Inbound: the subject's disclosable fields as held now, to choose from",
    )
    error: str | None = Field(
        default=None,
        description="Outbound, still pending: why the request did not reach the peer's "
        "analysts, if it did not (the peer's refusal code, e.g. quota_exceeded, or expired)",
    )
