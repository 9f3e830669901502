"""``kpnet bench startup`` at a tiny size: its figures are JSON on the last line. How
fast a node starts is the bench's to measure (it depends on the machine); what is
checked here is that each run reached a ready node and every figure is reported."""

from __future__ import annotations

import json
import subprocess

from tests.federation.conftest import KPNET


def test_bench_startup_reports_seconds_to_ready_and_the_import_time() -> None:
    done = subprocess.run(
        [KPNET, "bench", "startup", "--runs", "2", "--imports", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["runs"] == 2 and len(result["serve_to_healthz_s"]) == 2
    assert 0 < result["serve_to_healthz_median_s"] <= result["serve_to_healthz_max_s"]
    assert result["serve_to_healthz_max_s"] == max(result["serve_to_healthz_s"])
    # A start includes importing the app.
    assert 0 < result["import_node_app_s"] < result["serve_to_healthz_max_s"]
    assert result["kpnet_help_s"] > 0
    assert result["serve_cpu_to_healthz_median_s"] > 0
    assert "starting kpnet serve" in done.stderr
