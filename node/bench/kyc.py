"""``kpnet bench kyc``: KYC candidate lookup on a registry of a million persons and
organisations, against brute-force fuzzy matching of every name.

A temporary SQLite node gets synthetic licensees (an organisation and one to three
persons each) and subjects (persons and organisations) written straight into the record
and index tables (``index_rows``, the rows the registries would write) so that building
a million takes minutes. Labelled queries (``kyc_queries``) then run through
``find_candidates`` (limit 10) and through ``rapidfuzz.process.extract`` (token sort
ratio, limit 10) over every normalised name of the same kind of party; for both we
report latency and recall@10 of the true record. Brute force costs about a second a
query at full size, so it runs on a random subset of the queries. Each query also runs,
right after its lookup, as a local check through the API of a ``kpnet serve`` process on
the same node (``kyc_api``): the check's p95 is reported next to the lookup's, with the
ratio of the two.
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rapidfuzz import fuzz, process
from sqlalchemy.engine import make_url

from protocol import RecordKind

from ..bootstrap import init_node
from ..matching import MatchQuery, find_candidates, index_rows, normalise_name
from ..matching.index import match_id
from ..runtime import Node, open_node, utc_now
from .kyc_api import ServedChecks, true_references
from .kyc_names import TOWNS, Party, organisation, person
from .kyc_queries import LabelledQuery, make_queries

BATCH = 5000
TARGETS_PER_QUERY = 4  # parties kept as possible query targets, per query wanted

_LICENSEE_SQL = (
    "INSERT INTO licensees (id, ref, handling, search_text, version, created_at, created_by,"
    " updated_at, updated_by, licence_number, licence_type, legal_name, trade_names,"
    " persons, region, status) VALUES (?,?,'GREEN','',1,?,'bench',?,'bench',?,"
    " 'buying_house',?,?,?,?,'active')"
)
_SUBJECT_SQL = (
    "INSERT INTO subjects (id, ref, handling, search_text, version, created_at, created_by,"
    " updated_at, updated_by, kind, names, aliases, date_of_birth, nationality, documents,"
    " linked_licence_numbers, reason_category, risk_level) VALUES"
    " (?,?,'AMBER','',1,?,'bench',?,'bench',?,?,?,?,?,?,'[]','smuggling','medium')"
)
_RECORD_SQL = (
    "INSERT INTO match_records (id, record_kind, record_id, part, party, names,"
    " date_of_birth, nationality, identifiers, keys) VALUES (?,?,?,?,?,?,?,?,?,?)"
)


def _records(
    rng: random.Random, parties: int
) -> Iterator[tuple[RecordKind, int, dict[str, Any], list[Party]]]:
    """(record kind, id, fields, parties) until ``parties`` persons and organisations:
    about a third of them in licensees, the rest subjects (one in ten an organisation)."""
    made = licensee_id = subject_id = 0
    while made < parties:
        if rng.random() < 0.16:
            licensee_id += 1
            org = organisation(rng)
            staff = [person(rng) for _ in range(rng.randint(1, 3))]
            fields: dict[str, Any] = {
                "licence_number": f"{rng.choice(('CF', 'CD', 'CM', 'AO'))}-BA-{licensee_id:07d}",
                "legal_name": org.names[0],
                "trade_names": [organisation(rng).names[0]] if rng.random() < 0.2 else [],
                "persons": [
                    {
                        "role": rng.choice(("director", "beneficial_owner", "manager")),
                        "name": p.names[0],
                        "date_of_birth": p.date_of_birth,
                        "nationality": p.nationality,
                        "documents": [{"type": "passport", "number": d} for d in p.documents],
                    }
                    for p in staff
                ],
            }
            made += 1 + len(staff)
            yield "licensee", licensee_id, fields, [org, *staff]
        else:
            subject_id += 1
            party = organisation(rng) if rng.random() < 0.1 else person(rng)
            if rng.random() < 0.2:
                party.aliases.append(
                    person(rng).names[0].split()[-1].title()
                    if party.kind == "person"
                    else organisation(rng).names[0]
                )
            fields = {
                "kind": party.kind,
                "names": party.names,
                "aliases": party.aliases,
                "date_of_birth": party.date_of_birth,
                "nationality": party.nationality,
                "documents": [{"type": "passport", "number": d} for d in party.documents],
                "linked_licence_numbers": [],
            }
            made += 1
            yield "subject", subject_id, fields, [party]


def build(
    db_path: Path, parties: int, queries: int, *, seed: int, echo: Callable[[str], None]
) -> tuple[list[tuple[int, Party]], dict[str, Any]]:
    """Fill the node's database; return query targets and the brute-force corpora."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    keep = min(1.0, TARGETS_PER_QUERY * queries / parties)
    targets: list[tuple[int, Party]] = []
    corpus: dict[str, tuple[list[str], list[int]]] = {"person": ([], []), "organisation": ([], [])}
    db = sqlite3.connect(db_path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-1000000")
    db.execute("CREATE TEMP TABLE staged_keys (key TEXT, match_id INTEGER)")
    now = utc_now().replace(tzinfo=None).isoformat(sep=" ")
    started = time.perf_counter()
    done = keys = 0
    batch: list[tuple[str, int, dict[str, Any], list[Party]]] = []

    def flush() -> None:
        nonlocal keys
        rows = index_rows({"record_kind": k, "record_id": i, "fields": f} for k, i, f, _ in batch)
        db.execute("BEGIN")
        db.executemany(
            _LICENSEE_SQL,
            [
                (
                    i,
                    str(uuid.uuid4()),
                    now,
                    now,
                    f["licence_number"],
                    f["legal_name"],
                    json.dumps(f["trade_names"]),
                    json.dumps(f["persons"]),
                    rng.choice(TOWNS),
                )
                for k, i, f, _ in batch
                if k == "licensee"
            ],
        )
        db.executemany(
            _SUBJECT_SQL,
            [
                (
                    i,
                    str(uuid.uuid4()),
                    now,
                    now,
                    f["kind"],
                    json.dumps(f["names"]),
                    json.dumps(f["aliases"]),
                    f["date_of_birth"],
                    f["nationality"],
                    json.dumps(f["documents"]),
                )
                for k, i, f, _ in batch
                if k == "subject"
            ],
        )
        db.executemany(
            _RECORD_SQL,
            [
                (
                    r["id"],
                    r["record_kind"],
                    r["record_id"],
                    r["part"],
                    r["party"],
                    json.dumps(r["names"]),
                    r["date_of_birth"],
                    r["nationality"],
                    json.dumps(r["identifiers"]),
                    json.dumps(r["keys"]),
                )
                for r in rows.records
            ],
        )
        db.executemany(
            "INSERT INTO staged_keys VALUES (?, ?)", [(k["key"], k["match_id"]) for k in rows.keys]
        )
        db.execute("COMMIT")
        keys += len(rows.keys)
        for r in rows.records:
            texts, ids = corpus[r["party"]]
            for _, text, _ in r["names"]:
                texts.append(text)
                ids.append(r["id"])
        batch.clear()

    for record in _records(rng, parties):
        kind, record_id, _, members = record
        for part, party in enumerate(members):
            if rng.random() < keep:
                targets.append((match_id(kind, record_id, part), party))
        batch.append(record)
        done += len(members)
        if len(batch) >= BATCH:
            flush()
            echo(
                f"  {done:,} persons and organisations, {keys:,} keys "
                f"({time.perf_counter() - started:.0f} s)"
            )
    if batch:
        flush()
    echo(
        f"generated and indexed {done:,} persons and organisations ({keys:,} keys) in "
        f"{time.perf_counter() - started:.0f} s; sorting keys into match_keys"
    )
    sorted_at = time.perf_counter()
    db.execute(
        "INSERT INTO match_keys (key, match_id) "
        "SELECT key, match_id FROM staged_keys ORDER BY key, match_id"
    )
    db.execute("DROP TABLE staged_keys")
    db.execute("ANALYZE")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()
    echo(
        f"match_keys written in {time.perf_counter() - sorted_at:.0f} s; database "
        f"{db_path.stat().st_size / 1e9:.2f} GB"
    )
    return targets, {"parties": done, "keys": keys, "corpus": corpus}


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 2)


