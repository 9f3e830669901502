"""Node keys: the private identity a node holds, the public keys others see, key ids
and the fingerprint two officers read aloud to each other."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass, field
from typing import Literal

from nacl.public import PrivateKey
from nacl.signing import SigningKey

from ._base64 import b64encode

NODE_ID_PATTERN = r"^[A-Z]{2}(-[a-z0-9]{1,16})?$"
NODE_ID_RE = re.compile(r"\A[A-Z]{2}(-[a-z0-9]{1,16})?\Z")
_FINGERPRINT_DOMAIN = b"kpnet-fingerprint-v1\x00"

KeyUse = Literal["sig", "enc"]


def is_node_id(value: str) -> bool:
    """A node id is an ISO 3166-1 alpha-2 code, optionally ``-`` and a short lowercase tag."""
    return bool(NODE_ID_RE.match(value))


def key_id(public_key: bytes) -> str:
    """Key id: the first 8 bytes of SHA-256 of the raw public key, as 16 lowercase hex digits."""
    return hashlib.sha256(public_key).hexdigest()[:16]


def fingerprint(node_id: str, signing_public_key: bytes) -> str:
    """A 30-digit fingerprint in six groups of five, to be read aloud and compared.

    SHA-256 over a domain tag, the node id, a zero byte and the raw Ed25519 public key;
    each of the first six 5-byte chunks, read big-endian, modulo 100000. About 100 bits.
    Binding the node id means a fingerprint vouches for "this key speaks for CM".
    """
    digest = hashlib.sha256(
        _FINGERPRINT_DOMAIN + node_id.encode("ascii") + b"\x00" + signing_public_key
    ).digest()
    groups = [int.from_bytes(digest[i : i + 5], "big") % 100_000 for i in range(0, 30, 5)]
    return " ".join(f"{g:05d}" for g in groups)


def normalise_fingerprint(text: str) -> str:
    """Accept a fingerprint typed with any spacing or dashes; return its 30 digits."""
    return re.sub(r"[\s\-]", "", text)


def fingerprints_equal(a: str, b: str) -> bool:
    """Compare two fingerprints in constant time, ignoring spaces and dashes."""
    return hmac.compare_digest(
        normalise_fingerprint(a).encode("ascii", "replace"),
        normalise_fingerprint(b).encode("ascii", "replace"),
    )


@dataclass(frozen=True)
class PublicKey:
    """One public key of a node as published in its card."""

    kid: str
    use: KeyUse
    key: bytes = field(repr=False)
    valid_from: int
    valid_until: int

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise ValueError("public keys are 32 bytes")
        if self.kid != key_id(self.key):
            raise ValueError("key id does not match the key")
        if self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")

    @property
    def alg(self) -> str:
        return "Ed25519" if self.use == "sig" else "X25519"

    def to_json(self) -> dict[str, object]:
        return {
            "kid": self.kid,
            "use": self.use,
            "alg": self.alg,
            "public_key": b64encode(self.key),
            "valid_from": self.valid_from,
            "valid_until": self.valid_until,
        }


class NodeIdentity:
    """A node's private keys: one Ed25519 signing key and one or more X25519 keys.

    ``retired_encryption_keys`` are kept after a rotation so messages already sealed to
    them still open. Secrets never appear in ``repr``.
    """

    def __init__(
        self,
        node_id: str,
        signing_seed: bytes,
        encryption_secret: bytes,
        retired_encryption_secrets: tuple[bytes, ...] = (),
    ) -> None:
        if not is_node_id(node_id):
            raise ValueError(f"invalid node id {node_id!r}")
        for secret in (signing_seed, encryption_secret, *retired_encryption_secrets):
            if len(secret) != 32:
                raise ValueError("secret keys are 32 bytes")
        self.node_id = node_id
        self._signing = SigningKey(signing_seed)
        self._encryption = PrivateKey(encryption_secret)
        self._decryption = {
            key_id(bytes(sk.public_key)): sk
            for sk in (self._encryption, *(PrivateKey(s) for s in retired_encryption_secrets))
        }
        self.signing_public_key = bytes(self._signing.verify_key)
        self.encryption_public_key = bytes(self._encryption.public_key)
        self.signing_kid = key_id(self.signing_public_key)
        self.encryption_kid = key_id(self.encryption_public_key)

    @classmethod
    def generate(cls, node_id: str) -> NodeIdentity:
        return cls(node_id, bytes(SigningKey.generate()), bytes(PrivateKey.generate()))

    @property
    def signing_seed(self) -> bytes:
        return bytes(self._signing)

    @property
    def encryption_secret(self) -> bytes:
        return bytes(self._encryption)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.node_id, self.signing_public_key)

    def sign(self, message: bytes) -> bytes:
        return self._signing.sign(message).signature

    def decryption_key(self, kid: str) -> PrivateKey | None:
        return self._decryption.get(kid)

    @property
    def encryption_key(self) -> PrivateKey:
        return self._encryption

    def __repr__(self) -> str:
        return f"NodeIdentity(node_id={self.node_id!r}, signing_kid={self.signing_kid!r})"
