"""Labelled queries for ``kpnet bench kyc``: variants of known synthetic records as an
officer might type them, each labelled with the record it should find.

Variant classes (one per query, taken in turn): a typo (one letter deleted, replaced,
inserted or two swapped, never the first letter), swapped word order, a missing or an
extra middle name, accents dropped, a transliteration variant (Arabic script, another
spelling of an Arabic-origin name, French/English transcription), a year-only or a
day/month-swapped date of birth, a hyphen removed; for organisations a legal-form change,
a typo or accents dropped.
"""

from __future__ import annotations

import random
import string
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from ..matching.normalise import normalise_name
from ..matching.vocabulary import ARABIC_SCRIPT_NAMES, NAME_VARIANTS
from .kyc_names import FRENCH_GIVEN, LEGAL_FORMS, Party

# Canonical spelling -> its other spellings, and -> its Arabic script.
_SPELLINGS: dict[str, list[str]] = {}
for _variant, _canonical in NAME_VARIANTS.items():
    if _variant.isalpha() and len(_variant) > 3:
        _SPELLINGS.setdefault(_canonical, [_canonical]).append(_variant)
_ARABIC = {latin: arabic for arabic, latin in ARABIC_SCRIPT_NAMES.items() if " " not in arabic}
_TRANSCRIPTIONS = (
    ("ou", "w"),
    ("tch", "ch"),
    ("tsh", "ch"),
    ("dj", "j"),
    ("y", "i"),
    ("c", "k"),
    ("k", "c"),
    ("w", "ou"),
    ("ch", "sh"),
    ("ph", "f"),
)


@dataclass
class LabelledQuery:
    variant: str
    kind: str
    names: list[str]
    date_of_birth: str | None
    nationality: str | None
    documents: list[str]
    truth: int  # the match id of the record it should find


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def typo(rng: random.Random, word: str) -> str:
    position = rng.randrange(1, len(word))
    letter = rng.choice(string.ascii_lowercase)
    edit = rng.choice(("delete", "replace", "insert", "swap"))
    if edit == "delete":
        return word[:position] + word[position + 1 :]
    if edit == "replace":
        return word[:position] + letter + word[position + 1 :]
    if edit == "insert":
        return word[:position] + letter + word[position:]
    if position == len(word) - 1:
        position -= 1
    return word[:position] + word[position + 1] + word[position] + word[position + 2 :]


def _words(party: Party) -> list[str]:
    return party.names[0].split()


def _with_words(words: list[str]) -> list[str]:
    return [" ".join(words)]


# Each variant returns the query's names (and date of birth) or None if it cannot apply.
Variant = Callable[[random.Random, Party], "tuple[list[str], str | None] | None"]


