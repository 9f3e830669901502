"""``kpnet bench abuse`` at a small size: a node under a stranger's junk, on SQLite and
PostgreSQL. Its figures are JSON on the last line; the latency ratio is the bench's to
measure (it depends on the machine), what is checked here is that the junk was made,
answered, and wrote no audit row."""

from __future__ import annotations

import json
import subprocess

from tests.federation.conftest import KPNET


def test_bench_abuse_reports_latency_and_no_audit_rows_from_junk(
    database_url: str | None,
) -> None:
    command = [KPNET, "bench", "abuse", "--seconds", "3", "--samples", "20"]
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["database"] == ("postgresql" if database_url else "sqlite")
    assert result["livez_p99_idle_ms"] > 0 and result["livez_p99_under_junk_ms"] > 0
    assert result["ratio"] > 0
    assert result["livez_samples_idle"] == 20 and result["livez_samples_under_junk"] > 0
    answers = result["junk_answers"]
    assert sum(answers.values()) == result["junk_requests"] > 0
    # 26 MB of {} refused as too_large (413), deep nesting as a malformed batch (200).
    assert {"413", "200"} <= set(answers) <= {"200", "413", "429", "closed", "unfinished"}
    assert result["audit_rows_from_junk"] == 0
    assert result["refusal_audit_interval_seconds"] == 60
    assert "idle node" in done.stderr
