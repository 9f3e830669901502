"""Envelopes: seal / open round trips for every message type, tampering, and every error
code of ``open_envelope`` in the order it checks them.

The network: CM (sender) seals to CD (recipient); GN is a third node. All three cards are
in the directory. Time is fixed: ``net.now``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import string
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nacl.public import Box
from nacl.public import PublicKey as BoxPublicKey
from nacl.signing import VerifyKey

import protocol as p
from protocol import (
    MAX_LIFETIME,
    MESSAGE_TYPES,
    DecryptionFailed,
    NodeIdentity,
    ProtocolError,
    SenderInactive,
    WrongRecipient,
    b64decode,
    b64encode,
    canonical_json,
    open_envelope,
    parse_json,
    seal,
)

HEADER_MEMBERS = (
    "version",
    "id",
    "type",
    "sender",
    "recipient",
    "sender_sig_kid",
    "sender_enc_kid",
    "recipient_enc_kid",
    "created_at",
    "expires_at",
    "nonce",
    "ciphertext",
    "signature",
)
ALL_MEMBERS = (*HEADER_MEMBERS, "in_reply_to")
SKEW = p.DEFAULT_CLOCK_SKEW

# --------------------------------------------------------------------------------------
# Payload strategies, one per message type, respecting every field constraint.

PLACE_NAMES = [
    "Ngoundéré",
    "Mbuji-Mayi",
    "Garoua-Boulaï",
    "Bangui M'Poko",
    "Kisangani",
    "Tshikapa",
    "الماس الخام",
    "مطار الخرطوم",
    "Côte d’Ivoire",  # noqa: RUF001
    "Kinshasa 🇨🇩",
    "Σ",
    "ß",
    "x",
]
# Text a peer may send: no U+0000, surrogates or non-characters (Cn holds those).
_chars = st.characters(exclude_categories=["Cs", "Cn"], exclude_characters="\x00")


def text(min_size: int = 1, max_size: int = 200) -> st.SearchStrategy[str]:
    """Bounded text: realistic names (accents, Arabic, emoji), random Unicode, and the
    exact maximum length in both ASCII and multi-byte characters."""
    samples = [s for s in PLACE_NAMES if min_size <= len(s) <= max_size]
    return st.one_of(
        st.sampled_from(samples),
        st.text(_chars, min_size=min_size, max_size=min(max_size, 40)),
        st.sampled_from(["a" * max_size, "é" * max_size, "ب" * max_size, "a" * min_size]),
    )


uuids = st.uuids().map(str)
countries = st.tuples(*[st.sampled_from(string.ascii_uppercase)] * 2).map("".join)
partial_dates = st.dates(min_value=dt.date(1, 1, 1)).flatmap(
    lambda d: st.sampled_from([f"{d.year:04d}", f"{d.year:04d}-{d.month:02d}", d.isoformat()])
)
references = st.from_regex(r"\A[A-Za-z0-9_.:-]{1,64}\Z")
timestamps = st.integers(0, 2**53 - 1)
scores = st.integers(0, 1000)
handling = st.sampled_from(["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"])
short64 = text(1, 64)


def opt(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


def small_list(strategy: st.SearchStrategy[Any], min_size: int = 0) -> st.SearchStrategy[list[Any]]:
    return st.lists(strategy, min_size=min_size, max_size=3)


def model(
    cls: type[p.Payload], required: dict[str, Any], optional: dict[str, Any]
) -> st.SearchStrategy[Any]:
    """Instances of ``cls``; optional fields are sometimes omitted, sometimes given."""
    return st.fixed_dictionaries(required, optional=optional).map(lambda kw: cls(**kw))


identity_documents = model(
    p.IdentityDocument,
    {"type": text(1, 40), "number": short64},
    {"country": opt(countries)},
)
parties = model(
    p.Party,
    {"kind": st.sampled_from(["person", "organisation"]), "names": small_list(text(), 1)},
    {
        "aliases": small_list(text()),
        "date_of_birth": opt(partial_dates),
        "nationality": opt(countries),
        "documents": small_list(identity_documents),
        "licence_numbers": small_list(short64),
        "role": opt(text()),
    },
)
places = model(
    p.Place,
    {"country": countries},
    {
        "locality": opt(text()),
        "lat_e6": opt(st.integers(-90_000_000, 90_000_000)),
        "lon_e6": opt(st.integers(-180_000_000, 180_000_000)),
    },
)


def _alert_fields() -> tuple[dict[str, Any], dict[str, Any]]:
    required = {
        "alert_id": uuids,
        "category": st.sampled_from(
            [
                "seizure",
                "smuggling_route",
                "suspect_movement",
                "fake_kp_certificate",
                "cash_movement",
                "licence_suspended_revoked",
                "embargo_breach",
                "other",
            ]
        ),
        "severity": st.sampled_from(["info", "warning", "urgent"]),
        "title": text(),
        "body": text(1, 8000),
        "handling": handling,
        "issued_at": timestamps,
    }
    optional = {
        "subjects": small_list(parties),
        "place": opt(places),
        "expires_at": opt(timestamps),
        "references": small_list(text()),
    }
    return required, optional


_alert_required, _alert_optional = _alert_fields()
alerts = model(p.Alert, _alert_required, {**_alert_optional, "revision": st.integers(1, 10_000)})
alert_updates = model(
    p.AlertUpdate, {**_alert_required, "revision": st.integers(2, 10_000)}, _alert_optional
)
alert_retracts = model(p.AlertRetract, {"alert_id": uuids, "reason": text(1, 1000)}, {})
kyc_queries = model(
    p.KycQuery,
    {
        "query_id": uuids,
        "subject": parties,
        "purpose": text(1, 500),
        "requesting_role": text(1, 40),
    },
    {"max_results": st.integers(1, 50)},
)
match_features = model(
    p.MatchFeature,
    {"feature": text(1, 40), "score": scores},
    {"detail": opt(st.one_of(st.just(""), text(1, 200)))},
)
shared_licensees = model(
    p.SharedLicensee,
    {},
    {
        "legal_name": opt(text()),
        "licence_number": opt(short64),
        "licence_type": opt(
            st.sampled_from(["buying_house", "collector", "exporter", "cooperative", "other"])
        ),
        "status": opt(st.sampled_from(["active", "suspended", "revoked", "expired"])),
        "valid_from": opt(partial_dates),
        "valid_until": opt(partial_dates),
    },
)
kyc_hits = model(
    p.KycHit,
    {
        "kind": st.sampled_from(["licensee", "subject"]),
        "score": scores,
        "reference": references,
        "handling": handling,
    },
    {"licensee": opt(shared_licensees), "explanation": small_list(match_features)},
)
kyc_responses = model(p.KycResponse, {"query_id": uuids}, {"hits": small_list(kyc_hits)})
disclosure_requests = model(
    p.DisclosureRequest,
    {
        "request_id": uuids,
        "reference": references,
        "justification": text(1, 2000),
        "requested_by_role": text(1, 40),
    },
    {"query_id": opt(uuids)},
)
disclosed_details = model(
    p.DisclosedDetails,
    {},
    {
        "kind": opt(st.sampled_from(["person", "organisation"])),
        "names": small_list(text()),
        "aliases": small_list(text()),
        "date_of_birth": opt(partial_dates),
        "nationality": opt(countries),
        "documents": small_list(identity_documents),
        "reason_category": opt(
            st.sampled_from(
                [
                    "smuggling",
                    "fraud",
                    "fake_kp_certificate",
                    "money_laundering",
                    "embargo_breach",
                    "other",
                ]
            )
        ),
        "risk_level": opt(st.sampled_from(["low", "medium", "high"])),
        "narrative": opt(text(1, 8000)),
        "source_agency": opt(text()),
        "linked_licences": small_list(short64),
    },
)
# A grant carries details and no reason; a denial a reason and no details.
disclosure_responses = st.one_of(
    model(
        p.DisclosureResponse,
        {
            "request_id": uuids,
            "reference": references,
            "decision": st.just("granted"),
            "details": disclosed_details,
        },
        {"handling": opt(handling)},
    ),
    model(
        p.DisclosureResponse,
        {
            "request_id": uuids,
            "reference": references,
            "decision": st.just("denied"),
            "reason": text(1, 1000),
        },
        {"handling": opt(handling)},
    ),
)
receipts = model(
    p.Receipt,
    {
        "message_id": uuids,
        "status": st.sampled_from(["delivered", "read", "acted", "rejected"]),
        "at": timestamps,
    },
    {"error_code": opt(st.from_regex(r"\A[a-z_]{1,40}\Z"))},
)


def rotated_identity(identity: NodeIdentity, label: str, *, new_signing_key: bool) -> NodeIdentity:
    """``identity`` after a key rotation: a new encryption key (the old one retired) and,
    optionally, a new signing key."""
    import hashlib

    seed = (
        hashlib.sha256(f"{label} sig".encode()).digest()
        if new_signing_key
        else identity.signing_seed
    )
    return NodeIdentity(
        identity.node_id,
        seed,
        hashlib.sha256(f"{label} enc".encode()).digest(),
        retired_encryption_secrets=(identity.encryption_secret,),
    )


def card_updates(net: Any) -> st.SearchStrategy[p.CardUpdate]:
    """The sender's own new card: same keys re-issued, or rotated keys with the previous
    encryption key still listed for a grace period."""

    @st.composite
    def build(draw: st.DrawFn) -> p.CardUpdate:
        identity = net.sender
        extra: list[p.PublicKey] = []
        if draw(st.booleans()):
            identity = rotated_identity(
                net.sender,
                draw(st.text(string.ascii_letters, min_size=1)),
                new_signing_key=draw(st.booleans()),
            )
            old_enc = net.sender_card.key(net.sender.encryption_kid)
            extra.append(old_enc)
        card = p.make_card(
            identity,
            name=draw(text()),
            endpoints=draw(
                st.lists(
                    st.sampled_from(
                        [
                            "https://cm.example.org",
                            "http://10.0.0.1:8443",
                            "https://kpnet.mines.gov.cm/inbox",
                        ]
                    ),
                    min_size=1,
                    max_size=3,
                    unique=True,
                )
            ),
            now=draw(st.integers(net.now - 10 * 86400, net.now)),
            serial=draw(st.integers(2, 1000)),
            extra_keys=extra,
        )
        return p.CardUpdate(card=card)

    return build()


STRATEGIES: dict[str, Callable[[Any], st.SearchStrategy[Any]]] = {
    "alert": lambda net: alerts,
    "alert.update": lambda net: alert_updates,
    "alert.retract": lambda net: alert_retracts,
    "kyc.query": lambda net: kyc_queries,
    "kyc.response": lambda net: kyc_responses,
    "disclosure.request": lambda net: disclosure_requests,
    "disclosure.response": lambda net: disclosure_responses,
    "receipt": lambda net: receipts,
    "card.update": card_updates,
}


def test_every_message_type_has_a_strategy() -> None:
    assert set(STRATEGIES) == set(MESSAGE_TYPES)


# --------------------------------------------------------------------------------------
# Helpers


def a_receipt(n: int = 0) -> p.Receipt:
    return p.Receipt(
        message_id=f"00000000-0000-4000-8000-{n:012d}", status="read", at=1_790_000_000
    )


def sealed(net: Any, payload: p.Payload | None = None, **kwargs: Any) -> bytes:
    kwargs.setdefault("now", net.now)
    return seal(net.sender, net.to_recipient, payload or a_receipt(), **kwargs)


def sealed_doc(net: Any, payload: p.Payload | None = None, **kwargs: Any) -> dict[str, Any]:
    return parse_json(sealed(net, payload, **kwargs))


def resign(identity: NodeIdentity, doc: dict[str, Any]) -> bytes:
    """Re-sign an envelope document with ``identity`` (so only the intended fault remains)."""
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    return canonical_json(
        {**unsigned, "signature": b64encode(identity.sign(canonical_json(unsigned)))}
    )


def hand_envelope(
    net: Any,
    *,
    plaintext: bytes,
    header: dict[str, Any] | None = None,
    nonce: bytes | None = None,
    sender: NodeIdentity | None = None,
    box_to: bytes | None = None,
) -> bytes:
    """Build an envelope by hand: encrypt ``plaintext`` with crypto_box from the sender's
    X25519 key to ``box_to`` (default: the recipient's), then sign the header."""
    sender = sender or net.sender
    nonce = os.urandom(24) if nonce is None else nonce
    box_to = box_to or net.recipient.encryption_public_key
    ciphertext = (
        Box(sender.encryption_key, BoxPublicKey(box_to)).encrypt(plaintext, nonce).ciphertext
    )
    doc = {
        "version": 1,
        "id": "8f5e0c1a-3b9d-4e2f-a6c7-0d1e2f3a4b5c",
        "type": "receipt",
        "sender": sender.node_id,
        "recipient": "CD",
        "sender_sig_kid": sender.signing_kid,
        "sender_enc_kid": sender.encryption_kid,
        "recipient_enc_kid": net.recipient.encryption_kid,
        "created_at": net.now,
        "expires_at": net.now + 3600,
        "nonce": b64encode(nonce),
        "ciphertext": b64encode(ciphertext),
        **(header or {}),
    }
    return resign(sender, doc)


def inner_doc(payload: Any, **overrides: Any) -> dict[str, Any]:
    doc = {
        "id": "8f5e0c1a-3b9d-4e2f-a6c7-0d1e2f3a4b5c",
        "type": "receipt",
        "sender": "CM",
        "recipient": "CD",
        "payload": payload,
    }
    doc.update(overrides)
    return doc


RECEIPT_JSON = {"message_id": "00000000-0000-4000-8000-000000000001", "status": "read", "at": 5}


def open_as(
    net: Any,
    raw: bytes,
    *,
    identity: NodeIdentity | None = None,
    now: int | None = None,
    directory: Any = None,
    **kwargs: Any,
) -> p.OpenedMessage:
    return open_envelope(
        raw,
        identity=identity or net.recipient,
        directory=directory or net.directory,
        now=net.now if now is None else now,
        **kwargs,
    )


def error_code(fn: Callable[[], Any]) -> str:
    with pytest.raises(ProtocolError) as excinfo:
        fn()
    return excinfo.value.code


# --------------------------------------------------------------------------------------
# Round trips


@pytest.mark.parametrize("msg_type", sorted(MESSAGE_TYPES))
@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_round_trip_every_message_type(net: Any, msg_type: str, data: st.DataObject) -> None:
    payload = data.draw(STRATEGIES[msg_type](net), label="payload")
    in_reply_to = data.draw(opt(uuids), label="in_reply_to")
    ttl = data.draw(st.one_of(st.integers(1, MAX_LIFETIME), st.just(MAX_LIFETIME)), label="ttl")
    # Anywhere in the accepted window, so that even a 1 s ttl has not expired at net.now.
    created = data.draw(st.integers(net.now - SKEW, net.now + SKEW), label="created_at")

    wire = seal(
        net.sender, net.to_recipient, payload, now=created, ttl=ttl, in_reply_to=in_reply_to
    )
    opened = open_as(net, wire)

    assert type(opened.payload) is MESSAGE_TYPES[msg_type]
    assert opened.payload == payload
    assert opened.payload.model_dump() == payload.model_dump()
    header = opened.header
    assert (header.version, header.type, header.sender, header.recipient) == (
        1,
        msg_type,
        "CM",
        "CD",
    )
    assert (opened.type, opened.sender, opened.id) == (msg_type, "CM", header.id)
    assert header.sender_sig_kid == net.sender.signing_kid
    assert header.sender_enc_kid == net.sender.encryption_kid
    assert header.recipient_enc_kid == net.recipient.encryption_kid
    assert (header.created_at, header.expires_at) == (created, created + ttl)
    assert header.in_reply_to == in_reply_to
    assert opened.size == len(wire)
    assert p.peek_header(wire) == header
    # The wire form is canonical JSON and carries nothing of the payload in clear.
    doc = parse_json(wire)
    assert canonical_json(doc) == wire
    assert set(doc) == set(HEADER_MEMBERS) | ({"in_reply_to"} if in_reply_to else set())
    # Interoperability, checked without open_envelope: the Ed25519 signature covers the
    # canonical JSON of every other member, and the box holds id, type, sender, recipient
    # and the payload in its JSON form (optional members left out when unset).
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    VerifyKey(net.sender.signing_public_key).verify(
        canonical_json(unsigned), b64decode(doc["signature"])
    )
    box = Box(net.recipient.encryption_key, BoxPublicKey(net.sender.encryption_public_key))
    inner = parse_json(box.decrypt(b64decode(doc["ciphertext"]), b64decode(doc["nonce"])))
    assert inner == {
        "id": header.id,
        "type": msg_type,
        "sender": "CM",
        "recipient": "CD",
        "payload": payload.model_dump(mode="json", exclude_none=True),
    }


def test_round_trip_fixed_alert_with_non_ascii(net: Any) -> None:
    alert = p.Alert(
        alert_id="5b0c4a44-2c0e-4f7e-9a51-6f1d7c2b9e10",
        category="smuggling_route",
        severity="warning",
        title="Itinéraire Ngoundéré → Mbuji-Mayi",
        body="Convoi signalé près de Ngoundéré; destination présumée Mbuji-Mayi. الماس الخام",
        subjects=[p.Party(kind="organisation", names=["Comptoir Étoile du Sud SARL"])],
        place=p.Place(country="CM", locality="Ngoundéré", lat_e6=7_320_000, lon_e6=13_580_000),
        handling="AMBER+STRICT",
        issued_at=1_789_990_000,
    )
    wire = sealed(net, alert)
    assert "Ngoundéré".encode() not in wire  # encrypted
    assert open_as(net, wire).payload == alert


def test_message_ids_are_fresh_lowercase_uuids(net: Any) -> None:
    ids = {p.peek_header(sealed(net)).id for _ in range(20)}
    assert len(ids) == 20
    for mid in ids:
        assert mid == mid.lower() and len(mid) == 36


def test_replay_opens_twice_with_same_id_and_expiry(net: Any) -> None:
    # The library does not de-duplicate (that needs storage; it is the node's job).
    wire = sealed(net)
    first = open_as(net, wire)
    second = open_as(net, wire)
    assert first.id == second.id
    assert first.header.expires_at == second.header.expires_at
    assert first.payload == second.payload


def test_retired_encryption_key_still_opens(net: Any) -> None:
    wire = sealed(net)
    rotated = rotated_identity(net.recipient, "CD rotation", new_signing_key=False)
    assert rotated.encryption_kid != net.recipient.encryption_kid
    assert open_as(net, wire, identity=rotated).payload == a_receipt()


# --------------------------------------------------------------------------------------
# Wrong recipient


def test_sealed_for_b_cannot_be_opened_by_c(net: Any) -> None:
    wire = sealed(net)
    with pytest.raises(WrongRecipient):
        open_as(net, wire, identity=net.other)


def test_same_node_id_different_keys_cannot_open(net: Any) -> None:
    impostor = NodeIdentity("CD", bytes(range(32)), bytes(range(1, 33)))
    with pytest.raises((WrongRecipient, DecryptionFailed)):
        open_as(net, sealed(net), identity=impostor)


def test_recipient_enc_kid_forged_to_impostor_key_fails_decryption(net: Any) -> None:
    # Even if the sender names the impostor's key id, the box was made for CD's key.
    impostor = NodeIdentity("CD", bytes(range(32)), bytes(range(1, 33)))
    doc = sealed_doc(net)
    doc["recipient_enc_kid"] = impostor.encryption_kid
    with pytest.raises(DecryptionFailed):
        open_as(net, resign(net.sender, doc), identity=impostor)


# --------------------------------------------------------------------------------------
# Tampering


def _flip_decoded_bit(draw: st.DrawFn, value: str) -> str:
    raw = bytearray(b64decode(value))
    index = draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << draw(st.integers(0, 7))
    return b64encode(bytes(raw))


_B64_ALPHABET = string.ascii_letters + string.digits + "-_"
_HEX = "0123456789abcdef"


def _char_class(member: str, ch: str) -> str | None:
    if member in ("id", "in_reply_to", "sender_sig_kid", "sender_enc_kid", "recipient_enc_kid"):
        return _HEX if ch in _HEX else None
    if member in ("nonce", "ciphertext", "signature"):
        return _B64_ALPHABET
    for cls in (string.ascii_uppercase, string.ascii_lowercase, string.digits):
        if ch in cls:
            return cls
    return None


@st.composite
def tampered_members(draw: st.DrawFn, doc: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    member = draw(st.sampled_from(sorted(doc)))
    value = doc[member]
    if isinstance(value, int):
        new: Any = value + draw(st.integers(-(10**9), 10**9).filter(bool))
    elif member in ("nonce", "ciphertext", "signature") and draw(st.booleans()):
        new = _flip_decoded_bit(draw, value)
    else:
        positions = [i for i, ch in enumerate(value) if _char_class(member, ch)]
        i = draw(st.sampled_from(positions))
        cls = _char_class(member, value[i])
        assert cls is not None
        new = value[:i] + draw(st.sampled_from([c for c in cls if c != value[i]])) + value[i + 1 :]
    assert new != value
    return member, {**doc, member: new}


@settings(max_examples=500, deadline=None)
@given(data=st.data())
def test_tampering_any_header_member_is_detected(net: Any, data: st.DataObject) -> None:
    doc = sealed_doc(net, in_reply_to="0b7d1b7e-51b8-4a4c-9f0e-2a7d5c3e1f00")
    assert set(doc) == set(ALL_MEMBERS)
    member, tampered = data.draw(tampered_members(doc))
    with pytest.raises(ProtocolError):
        open_as(net, canonical_json(tampered))
        pytest.fail(f"tampered {member} was accepted")


@settings(max_examples=1000, deadline=None)
@given(data=st.data())
def test_changing_any_single_wire_byte_is_detected(net: Any, data: st.DataObject) -> None:
    wire = sealed(net, in_reply_to="0b7d1b7e-51b8-4a4c-9f0e-2a7d5c3e1f00", message_id=None)
    index = data.draw(st.integers(0, len(wire) - 1), label="index")
    mask = data.draw(
        st.one_of(st.sampled_from([1, 2, 4, 8, 16, 32, 64, 128]), st.integers(1, 255)), label="mask"
    )
    corrupted = bytearray(wire)
    corrupted[index] ^= mask
    # pytest.raises lets any non-ProtocolError (KeyError, UnicodeDecodeError...) through,
    # failing the test; returning normally fails it too.
    with pytest.raises(ProtocolError):
        open_as(net, bytes(corrupted))


json_junk = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_arbitrary_member_values_never_raise_anything_but_protocol_errors(
    net: Any, data: st.DataObject
) -> None:
    # Start from a genuine envelope and replace some members by arbitrary JSON values
    # (any integer, including huge ones; strings; null; arrays; objects), drop some, add
    # some. Opening may succeed only if nothing changed; otherwise it must raise a
    # ProtocolError -- never KeyError, TypeError, ValueError, OverflowError...
    doc = sealed_doc(net, in_reply_to="0b7d1b7e-51b8-4a4c-9f0e-2a7d5c3e1f00")
    changed = dict(doc)
    for member in data.draw(
        st.lists(st.sampled_from(sorted(doc)), max_size=3, unique=True), label="replace"
    ):
        changed[member] = data.draw(
            st.one_of(json_junk, st.integers(), st.integers(-(2**70), 2**70))
        )
    for member in data.draw(st.lists(st.sampled_from(sorted(doc)), max_size=1), label="drop"):
        changed.pop(member, None)
    if data.draw(st.booleans(), label="add"):
        changed[data.draw(st.text(max_size=12))] = data.draw(json_junk)
    try:
        raw = canonical_json(changed)
    except (TypeError, ValueError):
        # Lone surrogates or huge integers: write them out as plain JSON instead.
        raw = json.dumps(changed, separators=(",", ":")).encode()
    if changed == doc:
        assert open_as(net, raw).id == doc["id"]
        return
    with pytest.raises(ProtocolError):
        open_as(net, raw)
    with contextlib.suppress(ProtocolError):
        p.peek_header(raw)


def test_tampering_every_header_member_gives_the_expected_code(net: Any) -> None:
    doc = sealed_doc(net, in_reply_to="0b7d1b7e-51b8-4a4c-9f0e-2a7d5c3e1f00")
    flip = lambda s: s[:-1] + ("a" if s[-1] != "a" else "b")  # noqa: E731

    def flip_b64(s: str) -> str:
        raw = bytearray(b64decode(s))
        raw[0] ^= 1
        return b64encode(bytes(raw))

    changes: dict[str, tuple[Any, str]] = {
        "version": (2, "unsupported_version"),
        "id": (flip(doc["id"]), "bad_signature"),
        "in_reply_to": (flip(doc["in_reply_to"]), "bad_signature"),
        "type": ("alert", "bad_signature"),
        "sender": ("CF", "unknown_sender"),
        "recipient": ("GN", "bad_signature"),
        "sender_sig_kid": (net.other.signing_kid, "unknown_key"),
        "sender_enc_kid": (net.other.encryption_kid, "bad_signature"),
        "recipient_enc_kid": (net.other.encryption_kid, "bad_signature"),
        "created_at": (doc["created_at"] - 1, "bad_signature"),
        "expires_at": (doc["expires_at"] - 1, "bad_signature"),
        "nonce": (flip_b64(doc["nonce"]), "bad_signature"),
        "ciphertext": (flip_b64(doc["ciphertext"]), "bad_signature"),
        "signature": (flip_b64(doc["signature"]), "bad_signature"),
    }
    assert set(changes) == set(ALL_MEMBERS)
    for member, (value, code) in changes.items():
        raw = canonical_json({**doc, member: value})
        assert error_code(lambda raw=raw: open_as(net, raw)) == code, member
    # Adding or removing the optional in_reply_to is also caught by the signature.
    without = {k: v for k, v in doc.items() if k != "in_reply_to"}
    assert error_code(lambda: open_as(net, canonical_json(without))) == "bad_signature"
    plain = sealed_doc(net)
    added = canonical_json({**plain, "in_reply_to": "0b7d1b7e-51b8-4a4c-9f0e-2a7d5c3e1f00"})
    assert error_code(lambda: open_as(net, added)) == "bad_signature"


def test_signature_from_another_known_node_is_refused(net: Any) -> None:
    # GN signs an envelope claiming to come from CM with GN's own key id: unknown key for CM.
    doc = sealed_doc(net)
    doc["sender_sig_kid"] = net.other.signing_kid
    assert error_code(lambda: open_as(net, resign(net.other, doc))) == "unknown_key"
    # GN signs but keeps CM's key id: the signature does not verify under CM's key.
    doc = sealed_doc(net)
    assert error_code(lambda: open_as(net, resign(net.other, doc))) == "bad_signature"


def test_whitespace_and_member_order_do_not_matter_on_the_wire(net: Any) -> None:
    # The signature is over the canonical form of the parsed document.
    doc = sealed_doc(net)
    pretty = json.dumps(dict(reversed(list(doc.items()))), indent=1).encode()
    assert open_as(net, pretty).payload == a_receipt()


# --------------------------------------------------------------------------------------
# Every error code, in the order the checks run. Where convenient a later fault is added
# too, to show the earlier check wins.


def test_too_large_is_checked_before_parsing(net: Any) -> None:
    wire = sealed(net)
    assert open_as(net, wire, max_bytes=len(wire)).id  # exactly at the limit: accepted
    assert error_code(lambda: open_as(net, wire, max_bytes=len(wire) - 1)) == "too_large"
    assert error_code(lambda: open_as(net, b"\xff" * 1000, max_bytes=999)) == "too_large"
    assert error_code(lambda: open_as(net, b"x" * (p.DEFAULT_MAX_BYTES + 1))) == "too_large"
    assert error_code(lambda: p.peek_header(b"not json" * 10, max_bytes=10)) == "too_large"


@pytest.mark.parametrize(
    "case",
    [
        "not-json",
        "invalid-utf8",
        "array",
        "string",
        "missing-member",
        "extra-member",
        "wrong-type-int",
        "wrong-type-str",
        "bool-version",
        "float-created",
        "float-version",
        "duplicate-member",
        "uppercase-id",
        "bad-in-reply-to",
        "unknown-type",
        "bad-sender",
        "bad-recipient",
        "uppercase-kid",
        "expires-before-created",
        "lifetime-too-long",
        "negative-created",
        "null-member",
        "sender-trailing-newline",
        "id-trailing-newline",
    ],
)
def test_malformed(net: Any, case: str) -> None:
    doc = sealed_doc(net)
    doc_with = lambda **kw: canonical_json({**doc, **kw})  # noqa: E731
    wire = sealed(net)
    raw = {
        "not-json": b"hello, world",
        "invalid-utf8": wire.replace(b'"CM"', b'"C\xff"'),
        "array": b"[1,2,3]",
        "string": b'"envelope"',
        "missing-member": canonical_json({k: v for k, v in doc.items() if k != "nonce"}),
        "extra-member": doc_with(note="hi"),
        "wrong-type-int": doc_with(created_at=str(doc["created_at"])),
        "wrong-type-str": doc_with(sender=1),
        "bool-version": doc_with(version=True),
        "float-created": wire.replace(
            b'"created_at":%d' % doc["created_at"], b'"created_at":%d.0' % doc["created_at"]
        ),
        "float-version": wire.replace(b'"version":1', b'"version":1.0'),
        "duplicate-member": wire[:-1] + b',"version":1}',
        "uppercase-id": doc_with(id=doc["id"].upper()),
        "bad-in-reply-to": doc_with(in_reply_to="not-a-uuid"),
        "unknown-type": doc_with(type="alert.delete"),
        "bad-sender": doc_with(sender="cm"),
        "bad-recipient": doc_with(recipient="CD-"),
        "uppercase-kid": doc_with(sender_sig_kid=doc["sender_sig_kid"].upper()),
        "expires-before-created": doc_with(expires_at=doc["created_at"]),
        "lifetime-too-long": doc_with(expires_at=doc["created_at"] + MAX_LIFETIME + 1),
        "negative-created": doc_with(created_at=-1),
        "null-member": doc_with(in_reply_to=None),
        "sender-trailing-newline": doc_with(sender="CM\n"),
        "id-trailing-newline": doc_with(id=doc["id"] + "\n"),
    }[case]
    assert raw != wire
    # The sender is made unknown as well wherever the document still parses: malformed wins.
    empty = p.StaticDirectory({})
    assert error_code(lambda: open_as(net, raw, directory=empty)) == "malformed"
    assert error_code(lambda: p.peek_header(raw)) == "malformed"


def test_unsupported_version_correctly_signed(net: Any) -> None:
    doc = sealed_doc(net)
    for version in (0, 2, 3, 999):
        raw = resign(net.sender, {**doc, "version": version})
        assert error_code(lambda raw=raw: open_as(net, raw)) == "unsupported_version"
        # ...before the sender is looked up
        empty = p.StaticDirectory({})
        assert (
            error_code(lambda raw=raw, d=empty: open_as(net, raw, directory=d))
            == "unsupported_version"
        )


def test_unknown_sender(net: Any) -> None:
    wire = sealed(net)
    directory = p.StaticDirectory({"CD": net.recipient_card.public_keys()})
    assert error_code(lambda: open_as(net, wire, directory=directory)) == "unknown_sender"
    # before the signature is checked
    doc = sealed_doc(net)
    bad_sig = canonical_json({**doc, "created_at": doc["created_at"] - 1})
    assert error_code(lambda: open_as(net, bad_sig, directory=directory)) == "unknown_sender"


def test_sender_inactive_raised_by_directory_propagates(net: Any) -> None:
    class Suspending:
        def keys_for(self, node_id: str) -> Any:
            if node_id == "CM":
                raise SenderInactive("CM is suspended")
            return net.directory.keys_for(node_id)

    with pytest.raises(SenderInactive) as excinfo:
        open_as(net, sealed(net), directory=Suspending())
    assert excinfo.value.code == "sender_inactive"


def test_unknown_key(net: Any) -> None:
    wire = sealed(net)
    keys = net.sender_card.public_keys()
    only_enc = p.StaticDirectory({"CM": [k for k in keys if k.use == "enc"]})
    assert error_code(lambda: open_as(net, wire, directory=only_enc)) == "unknown_key"
    # The signing kid listed, but as an encryption key: still unknown as a signing key.
    sig = next(k for k in keys if k.use == "sig")
    as_enc = p.PublicKey(sig.kid, "enc", sig.key, sig.valid_from, sig.valid_until)
    mislabelled = p.StaticDirectory({"CM": [as_enc, *[k for k in keys if k.use == "enc"]]})
    assert error_code(lambda: open_as(net, wire, directory=mislabelled)) == "unknown_key"
    # Signing key known but the encryption key named in the header is not.
    only_sig = p.StaticDirectory({"CM": [sig]})
    assert error_code(lambda: open_as(net, wire, directory=only_sig)) == "unknown_key"


def _sender_keys_valid(
    net: Any, sig_window: tuple[int, int], enc_window: tuple[int, int]
) -> p.StaticDirectory:
    s = net.sender
    return p.StaticDirectory(
        {
            "CM": [
                p.PublicKey(s.signing_kid, "sig", s.signing_public_key, *sig_window),
                p.PublicKey(s.encryption_kid, "enc", s.encryption_public_key, *enc_window),
            ]
        }
    )


def test_key_expired(net: Any) -> None:
    wire = sealed(net)
    now = net.now
    good = (now - 10, now + 10)
    # Key validity allows the same clock skew as message times (300 s by default).
    for window in ((now - 1000, now - 301), (now + 301, now + 1000)):
        directory = _sender_keys_valid(net, window, good)
        assert error_code(lambda d=directory: open_as(net, wire, directory=d)) == "key_expired"
        directory = _sender_keys_valid(net, good, window)
        assert error_code(lambda d=directory: open_as(net, wire, directory=d)) == "key_expired"
    # Validity bounds are inclusive, and widened by the clock skew.
    assert open_as(net, wire, directory=_sender_keys_valid(net, (now, now + 1), (now - 1, now))).id
    assert open_as(net, wire, directory=_sender_keys_valid(net, (now + 300, now + 400), good)).id
    assert open_as(net, wire, directory=_sender_keys_valid(net, (now - 400, now - 300), good)).id
    # An expired signing key is reported before a bad signature.
    doc = sealed_doc(net)
    bad_sig = canonical_json({**doc, "created_at": doc["created_at"] - 1})
    directory = _sender_keys_valid(net, (now - 1000, now - 301), good)
    assert error_code(lambda: open_as(net, bad_sig, directory=directory)) == "key_expired"


def test_bad_signature(net: Any) -> None:
    doc = sealed_doc(net)
    flipped = bytearray(b64decode(doc["signature"]))
    flipped[10] ^= 0x40
    for signature in (
        b64encode(bytes(64)),
        b64encode(bytes(flipped)),
        b64encode(net.sender.sign(b"something else")),
        b64encode(
            net.other.sign(canonical_json({k: v for k, v in doc.items() if k != "signature"}))
        ),
    ):
        raw = canonical_json({**doc, "signature": signature})
        assert error_code(lambda raw=raw: open_as(net, raw)) == "bad_signature", signature
    # Bad signature is reported before the wrong recipient.
    raw = canonical_json({**doc, "signature": b64encode(bytes(64))})
    assert error_code(lambda: open_as(net, raw, identity=net.other)) == "bad_signature"


@pytest.mark.parametrize(
    "signature",
    ["", "A" * 86 + "A", "A" * 85 + "B", "not base64!", "A" * 84, b64encode(bytes(65))],
    ids=["empty", "too-long", "non-canonical-bits", "not-base64", "too-short", "65-bytes"],
)
def test_signature_that_is_not_64_bytes_of_base64url_is_refused(net: Any, signature: str) -> None:
    # Whether this counts as a malformed envelope or a bad signature is a design choice;
    # either way it is refused with a protocol error.
    raw = canonical_json({**sealed_doc(net), "signature": signature})
    assert error_code(lambda: open_as(net, raw)) in {"malformed", "bad_signature"}


def test_wrong_recipient_before_time_checks(net: Any) -> None:
    wire = sealed(net, ttl=3600)
    late = net.now + 3600 + SKEW + 1
    assert error_code(lambda: open_as(net, wire, identity=net.other)) == "wrong_recipient"
    assert error_code(lambda: open_as(net, wire, identity=net.other, now=late)) == "wrong_recipient"
    # Right node id, but the header names a key id we do not hold.
    doc = sealed_doc(net)
    raw = resign(net.sender, {**doc, "recipient_enc_kid": net.other.encryption_kid})
    assert error_code(lambda: open_as(net, raw)) == "wrong_recipient"


def test_expired_and_boundary(net: Any) -> None:
    wire = sealed(net, ttl=3600)
    expires = net.now + 3600
    assert open_as(net, wire, now=expires).id
    assert open_as(net, wire, now=expires + SKEW).id  # exactly at the boundary: accepted
    assert error_code(lambda: open_as(net, wire, now=expires + SKEW + 1)) == "expired"
    assert error_code(lambda: open_as(net, wire, now=expires + 10, clock_skew=9)) == "expired"
    assert open_as(net, wire, now=expires + 10, clock_skew=10).id
    # Expired is reported before a decryption failure.
    doc = sealed_doc(net, ttl=3600)
    garbage = resign(net.sender, {**doc, "ciphertext": b64encode(os.urandom(64))})
    assert error_code(lambda: open_as(net, garbage, now=expires + SKEW + 1)) == "expired"
    assert error_code(lambda: open_as(net, garbage)) == "decryption_failed"


def test_not_yet_valid_and_boundary(net: Any) -> None:
    created = net.now + 1000
    wire = sealed(net, now=created)
    assert open_as(net, wire, now=created - SKEW).id  # exactly at the boundary: accepted
    assert error_code(lambda: open_as(net, wire, now=created - SKEW - 1)) == "not_yet_valid"
    assert error_code(lambda: open_as(net, wire, now=created - 5, clock_skew=4)) == "not_yet_valid"
    # Not-yet-valid is reported before a decryption failure.
    doc = parse_json(wire)
    garbage = resign(net.sender, {**doc, "ciphertext": b64encode(os.urandom(64))})
    assert error_code(lambda: open_as(net, garbage, now=created - SKEW - 1)) == "not_yet_valid"


@pytest.mark.parametrize(
    "case",
    [
        "random-ciphertext",
        "empty-ciphertext",
        "short-ciphertext",
        "other-recipient-key",
        "other-sender-key",
        "wrong-nonce",
        "truncated-ciphertext",
    ],
)
def test_decryption_failed(net: Any, case: str) -> None:
    # Correctly signed envelopes whose box does not open.
    plaintext = canonical_json(inner_doc(RECEIPT_JSON))
    nonce = os.urandom(24)
    good = (
        Box(net.sender.encryption_key, BoxPublicKey(net.recipient.encryption_public_key))
        .encrypt(plaintext, nonce)
        .ciphertext
    )
    if case == "other-recipient-key":
        raw = hand_envelope(net, plaintext=plaintext, box_to=net.other.encryption_public_key)
    elif case == "other-sender-key":
        # Boxed with GN's X25519 secret, but the header names CM's encryption key.
        ct = (
            Box(net.other.encryption_key, BoxPublicKey(net.recipient.encryption_public_key))
            .encrypt(plaintext, nonce)
            .ciphertext
        )
        raw = hand_envelope(
            net, plaintext=b"", header={"nonce": b64encode(nonce), "ciphertext": b64encode(ct)}
        )
    else:
        header = {
            "random-ciphertext": {"ciphertext": b64encode(os.urandom(80))},
            "empty-ciphertext": {"ciphertext": ""},
            "short-ciphertext": {"ciphertext": b64encode(os.urandom(15))},
            "wrong-nonce": {"nonce": b64encode(os.urandom(24))},
            "truncated-ciphertext": {"ciphertext": b64encode(good[:-1])},
        }[case]
        raw = hand_envelope(net, plaintext=plaintext, nonce=nonce, header=header)
    assert error_code(lambda: open_as(net, raw)) == "decryption_failed"


@pytest.mark.parametrize(
    "nonce",
    [b64encode(bytes(23)), b64encode(bytes(25)), "", "!" * 32, "A" * 31 + "=", "A" * 33],
    ids=["23-bytes", "25-bytes", "empty", "not-base64", "padded", "bad-length"],
)
def test_nonce_that_is_not_24_bytes_of_base64url_is_refused(net: Any, nonce: str) -> None:
    # Correctly signed. Malformed or decryption failure: either is a fair reading.
    raw = hand_envelope(
        net, plaintext=canonical_json(inner_doc(RECEIPT_JSON)), header={"nonce": nonce}
    )
    assert error_code(lambda: open_as(net, raw)) in {"malformed", "decryption_failed"}


@pytest.mark.parametrize("ciphertext", ["!!!!", "AB", "A", "AAAA=", "AA AA"])
def test_ciphertext_that_is_not_base64url_is_refused(net: Any, ciphertext: str) -> None:
    raw = hand_envelope(net, plaintext=b"x", header={"ciphertext": ciphertext})
    assert error_code(lambda: open_as(net, raw)) in {"malformed", "decryption_failed"}


@pytest.mark.parametrize(
    ("created_at", "expires_at"),
    [(2**53, 2**53 + 3600), (2**53 - 1, 2**53 + 3599)],
    ids=["both-unsafe", "expires-unsafe"],
)
def test_integers_beyond_the_safe_range_in_the_header_are_refused(
    net: Any, created_at: int, expires_at: int
) -> None:
    # Such a header cannot have been signed (canonical_json refuses the integers), and no
    # other implementation reads them exactly. open_envelope must refuse it with a
    # ProtocolError -- not let a ValueError out of the signature check.
    wire = sealed(net)
    doc = parse_json(wire)
    raw = wire.replace(
        b'"created_at":%d' % doc["created_at"], b'"created_at":%d' % created_at
    ).replace(b'"expires_at":%d' % doc["expires_at"], b'"expires_at":%d' % expires_at)
    assert parse_json(raw)["created_at"] == created_at
    with pytest.raises(ProtocolError):
        open_as(net, raw)


def test_hand_built_envelope_opens(net: Any) -> None:
    # Sanity check for the helper used by the following tests.
    raw = hand_envelope(net, plaintext=canonical_json(inner_doc(RECEIPT_JSON)))
    assert open_as(net, raw).payload == p.Receipt(**RECEIPT_JSON)


@pytest.mark.parametrize(
    ("member", "value"),
    [
        ("type", "alert.retract"),
        ("recipient", "GN"),
        ("id", "00000000-0000-4000-8000-000000000000"),
        ("sender", "GN"),
        ("recipient", "CD-x"),
        ("type", "receipt "),
    ],
)
def test_header_mismatch(net: Any, member: str, value: str) -> None:
    plaintext = canonical_json(inner_doc(RECEIPT_JSON, **{member: value}))
    raw = hand_envelope(net, plaintext=plaintext)
    assert error_code(lambda: open_as(net, raw)) == "header_mismatch"


def test_header_type_changed_and_resigned_is_header_mismatch(net: Any) -> None:
    doc = sealed_doc(net)  # a receipt inside
    raw = resign(net.sender, {**doc, "type": "alert"})
    assert error_code(lambda: open_as(net, raw)) == "header_mismatch"


@pytest.mark.parametrize(
    "case",
    [
        "unknown-field",
        "too-long",
        "float-in-payload",
        "missing-field",
        "wrong-type",
        "bad-enum",
        "coercible-string",
        "payload-not-object",
        "inner-not-json",
        "inner-missing-payload",
        "inner-extra-member",
        "inner-array",
        "bad-uuid",
        "uppercase-uuid",
        "bad-date",
        "lowercase-country",
        "nested-unknown-field",
        "score-out-of-range",
        "alert-update-revision-1",
        "bool-as-int",
    ],
)
def test_schema_invalid(net: Any, case: str) -> None:
    receipt = dict(RECEIPT_JSON)
    alert = {
        "alert_id": "5b0c4a44-2c0e-4f7e-9a51-6f1d7c2b9e10",
        "category": "seizure",
        "severity": "info",
        "title": "t",
        "body": "b",
        "handling": "GREEN",
        "issued_at": 1,
    }
    msg_type = "receipt"
    payload: Any = receipt
    plaintext: bytes | None = None
    if case == "unknown-field":
        payload = {**receipt, "note": "x"}
    elif case == "too-long":
        msg_type, payload = "alert", {**alert, "title": "é" * 201}
    elif case == "float-in-payload":
        plaintext = canonical_json(inner_doc(receipt)).replace(b'"at":5', b'"at":5.0')
    elif case == "missing-field":
        payload = {k: v for k, v in receipt.items() if k != "status"}
    elif case == "wrong-type":
        payload = {**receipt, "at": "5"}
    elif case == "bad-enum":
        payload = {**receipt, "status": "lost"}
    elif case == "coercible-string":
        msg_type, payload = "alert", {**alert, "issued_at": "1"}
    elif case == "payload-not-object":
        payload = [receipt]
    elif case == "inner-not-json":
        plaintext = b"\x00\x01 not json"
    elif case == "inner-missing-payload":
        plaintext = canonical_json({k: v for k, v in inner_doc(receipt).items() if k != "payload"})
    elif case == "inner-extra-member":
        plaintext = canonical_json({**inner_doc(receipt), "extra": 1})
    elif case == "inner-array":
        plaintext = canonical_json([inner_doc(receipt)])
    elif case == "bad-uuid":
        payload = {**receipt, "message_id": "not-a-uuid"}
    elif case == "uppercase-uuid":
        payload = {**receipt, "message_id": receipt["message_id"].upper().replace("0", "A")}
    elif case == "bad-date":
        msg_type = "alert"
        payload = {
            **alert,
            "subjects": [{"kind": "person", "names": ["x"], "date_of_birth": "1978/01/02"}],
        }
    elif case == "lowercase-country":
        msg_type, payload = "alert", {**alert, "place": {"country": "cm"}}
    elif case == "nested-unknown-field":
        msg_type, payload = "alert", {**alert, "place": {"country": "CM", "altitude": 1}}
    elif case == "score-out-of-range":
        msg_type = "kyc.response"
        payload = {
            "query_id": alert["alert_id"],
            "hits": [{"kind": "subject", "score": 1001, "reference": "r", "handling": "RED"}],
        }
    elif case == "alert-update-revision-1":
        msg_type, payload = "alert.update", {**alert, "revision": 1}
    elif case == "bool-as-int":
        payload = {**receipt, "at": True}
    if plaintext is None:
        plaintext = canonical_json(inner_doc(payload, type=msg_type))
    raw = hand_envelope(net, plaintext=plaintext, header={"type": msg_type})
    assert error_code(lambda: open_as(net, raw)) == "schema_invalid"


def test_every_documented_error_code_is_reachable_here() -> None:
    # The codes exercised above cover every envelope error in ERROR_CODES.
    envelope_codes = {
        code for code, cls in p.ERROR_CODES.items() if issubclass(cls, p.EnvelopeError)
    }
    assert envelope_codes == {
        "too_large",
        "malformed",
        "unsupported_version",
        "unknown_sender",
        "sender_inactive",
        "unknown_key",
        "key_expired",
        "bad_signature",
        "wrong_recipient",
        "expired",
        "not_yet_valid",
        "decryption_failed",
        "header_mismatch",
        "schema_invalid",
    }
    for code, cls in p.ERROR_CODES.items():
        assert cls.code == code and issubclass(cls, ProtocolError)


# --------------------------------------------------------------------------------------
# seal refuses what it cannot send


def test_seal_refuses_bad_arguments(net: Any) -> None:
    with pytest.raises(ValueError):
        seal(net.sender, net.to_recipient, a_receipt(), now=net.now, ttl=0)
    with pytest.raises(ValueError):
        seal(net.sender, net.to_recipient, a_receipt(), now=net.now, ttl=MAX_LIFETIME + 1)
    sig_key = net.recipient_card.current_key("sig", net.now)
    with pytest.raises(ValueError):
        seal(net.sender, p.Recipient("CD", sig_key), a_receipt(), now=net.now)
    with pytest.raises(TypeError):
        seal(net.sender, net.to_recipient, p.Place(country="CM"), now=net.now)


# --------------------------------------------------------------------------------------
# card.update


def test_card_update_with_own_rotated_card_opens(net: Any) -> None:
    for new_signing_key in (False, True):
        rotated = rotated_identity(
            net.sender, f"CM rotation {new_signing_key}", new_signing_key=new_signing_key
        )
        old_enc = net.sender_card.key(net.sender.encryption_kid)
        card = p.make_card(
            rotated,
            name="Node CM (rotated)",
            endpoints=["https://cm.example.org"],
            now=net.now - 60,
            serial=2,
            extra_keys=[old_enc],
        )
        # Sent in an envelope signed with the current (pre-rotation) keys.
        opened = open_as(net, sealed(net, p.CardUpdate(card=card)))
        assert opened.type == "card.update"
        assert opened.payload.card == card
        assert opened.payload.card.fingerprint == rotated.fingerprint


def test_card_update_carrying_another_nodes_card_is_schema_invalid(net: Any) -> None:
    raw = sealed(net, p.CardUpdate(card=net.other_card))
    assert error_code(lambda: open_as(net, raw)) == "schema_invalid"
    raw = sealed(net, p.CardUpdate(card=net.recipient_card))
    assert error_code(lambda: open_as(net, raw)) == "schema_invalid"


def test_card_update_with_forged_or_invalid_card_is_schema_invalid(net: Any) -> None:
    body = net.sender_card.to_json()
    forged = {**body, "name": "Node CM (forged)"}  # signature no longer matches
    raw = hand_envelope(
        net,
        plaintext=canonical_json(inner_doc({"card": forged}, type="card.update")),
        header={"type": "card.update"},
    )
    assert error_code(lambda: open_as(net, raw)) == "schema_invalid"
    # A genuine CM card whose signing key is not valid at the time of opening.
    future = p.make_card(
        net.sender, name="Node CM", endpoints=["https://cm.example.org"], now=net.now + 10**6
    )
    raw = sealed(net, p.CardUpdate(card=future))
    assert error_code(lambda: open_as(net, raw)) == "schema_invalid"
