"""Node cards: self-signed public descriptions, admitted after a fingerprint check."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import protocol as p
from protocol import CardInvalid, FingerprintMismatch, NodeIdentity, b64decode, b64encode

FINGERPRINT = re.compile(r"\A[0-9]{5}( [0-9]{5}){5}\Z")
TOP_LEVEL = (
    "card_version",
    "node_id",
    "country",
    "name",
    "endpoints",
    "protocol_versions",
    "keys",
    "serial",
    "issued_at",
    "signed_by",
    "signature",
)
KEY_MEMBERS = ("kid", "use", "alg", "public_key", "valid_from", "valid_until")


def resign(identity: NodeIdentity, body: dict[str, Any]) -> dict[str, Any]:
    """Sign ``body`` (minus any signature) with ``identity``'s key, as make_card does."""
    unsigned = {k: v for k, v in body.items() if k != "signature"}
    return {**unsigned, "signature": b64encode(identity.sign(p.canonical_json(unsigned)))}


# --------------------------------------------------------------------------------------
# round trip


def test_make_card_contents(net: Any) -> None:
    card = net.sender_card
    identity = net.sender
    assert card.node_id == "CM" and card.country == "CM"
    assert card.signed_by == identity.signing_kid
    keys = {k.kid: k for k in card.public_keys()}
    assert keys[identity.signing_kid].use == "sig"
    assert keys[identity.signing_kid].key == identity.signing_public_key
    assert keys[identity.encryption_kid].use == "enc"
    assert keys[identity.encryption_kid].key == identity.encryption_public_key
    assert card.current_key("enc", net.now).kid == identity.encryption_kid
    assert set(card.to_json()) == set(TOP_LEVEL)


def test_a_key_made_by_a_clock_ahead_of_ours_is_usable_within_the_skew(net: Any) -> None:
    card, identity = net.sender_card, net.sender
    enc = next(k for k in card.public_keys() if k.use == "enc")
    before = enc.valid_from - 10  # our clock is 10 s behind the card owner's
    with pytest.raises(p.CardInvalid):
        card.current_key("enc", before)
    assert card.current_key("enc", before, clock_skew=300).kid == identity.encryption_kid
    with pytest.raises(p.CardInvalid):
        card.current_key("enc", enc.valid_from - 301, clock_skew=300)
    with pytest.raises(p.CardInvalid):
        card.current_key("enc", enc.valid_until + 301, clock_skew=300)


def test_verify_card_round_trip_from_bytes_str_and_dict(net: Any) -> None:
    card = net.sender_card
    from_bytes = p.verify_card(card.to_bytes())
    from_str = p.verify_card(card.to_bytes().decode("utf-8"))
    from_dict = p.verify_card(card.to_json())
    assert from_bytes == from_str == from_dict == card
    assert from_bytes.to_bytes() == card.to_bytes()
    assert card.to_bytes() == p.canonical_json(card.to_json())


def test_non_canonical_serialisation_of_a_card_still_verifies(net: Any) -> None:
    # The signature is over the canonical form, so pretty-printed JSON (as shipped on a
    # USB stick) verifies too.
    import json

    pretty = json.dumps(net.sender_card.to_json(), indent=2, ensure_ascii=True)
    assert p.verify_card(pretty) == net.sender_card


@settings(max_examples=40, deadline=None)
@given(
    node_id=st.from_regex(r"\A[A-Z]{2}(-[a-z0-9]{1,16})?\Z"),
    name=st.text(
        st.characters(exclude_categories=["Cs", "Cn"], exclude_characters="\x00"),
        min_size=1,
        max_size=200,
    ),
    endpoints=st.lists(
        st.sampled_from(["https://", "http://"]).flatmap(
            lambda scheme: st.from_regex(r"\A[a-z0-9.-]{1,40}(:[0-9]{1,5})?\Z").map(
                lambda h: scheme + h
            )
        ),
        min_size=1,
        max_size=5,
    ),
    serial=st.integers(1, 2**53 - 1),
    now=st.integers(0, 2**40),
    versions=st.lists(st.integers(1, 999), min_size=1, max_size=10, unique=True),
    seed=st.binary(min_size=32, max_size=32),
)
def test_any_valid_card_round_trips(
    node_id: str,
    name: str,
    endpoints: list[str],
    serial: int,
    now: int,
    versions: list[int],
    seed: bytes,
) -> None:
    identity = NodeIdentity(node_id, seed, hashlib.sha256(seed).digest())
    card = p.make_card(
        identity, name=name, endpoints=endpoints, now=now, serial=serial, protocol_versions=versions
    )
    assert card.node_id == node_id and card.name == name and card.serial == serial
    assert card.protocol_versions == sorted(versions)
    assert (
        p.verify_card(card.to_bytes(), expected_fingerprint=identity.fingerprint, now=now) == card
    )


