"""Blocking keys: bounded per record, and shared by a record and the variants of it an
officer may type."""

from __future__ import annotations

import pytest

from node.matching.keys import MAX_KEYS, record_keys
from node.matching.normalise import normalise_name


def keys(
    *names: str,
    party: str = "person",
    year: str | None = None,
    identifiers: tuple[str, ...] = (),
    query: bool = False,
) -> set[str]:
    return set(
        record_keys([normalise_name(n, party) for n in names], year, identifiers, query=query)
    )


def shared(record: str, query: str, party: str = "person", year: str | None = None) -> set[str]:
    return keys(record, party=party, year=year) & keys(query, party=party, year=year, query=True)


def test_a_record_yields_a_bounded_set_of_keys():
    many = [f"Jean Pierre Mbala Ngoy Kalonji{i} Tshibangu" for i in range(20)]
    assert len(keys(*many, year="1981", identifiers=("d:CF0123456",))) == MAX_KEYS
    assert "d:CF0123456" in keys(*many, identifiers=("d:CF0123456",))  # identifiers first


def test_word_order_gives_the_same_keys():
    assert keys("MBALA Jean-Pierre") == keys("Jean-Pierre Mbala")


@pytest.mark.parametrize(
    ("record", "query", "family"),
    [
        ("Jean Pierre Mbala", "Jean Mbala", "p"),  # missing middle name
        ("Jean Mbala", "Jean Claude Mbala", "p"),  # extra middle name
        ("Marcel Ngouandjika", "Marcel Ngouandjka", "p"),  # vowel typo: same sound code
        ("Marcel Ngouandjika", "Marcel Ngouandjiga", "f"),  # consonant typo, two words
        ("Fiston Tshibangu", "Fiston Chibangu", "p"),  # transcription
        ("Jeanpierre Mbala", "Jean Pierre Mbala", "p"),  # the query joins adjacent words
        ("Jean-Pierre Mbala", "Jeanpierre Mbala", "p"),  # the record keeps the compound
        ("Jean Pierre Mbala", "Jeanpierre Mbala", "y"),  # with a birth year
        ("Mahamat Abakar", "محمد أبكر", "n"),  # Arabic script
        ("Bérbérati Gems SARL", "Berberati Gems", "n"),
    ],
)
def test_variants_share_a_key_with_the_record(record, query, family):
    party = "organisation" if "Gems" in record else "person"
    found = shared(record, query, party, year="1981")
    assert any(key[0] == family for key in found), sorted(found)


def test_a_typo_in_a_two_word_organisation_name_is_still_found():
    assert shared("Comptoir Ngouandjika", "Comptoir Ngouandjiga", "organisation")


def test_identifiers_are_keys_without_party():
    assert "d:CF0123456" in keys("Jean Mbala", identifiers=("d:CF0123456",))
    assert "l:CFBA001" in keys("Comptoir Mbala", party="organisation", identifiers=("l:CFBA001",))


def test_persons_and_organisations_never_share_name_keys():
    assert not keys("Mbala Ngoy") & keys("Mbala Ngoy", party="organisation")
