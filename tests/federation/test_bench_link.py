"""``kpnet bench link`` at a small size: it runs two nodes through an emulated link
and prints its figures as JSON on the last line."""

from __future__ import annotations

import json
import subprocess

from tests.federation.conftest import KPNET


def test_bench_link_reports_goodput_and_catch_up():
    done = subprocess.run(
        [KPNET, "bench", "link", "--rates", "256@50", "--seconds", "5", "--catch-up", "300"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    [link] = result["links"]
    assert link["rate_bits"] == 256_000 and link["latency_ms"] == 50
    assert 0 < link["goodput"] <= 1.5 and link["alerts"] >= 10
    assert link["wire_up_per_alert"] < link["alert_bytes"] * 1.1  # compressed
    assert result["catch_up_alerts"] == 300 and result["catch_up_ratio"] > 0
    assert "256kbit" in done.stderr