def v_typo(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    words = _words(party)
    long = [i for i, w in enumerate(words) if len(w) >= 4 and "-" not in w]
    if not long:
        return None
    i = rng.choice(long)
    words[i] = typo(rng, words[i])
    return _with_words(words), party.date_of_birth


def v_swapped(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    words = _words(party)
    if len(words) < 2:
        return None
    cut = rng.randrange(1, len(words))
    words = words[cut:] + words[:cut]
    words[0] = words[0].upper() if rng.random() < 0.5 else words[0].title()
    return _with_words(words), party.date_of_birth


def v_missing_middle(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    words = _words(party)
    if len(words) < 3:
        return None
    del words[rng.randrange(1, len(words) - 1)]
    return _with_words(words), party.date_of_birth


def v_extra_middle(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    words = _words(party)
    words.insert(1, rng.choice(FRENCH_GIVEN))
    return _with_words(words), party.date_of_birth


def v_accents(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    plain = strip_accents(party.names[0])
    if plain == party.names[0]:
        return None
    return [plain.upper() if rng.random() < 0.3 else plain], party.date_of_birth


def v_transliteration(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    words = _words(party)
    canonical = [normalise_name(w).text for w in words]
    if party.origin == "arabic":
        if all(c in _ARABIC for c in canonical) and rng.random() < 0.5:
            return [" ".join(_ARABIC[c] for c in canonical)], party.date_of_birth
        spelled = [i for i, c in enumerate(canonical) if c in _SPELLINGS]
        if spelled:
            i = rng.choice(spelled)
            others = [s for s in _SPELLINGS[canonical[i]] if s != strip_accents(words[i]).lower()]
            words[i] = rng.choice(others).title()
            return _with_words(words), party.date_of_birth
    text = strip_accents(party.names[0]).lower()
    found = [(a, b) for a, b in _TRANSCRIPTIONS if a in text]
    if not found:
        return None
    a, b = rng.choice(found)
    return [text.replace(a, b, 1).title()], party.date_of_birth


def v_year_only(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    if not party.date_of_birth or len(party.date_of_birth) != 10:
        return None
    return list(party.names), party.date_of_birth[:4]


def v_day_month(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    dob = party.date_of_birth
    if not dob or len(dob) != 10 or int(dob[8:]) > 12 or dob[5:7] == dob[8:]:
        return None
    return list(party.names), f"{dob[:4]}-{dob[8:]}-{dob[5:7]}"


def v_hyphen(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    if "-" not in party.names[0]:
        return None
    return [party.names[0].replace("-", rng.choice((" ", "")), 1)], party.date_of_birth


def v_legal_form(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    words = _words(party)
    core = [w for w in words if w not in LEGAL_FORMS and w not in ("Ets", "Établissements")]
    choice = rng.random()
    if choice < 0.35:
        words = ["Ets", *core]
    elif choice < 0.7:
        words = [*core, rng.choice(("SARL", "S.A.R.L.", "SA", "Ltd", "Sarlu", "& Cie"))]
    else:
        words = core
    if words == _words(party):
        return None
    return _with_words(words), None


def v_org_typo(rng: random.Random, party: Party) -> tuple[list[str], str | None] | None:
    return v_typo(rng, party)


PERSON_VARIANTS: dict[str, Variant] = {
    "typo": v_typo,
    "swapped_order": v_swapped,
    "missing_middle_name": v_missing_middle,
    "extra_middle_name": v_extra_middle,
    "accents_dropped": v_accents,
    "transliteration": v_transliteration,
    "year_only_birth_date": v_year_only,
    "day_month_swapped": v_day_month,
    "hyphen_variant": v_hyphen,
}
ORGANISATION_VARIANTS: dict[str, Variant] = {
    "legal_form_change": v_legal_form,
    "organisation_typo": v_org_typo,
    "organisation_accents_dropped": v_accents,
}


def make_queries(
    rng: random.Random,
    targets: list[tuple[int, Party]],
    count: int,
) -> list[LabelledQuery]:
    """``count`` queries over ``targets`` (match id, party): persons three in four,
    variant classes in turn; each target is used at most once."""
    persons = [t for t in targets if t[1].kind == "person"]
    organisations = [t for t in targets if t[1].kind == "organisation"]
    rng.shuffle(persons)
    rng.shuffle(organisations)
    queries: list[LabelledQuery] = []
    classes = [("person", n, f) for n, f in PERSON_VARIANTS.items()] * 3 + [
        ("organisation", n, f) for n, f in ORGANISATION_VARIANTS.items()
    ] * 3
    turn = made_at = 0
    while len(queries) < count and turn - made_at <= len(classes):
        kind, name, variant = classes[turn % len(classes)]
        turn += 1
        pool = persons if kind == "person" else organisations
        for _ in range(min(200, len(pool))):  # find a target the variant applies to
            mid, party = pool.pop()
            made = variant(rng, party)
            if made is None:
                pool.insert(0, (mid, party))
                continue
            names, dob = made
            queries.append(
                LabelledQuery(
                    name,
                    kind,
                    names,
                    dob
                    if kind == "person"
                    and (
                        name in ("year_only_birth_date", "day_month_swapped") or rng.random() < 0.7
                    )
                    else None,
                    party.nationality if rng.random() < 0.5 else None,
                    party.documents if rng.random() < 0.05 else [],
                    mid,
                )
            )
            made_at = turn
            break
    return queries
