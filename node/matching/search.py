"""``find_candidates``: the persons or organisations of the index that may be the one
asked about, best first, each with its score and the reasons for it.

1. The query's keys (``keys``) are looked up in ``match_keys`` in one statement. A key
   with more than ``MAX_POSTINGS`` postings is too common to tell anyone apart (a
   frequent first name's code): the database counts up to ``MAX_POSTINGS + 1`` and
   returns nothing for it, unless no other key found anything.
2. Candidates are ranked by the keys they share with the query, rarer keys and stronger
   families (identifiers, whole names, pairs of words) weighing more; the best
   ``MAX_SCORED`` are read from ``match_records`` in one statement and scored
   (``score``).
3. The best ``limit`` hits get their record's reference.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session

from protocol import RECORD_KINDS, RecordKind

from .index import parse_match_id
from .keys import birth_year, record_keys
from .normalise import PARTIES, normalise_identifier, normalise_name
from .score import Feature, QueryProfile, score_candidate

MAX_POSTINGS = 400
MAX_SCORED = 200
MAX_QUERY_KEYS = 400
FAMILY_WEIGHTS = {"d": 12.0, "l": 12.0, "n": 6.0, "p": 3.0, "y": 2.5, "f": 1.5, "t": 1.0}

# One part per key of the postings statement ("#" is the key's index). A key's postings
# are counted first, stopping at MAX_POSTINGS + 1, and read only if they are no more than
# MAX_POSTINGS (the join makes both SQLite and PostgreSQL test the count before reading).
_RARE_POSTINGS = (
    "SELECT m#.key, m#.match_id FROM (SELECT count(*) AS n FROM (SELECT 1 FROM match_keys "
    "WHERE key = :k# LIMIT 401) AS f#) AS c# JOIN match_keys AS m# ON m#.key = :k# "
    "WHERE c#.n <= 400"
)
_COMMON_POSTINGS = (
    "SELECT * FROM (SELECT key, match_id FROM match_keys WHERE key = :k# LIMIT 400) AS s#"
)
_RECORDS_BY_ID = (
    "SELECT id, party, names, date_of_birth, nationality, identifiers FROM match_records "
    "WHERE id IN (@)"
)
assert f"LIMIT {MAX_POSTINGS + 1}) AS f#) AS c#" in _RARE_POSTINGS
assert _RARE_POSTINGS.endswith(f"<= {MAX_POSTINGS}")
assert f"LIMIT {MAX_POSTINGS}) AS s#" in _COMMON_POSTINGS
_refs_by_id = text(
    "SELECT 'licensee', id, ref FROM licensees WHERE id IN :licensees AND deleted_at IS NULL "
    "UNION ALL "
    "SELECT 'subject', id, ref FROM subjects WHERE id IN :subjects AND deleted_at IS NULL"
).bindparams(bindparam("licensees", expanding=True), bindparam("subjects", expanding=True))


@dataclass(frozen=True)
class MatchQuery:
    """What is asked about: a person or an organisation, like a ``protocol.Party``.
    ``record_kinds`` limits the answer to licensees and/or subjects."""

    kind: str
    names: Sequence[str]
    aliases: Sequence[str] = ()
    date_of_birth: str | None = None
    nationality: str | None = None
    documents: Sequence[str] = ()
    licence_numbers: Sequence[str] = ()
    record_kinds: Sequence[RecordKind] = RECORD_KINDS

    def __post_init__(self) -> None:
        if self.kind not in PARTIES:
            raise ValueError(f"kind must be one of {', '.join(PARTIES)}, not {self.kind!r}")

    @classmethod
    def from_party(
        cls,
        party: Any,
        record_kinds: Sequence[RecordKind] = RECORD_KINDS,
    ) -> MatchQuery:
        """From anything shaped like ``protocol.Party`` (documents with a ``number``)."""
        return cls(
            kind=party.kind,
            names=list(party.names),
            aliases=list(party.aliases or ()),
            date_of_birth=party.date_of_birth,
            nationality=party.nationality,
            documents=[d.number for d in party.documents or ()],
            licence_numbers=list(party.licence_numbers or ()),
            record_kinds=record_kinds,
        )


@dataclass(frozen=True)
class Hit:
    """One candidate: which record (and, for a licensee's person, which one), its score
    0-1000 and the features that make it up."""

    record_kind: RecordKind
    record_id: int
    ref: str | None
    person_index: int | None
    party: str
    name: str
    score: int
    features: tuple[Feature, ...]

    def explain(self) -> str:
        return "; ".join(f"{f.detail} [{f.score:+d}]" for f in self.features)


def _prepare(query: MatchQuery) -> tuple[QueryProfile, list[str]]:
    names = [normalise_name(n, query.kind) for n in (*query.names, *query.aliases) if n]
    names = [n for n in names if n.tokens]
    identifiers = {f"d:{normalise_identifier(d)}": d for d in query.documents if d}
    identifiers.update({f"l:{normalise_identifier(n)}": n for n in query.licence_numbers if n})
    identifiers = {k: v for k, v in identifiers.items() if len(k) > 2}
    keys = record_keys(names, birth_year(query.date_of_birth), identifiers, query=True)
    profile = QueryProfile(names, query.date_of_birth, query.nationality, identifiers)
    return profile, keys[:MAX_QUERY_KEYS]


def _driver_rows(
    session: Session, statement: Callable[[str], str], params: dict[str, Any]
) -> list[Any]:
    """Rows of a hot statement read straight from the driver's cursor (about half the
    time SQLAlchemy's result rows take). ``statement`` renders it for a placeholder
    pattern in which ``#`` stands for the parameter's name."""
    connection = session.connection()
    named = connection.dialect.paramstyle in ("pyformat", "format")
    cursor = connection.connection.cursor()
    try:
        cursor.execute(statement("%(#)s" if named else ":#"), params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _postings(
    session: Session,
    keys: Sequence[str],
    *,
    common: bool = False,
) -> dict[str, list[int]]:
    """The match ids of each key, in one statement. Keys with more than ``MAX_POSTINGS``
    are left out (the database counts them, stopping at ``MAX_POSTINGS + 1``), unless
    ``common``: then each key gives its first ``MAX_POSTINGS``."""
    if not keys:
        return {}
    found: dict[str, list[int]] = defaultdict(list)
    rows = _driver_rows(
        session,
        partial(_postings_statement, len(keys), common),
        {f"k{i}": k for i, k in enumerate(keys)},
    )
    for key, mid in rows:
        found[key].append(mid)
    return found


@lru_cache(maxsize=512)
def _postings_statement(count: int, common: bool, placeholder: str) -> str:
    template = _COMMON_POSTINGS if common else _RARE_POSTINGS
    # Only indices go into the text; the keys are parameters.
    return " UNION ALL ".join(
        template.replace(":k#", placeholder.replace("#", f"k{i}")).replace("#", str(i))
        for i in range(count)
    )


@lru_cache(maxsize=64)
def _records_statement(count: int, placeholder: str) -> str:
    ids = ", ".join(placeholder.replace("#", f"i{n}") for n in range(count))
    return _RECORDS_BY_ID.replace("@", ids)


def _rank(postings: dict[str, list[int]]) -> list[int]:
    """Match ids by the weight of the keys they share with the query, best first."""
    weights: dict[int, float] = defaultdict(float)
    for key, ids in postings.items():
        weight = FAMILY_WEIGHTS.get(key[0], 1.0) / math.log2(2 + len(ids))
        for mid in ids:
            weights[mid] += weight
    return sorted(weights, key=lambda mid: (-weights[mid], mid))[:MAX_SCORED]


def _refs(session: Session, wanted: Iterable[tuple[str, int]]) -> dict[tuple[str, int], str]:
    ids: dict[str, list[int]] = {"licensee": [], "subject": []}
    for kind, record_id in wanted:
        ids[kind].append(record_id)
    rows = session.execute(
        _refs_by_id, {"licensees": ids["licensee"] or [0], "subjects": ids["subject"] or [0]}
    )
    return {(kind, record_id): ref for kind, record_id, ref in rows}


def find_candidates(
    session: Session, query: MatchQuery, limit: int = 10, *, min_score: int = 1
) -> list[Hit]:
    """The ``limit`` best candidates for ``query``, best first (ties: the one sharing
    more and rarer keys first)."""
    profile, keys = _prepare(query)
    postings = _postings(session, keys)
    if not postings:  # only common keys: better some candidates than none
        postings = _postings(session, [k for k in keys if k[0] in "np"][:3], common=True)
    ranked = _rank(postings)
    if not ranked:
        return []
    position = {mid: i for i, mid in enumerate(ranked)}
    scored: list[tuple[int, int, Any]] = []
    for row in _driver_rows(
        session,
        partial(_records_statement, len(ranked)),
        {f"i{n}": mid for n, mid in enumerate(ranked)},
    ):
        mid, party = row[0], row[1]
        if party != query.kind or parse_match_id(mid)[0] not in query.record_kinds:
            continue
        score, _, _ = score_candidate(
            profile, _json(row[2]), row[3], row[4], _json(row[5]) if profile.identifiers else None
        )
        if score >= min_score:
            scored.append((score, mid, row))
    scored.sort(key=lambda hit: (-hit[0], position[hit[1]]))
    best = scored[:limit]
    refs = _refs(session, (parse_match_id(mid)[:2] for _, mid, _ in best))
    hits = []
    for _, mid, (_, party, names, date_of_birth, nationality, identifiers) in best:
        kind, record_id, part = parse_match_id(mid)
        score, shown, features = score_candidate(
            profile, _json(names), date_of_birth, nationality, _json(identifiers), explain=True
        )
        hits.append(
            Hit(
                kind,
                record_id,
                refs.get((kind, record_id)),
                part - 1 if kind == "licensee" and part else None,
                party,
                shown,
                score,
                features,
            )
        )
    return hits


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value
