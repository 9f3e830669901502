"""``kpnet bench stream`` at a small size, on SQLite and PostgreSQL. Its figures are
JSON on the last line; the CPU and latency targets are the bench's to measure (they
depend on the machine), what is checked here is that every stream cleared for an alert
got it, and none got one above its clearance."""

from __future__ import annotations

import json
import subprocess

from tests.federation.conftest import KPNET


def test_bench_stream_reports_cpu_and_wait_per_alert(database_url: str | None) -> None:
    command = [KPNET, "bench", "stream", "--streams", "8", "--console", "2", "--alerts", "3"]
    command += ["--pause", "0"]
    if database_url:
        command += ["--database-url", database_url]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["database"] == ("postgresql" if database_url else "sqlite")
    assert (result["streams"], result["console_streams"], result["alerts"]) == (8, 2, 3)
    assert result["cpu_ms_per_alert"] > 0 and result["cpu_ms_per_alert_per_stream"] > 0
    assert 0 < result["first_ms_p50"] <= result["last_ms_p50"] <= result["last_ms_max"]
    assert result["last_first_ratio"] >= 1
    assert result["overexposed"] == 0
    assert "8 streams open" in done.stderr
