"""Scoring a candidate against a query: an integer 0-1000 and the features behind it.

Each feature is an integer contribution with a short reason an officer can check:

======================  ==========================================================
names                   up to 600: the best pair over the query's names and aliases
                        and the candidate's (``name_similarity``, 0-100, mapped
                        linearly from 40 -> 0 to 100 -> 600)
date of birth           +150 same date, +100 day and month swapped, +110 same year
                        and month, +80 same year (one side gives only the year),
                        +40 same year other day, 0 one year apart, -150 otherwise
nationality             +40 same, -40 different
document, licence       +300 for a shared identity-document number, +300 for a
                        shared licence number (at most +400 together)
======================  ==========================================================

The sum is clamped to 0-1000. Legal forms and titles are shown (score 0) but never
count: "Comptoir Étoile du Sud SARL" is "Ets Comptoir Etoile du Sud".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from rapidfuzz import fuzz

from .normalise import NormalisedName

NAME_POINTS = 600
NAME_FLOOR = 40  # similarity at or below which a name gives nothing
IDENTIFIER_POINTS = 300
IDENTIFIER_CAP = 400
MAX_SCORE = 1000


@dataclass(frozen=True)
class Feature:
    """One reason in a score: ``name`` (names, date_of_birth, nationality, document,
    licence, legal_form, title), its integer contribution and a short detail."""

    name: str
    score: int
    detail: str


class ComparableName:
    """A name as the scorer compares it: display form, normalised text, tag (name,
    alias, trade name, a licensee person's role), and the text's words run together
    with each word in turn first ("mbala jean pierre" -> mbalajeanpierre,
    jeanpierrembala, pierrembalajean)."""

    __slots__ = ("display", "nospace", "rotations", "tag", "text", "words")

    def __init__(self, display: str, text: str, tag: str = "name") -> None:
        self.display, self.text, self.tag = display, text, tag
        words = text.split()
        self.words = len(words)
        self.nospace = "".join(words)
        self.rotations = ["".join(words[i:] + words[:i]) for i in range(min(len(words), 4))]

    @classmethod
    def of(cls, name: NormalisedName, tag: str = "name") -> ComparableName:
        return cls(name.original, name.text, tag)


def name_similarity(query: ComparableName, text: str) -> float:
    """0-100, word order ignored: the mean of token-sort and token-set ratios (a
    missing middle name costs a little, a typo a little), or the plain ratio of the
    words run together, whichever is higher (Jean-Pierre, Jean Pierre, Jeanpierre)."""
    if not text:
        return 0.0
    if query.text == text:
        return 100.0
    mixed = (fuzz.token_sort_ratio(query.text, text) + fuzz.token_set_ratio(query.text, text)) / 2
    joined = text.replace(" ", "")
    if (
        mixed < 95
        and text.count(" ") + 1 != query.words
        and abs(len(joined) - len(query.nospace)) <= 4
    ):
        return max(mixed, *(fuzz.ratio(r, joined) for r in query.rotations))
    return mixed


def best_name(
    queries: Sequence[ComparableName],
    candidates: Sequence[Sequence[str]],
) -> tuple[float, ComparableName | None, Sequence[str] | None]:
    """The best (similarity, query name, candidate ``[display, text, tag]``)."""
    best: tuple[float, ComparableName | None, Sequence[str] | None] = (0.0, None, None)
    for query in queries:
        for candidate in candidates:
            similarity = name_similarity(query, candidate[1])
            if similarity > best[0]:
                best = (similarity, query, candidate)
                if similarity == 100.0:
                    return best
    return best


def name_points(similarity: float) -> int:
    return max(0, round((similarity - NAME_FLOOR) * NAME_POINTS / (100 - NAME_FLOOR)))


def name_feature(
    similarity: float, query: ComparableName | None, candidate: Sequence[str] | None
) -> Feature:
    if query is None or candidate is None:
        return Feature("names", 0, "no name in common")
    display, _, tag = candidate
    tag = "" if tag == "name" else f"{tag} "
    return Feature(
        "names",
        name_points(similarity),
        f'"{query.display}" ~ {tag}"{display}" ({similarity:.0f}/100)',
    )


def date_points(query: str | None, candidate: str | None) -> tuple[int, str] | None:
    """(points, detail template) comparing partial dates ``YYYY``, ``YYYY-MM``,
    ``YYYY-MM-DD``; None when either is missing or unreadable."""
    if not query or not candidate:
        return None
    if query == candidate:
        if len(query) == 10:
            return 150, "date of birth {q} matches"
        return (
            (110, "birth month {q} matches") if len(query) == 7 else (80, "birth year {q} matches")
        )
    if query[:4] != candidate[:4]:
        try:
            apart = abs(int(query[:4]) - int(candidate[:4]))
        except ValueError:
            return None
        if apart == 1:
            return 0, "birth year one year apart ({q} vs {c})"
        return -150, "date of birth differs ({q} vs {c})"
    common = min(len(query), len(candidate))
    if common == 10 and query[5:7] == candidate[8:10] and query[8:10] == candidate[5:7]:
        return 100, "date of birth matches with day and month swapped ({q} vs {c})"
    if common == 4:
        return 80, "birth year {y} matches ({q} vs {c})"
    if query[:7] == candidate[:7]:
        return 110, "birth year and month match ({q} vs {c})"
    return 40, "birth year {y} matches, not the day ({q} vs {c})"


def date_feature(query: str | None, candidate: str | None) -> Feature | None:
    compared = date_points(query, candidate)
    if compared is None or query is None:
        return None
    points, detail = compared
    return Feature("date_of_birth", points, detail.format(q=query, c=candidate, y=query[:4]))


def nationality_points(query: str | None, candidate: str | None) -> int:
    if not query or not candidate:
        return 0
    return 40 if query.upper() == candidate.upper() else -40


def nationality_feature(query: str | None, candidate: str | None) -> Feature | None:
    if not query or not candidate:
        return None
    if query.upper() == candidate.upper():
        return Feature("nationality", 40, f"nationality {candidate} matches")
    return Feature("nationality", -40, f"nationality differs ({query} vs {candidate})")


def identifier_features(query: dict[str, str], candidate: Sequence[str]) -> list[Feature]:
    """``query`` maps prefixed normalised identifiers ("d:CF0123456", "l:CMBA001") to
    what the officer typed; ``candidate`` lists the record's prefixed identifiers."""
    features: list[Feature] = []
    budget = IDENTIFIER_CAP
    for identifier in candidate:
        typed = query.get(identifier)
        if typed is None:
            continue
        points = min(IDENTIFIER_POINTS, budget)
        budget -= points
        if identifier.startswith("l:"):
            features.append(Feature("licence", points, f"licence number {typed} matches"))
        else:
            features.append(Feature("document", points, f"document number {typed} matches"))
    return features


def note_features(query_names: Sequence[NormalisedName], candidate: str) -> list[Feature]:
    """Legal forms and titles the query gave, shown with score 0 (they never count)."""
    notes: list[Feature] = []
    forms = sorted({f for n in query_names for f in n.legal_forms})
    if forms:
        notes.append(
            Feature(
                "legal_form", 0, f"legal form ignored: {', '.join(forms)} (record: {candidate})"
            )
        )
    titles = sorted({t for n in query_names for t in n.titles})
    if titles:
        notes.append(Feature("title", 0, f"title ignored: {', '.join(titles)}"))
    return notes


def total(features: Sequence[Feature]) -> int:
    return max(0, min(MAX_SCORE, sum(f.score for f in features)))


@dataclass
class QueryProfile:
    """What scoring needs of a query, prepared once for all its candidates.
    ``identifiers`` maps prefixed normalised numbers to what the officer typed."""

    names: list[NormalisedName]
    date_of_birth: str | None = None
    nationality: str | None = None
    identifiers: dict[str, str] = field(default_factory=dict)
    comparable: list[ComparableName] = field(init=False)

    def __post_init__(self) -> None:
        self.comparable = [ComparableName.of(n) for n in self.names]


def score_candidate(
    query: QueryProfile,
    names: Sequence[Sequence[str]],
    date_of_birth: str | None,
    nationality: str | None,
    identifiers: Sequence[str] | None,
    *,
    explain: bool = False,
) -> tuple[int, str, tuple[Feature, ...]]:
    """(score, the candidate's best-matching name, features) of one candidate given as
    its ``[display, normalised, tag]`` names and other fields. Without ``explain`` the
    features are left out (ranking many candidates needs only the score)."""
    similarity, asked, matched = best_name(query.comparable, names)
    shown = matched[0] if matched else (names[0][0] if names else "")
    if not explain:
        dated = date_points(query.date_of_birth, date_of_birth)
        points = (
            name_points(similarity)
            + (dated[0] if dated else 0)
            + nationality_points(query.nationality, nationality)
        )
        if query.identifiers and identifiers:
            points += sum(f.score for f in identifier_features(query.identifiers, identifiers))
        return max(0, min(MAX_SCORE, points)), shown, ()
    features = [name_feature(similarity, asked, matched)]
    features += [
        f
        for f in (
            date_feature(query.date_of_birth, date_of_birth),
            nationality_feature(query.nationality, nationality),
        )
        if f
    ]
    if query.identifiers and identifiers:
        features += identifier_features(query.identifiers, identifiers)
    features += note_features(query.names, shown)
    return total(features), shown, tuple(features)
