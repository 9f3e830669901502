"""Sealing and opening envelopes.

Wire form: one JSON object (the envelope) whose members are the clear header, the
``nonce`` and ``ciphertext`` of the NaCl ``crypto_box`` of the inner document, and an
Ed25519 ``signature`` over the canonical JSON of every other member. The inner
document repeats ``id``, ``type``, ``sender`` and ``recipient`` and carries the payload.
``open_envelope`` checks in a fixed order and fails fast (see ``docs/protocol.md``).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from nacl.bindings import crypto_box_easy, crypto_box_open_easy
from nacl.exceptions import BadSignatureError, CryptoError
from nacl.signing import VerifyKey
from pydantic import BaseModel, SerializeAsAny, ValidationError

from ._base64 import b64decode, b64encode
from ._canonical import canonical_json, parse_json
from ._card import verify_card
from ._errors import (
    BadSignature,
    CardError,
    DecryptionFailed,
    EnvelopeError,
    Expired,
    HeaderMismatch,
    KeyExpired,
    Malformed,
    NotYetValid,
    SchemaInvalid,
    TooLarge,
    UnknownKey,
    UnknownSender,
    UnsupportedVersion,
    WrongRecipient,
)
from ._keys import NODE_ID_RE, NodeIdentity, PublicKey, is_node_id
from ._messages import MESSAGE_TYPES, CardUpdate, Payload, validate_payload

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = frozenset({1})
DEFAULT_MAX_BYTES = 256 * 1024
DEFAULT_CLOCK_SKEW = 300
MAX_LIFETIME = 90 * 86400
MAX_TIME = 2**53 - 1
NONCE_SIZE = 24

_UUID = re.compile(r"\A[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_KID = re.compile(r"\A[0-9a-f]{16}\Z")
_TYPE = re.compile(r"\A[a-z.]{1,40}\Z")
# Header members of version 1: integer members, then string members with their format.
_INT_MEMBERS = frozenset({"version", "created_at", "expires_at"})
_STRING_MEMBERS: dict[str, re.Pattern[str]] = {
    "id": _UUID,
    "type": _TYPE,
    "sender": NODE_ID_RE,
    "recipient": NODE_ID_RE,
    "sender_sig_kid": _KID,
    "sender_enc_kid": _KID,
    "recipient_enc_kid": _KID,
}
# Binary members (base64url) with their decoded length, None for any length.
_BINARY_MEMBERS: dict[str, int | None] = {"nonce": 24, "ciphertext": None, "signature": 64}
_REQUIRED_MEMBERS = _INT_MEMBERS | _STRING_MEMBERS.keys() | _BINARY_MEMBERS.keys()
_OPTIONAL_MEMBERS: dict[str, re.Pattern[str]] = {"in_reply_to": _UUID}
_INNER_MEMBERS = ("id", "type", "sender", "recipient")
_TYPE_NAMES = {model: name for name, model in MESSAGE_TYPES.items()}


class _InnerDocument(BaseModel):
    """The encrypted document. Its JSON need not be canonical: crypto_box authenticates
    it, and receivers compare its members, not its bytes."""

    id: str
    type: str
    sender: str
    recipient: str
    payload: SerializeAsAny[Payload]


class KeyDirectory(Protocol):
    """What the opener needs to know about other nodes.

    ``keys_for`` returns every public key (current and retired) of a known node, or
    ``None`` for an unknown one. A directory may raise :class:`SenderInactive` for a
    node it knows but does not currently accept (e.g. a suspended peer).
    """

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None: ...


class StaticDirectory:
    """A :class:`KeyDirectory` over a fixed mapping of node id to keys (tests, tools)."""

    def __init__(self, keys: Mapping[str, Sequence[PublicKey]]) -> None:
        self._keys = dict(keys)

    def keys_for(self, node_id: str) -> Sequence[PublicKey] | None:
        return self._keys.get(node_id)


@dataclass(frozen=True)
class Recipient:
    """Where to seal to: a node id and its current X25519 key (from its card)."""

    node_id: str
    encryption_key: PublicKey

    def __post_init__(self) -> None:
        if not is_node_id(self.node_id):
            raise ValueError(f"invalid node id {self.node_id!r}")
        if self.encryption_key.use != "enc":
            raise ValueError("recipient key must be an encryption key")


@dataclass(frozen=True)
class Header:
    version: int
    id: str
    type: str
    sender: str
    recipient: str
    sender_sig_kid: str
    sender_enc_kid: str
    recipient_enc_kid: str
    created_at: int
    expires_at: int
    in_reply_to: str | None


@dataclass(frozen=True)
class OpenedMessage:
    """A verified, decrypted and schema-checked message.

    Nodes de-duplicate on ``(header.sender, header.id)`` and may forget an id once
    ``header.expires_at`` (plus clock skew) has passed: the library cannot detect
    replays on its own, since that needs storage.
    """

    header: Header
    payload: Payload
    size: int

    @property
    def id(self) -> str:
        return self.header.id

    @property
    def type(self) -> str:
        return self.header.type

    @property
    def sender(self) -> str:
        return self.header.sender


def new_message_id() -> str:
    return str(uuid.uuid4())


def seal(
    identity: NodeIdentity,
    recipient: Recipient,
    payload: Payload,
    *,
    now: int,
    ttl: int = 7 * 86400,
    in_reply_to: str | None = None,
    message_id: str | None = None,
    nonce: bytes | None = None,
) -> bytes:
    """Sign and encrypt ``payload`` from ``identity`` to ``recipient``; return wire bytes.

    ``message_id`` and ``nonce`` exist for test vectors; leave them unset otherwise
    (a nonce must never repeat for the same pair of keys).
    """
    msg_type = _type_of(payload)
    if not 0 < ttl <= MAX_LIFETIME:
        raise ValueError(f"ttl must be between 1 s and {MAX_LIFETIME} s")
    msg_id = message_id or new_message_id()
    nonce = nonce if nonce is not None else os.urandom(NONCE_SIZE)
    if not _UUID.match(msg_id) or (in_reply_to is not None and not _UUID.match(in_reply_to)):
        raise ValueError("message ids are lowercase UUID strings")
    inner = _InnerDocument.model_construct(
        id=msg_id,
        type=msg_type,
        sender=identity.node_id,
        recipient=recipient.node_id,
        payload=payload,
    ).model_dump_json(exclude_none=True)
    # crypto_box (X25519 + XSalsa20-Poly1305), called directly: the same primitive as
    # nacl.public.Box, without building wrapper objects per message.
    ciphertext = crypto_box_easy(
        inner.encode("utf-8"), nonce, recipient.encryption_key.key, identity.encryption_secret
    )
    envelope: dict[str, Any] = {
        "version": PROTOCOL_VERSION,
        "id": msg_id,
        "type": msg_type,
        "sender": identity.node_id,
        "recipient": recipient.node_id,
        "sender_sig_kid": identity.signing_kid,
        "sender_enc_kid": identity.encryption_kid,
        "recipient_enc_kid": recipient.encryption_key.kid,
        "created_at": now,
        "expires_at": now + ttl,
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(ciphertext),
    }
    if in_reply_to is not None:
        envelope["in_reply_to"] = in_reply_to
    signed = canonical_json(envelope)
    signature = b64encode(identity.sign(signed)).encode("ascii")
    # "signature" sorts just before "type"; no header value before it can contain a
    # quote, so inserting the member there yields the canonical form without re-encoding.
    return signed.replace(b',"type":', b',"signature":"' + signature + b'","type":', 1)


def _type_of(payload: Payload) -> str:
    try:
        return _TYPE_NAMES[type(payload)]
    except KeyError:
        raise TypeError(f"{type(payload).__name__} is not a protocol message type") from None


@dataclass(frozen=True, slots=True)
class _Parsed:
    doc: dict[str, Any]
    header: Header
    nonce: bytes
    ciphertext: bytes
    signature: bytes


def _parse(raw: bytes) -> _Parsed:
    doc = parse_json(raw)
    if not isinstance(doc, dict) or type(doc.get("version")) is not int:
        raise Malformed("envelope must be a JSON object with an integer version")
    if doc["version"] not in SUPPORTED_VERSIONS:
        raise UnsupportedVersion(
            f"version {doc['version']} not supported; supported: {sorted(SUPPORTED_VERSIONS)}"
        )
    if not doc.keys() >= _REQUIRED_MEMBERS:
        raise Malformed(f"missing members {sorted(_REQUIRED_MEMBERS - doc.keys())}")
    binary: dict[str, bytes] = {}
    for name, value in doc.items():
        if name in _INT_MEMBERS:
            if type(value) is not int:
                raise Malformed(f"{name} must be an integer")
        elif name in _BINARY_MEMBERS:
            try:
                binary[name] = b64decode(value)
            except ValueError:
                raise Malformed(f"{name} is not unpadded base64url") from None
            size = _BINARY_MEMBERS[name]
            if size is not None and len(binary[name]) != size:
                raise Malformed(f"{name} must be {size} bytes")
        else:
            pattern = _STRING_MEMBERS.get(name) or _OPTIONAL_MEMBERS.get(name)
            if pattern is None:
                raise Malformed(f"unknown member {name[:40]!r}")
            if type(value) is not str or not pattern.match(value):
                raise Malformed(f"{name} is not in its required format")
    if doc["type"] not in MESSAGE_TYPES:
        raise Malformed(f"unknown message type {doc['type']!r}")
    if (
        not 0
        <= doc["created_at"]
        < doc["expires_at"]
        <= min(doc["created_at"] + MAX_LIFETIME, MAX_TIME)
    ):
        raise Malformed("expires_at must follow created_at by at most 90 days")
    header = Header(
        version=doc["version"],
        id=doc["id"],
        type=doc["type"],
        sender=doc["sender"],
        recipient=doc["recipient"],
        sender_sig_kid=doc["sender_sig_kid"],
        sender_enc_kid=doc["sender_enc_kid"],
        recipient_enc_kid=doc["recipient_enc_kid"],
        created_at=doc["created_at"],
        expires_at=doc["expires_at"],
        in_reply_to=doc.get("in_reply_to"),
    )
    return _Parsed(doc, header, binary["nonce"], binary["ciphertext"], binary["signature"])


def _sender_key(keys: Sequence[PublicKey], kid: str, use: str, now: int, skew: int) -> PublicKey:
    key = next((k for k in keys if k.kid == kid and k.use == use), None)
    if key is None:
        raise UnknownKey(f"no {use} key {kid} for the sender")
    if not key.valid_from - skew <= now <= key.valid_until + skew:
        raise KeyExpired(f"{use} key {kid} is not valid at {now}")
    return key


def peek_header(raw: bytes, *, max_bytes: int = DEFAULT_MAX_BYTES) -> Header:
    """Parse the clear header WITHOUT verifying anything (for routing and logs only)."""
    if len(raw) > max_bytes:
        raise TooLarge(f"{len(raw)} bytes > {max_bytes}")
    return _parse(raw).header


def open_envelope(
    raw: bytes,
    *,
    identity: NodeIdentity,
    directory: KeyDirectory,
    now: int,
    max_bytes: int = DEFAULT_MAX_BYTES,
    clock_skew: int = DEFAULT_CLOCK_SKEW,
) -> OpenedMessage:
    """Verify, decrypt and schema-check one envelope; return it or raise.

    Checks, in order: size, JSON form, version, sender and key, signature, recipient,
    time window, decryption, header/payload agreement, payload schema. An error raised
    after the signature verified says so (``EnvelopeError.authenticated``).
    """
    signed: list[bool] = []
    try:
        return _open(raw, identity, directory, now, max_bytes, clock_skew, signed)
    except EnvelopeError as exc:
        exc.authenticated = bool(signed)
        raise


def _open(
    raw: bytes,
    identity: NodeIdentity,
    directory: KeyDirectory,
    now: int,
    max_bytes: int,
    clock_skew: int,
    signed: list[bool],
) -> OpenedMessage:
    if len(raw) > max_bytes:
        raise TooLarge(f"{len(raw)} bytes > {max_bytes}")
    parsed = _parse(raw)
    doc, header = parsed.doc, parsed.header

    keys = directory.keys_for(header.sender)
    if keys is None:
        raise UnknownSender(f"unknown sender {header.sender}")
    sig_key = _sender_key(keys, header.sender_sig_kid, "sig", now, clock_skew)
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    try:
        VerifyKey(sig_key.key).verify(canonical_json(unsigned), parsed.signature)
    except BadSignatureError:
        raise BadSignature("signature does not verify") from None
    signed.append(True)

    if header.recipient != identity.node_id:
        raise WrongRecipient(f"addressed to {header.recipient}, not {identity.node_id}")
    my_key = identity.decryption_key(header.recipient_enc_kid)
    if my_key is None:
        raise WrongRecipient(f"encryption key {header.recipient_enc_kid} is not ours")

    if now > header.expires_at + clock_skew:
        raise Expired(f"expired at {header.expires_at}")
    if header.created_at > now + clock_skew:
        raise NotYetValid(f"created at {header.created_at}, now {now}")

    enc_key = _sender_key(keys, header.sender_enc_kid, "enc", now, clock_skew)
    try:
        plaintext = crypto_box_open_easy(
            parsed.ciphertext, parsed.nonce, enc_key.key, bytes(my_key)
        )
    except CryptoError:
        raise DecryptionFailed("cannot decrypt the payload") from None

    try:
        inner = parse_json(plaintext)
    except Malformed as exc:
        raise SchemaInvalid(f"encrypted document is not valid JSON: {exc.detail}") from None
    if not isinstance(inner, dict) or set(inner) != {*_INNER_MEMBERS, "payload"}:
        raise SchemaInvalid("encrypted document must hold id, type, sender, recipient, payload")
    for name in _INNER_MEMBERS:
        if inner[name] != doc[name]:
            raise HeaderMismatch(f"encrypted {name} differs from the header")

    payload = _validate_payload(header, inner["payload"], now, clock_skew)
    return OpenedMessage(header=header, payload=payload, size=len(raw))


def _validate_payload(header: Header, data: Any, now: int, clock_skew: int) -> Payload:
    model = MESSAGE_TYPES[header.type]
    try:
        payload = validate_payload(model, data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'payload'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5]
        )
        raise SchemaInvalid(f"{header.type} payload invalid: {problems}") from None
    if isinstance(payload, CardUpdate):
        try:
            card = verify_card(payload.card.to_json(), now=now, clock_skew=clock_skew)
        except CardError as exc:
            raise SchemaInvalid(f"card.update carries an invalid card: {exc.detail}") from None
        if card.node_id != header.sender:
            raise SchemaInvalid("card.update must carry the sender's own card")
    return payload
