"""Payload schemas of protocol version 1, one model per message type.

Every model forbids unknown fields, takes JSON types strictly (no string-to-number
coercion), bounds every string and list, so a peer cannot make us store or
process unbounded input, and refuses U+0000, lone surrogates and Unicode
non-characters in any string (``_text``). Scores are integers 0–1000; coordinates are integer
micro-degrees: the protocol carries no floating-point numbers.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)

from ._card import NodeCard
from ._text import check_tree
from ._vocabulary import (
    AlertCategory,
    Handling,
    LicenceStatus,
    LicenceType,
    PartyKind,
    ReasonCategory,
    RecordKind,
    RiskLevel,
    Severity,
)

Text = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=8000)]
Uuid = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]


def _real_date(value: str) -> str:
    parts = [int(p) for p in value.split("-")]
    if len(parts) >= 2 and not 1 <= parts[1] <= 12:
        raise ValueError("month must be 01-12")
    if len(parts) == 3:
        date(*parts)  # raises ValueError for a day the month does not have
    return value


PartialDate = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"),
    AfterValidator(_real_date),
]
Reference = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]
Timestamp = Annotated[int, Field(ge=0, le=2**53 - 1)]
Score = Annotated[int, Field(ge=0, le=1000)]
LicenceNumber = Annotated[str, StringConstraints(min_length=1, max_length=64)]


_TEXT_ROOT = "kpnet.text_root"  # validation context: the value whose text is checked


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any, info: ValidationInfo) -> Any:
        # Validated by validate_payload, only the root checks its text (its whole tree,
        # once); the payloads nested in it (parties, places…) skip theirs.
        context = info.context
        if isinstance(context, dict) and context.get(_TEXT_ROOT, data) is not data:
            return data
        return check_tree(data)


def validate_payload(model: type[Payload], data: Any) -> Payload:
    """``model.model_validate(data)``, the text of ``data`` checked once as a whole
    rather than again by each payload nested in it."""
    return model.model_validate(data, context={_TEXT_ROOT: data})


class IdentityDocument(Payload):
    type: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    number: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    country: Country | None = None


class Party(Payload):
    """A person or organisation as named in an alert or a KYC query."""

    kind: PartyKind
    names: Annotated[list[Text], Field(min_length=1, max_length=20)]
    aliases: Annotated[list[Text], Field(max_length=20)] = Field(default_factory=list)
    date_of_birth: PartialDate | None = None
    nationality: Country | None = None
    documents: Annotated[list[IdentityDocument], Field(max_length=10)] = Field(default_factory=list)
    licence_numbers: Annotated[list[LicenceNumber], Field(max_length=10)] = Field(
        default_factory=list
    )
    role: Text | None = None


class Place(Payload):
    country: Country
    locality: Text | None = None
    lat_e6: Annotated[int, Field(ge=-90_000_000, le=90_000_000)] | None = None
    lon_e6: Annotated[int, Field(ge=-180_000_000, le=180_000_000)] | None = None


class Alert(Payload):
    """``alert``: an early warning. ``alert_id`` is stable across updates and retraction."""

    alert_id: Uuid
    revision: Annotated[int, Field(ge=1, le=10_000)] = 1
    category: AlertCategory
    severity: Severity
    title: Text
    body: LongText
    subjects: Annotated[list[Party], Field(max_length=50)] = Field(default_factory=list)
    place: Place | None = None
    handling: Handling
    expires_at: Timestamp | None = None
    references: Annotated[list[Text], Field(max_length=20)] = Field(default_factory=list)
    issued_at: Timestamp


class AlertUpdate(Alert):
    """``alert.update``: the full new content of an alert, with a higher ``revision``."""

    revision: Annotated[int, Field(ge=2, le=10_000)]


class AlertRetract(Payload):
    """``alert.retract``: withdraw an alert; receivers mark it retracted."""

    alert_id: Uuid
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)]


class KycQuery(Payload):
    """``kyc.query``: step 1 of a check; asks whether the recipient holds anything."""

    query_id: Uuid
    subject: Party
    purpose: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    requesting_role: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    max_results: Annotated[int, Field(ge=1, le=50)] = 10


class MatchFeature(Payload):
    feature: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    score: Score
    detail: Annotated[str, StringConstraints(max_length=200)] | None = None


class SharedLicensee(Payload):
    """Licensee (KYC) fields a node may share in a step-1 answer."""

    legal_name: Text | None = None
    licence_number: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    licence_type: LicenceType | None = None
    status: LicenceStatus | None = None
    valid_from: PartialDate | None = None
    valid_until: PartialDate | None = None


class KycHit(Payload):
    kind: RecordKind
    score: Score
    reference: Reference
    handling: Handling
    licensee: SharedLicensee | None = None
    explanation: Annotated[list[MatchFeature], Field(max_length=20)] = Field(default_factory=list)


class KycResponse(Payload):
    """``kyc.response``: the answer to one query; ``hits`` is empty for "no hit"."""

    query_id: Uuid
    hits: Annotated[list[KycHit], Field(max_length=50)] = Field(default_factory=list)


class DisclosureRequest(Payload):
    """``disclosure.request``: step 2, ask the holder for the details behind a reference."""

    request_id: Uuid
    query_id: Uuid | None = None
    reference: Reference
    justification: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    requested_by_role: Annotated[str, StringConstraints(min_length=1, max_length=40)]


class DisclosedDetails(Payload):
    """Subject fields an analyst chose to release; every field is optional."""

    kind: PartyKind | None = None
    names: Annotated[list[Text], Field(max_length=20)] = Field(default_factory=list)
    aliases: Annotated[list[Text], Field(max_length=20)] = Field(default_factory=list)
    date_of_birth: PartialDate | None = None
    nationality: Country | None = None
    documents: Annotated[list[IdentityDocument], Field(max_length=10)] = Field(default_factory=list)
    reason_category: ReasonCategory | None = None
    risk_level: RiskLevel | None = None
    narrative: LongText | None = None
    source_agency: Text | None = None
    linked_licences: Annotated[list[LicenceNumber], Field(max_length=10)] = Field(
        default_factory=list
    )


class DisclosureResponse(Payload):
    """``disclosure.response``: granted with details, or denied with a reason."""

    request_id: Uuid
    reference: Reference
    decision: Literal["granted", "denied"]
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1000)] | None = None
    details: DisclosedDetails | None = None
    handling: Handling | None = None

    @model_validator(mode="after")
    def _decision_matches_content(self) -> DisclosureResponse:
        if self.decision == "granted" and (self.details is None or self.reason is not None):
            raise ValueError("a granted disclosure carries details and no reason")
        if self.decision == "denied" and (self.reason is None or self.details is not None):
            raise ValueError("a denied disclosure carries a reason and no details")
        return self


class Receipt(Payload):
    """``receipt``: the recipient's signed statement about one message it received."""

    message_id: Uuid
    status: Literal["delivered", "read", "acted", "rejected"]
    at: Timestamp
    error_code: Annotated[str, StringConstraints(pattern=r"^[a-z_]{1,40}$")] | None = None


class CardUpdate(Payload):
    """``card.update``: a new self-signed card, sent in an envelope signed by the current key."""

    card: NodeCard


MESSAGE_TYPES: dict[str, type[Payload]] = {
    "alert": Alert,
    "alert.update": AlertUpdate,
    "alert.retract": AlertRetract,
    "kyc.query": KycQuery,
    "kyc.response": KycResponse,
    "disclosure.request": DisclosureRequest,
    "disclosure.response": DisclosureResponse,
    "receipt": Receipt,
    "card.update": CardUpdate,
}
