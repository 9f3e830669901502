"""Canonical JSON (RFC 8785 for float-free data), the strict parser, and strict base64url.

Every signature in kpnet is computed over ``canonical_json`` output, so another
implementation (in any language) must produce exactly the same bytes; these tests pin
the RFC 8785 rules that apply to kpnet documents.
"""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protocol import Malformed, b64decode, b64encode, canonical_json, parse_json

MAX_SAFE = 2**53 - 1

# --------------------------------------------------------------------------------------
# An independent reference encoder, written from RFC 8785 / ECMAScript JSON.stringify,
# without the json module.


def _utf16_units(text: str) -> list[int]:
    units: list[int] = []
    for ch in text:
        cp = ord(ch)
        if cp >= 0x10000:
            cp -= 0x10000
            units += [0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF)]
        else:
            units.append(cp)
    return units


_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}


def _quote(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def reference_jcs(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return _quote(value)
    if isinstance(value, list):
        return "[" + ",".join(reference_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda kv: _utf16_units(kv[0]))
        return "{" + ",".join(_quote(k) + ":" + reference_jcs(v) for k, v in members) + "}"
    raise AssertionError(f"unexpected {value!r}")


def strictly_equal(a: Any, b: Any) -> bool:
    """Equality that also distinguishes True from 1 (Python's == does not)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(strictly_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(strictly_equal(a[k], b[k]) for k in a)
    return bool(a == b)


# Any Unicode scalar value (no lone surrogates), with a bias towards ASCII so that
# documents whose names are all ASCII (a common fast path) are generated too.
unicode_chars = st.characters(exclude_categories=["Cs"])
ascii_chars = st.characters(min_codepoint=0, max_codepoint=0x7F)
interesting_chars = st.sampled_from(
    ["\x00", "\x1f", "\x7f", '"', "\\", "/", "\u2028", "\ue000", "\ufffd", "\U0001f600", "é", "ب"]
)
strings = st.text(st.one_of(ascii_chars, unicode_chars, interesting_chars), max_size=12)
names = st.one_of(st.text(ascii_chars, max_size=6), strings)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-MAX_SAFE, MAX_SAFE),
    st.sampled_from([0, -1, MAX_SAFE, -MAX_SAFE]),
    strings,
)
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(names, children, max_size=5)
    ),
    max_leaves=25,
)


# --------------------------------------------------------------------------------------
# canonical_json


def test_member_names_sort_by_utf16_code_units_not_code_points() -> None:
    # U+1F600 is the surrogate pair D83D DE00 in UTF-16, which sorts before E000 and FFFD
    # although its code point is larger; code-point order would put it last.
    doc = {"\ufffd": 1, "\ue000": 2, "\U0001f600": 3, "z": 4}
    assert canonical_json(doc) == '{"z":4,"\U0001f600":3,"\ue000":2,"\ufffd":1}'.encode()


def test_rfc8785_sorting_example() -> None:
    # RFC 8785 section 3.2.3 (values replaced by strings: kpnet has no floats).
    doc = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    expected = (
        '{"\\r":"Carriage Return","1":"One","\u0080":"Control",'
        '"\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign",'
        '"\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
    )
    assert canonical_json(doc) == expected.encode("utf-8")


def test_rfc8785_string_example() -> None:
    # RFC 8785 section 3.2.2.2: "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/"
    value = '\u20ac$\u000f\nA\'B"\\\\"/'
    assert canonical_json(value) == r'''"€$\u000f\nA'B\"\\\\\"/"'''.encode()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("\x00", r'"\u0000"'),
        ("\x01", r'"\u0001"'),
        ("\x0b", r'"\u000b"'),
        ("\x1b", r'"\u001b"'),  # lowercase hex digits
        ("\x1f", r'"\u001f"'),
        ("\n", r'"\n"'),
        ("\t", r'"\t"'),
        ("\r", r'"\r"'),
        ("\b", r'"\b"'),
        ("\f", r'"\f"'),
        ('"', r'"\""'),
        ("\\", r'"\\"'),
        ("/", '"/"'),  # solidus is not escaped
        ("\x7f", '"\x7f"'),  # DEL is not a control character for JSON
        ("\u2028\u2029", '"\u2028\u2029"'),
        ("Ngoundéré", '"Ngoundéré"'),
        ("الماس", '"الماس"'),
        ("\U0001f600", '"\U0001f600"'),
    ],
)
def test_string_escaping(value: str, expected: str) -> None:
    assert canonical_json(value) == expected.encode("utf-8")
    assert canonical_json({value: value}) == f"{{{expected}:{expected}}}".encode()


def test_non_ascii_is_raw_utf8_not_escaped() -> None:
    assert canonical_json("é") == b'"\xc3\xa9"'
    assert (
        canonical_json(["Mbuji-Mayi", "Garoua-Boula\u00ef"])
        == '["Mbuji-Mayi","Garoua-Boulaï"]'.encode()
    )


def test_no_whitespace_and_nested_structures() -> None:
    doc = {"b": [1, {"d": None, "c": [True, False, []]}, {}], "a": "x y", "e": -3}
    assert canonical_json(doc) == b'{"a":"x y","b":[1,{"c":[true,false,[]],"d":null},{}],"e":-3}'
    assert canonical_json((1, 2)) == b"[1,2]"  # tuples are arrays


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, b"0"),
        (-0, b"0"),
        (7, b"7"),
        (-42, b"-42"),
        (MAX_SAFE, b"9007199254740991"),
        (-MAX_SAFE, b"-9007199254740991"),
        (True, b"true"),
        (False, b"false"),
        (None, b"null"),
    ],
)
def test_integers_and_literals(value: Any, expected: bytes) -> None:
    assert canonical_json(value) == expected
    assert canonical_json({"n": value}) == b'{"n":' + expected + b"}"


@pytest.mark.parametrize("value", [2**53, -(2**53), 2**64, 10**100])
def test_integers_outside_safe_range_are_rejected(value: int) -> None:
    for doc in (value, [value], {"n": value}, {"\u00e9": [value]}):
        with pytest.raises(ValueError):
            canonical_json(doc)


@pytest.mark.parametrize(
    "value", [1.0, 0.5, -0.0, 1e300, float("nan"), float("inf"), float("-inf")]
)
def test_floats_are_rejected(value: float) -> None:
    for doc in (value, [1, value], {"a": value}, {"\u00e9": {"b": [value]}}):
        with pytest.raises(TypeError):
            canonical_json(doc)


@pytest.mark.parametrize("bad", ["\ud800", "\udfff", "a\ud83d", "\ude00b"])
def test_lone_surrogates_are_rejected(bad: str) -> None:
    for doc in (bad, [bad], {"a": bad}, {bad: 1}, {"\u00e9": bad}):
        with pytest.raises(ValueError):
            canonical_json(doc)


@pytest.mark.parametrize("value", [b"bytes", {1, 2}, object(), 1 + 2j])
def test_values_outside_the_json_model_are_rejected(value: Any) -> None:
    with pytest.raises(TypeError):
        canonical_json({"a": value})


@pytest.mark.parametrize("doc", [{"a": 1, 2: "b"}, {b"a": 1}])
def test_non_string_member_names_raise_type_error(doc: dict[Any, Any]) -> None:
    # The documented contract is TypeError/ValueError for anything outside the JSON model.
    with pytest.raises(TypeError):
        canonical_json(doc)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_matches_independent_reference_encoder(value: Any) -> None:
    assert canonical_json(value) == reference_jcs(value).encode("utf-8")


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_parse_inverts_canonical_and_canonical_is_idempotent(value: Any) -> None:
    encoded = canonical_json(value)
    decoded = parse_json(encoded)
    assert strictly_equal(decoded, value)
    assert canonical_json(decoded) == encoded
    assert parse_json(encoded.decode("utf-8")) == decoded  # str input too


# --------------------------------------------------------------------------------------
# parse_json


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1,"a":2}',
        b'{"a":1,"a":1}',
        b'{"a":1,"\\u0061":2}',  # the same name, once escaped
        b'{"x":[{"b":null,"b":null}]}',
    ],
)
def test_parse_rejects_duplicate_names(text: bytes) -> None:
    with pytest.raises(Malformed):
        parse_json(text)


@pytest.mark.parametrize(
    "text", [b"1.0", b"1e3", b"1E3", b"-0.0", b"0.1", b"[1.5]", b'{"a":2e0}', b"1e-7"]
)
def test_parse_rejects_floats(text: bytes) -> None:
    with pytest.raises(Malformed):
        parse_json(text)


@pytest.mark.parametrize("text", [b"NaN", b"Infinity", b"-Infinity", b"[NaN]", b'{"a":Infinity}'])
def test_parse_rejects_nan_and_infinity(text: bytes) -> None:
    with pytest.raises(Malformed):
        parse_json(text)


@pytest.mark.parametrize(
    "text",
    [
        b'"\xff"',
        b'"\xc3"',  # truncated sequence
        b'"\xc0\xaf"',  # overlong encoding of "/"
        b'"\xed\xa0\x80"',  # UTF-8-encoded surrogate (CESU-8)
        b'{"\xfe":1}',
        b"\xff\xfe{\x00}\x00",  # UTF-16 with BOM
    ],
)
def test_parse_rejects_invalid_utf8(text: bytes) -> None:
    with pytest.raises(Malformed):
        parse_json(text)


@pytest.mark.parametrize(
    "text",
    [
        b"",
        b"{",
        b"[1,]",
        b"{'a':1}",
        b'{"a":1} x',
        b"\xef\xbb\xbf{}",
        b"undefined",
        b"01",
        b"[" * 100_000 + b"]" * 100_000,
        b"1" * 5000,
    ],
    ids=[
        "empty",
        "open",
        "trailing-comma",
        "single-quotes",
        "trailing-garbage",
        "bom",
        "undefined",
        "leading-zero",
        "deep-nesting",
        "5000-digit-integer",
    ],
)
def test_parse_rejects_other_invalid_json(text: bytes) -> None:
    with pytest.raises(Malformed):
        parse_json(text)


def test_parse_accepts_plain_json_from_bytes_and_str() -> None:
    assert parse_json(b' {"b": [1, true, null], "a": "\\u00e9"} ') == {
        "b": [1, True, None],
        "a": "é",
    }
    assert parse_json('{"k":"Ngoundéré"}') == {"k": "Ngoundéré"}
    assert parse_json('{"k":"Ngoundéré"}'.encode()) == {"k": "Ngoundéré"}


# --------------------------------------------------------------------------------------
# base64url without padding

B64URL = re.compile(r"\A[A-Za-z0-9_-]*\Z")


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_base64_round_trip_and_form(data: bytes) -> None:
    text = b64encode(data)
    assert b64decode(text) == data
    assert B64URL.match(text)
    assert "=" not in text
    assert len(text) == (len(data) * 4 + 2) // 3
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")


@settings(max_examples=300, deadline=None)
@given(st.text(st.sampled_from("AQgw_-+/=Bz09 \n"), max_size=12))
def test_base64_has_one_encoding_per_byte_string(text: str) -> None:
    # Whatever decodes must be exactly the encoding of its result.
    try:
        data = b64decode(text)
    except ValueError:
        return
    assert b64encode(data) == text


@pytest.mark.parametrize(
    ("text", "data"),
    [
        ("", b""),
        ("AA", b"\x00"),
        ("AAA", b"\x00\x00"),
        ("AAAA", b"\x00\x00\x00"),
        ("-_8", b"\xfb\xff"),
        ("_w", b"\xff"),
    ],
)
def test_base64_decodes_canonical_text(text: str, data: bytes) -> None:
    assert b64decode(text) == data


@pytest.mark.parametrize(
    "text",
    [
        "AA==",
        "AAA=",
        "AA=",
        "AAAA====",
        "=",  # padding
        "+/8",
        "AA+A",
        "AA/A",  # standard (not URL-safe) alphabet
        "AB",
        "AAB",
        "AAC",
        "_x",  # non-zero unused trailing bits (canonical: "AA", "AAA", "_w")
        "A",
        "AAAAA",  # impossible length
        " AAAA",
        "AAAA ",
        "AA AA",
        "AAAA\n",
        "\tAAAA",
        "AA\r\nAA",  # whitespace
        "AAÀA",
        "ＡＡ",  # non-ASCII  # noqa: RUF001
    ],
)
def test_base64_rejects_non_canonical_text(text: str) -> None:
    with pytest.raises(ValueError):
        b64decode(text)


def test_base64_rejects_non_strings() -> None:
    with pytest.raises(ValueError):
        b64decode(b"AAAA")  # type: ignore[arg-type]