def run_kyc_bench(
    records: int = 1_000_000,
    *,
    queries: int = 1200,
    bruteforce_queries: int = 120,
    seed: int = 2024,
    echo: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """Build the registry, run the labelled queries both ways, return the results."""
    with tempfile.TemporaryDirectory(prefix="kpnet-bench-kyc-") as tmp:
        settings = init_node(
            Path(tmp) / "node",
            node_id="CF",
            name="Benchmark node",
            url="http://127.0.0.1:8100",
            now=utc_now(),
        )
        db_path = Path(str(make_url(settings.sqlalchemy_url).database))
        targets, built = build(db_path, records, queries, seed=seed, echo=echo)
        rng = random.Random(seed + 1)  # noqa: S311
        labelled = make_queries(rng, targets, queries)
        by_variant: dict[str, list[bool]] = {}
        latencies, found, api_latencies, api_found = [], [], [], []
        node = open_node(settings, migrate=False)
        try:
            with node.sessions() as session:
                truths = true_references(session, labelled)
            with ServedChecks(node, Path(tmp)) as api:
                for query in labelled[:20]:  # warm the caches
                    _lookup(node, query)
                    api.check(query)
                for query, truth in zip(labelled, truths, strict=True):
                    elapsed, hits = _lookup(node, query)
                    latencies.append(elapsed)
                    ok = query.truth in hits
                    found.append(ok)
                    by_variant.setdefault(query.variant, []).append(ok)
                    elapsed, references = api.check(query)
                    api_latencies.append(elapsed)
                    api_found.append(truth in references)
        finally:
            node.close()
        echo(
            f"our lookup: {len(labelled)} queries, p50 {_ms(statistics.median(latencies))} ms,"
            f" p95 {_ms(_percentile(latencies, 0.95))} ms, recall@10 "
            f"{sum(found) / len(found):.4f}"
        )
        echo(
            f"the same queries as local checks through the API of a served node, each "
            f"after its lookup: p50 {_ms(statistics.median(api_latencies))} ms, p95 "
            f"{_ms(_percentile(api_latencies, 0.95))} ms, recall@10 "
            f"{sum(api_found) / len(api_found):.4f}"
        )
        for variant, oks in sorted(by_variant.items()):
            echo(f"  {variant:<30} {sum(oks)}/{len(oks)}")
        subset = rng.sample(labelled, min(bruteforce_queries, len(labelled)))
        brute_latencies, brute_found = _bruteforce(subset, built["corpus"])
        echo(
            f"brute force (rapidfuzz.process.extract, token_sort_ratio, over "
            f"{sum(len(t) for t, _ in built['corpus'].values()):,} names) on a random "
            f"subset of {len(subset)} of the {len(labelled)} queries: p50 "
            f"{_ms(statistics.median(brute_latencies))} ms, p95 "
            f"{_ms(_percentile(brute_latencies, 0.95))} ms, recall@10 "
            f"{sum(brute_found) / len(brute_found):.4f}"
        )
        ours_on_subset = [found[labelled.index(q)] for q in subset]
        echo(f"our recall@10 on the same subset: {sum(ours_on_subset) / len(subset):.4f}")
    p95 = _percentile(latencies, 0.95)
    brute_p95 = _percentile(brute_latencies, 0.95)
    api_p95 = _percentile(api_latencies, 0.95)
    return {
        "records": built["parties"],
        "keys": built["keys"],
        "queries": len(labelled),
        "bruteforce_queries": len(subset),
        "p50_ms": _ms(statistics.median(latencies)),
        "p95_ms": _ms(p95),
        "bruteforce_p50_ms": _ms(statistics.median(brute_latencies)),
        "bruteforce_p95_ms": _ms(brute_p95),
        "speedup": round(brute_p95 / p95, 1),
        "recall_at_10": round(sum(found) / len(found), 4),
        "bruteforce_recall_at_10": round(sum(brute_found) / len(brute_found), 4),
        "api_p50_ms": _ms(statistics.median(api_latencies)),
        "api_p95_ms": _ms(api_p95),
        "api_index_p95_ratio": round(api_p95 / p95, 2),
        "api_recall_at_10": round(sum(api_found) / len(api_found), 4),
    }


def _lookup(node: Node, query: LabelledQuery) -> tuple[float, set[int]]:
    """Seconds ``find_candidates`` took for ``query`` (limit 10), and the match ids
    found. Each lookup has its own transaction, so that the served node can write."""
    with node.sessions() as session:
        session.connection()  # the transaction begins before the clock starts
        started = time.perf_counter()
        hits = find_candidates(session, _match_query(query), 10)
        elapsed = time.perf_counter() - started
    return elapsed, {
        match_id(h.record_kind, h.record_id, 0 if h.person_index is None else h.person_index + 1)
        for h in hits
    }


def _match_query(query: LabelledQuery) -> MatchQuery:
    return MatchQuery(
        query.kind,
        query.names,
        date_of_birth=query.date_of_birth,
        nationality=query.nationality,
        documents=query.documents,
    )


def _bruteforce(
    queries: list[LabelledQuery],
    corpus: dict[str, tuple[list[str], list[int]]],
) -> tuple[list[float], list[bool]]:
    latencies, found = [], []
    for query in queries:
        texts, ids = corpus[query.kind]
        started = time.perf_counter()
        wanted = normalise_name(query.names[0], query.kind).text
        hits = process.extract(
            wanted, texts, scorer=fuzz.token_sort_ratio, processor=None, limit=10
        )
        latencies.append(time.perf_counter() - started)
        found.append(query.truth in {ids[index] for _, _, index in hits})
    return latencies, found
