"""Errors raised by the kpnet protocol library.

Every failure has its own class and a stable, machine-readable ``code`` string that
nodes send back to peers and count in metrics. The hierarchy::

    ProtocolError                      (base; never raised itself)
    ├── EnvelopeError                  opening an envelope failed; roughly in the order checked
    │   │                              (docs/protocol.md has the exact step list):
    │   ├── TooLarge                   too_large            body over the size limit (unparsed)
    │   ├── Malformed                  malformed            not JSON, wrong fields or types
    │   ├── UnsupportedVersion         unsupported_version  protocol version not spoken here
    │   ├── UnknownSender              unknown_sender       sender node id not in the directory
    │   ├── SenderInactive             sender_inactive      sender suspended (by a directory)
    │   ├── UnknownKey                 unknown_key          key id not among the sender's keys
    │   ├── KeyExpired                 key_expired          the sender's key is outside its validity
    │   ├── BadSignature               bad_signature        Ed25519 signature does not verify
    │   ├── WrongRecipient             wrong_recipient      addressed to another node or key
    │   ├── Expired                    expired              past expires_at (plus clock skew)
    │   ├── NotYetValid                not_yet_valid        created_at in the future (beyond skew)
    │   │   (then the sender's encryption key: unknown_key / key_expired)
    │   ├── DecryptionFailed           decryption_failed    crypto_box authentication failed
    │   ├── SchemaInvalid              schema_invalid       inner document or payload off its schema
    │   └── HeaderMismatch             header_mismatch      encrypted copy of the header differs
    └── CardError                      node cards
        ├── CardInvalid                card_invalid         malformed card or bad self-signature
        └── FingerprintMismatch        fingerprint_mismatch card differs from the fingerprint read
"""

from __future__ import annotations


class ProtocolError(Exception):
    """Base class of every error this library raises on purpose."""

    code = "protocol_error"

    def __init__(self, detail: str = "") -> None:
        super().__init__(detail or self.code)
        self.detail = detail


class EnvelopeError(ProtocolError):
    code = "envelope_error"
    # True once the sender's signature has verified (checks 13-23 of docs/protocol.md
    # §6.1): a known peer sent this, not whoever can reach the endpoint.
    authenticated = False


class TooLarge(EnvelopeError):
    code = "too_large"


class Malformed(EnvelopeError):
    code = "malformed"


class UnsupportedVersion(EnvelopeError):
    code = "unsupported_version"


class UnknownSender(EnvelopeError):
    code = "unknown_sender"


class SenderInactive(EnvelopeError):
    code = "sender_inactive"


class UnknownKey(EnvelopeError):
    code = "unknown_key"


class KeyExpired(EnvelopeError):
    code = "key_expired"


class BadSignature(EnvelopeError):
    code = "bad_signature"


class WrongRecipient(EnvelopeError):
    code = "wrong_recipient"


class Expired(EnvelopeError):
    code = "expired"


class NotYetValid(EnvelopeError):
    code = "not_yet_valid"


class DecryptionFailed(EnvelopeError):
    code = "decryption_failed"


class HeaderMismatch(EnvelopeError):
    code = "header_mismatch"


class SchemaInvalid(EnvelopeError):
    code = "schema_invalid"


class CardError(ProtocolError):
    code = "card_error"


class CardInvalid(CardError):
    code = "card_invalid"


class FingerprintMismatch(CardError):
    code = "fingerprint_mismatch"


ERROR_CODES: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        TooLarge,
        Malformed,
        UnsupportedVersion,
        UnknownSender,
        SenderInactive,
        UnknownKey,
        KeyExpired,
        BadSignature,
        WrongRecipient,
        Expired,
        NotYetValid,
        DecryptionFailed,
        HeaderMismatch,
        SchemaInvalid,
        CardInvalid,
        FingerprintMismatch,
    )
}
