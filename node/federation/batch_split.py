"""Cutting a batch body into its envelopes without parsing it.

A batch is a JSON array of envelope objects. The body is scanned once, left to right,
for its structure only (brackets, braces and whole strings, each found by a regular
expression, so string contents are skipped at C speed), and the scan stops as soon as
the body is known to be refused: at the 101st item, past a nesting depth or a count of
structural marks no envelope comes near. Nothing is built but the items' byte slices;
each is then parsed on its own (bounded by the envelope size limit). A body of
millions of ``{}`` or ``[`` thus costs a few hundred bytes of scanning, not a parse;
``refuse_early`` applies the same scan to the first bytes received, so such a body is
refused before the rest of it is even read.
"""

from __future__ import annotations

import re

import protocol

MAX_DEPTH = 16  # an envelope is one flat object: depth 1
MAX_MARKS = 1024  # brackets, braces and strings in one item: an envelope has about 30

# Every scan looks at most this many bytes at a time: a regular expression holds the
# interpreter lock while it runs, and the event loop must get its turn between windows.
WINDOW = 64 * 1024

_SPACE = re.compile(rb"[ \t\r\n]*+")
_NOT_MARK = re.compile(rb'[^\[\]{}"]*+')
_IN_STRING = re.compile(rb'(?:[^"\\]++|\\.)*+', re.DOTALL)
_SCALAR = re.compile(rb"[^,\]\s]*+")
# A flat object whose strings hold no escape (an envelope: _flat_object_end).
_FLAT_OBJECT = re.compile(rb'\{(?:[^"\[\]{}]++|"[^"]*+")*+\}')


class TooManyItems(ValueError):
    """The batch holds more items than allowed (found without reading the rest)."""


class TooComplex(protocol.Malformed):
    """An item nested deeper, or with more parts, than any envelope."""


def split_batch(body: bytes, max_items: int) -> list[bytes] | None:
    """The items of the batch in ``body`` as byte slices, or None when the body is not
    an array (a single envelope). Raises ``TooManyItems`` at item ``max_items + 1`` and
    ``protocol.Malformed`` when the array is not well formed or is nested or marked
    beyond what an envelope could be (nothing after the failure point is read)."""
    pos = _skip_space(body, 0)
    if pos >= len(body) or body[pos] != ord("["):
        return None
    items: list[bytes] = []
    pos = _skip_space(body, pos + 1)
    if pos < len(body) and body[pos] == ord("]"):
        return _finished(body, pos, items)
    while True:
        if len(items) == max_items:
            raise TooManyItems(f"at most {max_items} per batch")
        end = _value_end(body, pos)
        items.append(body[pos:end])
        pos = _skip_space(body, end)
        if pos >= len(body):
            raise protocol.Malformed("batch: the array is not closed")
        if body[pos] == ord("]"):
            return _finished(body, pos, items)
        if body[pos] != ord(","):
            raise protocol.Malformed(f"batch: ',' or ']' expected at byte {pos}")
        pos = _skip_space(body, pos + 1)


def _run(pattern: re.Pattern[bytes], body: bytes, pos: int) -> int:
    """Where a run of ``pattern`` starting at ``pos`` ends, matched window by window."""
    while pos < len(body):
        end = pattern.match(body, pos, min(len(body), pos + WINDOW)).end()  # type: ignore[union-attr]
        if end < pos + WINDOW:
            return end
        pos = end
    return pos


def refuse_early(prefix: bytes, max_items: int) -> None:
    """Raise what ``split_batch`` would raise for any body that starts with ``prefix``
    (``TooManyItems`` or ``TooComplex``), so such a body can be refused before the rest
    of it is read; return when the prefix alone does not decide."""
    try:
        split_batch(prefix, max_items)
    except (TooManyItems, TooComplex):
        raise
    except protocol.Malformed:
        pass  # perhaps only because the rest is still to come


def _skip_space(body: bytes, pos: int) -> int:
    return _run(_SPACE, body, pos)


def _finished(body: bytes, closing: int, items: list[bytes]) -> list[bytes]:
    if _skip_space(body, closing + 1) != len(body):
        raise protocol.Malformed("batch: data after the array")
    return items


def _value_end(body: bytes, pos: int) -> int:
    """Where the JSON value starting at ``pos`` ends (its form is checked later, when
    the item is parsed; here only its extent, depth and marks)."""
    if pos >= len(body):
        raise protocol.Malformed("batch: an item is missing")
    first = body[pos]
    if first == ord('"'):
        return _string_end(body, pos)
    if first not in b"[{":
        end = _run(_SCALAR, body, pos)
        if end == pos:
            raise protocol.Malformed(f"batch: an item is missing at byte {pos}")
        return end
    if first == ord("{"):
        flat = _flat_object_end(body, pos)
        if flat is not None:
            return flat
    depth = marks = 0
    while True:
        at = _run(_NOT_MARK, body, pos)
        if at >= len(body):
            raise protocol.Malformed("batch: an item is not closed")
        marks += 1
        if marks > MAX_MARKS:
            raise TooComplex(f"batch: an item has more than {MAX_MARKS} parts")
        char = body[at]
        if char == ord('"'):
            pos = _string_end(body, at)
            continue
        if char in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                raise TooComplex(f"batch: nested deeper than {MAX_DEPTH}")
        else:
            depth -= 1
            if depth == 0:
                return at + 1
        pos = at + 1


def _flat_object_end(body: bytes, pos: int) -> int | None:
    """Where the object starting at ``pos`` ends, when it is flat (no object or array
    inside: an envelope), without escapes, within one window and with no more marks
    than ``MAX_MARKS``: what the scan of ``_value_end`` would find there, in one match.
    None leaves the object to that scan (which also says what is wrong with it)."""
    match = _FLAT_OBJECT.match(body, pos, min(len(body), pos + WINDOW))
    if match is None:
        return None
    end = match.end()
    # Without a backslash, a quote always ends its string, as _FLAT_OBJECT assumes; the
    # marks are the two braces and one per string: half the quotes.
    if body.find(b"\\", pos, end) >= 0 or 2 + body.count(b'"', pos, end) // 2 > MAX_MARKS:
        return None
    return end


def _string_end(body: bytes, pos: int) -> int:
    """Where the string whose opening quote is at ``pos`` ends, after its closing quote.
    (A window may end inside an escape: the next window takes the escape whole.)"""
    inside = pos + 1
    while True:
        end = _IN_STRING.match(body, inside, min(len(body), inside + WINDOW)).end()  # type: ignore[union-attr]
        if end < len(body) and body[end] == ord('"'):
            return end + 1
        if end == inside and end + 1 >= min(len(body), inside + WINDOW):
            raise protocol.Malformed("batch: a string is not closed")
        inside = end
