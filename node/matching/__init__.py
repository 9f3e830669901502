"""The KYC matching engine: is this person or organisation in our registry of licensees
or subjects, under whatever spelling the officer has?

How the parts fit, from a typed name to a ranked answer:

- ``vocabulary``: word lists (titles, legal forms, particles, Arabic-origin name variants,
  common names in Arabic script).
- ``normalise``: a name to comparable lower-case ASCII words (transliteration, accents,
  punctuation, titles and legal forms set aside, name variants unified); identifiers to
  bare upper-case alphanumerics.
- ``keys``: a bounded set of blocking keys per person or organisation (sound codes of
  words and word pairs, sorted words, birth year with a word, document and licence
  numbers).
- ``index``: the keys and what scoring needs, stored in the node's database
  (``match_keys``, ``match_records``) and kept in step with every write of the record
  registries; bulk rows for importers; a full rebuild (``kpnet kyc reindex``).
- ``score``: a candidate against the query with rapidfuzz name ratios, date of birth,
  nationality and identifiers: an integer 0-1000 and the features that explain it.
- ``search``: ``find_candidates``: keys looked up, candidates ranked, read and scored.

Nothing here decides what may be shown to whom: callers (the KYC service) filter hits by
handling level and sharing agreement.
"""

from .index import IndexRows, MatchIndex, index_rows
from .normalise import NormalisedName, normalise_identifier, normalise_name
from .score import Feature
from .search import Hit, MatchQuery, find_candidates

__all__ = [
    "Feature",
    "Hit",
    "IndexRows",
    "MatchIndex",
    "MatchQuery",
    "NormalisedName",
    "find_candidates",
    "index_rows",
    "normalise_identifier",
    "normalise_name",
]
