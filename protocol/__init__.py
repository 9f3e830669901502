"""kpnet protocol: signed, end-to-end encrypted messages between national nodes.

A pure library (standard library, PyNaCl and pydantic only). Its parts:

- ``NodeIdentity`` (private keys) and ``NodeCard`` (the public, self-signed
  description of a node), with ``fingerprint`` for in-person verification;
- ``canonical_json`` (RFC 8785) — the one encoder used for every signature;
- ``seal`` / ``open_envelope`` — envelopes; ``open_envelope`` returns an
  ``OpenedMessage`` or raises a ``ProtocolError`` subclass with a stable ``code``;
- payload models, one per message type, listed in ``MESSAGE_TYPES``;
- the vocabulary (TLP levels, alert categories, severities, party kinds, licence types
  and statuses, reason categories, risk levels), defined once for the whole project.

The specification is ``docs/protocol.md``; test vectors are in
``docs/protocol/test-vectors.json`` (made by ``python -m protocol.testvectors``).
"""

from ._base64 import b64decode, b64encode
from ._canonical import canonical_json, parse_json
from ._card import NodeCard, make_card, verify_card
from ._envelope import (
    DEFAULT_CLOCK_SKEW,
    DEFAULT_MAX_BYTES,
    MAX_LIFETIME,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    Header,
    KeyDirectory,
    OpenedMessage,
    Recipient,
    StaticDirectory,
    new_message_id,
    open_envelope,
    peek_header,
    seal,
)
from ._errors import (
    ERROR_CODES,
    BadSignature,
    CardError,
    CardInvalid,
    DecryptionFailed,
    EnvelopeError,
    Expired,
    FingerprintMismatch,
    HeaderMismatch,
    KeyExpired,
    Malformed,
    NotYetValid,
    ProtocolError,
    SchemaInvalid,
    SenderInactive,
    TooLarge,
    UnknownKey,
    UnknownSender,
    UnsupportedVersion,
    WrongRecipient,
)
from ._keys import (
    NodeIdentity,
    PublicKey,
    fingerprint,
    fingerprints_equal,
    is_node_id,
    key_id,
)
from ._messages import (
    MESSAGE_TYPES,
    Alert,
    AlertRetract,
    AlertUpdate,
    CardUpdate,
    DisclosedDetails,
    DisclosureRequest,
    DisclosureResponse,
    IdentityDocument,
    KycHit,
    KycQuery,
    KycResponse,
    MatchFeature,
    Party,
    Payload,
    Place,
    Receipt,
    SharedLicensee,
)
from ._vocabulary import (
    ALERT_CATEGORIES,
    HANDLING_LEVELS,
    LICENCE_STATUSES,
    LICENCE_TYPES,
    PARTY_KINDS,
    REASON_CATEGORIES,
    RISK_LEVELS,
    SEVERITIES,
    AlertCategory,
    Handling,
    LicenceStatus,
    LicenceType,
    PartyKind,
    ReasonCategory,
    RiskLevel,
    Severity,
    handling_rank,
)

__all__ = [
    "ALERT_CATEGORIES", "DEFAULT_CLOCK_SKEW", "DEFAULT_MAX_BYTES", "ERROR_CODES",
    "HANDLING_LEVELS", "LICENCE_STATUSES", "LICENCE_TYPES", "MAX_LIFETIME", "MESSAGE_TYPES",
    "PARTY_KINDS", "PROTOCOL_VERSION", "REASON_CATEGORIES", "RISK_LEVELS", "SEVERITIES",
    "SUPPORTED_VERSIONS",
    "Alert", "AlertCategory", "AlertRetract", "AlertUpdate", "BadSignature", "CardError", "CardInvalid",
    "CardUpdate", "DecryptionFailed", "DisclosedDetails", "DisclosureRequest",
    "DisclosureResponse", "EnvelopeError", "Expired", "FingerprintMismatch", "Handling", "Header",
    "HeaderMismatch", "IdentityDocument", "KeyDirectory", "KeyExpired", "KycHit", "KycQuery",
    "KycResponse", "LicenceStatus", "LicenceType", "Malformed", "MatchFeature", "NodeCard", "NodeIdentity", "NotYetValid",
    "OpenedMessage", "Party", "PartyKind", "Payload", "Place", "ProtocolError", "PublicKey", "Receipt",
    "ReasonCategory", "Recipient", "RiskLevel", "SchemaInvalid", "SenderInactive",
    "Severity", "SharedLicensee", "StaticDirectory",
    "TooLarge", "UnknownKey", "UnknownSender", "UnsupportedVersion", "WrongRecipient",
    "b64decode", "b64encode", "canonical_json", "fingerprint", "fingerprints_equal",
    "handling_rank",
    "is_node_id", "key_id", "make_card", "new_message_id", "open_envelope", "parse_json",
    "peek_header", "seal", "verify_card",
]
