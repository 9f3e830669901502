"""Names and identifiers brought to one comparable form.

``normalise_name`` turns what an officer typed into lower-case ASCII words:

- common Arabic-script names are transliterated whole (محمد -> muhammad), any other
  script letter by letter with ``anyascii`` (ISC licence); accents go (Bérbérati ->
  berberati);
- apostrophes join (N'Diaye -> ndiaye), other punctuation separates, except that
  hyphenated words are split into their parts *and* kept joined in ``compounds``
  (Jean-Pierre -> jean, pierre; compound jeanpierre);
- spelling variants of Arabic-origin names become one spelling (Mohamed, Mahamat ->
  muhammad; Moussa -> musa);
- persons lose titles at the front or the end (M., Mme, Dr, Col., Général, El Hadj...),
  organisations lose legal forms anywhere (SARL, SA, Ets, & Cie, Ltd...): both are kept
  aside so a score can mention them.

Word order is kept; scorers and keys are the ones that ignore it.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from anyascii import anyascii

from protocol import PARTY_KINDS

from .vocabulary import (
    ARABIC_SCRIPT_NAMES,
    LEGAL_FORMS,
    NAME_VARIANTS,
    ORGANISATION_WORDS,
    PARTICLES,
    TITLE_PAIRS,
    TITLES,
)

PARTIES = PARTY_KINDS  # the protocol's words: person, organisation
PERSON, ORGANISATION = PARTY_KINDS

_ARABIC = re.compile(r"[\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_APOSTROPHES = re.compile(r"['`\u2018\u2019\u02bc\u02bb\u02bf\u02be\u00b4]")
_DOTTED_ACRONYM = re.compile(r"\b(?:[a-z]\.){2,}")
_WORD = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")


@dataclass(frozen=True)
class NormalisedName:
    """One name in comparable form. ``tokens`` keep the typed order."""

    original: str
    party: str
    tokens: tuple[str, ...]
    compounds: tuple[str, ...] = ()
    titles: tuple[str, ...] = ()
    legal_forms: tuple[str, ...] = ()

    @property
    def text(self) -> str:
        return " ".join(self.tokens)

    @property
    def significant(self) -> tuple[str, ...]:
        """Words that identify: no particles, no single letters (initials), no repeats;
        compounds included."""
        seen: dict[str, None] = {}
        for token in (*self.tokens, *self.compounds):
            if len(token) > 1 and token not in PARTICLES:
                seen.setdefault(token)
        return tuple(seen)


def _arabic_fold(text: str) -> str:
    """Arabic letters without vowel marks and with hamza/madda carriers unified."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return bare.replace("\u0629", "\u0647").replace("\u0640", "")  # ta marbuta, tatweel


def _build_arabic_table() -> tuple[re.Pattern[str], dict[str, str]]:
    table = {_arabic_fold(word): latin for word, latin in ARABIC_SCRIPT_NAMES.items()}
    # Longest first, so "عبد الله" wins over a shorter entry; whole words only.
    words = sorted(table, key=len, reverse=True)
    pattern = re.compile(
        r"(?<![\u0600-\u06ff])(?:" + "|".join(map(re.escape, words)) + r")(?![\u0600-\u06ff])"
    )
    return pattern, table


_ARABIC_NAMES, _ARABIC_TABLE = _build_arabic_table()


def to_ascii(text: str) -> str:
    """Lower-case ASCII transliteration; known Arabic-script names as whole words."""
    text = unicodedata.normalize("NFKC", text)
    if _ARABIC.search(text):
        text = _ARABIC_NAMES.sub(lambda m: f" {_ARABIC_TABLE[m.group(0)]} ", _arabic_fold(text))
    return anyascii(text).lower()


def _strip_titles(tokens: list[str]) -> tuple[list[str], list[str]]:
    """Titles off the front, then off the end, while a word that is neither a title nor
    a particle remains ("Le Colonel", a nickname, stays whole)."""
    titles: list[str] = []

    def named(rest: list[str]) -> bool:
        return any(t not in TITLES and t not in PARTICLES for t in rest)

    for front in (True, False):
        while len(tokens) > 1:
            pair = (tokens[0], tokens[1]) if front else (tokens[-2], tokens[-1])
            rest = tokens[2:] if front else tokens[:-2]
            if pair in TITLE_PAIRS and named(rest):
                titles.extend(pair)
                tokens = rest
                continue
            rest = tokens[1:] if front else tokens[:-1]
            if (tokens[0] if front else tokens[-1]) in TITLES and named(rest):
                titles.append(tokens[0] if front else tokens[-1])
                tokens = rest
                continue
            break
    return tokens, titles


def _strip_legal_forms(tokens: list[str]) -> tuple[list[str], list[str]]:
    kept = [t for t in tokens if t not in LEGAL_FORMS]
    if not kept:
        return tokens, []
    forms = [t for t in tokens if t in LEGAL_FORMS]
    while len(kept) > 1 and kept[-1] in PARTICLES:  # "X et Cie" -> "X et" -> "X"
        kept.pop()
    return kept, forms


@lru_cache(maxsize=65536)
def normalise_name(text: str, party: str = PERSON) -> NormalisedName:
    """The comparable form of one person's or organisation's name."""
    ascii_text = _APOSTROPHES.sub("", to_ascii(text)).replace("&", " et ")
    if party == ORGANISATION:
        ascii_text = _DOTTED_ACRONYM.sub(lambda m: m.group(0).replace(".", ""), ascii_text)
    tokens: list[str] = []
    compounds: list[str] = []
    for word in _WORD.findall(ascii_text):
        parts = [_canonical(p, party) for p in word.split("-")]
        tokens.extend(parts)
        if len(parts) > 1:
            compounds.append("".join(parts))
    titles: list[str] = []
    forms: list[str] = []
    if party == ORGANISATION:
        tokens, forms = _strip_legal_forms(tokens)
    else:
        tokens, titles = _strip_titles(tokens)
    return NormalisedName(text, party, tuple(tokens), tuple(compounds), tuple(titles), tuple(forms))


def _canonical(word: str, party: str) -> str:
    if party == ORGANISATION and word in ORGANISATION_WORDS:
        return ORGANISATION_WORDS[word]
    return NAME_VARIANTS.get(word, word)


def normalise_identifier(value: str) -> str:
    """A document or licence number without case, spaces or punctuation:
    "cf 0123-456" -> "CF0123456"."""
    return _NOT_ALNUM.sub("", anyascii(unicodedata.normalize("NFKC", value)).upper())
