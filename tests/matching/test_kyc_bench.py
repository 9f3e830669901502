"""``kpnet bench kyc`` at a small size: it builds, queries both ways, runs the queries
as local checks through a served node's API and reports; the labelled variants are what
they claim to be."""

from __future__ import annotations

import random

from node.bench.kyc import run_kyc_bench
from node.bench.kyc_names import Party
from node.bench.kyc_queries import PERSON_VARIANTS, make_queries, typo


def test_small_benchmark_reports_latency_and_recall_of_lookup_brute_force_and_api():
    lines: list[str] = []
    result = run_kyc_bench(3000, queries=60, bruteforce_queries=10, echo=lines.append)

    assert set(result) >= {
        "p95_ms",
        "bruteforce_p95_ms",
        "speedup",
        "recall_at_10",
        "bruteforce_recall_at_10",
        "api_p95_ms",
        "api_index_p95_ratio",
        "api_recall_at_10",
    }
    assert result["queries"] == 60
    assert result["bruteforce_queries"] == 10
    assert result["records"] >= 3000
    assert result["recall_at_10"] >= 0.9
    # The checks went through the API and found what the lookup finds (one hit per
    # record, so a licensee's person found through another part counts too).
    assert result["api_recall_at_10"] >= result["recall_at_10"] - 0.02
    assert result["api_p95_ms"] > 0 and result["api_index_p95_ratio"] > 0
    assert any("random subset of 10 of the 60 queries" in line for line in lines)


def test_typo_changes_one_letter_but_never_the_first():
    rng = random.Random(1)
    for _ in range(200):
        changed = typo(rng, "Ngouandjika")
        assert changed[0] == "N"
        assert abs(len(changed) - len("Ngouandjika")) <= 1


def test_queries_are_labelled_variants_of_their_targets():
    people = [
        (n, Party("person", [name], date_of_birth="1981-03-04", nationality="CF", origin="central"))
        for n, name in enumerate(
            ["Jean-Pierre Mbala Ngoy", "Odette Marie Yakité", "Mahamat Abakar Issa"] * 20
        )
    ]
    queries = make_queries(random.Random(3), people, 30)
    assert {q.variant for q in queries} <= set(PERSON_VARIANTS)
    for query in queries:
        original = people[query.truth][1]
        if query.variant == "day_month_swapped":
            assert query.date_of_birth == "1981-04-03"
        elif query.variant == "year_only_birth_date":
            assert query.date_of_birth == "1981"
        else:
            assert query.names != original.names
