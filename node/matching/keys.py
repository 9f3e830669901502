"""Blocking keys: short strings two records share when they might be the same party.

A record (or a query) yields a bounded set of keys; retrieval looks candidates up by key
and only those are scored. Every key starts with its family and, for names, the party
(``P`` person, ``O`` organisation), so persons never block with organisations:

=========  ===========================================  ===============================
family     value                                        catches
=========  ===========================================  ===============================
``n``      the name's significant words, sorted         reordered names
``t``      the phonetic code of one word                rare words (frequent ones are
                                                         skipped at query time)
``p``      two words' codes, sorted                     order, missing or extra middle
                                                         names, accents, vowel typos
``f``      one word's code + another's first or last    a typo in the other word, and
           three letters (two-word person names and     Jean Pierre / Jeanpierre
           organisations only)
``y``      birth year + one word's code                 a typo when the birth year is
                                                         known
``d``      document number (normalised)                 the same passport, ID card
``l``      licence number (normalised)                  the same licensee
=========  ===========================================  ===============================

``phonetic`` is our own key rather than Metaphone or NYSIIS (tuned to English
spelling): it knows how French, English and Portuguese writers transcribe the same
African or Arabic name (ou/w, tch/tsh/ch/sh, dj/j, y/i, c/k/q, ph/f), drops h and
inner vowels, so most one-letter typos in vowels leave it unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from itertools import combinations, pairwise, permutations

from .normalise import PERSON, NormalisedName

MAX_WORDS = 5  # per name: the first ones (given names and surnames come first)
MAX_KEYS = 80  # per record part (a subject with many aliases stops there)
KEY_LENGTH = 100
AFFIX = 3  # letters of the prefix and suffix in ``f`` keys
MIN_AFFIX_WORD = 4

_SOUNDS = {
    "tch": "x",
    "tsh": "x",
    "sch": "x",
    "sh": "x",
    "ch": "x",
    "dj": "j",
    "ph": "f",
    "kh": "k",
    "gh": "g",
    "th": "t",
    "dh": "d",
    "qu": "k",
    "ck": "k",
    "gu": "g",
    "ou": "u",
    "w": "u",
    "y": "i",
    "q": "k",
    "x": "ks",
    "z": "s",
    "gn": "n",
    "h": "",
}
_SOUND = re.compile("|".join(sorted(map(re.escape, _SOUNDS), key=len, reverse=True)) + "|c")
_DOUBLE = re.compile(r"(.)\1+")
_VOWELS = re.compile(r"[aeiou]")


def _sound(match: re.Match[str]) -> str:
    text = match.group(0)
    if text == "c":  # soft before e, i, y
        return "s" if match.string[match.end() : match.end() + 1] in ("e", "i", "y") else "k"
    return _SOUNDS[text]


_phonetic_cache: dict[str, str] = {}


def phonetic(word: str) -> str:
    """A French-aware sound key of one lower-case ASCII word: "Ngouandjika" and
    "Ngouandjka" -> "ngnjk", "Tshibangu" and "Chibangu" -> "xbng", "Ouedraogo" and
    "Wedraogo" -> "adrg"."""
    code = _phonetic_cache.get(word)
    if code is not None:
        return code
    sounds = _DOUBLE.sub(r"\1", _SOUND.sub(_sound, word))
    if not sounds:
        code = word
    else:
        head = "a" if sounds[0] in "aeiou" else sounds[0]
        code = head + _VOWELS.sub("", sounds[1:])
        if code.endswith("d"):  # Ahmad / Ahmat, Mahamad / Mahamat
            code = code[:-1] + "t"
        code = code[:8]
    if len(_phonetic_cache) < 200_000:
        _phonetic_cache[word] = code
    return code


def name_keys(
    name: NormalisedName, birth_year: str | None = None, *, query: bool = False
) -> list[str]:
    """Keys of one name (and birth year, for a person).

    ``f`` keys cost many rows, so a record has them only where a typo could otherwise
    hide it: names of two words (a typo in either leaves no ``p`` key) and organisation
    names (whose other words are often generic: Comptoir, Diamants). A query has them
    all, and also tries adjacent words joined ("Jean Pierre" for "Jeanpierre").
    """
    party = "P" if name.party == PERSON else "O"
    compounds = set(name.compounds)
    base = [w for w in name.significant if w not in compounds][:MAX_WORDS]
    if not base and not compounds:  # only particles or initials: better those than nothing
        base = list(dict.fromkeys(name.tokens))[:MAX_WORDS]
    words = base + [w for w in name.significant if w in compounds]
    if query:
        tokens = [t for t in name.tokens if len(t) > 1]
        words += [a + b for a, b in pairwise(tokens) if a + b not in words]
    if not words:
        return []
    codes = {w: phonetic(w) for w in words}
    keys = [f"n{party}:" + " ".join(sorted(base or words))[:KEY_LENGTH]]
    keys += [f"t{party}:{code}" for code in dict.fromkeys(codes.values())]
    for a, b in combinations(words, 2):
        if codes[a] != codes[b]:
            keys.append(f"p{party}:" + "|".join(sorted((codes[a], codes[b]))))
    if query or party == "O" or len(base) <= 2:
        for a, b in permutations(base, 2):
            if len(b) >= MIN_AFFIX_WORD and codes[a] != codes[b]:
                keys.append(f"f{party}:{codes[a]}|{b[:AFFIX]}-")
                keys.append(f"f{party}:{codes[a]}|-{b[-AFFIX:]}")
    if birth_year:
        keys += [f"y{party}:{birth_year}|{code}" for code in dict.fromkeys(codes.values())]
    return keys


def record_keys(
    names: Iterable[NormalisedName],
    birth_year: str | None,
    identifiers: Iterable[str],
    *,
    query: bool = False,
) -> list[str]:
    """The keys of one person or organisation: identifiers first, then each name's keys,
    without repeats, at most ``MAX_KEYS`` (a query has no bound)."""
    keys: dict[str, None] = dict.fromkeys(identifiers)
    for name in names:
        keys.update(dict.fromkeys(name_keys(name, birth_year, query=query)))
    selected = list(keys)
    return selected if query else selected[:MAX_KEYS]


def birth_year(date_of_birth: str | None) -> str | None:
    return date_of_birth[:4] if date_of_birth else None
