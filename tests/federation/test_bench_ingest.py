"""``kpnet bench ingest`` at a small size, on SQLite and PostgreSQL: every alert is
accepted, and the JSON on the last line has the server's CPU per message, the protocol
ceiling measured in the same run, and their quotient (the figures themselves are the
bench's to measure: they depend on the machine)."""

from __future__ import annotations

import json
import subprocess

from tests.federation.conftest import KPNET


def test_bench_ingest_reports_cpu_per_message_against_the_crypto_ceiling(
    database_url: str | None,
) -> None:
    command = [KPNET, "bench", "ingest", "--messages", "100", "--batch", "20"]
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["database"] == ("postgresql" if database_url else "sqlite")
    assert (result["messages"], result["batch"]) == (100, 20)
    assert result["ingest_per_s"] > 0 and result["trivial_per_s"] > 0
    assert result["cpu_us_per_msg"] > 0 and result["ceiling_us_per_msg"] > 0
    assert result["trivial_cpu_us_per_request"] > 0
    quotient = result["cpu_us_per_msg"] / result["ceiling_us_per_msg"]
    assert abs(result["cpu_ceiling_ratio"] - quotient) < 0.01
