"""Node cards: a node's self-signed public description (id, endpoints, keys).

A card is exchanged out of band (file, USB stick, e-mail) and admitted only after its
fingerprint has been compared in person. Its signature is Ed25519, by the card's own
signing key named in ``signed_by``, over the canonical JSON of the card without its
``signature`` member.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Literal

from nacl.exceptions import BadSignatureError
from nacl.signing import VerifyKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from ._base64 import b64decode, b64encode
from ._canonical import canonical_json, parse_json
from ._errors import CardInvalid, FingerprintMismatch, Malformed
from ._keys import NODE_ID_PATTERN, NodeIdentity, PublicKey, fingerprint, fingerprints_equal
from ._text import check_tree

CARD_VERSION = 1
B64Key = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{43}$")]
B64Sig = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{86}$")]
Kid = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{16}$")]
Timestamp = Annotated[int, Field(ge=0, le=2**53 - 1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _storable_text(cls, data: Any) -> Any:
        return check_tree(data)


class CardKey(_Strict):
    kid: Kid
    use: Literal["sig", "enc"]
    alg: Literal["Ed25519", "X25519"]
    public_key: B64Key
    valid_from: Timestamp
    valid_until: Timestamp

    def to_public_key(self) -> PublicKey:
        expected_alg = "Ed25519" if self.use == "sig" else "X25519"
        if self.alg != expected_alg:
            raise ValueError(f"a {self.use} key must be {expected_alg}")
        return PublicKey(
            kid=self.kid,
            use=self.use,
            key=b64decode(self.public_key),
            valid_from=self.valid_from,
            valid_until=self.valid_until,
        )


class NodeCard(_Strict):
    """A verified node card. Build one with :func:`make_card` or :func:`verify_card`."""

    card_version: Literal[1]
    node_id: Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    endpoints: Annotated[
        list[Annotated[str, StringConstraints(pattern=r"^https?://", max_length=500)]],
        Field(min_length=1, max_length=5),
    ]
    protocol_versions: Annotated[
        list[Annotated[int, Field(ge=1, le=999)]], Field(min_length=1, max_length=10)
    ]
    keys: Annotated[list[CardKey], Field(min_length=2, max_length=8)]
    serial: Annotated[int, Field(ge=1, le=2**53 - 1)]
    issued_at: Timestamp
    signed_by: Kid
    signature: B64Sig

    def public_keys(self) -> tuple[PublicKey, ...]:
        return tuple(k.to_public_key() for k in self.keys)

    def key(self, kid: str) -> PublicKey | None:
        return next((k for k in self.public_keys() if k.kid == kid), None)

    def current_key(self, use: str, now: int, clock_skew: int = 0) -> PublicKey:
        """The valid key of ``use`` with the latest ``valid_from`` (the one to use now).
        ``clock_skew`` widens validity by that many seconds each way, as receivers do:
        a key the card's owner made a moment ago by its clock, ahead of ours, is usable."""
        valid = [
            k
            for k in self.public_keys()
            if k.use == use and k.valid_from - clock_skew <= now <= k.valid_until + clock_skew
        ]
        if not valid:
            raise CardInvalid(f"card of {self.node_id} has no {use} key valid now")
        return max(valid, key=lambda k: k.valid_from)

    @property
    def fingerprint(self) -> str:
        """Fingerprint of the key that signed this card."""
        signer = self.key(self.signed_by)
        assert signer is not None  # guaranteed by verify_card
        return fingerprint(self.node_id, signer.key)

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json())


def make_card(
    identity: NodeIdentity,
    *,
    name: str,
    endpoints: Iterable[str],
    now: int,
    valid_for: int = 2 * 365 * 86400,
    serial: int = 1,
    protocol_versions: Iterable[int] = (1,),
    extra_keys: Iterable[PublicKey] = (),
) -> NodeCard:
    """Build and self-sign the card of ``identity``.

    ``extra_keys`` carries keys a rotated card still lists (e.g. the previous
    encryption key, valid for a grace period).
    """
    keys = [
        PublicKey(identity.signing_kid, "sig", identity.signing_public_key, now, now + valid_for),
        PublicKey(
            identity.encryption_kid, "enc", identity.encryption_public_key, now, now + valid_for
        ),
        *extra_keys,
    ]
    body: dict[str, Any] = {
        "card_version": CARD_VERSION,
        "node_id": identity.node_id,
        "country": identity.node_id[:2],
        "name": name,
        "endpoints": list(endpoints),
        "protocol_versions": sorted(set(protocol_versions)),
        "keys": [k.to_json() for k in keys],
        "serial": serial,
        "issued_at": now,
        "signed_by": identity.signing_kid,
    }
    body["signature"] = b64encode(identity.sign(canonical_json(body)))
    return verify_card(body)


def verify_card(
    data: bytes | str | Mapping[str, Any],
    *,
    expected_fingerprint: str | None = None,
    now: int | None = None,
    clock_skew: int = 0,
) -> NodeCard:
    """Check a card's structure and self-signature; optionally its fingerprint and validity.

    Returns the :class:`NodeCard` or raises :class:`CardInvalid` /
    :class:`FingerprintMismatch`.
    """
    try:
        raw = parse_json(data) if isinstance(data, (bytes, str)) else dict(data)
    except Malformed as exc:
        raise CardInvalid(f"card is not valid JSON: {exc.detail}") from None
    if not isinstance(raw, dict):
        raise CardInvalid("card must be a JSON object")
    try:
        card = NodeCard.model_validate(raw)
        keys = card.public_keys()
    except ValidationError as exc:
        # One line (it is shown to operators as is), naming the first few problems.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'card'}: {err['msg']}"
            for err in exc.errors(include_url=False)[:5]
        )
        raise CardInvalid(f"card does not match the schema: {problems}") from None
    except ValueError as exc:
        raise CardInvalid(f"card does not match the schema: {exc}") from None
    if card.country != card.node_id[:2]:
        raise CardInvalid("country must be the first two letters of the node id")
    if len({k.kid for k in keys}) != len(keys):
        raise CardInvalid("duplicate key ids")
    if not any(k.use == "enc" for k in keys):
        raise CardInvalid("card has no encryption key")
    signer = next((k for k in keys if k.kid == card.signed_by and k.use == "sig"), None)
    if signer is None:
        raise CardInvalid("signed_by does not name a signing key of the card")
    unsigned = {k: v for k, v in raw.items() if k != "signature"}
    try:
        VerifyKey(signer.key).verify(canonical_json(unsigned), b64decode(card.signature))
    except (BadSignatureError, ValueError):
        raise CardInvalid("card signature does not verify") from None
    if expected_fingerprint is not None and not fingerprints_equal(
        card.fingerprint, expected_fingerprint
    ):
        raise FingerprintMismatch(
            f"card of {card.node_id} does not match the fingerprint you were given"
        )
    if (
        now is not None
        and not signer.valid_from - clock_skew <= now <= signer.valid_until + clock_skew
    ):
        raise CardInvalid("the card's signing key is not valid now")
    return card
