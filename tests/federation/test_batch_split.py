"""Cutting a batch into its envelopes by a bounded scan (``node.federation.batch_split``):
the items as they came, refused at the 101st item or at nesting no envelope has, and
the same refusals decided from the first bytes when they suffice — never otherwise."""

from __future__ import annotations

import pytest

import protocol
from node.federation.batch_split import (
    MAX_DEPTH,
    WINDOW,
    TooComplex,
    TooManyItems,
    refuse_early,
    split_batch,
)


def test_items_are_cut_as_they_came() -> None:
    body = b' [ {"a": "x\\"]}[", "b": [1, {"c": 2}]} ,"s", 12, null ]\n'
    assert split_batch(body, 100) == [
        b'{"a": "x\\"]}[", "b": [1, {"c": 2}]}',
        b'"s"',
        b"12",
        b"null",
    ]


@pytest.mark.parametrize("body", [b'{"version": 1}', b"  {}", b"not json", b""])
def test_a_body_that_is_not_an_array_is_a_single_envelope(body: bytes) -> None:
    assert split_batch(body, 100) is None


@pytest.mark.parametrize("body", [b"[]", b" [ ] \r\n"])
def test_an_empty_batch_has_no_items(body: bytes) -> None:
    assert split_batch(body, 100) == []


@pytest.mark.parametrize(
    "body",
    [b"[", b"[{", b'["abc', b'["ab\\', b"[1 2]", b"[1,]", b"[,]", b"[{}]x", b"[{}"],
)
def test_a_broken_array_is_malformed(body: bytes) -> None:
    with pytest.raises(protocol.Malformed):
        split_batch(body, 100)


def test_the_101st_item_is_refused_without_reading_further() -> None:
    assert len(split_batch(b"[" + b",".join([b"{}"] * 100) + b"]", 100) or []) == 100
    junk = b"[" + b"{}," * 101 + b"garbage that is never looked at"
    with pytest.raises(TooManyItems):
        split_batch(junk, 100)


def test_nesting_and_parts_beyond_any_envelope_are_refused() -> None:
    split_batch(b"[" * MAX_DEPTH + b"]" * MAX_DEPTH, 100)
    with pytest.raises(TooComplex):
        split_batch(b"[" * (MAX_DEPTH + 2), 100)
    with pytest.raises(TooComplex):
        split_batch(b"[[" + b"[]," * 2000 + b"[]]]", 100)


def test_long_strings_and_escapes_are_crossed_window_by_window() -> None:
    """A string longer than a scan window, with an escape straddling its edge."""
    text = b"x" * (WINDOW - 2) + b'\\"' + b"y" * (3 * WINDOW)
    body = b'[{"ciphertext": "' + text + b'"}, {}]'
    assert split_batch(body, 100) == [b'{"ciphertext": "' + text + b'"}', b"{}"]


@pytest.mark.parametrize(
    "body",
    [
        b'[{"a": "' + b"x" * 1000 + b'"}, {"b": 1}]',
        b"[" + b"{}," * 50 + b'{"a": 12345678',
        b'[{"a": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[',
    ],
)
def test_a_prefix_alone_refuses_nothing_a_whole_body_might_not(body: bytes) -> None:
    for end in range(0, len(body), 7):
        refuse_early(body[:end], 100)  # no false refusal on any prefix


def test_a_prefix_refuses_what_it_already_shows() -> None:
    with pytest.raises(TooManyItems):
        refuse_early(b"[" + b"{}," * 101, 100)
    with pytest.raises(TooComplex):
        refuse_early(b"[" * 100, 100)


def test_flat_envelopes_are_cut_whole_whatever_their_strings_hold() -> None:
    items = [b'{"a": "}{][", "b": 1}', b'{"a": "x\\"}", "b": "\\\\"}', b'{"c": "\\\\\\""}', b"{}"]
    assert split_batch(b"[" + b", ".join(items) + b"]", 100) == items


def test_a_flat_item_with_more_parts_than_any_envelope_is_refused() -> None:
    with pytest.raises(TooComplex):
        split_batch(b"[{" + b",".join([b'"":1'] * 2000) + b"}]", 100)