# --------------------------------------------------------------------------------------
# fingerprints


def test_fingerprint_format_and_binding(net: Any) -> None:
    fp = net.sender_card.fingerprint
    assert FINGERPRINT.match(fp), fp
    assert fp == net.sender.fingerprint == p.fingerprint("CM", net.sender.signing_public_key)
    # The fingerprint binds the node id: the same key speaking for another node differs.
    assert p.fingerprint("CF", net.sender.signing_public_key) != fp
    assert net.recipient_card.fingerprint != fp


@settings(max_examples=50, deadline=None)
@given(
    node_id=st.from_regex(r"\A[A-Z]{2}(-[a-z0-9]{1,16})?\Z"),
    key=st.binary(min_size=32, max_size=32),
)
def test_fingerprint_is_six_groups_of_five_digits_as_specified(node_id: str, key: bytes) -> None:
    fp = p.fingerprint(node_id, key)
    assert FINGERPRINT.match(fp), fp
    # Interoperability: SHA-256 over the domain tag, node id, NUL and the key; the first six
    # 5-byte chunks big-endian modulo 100000.
    digest = hashlib.sha256(b"kpnet-fingerprint-v1\x00" + node_id.encode() + b"\x00" + key).digest()
    expected = " ".join(
        f"{int.from_bytes(digest[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )
    assert fp == expected


def _variants(fp: str) -> list[str]:
    digits = fp.replace(" ", "")
    groups = fp.split(" ")
    return [
        fp,
        digits,
        "-".join(groups),
        "  ".join(groups),
        " - ".join(groups),
        "\n".join(groups),
        f"  {fp}\t",
        "-".join(digits[i : i + 3] for i in range(0, 30, 3)),
    ]


@pytest.mark.parametrize(
    "node_id", ["CM\n", "cm", "CMR", "C", "CM-", "CM-ABC", "CM-" + "a" * 17, " CM", "CM_x"]
)
def test_invalid_node_ids_are_refused(node_id: str) -> None:
    assert not p.is_node_id(node_id)
    with pytest.raises(ValueError):
        NodeIdentity(node_id, bytes(32), bytes(32))


@pytest.mark.parametrize("node_id", ["CM", "CF-usaf", "CD-" + "a" * 16, "ZZ-0"])
def test_valid_node_ids(node_id: str) -> None:
    assert p.is_node_id(node_id)


def test_fingerprint_check_accepts_spacing_and_dash_variations(net: Any) -> None:
    raw = net.sender_card.to_bytes()
    for variant in _variants(net.sender.fingerprint):
        assert p.verify_card(raw, expected_fingerprint=variant) == net.sender_card
        assert p.fingerprints_equal(variant, net.sender.fingerprint)


def test_fingerprint_check_fails_for_another_node(net: Any) -> None:
    raw = net.sender_card.to_bytes()
    for variant in _variants(net.recipient.fingerprint):
        with pytest.raises(FingerprintMismatch):
            p.verify_card(raw, expected_fingerprint=variant)


@pytest.mark.parametrize("kind", ["one-digit-off", "truncated", "extra-digit", "empty", "letters"])
def test_fingerprint_check_fails_for_near_misses(net: Any, kind: str) -> None:
    fp = net.sender.fingerprint
    last = str((int(fp[-1]) + 1) % 10)
    wrong = {
        "one-digit-off": fp[:-1] + last,
        "truncated": fp[:-1],
        "extra-digit": fp + "0",
        "empty": "",
        "letters": fp.replace("0", "O").replace("1", "l") if ("0" in fp or "1" in fp) else "x" + fp,
    }[kind]
    with pytest.raises(FingerprintMismatch):
        p.verify_card(net.sender_card.to_bytes(), expected_fingerprint=wrong)


def test_fingerprint_mismatch_is_a_card_error_with_stable_code() -> None:
    assert FingerprintMismatch.code == "fingerprint_mismatch"
    assert CardInvalid.code == "card_invalid"
    assert issubclass(FingerprintMismatch, p.CardError) and issubclass(CardInvalid, p.CardError)


# --------------------------------------------------------------------------------------
# tampering


def _flip_b64(draw: st.DrawFn, text: str) -> str:
    raw = bytearray(b64decode(text))
    index = draw(st.integers(0, len(raw) - 1))
    raw[index] ^= 1 << draw(st.integers(0, 7))
    return b64encode(bytes(raw))


def _different(draw: st.DrawFn, strategy: st.SearchStrategy[Any], old: Any) -> Any:
    return draw(strategy.filter(lambda v: v != old))


hex16 = st.from_regex(r"\A[0-9a-f]{16}\Z")
timestamps = st.integers(0, 2**53 - 1)


@st.composite
def card_mutations(draw: st.DrawFn, body: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """Change one member of a card (or one entry of its key list); return (what, card)."""
    doc = copy.deepcopy(body)
    member = draw(st.sampled_from(TOP_LEVEL))
    old = doc[member]
    if member == "keys":
        keys = doc["keys"]
        action = draw(st.sampled_from(["member", "drop", "duplicate", "reorder"]))
        index = draw(st.integers(0, len(keys) - 1))
        if action == "member":
            entry = keys[index]
            key_member = draw(st.sampled_from(KEY_MEMBERS))
            value = entry[key_member]
            if key_member == "kid":
                entry[key_member] = _different(draw, hex16, value)
            elif key_member == "use":
                entry[key_member] = "enc" if value == "sig" else "sig"
            elif key_member == "alg":
                entry[key_member] = "X25519" if value == "Ed25519" else "Ed25519"
            elif key_member == "public_key":
                entry[key_member] = _flip_b64(draw, value)
            else:
                entry[key_member] = _different(draw, timestamps, value)
            return f"keys[{index}].{key_member}", doc
        if action == "drop":
            del keys[index]
        elif action == "duplicate":
            keys.append(copy.deepcopy(keys[index]))
        else:
            keys.reverse()
        return f"keys: {action} {index}", doc
    if member == "card_version":
        new: Any = _different(draw, st.integers(-5, 5), old)
    elif member == "node_id":
        # Same country (only the signature can catch it) or another country.
        new = _different(
            draw,
            st.one_of(st.from_regex(r"\ACM-[a-z0-9]{1,16}\Z"), st.from_regex(r"\A[A-Z]{2}\Z")),
            old,
        )
    elif member == "country":
        new = _different(draw, st.from_regex(r"\A[A-Z]{2}\Z"), old)
    elif member == "name":
        new = _different(
            draw,
            st.text(
                st.characters(exclude_categories=["Cs", "Cn"], exclude_characters="\x00"),
                min_size=1,
                max_size=200,
            ),
            old,
        )
    elif member == "endpoints":
        new = _different(
            draw,
            st.lists(
                st.from_regex(r"\Ahttps://[a-z]{1,10}\.example\.org\Z"), min_size=1, max_size=5
            ),
            old,
        )
    elif member == "protocol_versions":
        new = _different(draw, st.lists(st.integers(1, 999), min_size=1, max_size=10), old)
    elif member == "serial":
        new = _different(draw, st.integers(1, 2**53 - 1), old)
    elif member == "issued_at":
        new = _different(draw, timestamps, old)
    elif member == "signed_by":
        new = _different(
            draw, st.one_of(hex16, st.sampled_from([k["kid"] for k in doc["keys"]])), old
        )
    else:  # signature
        new = _flip_b64(draw, old)
    doc[member] = new
    return member, doc


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_altering_any_field_of_a_signed_card_is_refused(net: Any, data: st.DataObject) -> None:
    body = net.sender_card.to_json()
    member, doc = data.draw(card_mutations(body))
    assert doc != body, member
    with pytest.raises(CardInvalid):
        p.verify_card(doc)
    with pytest.raises(CardInvalid):
        p.verify_card(p.canonical_json(doc))


@pytest.mark.parametrize("member", TOP_LEVEL)
def test_a_card_missing_any_member_is_refused(net: Any, member: str) -> None:
    doc = {k: v for k, v in net.sender_card.to_json().items() if k != member}
    if member != "signature":
        doc = resign(net.sender, doc)
    with pytest.raises(CardInvalid):
        p.verify_card(doc)


def test_country_must_agree_with_node_id_even_when_correctly_signed(net: Any) -> None:
    doc = resign(net.sender, {**net.sender_card.to_json(), "country": "CD"})
    with pytest.raises(CardInvalid, match="country"):
        p.verify_card(doc)


def test_unknown_extra_member_is_refused_even_when_correctly_signed(net: Any) -> None:
    doc = resign(net.sender, {**net.sender_card.to_json(), "comment": "hello"})
    with pytest.raises(CardInvalid):
        p.verify_card(doc)
    key_doc = net.sender_card.to_json()
    key_doc["keys"][0]["comment"] = "hello"
    with pytest.raises(CardInvalid):
        p.verify_card(resign(net.sender, key_doc))


def test_card_signed_by_another_nodes_key_is_refused(net: Any) -> None:
    # CM's card content, signed with CD's key: signed_by still names CM's key.
    doc = resign(net.recipient, net.sender_card.to_json())
    with pytest.raises(CardInvalid):
        p.verify_card(doc)


def test_signed_by_must_name_a_signing_key(net: Any) -> None:
    doc = resign(net.sender, {**net.sender_card.to_json(), "signed_by": net.sender.encryption_kid})
    with pytest.raises(CardInvalid):
        p.verify_card(doc)


def test_card_without_encryption_key_is_refused(net: Any) -> None:
    other = NodeIdentity("CM", bytes(range(32)), bytes(32 * [7]))
    extra = p.PublicKey(other.signing_kid, "sig", other.signing_public_key, 0, 10**10)
    doc = net.sender_card.to_json()
    doc["keys"] = [k for k in doc["keys"] if k["use"] == "sig"] + [extra.to_json()]
    with pytest.raises(CardInvalid):
        p.verify_card(resign(net.sender, doc))


def test_duplicate_key_ids_are_refused(net: Any) -> None:
    doc = net.sender_card.to_json()
    doc["keys"] = [*doc["keys"], doc["keys"][1]]
    with pytest.raises(CardInvalid):
        p.verify_card(resign(net.sender, doc))


@pytest.mark.parametrize(
    "data",
    [b"", b"not json", b"[]", b'"card"', b"\xff", b'{"a":1.5}', b"null"],
)
def test_garbage_is_card_invalid(data: bytes) -> None:
    with pytest.raises(CardInvalid):
        p.verify_card(data)


def test_card_checked_against_now(net: Any) -> None:
    card = net.sender_card
    sig = card.key(card.signed_by)
    assert p.verify_card(card.to_bytes(), now=sig.valid_from) == card
    assert p.verify_card(card.to_bytes(), now=sig.valid_until) == card
    with pytest.raises(CardInvalid):
        p.verify_card(card.to_bytes(), now=sig.valid_from - 1)
    with pytest.raises(CardInvalid):
        p.verify_card(card.to_bytes(), now=sig.valid_until + 1)


# --------------------------------------------------------------------------------------
# secrets


def _encodings(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        base64.b64encode(secret).decode(),
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
        repr(secret),
        str(list(secret)),
    ]


def test_identity_repr_holds_no_secret(net: Any) -> None:
    identity = net.sender
    for text in (repr(identity), str(identity), f"{identity!r:}", repr([identity])):
        assert "CM" in text
        for secret in (identity.signing_seed, identity.encryption_secret):
            for encoded in _encodings(secret):
                assert encoded not in text


def test_secrets_are_usable_but_not_in_card(net: Any) -> None:
    # The card is public: neither secret appears in it in any common encoding.
    text = net.sender_card.to_bytes().decode()
    for secret in (net.sender.signing_seed, net.sender.encryption_secret):
        for encoded in _encodings(secret):
            assert encoded not in text
    rebuilt = NodeIdentity("CM", net.sender.signing_seed, net.sender.encryption_secret)
    assert rebuilt.fingerprint == net.sender.fingerprint
