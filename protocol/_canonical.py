"""Canonical JSON (RFC 8785, JCS) for float-free documents, and a strict parser.

kpnet messages never contain floating-point numbers, so the only RFC 8785 rules that
apply are: no insignificant whitespace, object members sorted by the UTF-16 code units
of their names, strings escaped as ECMAScript's JSON.stringify does (only ``"``, ``\\``
and control characters; everything else as raw UTF-8), integers in plain decimal.
Integers must lie in the I-JSON safe range so every implementation reads them exactly.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic_core import PydanticSerializationError, to_json

from ._errors import Malformed

MAX_SAFE_INTEGER = 2**53 - 1
_encode_string = json.JSONEncoder(ensure_ascii=False).encode


def _utf16_key(name: str) -> bytes:
    return name.encode("utf-16-be", "surrogatepass")


def _write(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(_encode_string(value))
    elif value is True:
        out.append("true")
    elif value is False:
        out.append("false")
    elif value is None:
        out.append("null")
    elif isinstance(value, int):
        if not -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            raise ValueError(f"integer {value} is outside the I-JSON safe range")
        out.append(str(int(value)))
    elif isinstance(value, Mapping):
        if not all(isinstance(key, str) for key in value):
            raise TypeError("object member names must be strings")
        out.append("{")
        for i, key in enumerate(sorted(value, key=_utf16_key)):
            if i:
                out.append(",")
            out.append(_encode_string(key))
            out.append(":")
            _write(value[key], out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _write(item, out)
        out.append("]")
    elif isinstance(value, float):
        raise TypeError("floating-point numbers are not allowed in kpnet messages")
    else:
        raise TypeError(f"cannot encode {type(value).__name__} as canonical JSON")


class _NotPlain(Exception):
    pass


def _sorted_copy(value: Any) -> Any:
    """Copy ``value`` with every object's members in canonical order.

    Raises ``_NotPlain`` for what the fast path cannot order or encode exactly: a
    non-ASCII member name (code-point order may then differ from UTF-16 order), a
    float, an integer out of range, or a type outside JSON.
    """
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return value
    if kind is int:
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        raise _NotPlain
    if kind is dict:
        copy = {}
        for key in sorted(value):
            if type(key) is not str or not key.isascii():
                raise _NotPlain
            item = value[key]
            # Strings are by far the most common members: no call needed for them.
            copy[key] = item if type(item) is str else _sorted_copy(item)
        return copy
    if kind is list or kind is tuple:
        return [_sorted_copy(item) for item in value]
    raise _NotPlain


def canonical_json(value: Any) -> bytes:
    """Return the RFC 8785 canonical UTF-8 bytes of ``value`` (no floats allowed).

    Raises ``TypeError``/``ValueError`` for values outside the JSON data model kpnet uses,
    and ``ValueError`` for strings holding lone surrogates (not valid Unicode).
    """
    try:
        # Fast path: members pre-sorted, then pydantic-core's encoder, whose string
        # escaping is the one RFC 8785 prescribes.
        return to_json(_sorted_copy(value))
    except _NotPlain:
        pass
    except PydanticSerializationError as exc:
        raise ValueError("string is not valid Unicode (lone surrogate)") from exc
    except RecursionError as exc:
        raise ValueError("value is nested too deeply") from exc
    out: list[str] = []
    _write(value, out)
    try:
        return "".join(out).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError("string is not valid Unicode (lone surrogate)") from exc


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise Malformed("duplicate member name")
    return result


def _reject_float(text: str) -> Any:
    raise Malformed(f"floating-point number {text!r} is not allowed")


def _reject_constant(text: str) -> Any:
    raise Malformed(f"{text} is not JSON")


_strict_decoder = json.JSONDecoder(
    object_pairs_hook=_reject_duplicates,
    parse_float=_reject_float,
    parse_constant=_reject_constant,
)


def parse_json(data: bytes | str) -> Any:
    """Parse JSON strictly: UTF-8 only, no duplicate names, no floats, no NaN/Infinity.

    Raises :class:`Malformed` on any violation.
    """
    try:
        text = data.decode("utf-8") if isinstance(data, (bytes, bytearray)) else data
        return _strict_decoder.decode(text)
    except Malformed:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Malformed(f"not valid JSON: {exc}") from None
