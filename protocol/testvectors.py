"""Generate the protocol test vectors.

Run ``python -m protocol.testvectors > docs/protocol/test-vectors.json``.

Everything derives from fixed seeds (SHA-256 of a label), fixed nonces, fixed message
ids and a fixed clock, so the output is byte-for-byte reproducible; the test suite
regenerates it and compares. Each case gives the keys in hex, the envelope exactly as
on the wire, and either the expected payload or the expected error code.
"""

from __future__ import annotations

import hashlib
import json
import sys
from dataclasses import replace
from typing import Any

from nacl.public import Box

from ._base64 import b64decode, b64encode
from ._canonical import canonical_json, parse_json
from ._card import make_card
from ._envelope import Recipient, seal
from ._keys import NodeIdentity
from ._messages import (
    MESSAGE_TYPES,
    Alert,
    AlertRetract,
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

NOW = 1_790_000_000  # 2026-09-21T14:13:20Z
CARD_TIME = NOW - 86400
ROTATED_AT = NOW  # CM rotates its keys (rotation cases, docs/protocol.md §10)
GRACE = 14 * 86400  # how long CM's rotated card still lists its previous keys


def _secret(label: str) -> bytes:
    return hashlib.sha256(f"kpnet test vector {label}".encode()).digest()


def _identity(node_id: str) -> NodeIdentity:
    return NodeIdentity(node_id, _secret(f"{node_id} ed25519"), _secret(f"{node_id} x25519"))


def _uuid(n: int) -> str:
    h = hashlib.sha256(f"kpnet test vector uuid {n}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-8{h[17:20]}-{h[20:32]}"


def _payloads() -> list[tuple[str, str, Payload]]:
    person = Party(
        kind="person",
        names=["MBALA Jean-Pierre"],
        aliases=["J.-P. Mbala", "Jean Pierre Mballa"],
        date_of_birth="1978",
        nationality="CF",
        documents=[IdentityDocument(type="passport", number="CF0123456", country="CF")],
    )
    return [
        (
            "alert",
            "A seizure alert with a named subject and a place.",
            Alert(
                alert_id=_uuid(100),
                category="fake_kp_certificate",
                severity="urgent",
                title="Colis saisi à Bangui M'Poko : certificat KP falsifié",
                body="Parcel of 312 rough stones seized; the KP certificate number does not exist.",
                subjects=[person],
                place=Place(country="CF", locality="Bangui", lat_e6=4398500, lon_e6=18518800),
                handling="AMBER",
                expires_at=NOW + 30 * 86400,
                references=["KP-CF-2026-000123"],
                issued_at=NOW,
            ),
        ),
        (
            "alert.retract",
            "Retraction of an alert.",
            AlertRetract(
                alert_id=_uuid(100), reason="Certificate confirmed genuine after verification."
            ),
        ),
        (
            "kyc.query",
            "Step 1 of a KYC check on a person.",
            KycQuery(
                query_id=_uuid(200),
                subject=person,
                purpose="Export clearance at Douala",
                requesting_role="officer",
            ),
        ),
        (
            "kyc.response",
            "A licensee hit with shared KYC fields and a subject hit.",
            KycResponse(
                query_id=_uuid(200),
                hits=[
                    KycHit(
                        kind="licensee",
                        score=962,
                        reference="lic:7f3a9c",
                        handling="GREEN",
                        licensee=SharedLicensee(
                            legal_name="Comptoir Étoile du Sud SARL",
                            licence_number="CD-BA-2019-044",
                            licence_type="buying_house",
                            status="revoked",
                            valid_from="2019-03-01",
                            valid_until="2025-02-28",
                        ),
                        explanation=[
                            MatchFeature(feature="name", score=962, detail="token set ratio")
                        ],
                    ),
                    KycHit(kind="subject", score=871, reference="sub:91be04", handling="AMBER"),
                ],
            ),
        ),
        (
            "disclosure.request",
            "Step 2: asking for the details behind a reference.",
            DisclosureRequest(
                request_id=_uuid(300),
                query_id=_uuid(200),
                reference="sub:91be04",
                justification=(
                    "Subject presents himself as exporter at Douala; need identity confirmation."
                ),
                requested_by_role="analyst",
            ),
        ),
        (
            "disclosure.response",
            "A granted disclosure releasing chosen fields.",
            DisclosureResponse(
                request_id=_uuid(300),
                reference="sub:91be04",
                decision="granted",
                handling="AMBER",
                details=DisclosedDetails(
                    names=["MBALA Jean-Pierre"],
                    reason_category="fake_kp_certificate",
                    risk_level="high",
                ),
            ),
        ),
        ("receipt", "A read receipt.", Receipt(message_id=_uuid(1), status="read", at=NOW)),
    ]


def _resign(identity: NodeIdentity, doc: dict[str, Any]) -> str:
    doc = {k: v for k, v in doc.items() if k != "signature"}
    doc["signature"] = b64encode(identity.sign(canonical_json(doc)))
    return canonical_json(doc).decode()


def build() -> dict[str, Any]:
    cm, cf, cd = _identity("CM"), _identity("CF-usaf"), _identity("CD")
    cards = {
        i.node_id: make_card(
            i,
            name=f"Node {i.node_id}",
            endpoints=[f"https://{i.node_id.lower()}.example.org"],
            now=CARD_TIME,
        )
        for i in (cm, cf, cd)
    }
    to_cf = Recipient("CF-usaf", cards["CF-usaf"].current_key("enc", NOW))
    cases: list[dict[str, Any]] = []

    def case(
        name: str,
        desc: str,
        sender: NodeIdentity,
        recipient: NodeIdentity,
        now: int,
        envelope: str,
        expected: dict[str, Any],
        *,
        sender_card: dict[str, Any] | None = None,
        recipient_retired: tuple[bytes, ...] = (),
    ) -> None:
        extra: dict[str, Any] = {}
        if sender_card is not None:
            extra["sender_card"] = sender_card
        if recipient_retired:
            extra["recipient_x25519_retired_secrets"] = [s.hex() for s in recipient_retired]
        cases.append(
            {
                "name": name,
                "description": desc,
                "sender_node_id": sender.node_id,
                "recipient_node_id": recipient.node_id,
                "sender_ed25519_seed": sender.signing_seed.hex(),
                "sender_x25519_secret": sender.encryption_secret.hex(),
                "recipient_ed25519_seed": recipient.signing_seed.hex(),
                "recipient_x25519_secret": recipient.encryption_secret.hex(),
                "now": now,
                "envelope": envelope,
                "expected": expected,
                **extra,
            }
        )

    for i, (msg_type, desc, payload) in enumerate(_payloads()):
        wire = seal(
            cm,
            to_cf,
            payload,
            now=NOW,
            message_id=_uuid(i + 1),
            nonce=hashlib.sha256(f"nonce {i}".encode()).digest()[:24],
        )
        doc = parse_json(wire)
        inner = Box(cf.encryption_key, cm.encryption_key.public_key).decrypt(
            b64decode(doc["ciphertext"]), b64decode(doc["nonce"])
        )
        case(
            f"valid-{msg_type}",
            desc,
            cm,
            cf,
            NOW,
            wire.decode(),
            {
                "type": msg_type,
                "payload": payload.model_dump(mode="json", exclude_none=True),
                "inner_document": inner.decode("utf-8"),
            },
        )

    base = parse_json(
        seal(cm, to_cf, _payloads()[-1][2], now=NOW, message_id=_uuid(50), nonce=bytes(24))
    )
    ct = bytearray(b64decode(base["ciphertext"]))
    ct[20] ^= 0x01
    tampered = dict(base, ciphertext=b64encode(bytes(ct)))
    case(
        "tampered-ciphertext",
        "One bit of the ciphertext flipped; the signature no longer verifies.",
        cm,
        cf,
        NOW,
        canonical_json(tampered).decode(),
        {"error": "bad_signature"},
    )
    case(
        "tampered-ciphertext-resigned",
        "Ciphertext flipped and the envelope re-signed by the sender: the box does not open.",
        cm,
        cf,
        NOW,
        _resign(cm, tampered),
        {"error": "decryption_failed"},
    )
    case(
        "wrong-recipient",
        "Sealed for CF-usaf, opened by CD.",
        cm,
        cd,
        NOW,
        canonical_json(base).decode(),
        {"error": "wrong_recipient"},
    )
    case(
        "expired",
        "Opened after expires_at plus the 300 s clock skew.",
        cm,
        cf,
        base["expires_at"] + 301,
        canonical_json(base).decode(),
        {"error": "expired"},
    )
    case(
        "unsupported-version",
        "Version 2, correctly signed.",
        cm,
        cf,
        NOW,
        _resign(cm, dict(base, version=2)),
        {"error": "unsupported_version"},
    )
    case(
        "header-mismatch",
        "Header type changed and re-signed; the encrypted copy says receipt.",
        cm,
        cf,
        NOW,
        _resign(cm, dict(base, type="alert")),
        {"error": "header_mismatch"},
    )
    _rotation_cases(case, cm, cf, cards)
    alert = next(p for t, _, p in _payloads() if t == "alert")
    for n, (label, text) in enumerate(
        (("nul", "Colis\x00saisi"), ("noncharacter", "Colis saisi \ufffe")), start=110
    ):
        hostile = Alert.model_construct(**{**dict(alert), "title": text})  # skips validation
        wire = seal(cm, to_cf, hostile, now=NOW, message_id=_uuid(n), nonce=bytes([n]) * 24)
        case(
            f"unstorable-text-{label}",
            f"An alert whose title holds {'U+0000' if label == 'nul' else 'U+FFFE'}, "
            "correctly signed and sealed: refused as schema_invalid (protocol.md §8).",
            cm,
            cf,
            NOW,
            wire.decode(),
            {"error": "schema_invalid"},
        )
    return {
        "description": "kpnet protocol version 1 test vectors; see docs/protocol.md.",
        "generator": "python -m protocol.testvectors",
        "cards": {k: v.to_json() for k, v in cards.items()},
        "cases": cases,
    }


def _rotation_cases(case: Any, cm: NodeIdentity, cf: NodeIdentity, cards: dict[str, Any]) -> None:
    """CM rotates its keys at ROTATED_AT (§10): which key each side uses, and when."""
    old = cm
    new = NodeIdentity("CM", _secret("CM ed25519 rotated"), _secret("CM x25519 rotated"))
    rotated = make_card(
        new,
        name="Node CM",
        endpoints=["https://cm.example.org"],
        now=ROTATED_AT,
        serial=2,
        extra_keys=[replace(k, valid_until=ROTATED_AT + GRACE) for k in cards["CM"].public_keys()],
    )
    # CM after the rotation: the new keys, the old encryption secret retained.
    retired = (old.encryption_secret,)
    cm_rotated = NodeIdentity("CM", new.signing_seed, new.encryption_secret, retired)
    to_cf = Recipient("CF-usaf", cards["CF-usaf"].current_key("enc", NOW))
    old_enc = cards["CM"].current_key("enc", NOW)
    new_enc = rotated.current_key("enc", NOW + 1)
    during, after = ROTATED_AT + 1000, ROTATED_AT + GRACE + 301
    n = iter(range(60, 100))

    def sealed(sender: NodeIdentity, to: Recipient, payload: Payload, now: int) -> str:
        i = next(n)
        return seal(
            sender,
            to,
            payload,
            now=now,
            message_id=_uuid(i),
            nonce=hashlib.sha256(f"nonce {i}".encode()).digest()[:24],
        ).decode()

    def opened(payload: Payload) -> dict[str, Any]:
        return {
            "type": _type_name(payload),
            "payload": payload.model_dump(mode="json", exclude_none=True),
        }

    update = CardUpdate(card=rotated)
    envelope = sealed(old, to_cf, update, ROTATED_AT)
    case(
        "rotation-card-update",
        "CM announces its new card: sealed and signed with the old keys, which CF knows.",
        old,
        cf,
        during,
        envelope,
        {**opened(update), "inner_document": _inner(envelope, cf, old)},
    )
    receipt = Receipt(message_id=_uuid(60), status="delivered", at=during)
    envelope = sealed(cf, Recipient("CM", new_enc), receipt, during)
    case(
        "rotation-receipt-sealed-to-new-key",
        "CF's receipt for the card.update is sealed to CM's new encryption key; CM opens it.",
        cf,
        cm_rotated,
        during,
        envelope,
        {**opened(receipt), "inner_document": _inner(envelope, cm_rotated, cf)},
        recipient_retired=retired,
    )
    late = _payloads()[0][2]
    envelope = sealed(cf, Recipient("CM", old_enc), late, ROTATED_AT)
    case(
        "rotation-sealed-to-old-key-during-retention",
        "Sealed by CF to CM's old encryption key before the card.update reached it: CM "
        "still holds the retired secret and opens it.",
        cf,
        cm_rotated,
        during,
        envelope,
        {**opened(late), "inner_document": _inner(envelope, cm_rotated, cf)},
        recipient_retired=retired,
    )
    case(
        "rotation-sealed-to-old-key-after-retention",
        "The same envelope, opened by CM once it has dropped the retired secret.",
        cf,
        new,
        during,
        envelope,
        {"error": "wrong_recipient"},
    )
    alert = _payloads()[0][2]
    envelope = sealed(old, to_cf, alert, during)
    case(
        "rotation-signed-with-old-key-during-grace",
        "CM signs with its old keys until CF has the new card; CF, holding the new card, "
        "still verifies the old keys it lists.",
        old,
        cf,
        during,
        envelope,
        {**opened(alert), "inner_document": _inner(envelope, cf, old)},
        sender_card=rotated.to_json(),
    )
    envelope = sealed(new, to_cf, alert, during)
    case(
        "rotation-signed-with-new-key",
        "Signed and sealed with CM's new keys, opened by CF holding the new card.",
        new,
        cf,
        during,
        envelope,
        {**opened(alert), "inner_document": _inner(envelope, cf, new)},
        sender_card=rotated.to_json(),
    )
    case(
        "rotation-signed-with-new-key-before-card-update",
        "The same envelope, opened by CF that still holds CM's old card: unknown key.",
        new,
        cf,
        during,
        envelope,
        {"error": "unknown_key"},
        sender_card=cards["CM"].to_json(),
    )
    case(
        "rotation-signed-with-old-key-after-grace",
        "Signed with CM's old keys at the end of the grace period and opened past it (and "
        "the clock-skew allowance): the old signing key has expired.",
        old,
        cf,
        after,
        sealed(old, to_cf, alert, ROTATED_AT + GRACE),
        {"error": "key_expired"},
        sender_card=rotated.to_json(),
    )


def _inner(envelope: str, recipient: NodeIdentity, sender: NodeIdentity) -> str:
    doc = parse_json(envelope.encode())
    secret = recipient.decryption_key(doc["recipient_enc_kid"])
    assert secret is not None
    box = Box(secret, sender.encryption_key.public_key)
    return box.decrypt(b64decode(doc["ciphertext"]), b64decode(doc["nonce"])).decode("utf-8")


def _type_name(payload: Payload) -> str:
    return next(name for name, model in MESSAGE_TYPES.items() if isinstance(payload, model))


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
